/*
 * The in-memory sample window of each series: a ring of (time, value) samples per series
 * of the registry, keyed by series id, holding at least the history the loaded rules read
 * (expr_history_ms() of every rule) and at most a fixed number of samples. A stale marker
 * is a sample whose value is expr_stale_marker(). Each sample takes WINDOW_SAMPLE_BYTES;
 * a series costs WINDOW_SERIES_BYTES beyond its ring. window_source() turns the store and
 * the registry into the expression engine's `struct expr_source`. Loop thread only.
 */
#ifndef TOCSIN_WINDOW_H
#define TOCSIN_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "collector/expr.h"
#include "collector/series.h"

#define WINDOW_SAMPLE_BYTES ((size_t)sizeof(struct expr_sample))
/* The per-series record and its hash bucket, excluding the ring. */
#define WINDOW_SERIES_BYTES (window_series_overhead())

/* Default cap on samples per series: 1 day at one sample every 10 s, 138 KiB. */
#define WINDOW_DEFAULT_MAX_SAMPLES 8640

struct window_store;

/*
 * history_ms: how far back samples are kept (the rules' longest history); the sample
 * before the latest one is kept as well, even when older. max_samples: cap per series, at least 2; when a probe samples so
 * often that the history holds more, the oldest samples are dropped first.
 */
struct window_store *window_store_new(int64_t history_ms, size_t max_samples);
void window_store_free(struct window_store *ws);
/* Changes the kept history, for instance after a rule reload; rings adapt on append. */
void window_store_set_history(struct window_store *ws, int64_t history_ms);

/*
 * Appends a sample to the series' window, creating the window on first use. A NaN value
 * is stored as an ordinary NaN, never as a stale marker. Returns 0, or -1 (sample
 * dropped) when time_ms is not after the window's latest sample.
 */
int window_append(struct window_store *ws, struct series *s, int64_t time_ms, double value);
/*
 * Sets the function called with every sample window_append() accepts (after it is stored):
 * the daemon forwards them to remote write. One hook per store; NULL removes it.
 */
typedef void window_append_fn(void *arg, const struct series *s, int64_t time_ms, double value);
void window_store_on_append(struct window_store *ws, window_append_fn *fn, void *arg);
/*
 * Appends a stale marker at time_ms (or 1 ms after the latest sample when that is not
 * earlier), so that the series is absent from evaluations from then on until it gets a
 * new sample. Does nothing when the series has no window or is already marked.
 */
void window_mark_stale(struct window_store *ws, const struct series *s, int64_t time_ms);
/* Drops the series' window; call it before series_remove() frees the series. */
void window_forget(struct window_store *ws, struct series *s);

/* Samples held for the series (stale markers included), 0 when it has no window. */
size_t window_sample_count(const struct window_store *ws, const struct series *s);
size_t window_series_count(const struct window_store *ws);
/* Bytes the store allocated: records, buckets and rings (rings at their capacity). */
size_t window_memory_bytes(const struct window_store *ws);
size_t window_series_overhead(void);

/*
 * Fills *src so that the engine reads `reg`'s series through `ws`. Series without a
 * window (no sample appended yet) are not listed. Both must outlive the evaluations.
 */
void window_source(struct window_store *ws, const struct series_registry *reg,
		   struct expr_source *src);

#endif
