/*
 * The delivery loop: takes due rows from the outbox and hands them to their receiver
 * integration, at most max_in_flight at a time per integration, with the integration's
 * circuit breaker in front. One loop serves every integration, and each integration's
 * backlog is read on its own, so one dead endpoint holds up no other.
 *
 * The loop runs when something may have become due: a notification was written, an
 * attempt ended, or the timer for the earliest next attempt fired.
 */
#include <event2/event.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerter/alerter_impl.h"
#include "alerter/alerting_config.h"
#include "alerter/notification.h"
#include "alerter/outbox.h"
#include "collector/log.h"
#include "collector/statedb.h"
#include "collector/xalloc.h"

/* The shortest wait of the timer, so that a row that cannot start is not polled hot. */
#define MIN_WAKE_MS 5

const struct alerting_receiver *al_receiver(struct alerter *a, const char *name)
{
	return a->ac != NULL ? alerting_config_receiver(a->ac, name) : NULL;
}

static struct backoff_policy policy(const struct alerter *a)
{
	const struct alerting_retry *r = &a->ac->retry;

	return (struct backoff_policy){(int64_t)r->initial_ms, (int64_t)r->max_ms,
				       (int64_t)r->max_age_ms};
}

static struct dl_integration *integration_find(struct alerter *a, const char *receiver, int index)
{
	for (size_t i = 0; i < a->integration_count; i++) {
		struct dl_integration *in = a->integrations[i];

		if (in->index == index && strcmp(in->receiver, receiver) == 0)
			return in;
	}
	return NULL;
}

/* Matches the integrations to the new config; a breaker survives a reload of the same
 * receiver integration, so a reload does not hide that an endpoint is down. */
void al_delivery_apply(struct alerter *a)
{
	const struct alerting_config *ac = a->ac;

	for (size_t i = 0; i < a->integration_count; i++) {
		a->integrations[i]->present = false;
		a->integrations[i]->state = NULL;
	}
	for (size_t r = 0; ac != NULL && r < ac->receiver_count; r++) {
		const struct alerting_receiver *rcv = &ac->receivers[r];

		for (size_t k = 0; k < rcv->integration_count; k++) {
			const struct alerting_integration *ai = &rcv->integrations[k];
			struct dl_integration *in = integration_find(a, rcv->name, (int)k);

			if (in != NULL && in->type != ai->type) {
				in->type = ai->type;
				breaker_init(&in->breaker, ac->circuit_breaker.failures,
					     (int64_t)ac->circuit_breaker.cooldown_ms);
			}
			if (in == NULL) {
				in = xcalloc(1, sizeof(*in));
				in->receiver = xstrdup(rcv->name);
				in->index = (int)k;
				in->type = ai->type;
				breaker_init(&in->breaker, ac->circuit_breaker.failures,
					     (int64_t)ac->circuit_breaker.cooldown_ms);
				throttle_init(&in->fail_log, THROTTLE_DEFAULT_INITIAL_MS,
					      THROTTLE_DEFAULT_MAX_MS);
				a->integrations =
				    xrealloc(a->integrations,
					     (a->integration_count + 1) * sizeof(*a->integrations));
				a->integrations[a->integration_count++] = in;
			}
			in->breaker.threshold =
			    ac->circuit_breaker.failures ? ac->circuit_breaker.failures : 1;
			in->breaker.cooldown_ms = (int64_t)ac->circuit_breaker.cooldown_ms;
			in->state = ai->state;
			in->present = true;
		}
	}
}

void al_delivery_kick(struct alerter *a)
{
	if (!a->stopping && a->deliver_ev != NULL)
		event_active(a->deliver_ev, 0, 0);
}

static void attempt_unlink(struct alerter *a, struct dl_attempt *at)
{
	if (at->prev != NULL)
		at->prev->next = at->next;
	else
		a->attempts = at->next;
	if (at->next != NULL)
		at->next->prev = at->prev;
	at->in->in_flight--;
	a->in_flight--;
	notification_free(at->n);
	free(at);
}

static void log_outcome(struct alerter *a, struct dl_attempt *at, const struct delivery_outcome *o,
			int state, int64_t now)
{
	struct dl_integration *in = at->in;
	char ids[256];
	uint64_t hidden = 0;

	log_ids(ids, sizeof ids, "receiver", in->receiver, "type", in->type->name, "key",
		at->n != NULL ? at->n->idempotency_key : "?", NULL);
	if (state == OUTBOX_DELIVERED) {
		uint64_t failures = 0;

		if (throttle_ok(&in->fail_log, &failures))
			log_notice("alerter", ids, "delivering works again after %llu failures",
				   (unsigned long long)failures);
		log_info("alerter", ids, "notification delivered (%s)", o->reason);
		return;
	}
	if (state == OUTBOX_DEAD)
		return; /* the outbox logs every dead letter at error level */
	if (throttle_fail(&in->fail_log, (uint64_t)now, &hidden))
		log_warn("alerter", ids, "delivery failed (%s: %s); will retry%s", o->reason,
			 o->detail[0] ? o->detail : "no detail",
			 hidden ? " (similar failures were not logged)" : "");
	(void)a;
}

