/*
 * Sample windows: a chained hash table from series id to a ring buffer of samples kept
 * in time order. A ring grows by doubling up to the store's sample cap and drops samples
 * older than the history on every append, so its memory follows the probe's interval.
 * Each series also caches a pointer to its window, tagged with the store's serial, so
 * that evaluations reach a window without a hash lookup (a cache miss or two per series).
 * A serial is never reused, so a cache set by a freed store never matches a new store.
 */
#include "collector/window.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "collector/xalloc.h"

struct window {
	uint64_t id;
	struct window *next;
	struct expr_sample last; /* copy of the newest sample: instant selectors read only it */
	struct expr_sample *ring;
	uint32_t head; /* index of the oldest sample */
	uint32_t count;
	uint32_t capacity;
};

struct window_store {
	uint64_t serial; /* tags the windows cached in series, unique per store */
	struct window **buckets;
	size_t bucket_count; /* a power of two */
	size_t count;
	size_t ring_bytes;
	int64_t history_ms;
	size_t max_samples;
	const struct series_registry *reg;
	window_append_fn *on_append;
	void *on_append_arg;
};

struct window_store *window_store_new(int64_t history_ms, size_t max_samples)
{
	static atomic_uint_least64_t next_serial = 1;
	struct window_store *ws = xcalloc(1, sizeof(*ws));

	ws->serial = atomic_fetch_add(&next_serial, 1);
	ws->bucket_count = 1024;
	ws->buckets = xcalloc(ws->bucket_count, sizeof(*ws->buckets));
	ws->history_ms = history_ms > 0 ? history_ms : 0;
	ws->max_samples = max_samples < 2                ? 2
			  : max_samples > UINT32_MAX / 2 ? UINT32_MAX / 2
							 : max_samples;
	return ws;
}

void window_store_free(struct window_store *ws)
{
	if (ws == NULL)
		return;
	for (size_t i = 0; i < ws->bucket_count; i++) {
		struct window *w = ws->buckets[i];

		while (w != NULL) {
			struct window *next = w->next;

			free(w->ring);
			free(w);
			w = next;
		}
	}
	free(ws->buckets);
	free(ws);
}

void window_store_set_history(struct window_store *ws, int64_t history_ms)
{
	ws->history_ms = history_ms > 0 ? history_ms : 0;
}

size_t window_series_overhead(void)
{
	return sizeof(struct window) + sizeof(struct window *);
}

static size_t bucket_of(const struct window_store *ws, uint64_t id)
{
	/* Ids are sequential: a multiplicative hash spreads them over the buckets. */
	return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 20) & (ws->bucket_count - 1);
}

static struct window *lookup(const struct window_store *ws, uint64_t id)
{
	for (struct window *w = ws->buckets[bucket_of(ws, id)]; w != NULL; w = w->next)
		if (w->id == id)
			return w;
	return NULL;
}

static struct window *window_of(const struct window_store *ws, const struct series *s)
{
	if (s->window_serial == ws->serial)
		return s->window;
	return lookup(ws, s->id);
}

static void rehash(struct window_store *ws)
{
	size_t old_count = ws->bucket_count;
	struct window **old = ws->buckets;

	ws->bucket_count *= 2;
	ws->buckets = xcalloc(ws->bucket_count, sizeof(*ws->buckets));
	for (size_t i = 0; i < old_count; i++) {
		struct window *w = old[i];

		while (w != NULL) {
			struct window *next = w->next;
			size_t b = bucket_of(ws, w->id);

			w->next = ws->buckets[b];
			ws->buckets[b] = w;
			w = next;
		}
	}
	free(old);
}

static struct expr_sample *at(const struct window *w, uint32_t i)
{
	/* head and i are both below the capacity: one subtraction replaces a division. */
	uint32_t k = w->head + i;

	return &w->ring[k < w->capacity ? k : k - w->capacity];
}

static void resize(struct window_store *ws, struct window *w, uint32_t capacity)
{
	struct expr_sample *ring = xmalloc(capacity * sizeof(*ring));

	for (uint32_t i = 0; i < w->count; i++)
		ring[i] = *at(w, i);
	free(w->ring);
	ws->ring_bytes -= w->capacity * sizeof(*ring);
	ws->ring_bytes += capacity * sizeof(*ring);
	w->ring = ring;
	w->capacity = capacity;
	w->head = 0;
}

