/*
 * Unit tests of the alert lifecycle on a virtual clock (milliseconds): alerting rules with
 * for and keep_firing_for, threshold levels with hysteresis and per-level for/clear_for,
 * the no-data policies, flap detection and the forget rule.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "collector/alert.h"

/* Far from 0, so that fired_at_ms and resolved_at_ms never read as "never". */
#define T0  INT64_C(1700000000000)
#define SEC INT64_C(1000)

/* The changes one test run produced, with the index of the evaluation of each. */
struct run {
	struct alert_instance inst;
	struct alert_change changes[64];
	size_t evaluation[64];
	size_t count;
	size_t evaluations;
};

static void run_init(struct run *r)
{
	memset(r, 0, sizeof(*r));
	alert_instance_init(&r->inst);
}

/* One evaluation; returns the change it produced, or NULL. */
static const struct alert_change *run_step(struct run *r, const struct alert_params *p,
					   bool present, double value, int64_t now_ms)
{
	struct alert_change c;
	bool changed;

	if (p->threshold)
		changed = alert_step_threshold(&r->inst, p, present, value, now_ms, &c);
	else
		changed = alert_step(&r->inst, p, present, value, now_ms, &c);
	r->evaluations++;
	if (!changed)
		return NULL;
	assert_true(r->count < sizeof(r->changes) / sizeof(r->changes[0]));
	r->changes[r->count] = c;
	r->evaluation[r->count] = r->evaluations;
	return &r->changes[r->count++];
}

static size_t run_notified(const struct run *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->count; i++)
		n += r->changes[i].notify;
	return n;
}

static struct alert_params alerting_params(int64_t for_ms, int64_t keep_firing_for_ms)
{
	struct alert_params p = {0};

	p.for_ms = for_ms;
	p.keep_firing_for_ms = keep_firing_for_ms;
	return p;
}

static struct alert_params threshold_params(bool above, double warn, double crit)
{
	struct alert_params p = {0};

	p.threshold = true;
	p.direction_above = above;
	p.has_warn = true;
	p.has_crit = true;
	p.warn = warn;
	p.crit = crit;
	p.clear_warn = warn;
	p.clear_crit = crit;
	p.no_data = ALERT_NO_DATA_KEEP;
	return p;
}

/* ---- names ---- */

static void state_names_round_trip(void **state)
{
	static const enum alert_state all[] = {ALERT_INACTIVE, ALERT_PENDING, ALERT_FIRING,
					       ALERT_STALE};
	static const char *const names[] = {"inactive", "pending", "firing", "stale"};
	enum alert_state parsed;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(alert_state_name(all[i]), names[i]);
		parsed = ALERT_STALE - all[i];
		assert_int_equal(alert_state_parse(names[i], &parsed), 0);
		assert_int_equal(parsed, all[i]);
	}
	assert_int_equal(alert_state_parse("FIRING", &parsed), -1);
	assert_int_equal(alert_state_parse("resolved", &parsed), -1);
	assert_int_equal(alert_state_parse("", &parsed), -1);
}

static void level_names(void **state)
{
	(void)state;
	assert_string_equal(alert_level_name(ALERT_LEVEL_OK), "ok");
	assert_string_equal(alert_level_name(ALERT_LEVEL_WARNING), "warning");
	assert_string_equal(alert_level_name(ALERT_LEVEL_CRITICAL), "critical");
}

static void instance_init_inactive(void **state)
{
	struct alert_instance inst;

	(void)state;
	memset(&inst, 0xa5, sizeof(inst));
	alert_instance_init(&inst);
	assert_int_equal(inst.state, ALERT_INACTIVE);
	assert_int_equal(inst.level, ALERT_LEVEL_OK);
	assert_int_equal(inst.candidate, ALERT_LEVEL_OK);
	assert_int_equal(inst.fired_at_ms, 0);
	assert_int_equal(inst.resolved_at_ms, 0);
	assert_int_equal(inst.flap_count, 0);
	assert_false(inst.flapping);
}

/* ---- alerting rules ---- */

static void alerting_pending_then_firing(void **state)
{
	struct alert_params p = alerting_params(30 * SEC, 0);
	const struct alert_change *c;
	struct run r;

	(void)state;
	run_init(&r);
	c = run_step(&r, &p, true, 1.5, T0);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_INACTIVE);
	assert_int_equal(c->to_state, ALERT_PENDING);
	assert_false(c->notify);
	assert_false(c->resolved);
	assert_int_equal(r.inst.active_at_ms, T0);
	assert_int_equal(r.inst.fired_at_ms, 0);

	assert_null(run_step(&r, &p, true, 2.5, T0 + 10 * SEC));
	assert_null(run_step(&r, &p, true, 3.5, T0 + 20 * SEC));
	assert_int_equal(r.inst.state, ALERT_PENDING);
	assert_true(r.inst.value == 3.5);

	c = run_step(&r, &p, true, 4.5, T0 + 30 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_PENDING);
	assert_int_equal(c->to_state, ALERT_FIRING);
	assert_int_equal(c->to_level, ALERT_LEVEL_WARNING);
	assert_true(c->notify);
	assert_false(c->resolved);
	assert_int_equal(r.inst.fired_at_ms, T0 + 30 * SEC);
	assert_int_equal(r.inst.active_at_ms, T0);
	assert_true(r.inst.value == 4.5);
	assert_int_equal(r.inst.last_seen_ms, T0 + 30 * SEC);
	assert_int_equal(r.count, 2);
}

