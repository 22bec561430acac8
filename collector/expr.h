/*
 * The rule expression language: a documented subset of PromQL (docs/rules.md). An
 * expression is parsed and type checked once, when its rule file loads, and evaluated at
 * an instant over a `struct expr_source`, which lists series and reads their samples. The
 * source is either the daemon's in-memory windows (collector/window.h) or a synthetic
 * store on a virtual clock. Evaluation follows PromQL 2.x: a 5-minute lookback for
 * instant selectors, closed ranges [t - range, t], stale markers ending a series,
 * Prometheus's extrapolation in rate/increase/delta. Loop thread only; no global state.
 */
#ifndef TOCSIN_EXPR_H
#define TOCSIN_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/series.h"

/* How far back an instant selector looks for the latest sample, as in Prometheus. */
#define EXPR_LOOKBACK_MS (5 * 60 * 1000)

enum expr_type {
	EXPR_TYPE_SCALAR,
	EXPR_TYPE_VECTOR, /* instant vector */
	EXPR_TYPE_MATRIX, /* range vector */
	EXPR_TYPE_STRING,
};

/* "scalar", "instant vector", "range vector" or "string". */
const char *expr_type_name(enum expr_type type);

enum expr_match_op {
	EXPR_MATCH_EQUAL,
	EXPR_MATCH_NOT_EQUAL,
	EXPR_MATCH_REGEX,
	EXPR_MATCH_NOT_REGEX,
};

/* One label matcher of a selector. The metric name is matched as label "__name__". */
struct expr_matcher {
	enum expr_match_op op;
	const char *name;
	const char *value;
	void *regex; /* compiled, anchored pattern for the regex operators; private */
};

/* True when a label whose value is `value` (NULL or "" when the label is missing) passes. */
bool expr_matcher_matches(const struct expr_matcher *m, const char *value);

/*
 * Compiles `re` in the selectors' regex dialect (a POSIX extended regex anchored at both
 * ends, plus a leading (?i), (?:...) and \d/\D) into *regex, for expr_matcher.regex.
 * Returns 0, or -1 with the reason in why: regerror()'s, or a repetition operator after
 * another one, or groups nested deeper than 1000 levels. Free the result with
 * expr_regex_free.
 */
int expr_regex_compile(const char *re, void **regex, char *why, size_t size);
void expr_regex_free(void *regex);

/*
 * Stale markers are stored as a NaN with a payload that arithmetic never produces, as in
 * Prometheus. A window stores one when a series stops being emitted. The engine treats a
 * series whose latest sample is a marker as absent, and it skips markers in ranges.
 */
double expr_stale_marker(void);
bool expr_is_stale_marker(double value);

struct expr_sample {
	int64_t time_ms;
	double value;
};

/* Buffer a source appends the samples it reads to. The caller of read() frees v. */
struct expr_sample_buffer {
	struct expr_sample *v;
	size_t count;
	size_t capacity;
};
void expr_sample_buffer_append(struct expr_sample_buffer *buf, int64_t time_ms, double value);

/* One series as a source lists it. All pointers stay valid for the whole evaluation. */
struct expr_series {
	const char *name;
	const struct label *labels; /* sorted by name, without "__name__" */
	size_t label_count;
	const void *handle; /* the source's own reference, passed back to read() */
	/* Optional: the labels with "__name__" at its sorted place (label_count + 1 of them),
	 * valid as long as the others; NULL makes the engine build them. */
	const struct label *named_labels;
};

typedef void (*expr_series_fn)(void *arg, const struct expr_series *series);

struct expr_source {
	void *ctx;
	/*
	 * Calls fn once for every series that passes all `count` matchers (at least one of
	 * them is not satisfied by an empty value, so a source never has to list everything
	 * for an empty selector). The order of calls does not matter.
	 */
	void (*select)(void *ctx, const struct expr_matcher *matchers, size_t count,
		       expr_series_fn fn, void *arg);
	/*
	 * Appends, oldest first, the samples of `handle` whose time is in [from_ms, to_ms],
	 * stale markers included.
	 */
	void (*read)(void *ctx, const void *handle, int64_t from_ms, int64_t to_ms,
		     struct expr_sample_buffer *buf);
	/*
	 * Optional shortcut for instant selectors: stores the latest sample of `handle` whose
	 * time is in [from_ms, to_ms] (a stale marker included) and returns true, or returns
	 * false when there is none. NULL makes the engine use read().
	 */
	bool (*latest)(void *ctx, const void *handle, int64_t from_ms, int64_t to_ms,
		       struct expr_sample *out);
};

/* Position of an expression in its file: the first character of the YAML string. */
struct expr_location {
	const char *file;
	int line;
	int column;
};

struct expr;

/*
 * Parses and type checks `text`. Returns NULL on error and sets *error to a message the
 * caller frees: "FILE:LINE:COLUMN: PROBLEM at column N of expr, expected WHAT" (the
 * prefix is left out when loc is NULL; "line L, column N" when the text spans lines).
 * Invalid regexes, unknown functions and type errors are reported the same way.
 */
struct expr *expr_parse(const char *text, const struct expr_location *loc, char **error);
void expr_free(struct expr *e);

/* Type of the expression's value: scalar, instant vector, range vector or string. */
enum expr_type expr_result_type(const struct expr *e);

/* A bare selector: the API lists series by it and reads range selectors' samples. */
struct expr_selector {
	const struct expr_matcher *matchers; /* the metric name, when given, first */
	size_t count;
	int64_t range_ms; /* 0 for an instant selector */
	int64_t offset_ms;
};

/*
 * Fills *out and returns true when the whole expression is one selector ("up{job="a"}" or
 * "up[5m] offset 1m"); returns false for anything else. The matchers belong to e.
 */
bool expr_as_selector(const struct expr *e, struct expr_selector *out);

/*
 * Longest span of history the expression reads back from the evaluation time: the
 * largest range (or the lookback for instant selectors) plus its offset. Size the
 * sample windows from the maximum over every loaded rule.
 */
int64_t expr_history_ms(const struct expr *e);

/* Whether a selector of the expression can match series of `metric` (by its name alone). */
bool expr_may_select(const struct expr *e, const char *metric);

/*
 * Renders the parsed expression in canonical form (the operands of every binary operator
 * in parentheses when they are binary operations themselves), which parses back to the
 * same tree. The caller frees the string.
 */
char *expr_format(const struct expr *e);

/* One element of an instant vector result. */
struct expr_element {
	const struct label *labels; /* sorted by name; "__name__" included when kept */
	size_t label_count;
	double value;
};

struct expr_arena;

struct expr_result {
	enum expr_type type; /* scalar, instant vector or string */
	double scalar;
	const char *string;
	struct expr_element *elements; /* sorted by label set */
	size_t count;
	/* Evaluation error (for instance a one-to-one match that found many-to-one). */
	const char *error;
	struct expr_arena *arena; /* owns everything above except the source's strings */
};

/*
 * Evaluates `e` at time_ms over `src`. Returns 0 with the value in *out, or -1 with
 * out->error set; free *out with expr_result_free() in both cases. Label strings may
 * point into the source: they stay valid until the source's series change.
 */
int expr_eval(const struct expr *e, const struct expr_source *src, int64_t time_ms,
	      struct expr_result *out);
void expr_result_free(struct expr_result *r);

#endif
