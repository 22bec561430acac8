/*
 * Label matchers of the alerter: routes, inhibit rules and silences select alerts with
 * them. A matcher is written as in Alertmanager, `severity="page"`, `env!="test"`,
 * `service=~"db|web"` or `team!~"ops.*"`, and several matchers can share one string,
 * comma-separated and optionally in braces: `{severity="page", env!="test"}`. Regexes
 * are anchored at both ends and use the dialect of rule selectors (docs/rules.md): POSIX
 * extended plus (?i), (?:...) and \d. A missing label matches as the empty value.
 */
#ifndef TOCSIN_MATCHER_H
#define TOCSIN_MATCHER_H

#include <stdbool.h>
#include <stddef.h>

#include "collector/expr.h"
#include "collector/series.h"

struct cfg_map;

struct matcher {
	enum expr_match_op op;
	char *name;  /* owned */
	char *value; /* owned; the pattern as written for the regex operators */
	void *regex; /* compiled anchored regex_t for =~ and !~, NULL otherwise; private */
};

/* All matchers must pass (an empty set matches every alert). */
struct matcher_set {
	struct matcher *v;
	size_t count;
};

/*
 * Appends one matcher to set. Returns 0, or -1 with a message in error (no position in
 * it) when the name is not a valid label name or the regex does not compile.
 */
int matcher_set_add(struct matcher_set *set, const char *name, enum expr_match_op op,
		    const char *value, char *error, size_t size);

/*
 * Parses one string of matchers in Alertmanager's form and appends them to set. Values may
 * be double-quoted (with \" \\ \n \t escapes) or bare (up to the next comma or the
 * closing brace, spaces around them dropped). Returns 0, or -1 with the problem in error,
 * leaving set as it was.
 */
int matcher_parse(const char *text, struct matcher_set *set, char *error, size_t size);

/* True when the label `m->name` of labels (not necessarily sorted) passes. */
bool matcher_matches(const struct matcher *m, const struct label *labels, size_t count);
bool matcher_set_matches(const struct matcher_set *set, const struct label *labels, size_t count);

/*
 * Writes the set as `{a="x",b=~"y"}`, values escaped, in a canonical order (by name, then
 * operator, then value), so that sets that differ only in order print the same.
 * Returns a string the caller frees.
 */
char *matcher_set_format(const struct matcher_set *set);

/*
 * Writes labels, in the order given, as `{a="x",b="y"}` with the values escaped as in
 * matcher_set_format(). Returns a string the caller frees.
 */
char *matcher_format_labels(const struct label *labels, size_t count);

/* The value of label `name`, or NULL. Labels need not be sorted. */
const char *matcher_label_value(const struct label *labels, size_t count, const char *name);

/*
 * Reads matchers from a config mapping in the three forms Alertmanager accepts. The key
 * `list_key` is a list of matcher strings, `equal_key` a mapping of label names to values
 * that must be equal, and `regex_key` a mapping of label names to regexes. A NULL key name
 * leaves that form out. Errors are recorded with positions; returns 0 or -1.
 */
int matcher_set_read(struct cfg_map *m, const char *list_key, const char *equal_key,
		     const char *regex_key, struct matcher_set *set);

/* Frees the matchers and empties the set. */
void matcher_set_clear(struct matcher_set *set);

#endif
