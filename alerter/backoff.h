/*
 * Retry delays for notifications: exponential back-off with full jitter, the server's
 * Retry-After capped by the policy, and the age after which an entry is given up. Pure
 * functions on caller-supplied times and a caller-supplied random source, so tests are
 * deterministic; the daemon uses a generator seeded from getrandom(2).
 */
#ifndef TOCSIN_BACKOFF_H
#define TOCSIN_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

struct backoff_policy {
	int64_t initial_ms; /* cap of the first retry's delay; > 0 */
	int64_t max_ms;     /* cap of every delay, Retry-After included; >= initial_ms */
	int64_t max_age_ms; /* give up this long after the entry was created; 0: never */
};

/* A source of uniformly distributed 64-bit values. */
typedef uint64_t backoff_random_fn(void *arg);

/*
 * Returns the delay before retry number `retry` (0 for the first retry) with full jitter:
 * uniform in [0, min(max_ms, initial_ms * 2^retry)]. A draw of 0 gives 0 and a draw of
 * UINT64_MAX gives the cap, and draws in between map to delays in the same order.
 */
int64_t backoff_delay(const struct backoff_policy *p, unsigned retry, backoff_random_fn *random,
		      void *random_arg);

/* Returns the delay a server asked for with Retry-After, capped at max_ms (0 when < 0). */
int64_t backoff_retry_after(const struct backoff_policy *p, int64_t retry_after_ms);

/*
 * Returns the time of the next attempt when `delay_ms` would take it past the give-up
 * deadline created_ms + max_age_ms: the deadline itself, so that the last attempt happens
 * at the deadline. Otherwise returns now_ms + delay_ms.
 */
int64_t backoff_next_attempt(const struct backoff_policy *p, int64_t created_ms, int64_t now_ms,
			     int64_t delay_ms);

/* True once max_age_ms has passed since created_ms (never when max_age_ms is 0). */
bool backoff_expired(const struct backoff_policy *p, int64_t created_ms, int64_t now_ms);

/* A small generator (splitmix64) to pass as the random source with backoff_random_next. */
struct backoff_random {
	uint64_t state;
};

void backoff_random_seed(struct backoff_random *r, uint64_t seed);
/*
 * Seeds r from getrandom(2) and returns 0. When getrandom() fails (entropy pool not yet
 * initialized early at boot, or a kernel before Linux 3.17), seeds r from the clock and
 * the process id instead and returns -1.
 */
int backoff_random_seed_system(struct backoff_random *r);
/* The next value of the struct backoff_random that arg points to. */
uint64_t backoff_random_next(void *arg);

#endif