static void alerting_for_zero_fires_at_once(void **state)
{
	struct alert_params p = alerting_params(0, 0);
	const struct alert_change *c;
	struct run r;

	(void)state;
	run_init(&r);
	c = run_step(&r, &p, true, 1, T0);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_INACTIVE);
	assert_int_equal(c->to_state, ALERT_FIRING);
	assert_true(c->notify);
	assert_int_equal(r.inst.active_at_ms, T0);
	assert_int_equal(r.inst.fired_at_ms, T0);
	assert_null(run_step(&r, &p, true, 1, T0 + 10 * SEC));
	assert_int_equal(r.count, 1);
}

static void alerting_pending_disappears_silently(void **state)
{
	struct alert_params p = alerting_params(60 * SEC, 0);
	const struct alert_change *c;
	struct run r;

	(void)state;
	run_init(&r);
	run_step(&r, &p, true, 1, T0);
	c = run_step(&r, &p, false, 0, T0 + 10 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_PENDING);
	assert_int_equal(c->to_state, ALERT_INACTIVE);
	assert_false(c->notify);
	assert_false(c->resolved);
	assert_int_equal(r.inst.resolved_at_ms, 0);
	assert_true(r.inst.value == 1);
	assert_true(alert_instance_forgettable(&r.inst, T0 + 10 * SEC, 15 * 60 * SEC));

	/* Coming back starts a new run. */
	c = run_step(&r, &p, true, 2, T0 + 20 * SEC);
	assert_non_null(c);
	assert_int_equal(c->to_state, ALERT_PENDING);
	assert_int_equal(r.inst.active_at_ms, T0 + 20 * SEC);
}

static void alerting_resolves_when_absent(void **state)
{
	struct alert_params p = alerting_params(0, 0);
	const struct alert_change *c;
	struct run r;

	(void)state;
	run_init(&r);
	run_step(&r, &p, true, 1, T0);
	c = run_step(&r, &p, false, 0, T0 + 10 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_FIRING);
	assert_int_equal(c->to_state, ALERT_INACTIVE);
	assert_int_equal(c->from_level, ALERT_LEVEL_WARNING);
	assert_int_equal(c->to_level, ALERT_LEVEL_OK);
	assert_true(c->notify);
	assert_true(c->resolved);
	assert_int_equal(r.inst.resolved_at_ms, T0 + 10 * SEC);
	assert_null(run_step(&r, &p, false, 0, T0 + 20 * SEC));
}

static void alerting_keep_firing_for(void **state)
{
	struct alert_params p = alerting_params(0, 25 * SEC);
	const struct alert_change *c;
	struct run r;

	(void)state;
	run_init(&r);
	run_step(&r, &p, true, 1, T0);
	/* 10 s and 20 s after the last evaluation that returned it: below 25 s. */
	assert_null(run_step(&r, &p, false, 0, T0 + 10 * SEC));
	assert_null(run_step(&r, &p, false, 0, T0 + 20 * SEC));
	assert_int_equal(r.inst.state, ALERT_FIRING);

	/* Returned again: the clock starts over from this evaluation. */
	assert_null(run_step(&r, &p, true, 7, T0 + 30 * SEC));
	assert_int_equal(r.inst.last_seen_ms, T0 + 30 * SEC);
	assert_null(run_step(&r, &p, false, 0, T0 + 50 * SEC));
	assert_true(r.inst.value == 7);

	c = run_step(&r, &p, false, 0, T0 + 60 * SEC);
	assert_non_null(c);
	assert_int_equal(c->to_state, ALERT_INACTIVE);
	assert_true(c->resolved);
	assert_true(c->notify);
	assert_int_equal(r.inst.resolved_at_ms, T0 + 60 * SEC);
	assert_int_equal(r.count, 2);
}

static void alerting_keep_firing_boundary(void **state)
{
	struct alert_params p = alerting_params(0, 20 * SEC);
	const struct alert_change *c;
	struct run r;

	(void)state;
	run_init(&r);
	run_step(&r, &p, true, 1, T0);
	assert_null(run_step(&r, &p, false, 0, T0 + 10 * SEC));
	/* now - last_seen == keep_firing_for: no longer kept. */
	c = run_step(&r, &p, false, 0, T0 + 20 * SEC);
	assert_non_null(c);
	assert_true(c->resolved);
}

/* ---- threshold levels ---- */

struct level_case {
	enum alert_level current;
	double value;
	enum alert_level expected;
};

