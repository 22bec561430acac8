/*
 * The receiver interface: one implementation per notifier (email, webhook, alertmanager,
 * exec), each in its own file, registered in alerter/receiver.c. A receiver parses its
 * options from the `alerting.receivers[]` entry once per config load, and then sends
 * notifications without blocking the loop: send() starts the delivery and calls done()
 * exactly once, on the loop thread, with the outcome (or never, after cancel()).
 */
#ifndef TOCSIN_RECEIVER_H
#define TOCSIN_RECEIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "alerter/notification.h"

struct cfg_map;
struct event_base;

enum delivery_result {
	DELIVERY_OK,
	DELIVERY_RETRY,     /* a temporary failure: retry with back-off */
	DELIVERY_PERMANENT, /* retrying cannot help (4xx other than 408 and 429, bad address) */
};

struct delivery_outcome {
	enum delivery_result result;
	int64_t retry_after_ms; /* from Retry-After (relative), 0 when none */
	char reason[32];        /* short, for metrics: "2xx", "429", "5xx", "timeout", "reset",
				   "refused", "tls", "4xx", "smtp_4xx", "smtp_5xx", ... */
	char detail[512];       /* for logs: status line, server reply, curl error */
};

typedef void receiver_done_fn(void *arg, const struct delivery_outcome *outcome);

struct receiver_op;

struct receiver_type {
	const char *name; /* the key that selects it in the config: "email", "webhook", ... */
	/*
	 * Parses the options under the key (e.g. the mapping of `email:`). Records errors in
	 * the cfg with positions and returns -1, or returns 0 and sets *state.
	 */
	int (*parse)(struct cfg_map *options, void **state);
	void (*free)(void *state);
	/*
	 * Starts delivering n (which stays valid until done() or cancel()). timeout_ms bounds
	 * the whole attempt. Returns NULL and calls nothing when it cannot start (the outcome
	 * is then written to *failed).
	 */
	struct receiver_op *(*send)(void *state, struct event_base *base,
				    const struct notification *n, int64_t timeout_ms,
				    receiver_done_fn *done, void *arg,
				    struct delivery_outcome *failed);
	/* Stops an attempt in flight; done() is not called afterwards. */
	void (*cancel)(struct receiver_op *op);
};

/* The registered types, and lookup by name (NULL when unknown). */
const struct receiver_type *const *receiver_types(void);
const struct receiver_type *receiver_type_find(const char *name);

/* Parses a Retry-After value (delta seconds or an HTTP-date) relative to now_ms; returns
 * the delay in ms (0 for a date in the past), or -1 when the value is invalid. */
int64_t receiver_parse_retry_after(const char *value, int64_t now_ms);

#endif
