/*
 * Unit tests of the evaluator on a virtual clock: alert lifecycle through rule files,
 * ALERTS and ALERTS_FOR_STATE, recording rules feeding later rules, threshold severity,
 * transitions handed on after persisting, restart persistence through the state
 * database, reloads that keep state, and SLO burn-rate alerts.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/evaluator.h"
#include "collector/series.h"
#include "collector/statedb.h"
#include "collector/window.h"

#define MIN_MS (60 * 1000)

static const struct metric_desc gauge_up = {"up", "test", METRIC_GAUGE};
static const struct metric_desc gauge_disk = {"disk_free_percent", "test", METRIC_GAUGE};
static const struct metric_desc counter_req = {"req_total", "test", METRIC_COUNTER};
static const struct metric_desc counter_err = {"err_total", "test", METRIC_COUNTER};

struct seen {
	size_t count;
	char text[64][160];
	int64_t ids[64];
};

static void on_transition(void *arg, const struct statedb_transition *t)
{
	struct seen *s = arg;
	const char *sev = "";

	for (size_t i = 0; i < t->label_count; i++)
		if (strcmp(t->labels[i].name, "severity") == 0)
			sev = t->labels[i].value;
	assert_true(s->count < 64);
	s->ids[s->count] = t->id;
	snprintf(s->text[s->count++], sizeof(s->text[0]), "%lld %s %s->%s %s%s",
		 (long long)(t->time_ms / 1000), t->alertname,
		 alert_state_name(t->change.from_state), alert_state_name(t->change.to_state), sev,
		 t->change.notify ? "" : " quiet");
}

struct fixture {
	struct series_registry *reg;
	struct window_store *ws;
	struct evaluator *ev;
	struct statedb *db;
	struct seen seen;
	char dir[64];
};

static void forget(void *arg, struct series *s)
{
	window_forget(arg, s);
}

static void fixture_start(struct fixture *f, const char *rules_yaml, bool with_db)
{
	char *errors = NULL;
	struct rule_set *set;

	if (f->reg == NULL) {
		f->reg = series_registry_new();
		f->ws = window_store_new(3600 * 1000, 100000);
		series_registry_on_remove(f->reg, forget, f->ws);
	}
	if (with_db && f->db == NULL) {
		if (f->dir[0] == '\0') {
			snprintf(f->dir, sizeof(f->dir), "/tmp/tocsin-ev-XXXXXX");
			assert_non_null(mkdtemp(f->dir));
		}
		f->db = statedb_open(f->dir, &errors);
		assert_non_null(f->db);
	}
	set = rules_load_string("rules.yml", rules_yaml, 15000, &errors);
	if (set == NULL)
		fail_msg("rules: %s", errors);
	f->ev = evaluator_new(NULL, f->reg, NULL, f->ws, f->db);
	evaluator_on_transition(f->ev, on_transition, &f->seen);
	evaluator_apply(f->ev, set, 0);
}

static void fixture_stop_evaluator(struct fixture *f)
{
	evaluator_free(f->ev);
	f->ev = NULL;
	if (f->db != NULL) {
		statedb_close(f->db);
		f->db = NULL;
	}
}

static void fixture_free(struct fixture *f)
{
	char cmd[128];

	fixture_stop_evaluator(f);
	series_registry_free(f->reg);
	window_store_free(f->ws);
	if (f->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
		assert_int_equal(system(cmd), 0);
	}
}

static struct series *input(struct fixture *f, const struct metric_desc *d, const char *job)
{
	struct label l = {"job", job};

	return series_intern(f->reg, d, &l, 1);
}

/* Appends a sample and evaluates at the same time, `seconds` from the start. */
static void step(struct fixture *f, struct series *s, int64_t seconds, double value)
{
	if (s != NULL)
		assert_int_equal(window_append(f->ws, s, seconds * 1000, value), 0);
	evaluator_eval_at(f->ev, seconds * 1000);
}

