/*
 * Unit tests of the per-series sample windows: trimming to the history, the sample cap
 * and ring wraparound, out-of-order samples, stale markers, NaN values, memory
 * accounting, and listing and reading series through the expression source.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/window.h"

static const struct metric_desc gauge = {"g", "test gauge", METRIC_GAUGE};
static const struct metric_desc other = {"other", "another gauge", METRIC_GAUGE};

struct listed {
	size_t count;
	const void *handles[16];
	char names[16][32];
};

static void collect(void *arg, const struct expr_series *s)
{
	struct listed *l = arg;

	assert_true(l->count < 16);
	snprintf(l->names[l->count], sizeof(l->names[0]), "%s/%s", s->name,
		 s->label_count ? s->labels[0].value : "");
	l->handles[l->count++] = s->handle;
}

/* Reads [from, to] of the only series named `name` into out; returns the count. */
static size_t read_series(struct window_store *ws, struct series_registry *reg, const char *name,
			  int64_t from, int64_t to, struct expr_sample *out, size_t max)
{
	struct expr_source src;
	struct expr_matcher m = {EXPR_MATCH_EQUAL, "__name__", name, NULL};
	struct listed l = {0};
	struct expr_sample_buffer buf = {0};
	size_t n;

	window_source(ws, reg, &src);
	src.select(src.ctx, &m, 1, collect, &l);
	assert_int_equal(l.count, 1);
	src.read(src.ctx, l.handles[0], from, to, &buf);
	n = buf.count < max ? buf.count : max;
	if (n > 0)
		memcpy(out, buf.v, n * sizeof(*out));
	free(buf.v);
	return n;
}

static void history_trims_old_samples(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct window_store *ws = window_store_new(60 * 1000, 1000);
	struct series *s = series_intern(reg, &gauge, NULL, 0);

	(void)state;
	for (int i = 0; i < 100; i++)
		assert_int_equal(window_append(ws, s, i * 10000LL, i), 0);
	/* Samples at 930..990 s are within 60 s of the latest: 7 of them. */
	assert_int_equal(window_sample_count(ws, s), 7);
	window_store_set_history(ws, 20 * 1000);
	assert_int_equal(window_append(ws, s, 1000 * 1000, 100), 0);
	assert_int_equal(window_sample_count(ws, s), 3);
	window_store_free(ws);
	series_registry_free(reg);
}

static void previous_sample_outlives_history(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct window_store *ws = window_store_new(0, 1000);
	struct series *s = series_intern(reg, &gauge, NULL, 0);
	struct expr_sample got[4];

	(void)state;
	/* No rule reads any history: the window still keeps the last two runs, an hour
	 * apart here, so that irate() has a pair of samples. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(window_append(ws, s, i * 3600 * 1000LL, i), 0);
	assert_int_equal(window_sample_count(ws, s), 2);
	assert_int_equal(read_series(ws, reg, "g", 0, 4 * 3600 * 1000LL, got, 4), 2);
	assert_int_equal(got[0].time_ms, 3 * 3600 * 1000LL);
	assert_int_equal(got[1].time_ms, 4 * 3600 * 1000LL);
	window_store_free(ws);
	series_registry_free(reg);
}

static void sample_cap_drops_oldest(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct window_store *ws = window_store_new(3600 * 1000, 5);
	struct series *s = series_intern(reg, &gauge, NULL, 0);
	struct expr_sample got[16];
	size_t n;

	(void)state;
	for (int i = 0; i < 13; i++)
		assert_int_equal(window_append(ws, s, i * 1000LL, i), 0);
	assert_int_equal(window_sample_count(ws, s), 5);
	/* The ring wrapped several times; the newest five remain, in order. */
	n = read_series(ws, reg, "g", 0, 12000, got, 16);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(got[i].time_ms, (int64_t)(8 + i) * 1000);
		assert_true(got[i].value == (double)(8 + i));
	}
	window_store_free(ws);
	series_registry_free(reg);
}