static void threshold_level_above_with_hysteresis(void **state)
{
	struct alert_params p = threshold_params(true, 70, 90);
	static const struct level_case cases[] = {
	    {ALERT_LEVEL_OK, 50, ALERT_LEVEL_OK},
	    {ALERT_LEVEL_OK, 70, ALERT_LEVEL_OK}, /* at the threshold is not past it */
	    {ALERT_LEVEL_OK, 70.1, ALERT_LEVEL_WARNING},
	    {ALERT_LEVEL_OK, 68, ALERT_LEVEL_OK},
	    {ALERT_LEVEL_WARNING, 68, ALERT_LEVEL_WARNING}, /* held above clear_warn */
	    {ALERT_LEVEL_WARNING, 65, ALERT_LEVEL_OK},      /* at clear_warn is cleared */
	    {ALERT_LEVEL_OK, 91, ALERT_LEVEL_CRITICAL},
	    {ALERT_LEVEL_WARNING, 89, ALERT_LEVEL_WARNING},
	    {ALERT_LEVEL_CRITICAL, 89, ALERT_LEVEL_CRITICAL},
	    {ALERT_LEVEL_CRITICAL, 84, ALERT_LEVEL_WARNING},
	    {ALERT_LEVEL_CRITICAL, 68, ALERT_LEVEL_WARNING}, /* warning still held */
	    {ALERT_LEVEL_CRITICAL, 60, ALERT_LEVEL_OK},
	    {ALERT_LEVEL_CRITICAL, NAN, ALERT_LEVEL_CRITICAL},
	    {ALERT_LEVEL_OK, NAN, ALERT_LEVEL_OK},
	    {ALERT_LEVEL_WARNING, NAN, ALERT_LEVEL_WARNING},
	    {ALERT_LEVEL_OK, INFINITY, ALERT_LEVEL_CRITICAL},
	};

	(void)state;
	p.clear_warn = 65;
	p.clear_crit = 85;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum alert_level got = alert_threshold_level(&p, cases[i].current, cases[i].value);

		if (got != cases[i].expected)
			fail_msg("case %zu: from %s at %g: got %s, expected %s", i,
				 alert_level_name(cases[i].current), cases[i].value,
				 alert_level_name(got), alert_level_name(cases[i].expected));
	}
}

static void threshold_level_below_and_single(void **state)
{
	struct alert_params p = threshold_params(false, 20, 10);

	(void)state;
	assert_int_equal(alert_threshold_level(&p, ALERT_LEVEL_OK, 25), ALERT_LEVEL_OK);
	assert_int_equal(alert_threshold_level(&p, ALERT_LEVEL_OK, 20), ALERT_LEVEL_OK);
	assert_int_equal(alert_threshold_level(&p, ALERT_LEVEL_OK, 15), ALERT_LEVEL_WARNING);
	assert_int_equal(alert_threshold_level(&p, ALERT_LEVEL_OK, 9), ALERT_LEVEL_CRITICAL);
	assert_int_equal(alert_threshold_level(&p, ALERT_LEVEL_CRITICAL, 15), ALERT_LEVEL_WARNING);

	/* Only a critical threshold: warning is never reached. */
	p.has_warn = false;
	assert_int_equal(alert_threshold_level(&p, ALERT_LEVEL_OK, 15), ALERT_LEVEL_OK);
	assert_int_equal(alert_threshold_level(&p, ALERT_LEVEL_CRITICAL, 15), ALERT_LEVEL_OK);
	assert_int_equal(alert_threshold_level(&p, ALERT_LEVEL_OK, 5), ALERT_LEVEL_CRITICAL);

	/* Only a warning threshold. */
	p.has_warn = true;
	p.has_crit = false;
	assert_int_equal(alert_threshold_level(&p, ALERT_LEVEL_OK, 5), ALERT_LEVEL_WARNING);
}

/* Levels down the collectd-style sequence, every level change notified. */
static void threshold_levels_follow_value(void **state)
{
	static const double values[] = {50, 8, 15, 25, 15, 5};
	static const enum alert_level levels[] = {ALERT_LEVEL_OK,      ALERT_LEVEL_CRITICAL,
						  ALERT_LEVEL_WARNING, ALERT_LEVEL_OK,
						  ALERT_LEVEL_WARNING, ALERT_LEVEL_CRITICAL};
	static const struct {
		enum alert_level from, to;
		bool resolved;
	} expected[] = {
	    {ALERT_LEVEL_OK, ALERT_LEVEL_CRITICAL, false},
	    {ALERT_LEVEL_CRITICAL, ALERT_LEVEL_WARNING, false},
	    {ALERT_LEVEL_WARNING, ALERT_LEVEL_OK, true},
	    {ALERT_LEVEL_OK, ALERT_LEVEL_WARNING, false},
	    {ALERT_LEVEL_WARNING, ALERT_LEVEL_CRITICAL, false},
	};
	struct alert_params p = threshold_params(false, 20, 10);
	struct run r;

	(void)state;
	run_init(&r);
	for (size_t i = 0; i < 6; i++) {
		run_step(&r, &p, true, values[i], T0 + (int64_t)i * 10 * SEC);
		assert_int_equal(r.inst.level, levels[i]);
		assert_int_equal(r.inst.state,
				 levels[i] == ALERT_LEVEL_OK ? ALERT_INACTIVE : ALERT_FIRING);
	}
	assert_int_equal(r.count, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(r.changes[i].from_level, expected[i].from);
		assert_int_equal(r.changes[i].to_level, expected[i].to);
		assert_int_equal(r.changes[i].resolved, expected[i].resolved);
		assert_true(r.changes[i].notify);
		assert_false(r.changes[i].flapping);
	}
	assert_int_equal(r.changes[1].from_state, ALERT_FIRING);
	assert_int_equal(r.changes[1].to_state, ALERT_FIRING);
	assert_int_equal(r.inst.fired_at_ms, T0 + 40 * SEC);
	assert_int_equal(r.inst.resolved_at_ms, T0 + 30 * SEC);
}

