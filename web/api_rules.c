/*
 * /rules and /slos: the loaded rule groups with each rule's last evaluation, in the shape
 * of Prometheus's /api/v1/rules, and each SLO's objective, error budget and burn rates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/evaluator.h"
#include "collector/rules.h"
#include "collector/slo.h"
#include "collector/units.h"
#include "web/api_impl.h"

static json_t *templates_json(const struct rule_template *v, size_t count)
{
	json_t *o = json_object();

	for (size_t i = 0; i < count; i++)
		json_object_set_new(o, v[i].name, json_string(v[i].text));
	return o;
}

static json_t *rule_json(const struct rule *rule, const struct evaluator_rule_status *st)
{
	const char *health = st->last_eval_ms == 0    ? "unknown"
			     : st->last_error != NULL ? "err"
						      : "ok";
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:o, s:f, s:I, s:o, s:o}", "name",
			      rule->name, "key", rule->key, "location", rule->location, "query",
			      rule->expr_text, "health", health, "lastError", st->last_error,
			      "lastEvaluation", api_json_time(st->last_eval_ms), "evaluationTime",
			      st->last_duration_s, "failures", (json_int_t)st->failures, "labels",
			      templates_json(rule->labels, rule->label_count), "annotations",
			      templates_json(rule->annotations, rule->annotation_count));

	if (rule->kind == RULE_RECORD) {
		json_object_set_new(o, "type", json_string("recording"));
	} else {
		json_object_set_new(o, "type", json_string("alerting"));
		json_object_set_new(o, "threshold", json_boolean(rule->kind == RULE_THRESHOLD));
		json_object_set_new(o, "duration", json_real((double)rule->params.for_ms / 1000.0));
		json_object_set_new(o, "instances", json_integer((json_int_t)st->instance_count));
	}
	return o;
}

void api_handle_rules(struct api_request *r)
{
	const struct evaluator *ev = r->api->src.ev;
	const struct rule_set *set = evaluator_rules(ev);
	json_t *groups = json_array();

	for (size_t g = 0; set != NULL && g < set->group_count; g++) {
		const struct rule_group *rg = &set->groups[g];
		struct evaluator_group_status gs = {0};
		json_t *rules = json_array();

		evaluator_group_status(ev, g, &gs);
		for (size_t k = 0; k < rg->rule_count; k++) {
			struct evaluator_rule_status st = {0};

			evaluator_rule_status(ev, g, k, &st);
			json_array_append_new(rules, rule_json(&rg->rules[k], &st));
		}
		json_array_append_new(
		    groups,
		    json_pack("{s:s, s:s, s:f, s:o, s:f, s:I, s:I, s:o}", "name", rg->name, "file",
			      rg->file, "interval", (double)rg->interval_ms / 1000.0,
			      "lastEvaluation", api_json_time(gs.last_eval_ms), "evaluationTime",
			      gs.last_duration_s, "missedIterations", (json_int_t)gs.missed,
			      "failures", (json_int_t)gs.failures, "rules", rules));
	}
	api_reply_data(r->req, json_pack("{s:o}", "groups", groups));
}

static const char *sli_name(enum slo_sli_kind kind)
{
	switch (kind) {
	case SLO_SLI_AVAILABILITY:
		return "availability";
	case SLO_SLI_LATENCY:
		return "latency";
	case SLO_SLI_GOOD_TOTAL:
		return "good_total";
	case SLO_SLI_ERRORS_TOTAL:
		return "errors_total";
	}
	return "unknown";
}

/* A ratio, or null when the window has no events ("no data"). */
static json_t *ratio_json(bool have, double value)
{
	return have ? json_real(value) : json_null();
}

/* Burn rates over every distinct window of the SLO's alerts. */
static json_t *burn_rates_json(const struct slo_config *c, const struct slo_state *st,
			       int64_t now_ms)
{
	json_t *list = json_array();
	json_t *seen = json_object();

	for (size_t i = 0; i < c->alert_count; i++) {
		int64_t windows[2] = {c->alerts[i].long_ms, c->alerts[i].short_ms};

		for (size_t k = 0; k < 2; k++) {
			char name[32];
			double rate = 0;
			bool have;

			units_format_duration((uint64_t)windows[k], name, sizeof(name));
			if (json_object_get(seen, name) != NULL)
				continue;
			json_object_set_new(seen, name, json_true());
			have = st != NULL && slo_burn_rate(st, now_ms, windows[k], &rate);
			json_array_append_new(list, json_pack("{s:s, s:f, s:o}", "window", name,
							      "windowSeconds",
							      (double)windows[k] / 1000.0, "rate",
							      ratio_json(have, rate)));
		}
	}
	json_decref(seen);
	return list;
}

void api_handle_slos(struct api_request *r)
{
	const struct evaluator *ev = r->api->src.ev;
	const struct rule_set *set = evaluator_rules(ev);
	json_t *list = json_array();

	for (size_t i = 0; set != NULL && i < set->slo_count; i++) {
		const struct slo_config *c = &set->slos[i];
		const struct slo_state *st = evaluator_slo(ev, i);
		double budget = 0, sli = 0;
		bool have_budget = st != NULL && slo_budget_remaining(st, r->now_ms, &budget);
		bool have_sli = st != NULL && slo_sli_ratio(st, r->now_ms, c->period_ms, &sli);

		json_array_append_new(
		    list, json_pack("{s:s, s:s, s:f, s:f, s:s, s:s?, s:o, s:o, s:o, s:o}", "name",
				    c->name, "location", c->location, "objective", c->objective,
				    "periodSeconds", (double)c->period_ms / 1000.0, "sli",
				    sli_name(c->kind), "probe", c->probe, "sliRatio",
				    ratio_json(have_sli, sli), "budgetRemaining",
				    ratio_json(have_budget, budget), "burnRates",
				    burn_rates_json(c, st, r->now_ms), "labels",
				    api_json_labels(c->labels, c->label_count)));
	}
	api_reply_data(r->req, list);
}
