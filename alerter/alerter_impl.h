/*
 * The alerter's internals, shared by its three files: alerter.c (lifecycle, the alert
 * store and its table, metrics), aggr.c (aggregation groups and their notification log)
 * and delivery.c (the outbox loop with receivers and circuit breakers).
 */
#ifndef TOCSIN_ALERTER_IMPL_H
#define TOCSIN_ALERTER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerter/alerter.h"
#include "alerter/backoff.h"
#include "alerter/breaker.h"
#include "alerter/receiver.h"
#include "collector/series.h"
#include "collector/throttle.h"

struct event;
struct route;
struct sqlite3_stmt;

/* One alert: a rule's instance at one label set (a threshold alert's severity is part of
 * the label set, so a warning and a critical alert of one instance are two alerts). */
struct al_alert {
	char *rule;
	uint64_t fp;       /* of the labels: the notification's fingerprint */
	uint64_t ident_fp; /* the evaluator's, without a threshold alert's severity */
	struct label *labels;
	size_t label_count;
	struct label *annotations;
	size_t annotation_count;
	bool firing;
	int64_t starts_at_ms;
	int64_t ends_at_ms;
	int64_t condition_ms; /* when the evaluator saw the last change */
	unsigned group_refs;  /* groups holding it; resolved and 0: deleted */
	struct al_alert *hash_next;
};

/* An aggregation group and its notification log. */
struct al_group {
	char *key;
	const struct route *route;
	struct label *group_labels;
	size_t group_label_count;
	struct al_alert **alerts;
	size_t alert_count;
	size_t alert_capacity;
	uint64_t *notified; /* fingerprints last notified as firing, sorted */
	size_t notified_count;
	uint64_t sequence;
	int64_t first_ms;       /* when the group formed (the first alert's condition) */
	int64_t last_notify_ms; /* 0 before the first notification */
	int64_t next_flush_ms;
	int64_t am_resend_ms; /* next re-send to Alertmanager integrations, 0 when none */
	bool flushed;
	struct al_group *hash_next;
};

/* A group log read back from the database, waiting for its group to form again. */
struct al_saved_group {
	char *key;
	char *receiver; /* the receiver it was kept for; "" when not recorded */
	uint64_t sequence;
	int64_t first_ms;
	int64_t last_notify_ms;
	bool flushed;
	uint64_t *notified;
	size_t notified_count;
	struct al_saved_group *next;
};

/* One integration of one receiver as the delivery loop knows it. */
struct dl_integration {
	char *receiver;
	int index; /* in the receiver's integrations: the outbox column */
	const struct receiver_type *type;
	void *state; /* the config's parsed options: valid until the next alerter_apply() */
	struct breaker breaker;
	unsigned in_flight;
	bool present; /* in the current config */
	struct throttle fail_log;
};

struct dl_attempt {
	struct alerter *a;
	struct dl_integration *in;
	int64_t id;
	int64_t condition_ms;
	bool first_attempt;
	struct notification *n;
	struct receiver_op *op;
	/* A receiver that reports the outcome from inside send() gets it kept here until
	 * send() has returned. */
	bool starting;
	bool ended_early;
	struct delivery_outcome early; /* the outcome, once the attempt ended */
	int64_t ended_ms;
	struct dl_attempt *prev, *next;
	struct dl_attempt *finished_next; /* in alerter.finished */
};

#define AL_LATENCY_BUCKETS 12

/* Delivery results of one receiver (reason NULL), or the failed attempts of one receiver
 * for one reason ("429", "5xx", "timeout", ...) in `failed`. */
struct al_counter {
	char *receiver;
	char *reason;
	uint64_t delivered, failed, dead;
};

struct al_stmt {
	const char *sql;
	struct sqlite3_stmt *stmt;
};

struct alerter {
	struct event_base *base;
	struct statedb *db;
	struct series_registry *reg;
	struct alerter_options opts;
	const struct alerting_config *ac;