static void out_of_order_sample_rejected(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct window_store *ws = window_store_new(3600 * 1000, 100);
	struct series *s = series_intern(reg, &gauge, NULL, 0);

	(void)state;
	assert_int_equal(window_append(ws, s, 2000, 1), 0);
	assert_int_equal(window_append(ws, s, 2000, 2), -1);
	assert_int_equal(window_append(ws, s, 1000, 3), -1);
	assert_int_equal(window_sample_count(ws, s), 1);
	window_store_free(ws);
	series_registry_free(reg);
}

static void stale_marker_once_after_last_sample(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct window_store *ws = window_store_new(3600 * 1000, 100);
	struct series *s = series_intern(reg, &gauge, NULL, 0);
	struct series *never = series_intern(reg, &other, NULL, 0);
	struct expr_sample got[8];
	size_t n;

	(void)state;
	window_mark_stale(ws, never, 1000);
	assert_int_equal(window_sample_count(ws, never), 0);
	assert_int_equal(window_append(ws, s, 5000, 1), 0);
	/* A marker at or before the last sample goes 1 ms after it. */
	window_mark_stale(ws, s, 5000);
	window_mark_stale(ws, s, 9000);
	assert_int_equal(window_sample_count(ws, s), 2);
	n = read_series(ws, reg, "g", 4990, 5010, got, 8);
	assert_int_equal(n, 2);
	assert_int_equal(got[1].time_ms, 5001);
	assert_true(expr_is_stale_marker(got[1].value));
	/* A new sample after the marker brings the series back. */
	assert_int_equal(window_append(ws, s, 10000, 2), 0);
	assert_int_equal(window_sample_count(ws, s), 3);
	window_store_free(ws);
	series_registry_free(reg);
}

static void nan_value_never_stale(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct window_store *ws = window_store_new(3600 * 1000, 100);
	struct series *s = series_intern(reg, &gauge, NULL, 0);
	struct expr_sample got[4];

	(void)state;
	assert_int_equal(window_append(ws, s, 1000, expr_stale_marker()), 0);
	assert_int_equal(read_series(ws, reg, "g", 1000, 1000, got, 4), 1);
	assert_true(isnan(got[0].value));
	assert_false(expr_is_stale_marker(got[0].value));
	window_store_free(ws);
	series_registry_free(reg);
}

static void memory_follows_sample_interval(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct window_store *ws = window_store_new(5 * 60 * 1000, WINDOW_DEFAULT_MAX_SAMPLES);
	size_t empty = window_memory_bytes(ws);
	size_t per_series;

	(void)state;
	for (int k = 0; k < 100; k++) {
		char value[16];
		struct label l = {"k", value};
		struct series *s;

		snprintf(value, sizeof(value), "%d", k);
		s = series_intern(reg, &gauge, &l, 1);
		/* 10 s interval for an hour: the 5 min history keeps 31 samples. */
		for (int i = 0; i < 360; i++)
			assert_int_equal(window_append(ws, s, i * 10000LL, i), 0);
		assert_int_equal(window_sample_count(ws, s), 31);
	}
	assert_int_equal(window_series_count(ws), 100);
	per_series = (window_memory_bytes(ws) - empty) / 100;
	/* A ring of 64 samples (the doubling past 31), plus the record. */
	assert_int_equal(WINDOW_SAMPLE_BYTES, 16);
	assert_true(per_series <= 64 * WINDOW_SAMPLE_BYTES + WINDOW_SERIES_BYTES);
	window_store_free(ws);
	series_registry_free(reg);
}

static void forget_releases_window(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct window_store *ws = window_store_new(3600 * 1000, 100);
	struct series *s = series_intern(reg, &gauge, NULL, 0);
	size_t empty = window_memory_bytes(ws);

	(void)state;
	assert_int_equal(window_append(ws, s, 1000, 1), 0);
	assert_true(window_memory_bytes(ws) > empty);
	window_forget(ws, s);
	assert_int_equal(window_series_count(ws), 0);
	assert_int_equal(window_memory_bytes(ws), empty);
	assert_int_equal(window_sample_count(ws, s), 0);
	window_store_free(ws);
	series_registry_free(reg);
}

