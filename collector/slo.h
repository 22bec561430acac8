/*
 * Service level objectives: an SLI counted as good and total events in per-minute
 * buckets over the SLO's period, the error budget left, burn rates over any window, and
 * the multiwindow, multi-burn-rate alert conditions of the Google SRE workbook.
 *
 * Events: each observation reads the SLI's counters (or, for latency, the probe's run
 * durations) and adds the events since the previous observation to the current minute's
 * bucket. Counter resets count the new value as the increase, as rate() does. Minutes
 * without events count as neither good nor bad; a window without any event has no value
 * ("no data"), never NaN, 0 or Inf. Minutes inside an exclusion (maintenance) are left
 * out of every sum. Buckets and the last counter readings persist in the state database
 * so that a restart neither resets the budget nor loses the events in between.
 *
 * Math (objective o as a ratio, budget b = 1 - o; errors e = total - good over a window):
 *   sli_ratio(W)        = good(W) / total(W)
 *   burn_rate(W)        = (e(W) / total(W)) / b
 *   budget_remaining    = 1 - e(period) / (total(period) * b)   (may go below 0)
 * An alert pair (long L, short S, factor f) holds when burn_rate(L) > f and
 * burn_rate(S) > f and total(L) >= min_events. When either window has no data the
 * condition is unknown: the alert keeps its state.
 */
#ifndef TOCSIN_SLO_H
#define TOCSIN_SLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/expr.h"
#include "collector/series.h"

struct statedb;

/* min_events when the SLO does not set it. */
#define SLO_DEFAULT_MIN_EVENTS 10

enum slo_sli_kind {
	SLO_SLI_AVAILABILITY, /* a probe: good = successful runs */
	SLO_SLI_LATENCY,      /* a probe: good = runs no slower than the threshold */
	SLO_SLI_GOOD_TOTAL,   /* counter expressions: good and total */
	SLO_SLI_ERRORS_TOTAL, /* counter expressions: errors and total */
};

/* One burn-rate alert: both windows must burn faster than `factor`. */
struct slo_alert_window {
	char *severity; /* "page" or "ticket" by default */
	int64_t long_ms, short_ms;
	double factor;
};

struct slo_exclusion {
	int64_t start_ms, end_ms; /* [start, end) in Unix milliseconds */
};

struct slo_config {
	char *name;
	char *location;   /* "file:line:column" of the entry */
	double objective; /* ratio in (0, 1), from a percentage in the file */
	int64_t period_ms;
	enum slo_sli_kind kind;
	char *probe;                        /* availability and latency */
	double latency_threshold_s;         /* latency */
	struct expr *good, *errors, *total; /* counter expressions, scalar or summed vector */
	struct slo_alert_window *alerts;
	size_t alert_count;
	double min_events; /* events the long window needs before an alert can fire */
	struct slo_exclusion *exclusions;
	size_t exclusion_count;
	struct label *labels; /* added to the SLO's series and alerts, sorted by name */
	size_t label_count;
};

void slo_config_free(struct slo_config *c); /* frees the members, not c itself */

/* The workbook's defaults: page 14.4x 1h/5m and 6x 6h/30m, ticket 3x 1d/2h and 1x 3d/6h. */
size_t slo_default_alerts(struct slo_alert_window **out);

struct slo_state;

/* A state for `c` (which must outlive it) with empty buckets. */
struct slo_state *slo_state_new(const struct slo_config *c);
void slo_state_free(struct slo_state *st);

/* Loads buckets and counter readings from db (NULL: nothing to restore). -1 on error. */
int slo_state_restore(struct slo_state *st, struct statedb *db, int64_t now_ms);

/*
 * Reads the SLI at now_ms from src and adds the events since the previous observation
 * to the bucket of now_ms's minute, writing the changed bucket and readings to db when
 * db is not NULL. The first observation only records readings. Returns 0, or -1 with
 * *error set (caller frees) when an expression fails to evaluate.
 */
int slo_observe(struct slo_state *st, const struct expr_source *src, int64_t now_ms,
		struct statedb *db, char **error);

/* Adds events to the bucket of `minute` (Unix minutes) directly: tests and restores. */
void slo_add_events(struct slo_state *st, int64_t minute, double good, double total);

/* Good and total events in the window (now - window, now], excluded minutes left out. */
void slo_window_events(const struct slo_state *st, int64_t now_ms, int64_t window_ms, double *good,
		       double *total);

/* Each returns false when the window has no events ("no data"). */
bool slo_sli_ratio(const struct slo_state *st, int64_t now_ms, int64_t window_ms, double *out);
bool slo_burn_rate(const struct slo_state *st, int64_t now_ms, int64_t window_ms, double *out);
bool slo_budget_remaining(const struct slo_state *st, int64_t now_ms, double *out);

enum slo_condition {
	SLO_CONDITION_FALSE,
	SLO_CONDITION_TRUE,
	SLO_CONDITION_UNKNOWN, /* a window without events: keep the alert's state */
};

enum slo_condition slo_alert_condition(const struct slo_state *st, const struct slo_alert_window *w,
				       int64_t now_ms);

/* Drops buckets older than the period and the longest alert window (memory and db). */
void slo_prune(struct slo_state *st, struct statedb *db, int64_t now_ms);

#endif