	struct silence_set *silences;
	struct ack_set *acks;
	struct outbox *outbox;
	struct backoff_random random;
	int64_t cursor; /* the last transition read */
	/* Transitions the evaluator handed over after committing them, in id order, with
	 * their strings owned: the intake applies them without reading the log back. Entries
	 * before handover_head are consumed. */
	struct statedb_transition *handover;
	size_t handover_head;
	size_t handover_count;
	size_t handover_capacity;

	/* The alert store: a hash table by fingerprint. */
	struct al_alert **alert_buckets;
	size_t alert_bucket_count;
	size_t alert_count;

	/* Groups: a hash table by key. */
	struct al_group **group_buckets;
	size_t group_bucket_count;
	size_t group_count;
	struct al_saved_group *saved;

	struct dl_integration **integrations;
	size_t integration_count;
	struct dl_attempt *attempts;
	/* Attempts that ended and whose outcome is not recorded yet, oldest first; they stay
	 * in `attempts` and in flight until then. */
	struct dl_attempt *finished, *finished_tail;
	size_t in_flight;
	struct al_counter *counters;
	size_t counter_count;
	uint64_t latency_buckets[AL_LATENCY_BUCKETS + 1];
	double latency_sum;
	uint64_t latency_count;

	/* Prepared statements by their SQL text's address (each text is one literal). */
	struct al_stmt stmts[16];
	size_t stmt_count;

	struct event *intake_ev;  /* reads the transition log */
	struct event *flush_ev;   /* the earliest group check */
	struct event *deliver_ev; /* the delivery loop */
	struct event *refresh_ev; /* silences and acks changed by other processes; pruning */
	struct event *results_ev; /* records the outcomes of attempts that ended */
	int64_t last_prune_ms;
	bool stopping;
	struct alerter_stats stats;
};

int64_t al_wall_ms(void);
/* The prepared statement for sql (a string literal), reset; NULL when it cannot be
 * prepared (the error is in sqlite3_errmsg). Finalized by alerter_free(). */
struct sqlite3_stmt *al_prepare(struct alerter *a, const char *sql);

/* alerter.c: the store. */
struct al_alert *al_alert_find(struct alerter *a, const char *rule, uint64_t fp);
void al_alert_release(struct alerter *a, struct al_alert *al); /* one group let go of it */
/* Frees the store and reads it again from its table (groups must be emptied first). */
int al_store_reload(struct alerter *a, char **error);
int al_alert_delete_row(struct alerter *a, const struct al_alert *al);
uint64_t al_labels_fingerprint(const struct label *v, size_t count);

/* alerter.c: metrics. */
void al_record_latency(struct alerter *a, double seconds);
struct al_counter *al_counter_for(struct alerter *a, const char *receiver, const char *reason);

/* aggr.c */
int al_groups_open(struct alerter *a, char **error);
void al_groups_route(struct alerter *a, struct al_alert *al, int64_t now_ms);
void al_groups_rebuild(struct alerter *a, int64_t now_ms);
void al_groups_schedule(struct alerter *a);
void al_groups_on_flush_timer(int fd, short what, void *arg);
void al_groups_free(struct alerter *a);
/* What keeps a firing alert from being notified at now_ms. */
void al_alert_suppression(struct alerter *a, const struct al_alert *al, int64_t now_ms,
			  const char **silence, bool *inhibited, uint64_t *inhibitor);

/* delivery.c */
void al_delivery_apply(struct alerter *a);
void al_delivery_kick(struct alerter *a);
void al_delivery_on_timer(int fd, short what, void *arg);
void al_delivery_on_results(int fd, short what, void *arg);
void al_delivery_cancel_all(struct alerter *a);
void al_delivery_free(struct alerter *a);
/* The integrations of a receiver in the current config (NULL when it has none). */
const struct alerting_receiver *al_receiver(struct alerter *a, const char *name);

#endif