/* Records the outcome of attempt at, which ended at now, and frees it. */
static void finish(struct dl_attempt *at, const struct delivery_outcome *o, int64_t now)
{
	struct alerter *a = at->a;
	struct dl_integration *in = at->in;
	struct backoff_policy p = policy(a);
	int state = outbox_mark_result(a->outbox, at->id, o, now, &p);
	struct al_counter *c;

	breaker_record(&in->breaker, o->result, now);
	/* Looked up one after the other: each lookup may move the counters. */
	if (o->result != DELIVERY_OK)
		al_counter_for(a, in->receiver, o->reason)->failed++;
	c = al_counter_for(a, in->receiver, NULL);
	if (state == OUTBOX_DELIVERED) {
		c->delivered++;
		a->stats.delivered++;
		if (at->condition_ms > 0 && now >= at->condition_ms)
			al_record_latency(a, (double)(now - at->condition_ms) / 1000.0);
	} else if (state == OUTBOX_DEAD) {
		c->dead++;
		a->stats.dead++;
	} else {
		c->failed++;
		a->stats.failed++;
	}
	log_outcome(a, at, o, state, now);
	attempt_unlink(a, at);
	al_delivery_kick(a);
}

/*
 * Records the outcomes of the attempts that ended since the last call, in one transaction
 * so that one sync of the log file covers all of them. Outcomes that arrive while the
 * loop thread waits for that sync are recorded together at the next call.
 */
static void record_finished(struct alerter *a)
{
	bool batched;

	if (a->finished == NULL)
		return;
	batched = statedb_begin(a->db) == 0;
	while (a->finished != NULL) {
		struct dl_attempt *at = a->finished;

		a->finished = at->finished_next;
		if (a->finished == NULL)
			a->finished_tail = NULL;
		finish(at, &at->early, at->ended_ms);
	}
	/* A failed commit leaves the rows in state sending: they are sent again after a
	 * restart, as after a crash during the attempt. */
	if (batched && statedb_commit(a->db) < 0)
		statedb_rollback(a->db);
}

void al_delivery_on_results(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	record_finished(arg);
}

static void on_done(void *arg, const struct delivery_outcome *outcome)
{
	struct dl_attempt *at = arg;
	struct alerter *a = at->a;

	at->early = *outcome;
	if (at->starting) {
		at->ended_early = true;
		return;
	}
	/* The receiver is done with the operation: nothing is left to cancel. */
	at->op = NULL;
	at->ended_ms = al_wall_ms();
	at->finished_next = NULL;
	if (a->finished_tail != NULL)
		a->finished_tail->finished_next = at;
	else
		a->finished = at;
	a->finished_tail = at;
	if (a->results_ev != NULL)
		event_active(a->results_ev, 0, 0);
	else
		record_finished(a);
}

struct due_row {
	int64_t id;
	int64_t condition_ms;
	char *payload;
	char *key; /* the idempotency key, GROUP_KEY/SEQUENCE */
};

struct due_list {
	struct due_row *v;
	size_t count;
	size_t capacity;
};

static void collect_due(void *arg, const struct outbox_entry *e)
{
	struct due_list *l = arg;

	l->v = xreallocarray_grow(l->v, &l->capacity, l->count + 1, sizeof(*l->v));
	l->v[l->count++] = (struct due_row){e->id, e->condition_ms, xstrdup(e->payload),
					    xstrdup(e->idempotency_key)};
}

/* The attempts of one delivery turn whose rows are marked sending but not yet sent. */
struct prepared {
	struct dl_attempt **v;
	size_t count;
	size_t capacity;
};

/*
 * Marks the row sending and sets up its attempt, which counts as in flight from now on;
 * send_prepared() starts it once the mark is committed.
 */
static void prepare(struct alerter *a, struct dl_integration *in, struct due_row *row, int64_t now,
		    struct prepared *out)
{
	struct dl_attempt *at;
	struct delivery_outcome failed = {.result = DELIVERY_RETRY};
	char *error = NULL;