static void push(struct window_store *ws, struct window *w, int64_t time_ms, double value)
{
	int64_t oldest = time_ms - ws->history_ms;

	/* The sample before the new one always stays, whatever the history, so irate()
	 * gives a rate over the last two runs of any probe. It costs no memory because a
	 * ring has room for at least four samples. */
	while (w->count > 1 && at(w, 0)->time_ms < oldest) {
		w->head = w->head + 1 < w->capacity ? w->head + 1 : 0;
		w->count--;
	}
	if (w->capacity > 8 && w->count < w->capacity / 4)
		resize(ws, w, w->capacity / 2);
	if (w->count == w->capacity) {
		if (w->capacity < ws->max_samples) {
			size_t grown = w->capacity ? (size_t)w->capacity * 2 : 4;

			resize(ws, w,
			       (uint32_t)(grown < ws->max_samples ? grown : ws->max_samples));
		} else {
			w->head = w->head + 1 < w->capacity ? w->head + 1 : 0;
			w->count--;
		}
	}
	w->last = (struct expr_sample){time_ms, value};
	*at(w, w->count) = w->last;
	w->count++;
}

int window_append(struct window_store *ws, struct series *s, int64_t time_ms, double value)
{
	struct window *w = window_of(ws, s);

	if (w == NULL) {
		size_t b;

		if (ws->count >= ws->bucket_count)
			rehash(ws);
		b = bucket_of(ws, s->id);
		w = xcalloc(1, sizeof(*w));
		w->id = s->id;
		w->next = ws->buckets[b];
		ws->buckets[b] = w;
		ws->count++;
		s->window = w;
		s->window_serial = ws->serial;
	}
	if (w->count > 0 && time_ms <= w->last.time_ms)
		return -1;
	/* Only window_mark_stale() may write the marker's bit pattern. */
	if (isnan(value))
		value = NAN;
	push(ws, w, time_ms, value);
	if (ws->on_append != NULL)
		ws->on_append(ws->on_append_arg, s, time_ms, value);
	return 0;
}

void window_store_on_append(struct window_store *ws, window_append_fn *fn, void *arg)
{
	ws->on_append = fn;
	ws->on_append_arg = arg;
}

void window_mark_stale(struct window_store *ws, const struct series *s, int64_t time_ms)
{
	struct window *w = window_of(ws, s);
	const struct expr_sample *last;

	if (w == NULL || w->count == 0)
		return;
	last = at(w, w->count - 1);
	if (expr_is_stale_marker(last->value))
		return;
	if (time_ms <= last->time_ms)
		time_ms = last->time_ms + 1;
	push(ws, w, time_ms, expr_stale_marker());
}

void window_forget(struct window_store *ws, struct series *s)
{
	struct window **link = &ws->buckets[bucket_of(ws, s->id)];

	if (s->window_serial == ws->serial) {
		s->window = NULL;
		s->window_serial = 0;
	}

	for (; *link != NULL; link = &(*link)->next) {
		struct window *w = *link;

		if (w->id != s->id)
			continue;
		*link = w->next;
		ws->ring_bytes -= w->capacity * sizeof(*w->ring);
		ws->count--;
		free(w->ring);
		free(w);
		return;
	}
}

size_t window_sample_count(const struct window_store *ws, const struct series *s)
{
	const struct window *w = window_of(ws, s);

	return w != NULL ? w->count : 0;
}

size_t window_series_count(const struct window_store *ws)
{
	return ws->count;
}

size_t window_memory_bytes(const struct window_store *ws)
{
	return sizeof(*ws) + ws->bucket_count * sizeof(*ws->buckets) +
	       ws->count * sizeof(struct window) + ws->ring_bytes;
}

/* ---- the expression source ---- */

static bool name_passes(const struct expr_matcher *m, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (label_name_equal(m[i].name, "__name__") && !expr_matcher_matches(&m[i], name))
			return false;
	return true;
}

