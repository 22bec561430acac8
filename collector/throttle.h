/*
 * A throttle for repeated errors. The first failure is reported; repeats within the
 * current interval are counted but not reported; the interval doubles after each
 * reported repeat up to a cap; the first success after failures is reported once as a
 * recovery. Pure logic on caller-supplied times (monotonic milliseconds), so it is
 * tested without a clock and used from any thread that owns the struct.
 */
#ifndef TOCSIN_THROTTLE_H
#define TOCSIN_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

struct throttle {
	uint64_t initial_ms;  /* first quiet interval after a reported failure */
	uint64_t max_ms;      /* cap of the doubling interval */
	uint64_t interval_ms; /* current quiet interval */
	uint64_t next_ms;     /* failures before this time are suppressed */
	uint64_t suppressed;  /* failures not reported since the last report */
	uint64_t failures;    /* failures since the last success */
	bool failing;
};

/* Initial interval 10 s, cap 1 h. */
#define THROTTLE_DEFAULT_INITIAL_MS 10000u
#define THROTTLE_DEFAULT_MAX_MS     3600000u

void throttle_init(struct throttle *t, uint64_t initial_ms, uint64_t max_ms);

/*
 * Records a failure at `now_ms`. Returns true when it should be logged; then
 * *suppressed (if not NULL) is the number of failures hidden since the last report.
 */
bool throttle_fail(struct throttle *t, uint64_t now_ms, uint64_t *suppressed);

/*
 * Records a success. Returns true when it ends a run of failures (log "recovered");
 * then *failures (if not NULL) is how many failures the run had.
 */
bool throttle_ok(struct throttle *t, uint64_t *failures);

#endif
