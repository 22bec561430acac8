/*
 * Rule files: YAML files in Prometheus's rule-file format (`groups:` of alerting and
 * recording rules), extended with threshold rules inside groups and a top-level `slos:`
 * list. Loading parses and checks everything (expressions, types, templates, durations,
 * names) and reports every error of every file as "FILE:LINE:COLUMN: KEY.PATH: PROBLEM",
 * like the main config. A rule set is immutable once loaded; a reload builds a new one.
 *
 *   groups:
 *     - name: NAME                 unique across all files
 *       interval: 30s              default: the caller's default interval
 *       limit: 0                   alerts (or series) a rule may produce; 0 = no limit
 *       rules:
 *         - alert: NAME            alerting rule
 *           expr: EXPR             instant vector or scalar
 *           for: 5m
 *           keep_firing_for: 0s
 *           labels: {NAME: TEMPLATE}
 *           annotations: {NAME: TEMPLATE}
 *           flapping: {low: 5, high: 20}    percentages; high 0 turns detection off
 *         - record: NAME           recording rule (metric name)
 *           expr: EXPR
 *           labels: {NAME: VALUE}
 *         - alert: NAME            threshold rule
 *           threshold:
 *             expr: EXPR           the raw value, not a comparison
 *             direction: above     or below
 *             warn: 80             at least one of warn and crit
 *             crit: 90
 *             clear_warn: 75       hysteresis; default: warn
 *             clear_crit: 85       default: crit
 *             warn_for: 0s         default: the rule's `for`
 *             crit_for: 0s         default: the rule's `for`
 *             clear_for: 0s        how long past the clear value before a level drops
 *           no_data: keep          keep, alert or resolve
 *           labels, annotations, flapping as above
 *   slos:
 *     - name: NAME
 *       objective: 99.9            percent, above 0 and below 100
 *       period: 30d                also spelt `window`
 *       probe: NAME                availability of a probe; or
 *       latency: {probe: NAME, threshold: 250ms}; or
 *       good: EXPR / errors: EXPR together with total: EXPR (counters)
 *       alerts: [{severity: page, long: 1h, short: 5m, burn_rate: 14.4}, ...]
 *       min_events: 10
 *       exclude: [{start: RFC3339, end: RFC3339}]
 *       labels: {NAME: VALUE}
 */
#ifndef TOCSIN_RULES_H
#define TOCSIN_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/alert.h"
#include "collector/expr.h"
#include "collector/series.h"
#include "collector/slo.h"
#include "collector/template.h"

enum rule_kind {
	RULE_ALERT,
	RULE_RECORD,
	RULE_THRESHOLD,
};

/* A label or annotation whose value is a template (recording rules: constant text). */
struct rule_template {
	char *name;
	char *text;
	struct template *tmpl;
};

struct rule {
	enum rule_kind kind;
	char *name;     /* alert name or recorded metric name */
	char *key;      /* stable across reloads: "GROUP/NAME", "#N" added for the Nth repeat */
	char *location; /* "FILE:LINE:COLUMN" of the rule's entry */
	char *expr_text;
	struct expr *expr;
	struct alert_params params;   /* alert and threshold rules */
	struct rule_template *labels; /* sorted by name */
	size_t label_count;
	struct rule_template *annotations; /* sorted by name */
	size_t annotation_count;
};

struct rule_group {
	char *name;
	char *file;
	int64_t interval_ms;
	uint64_t limit;
	struct rule *rules;
	size_t rule_count;
};

struct rule_set {
	struct rule_group *groups;
	size_t group_count;
	struct slo_config *slos;
	size_t slo_count;
	char **files; /* the files loaded, sorted */
	size_t file_count;
	int64_t history_ms; /* the longest history any expression reads (expr_history_ms) */
	uint64_t hash;      /* of every file's text, to tell an unchanged set on reload */
};

/*
 * Expands the glob patterns (relative ones against base_dir, which may be NULL) and loads
 * every matching file, sorted by name. A pattern without a wildcard that matches nothing
 * is an error; a wildcard pattern matching nothing is not. default_interval_ms applies to
 * groups without `interval`. Returns NULL and sets *errors (caller frees, one error per
 * line) when anything is wrong; a set with no groups is valid.
 */
struct rule_set *rules_load(char *const *patterns, size_t pattern_count, const char *base_dir,
			    int64_t default_interval_ms, char **errors);

/* Loads one document from memory, `name` standing for its file in messages: tests. */
struct rule_set *rules_load_string(const char *name, const char *text, int64_t default_interval_ms,
				   char **errors);

void rules_free(struct rule_set *set);

size_t rules_count(const struct rule_set *set); /* rules across all groups */

#endif
