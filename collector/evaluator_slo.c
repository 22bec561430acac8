/*
 * SLOs inside the evaluator: every EV_SLO_INTERVAL_MS each SLO reads its SLI into its
 * minute buckets (collector/slo.h), exports its objective, SLI ratios, burn rates and
 * remaining budget, and advances one alert instance per burn-rate window pair. A pair
 * whose windows have no events leaves its alert as it is: an idle period neither fires
 * nor resolves a burn-rate alert.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/evaluator_impl.h"
#include "collector/log.h"
#include "collector/units.h"
#include "collector/window.h"
#include "collector/xalloc.h"

#define SLO_ALERTNAME "SLOErrorBudgetBurn"

static const struct metric_desc desc_objective = {
    "tocsin_slo_objective_ratio", "The SLO's objective as a ratio (99.9 % is 0.999).",
    METRIC_GAUGE};
static const struct metric_desc desc_sli = {
    "tocsin_slo_sli_ratio", "Good events over all events in the window; absent without events.",
    METRIC_GAUGE};
static const struct metric_desc desc_burn = {
    "tocsin_slo_burn_rate",
    "How fast the window spends the error budget: 1 spends it exactly over the period.",
    METRIC_GAUGE};
static const struct metric_desc desc_budget = {
    "tocsin_slo_error_budget_remaining_ratio",
    "Share of the period's error budget not yet spent; negative once overspent.", METRIC_GAUGE};

static void slo_free(struct evaluator *ev, struct ev_slo *s, bool keep_alerts)
{
	if (!keep_alerts)
		for (size_t k = 0; k < s->alerts.count; k++)
			ev_unexport_alert(ev, s->alerts.inst[k]);
	if (!s->alerts.taken)
		ev_rule_clear(&s->alerts);
	slo_state_free(s->st);
}

void ev_slo_apply(struct evaluator *ev, const struct rule_set *set, int64_t now_ms)
{
	struct ev_slo *old = ev->slos;
	size_t old_count = ev->slo_count;

	ev->slo_count = set != NULL ? set->slo_count : 0;
	ev->slos = xcalloc(ev->slo_count ? ev->slo_count : 1, sizeof(*ev->slos));
	for (size_t k = 0; k < ev->slo_count; k++) {
		struct ev_slo *s = &ev->slos[k];

		s->c = &set->slos[k];
		snprintf(s->key, sizeof(s->key), "slo/%s", s->c->name);
		s->st = slo_state_new(s->c);
		if (ev->db != NULL && slo_state_restore(s->st, ev->db, now_ms) < 0)
			log_warn("evaluator", NULL,
				 "slo %s: cannot read its stored events; the budget restarts empty",
				 s->c->name);
		for (size_t j = 0; j < old_count; j++) {
			if (!old[j].alerts.taken && strcmp(old[j].key, s->key) == 0) {
				s->alerts = old[j].alerts;
				old[j].alerts.taken = true;
				break;
			}
		}
		if (s->alerts.key == NULL) {
			throttle_init(&s->alerts.error_log, THROTTLE_DEFAULT_INITIAL_MS,
				      THROTTLE_DEFAULT_MAX_MS);
			s->alerts.key = s->key;
			ev_restore_rule(ev, &s->alerts);
		}
		s->alerts.key = s->key;
		s->alerts.alertname = SLO_ALERTNAME;
		s->alerts.group_name = "slos";
		s->alerts.rule = NULL;
		s->alerts.threshold = false;
	}
	for (size_t j = 0; j < old_count; j++)
		slo_free(ev, &old[j], old[j].alerts.taken);
	free(old);
}

void ev_slo_free_all(struct evaluator *ev)
{
	for (size_t k = 0; k < ev->slo_count; k++)
		slo_free(ev, &ev->slos[k], true);
	free(ev->slos);
	ev->slos = NULL;
	ev->slo_count = 0;
}

/* The SLO's own labels plus `slo` and, when given, `window`. */
static void slo_labels(const struct ev_slo *s, const char *window, struct ev_labels *out)
{
	ev_labels_clear(out);
	for (size_t k = 0; k < s->c->label_count; k++)
		ev_labels_set(out, s->c->labels[k].name, s->c->labels[k].value);
	ev_labels_set(out, "slo", s->c->name);
	if (window != NULL)
		ev_labels_set(out, "window", window);
	ev_labels_sort(out);
}

static void put(struct evaluator *ev, const struct ev_slo *s, const struct metric_desc *d,
		const char *window, bool have, double value, int64_t now_ms)
{
	struct ev_labels *b = &ev->scratch;
	struct series *series;

	slo_labels(s, window, b);
	series = ev_series_claim(ev, ev, d, b->v, b->count, NULL);
	if (series == NULL)
		return;
	if (have)
		ev_series_write(ev, series, value, now_ms, EV_SLO_INTERVAL_MS / 1000);
	else
		ev_series_stale(ev, series, now_ms);
}

static void put_window(struct evaluator *ev, const struct ev_slo *s, int64_t window_ms,
		       int64_t now_ms)
{
	char w[32];
	double v;
	bool have;

	units_format_duration((uint64_t)window_ms, w, sizeof(w));
	have = slo_sli_ratio(s->st, now_ms, window_ms, &v);
	put(ev, s, &desc_sli, w, have, v, now_ms);
	have = slo_burn_rate(s->st, now_ms, window_ms, &v);
	put(ev, s, &desc_burn, w, have, v, now_ms);
}