/* Hysteresis and clear_for on a value hovering around the thresholds. */
static void threshold_hysteresis_and_clear_for(void **state)
{
	static const double values[] = {69.9, 70.1, 69.9, 70.1, 69.9, 70.1, 64, 64,
					64,   91,   89,   89.9, 84,   84,   84};
	/* 1-indexed evaluation -> the level it changes to, or -1 for no change. */
	static const int changes_to[] = {-1,
					 -1,
					 ALERT_LEVEL_WARNING,
					 -1,
					 -1,
					 -1,
					 -1,
					 -1,
					 -1,
					 ALERT_LEVEL_OK,
					 ALERT_LEVEL_CRITICAL,
					 -1,
					 -1,
					 -1,
					 -1,
					 ALERT_LEVEL_WARNING};
	struct alert_params p = threshold_params(true, 70, 90);
	struct run r;

	(void)state;
	p.clear_warn = 65;
	p.clear_crit = 85;
	p.clear_for_ms = 20 * SEC;
	run_init(&r);
	for (size_t i = 0; i < 15; i++) {
		const struct alert_change *c =
		    run_step(&r, &p, true, values[i], T0 + (int64_t)i * 10 * SEC);

		if (changes_to[i + 1] < 0) {
			if (c != NULL)
				fail_msg("evaluation %zu (%g): unexpected change to %s", i + 1,
					 values[i], alert_level_name(c->to_level));
			continue;
		}
		if (c == NULL)
			fail_msg("evaluation %zu (%g): no change, expected one to %s", i + 1,
				 values[i], alert_level_name(changes_to[i + 1]));
		assert_int_equal(c->to_level, changes_to[i + 1]);
		assert_true(c->notify);
	}
	assert_int_equal(r.count, 4);
	assert_int_equal(run_notified(&r), 4);
	assert_true(r.changes[1].resolved);  /* warning -> ok at #9 */
	assert_false(r.changes[3].resolved); /* critical -> warning at #15 */
	assert_int_equal(r.inst.state, ALERT_FIRING);
}

static void threshold_warn_for_pending(void **state)
{
	struct alert_params p = threshold_params(true, 70, 90);
	const struct alert_change *c;
	struct run r;

	(void)state;
	p.warn_for_ms = 30 * SEC;
	p.crit_for_ms = 30 * SEC;
	run_init(&r);
	assert_null(run_step(&r, &p, true, 50, T0));

	c = run_step(&r, &p, true, 75, T0 + 10 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_INACTIVE);
	assert_int_equal(c->to_state, ALERT_PENDING);
	assert_int_equal(c->to_level, ALERT_LEVEL_OK);
	assert_false(c->notify);
	assert_int_equal(r.inst.candidate, ALERT_LEVEL_WARNING);
	assert_int_equal(r.inst.active_at_ms, T0 + 10 * SEC);

	assert_null(run_step(&r, &p, true, 76, T0 + 20 * SEC));
	assert_null(run_step(&r, &p, true, 77, T0 + 30 * SEC));
	assert_int_equal(r.inst.level, ALERT_LEVEL_OK);

	c = run_step(&r, &p, true, 78, T0 + 40 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_PENDING);
	assert_int_equal(c->to_state, ALERT_FIRING);
	assert_int_equal(c->to_level, ALERT_LEVEL_WARNING);
	assert_true(c->notify);
	assert_int_equal(r.inst.fired_at_ms, T0 + 40 * SEC);
	assert_int_equal(r.inst.active_at_ms, T0 + 10 * SEC);
}

static void threshold_pending_drops_silently(void **state)
{
	struct alert_params p = threshold_params(true, 70, 90);
	const struct alert_change *c;
	struct run r;

	(void)state;
	p.warn_for_ms = 30 * SEC;
	run_init(&r);
	run_step(&r, &p, true, 75, T0);
	assert_int_equal(r.inst.state, ALERT_PENDING);
	assert_null(run_step(&r, &p, true, 75, T0 + 20 * SEC));

	c = run_step(&r, &p, true, 60, T0 + 25 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_PENDING);
	assert_int_equal(c->to_state, ALERT_INACTIVE);
	assert_false(c->notify);
	assert_false(c->resolved);

	/* Past warn again: the 30 s start over. */
	run_step(&r, &p, true, 75, T0 + 35 * SEC);
	assert_null(run_step(&r, &p, true, 75, T0 + 60 * SEC));
	c = run_step(&r, &p, true, 75, T0 + 65 * SEC);
	assert_non_null(c);
	assert_int_equal(c->to_level, ALERT_LEVEL_WARNING);
	assert_int_equal(run_notified(&r), 1);
}

