/*
 * The alerter: turns the evaluator's alert transitions into notifications and delivers
 * them. Its promise is that every notification that should go out does, even across
 * crashes, and that none goes out twice for one change except when a delivery must be
 * retried.
 *
 * The path of a transition:
 *   1. The evaluator appends it to the state database's transition log. The alerter
 *      reads the log after its own cursor, so a transition that arrived while tocsind was
 *      down or that a crash interrupted is read again. The evaluator hands committed
 *      transitions over in memory as well, so a running alerter does not parse them back. The alert store (table
 *      alerter_alerts) and the cursor change in one transaction.
 *   2. Each alert is routed (alerter/route.h) into aggregation groups. A group sends its
 *      first notification after group_wait, then checks every group_interval whether
 *      something changed, and repeats an unchanged one after repeat_interval. Silenced and
 *      inhibited alerts are left out, muted routes send nothing, and acknowledged alerts
 *      repeat nothing. Each group's notification log (sequence number, the alerts last
 *      notified as firing) is in table alerter_groups, written in the same transaction as
 *      the outbox rows of the notification, so a restart neither loses nor repeats one.
 *   3. The outbox (alerter/outbox.h) delivers each row with its receiver, one circuit
 *      breaker per receiver integration, and retries with back-off.
 *
 * Without the state database there is no alerting: alerter_new() returns NULL.
 * Loop thread only.
 */
#ifndef TOCSIN_ALERTER_H
#define TOCSIN_ALERTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/series.h"

struct ack;
struct ack_set;
struct alerting_config;
struct event_base;
struct outbox;
struct series_registry;
struct silence_set;
struct statedb;
struct statedb_transition;

struct alerter;

/* Tunables that tests and benchmarks change; alerter_new() uses the defaults. */
struct alerter_options {
	/* The shortest wait between two checks of one group: a group_interval or group_wait
	 * of 0s means "as soon as possible", never a busy loop. */
	int64_t min_tick_ms;
	/* Attempts in flight per receiver integration. */
	unsigned max_in_flight;
	/* Delivered outbox rows and transitions older than this are deleted. */
	int64_t keep_delivered_ms;
};

#define ALERTER_DEFAULT_MIN_TICK_MS       10
#define ALERTER_DEFAULT_MAX_IN_FLIGHT     16
#define ALERTER_DEFAULT_KEEP_DELIVERED_MS (7 * 24 * 3600 * INT64_C(1000))

/*
 * Opens the alerter's tables in db and loads the alert store and the groups' logs.
 * Returns NULL with *error set (caller frees) when a table cannot be created or read.
 * opts may be NULL for the defaults. reg gets the alerter's metrics (may be NULL).
 * Nothing is routed or delivered until alerter_apply() gives it a config.
 */
struct alerter *alerter_new(struct event_base *base, struct statedb *db,
			    struct series_registry *reg, const struct alerter_options *opts,
			    char **error);

/*
 * Takes the `alerting` section of a newly loaded config (NULL when it has none: alerts
 * are then kept in the store but not notified). The section must stay valid until the
 * next call or alerter_free(). Attempts in flight on the previous section's receivers
 * are cancelled and made again with the new ones; groups are rebuilt from the store and
 * keep their notification logs where their keys stay the same.
 */
void alerter_apply(struct alerter *a, const struct alerting_config *ac);

/*
 * The evaluator's hook (evaluator_on_transition), called after the evaluator's commit. A
 * transition that statedb_transition_committed() confirms is copied and applied from
 * memory at the next intake. Any other is read back from the log, which stays the record
 * that a restart reads from the alerter's cursor on.
 */
void alerter_on_transition(void *arg, const struct statedb_transition *t);

/* Brings the alerter's metrics in the registry up to date (before a /metrics render). */
void alerter_refresh_metrics(struct alerter *a);

/* Stops timers and cancels attempts in flight (they are made again after a restart). */
void alerter_stop(struct alerter *a);
void alerter_free(struct alerter *a);

/* For the API and the command line: the sets the alerter reads at each group check. */
struct silence_set *alerter_silences(struct alerter *a);
struct ack_set *alerter_acks(struct alerter *a);
struct outbox *alerter_outbox(struct alerter *a);

/* An alert in the store, with the silence or inhibition that keeps it from being notified. */
struct alerter_alert_view {
	const char *rule;
	uint64_t fingerprint; /* of the label set */
	const struct label *labels;
	size_t label_count;
	const struct label *annotations;
	size_t annotation_count;
	bool firing;
	int64_t starts_at_ms;
	int64_t ends_at_ms;
	const char *silenced_by; /* silence id, or NULL */
	bool inhibited;
	uint64_t inhibited_by; /* the source alert's fingerprint when inhibited */
	const struct ack *ack; /* the active acknowledgement, or NULL */
};
typedef void alerter_alert_fn(void *arg, const struct alerter_alert_view *v);

/* Calls fn for every alert in the store (firing, and resolved ones not yet notified). */
void alerter_list_alerts(struct alerter *a, int64_t now_ms, alerter_alert_fn *fn, void *arg);

/* True when the store contains a firing alert of rule with this fingerprint (of its labels,
 * as alerter_list_alerts() reports it): the key of acknowledgements. */
bool alerter_alert_firing(struct alerter *a, const char *rule, uint64_t fingerprint);

/* Counters for tests and logs. */
struct alerter_stats {
	uint64_t transitions;   /* read from the log */
	uint64_t notifications; /* notifications written to the outbox (per receiver) */
	uint64_t delivered;     /* outbox rows delivered */
	uint64_t failed;        /* attempts that failed and will be retried */
	uint64_t dead;          /* outbox rows given up */
	size_t alerts;          /* in the store */
	size_t groups;
	size_t in_flight;
};
void alerter_get_stats(const struct alerter *a, struct alerter_stats *out);

#endif