/* Value of the series `name` with label `label`=`value`, or NAN when absent or stale. */
static double series_value(struct fixture *f, const char *name, const char *label,
			   const char *value)
{
	for (size_t i = 0; i < series_registry_family_count(f->reg); i++) {
		struct series_family *fam = series_registry_family(f->reg, i);

		if (strcmp(fam->name, name) != 0)
			continue;
		for (size_t j = 0; j < fam->count; j++) {
			const char *v = label != NULL ? series_label(fam->series[j], label) : NULL;

			if (fam->series[j]->stale)
				continue;
			if (label == NULL || (v != NULL && strcmp(v, value) == 0))
				return fam->series[j]->value;
		}
	}
	return NAN;
}

static const char rules_down[] = "groups:\n"
				 "  - name: g\n"
				 "    interval: 15s\n"
				 "    rules:\n"
				 "      - alert: Down\n"
				 "        expr: up == 0\n"
				 "        for: 1m\n"
				 "        labels: {team: ops}\n"
				 "        annotations:\n"
				 "          summary: '{{ $labels.job }} is down ({{ $value }})'\n";

static void alert_goes_pending_firing_resolved(void **state)
{
	struct fixture f = {0};
	struct series *up;

	(void)state;
	fixture_start(&f, rules_down, false);
	up = input(&f, &gauge_up, "api");
	step(&f, up, 0, 1);
	step(&f, up, 15, 0);
	assert_int_equal(f.seen.count, 1);
	assert_string_equal(f.seen.text[0], "15 Down inactive->pending  quiet");
	assert_true(series_value(&f, "ALERTS", "alertstate", "pending") == 1);
	assert_true(series_value(&f, "ALERTS_FOR_STATE", "job", "api") == 15);
	step(&f, up, 30, 0);
	step(&f, up, 45, 0);
	step(&f, up, 60, 0);
	assert_int_equal(f.seen.count, 1);
	step(&f, up, 75, 0); /* 60 s after it became active */
	assert_int_equal(f.seen.count, 2);
	assert_string_equal(f.seen.text[1], "75 Down pending->firing ");
	assert_true(isnan(series_value(&f, "ALERTS", "alertstate", "pending")));
	assert_true(series_value(&f, "ALERTS", "alertstate", "firing") == 1);
	assert_true(series_value(&f, "ALERTS", "team", "ops") == 1);
	step(&f, up, 90, 1);
	assert_int_equal(f.seen.count, 3);
	assert_string_equal(f.seen.text[2], "90 Down firing->inactive ");
	assert_true(isnan(series_value(&f, "ALERTS", "alertstate", "firing")));
	fixture_free(&f);
}

struct annotation_probe {
	char summary[128];
	char state[16];
	size_t count;
};

static void grab_alert(void *arg, const struct evaluator_alert *a)
{
	struct annotation_probe *p = arg;

	p->count++;
	snprintf(p->state, sizeof(p->state), "%s", alert_state_name(a->inst->state));
	for (size_t i = 0; i < a->annotation_count; i++)
		if (strcmp(a->annotations[i].name, "summary") == 0)
			snprintf(p->summary, sizeof(p->summary), "%s", a->annotations[i].value);
}

static void annotations_are_rendered(void **state)
{
	struct fixture f = {0};
	struct series *up;
	struct annotation_probe p = {0};

	(void)state;
	fixture_start(&f, rules_down, false);
	up = input(&f, &gauge_up, "api");
	step(&f, up, 0, 0);
	evaluator_alerts(f.ev, grab_alert, &p);
	assert_int_equal(p.count, 1);
	assert_string_equal(p.state, "pending");
	assert_string_equal(p.summary, "api is down (0)");
	fixture_free(&f);
}

static const char rules_record[] = "groups:\n"
				   "  - name: rec\n"
				   "    interval: 15s\n"
				   "    rules:\n"
				   "      - record: job:up:sum\n"
				   "        expr: sum by (job) (up)\n"
				   "        labels: {source: rule}\n"
				   "      - alert: AllDown\n"
				   "        expr: job:up:sum == 0\n";

static void recording_rule_feeds_later_rules(void **state)
{
	struct fixture f = {0};
	struct series *up;

	(void)state;
	fixture_start(&f, rules_record, false);
	up = input(&f, &gauge_up, "api");
	step(&f, up, 0, 1);
	assert_true(series_value(&f, "job:up:sum", "source", "rule") == 1);
	step(&f, up, 15, 0);
	assert_true(series_value(&f, "job:up:sum", "job", "api") == 0);
	assert_int_equal(f.seen.count, 1);
	assert_string_equal(f.seen.text[0], "15 AllDown inactive->firing ");
	fixture_free(&f);
}

