/*
 * The outbox: every notification is written to the state database before its first
 * attempt, one row per receiver integration, and its state changes are written as they
 * happen (synchronous=FULL), so a restart loses none. Delivery is at least once: an
 * attempt that a crash interrupted is made again after the restart. Loop thread only.
 *
 * States: queued (never attempted) and retrying entries are due once next_attempt_ms has
 * come. An entry is sending while an attempt is in flight. Delivered and dead (given up)
 * are final. Times are Unix milliseconds passed in by the caller.
 *
 * Errors: functions return -1 and log once per kind of failure (throttled) with the
 * SQLite message and the database path.
 */
#ifndef TOCSIN_OUTBOX_H
#define TOCSIN_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "alerter/backoff.h"
#include "alerter/receiver.h"

struct outbox;
struct statedb;

enum outbox_state {
	OUTBOX_QUEUED,
	OUTBOX_SENDING,
	OUTBOX_DELIVERED,
	OUTBOX_RETRYING,
	OUTBOX_DEAD,
	OUTBOX_STATE_COUNT,
};

/* The state filter of outbox_list() that selects every state. */
#define OUTBOX_STATE_ANY (-1)

/* One row. Strings are never NULL ("" when unset); times are 0 when unset. */
struct outbox_entry {
	int64_t id;
	const char *idempotency_key; /* the notification's "GROUP_KEY/SEQUENCE" */
	const char *receiver;
	int integration; /* index of the integration in the receiver's config */
	enum outbox_state state;
	int attempts; /* attempts started, the one in flight included */
	int64_t created_ms;
	int64_t next_attempt_ms;
	int64_t last_attempt_ms;
	int64_t delivered_ms;
	int64_t condition_ms;    /* when the evaluator saw the change, for latency */
	const char *last_reason; /* the last outcome's reason ("429", "timeout", ...) */
	const char *last_detail;
	const char *payload; /* the notification as JSON */
};

/* Called with entries whose pointers are valid during the call only. */
typedef void outbox_entry_fn(void *arg, const struct outbox_entry *e);

/*
 * Creates the outbox table in db when missing and prepares its statements. Every row
 * left in `sending` by a crash or a kill goes back to `retrying`, due at once (it was due
 * when its attempt started), and one notice line counts them. Returns NULL with *error
 * set (caller frees) when the table cannot be created, for instance when the database
 * has a newer outbox schema. db must outlive the outbox.
 */
struct outbox *outbox_open(struct statedb *db, char **error);
void outbox_close(struct outbox *ob);

/*
 * Replaces the random source of the back-off jitter (by default a generator seeded from
 * getrandom(2)). For tests.
 */
void outbox_set_random(struct outbox *ob, backoff_random_fn *random, void *random_arg);

/*
 * Writes a queued entry due at now_ms and returns its id (> 0), or -1. Idempotent: when
 * (idempotency_key, integration) is already stored, returns that row's id and changes
 * nothing, whatever its state and payload, so replaying the evaluator's transitions
 * after a restart sends nothing twice.
 */
int64_t outbox_enqueue(struct outbox *ob, const char *receiver, int integration,
		       const char *idempotency_key, const char *payload_json, int64_t condition_ms,
		       int64_t now_ms);

/*
 * Calls fn for up to `limit` entries due at now_ms (queued or retrying with
 * next_attempt_ms <= now_ms), the earliest next_attempt_ms first and then by id. receiver
 * (NULL for all) and integration (-1 for all) filter them, so a dispatcher can skip an
 * integration whose breaker is open without that integration's backlog hiding the
 * others. The rows are read before fn is called, so fn may call outbox_mark_sending().
 * Returns the number passed to fn, or -1.
 */
int outbox_next_due(struct outbox *ob, int64_t now_ms, const char *receiver, int integration,
		    size_t limit, outbox_entry_fn *fn, void *arg);

/*
 * Sets *next_ms to the earliest next_attempt_ms of the queued and retrying entries
 * (with the same filters as outbox_next_due), for arming a timer. Returns 1 when there is
 * one, 0 when nothing is waiting, -1 on failure.
 */
int outbox_next_attempt(struct outbox *ob, const char *receiver, int integration, int64_t *next_ms);

/*
 * Marks entry id as sending before its attempt starts: counts the attempt and sets
 * last_attempt_ms. Returns 0, or -1 when the entry is missing or not queued or retrying
 * (logged: the caller has a bug) or on failure.
 */
int outbox_mark_sending(struct outbox *ob, int64_t id, int64_t now_ms);

/*
 * Records the outcome of the attempt in flight of entry id (state sending) and returns
 * the new state, or -1 when the entry is missing or not sending, or on failure:
 *   DELIVERY_OK: delivered at now_ms.
 *   DELIVERY_PERMANENT: dead.
 *   DELIVERY_RETRY: dead once policy->max_age_ms has passed since the entry was created;
 *     otherwise retrying, next attempt after the outcome's Retry-After capped at
 *     max_ms, or without one after a full-jitter back-off for the attempts made so far.
 *     An attempt that would fall after the max_age deadline is made at the deadline.
 * Each entry that turns dead is logged once at error level with the receiver, key and
 * reason, and counted in outbox_dead_total().
 */
int outbox_mark_result(struct outbox *ob, int64_t id, const struct delivery_outcome *outcome,
		       int64_t now_ms, const struct backoff_policy *policy);

/* Rows per state (indexed by enum outbox_state), of one receiver or of all (NULL). */
struct outbox_counts {
	uint64_t state[OUTBOX_STATE_COUNT];
};
int outbox_counts(struct outbox *ob, const char *receiver, struct outbox_counts *out);

/* Entries turned dead since outbox_open(), for a counter metric. */
uint64_t outbox_dead_total(const struct outbox *ob);

/*
 * Returns a copy of entry id (free it with outbox_entry_free()), or NULL when it is
 * missing or on failure.
 */
struct outbox_entry *outbox_get(struct outbox *ob, int64_t id);
void outbox_entry_free(struct outbox_entry *e);

/*
 * Calls fn for up to `limit` entries in `state` (an enum outbox_state, or
 * OUTBOX_STATE_ANY), newest first (by id), skipping the first `offset`. For inspection:
 * the API lists dead letters with it. Returns the number passed to fn, or -1.
 */
int outbox_list(struct outbox *ob, int state, size_t limit, size_t offset, outbox_entry_fn *fn,
		void *arg);

/* Deletes delivered entries delivered before before_ms; returns how many, or -1. */
int outbox_prune(struct outbox *ob, int64_t before_ms);

/* "queued", "sending", "delivered", "retrying" or "dead"; and the reverse (-1 if unknown). */
const char *outbox_state_name(enum outbox_state state);
int outbox_state_parse(const char *name, enum outbox_state *out);

#endif
