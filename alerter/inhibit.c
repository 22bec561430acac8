/*
 * Inhibit rules: reading them from the config and deciding whether a firing alert
 * inhibits another one.
 */
#include "alerter/inhibit.h"

#include <stdlib.h>
#include <string.h>

#include "collector/cfg.h"
#include "collector/xalloc.h"

void inhibit_rule_clear(struct inhibit_rule *rule)
{
	matcher_set_clear(&rule->source);
	matcher_set_clear(&rule->target);
	cfg_strv_free(rule->equal);
	free(rule->location);
	memset(rule, 0, sizeof(*rule));
}

static void inhibit_read_equal(struct cfg_map *m, struct inhibit_rule *rule)
{
	char quoted[CFG_QUOTE_SIZE];
	struct cfg_seq seq;

	rule->equal = xcalloc(1, sizeof(*rule->equal));
	if (cfg_get_seq(m, "equal", &seq) != 1)
		return;
	rule->equal = xrealloc(rule->equal, (cfg_seq_count(&seq) + 1) * sizeof(*rule->equal));
	for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
		char *name;

		rule->equal[rule->equal_count] = NULL;
		if (cfg_seq_string(&seq, i, &name) != 1)
			continue;
		if (!series_valid_label_name(name)) {
			cfg_seq_error(&seq, i,
				      "invalid label name %s (accepted: letters, digits and \"_\", "
				      "not starting with a digit)",
				      cfg_quote(name, quoted, sizeof quoted));
			free(name);
			continue;
		}
		rule->equal[rule->equal_count++] = name;
	}
	rule->equal[rule->equal_count] = NULL;
}

int inhibit_rule_read(struct cfg_seq *seq, size_t index, struct inhibit_rule *out)
{
	char where[CFG_PATH_MAX + 64];
	struct cfg_map m;
	size_t errors = cfg_error_count(seq->cfg);

	memset(out, 0, sizeof(*out));
	if (cfg_seq_map(seq, index, &m) != 1) {
		cfg_map_discard(&m);
		return -1;
	}
	out->location = xstrdup(cfg_location(&m, NULL, where, sizeof where));
	matcher_set_read(&m, "source_matchers", "source_match", "source_match_re", &out->source);
	matcher_set_read(&m, "target_matchers", "target_match", "target_match_re", &out->target);
	inhibit_read_equal(&m, out);
	cfg_map_finish(&m);
	return cfg_error_count(seq->cfg) > errors ? -1 : 0;
}

static bool inhibit_equal_labels(const struct inhibit_rule *rule, const struct inhibit_alert *a,
				 const struct inhibit_alert *b)
{
	for (size_t i = 0; i < rule->equal_count; i++) {
		const char *x = matcher_label_value(a->labels, a->label_count, rule->equal[i]);
		const char *y = matcher_label_value(b->labels, b->label_count, rule->equal[i]);

		/* A missing label and an empty one are the same, as in Prometheus. */
		if (strcmp(x != NULL ? x : "", y != NULL ? y : "") != 0)
			return false;
	}
	return true;
}

/* The rules whose target side the target matches, and whether it matches the source side too. */
struct inhibit_candidate {
	size_t rule;
	bool two_sided;
};

bool inhibit_check(const struct inhibit_rule *rules, size_t rule_count,
		   const struct inhibit_alert *target, struct inhibit_source_iter *sources,
		   struct inhibit_result *why)
{
	struct inhibit_candidate *candidates = xcalloc(rule_count + 1, sizeof(*candidates));
	size_t candidate_count = 0;
	struct inhibit_alert source;
	bool inhibited = false;

	for (size_t i = 0; i < rule_count; i++) {
		if (!matcher_set_matches(&rules[i].target, target->labels, target->label_count))
			continue;
		candidates[candidate_count].rule = i;
		candidates[candidate_count].two_sided =
		    matcher_set_matches(&rules[i].source, target->labels, target->label_count);
		candidate_count++;
	}
	while (candidate_count > 0 && !inhibited && sources->next(sources->ctx, &source)) {
		if (source.fingerprint == target->fingerprint)
			continue;
		for (size_t k = 0; k < candidate_count && !inhibited; k++) {
			const struct inhibit_rule *rule = &rules[candidates[k].rule];

			if (!matcher_set_matches(&rule->source, source.labels,
						 source.label_count) ||
			    !inhibit_equal_labels(rule, target, &source))
				continue;
			/* Alerts on both sides would otherwise inhibit each other and all go
			 * silent; Alertmanager disregards such sources for such targets. */
			if (candidates[k].two_sided &&
			    matcher_set_matches(&rule->target, source.labels, source.label_count))
				continue;
			inhibited = true;
			if (why != NULL) {
				why->rule = candidates[k].rule;
				why->source_fingerprint = source.fingerprint;
			}
		}
	}
	free(candidates);
	return inhibited;
}
