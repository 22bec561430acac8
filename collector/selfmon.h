/*
 * tocsin's own metrics (tocsin_* and the standard process_* gauges): build info, store
 * queue and drops, loop lag, series and sample counts, config reloads. They live in the
 * series registry like any other series but are not archived; selfmon_refresh() brings
 * them up to date and is called before every /metrics render.
 */
#ifndef TOCSIN_SELFMON_H
#define TOCSIN_SELFMON_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct http_server;
struct scheduler;
struct series_registry;
struct store;

struct selfmon;

/* Starts the loop-lag timer (every 250 ms). */
struct selfmon *selfmon_new(struct event_base *base, struct series_registry *reg);
/* Any source may be NULL; the pointers must outlive the selfmon or be reset first. */
void selfmon_set_sources(struct selfmon *mon, struct store *store, struct scheduler *sched,
			 struct http_server *http);
void selfmon_config_loaded(struct selfmon *mon, bool ok, uint64_t config_hash);
void selfmon_refresh(struct selfmon *mon);
/* Loop lag percentile over the last minute, in seconds (for logs and tests). */
double selfmon_loop_lag_p99(const struct selfmon *mon);
void selfmon_free(struct selfmon *mon);

#endif
