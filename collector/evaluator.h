/*
 * The evaluator: runs each rule group of a rule set on its interval over the in-memory
 * sample windows, writes recording rules' results as series (exported and archived like
 * probe series), advances alert instances (collector/alert.h), observes SLOs, and hands
 * every alert transition to the alerter through one function after persisting it.
 *
 * Exported series: ALERTS{alertname,alertstate,...} (1 for pending and firing instances),
 * ALERTS_FOR_STATE{alertname,...} (the Unix time the instance became active),
 * tocsin_rule_evaluation_duration_seconds{rule_group}, tocsin_rule_evaluation_failures_total
 * {rule_group}, tocsin_rule_group_iterations_missed_total{rule_group},
 * tocsin_rule_group_early_evaluations_total{rule_group},
 * tocsin_rule_group_last_evaluation_timestamp_seconds{rule_group}, and per SLO
 * tocsin_slo_objective_ratio, tocsin_slo_sli_ratio{window}, tocsin_slo_burn_rate{window},
 * tocsin_slo_error_budget_remaining_ratio.
 *
 * Time: the daemon's evaluator runs on libevent timers and the wall clock; a virtual one
 * (base NULL) runs only when evaluator_eval_at() is called, for --test-rules, unit tests
 * and benchmarks. A group whose evaluation overruns its interval skips the turns it
 * missed and counts them. A group whose rules read probe outcomes is also evaluated out of
 * turn soon after an outcome changes (evaluator_nudge()).
 *
 * Persistence: with a state database, the instances of every alert rule are restored when
 * a rule set is applied (so pending timers resume at their original start and firing
 * alerts are not announced again), and every changed instance and every transition is
 * written in one transaction per group evaluation, before the transition is handed on.
 */
#ifndef TOCSIN_EVALUATOR_H
#define TOCSIN_EVALUATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/alert.h"
#include "collector/rules.h"
#include "collector/statedb.h"

struct event_base;
struct series_registry;
struct store;
struct window_store;

struct evaluator;

/* store and db may be NULL (nothing archived, nothing persisted). */
struct evaluator *evaluator_new(struct event_base *base, struct series_registry *reg,
				struct store *store, struct window_store *ws, struct statedb *db);
void evaluator_free(struct evaluator *ev);

/* Labels added to every alert and recorded series ($externalLabels in templates). */
void evaluator_set_external_labels(struct evaluator *ev, const struct label *labels, size_t count);

/*
 * Replaces the rule set (the evaluator takes ownership of `set`; NULL removes all rules).
 * Instances of rules whose key survives keep their state; series of removed recording
 * rules and alerts of removed rules are dropped. With a base, timers start aligned to
 * each group's interval (offset by a stable hash of the group's name).
 */
void evaluator_apply(struct evaluator *ev, struct rule_set *set, int64_t now_ms);

/* Evaluates every group whose next evaluation is due at or before now_ms (virtual clock). */
void evaluator_eval_at(struct evaluator *ev, int64_t now_ms);

/* Evaluates one group now (the timers' entry point; tests). */
void evaluator_eval_group(struct evaluator *ev, size_t group_index, int64_t now_ms);

/*
 * After a restart the probes need up to one interval before their series exist again.
 * For grace_ms after an alert instance is restored, an evaluation that does not return
 * it leaves its state alone instead of resolving it, so that a restart does not end a
 * firing alert and start it again. Default 0 (off); the daemon passes the longest probe
 * interval plus its timeout.
 */
void evaluator_set_restore_grace(struct evaluator *ev, int64_t grace_ms);

/* Receives every transition after it is persisted; pointers valid during the call. */
typedef void evaluator_transition_fn(void *arg, const struct statedb_transition *t);
void evaluator_on_transition(struct evaluator *ev, evaluator_transition_fn *fn, void *arg);

/*
 * Tells the evaluator that a probe's outcome or health just changed. Groups with a rule
 * that can read tocsin_probe_success, tocsin_probe_up or probe_success are evaluated
 * about 20 ms later instead of at their next turn. So an alert on a target going down
 * does not wait up to a whole interval. Such evaluations of one group are at least 1 s
 * apart, or a quarter of its interval when that is longer.
 */
void evaluator_nudge(struct evaluator *ev);

/* One alert instance as the API and --test-rules see it. */
struct evaluator_alert {
	const char *group;
	const char *rule_key;
	const char *alertname;
	const struct label *labels; /* sorted, alertname (and severity) included */
	size_t label_count;
	const struct label *annotations;
	size_t annotation_count;
	const struct alert_instance *inst;
};
typedef void evaluator_alert_fn(void *arg, const struct evaluator_alert *a);
/* Calls fn for every instance that is pending, firing or stale. */
void evaluator_alerts(const struct evaluator *ev, evaluator_alert_fn *fn, void *arg);

/* The rule set in use (NULL when none) and the SLO states, for the API. */
const struct rule_set *evaluator_rules(const struct evaluator *ev);
const struct slo_state *evaluator_slo(const struct evaluator *ev, size_t index);

/* The last evaluation of a group of evaluator_rules(), for the API. */
struct evaluator_group_status {
	int64_t interval_ms;
	int64_t last_eval_ms; /* 0 before the first evaluation */
	double last_duration_s;
	uint64_t iterations, missed, failures;
};
/* The last evaluation of one rule; last_error is NULL when it succeeded. */
struct evaluator_rule_status {
	int64_t last_eval_ms; /* 0 before the first evaluation; failed ones count */
	double last_duration_s;
	const char *last_error; /* valid until the rule's next evaluation */
	uint64_t failures;
	size_t instance_count; /* alert instances the rule holds (any state) */
};
/*
 * Fill *out for group `group` (and its rule `rule`) of evaluator_rules(), indexes in file
 * order, and return true; false when an index is out of range.
 */
bool evaluator_group_status(const struct evaluator *ev, size_t group,
			    struct evaluator_group_status *out);
bool evaluator_rule_status(const struct evaluator *ev, size_t group, size_t rule,
			   struct evaluator_rule_status *out);

uint64_t evaluator_failures_total(const struct evaluator *ev);
void evaluator_stop(struct evaluator *ev);

#endif
