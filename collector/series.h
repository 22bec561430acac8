/*
 * The series registry: every time series tocsin knows, interned once. A series is a
 * metric name plus a label set sorted by name; series of one metric name form a family
 * with one HELP text and one type. The registry keeps the last value of each series and
 * the link to its archive file. Loop thread only: no locking.
 */
#ifndef TOCSIN_SERIES_H
#define TOCSIN_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum metric_type {
	METRIC_GAUGE,
	METRIC_COUNTER,
	/* A gauge whose value is always 1 and whose labels carry text (a version, the last
	 * failure's reason): exported as a gauge, never archived. */
	METRIC_INFO,
	/* One of the three families of a histogram, NAME_bucket (with `le`), NAME_count and
	 * NAME_sum, all with this type and the same help: exported as one histogram NAME. */
	METRIC_HISTOGRAM,
};

/* A metric's static description; probes keep these as `static const` tables. */
struct metric_desc {
	const char *name;
	const char *help;
	enum metric_type type;
};

struct label {
	const char *name;
	const char *value;
};

/*
 * FNV-1a over each name and value with its terminating NUL (so {a="bc"} and {ab="c"}
 * differ), in the given order, from `seed` (HASH_FNV_OFFSET to start). The values are
 * stored (alert fingerprints, file names): they must never change.
 */
uint64_t label_set_hash(uint64_t seed, const struct label *v, size_t count);

/* strcmp(a, b) == 0, without the call when the first characters differ: label names are
 * compared by the million in an evaluation, and most pairs differ at once. */
static inline bool label_name_equal(const char *a, const char *b)
{
	return a[0] == b[0] && strcmp(a, b) == 0;
}

struct store_file;

struct series {
	uint64_t id;
	struct series_family *family;
	size_t family_pos;    /* index in family->series: registry use */
	struct label *labels; /* copies in the series' own block, sorted by name */
	/* The same with "__name__" (the family's name) at its sorted place: label_count + 1
	 * entries, read-only. */
	const struct label *named_labels;
	size_t label_count;
	double value;
	int64_t time_ms;          /* wall-clock time of the last value; 0 before the first */
	bool stale;               /* not written by its owner's last run: not exported */
	const void *owner;        /* who writes it (a scheduler probe instance), NULL if shared */
	bool rule_owned;          /* owner is the evaluator (recording rules, ALERTS): probes
				     must not take it over */
	uint64_t owner_seq;       /* owner's run counter at the last write */
	struct store_file *file;  /* archive, NULL when not archived */
	uint64_t hash;            /* of name and labels: registry use */
	struct series *hash_next; /* registry use */
	/* The sample window's own cache of where this series' window is: valid only while
	 * window_serial is the serial of the store that set it (collector/window.c). */
	void *window;
	uint64_t window_serial;
};

struct series_label_index;

struct series_family {
	char *name;
	char *help;
	enum metric_type type;
	struct series **series; /* in no particular order */
	size_t count;
	size_t capacity;
	bool type_conflict_logged;
	/* Label indexes for series_family_with_label(), NULL until the first lookup. */
	struct series_label_index *index;
};

struct series_registry;

struct series_registry *series_registry_new(void);
void series_registry_free(struct series_registry *reg);

/*
 * Looks up an existing series without creating one: the labels must be sorted by name and
 * valid UTF-8 (an invalid value is stored repaired, so it is not found here). Returns NULL
 * when there is none; series_intern() is the general way.
 */
struct series *series_find_sorted(const struct series_registry *reg, const char *name,
				  const struct label *sorted, size_t label_count);
/*
 * Returns the series for desc->name and the given labels (any order; copied), creating it
 * when new. Returns NULL when the name or a label name is not valid in the Prometheus
 * exposition format, when a label name repeats, or when the family exists with another
 * type; each such error is logged once per family.
 */
struct series *series_intern(struct series_registry *reg, const struct metric_desc *desc,
			     const struct label *labels, size_t label_count);

/*
 * Finds the family's series whose label `name` is `value` (not empty), in creation
 * order, through an index built on the first lookup of `name`. *out stays valid until the
 * family gains or loses a series. Returns the count.
 */
size_t series_family_with_label(struct series_family *fam, const char *name, const char *value,
				struct series *const **out);
/* Drops the family's label indexes; the registry calls it when the family changes. */
void series_family_index_drop(struct series_family *fam);

/* Sets value and time and clears the stale mark. */
void series_set(struct series *s, double value, int64_t time_ms);

/* Removes and frees one series; empty families are removed too. */
void series_remove(struct series_registry *reg, struct series *s);

/* Called by series_remove() before a series is freed, so that per-series data kept
 * elsewhere (sample windows) goes with it. One hook per registry. */
typedef void series_remove_fn(void *arg, struct series *s);
void series_registry_on_remove(struct series_registry *reg, series_remove_fn *fn, void *arg);

size_t series_registry_count(const struct series_registry *reg);
/* Families sorted by name, valid until the next series_intern or series_remove. */
size_t series_registry_family_count(const struct series_registry *reg);
struct series_family *series_registry_family(const struct series_registry *reg, size_t index);

/* Exposition-format name rules: [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]*. */
bool series_valid_metric_name(const char *name);
bool series_valid_label_name(const char *name);

/* The type's name in the exposition format ("counter", "gauge" or "histogram"). */
const char *series_type_name(enum metric_type type);

/* Value of a label, or NULL. */
const char *series_label(const struct series *s, const char *name);

#endif
