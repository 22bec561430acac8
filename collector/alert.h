/*
 * The lifecycle of one alert instance (a rule and one label set), as pure functions of
 * the evaluation results and the evaluation time, so that a virtual clock drives them in
 * tests exactly as the loop's clock does in the daemon. No I/O: the evaluator persists
 * the instances and transitions these functions produce.
 *
 * Alerting rules (Prometheus semantics):
 *   inactive -> pending when the expression returns the label set; pending -> firing when
 *   it has been returned for at least `for` (at once when `for` is 0); firing -> resolved
 *   (state inactive, resolved_at set) when it has not been returned for `keep_firing_for`;
 *   pending -> inactive without a notification when it disappears before firing.
 *
 * Threshold rules: each instance has a level (ok, warning, critical). A higher level is
 * reached when the value has been past that level's threshold for the level's `for`;
 * a level is left only when the value has been past the level's clear value (hysteresis)
 * for `clear_for`, and then drops to the highest level the value still points at (a level
 * at or below the current one holds while the value is past its clear value, so
 * critical -> warning is a downgrade, never an "ok"). One transition per level change,
 * carrying the old and the new level. The state is firing above ok, pending at ok while
 * the value points higher, inactive otherwise.
 *
 * No data (threshold rules only: the expression returns raw values, so absence means the
 * series stopped): `keep` (default) keeps the level and marks the instance stale with a
 * transition that is not notified; `alert` does the same but notifies; `resolve` drops to
 * ok (notified when it was above ok). No data also drops a pending change. A stale instance
 * that gets data again continues from its level; that transition is notified when the
 * level changes, and under `alert` also when it does not.
 *
 * Flapping, in the Nagios manner: each instance keeps its notified state over the last
 * ALERT_FLAP_HISTORY evaluations; the share of changes, weighted from 0.8 for the oldest
 * to 1.2 for the newest, above flap_high starts a flap episode and below flap_low ends it.
 * The transition that starts an episode is notified (flapping set), the transitions
 * within it are recorded but not notified, and the one that ends it is notified with the
 * state the instance settled in (from_state equals to_state when nothing else changed at
 * that evaluation). An episode also ends when the history contains no change.
 */
#ifndef TOCSIN_ALERT_H
#define TOCSIN_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALERT_FLAP_HISTORY 21

enum alert_state {
	ALERT_INACTIVE, /* includes resolved: resolved_at_ms tells them apart */
	ALERT_PENDING,
	ALERT_FIRING,
	ALERT_STALE, /* threshold rule without data, level kept */
};

/* "inactive", "pending", "firing", "stale". Parsing returns 0, or -1 for any other name. */
const char *alert_state_name(enum alert_state s);
int alert_state_parse(const char *name, enum alert_state *out);

enum alert_level {
	ALERT_LEVEL_OK,
	ALERT_LEVEL_WARNING,
	ALERT_LEVEL_CRITICAL,
};

/* "ok", "warning", "critical": the value of the `severity` label of threshold alerts. */
const char *alert_level_name(enum alert_level l);

enum alert_no_data {
	ALERT_NO_DATA_KEEP,
	ALERT_NO_DATA_ALERT,
	ALERT_NO_DATA_RESOLVE,
};

/* The parameters of a rule that the lifecycle needs. Times in milliseconds. */
struct alert_params {
	bool threshold; /* a threshold rule; otherwise an alerting rule */
	int64_t for_ms; /* alerting rule: pending time before firing */
	int64_t keep_firing_for_ms;
	/* Threshold rules. direction_above: a higher value is worse. */
	bool direction_above;
	bool has_warn, has_crit;
	double warn, crit;             /* thresholds: past them means value > (or <) them */
	double clear_warn, clear_crit; /* default to warn and crit */
	int64_t warn_for_ms, crit_for_ms, clear_for_ms;
	enum alert_no_data no_data;
	/* Flap detection: percentages 0..100; flap_high 0 turns it off. */
	double flap_low, flap_high;
};

/* What the lifecycle keeps per instance; the evaluator persists every field. */
struct alert_instance {
	enum alert_state state;
	enum alert_level level;     /* threshold: notified level; alerting: warning=firing */
	enum alert_level candidate; /* threshold: level the value points at, not yet held */
	int64_t candidate_since_ms; /* when the value started pointing at candidate */
	int64_t active_at_ms;       /* first evaluation of the current pending/firing run */
	int64_t fired_at_ms;        /* when it last started firing, 0 if never */
	int64_t resolved_at_ms;     /* when it last resolved, 0 if never */
	int64_t last_seen_ms;       /* last evaluation that returned the label set */
	int64_t last_eval_ms;       /* last evaluation that considered the instance */
	double value;               /* last value returned */
	uint32_t flap_bits;         /* notified state (firing or not) per evaluation, LSB newest */
	uint8_t flap_count;         /* evaluations recorded in flap_bits, up to the history */
	bool flapping;
};

/* One state change of an instance, as handed to the alerter and stored. */
struct alert_change {
	enum alert_state from_state, to_state;
	enum alert_level from_level, to_level;
	bool notify;   /* false inside a flap episode, for pending and for no-data keep */
	bool flapping; /* the instance is flapping after this change */
	bool resolved; /* the change ends a firing run (to inactive, or to ok), or ends a
			  flap episode with the instance inactive or at ok */
};

/* A new instance: inactive, level ok. */
void alert_instance_init(struct alert_instance *inst);

/*
 * Advances an alerting rule's instance by one evaluation at now_ms: present tells whether
 * the expression returned the instance's label set, with `value`. Returns true and fills
 * *change when the state changed.
 */
bool alert_step(struct alert_instance *inst, const struct alert_params *p, bool present,
		double value, int64_t now_ms, struct alert_change *change);

/*
 * Advances a threshold rule's instance by one evaluation: present false means no data.
 * Returns true and fills *change when the state or the level changed.
 */
bool alert_step_threshold(struct alert_instance *inst, const struct alert_params *p, bool present,
			  double value, int64_t now_ms, struct alert_change *change);

/* The level `value` points at with hysteresis from `current`; NaN points at `current`. */
enum alert_level alert_threshold_level(const struct alert_params *p, enum alert_level current,
				       double value);

/* Weighted percentage of state changes in the flap history (0 with fewer than 2 entries). */
double alert_flap_percent(const struct alert_instance *inst);

/* True when the instance needs no record any more: not flapping, inactive (or stale at ok
 * and not seen for longer than `retention_ms`), and resolved longer ago than `retention_ms`
 * or never fired. */
bool alert_instance_forgettable(const struct alert_instance *inst, int64_t now_ms,
				int64_t retention_ms);

#endif