/* A rising value: warning after warn_for from crossing warn, critical after crit_for. */
static void threshold_per_level_for(void **state)
{
	struct alert_params p = threshold_params(true, 70, 90);
	const struct alert_change *c;
	struct run r;

	(void)state;
	p.warn_for_ms = 30 * SEC;
	p.crit_for_ms = 60 * SEC;
	run_init(&r);
	run_step(&r, &p, true, 75, T0);
	run_step(&r, &p, true, 95, T0 + 10 * SEC);
	assert_int_equal(r.inst.candidate, ALERT_LEVEL_CRITICAL);
	assert_int_equal(r.inst.state, ALERT_PENDING);
	assert_null(run_step(&r, &p, true, 95, T0 + 20 * SEC));

	c = run_step(&r, &p, true, 95, T0 + 30 * SEC);
	assert_non_null(c);
	assert_int_equal(c->to_level, ALERT_LEVEL_WARNING);
	assert_int_equal(r.inst.candidate, ALERT_LEVEL_CRITICAL);
	assert_null(run_step(&r, &p, true, 95, T0 + 60 * SEC));

	c = run_step(&r, &p, true, 95, T0 + 70 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_level, ALERT_LEVEL_WARNING);
	assert_int_equal(c->to_level, ALERT_LEVEL_CRITICAL);
	assert_true(c->notify);
	assert_int_equal(r.inst.fired_at_ms, T0 + 30 * SEC);
}

/* A jump straight past crit with a shorter crit_for than warn_for fires critical first. */
static void threshold_jump_to_critical(void **state)
{
	struct alert_params p = threshold_params(true, 70, 90);
	const struct alert_change *c;
	struct run r;

	(void)state;
	p.warn_for_ms = 60 * SEC;
	p.crit_for_ms = 20 * SEC;
	run_init(&r);
	run_step(&r, &p, true, 95, T0);
	assert_null(run_step(&r, &p, true, 95, T0 + 10 * SEC));
	c = run_step(&r, &p, true, 95, T0 + 20 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_level, ALERT_LEVEL_OK);
	assert_int_equal(c->to_level, ALERT_LEVEL_CRITICAL);
	assert_int_equal(r.count, 2);
}

/* A drop from critical keeps each level for clear_for before leaving it. */
static void threshold_clear_for_steps_down(void **state)
{
	struct alert_params p = threshold_params(true, 70, 90);
	const struct alert_change *c;
	struct run r;

	(void)state;
	p.clear_for_ms = 20 * SEC;
	run_init(&r);
	run_step(&r, &p, true, 95, T0);
	assert_int_equal(r.inst.level, ALERT_LEVEL_CRITICAL);

	/* Straight to ok: critical -> ok after clear_for, one change. */
	assert_null(run_step(&r, &p, true, 10, T0 + 10 * SEC));
	assert_int_equal(r.inst.candidate, ALERT_LEVEL_OK);
	assert_int_equal(r.inst.state, ALERT_FIRING);
	assert_null(run_step(&r, &p, true, 10, T0 + 20 * SEC));
	c = run_step(&r, &p, true, 10, T0 + 30 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_level, ALERT_LEVEL_CRITICAL);
	assert_int_equal(c->to_level, ALERT_LEVEL_OK);
	assert_true(c->resolved);
	assert_int_equal(r.inst.resolved_at_ms, T0 + 30 * SEC);

	/* A return past crit during clear_for restarts it. */
	run_step(&r, &p, true, 95, T0 + 40 * SEC);
	assert_null(run_step(&r, &p, true, 80, T0 + 50 * SEC));
	assert_null(run_step(&r, &p, true, 95, T0 + 60 * SEC));
	assert_null(run_step(&r, &p, true, 80, T0 + 70 * SEC));
	assert_null(run_step(&r, &p, true, 80, T0 + 80 * SEC));
	c = run_step(&r, &p, true, 80, T0 + 90 * SEC);
	assert_non_null(c);
	assert_int_equal(c->to_level, ALERT_LEVEL_WARNING);
	assert_false(c->resolved);
}

/* NaN keeps the current level and drops whatever was pending. */
static void threshold_nan_holds_level(void **state)
{
	struct alert_params p = threshold_params(true, 70, 90);
	struct run r;

	(void)state;
	p.warn_for_ms = 20 * SEC;
	run_init(&r);
	run_step(&r, &p, true, 75, T0);
	assert_int_equal(r.inst.state, ALERT_PENDING);
	run_step(&r, &p, true, NAN, T0 + 10 * SEC);
	assert_int_equal(r.inst.state, ALERT_INACTIVE);
	assert_true(isnan(r.inst.value));
	assert_null(run_step(&r, &p, true, NAN, T0 + 30 * SEC));
	assert_int_equal(r.inst.level, ALERT_LEVEL_OK);
	assert_int_equal(run_notified(&r), 0);
}

/* ---- no data ---- */