static void recorded_series_goes_stale_when_input_stops(void **state)
{
	struct fixture f = {0};
	struct series *up;

	(void)state;
	fixture_start(&f, rules_record, false);
	up = input(&f, &gauge_up, "api");
	step(&f, up, 0, 1);
	window_mark_stale(f.ws, up, 10 * 1000);
	step(&f, NULL, 15, 0);
	assert_true(isnan(series_value(&f, "job:up:sum", "job", "api")));
	fixture_free(&f);
}

static const char rules_threshold[] = "groups:\n"
				      "  - name: disk\n"
				      "    interval: 10s\n"
				      "    rules:\n"
				      "      - alert: DiskFree\n"
				      "        threshold:\n"
				      "          expr: disk_free_percent\n"
				      "          direction: below\n"
				      "          warn: 20\n"
				      "          crit: 10\n"
				      "        flapping: {low: 0, high: 0}\n";

static void threshold_rule_sets_severity(void **state)
{
	static const double samples[] = {50, 8, 15, 25, 15, 5};
	static const char *const expected[] = {
	    "10 DiskFree inactive->firing critical", "20 DiskFree firing->firing warning",
	    "30 DiskFree firing->inactive warning",  "40 DiskFree inactive->firing warning",
	    "50 DiskFree firing->firing critical",
	};
	struct fixture f = {0};
	struct series *disk;

	(void)state;
	fixture_start(&f, rules_threshold, false);
	disk = input(&f, &gauge_disk, "host");
	for (size_t i = 0; i < 6; i++)
		step(&f, disk, (int64_t)i * 10, samples[i]);
	assert_int_equal(f.seen.count, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(f.seen.text[i], expected[i]);
	assert_true(series_value(&f, "ALERTS", "severity", "critical") == 1);
	assert_true(isnan(series_value(&f, "ALERTS", "severity", "warning")));
	fixture_free(&f);
}

/* A restart between the third and fourth sample of the warn/crit sequence: the persisted
 * level (warning) is restored and no extra transition is emitted for it. */
static void threshold_restart_keeps_level(void **state)
{
	static const double samples[] = {50, 8, 15, 25, 15, 5};
	struct fixture f = {0};
	struct series *disk;

	(void)state;
	fixture_start(&f, rules_threshold, true);
	disk = input(&f, &gauge_disk, "host");
	for (size_t i = 0; i < 3; i++)
		step(&f, disk, (int64_t)i * 10, samples[i]);
	assert_int_equal(f.seen.count, 2);

	fixture_stop_evaluator(&f);
	fixture_start(&f, rules_threshold, true);
	step(&f, NULL, 20, 0); /* evaluated again right after the restart, same sample */
	assert_int_equal(f.seen.count, 2);
	assert_true(series_value(&f, "ALERTS", "severity", "warning") == 1);
	for (size_t i = 3; i < 6; i++)
		step(&f, disk, (int64_t)i * 10, samples[i]);
	assert_int_equal(f.seen.count, 5);
	assert_string_equal(f.seen.text[2], "30 DiskFree firing->inactive warning");
	assert_string_equal(f.seen.text[3], "40 DiskFree inactive->firing warning");
	assert_string_equal(f.seen.text[4], "50 DiskFree firing->firing critical");
	fixture_free(&f);
}

static void restart_resumes_pending_and_does_not_reannounce(void **state)
{
	struct fixture f = {0};
	struct series *up;

	(void)state;
	fixture_start(&f, rules_down, true);
	up = input(&f, &gauge_up, "api");
	step(&f, up, 0, 0); /* pending from 0 */
	step(&f, up, 15, 0);
	assert_int_equal(f.seen.count, 1);

	/* Restart: a new evaluator on the same state database. */
	fixture_stop_evaluator(&f);
	fixture_start(&f, rules_down, true);
	step(&f, up, 30, 0);
	step(&f, up, 45, 0);
	assert_int_equal(f.seen.count, 1);
	step(&f, up, 60, 0); /* 60 s after the original start, not after the restart */
	assert_int_equal(f.seen.count, 2);
	assert_string_equal(f.seen.text[1], "60 Down pending->firing ");

	fixture_stop_evaluator(&f);
	fixture_start(&f, rules_down, true);
	step(&f, up, 75, 0);
	step(&f, up, 90, 0);
	assert_int_equal(f.seen.count, 2); /* still firing: nothing new */
	assert_true(series_value(&f, "ALERTS", "alertstate", "firing") == 1);
	step(&f, up, 105, 1);
	assert_int_equal(f.seen.count, 3);
	assert_string_equal(f.seen.text[2], "105 Down firing->inactive ");
	assert_true(f.seen.ids[2] > f.seen.ids[1]);
	fixture_free(&f);
}

static void reload_keeps_instances(void **state)
{
	struct fixture f = {0};
	struct series *up;
	char *errors = NULL;
	struct rule_set *set;

	(void)state;
	fixture_start(&f, rules_down, false);
	up = input(&f, &gauge_up, "api");
	step(&f, up, 0, 0);
	set = rules_load_string("rules.yml", rules_down, 15000, &errors);
	assert_non_null(set);
	evaluator_apply(f.ev, set, 10 * 1000);
	step(&f, up, 15, 0);
	step(&f, up, 60, 0);
	assert_int_equal(f.seen.count, 2);
	assert_string_equal(f.seen.text[1], "60 Down pending->firing ");

	/* A set without the rule drops its alert. */
	set = rules_load_string("rules.yml", "groups: []\n", 15000, &errors);
	assert_non_null(set);
	evaluator_apply(f.ev, set, 61 * 1000);
	assert_true(isnan(series_value(&f, "ALERTS", "alertstate", "firing")));
	fixture_free(&f);
}

static const char rules_eval_error[] = "groups:\n"
				       "  - name: bad\n"
				       "    interval: 15s\n"
				       "    rules:\n"
				       "      - alert: OneToOne\n"
				       "        expr: up + on() up\n";

static void evaluation_error_keeps_state_and_counts(void **state)
{
	struct fixture f = {0};
	struct series *a, *b;

	(void)state;
	fixture_start(&f, rules_eval_error, false);
	a = input(&f, &gauge_up, "a");
	b = input(&f, &gauge_up, "b");
	window_append(f.ws, a, 0, 1);
	window_append(f.ws, b, 0, 1);
	evaluator_eval_at(f.ev, 0);
	assert_int_equal(evaluator_failures_total(f.ev), 1);
	assert_true(
	    series_value(&f, "tocsin_rule_evaluation_failures_total", "rule_group", "bad") == 1);
	fixture_free(&f);
}

static void skipped_turns_are_counted(void **state)
{
	struct fixture f = {0};
	struct series *up;

	(void)state;
	fixture_start(&f, rules_down, false);
	up = input(&f, &gauge_up, "api");
	step(&f, up, 0, 1);
	step(&f, up, 15, 1);
	assert_true(
	    series_value(&f, "tocsin_rule_group_iterations_missed_total", "rule_group", "g") == 0);
	step(&f, up, 60, 1); /* the turns at 30 and 45 were not run */
	assert_true(
	    series_value(&f, "tocsin_rule_group_iterations_missed_total", "rule_group", "g") == 2);
	fixture_free(&f);
}

static const char rules_slo[] = "slos:\n"
				"  - name: api\n"
				"    objective: 99\n"
				"    period: 1d\n"
				"    total: sum(req_total)\n"
				"    errors: sum(err_total)\n"
				"    alerts:\n"
				"      - {severity: page, long: 10m, short: 2m, burn_rate: 10}\n";

static void slo_alert_fires_and_exports(void **state)
{
	struct fixture f = {0};
	struct series *req, *err;
	double total = 0, errors = 0;
	int64_t fired_at = -1;

	(void)state;
	fixture_start(&f, rules_slo, false);
	req = input(&f, &counter_req, "api");
	err = input(&f, &counter_err, "api");
	/* 10 requests per 30 s; all fail from minute 20 on. */
	for (int64_t t = 0; t <= 30 * 60; t += 30) {
		total += 10;
		if (t > 20 * 60)
			errors += 10;
		window_append(f.ws, req, t * 1000, total);
		window_append(f.ws, err, t * 1000, errors);
		evaluator_eval_at(f.ev, t * 1000);
		if (fired_at < 0 && f.seen.count > 0)
			fired_at = t;
	}
	assert_true(fired_at > 20 * 60);
	/* 10x over 10 minutes of a 1 % budget: 10 % errors in the long window, that is
	 * 1 minute of full failure, reached within the second minute. */
	assert_true(fired_at <= 22 * 60);
	assert_string_equal(f.seen.text[0] + strlen(f.seen.text[0]) - strlen("firing page"),
			    "firing page");
	assert_true(series_value(&f, "tocsin_slo_objective_ratio", "slo", "api") == 0.99);
	assert_true(fabs(series_value(&f, "tocsin_slo_burn_rate", "window", "2m") - 100) < 1e-9);
	assert_true(series_value(&f, "tocsin_slo_error_budget_remaining_ratio", "slo", "api") < 0);
	fixture_free(&f);
}

/*
 * 10 requests per 30 s with the SLO of rules_slo (budget 1 %, page at 10x over 10m and
 * 2m): every request fails from 330 s on, and the page fires at 360 s. Traffic then stops
 * (the counters stand still): the 2m window has no events from 480 s on and the 10m
 * window none from 960 s on, so the condition is unknown and the alert keeps firing. At
 * 1290 s good requests return, the 2m window's burn rate is 0 and the alert resolves.
 */
static void slo_alert_survives_idle_windows(void **state)
{
	struct fixture f = {0};
	struct series *req, *err;
	double total = 0, errors = 0;

	(void)state;
	fixture_start(&f, rules_slo, false);
	req = input(&f, &counter_req, "api");
	err = input(&f, &counter_err, "api");
	for (int64_t t = 0; t <= 1290; t += 30) {
		/* Increases since the previous sample: 10 failed requests at 330 s and 360 s,
		 * none from 390 s to 1260 s, and 10 good ones at 1290 s. */
		if (t <= 360 || t >= 1290)
			total += 10;
		if (t >= 330 && t <= 360)
			errors += 10;
		window_append(f.ws, req, t * 1000, total);
		window_append(f.ws, err, t * 1000, errors);
		evaluator_eval_at(f.ev, t * 1000);
		if (t < 360) {
			assert_int_equal(f.seen.count, 0);
		} else if (t < 1290) {
			if (f.seen.count != 1)
				fail_msg("%lld s: %zu transitions, expected 1", (long long)t,
					 f.seen.count);
			assert_true(series_value(&f, "ALERTS", "alertstate", "firing") == 1);
		}
		if (t >= 480 && t < 1290)
			assert_true(
			    isnan(series_value(&f, "tocsin_slo_burn_rate", "window", "2m")));
		if (t >= 960 && t < 1290)
			assert_true(
			    isnan(series_value(&f, "tocsin_slo_burn_rate", "window", "10m")));
	}
	assert_string_equal(f.seen.text[0], "360 SLOErrorBudgetBurn inactive->firing page");
	assert_int_equal(f.seen.count, 2);
	assert_string_equal(f.seen.text[1], "1290 SLOErrorBudgetBurn firing->inactive page");
	assert_true(isnan(series_value(&f, "ALERTS", "alertstate", "firing")));
	assert_true(series_value(&f, "tocsin_slo_burn_rate", "window", "2m") == 0);
	fixture_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(alert_goes_pending_firing_resolved),
	    cmocka_unit_test(annotations_are_rendered),
	    cmocka_unit_test(recording_rule_feeds_later_rules),
	    cmocka_unit_test(recorded_series_goes_stale_when_input_stops),
	    cmocka_unit_test(threshold_rule_sets_severity),
	    cmocka_unit_test(threshold_restart_keeps_level),
	    cmocka_unit_test(restart_resumes_pending_and_does_not_reannounce),
	    cmocka_unit_test(reload_keeps_instances),
	    cmocka_unit_test(evaluation_error_keeps_state_and_counts),
	    cmocka_unit_test(skipped_turns_are_counted),
	    cmocka_unit_test(slo_alert_fires_and_exports),
	    cmocka_unit_test(slo_alert_survives_idle_windows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