	if (outbox_mark_sending(a->outbox, row->id, now) < 0) {
		breaker_cancel(&in->breaker);
		return;
	}
	at = xcalloc(1, sizeof(*at));
	at->a = a;
	at->in = in;
	at->id = row->id;
	at->condition_ms = row->condition_ms;
	at->next = a->attempts;
	if (a->attempts != NULL)
		a->attempts->prev = at;
	a->attempts = at;
	in->in_flight++;
	a->in_flight++;

	at->n = notification_from_json(row->payload, &error);
	if (at->n == NULL) {
		failed.result = DELIVERY_PERMANENT;
		snprintf(failed.reason, sizeof failed.reason, "payload");
		snprintf(failed.detail, sizeof failed.detail, "stored notification unreadable: %s",
			 error);
		free(error);
		finish(at, &failed, now);
		return;
	}
	out->v = xreallocarray_grow(out->v, &out->capacity, out->count + 1, sizeof(*out->v));
	out->v[out->count++] = at;
}

static void send_prepared(struct alerter *a, struct dl_attempt *at)
{
	struct delivery_outcome failed = {.result = DELIVERY_RETRY};

	at->starting = true;
	at->op = at->in->type->send(at->in->state, a->base, at->n, 0, on_done, at, &failed);
	at->starting = false;
	if (at->ended_early)
		finish(at, &at->early, al_wall_ms());
	else if (at->op == NULL)
		finish(at, &failed, al_wall_ms());
}

/* The length of the group key in an idempotency key "GROUP_KEY/SEQUENCE". */
static size_t group_key_length(const char *key)
{
	const char *slash = strrchr(key, '/');

	return slash != NULL ? (size_t)(slash - key) : strlen(key);
}

/* True when an attempt of the same group is in flight on this integration. */
static bool group_in_flight(const struct alerter *a, const struct dl_integration *in,
			    const char *key)
{
	size_t length = group_key_length(key);

	for (const struct dl_attempt *at = a->attempts; at != NULL; at = at->next)
		if (at->in == in && at->n != NULL && strlen(at->n->group_key) == length &&
		    strncmp(at->n->group_key, key, length) == 0)
			return true;
	return false;
}

/*
 * A notification carries the whole state of its group, so a newer one of the same group
 * on the same integration makes an older undelivered one obsolete: sending it after the
 * newer one would leave the receiver with a stale state (a late "resolved" closing an
 * incident that fired again). Such a row is marked dead with the reason "superseded".
 * Returns true when row was superseded.
 */
static bool supersede_if_newer(struct alerter *a, const struct dl_integration *in,
			       const struct due_row *row)
{
	size_t length = group_key_length(row->key);
	char *low = xasprintf("%.*s/", (int)length, row->key);
	char *high = xasprintf("%.*s0", (int)length, row->key); /* '0' follows '/' */
	sqlite3_stmt *st = al_prepare(a, "SELECT id FROM outbox WHERE receiver = ?1 AND "
					 "integration = ?2 AND idempotency_key > ?3 AND "
					 "idempotency_key < ?4 AND id > ?5 LIMIT 1");
	bool newer = false;

	if (st != NULL) {
		sqlite3_bind_text(st, 1, in->receiver, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, in->index);
		sqlite3_bind_text(st, 3, low, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, high, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, row->id);
		newer = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_reset(st);
	}
	free(low);
	free(high);
	if (!newer)
		return false;

	st = al_prepare(a, "UPDATE outbox SET state = 'dead', last_reason = 'superseded', "
			   "last_detail = 'a newer notification of the group was written' "
			   "WHERE id = ?1 AND state IN ('queued', 'retrying')");
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, row->id);
		if (sqlite3_step(st) != SQLITE_DONE)
			log_error("alerter", NULL,
				  "state database: marking outbox row %lld superseded failed: %s",
				  (long long)row->id, sqlite3_errmsg(statedb_sqlite(a->db)));
		sqlite3_reset(st);
	}
	log_info("alerter", NULL, "notification %s to %s superseded by a newer one of its group",
		 row->key, in->receiver);
	return true;
}

/*
 * Starts what is due for one integration, oldest first, until it is full. A row waits
 * while an attempt of its group is in flight, so one group's notifications reach an
 * integration in order.
 */