static void no_data_keep_goes_stale(void **state)
{
	struct alert_params p = threshold_params(true, 70, 90);
	const struct alert_change *c;
	struct run r;

	(void)state;
	run_init(&r);
	run_step(&r, &p, true, 95, T0);
	c = run_step(&r, &p, false, 0, T0 + 10 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_FIRING);
	assert_int_equal(c->to_state, ALERT_STALE);
	assert_int_equal(c->from_level, ALERT_LEVEL_CRITICAL);
	assert_int_equal(c->to_level, ALERT_LEVEL_CRITICAL);
	assert_false(c->notify);
	assert_false(c->resolved);
	assert_int_equal(r.inst.last_seen_ms, T0);
	assert_true(r.inst.value == 95);
	assert_null(run_step(&r, &p, false, 0, T0 + 20 * SEC));
	assert_false(alert_instance_forgettable(&r.inst, T0 + 3600 * SEC, 60 * SEC));

	/* Data back at the kept level: out of stale, not notified. */
	c = run_step(&r, &p, true, 96, T0 + 30 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_STALE);
	assert_int_equal(c->to_state, ALERT_FIRING);
	assert_int_equal(c->to_level, ALERT_LEVEL_CRITICAL);
	assert_false(c->notify);

	/* Data back at another level: notified. */
	run_step(&r, &p, false, 0, T0 + 40 * SEC);
	c = run_step(&r, &p, true, 75, T0 + 50 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_STALE);
	assert_int_equal(c->to_state, ALERT_FIRING);
	assert_int_equal(c->from_level, ALERT_LEVEL_CRITICAL);
	assert_int_equal(c->to_level, ALERT_LEVEL_WARNING);
	assert_true(c->notify);
	assert_int_equal(run_notified(&r), 2);
}

static void no_data_keep_drops_pending(void **state)
{
	struct alert_params p = threshold_params(true, 70, 90);
	const struct alert_change *c;
	struct run r;

	(void)state;
	p.warn_for_ms = 30 * SEC;
	run_init(&r);
	run_step(&r, &p, true, 75, T0);
	c = run_step(&r, &p, false, 0, T0 + 10 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_PENDING);
	assert_int_equal(c->to_state, ALERT_STALE);
	assert_int_equal(r.inst.candidate, ALERT_LEVEL_OK);

	/* Back with data: a new pending run from this evaluation. */
	c = run_step(&r, &p, true, 75, T0 + 20 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_STALE);
	assert_int_equal(c->to_state, ALERT_PENDING);
	assert_false(c->notify);
	assert_int_equal(r.inst.active_at_ms, T0 + 20 * SEC);
	assert_null(run_step(&r, &p, true, 75, T0 + 40 * SEC));
	c = run_step(&r, &p, true, 75, T0 + 50 * SEC);
	assert_non_null(c);
	assert_int_equal(c->to_level, ALERT_LEVEL_WARNING);
}

static void no_data_alert_notifies(void **state)
{
	struct alert_params p = threshold_params(true, 70, 90);
	const struct alert_change *c;
	struct run r;

	(void)state;
	p.no_data = ALERT_NO_DATA_ALERT;
	run_init(&r);
	assert_null(run_step(&r, &p, true, 50, T0));
	c = run_step(&r, &p, false, 0, T0 + 10 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_INACTIVE);
	assert_int_equal(c->to_state, ALERT_STALE);
	assert_int_equal(c->to_level, ALERT_LEVEL_OK);
	assert_true(c->notify);
	assert_null(run_step(&r, &p, false, 0, T0 + 20 * SEC));

	/* The end of a notified staleness is notified, at the same level too. */
	c = run_step(&r, &p, true, 50, T0 + 30 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_STALE);
	assert_int_equal(c->to_state, ALERT_INACTIVE);
	assert_true(c->notify);
	assert_false(c->resolved);
	assert_int_equal(run_notified(&r), 2);
}

static void no_data_resolve(void **state)
{
	struct alert_params p = threshold_params(true, 70, 90);
	const struct alert_change *c;
	struct run r;

	(void)state;
	p.no_data = ALERT_NO_DATA_RESOLVE;
	run_init(&r);
	run_step(&r, &p, true, 95, T0);
	c = run_step(&r, &p, false, 0, T0 + 10 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_FIRING);
	assert_int_equal(c->to_state, ALERT_INACTIVE);
	assert_int_equal(c->from_level, ALERT_LEVEL_CRITICAL);
	assert_int_equal(c->to_level, ALERT_LEVEL_OK);
	assert_true(c->notify);
	assert_true(c->resolved);
	assert_int_equal(r.inst.resolved_at_ms, T0 + 10 * SEC);
	assert_null(run_step(&r, &p, false, 0, T0 + 20 * SEC));

	/* A pending instance drops without a notification. */
	p.warn_for_ms = 60 * SEC;
	run_step(&r, &p, true, 75, T0 + 30 * SEC);
	assert_int_equal(r.inst.state, ALERT_PENDING);
	c = run_step(&r, &p, false, 0, T0 + 40 * SEC);
	assert_non_null(c);
	assert_int_equal(c->to_state, ALERT_INACTIVE);
	assert_false(c->notify);
	assert_false(c->resolved);
	assert_int_equal(r.inst.resolved_at_ms, T0 + 10 * SEC);
}

/* ---- flap detection ---- */