/* Each series caches its window for the store that made it. Neither a second store over
 * the same registry nor a store made after the first is freed may use that cache. */
static void stores_keep_their_own_windows(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct window_store *one = window_store_new(3600 * 1000, 100);
	struct window_store *two = window_store_new(3600 * 1000, 100);
	struct series *s = series_intern(reg, &gauge, NULL, 0);

	(void)state;
	assert_int_equal(window_append(one, s, 1000, 1), 0);
	assert_int_equal(window_append(two, s, 1000, 2), 0);
	assert_int_equal(window_append(one, s, 2000, 3), 0);
	assert_int_equal(window_sample_count(one, s), 2);
	assert_int_equal(window_sample_count(two, s), 1);

	window_forget(two, s);
	assert_int_equal(window_sample_count(two, s), 0);
	assert_int_equal(window_sample_count(one, s), 2);
	window_forget(one, s);
	assert_int_equal(window_sample_count(one, s), 0);
	assert_int_equal(window_append(one, s, 3000, 4), 0);
	assert_int_equal(window_sample_count(one, s), 1);

	window_store_free(one);
	one = window_store_new(3600 * 1000, 100);
	assert_int_equal(window_sample_count(one, s), 0);
	window_store_free(one);
	window_store_free(two);
	series_registry_free(reg);
}

static void source_lists_matching_series(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct window_store *ws = window_store_new(3600 * 1000, 100);
	struct label a = {"job", "a"};
	struct label b = {"job", "b"};
	struct series *ga = series_intern(reg, &gauge, &a, 1);
	struct series *gb = series_intern(reg, &gauge, &b, 1);
	struct series *oa = series_intern(reg, &other, &a, 1);
	struct expr_source src;
	struct listed l = {0};

	(void)state;
	series_intern(reg, &gauge, NULL, 0); /* no samples: not listed */
	assert_int_equal(window_append(ws, ga, 1000, 1), 0);
	assert_int_equal(window_append(ws, gb, 1000, 2), 0);
	assert_int_equal(window_append(ws, oa, 1000, 3), 0);
	window_source(ws, reg, &src);

	{
		struct expr_matcher m[] = {{EXPR_MATCH_EQUAL, "__name__", "g", NULL},
					   {EXPR_MATCH_NOT_EQUAL, "job", "b", NULL}};

		src.select(src.ctx, m, 2, collect, &l);
		assert_int_equal(l.count, 1);
		assert_string_equal(l.names[0], "g/a");
	}
	{
		struct expr_matcher m[] = {{EXPR_MATCH_EQUAL, "job", "a", NULL}};

		l.count = 0;
		src.select(src.ctx, m, 1, collect, &l);
		assert_int_equal(l.count, 2);
		assert_string_equal(l.names[0], "g/a");
		assert_string_equal(l.names[1], "other/a");
	}
	{
		struct expr_matcher m[] = {{EXPR_MATCH_EQUAL, "__name__", "missing", NULL}};

		l.count = 0;
		src.select(src.ctx, m, 1, collect, &l);
		assert_int_equal(l.count, 0);
	}
	window_store_free(ws);
	series_registry_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(history_trims_old_samples),
	    cmocka_unit_test(previous_sample_outlives_history),
	    cmocka_unit_test(sample_cap_drops_oldest),
	    cmocka_unit_test(out_of_order_sample_rejected),
	    cmocka_unit_test(stale_marker_once_after_last_sample),
	    cmocka_unit_test(nan_value_never_stale),
	    cmocka_unit_test(memory_follows_sample_interval),
	    cmocka_unit_test(forget_releases_window),
	    cmocka_unit_test(stores_keep_their_own_windows),
	    cmocka_unit_test(source_lists_matching_series),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