static void pump(struct alerter *a, struct dl_integration *in, int64_t now,
		 struct prepared *prepared)
{
	for (int pass = 0; pass < 4 && in->in_flight < a->opts.max_in_flight && !a->stopping;
	     pass++) {
		struct due_list l = {0};
		size_t room = a->opts.max_in_flight - in->in_flight;
		size_t limit = room + 16; /* room for rows that wait behind their group */
		size_t started = 0;
		bool blocked = false;

		if (outbox_next_due(a->outbox, now, in->receiver, in->index, limit, collect_due,
				    &l) <= 0) {
			free(l.v);
			return;
		}
		for (size_t i = 0; i < l.count; i++) {
			struct due_row *row = &l.v[i];

			if (!blocked && in->in_flight < a->opts.max_in_flight &&
			    !group_in_flight(a, in, row->key) && !supersede_if_newer(a, in, row)) {
				if (breaker_allow(&in->breaker, now)) {
					prepare(a, in, row, now, prepared);
					started++;
				} else {
					blocked = true;
				}
			}
			free(row->payload);
			free(row->key);
		}
		free(l.v);
		if (blocked || started == 0 || l.count < limit)
			return;
	}
}

static void arm(struct alerter *a, int64_t now)
{
	int64_t next = INT64_MAX;
	struct timeval tv;

	for (size_t i = 0; i < a->integration_count; i++) {
		struct dl_integration *in = a->integrations[i];
		int64_t t;

		if (!in->present || in->in_flight >= a->opts.max_in_flight)
			continue;
		if (in->breaker.state == BREAKER_HALF_OPEN && in->breaker.trial_started)
			continue; /* the trial's end runs the loop */
		if (outbox_next_attempt(a->outbox, in->receiver, in->index, &t) != 1)
			continue;
		if (in->breaker.state == BREAKER_OPEN && breaker_retry_at(&in->breaker) > t)
			t = breaker_retry_at(&in->breaker);
		/* Due already and not started: it waits behind its group's attempt in flight,
		 * whose end runs the loop again. */
		if (t <= now)
			continue;
		if (t < next)
			next = t;
	}
	if (next == INT64_MAX)
		return;
	next = next - now > MIN_WAKE_MS ? next - now : MIN_WAKE_MS;
	tv.tv_sec = (time_t)(next / 1000);
	tv.tv_usec = (suseconds_t)(next % 1000) * 1000;
	evtimer_add(a->deliver_ev, &tv);
}

void al_delivery_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct alerter *a = arg;
	int64_t now = al_wall_ms();
	struct prepared prepared = {0};
	bool batched;

	(void)fd;
	(void)what;
	if (a->stopping || a->ac == NULL)
		return;
	/* Outcomes first: they free room in flight and end a group's wait. */
	record_finished(a);
	/* The rows of all attempts of this turn are marked sending in one transaction, and
	 * no attempt starts before that mark is on disk. */
	batched = statedb_begin(a->db) == 0;
	for (size_t i = 0; i < a->integration_count; i++)
		if (a->integrations[i]->present)
			pump(a, a->integrations[i], now, &prepared);
	if (batched && statedb_commit(a->db) < 0) {
		statedb_rollback(a->db);
		/* The rows are queued again; the refresh timer runs this loop again. */
		for (size_t i = 0; i < prepared.count; i++) {
			breaker_cancel(&prepared.v[i]->in->breaker);
			attempt_unlink(a, prepared.v[i]);
		}
		prepared.count = 0;
	}
	for (size_t i = 0; i < prepared.count; i++)
		send_prepared(a, prepared.v[i]);
	free(prepared.v);
	arm(a, now);
}

/* Cancels every attempt in flight; each is retried at once with the current receivers. */
void al_delivery_cancel_all(struct alerter *a)
{
	struct delivery_outcome o = {.result = DELIVERY_RETRY, .retry_after_ms = 1};
	int64_t now = al_wall_ms();

	snprintf(o.reason, sizeof o.reason, "cancelled");
	snprintf(o.detail, sizeof o.detail, "attempt cancelled by a reload or a stop");
	/* Attempts that ended keep their outcome. */
	record_finished(a);
	while (a->attempts != NULL) {
		struct dl_attempt *at = a->attempts;

		if (at->op != NULL)
			at->in->type->cancel(at->op);
		breaker_cancel(&at->in->breaker);
		if (a->ac != NULL) {
			struct backoff_policy p = policy(a);

			outbox_mark_result(a->outbox, at->id, &o, now, &p);
		}
		attempt_unlink(a, at);
	}
}

void al_delivery_free(struct alerter *a)
{
	for (size_t i = 0; i < a->integration_count; i++) {
		free(a->integrations[i]->receiver);
		free(a->integrations[i]);
	}
	free(a->integrations);
	for (size_t i = 0; i < a->counter_count; i++) {
		free(a->counters[i].receiver);
		free(a->counters[i].reason);
	}
	free(a->counters);
}