static void flap_percent_weights(void **state)
{
	struct alert_instance inst;

	(void)state;
	alert_instance_init(&inst);
	assert_true(alert_flap_percent(&inst) == 0.0);
	inst.flap_bits = 1;
	inst.flap_count = 1;
	assert_true(alert_flap_percent(&inst) == 0.0);

	/* One change, the newest: weight 1.2 of 20 possible changes. */
	inst.flap_count = 2;
	assert_float_equal(alert_flap_percent(&inst), 6.0, 1e-9);

	/* One change, the oldest possible: weight 0.8. */
	inst.flap_bits = UINT32_C(1) << 20;
	inst.flap_count = ALERT_FLAP_HISTORY;
	assert_float_equal(alert_flap_percent(&inst), 4.0, 1e-9);

	/* Every entry different from the previous one. */
	inst.flap_bits = 0x155555; /* 1 0101 0101 0101 0101 0101, 21 bits */
	assert_float_equal(alert_flap_percent(&inst), 100.0, 1e-9);

	/* A steady history has no change. */
	inst.flap_bits = 0x1fffff;
	assert_float_equal(alert_flap_percent(&inst), 0.0, 1e-9);

	/* Two changes at ages 0 and 19: 1.2 + 0.8 = 2 of 20. */
	inst.flap_bits = 0x0ffffe;
	assert_float_equal(alert_flap_percent(&inst), 10.0, 1e-9);

	/* Entries beyond the count are not read. */
	inst.flap_bits = 0x1ffffe;
	inst.flap_count = 2;
	assert_float_equal(alert_flap_percent(&inst), 6.0, 1e-9);
}

/*
 * Drives `bad` for `alternations` evaluations, then `settled` evaluations of `settle`, and
 * checks that once the episode starts exactly one more change is notified: the end.
 */
static void check_flap_episode(struct run *r, const struct alert_params *p, double bad_value,
			       double good_value, bool present_when_good, size_t alternations,
			       size_t settled, double settle_value)
{
	size_t start = 0, end = 0, i;
	int64_t now = T0;

	for (i = 0; i < alternations + settled; i++, now += 10 * SEC) {
		bool bad = i < alternations ? i % 2 == 0 : settle_value == bad_value;
		const struct alert_change *c =
		    run_step(r, p, bad || present_when_good, bad ? bad_value : good_value, now);

		if (c == NULL)
			continue;
		if (start == 0 && c->flapping) {
			start = r->count;
			assert_true(c->notify);
			assert_true(alert_flap_percent(&r->inst) > p->flap_high);
		} else if (start != 0 && end == 0 && !c->flapping) {
			end = r->count;
			assert_true(c->notify);
			assert_true(alert_flap_percent(&r->inst) < p->flap_low);
			assert_true(i >= alternations);
		} else if (start != 0 && end == 0) {
			if (c->notify)
				fail_msg("evaluation %zu: notified inside the flap episode", i + 1);
		} else if (end != 0) {
			fail_msg("evaluation %zu: change after the flap episode ended", i + 1);
		}
	}
	if (start == 0)
		fail_msg("no flap episode started in %zu alternations", alternations);
	if (end == 0)
		fail_msg("the flap episode did not end in %zu settled evaluations", settled);
	assert_false(r->inst.flapping);

	/* Every change before the start was notified as usual. */
	for (i = 0; i + 1 < start; i++)
		assert_true(r->changes[i].notify);
	assert_int_equal(run_notified(r), start + 1);
}

static void flap_alerting_rule_episode(void **state)
{
	struct alert_params p = alerting_params(0, 0);
	struct run r;

	(void)state;
	p.flap_low = 5;
	p.flap_high = 20;
	run_init(&r);
	check_flap_episode(&r, &p, 1, 0, false, 40, 40, 0);

	/* 1.2 + 1.18 + 1.16 + 1.14 changes: 23.4% > 20% at the fifth evaluation. */
	assert_true(r.changes[4].flapping);
	assert_false(r.changes[3].flapping);
	assert_int_equal(r.evaluation[4], 5);
	/* It settled inactive: the end is a resolve. */
	assert_int_equal(r.changes[r.count - 1].to_state, ALERT_INACTIVE);
	assert_true(r.changes[r.count - 1].resolved);
}

static void flap_threshold_rule_episode(void **state)
{
	struct alert_params p = threshold_params(true, 70, 90);
	const struct alert_change *last;
	struct run r;

	(void)state;
	p.flap_low = 5;
	p.flap_high = 20;
	run_init(&r);
	check_flap_episode(&r, &p, 95, 50, true, 30, 40, 95);

	/* The episode ended at an evaluation that changed nothing else. */
	last = &r.changes[r.count - 1];
	assert_int_equal(last->from_state, ALERT_FIRING);
	assert_int_equal(last->to_state, ALERT_FIRING);
	assert_int_equal(last->from_level, ALERT_LEVEL_CRITICAL);
	assert_int_equal(last->to_level, ALERT_LEVEL_CRITICAL);
	assert_false(last->resolved);
	assert_false(last->flapping);
	assert_true(last->notify);
}

static void flap_detection_off(void **state)
{
	struct alert_params p = alerting_params(0, 0);
	struct run r;

	(void)state;
	run_init(&r);
	for (size_t i = 0; i < 30; i++)
		run_step(&r, &p, i % 2 == 0, 1, T0 + (int64_t)i * 10 * SEC);
	assert_int_equal(r.count, 30);
	assert_int_equal(run_notified(&r), 30);
	assert_int_equal(r.inst.flap_count, 0);
	assert_false(r.inst.flapping);
}

