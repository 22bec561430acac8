/*
 * promtool's notation for synthetic series, as rule unit tests (--test-rules) and the
 * expression test tools write them: a series description `name{label="value", ...}` and
 * a values string such as "1+1x10 _ stale 3". The values start at time 0 and follow each
 * other one step apart:
 *   a          one sample (a number, Inf or NaN, with an optional sign)
 *   a+bxn      n+1 samples a, a+b, ..., each one the previous plus b (a-bxn subtracts)
 *   axn        n+1 samples of a
 *   _  _xn     one step (n steps) without a sample
 *   stale      a stale marker: the series is absent from then on until its next sample
 */
#ifndef TOCSIN_SERIES_NOTATION_H
#define TOCSIN_SERIES_NOTATION_H

#include <stddef.h>
#include <stdint.h>

#include "collector/series.h"

struct window_store;

/*
 * Parses a series description: an optional metric name, then optional braces holding
 * `label="value"` pairs (strings quoted as in PromQL; only `=` is accepted), at least one
 * of the two. The name may also be given as the label __name__. Labels with an empty
 * value are left out, because an empty value means a missing label. Returns 0 and sets
 * *labels (sorted by name, "__name__" included when there is a name; free with
 * series_notation_labels_free) and *count, or -1 with *error set (caller frees) to
 * "PROBLEM at column N of series".
 */
int series_notation_parse_labels(const char *text, struct label **labels, size_t *count,
				 char **error);
void series_notation_labels_free(struct label *labels, size_t count);

/*
 * Renders a label set as `name{a="1", b="2"}` ("{}" when empty), the name taken from
 * "__name__" and values quoted and escaped as in PromQL. The caller frees the string.
 */
char *series_notation_format_labels(const struct label *labels, size_t count);

enum series_notation_kind {
	SERIES_NOTATION_VALUE,
	SERIES_NOTATION_MISSING,
	SERIES_NOTATION_STALE,
};

/* One item of a values string, standing for `count` consecutive steps. */
struct series_notation_item {
	enum series_notation_kind kind;
	double start; /* VALUE: the first value */
	double step;  /* VALUE: added to the previous value for each following one */
	uint64_t count;
};

/*
 * Parses a values string. Returns 0 with *items (caller frees) and *count, or -1 with
 * *error set (caller frees) to "PROBLEM at column N of values". An empty string is a
 * series without samples.
 */
int series_notation_parse_values(const char *text, struct series_notation_item **items,
				 size_t *count, char **error);

/*
 * Interns the series described by `labels` (as parsed above; a metric name is required)
 * as a gauge. Returns NULL with *error set (caller frees) when it has no name or the
 * registry rejects it.
 */
struct series *series_notation_intern(struct series_registry *reg, const struct label *labels,
				      size_t count, char **error);

/*
 * Appends the items to the window of `s` at times 0, step_ms, 2 * step_ms, ... up to
 * end_ms (later ones are left out, as promtool loads samples only up to the last time
 * a test evaluates). Values follow promtool: each one of a+bxn is the previous one plus
 * b, so a sum of fractions rounds as it does there. step_ms must be positive. Samples
 * the window rejects (the series already has samples at or past that time) are dropped.
 * Returns the number of samples appended.
 */
size_t series_notation_load(struct window_store *ws, struct series *s,
			    const struct series_notation_item *items, size_t count, int64_t step_ms,
			    int64_t end_ms);

#endif
