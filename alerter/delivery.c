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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerter/alerter_impl.h"
#include "alerter/alerting_config.h"
#include "alerter/notification.h"
#include "alerter/outbox.h"
#include "collector/log.h"
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

static void finish(struct dl_attempt *at, const struct delivery_outcome *o)
{
	struct alerter *a = at->a;
	struct dl_integration *in = at->in;
	int64_t now = al_wall_ms();
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

static void on_done(void *arg, const struct delivery_outcome *outcome)
{
	struct dl_attempt *at = arg;

	if (at->starting) {
		at->early = *outcome;
		at->ended_early = true;
		return;
	}
	finish(at, outcome);
}

struct due_row {
	int64_t id;
	int64_t condition_ms;
	char *payload;
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
	l->v[l->count++] = (struct due_row){e->id, e->condition_ms, xstrdup(e->payload)};
}

static void start(struct alerter *a, struct dl_integration *in, struct due_row *row, int64_t now)
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
		finish(at, &failed);
		return;
	}
	at->starting = true;
	at->op = in->type->send(in->state, a->base, at->n, 0, on_done, at, &failed);
	at->starting = false;
	if (at->ended_early)
		finish(at, &at->early);
	else if (at->op == NULL)
		finish(at, &failed);
}

/* Starts what is due for one integration; returns when it is full or nothing is due. */
static void pump(struct alerter *a, struct dl_integration *in, int64_t now)
{
	while (in->in_flight < a->opts.max_in_flight && !a->stopping) {
		struct due_list l = {0};
		size_t room = a->opts.max_in_flight - in->in_flight;
		bool blocked = false;

		if (outbox_next_due(a->outbox, now, in->receiver, in->index, room, collect_due,
				    &l) <= 0) {
			free(l.v);
			return;
		}
		for (size_t i = 0; i < l.count; i++) {
			if (!blocked && breaker_allow(&in->breaker, now))
				start(a, in, &l.v[i], now);
			else
				blocked = true;
			free(l.v[i].payload);
		}
		free(l.v);
		if (blocked || l.count < room)
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

	(void)fd;
	(void)what;
	if (a->stopping || a->ac == NULL)
		return;
	for (size_t i = 0; i < a->integration_count; i++)
		if (a->integrations[i]->present)
			pump(a, a->integrations[i], now);
	arm(a, now);
}

/* Cancels every attempt in flight; each is retried at once with the current receivers. */
void al_delivery_cancel_all(struct alerter *a)
{
	struct delivery_outcome o = {.result = DELIVERY_RETRY, .retry_after_ms = 1};
	int64_t now = al_wall_ms();

	snprintf(o.reason, sizeof o.reason, "cancelled");
	snprintf(o.detail, sizeof o.detail, "attempt cancelled by a reload or a stop");
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