/* An episode ends when detection is turned off, with a notified change. */
static void flap_detection_turned_off(void **state)
{
	struct alert_params p = alerting_params(0, 0);
	const struct alert_change *c;
	struct run r;
	size_t i;

	(void)state;
	p.flap_low = 5;
	p.flap_high = 20;
	run_init(&r);
	for (i = 0; i < 10; i++)
		run_step(&r, &p, i % 2 == 0, 1, T0 + (int64_t)i * 10 * SEC);
	assert_true(r.inst.flapping);
	assert_int_equal(r.inst.state, ALERT_INACTIVE);

	p.flap_high = 0;
	c = run_step(&r, &p, false, 0, T0 + (int64_t)i * 10 * SEC);
	assert_non_null(c);
	assert_int_equal(c->from_state, ALERT_INACTIVE);
	assert_int_equal(c->to_state, ALERT_INACTIVE);
	assert_true(c->notify);
	assert_false(c->flapping);
	assert_false(r.inst.flapping);
}

/* With flap_low 0 the episode still ends once the history contains no change. */
static void flap_low_zero_ends(void **state)
{
	struct alert_params p = alerting_params(0, 0);
	struct run r;
	size_t i;

	(void)state;
	p.flap_low = 0;
	p.flap_high = 20;
	run_init(&r);
	for (i = 0; i < 10; i++)
		run_step(&r, &p, i % 2 == 0, 1, T0 + (int64_t)i * 10 * SEC);
	assert_true(r.inst.flapping);
	for (; i < 40 && r.inst.flapping; i++)
		run_step(&r, &p, true, 1, T0 + (int64_t)i * 10 * SEC);
	assert_false(r.inst.flapping);
	assert_true(alert_flap_percent(&r.inst) == 0.0);
}

/* ---- forgetting ---- */

static void instance_forgettable(void **state)
{
	const int64_t retention = 15 * 60 * SEC;
	struct alert_instance inst;

	(void)state;
	alert_instance_init(&inst);
	assert_true(alert_instance_forgettable(&inst, T0, retention));

	inst.state = ALERT_PENDING;
	assert_false(alert_instance_forgettable(&inst, T0, retention));
	inst.state = ALERT_FIRING;
	inst.fired_at_ms = T0;
	assert_false(alert_instance_forgettable(&inst, T0 + 2 * retention, retention));

	inst.state = ALERT_INACTIVE;
	inst.resolved_at_ms = T0 + 60 * SEC;
	assert_false(alert_instance_forgettable(&inst, T0 + 60 * SEC + retention, retention));
	assert_true(alert_instance_forgettable(&inst, T0 + 61 * SEC + retention, retention));

	inst.flapping = true;
	assert_false(alert_instance_forgettable(&inst, T0 + 2 * retention, retention));
	inst.flapping = false;

	/* Fired again after the last resolve. */
	inst.fired_at_ms = T0 + 120 * SEC;
	assert_false(alert_instance_forgettable(&inst, T0 + 10 * retention, retention));

	/* Stale: only at ok and unseen for longer than the retention. */
	alert_instance_init(&inst);
	inst.state = ALERT_STALE;
	inst.last_seen_ms = T0;
	assert_false(alert_instance_forgettable(&inst, T0 + retention, retention));
	assert_true(alert_instance_forgettable(&inst, T0 + retention + 1, retention));
	inst.level = ALERT_LEVEL_WARNING;
	inst.fired_at_ms = T0 - SEC;
	assert_false(alert_instance_forgettable(&inst, T0 + 10 * retention, retention));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(state_names_round_trip),
	    cmocka_unit_test(level_names),
	    cmocka_unit_test(instance_init_inactive),
	    cmocka_unit_test(alerting_pending_then_firing),
	    cmocka_unit_test(alerting_for_zero_fires_at_once),
	    cmocka_unit_test(alerting_pending_disappears_silently),
	    cmocka_unit_test(alerting_resolves_when_absent),
	    cmocka_unit_test(alerting_keep_firing_for),
	    cmocka_unit_test(alerting_keep_firing_boundary),
	    cmocka_unit_test(threshold_level_above_with_hysteresis),
	    cmocka_unit_test(threshold_level_below_and_single),
	    cmocka_unit_test(threshold_levels_follow_value),
	    cmocka_unit_test(threshold_hysteresis_and_clear_for),
	    cmocka_unit_test(threshold_warn_for_pending),
	    cmocka_unit_test(threshold_pending_drops_silently),
	    cmocka_unit_test(threshold_per_level_for),
	    cmocka_unit_test(threshold_jump_to_critical),
	    cmocka_unit_test(threshold_clear_for_steps_down),
	    cmocka_unit_test(threshold_nan_holds_level),
	    cmocka_unit_test(no_data_keep_goes_stale),
	    cmocka_unit_test(no_data_keep_drops_pending),
	    cmocka_unit_test(no_data_alert_notifies),
	    cmocka_unit_test(no_data_resolve),
	    cmocka_unit_test(flap_percent_weights),
	    cmocka_unit_test(flap_alerting_rule_episode),
	    cmocka_unit_test(flap_threshold_rule_episode),
	    cmocka_unit_test(flap_detection_off),
	    cmocka_unit_test(flap_detection_turned_off),
	    cmocka_unit_test(flap_low_zero_ends),
	    cmocka_unit_test(instance_forgettable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
