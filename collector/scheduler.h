/*
 * The scheduler runs every configured probe on its interval, on the monotonic clock.
 * First runs are spread over the interval by a stable hash of the probe name, so that
 * thousands of probes never fire together and a restart keeps each probe's phase. The
 * scheduler owns timeouts (a run past its deadline is cancelled and recorded as a
 * timeout), never starts a probe twice (a turn that finds the previous run in flight is
 * skipped and counted), and commits each run's samples to the series registry and the
 * store, adding the `probe` label and the probe's own labels.
 */
#ifndef TOCSIN_SCHEDULER_H
#define TOCSIN_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/health.h"
#include "collector/series.h"

struct config;
struct event_base;
struct probe_run;
struct series_registry;
struct store;

struct scheduler;

/* `store` may be NULL (nothing archived). */
struct scheduler *scheduler_new(struct event_base *base, struct series_registry *reg,
				struct store *store);

/*
 * Calls fn after a run's samples are committed when the run's outcome differs from the
 * previous run's (a first run that fails counts), or the probe's health state changed.
 */
typedef void scheduler_outcome_fn(void *arg);
void scheduler_on_outcome_change(struct scheduler *sched, scheduler_outcome_fn *fn, void *arg);

/* Appends every committed sample to `ws` too, and a stale marker when a series stops. */
struct window_store;
void scheduler_set_window(struct scheduler *sched, struct window_store *ws);

/*
 * Makes the running probe set match `cfg`. A probe whose name and fingerprint are
 * unchanged keeps running with its state and phase; a changed or new one starts fresh;
 * a removed one is cancelled and its series leave the registry. Takes ownership of each
 * probe's parsed state in `cfg` (sets it to NULL there). When cfg sets a shard, only the
 * probes whose names belong to it run; the others are treated as absent.
 */
void scheduler_apply(struct scheduler *sched, struct config *cfg);

/*
 * Like scheduler_apply, with the probes of cfg's templates: runs cfg's own probes (not
 * the templates) plus `found`, the probes discovered for them. The parsed state the
 * scheduler takes is cleared in the records it came from, in cfg or in `found`.
 */
struct config_probe;
void scheduler_apply_with_discovered(struct scheduler *sched, struct config *cfg,
				     struct config_probe *const *found, size_t found_count);

/*
 * Starts every probe once, now, and calls `report` as each run ends (from the loop),
 * with the series the run wrote (probe and user labels included, as /metrics shows
 * them); after the last run it calls event_base_loopbreak(). For --once.
 */
struct series;
typedef void scheduler_report_fn(const char *probe_name, const char *type_name,
				 const struct probe_run *run, const struct series *const *written,
				 size_t written_count, void *arg);
void scheduler_run_once(struct scheduler *sched, scheduler_report_fn *report, void *arg);

/* Cancels runs in flight and stops all timers. */
void scheduler_stop(struct scheduler *sched);
void scheduler_free(struct scheduler *sched);

size_t scheduler_probe_count(const struct scheduler *sched);
uint64_t scheduler_samples_total(const struct scheduler *sched);

/* A running probe as the API shows it. Strings belong to the scheduler. */
struct scheduler_probe_info {
	const char *name;
	const char *type;
	const char *target; /* as log lines show it (no credentials), or NULL */
	uint64_t interval_ms;
	uint64_t timeout_ms;
	const struct label *labels; /* user labels, sorted by name */
	size_t label_count;
	enum health_state state;
	uint64_t runs;
	uint64_t failures;
	int64_t last_run_ms;     /* wall-clock end of the last run, 0 before the first */
	int64_t last_change_ms;  /* when the health state last changed, 0 never */
	double last_duration_s;  /* of the last run */
	const char *last_status; /* probe status name of the last run, NULL before it */
	const char *last_reason; /* its detail, "" when none, NULL before the first run */
};

/*
 * Fills *out with probe number `index` (0 to scheduler_probe_count() - 1, in config
 * order) and returns true, or returns false past the end. The pointers stay valid until
 * the next scheduler_apply() or turn of the loop.
 */
bool scheduler_probe_info(const struct scheduler *sched, size_t index,
			  struct scheduler_probe_info *out);

#endif
