/*
 * Inhibit rules, as Alertmanager's `inhibit_rules`: while an alert that matches a rule's
 * source matchers fires, alerts that match its target matchers and have the same values
 * for the `equal` labels get no notifications. A label missing on both sides counts as
 * equal. An alert that matches both sides of a rule is never inhibited through that rule
 * by another alert that also matches both sides, so it cannot inhibit itself.
 */
#ifndef TOCSIN_INHIBIT_H
#define TOCSIN_INHIBIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerter/matcher.h"
#include "collector/series.h"

struct cfg_seq;

struct inhibit_rule {
	struct matcher_set source;
	struct matcher_set target;
	char **equal; /* label names, NULL-terminated */
	size_t equal_count;
	char *location; /* "file:line:column" of the rule, for messages */
};

/* An alert as inhibit_check() reads it; the pointers stay the caller's. */
struct inhibit_alert {
	const struct label *labels; /* not necessarily sorted */
	size_t label_count;
	uint64_t fingerprint;
};

/*
 * The firing alerts, as candidate sources. next() writes the next alert to *out and
 * returns true, or returns false at the end; inhibit_check() walks it once. Alerts that
 * are resolved must not be listed.
 */
struct inhibit_source_iter {
	void *ctx;
	bool (*next)(void *ctx, struct inhibit_alert *out);
};

/* The rule and the source alert that inhibit a target. */
struct inhibit_result {
	size_t rule; /* index in the rules array */
	uint64_t source_fingerprint;
};

/*
 * True when a firing alert from `sources` inhibits `target` under one of the rules; then
 * *why (when not NULL) names the first such source in iteration order, with the first
 * rule by which it does. The target itself is skipped when it is listed among the
 * sources. Pure; the cost is one pass over the sources.
 */
bool inhibit_check(const struct inhibit_rule *rules, size_t rule_count,
		   const struct inhibit_alert *target, struct inhibit_source_iter *sources,
		   struct inhibit_result *why);

/*
 * Reads item `index` of the `inhibit_rules` sequence: source_matchers, target_matchers
 * (or Alertmanager's older source_match, source_match_re, target_match, target_match_re
 * mappings) and equal. Errors are recorded with positions; returns 0 or -1, and *out
 * always needs inhibit_rule_clear().
 */
int inhibit_rule_read(struct cfg_seq *seq, size_t index, struct inhibit_rule *out);
void inhibit_rule_clear(struct inhibit_rule *rule);

#endif
