/*
 * Named time intervals, as Alertmanager's `time_intervals`: routes mute notifications
 * during them (`mute_time_intervals`) or send only during them (`active_time_intervals`).
 * An interval is a list of periods and is active when any period contains the instant. A
 * period restricts the time of day, weekday, day of month, month and year, each in the
 * local time of its `location`. A field left out allows every value.
 */
#ifndef TOCSIN_TIMEINTERVAL_H
#define TOCSIN_TIMEINTERVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg_seq;
struct tzfile;

/* Inclusive range [begin, end], except for times of day, where end is exclusive. */
struct timeinterval_range {
	int begin;
	int end;
};

/* One period: every field that has ranges must contain the local time. */
struct timeinterval_period {
	struct timeinterval_range *times; /* minutes after local midnight, 0 to 1440 */
	size_t time_count;
	struct timeinterval_range *weekdays; /* 0 = Sunday to 6 = Saturday */
	size_t weekday_count;
	struct timeinterval_range *days_of_month; /* 1 to 31, or -31 to -1 from the end */
	size_t day_count;
	struct timeinterval_range *months; /* 1 to 12 */
	size_t month_count;
	struct timeinterval_range *years;
	size_t year_count;
	struct tzfile *zone; /* NULL: UTC */
};

struct time_interval {
	char *name;
	struct timeinterval_period *periods;
	size_t period_count;
	char *location; /* "file:line:column" of its entry, for messages */
};

/* True when any period of ti contains the instant unix_ms. Pure; safe on the loop. */
bool timeinterval_active(const struct time_interval *ti, int64_t unix_ms);
bool timeinterval_period_contains(const struct timeinterval_period *p, int64_t unix_ms);

/*
 * Reads item `index` of the `time_intervals` sequence, {name, time_intervals: [PERIOD...]},
 * into *out (zeroed first). Errors are recorded with positions; returns 0 or -1, and on -1
 * *out contains what could be read (free it with timeinterval_clear). Loads zone files.
 */
int timeinterval_read(struct cfg_seq *seq, size_t index, struct time_interval *out);

/* Frees what *ti owns and zeroes it. */
void timeinterval_clear(struct time_interval *ti);

#endif