static void export_slo(struct evaluator *ev, const struct ev_slo *s, int64_t now_ms)
{
	double v;
	bool have;

	put(ev, s, &desc_objective, NULL, true, s->c->objective, now_ms);
	have = slo_budget_remaining(s->st, now_ms, &v);
	put(ev, s, &desc_budget, NULL, have, v, now_ms);
	put_window(ev, s, s->c->period_ms, now_ms);
	for (size_t k = 0; k < s->c->alert_count; k++) {
		const struct slo_alert_window *a = &s->c->alerts[k];
		bool seen_long = false, seen_short = false;

		/* Each distinct window once. */
		for (size_t j = 0; j < k; j++) {
			const struct slo_alert_window *b = &s->c->alerts[j];

			seen_long |= b->long_ms == a->long_ms || b->short_ms == a->long_ms;
			seen_short |= b->long_ms == a->short_ms || b->short_ms == a->short_ms;
		}
		if (!seen_long && a->long_ms != s->c->period_ms)
			put_window(ev, s, a->long_ms, now_ms);
		if (!seen_short && a->short_ms != s->c->period_ms && a->short_ms != a->long_ms)
			put_window(ev, s, a->short_ms, now_ms);
	}
}

static void eval_alert_window(struct evaluator *ev, struct ev_slo *s,
			      const struct slo_alert_window *w, int64_t now_ms)
{
	static const struct alert_params params = {.flap_high = 0};
	struct ev_labels *id = &ev->id_labels;
	struct ev_labels *ann = &ev->ann_labels;
	char lw[32], sw[32];
	enum slo_condition cond = slo_alert_condition(s->st, w, now_ms);
	struct ev_instance *i;
	uint64_t fp;

	units_format_duration((uint64_t)w->long_ms, lw, sizeof(lw));
	units_format_duration((uint64_t)w->short_ms, sw, sizeof(sw));
	slo_labels(s, NULL, id);
	ev_labels_set(id, "alertname", SLO_ALERTNAME);
	ev_labels_set(id, "severity", w->severity);
	ev_labels_set(id, "long_window", lw);
	ev_labels_set(id, "short_window", sw);
	ev_labels_sort(id);
	fp = ev_labels_fingerprint(id->v, id->count);
	i = ev_instance_find(&s->alerts, fp);
	if (cond == SLO_CONDITION_UNKNOWN)
		return; /* no events in a window: the alert stays as it is */
	if (i == NULL) {
		if (cond == SLO_CONDITION_FALSE)
			return;
		i = ev_instance_add(&s->alerts, fp, id->v, id->count);
	}

	{
		double burn_long = NAN, burn_short = NAN;
		char summary[512];
		char description[512];

		slo_burn_rate(s->st, now_ms, w->long_ms, &burn_long);
		slo_burn_rate(s->st, now_ms, w->short_ms, &burn_short);
		snprintf(summary, sizeof(summary),
			 "SLO %s is spending its error budget %.4g times too fast", s->c->name,
			 burn_long);
		snprintf(description, sizeof(description),
			 "Burn rate %.4g over %s and %.4g over %s, above %.4g in both; at this "
			 "rate the budget of the %.4g %% objective lasts %.4g%% of the period.",
			 burn_long, lw, burn_short, sw, w->factor, s->c->objective * 100.0,
			 burn_long > 0 ? 100.0 / burn_long : INFINITY);
		ev_labels_clear(ann);
		ev_labels_set(ann, "description", description);
		ev_labels_set(ann, "summary", summary);
		ev_labels_sort(ann);
		ev_instance_set_annotations(i, ann->v, ann->count);
		i->seen_value = burn_long;
	}

	s->alerts.eval_seq++;
	if (ev_step_instance(ev, &s->alerts, i, &params, cond == SLO_CONDITION_TRUE, i->seen_value,
			     now_ms, 0)) {
		for (size_t k = 0; k < s->alerts.count; k++)
			if (s->alerts.inst[k] == i)
				ev_instance_remove(&s->alerts, k);
	}
}

static void eval_slo(struct evaluator *ev, struct ev_slo *s, int64_t now_ms)
{
	struct expr_source src;
	char *error = NULL;

	window_source(ev->ws, ev->reg, &src);
	if (slo_observe(s->st, &src, now_ms, ev->db, &error) < 0) {
		char ids[300];

		ev->failures_total++;
		if (throttle_fail(&s->alerts.error_log, (uint64_t)now_ms, NULL))
			log_warn("evaluator", log_ids(ids, sizeof(ids), "slo", s->c->name, NULL),
				 "cannot read the SLI: %s; the budget keeps its last events",
				 error != NULL ? error : "unknown error");
		free(error);
	} else {
		throttle_ok(&s->alerts.error_log, NULL);
	}
	export_slo(ev, s, now_ms);
	for (size_t k = 0; k < s->c->alert_count; k++)
		eval_alert_window(ev, s, &s->c->alerts[k], now_ms);
	slo_prune(s->st, ev->db, now_ms);
}

void ev_slo_eval_all(struct evaluator *ev, int64_t now_ms)
{
	if (ev->slo_count == 0)
		return;
	if (ev->db != NULL)
		statedb_begin(ev->db);
	for (size_t k = 0; k < ev->slo_count; k++)
		eval_slo(ev, &ev->slos[k], now_ms);
	if (ev->db != NULL && statedb_commit(ev->db) < 0)
		log_error("evaluator", NULL,
			  "the state database did not take the SLO evaluation's changes");
	ev_deliver_pending(ev);
}

const struct slo_state *evaluator_slo(const struct evaluator *ev, size_t index)
{
	return index < ev->slo_count ? ev->slos[index].st : NULL;
}
