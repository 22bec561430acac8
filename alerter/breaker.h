/*
 * A circuit breaker per receiver integration (one webhook URL, one SMTP server). After
 * `threshold` consecutive temporary failures it opens, and no attempt starts for the
 * cool-down. Then it is half-open and lets one trial attempt through. The trial closes it
 * on success and opens it again on a temporary failure. Permanent failures concern one
 * payload, not the endpoint, so they leave the breaker as it is. Pure logic on
 * caller-supplied times; the dispatcher owns one struct per integration.
 */
#ifndef TOCSIN_BREAKER_H
#define TOCSIN_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "alerter/receiver.h"

enum breaker_state {
	BREAKER_CLOSED,
	BREAKER_OPEN,
	BREAKER_HALF_OPEN,
};

struct breaker {
	unsigned threshold;  /* consecutive temporary failures that open it; >= 1 */
	int64_t cooldown_ms; /* how long it stays open before the trial attempt */
	enum breaker_state state;
	unsigned failures;     /* consecutive temporary failures while closed */
	int64_t opened_ms;     /* when it last opened */
	bool trial_started;    /* half-open: the trial attempt is in flight */
	uint64_t opened_total; /* how many times it opened, for a counter metric */
};

/* Initializes b closed. A threshold of 0 is taken as 1. */
void breaker_init(struct breaker *b, unsigned threshold, int64_t cooldown_ms);

/*
 * Returns whether an attempt may start at now_ms. Closed: always. Open: no, until the
 * cool-down has passed; then the breaker turns half-open and this call's attempt is the
 * trial. Half-open: only when no trial is in flight. Every attempt allowed must end
 * with breaker_record() or breaker_cancel().
 */
bool breaker_allow(struct breaker *b, int64_t now_ms);

/*
 * Records the outcome of an attempt. DELIVERY_OK resets the failure count and closes a
 * half-open breaker; DELIVERY_RETRY counts a failure, opens a closed breaker at the
 * threshold and reopens a half-open one (the cool-down restarts at now_ms);
 * DELIVERY_PERMANENT changes nothing but ends a trial, so the next call to
 * breaker_allow() starts another. While open, outcomes are ignored: they come from
 * attempts that started before it opened.
 */
void breaker_record(struct breaker *b, enum delivery_result result, int64_t now_ms);

/* Ends an allowed attempt that produced no outcome (cancelled by a reload or a stop). */
void breaker_cancel(struct breaker *b);

/* When an open breaker lets the trial through (opened_ms + cooldown_ms); 0 otherwise. */
int64_t breaker_retry_at(const struct breaker *b);

/* "closed", "open" or "half_open", for metrics and logs. */
const char *breaker_state_name(enum breaker_state state);

#endif