static void select_family(struct window_store *ws, struct series_family *fam,
			  const struct expr_matcher *m, size_t count, expr_series_fn fn, void *arg)
{
	/* The label matchers, without "__name__" (the family's name passed already). */
	const struct expr_matcher **label_m = xcalloc(count + 1, sizeof(*label_m));
	size_t label_count = 0;
	struct series *const *candidates = fam->series;
	size_t candidate_count = fam->count;

	for (size_t k = 0; k < count; k++)
		if (!label_name_equal(m[k].name, "__name__"))
			label_m[label_count++] = &m[k];

	/* The first equality matcher on a non-empty value narrows the scan to the series
	 * of its index entry. Every matcher is still checked below. */
	for (size_t k = 0; k < label_count; k++) {
		if (label_m[k]->op == EXPR_MATCH_EQUAL && label_m[k]->value[0] != '\0') {
			candidate_count = series_family_with_label(fam, label_m[k]->name,
								   label_m[k]->value, &candidates);
			break;
		}
	}

	for (size_t i = 0; i < candidate_count; i++) {
		const struct series *s = candidates[i];
		const struct window *w;
		bool pass = true;
		struct expr_series es;

		/* Labels first: most series of a family usually fail them, and the window
		 * lookup costs a cache miss or two per series. */
		for (size_t k = 0; pass && k < label_count; k++)
			pass = expr_matcher_matches(label_m[k], series_label(s, label_m[k]->name));
		if (!pass)
			continue;
		w = window_of(ws, s);
		if (w == NULL || w->count == 0)
			continue;
		es = (struct expr_series){fam->name, s->labels, s->label_count, w, s->named_labels};
		fn(arg, &es);
	}
	free(label_m);
}

static void source_select(void *ctx, const struct expr_matcher *m, size_t count, expr_series_fn fn,
			  void *arg)
{
	struct window_store *ws = ctx;
	size_t families = series_registry_family_count(ws->reg);
	const char *exact = NULL;

	for (size_t i = 0; i < count && exact == NULL; i++)
		if (m[i].op == EXPR_MATCH_EQUAL && strcmp(m[i].name, "__name__") == 0)
			exact = m[i].value;
	if (exact != NULL) {
		/* Families are sorted by name: find the one family by bisection. */
		size_t lo = 0;
		size_t hi = families;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = strcmp(series_registry_family(ws->reg, mid)->name, exact);

			if (c == 0) {
				struct series_family *fam = series_registry_family(ws->reg, mid);

				if (name_passes(m, count, fam->name))
					select_family(ws, fam, m, count, fn, arg);
				return;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		return;
	}
	for (size_t i = 0; i < families; i++) {
		struct series_family *fam = series_registry_family(ws->reg, i);

		if (name_passes(m, count, fam->name))
			select_family(ws, fam, m, count, fn, arg);
	}
}

/* Index of the first sample at or after time_ms (after it when `after`), or w->count. */
static uint32_t search(const struct window *w, int64_t time_ms, bool after)
{
	uint32_t lo = 0;
	uint32_t hi = w->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int64_t t = at(w, mid)->time_ms;

		if (t < time_ms || (after && t == time_ms))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void source_read(void *ctx, const void *handle, int64_t from_ms, int64_t to_ms,
			struct expr_sample_buffer *buf)
{
	const struct window *w = handle;
	uint32_t lo;
	uint32_t end;

	(void)ctx;
	if (w->count == 0)
		return;
	/* In the common case every sample is inside the range (the window holds the rules'
	 * longest history) and both searches are skipped: each probe is a likely cache miss. */
	lo = at(w, 0)->time_ms >= from_ms ? 0 : search(w, from_ms, false);
	end = at(w, w->count - 1)->time_ms <= to_ms ? w->count : search(w, to_ms, true);
	/* [lo, end) in the ring is at most two contiguous runs: copy them whole. */
	while (lo < end) {
		uint32_t first = (uint32_t)(at(w, lo) - w->ring);
		uint32_t run = w->capacity - first < end - lo ? w->capacity - first : end - lo;

		if (buf->count + run > buf->capacity)
			buf->v = xreallocarray_grow(buf->v, &buf->capacity, buf->count + run,
						    sizeof(*buf->v));
		memcpy(&buf->v[buf->count], &w->ring[first], run * sizeof(*buf->v));
		buf->count += run;
		lo += run;
	}
}

static bool source_latest(void *ctx, const void *handle, int64_t from_ms, int64_t to_ms,
			  struct expr_sample *out)
{
	const struct window *w = handle;
	uint32_t end;

	(void)ctx;
	if (w->count == 0)
		return false;
	/* Usually the newest sample is inside the range: the ring is not read at all. */
	if (w->last.time_ms <= to_ms) {
		if (w->last.time_ms < from_ms)
			return false;
		*out = w->last;
		return true;
	}
	end = search(w, to_ms, true);
	if (end == 0 || at(w, end - 1)->time_ms < from_ms)
		return false;
	*out = *at(w, end - 1);
	return true;
}

void window_source(struct window_store *ws, const struct series_registry *reg,
		   struct expr_source *src)
{
	ws->reg = reg;
	src->ctx = ws;
	src->select = source_select;
	src->read = source_read;
	src->latest = source_latest;
}
