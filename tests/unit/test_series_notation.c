/*
 * Unit tests of promtool's series notation: values strings (a+bxn, a-bxn, axn, _, _xn,
 * stale, Inf and NaN) with their errors, series descriptions and their formatting, and
 * loading the samples into a window at the right times.
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

#include "collector/series_notation.h"
#include "collector/window.h"

/* Parses `text` and expects it to succeed with `count` items. */
static struct series_notation_item *parse_values(const char *text, size_t count)
{
	struct series_notation_item *items = NULL;
	size_t n = 99;
	char *error = NULL;

	if (series_notation_parse_values(text, &items, &n, &error) < 0)
		fail_msg("%s: %s", text, error);
	assert_int_equal(n, count);
	return items;
}

/* Parses `text` and expects it to fail with exactly `message`. */
static void expect_values_error(const char *text, const char *message)
{
	struct series_notation_item *items = NULL;
	size_t n = 0;
	char *error = NULL;

	assert_int_equal(series_notation_parse_values(text, &items, &n, &error), -1);
	assert_non_null(error);
	assert_string_equal(error, message);
	free(error);
}

static void values_plain_numbers(void **state)
{
	struct series_notation_item *v = parse_values("1 -2.5 +3e2 .5 Inf -inf NaN", 7);

	(void)state;
	assert_int_equal(v[0].kind, SERIES_NOTATION_VALUE);
	assert_true(v[0].start == 1 && v[0].count == 1);
	assert_true(v[1].start == -2.5);
	assert_true(v[2].start == 300);
	assert_true(v[3].start == 0.5);
	assert_true(isinf(v[4].start) && v[4].start > 0);
	assert_true(isinf(v[5].start) && v[5].start < 0);
	assert_true(isnan(v[6].start));
	free(v);
}

static void values_expansions(void **state)
{
	struct series_notation_item *v = parse_values("-2+4x3 1-2x4 5x2 _ _x3 stale 0x0", 7);

	(void)state;
	assert_true(v[0].start == -2 && v[0].step == 4 && v[0].count == 4);
	assert_true(v[1].start == 1 && v[1].step == -2 && v[1].count == 5);
	assert_true(v[2].start == 5 && v[2].step == 0 && v[2].count == 3);
	assert_int_equal(v[3].kind, SERIES_NOTATION_MISSING);
	assert_int_equal(v[3].count, 1);
	assert_int_equal(v[4].kind, SERIES_NOTATION_MISSING);
	assert_int_equal(v[4].count, 3);
	assert_int_equal(v[5].kind, SERIES_NOTATION_STALE);
	assert_int_equal(v[6].count, 1);
	free(v);
}

static void values_empty_string(void **state)
{
	struct series_notation_item *v = parse_values("  \n ", 0);

	(void)state;
	free(v);
}

static void values_errors_name_column(void **state)
{
	(void)state;
	expect_values_error("1 abc", "invalid value \"abc\" at column 3 of values, expected a "
				     "number, _, stale, a+bxn, a-bxn or axn");
	expect_values_error("1+x3", "invalid value \"1+x3\" at column 1 of values, expected a "
				    "number, _, stale, a+bxn, a-bxn or axn");
	expect_values_error("1+1", "invalid value \"1+1\" at column 1 of values, expected a "
				   "number, _, stale, a+bxn, a-bxn or axn");
	expect_values_error("1 1+1x2.5", "invalid repetition count in \"1+1x2.5\" at column 3 "
					 "of values, expected a whole number after \"x\"");
	expect_values_error("1+1x-2", "invalid repetition count in \"1+1x-2\" at column 1 of "
				      "values, expected a whole number after \"x\"");
	expect_values_error("stalex2", "invalid value \"stalex2\" at column 1 of values, "
				       "expected a number, _, stale, a+bxn, a-bxn or axn");
	expect_values_error("_y", "invalid value \"_y\" at column 1 of values, expected a "
				  "number, _, stale, a+bxn, a-bxn or axn");
	expect_values_error("1x99999999999999999999", "invalid repetition count in "
						      "\"1x99999999999999999999\" at column 1 "
						      "of values, expected a whole number "
						      "after \"x\"");
}

/* Parses `text` as a series and returns it formatted, for compact checks. */
static char *parse_and_format(const char *text)
{
	struct label *labels = NULL;
	size_t count = 0;
	char *error = NULL;
	char *out;

	if (series_notation_parse_labels(text, &labels, &count, &error) < 0)
		fail_msg("%s: %s", text, error);
	out = series_notation_format_labels(labels, count);
	series_notation_labels_free(labels, count);
	return out;
}

static void labels_parse_and_format(void **state)
{
	static const struct {
		const char *text;
		const char *formatted;
	} cases[] = {
	    {"up", "up{}"},
	    {"job:requests:rate5m{job=\"api\"}", "job:requests:rate5m{job=\"api\"}"},
	    {"up{job='a', instance=\"b\",}", "up{instance=\"b\", job=\"a\"}"},
	    {"{__name__=\"up\", job=\"a\"}", "up{job=\"a\"}"},
	    {"{job=\"a\"}", "{job=\"a\"}"},
	    {"{}", "{}"},
	    {"up{job=\"\", a=\"1\"}", "up{a=\"1\"}"},
	    {"up{path=\"C:\\\\x \\\"y\\\"\\n\"}", "up{path=\"C:\\\\x \\\"y\\\"\\n\"}"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out = parse_and_format(cases[i].text);

		assert_string_equal(out, cases[i].formatted);
		free(out);
	}
}

static void labels_sorted_with_name(void **state)
{
	struct label *labels = NULL;
	size_t count = 0;
	char *error = NULL;

	(void)state;
	assert_int_equal(
	    series_notation_parse_labels("m{b=\"2\", a=\"1\"}", &labels, &count, &error), 0);
	assert_int_equal(count, 3);
	assert_string_equal(labels[0].name, "__name__");
	assert_string_equal(labels[0].value, "m");
	assert_string_equal(labels[1].name, "a");
	assert_string_equal(labels[2].name, "b");
	series_notation_labels_free(labels, count);
}

static void labels_errors(void **state)
{
	static const struct {
		const char *text;
		const char *message;
	} cases[] = {
	    {"up{job=~\"a\"}", "unexpected \"=~\" at column 7 of series, expected \"=\" (a series "
			       "has exact label values)"},
	    {"up{job=\"a\"", "unexpected end of series at column 11 of series, expected \",\" "
			     "or \"}\""},
	    {"up{job=\"a\", job=\"b\"}", "label job given twice at column 13 of series"},
	    {"up{__name__=\"x\"}", "metric name given twice, before \"{\" and as __name__ at "
				   "column 1 of series"},
	    {"up{a:b=\"1\"}", "invalid label name \"a:b\" at column 4 of series, expected "
			      "[a-zA-Z_][a-zA-Z0-9_]*"},
	    {"", "unexpected end of series at column 1 of series, expected a metric name or "
		 "\"{\""},
	    {"up down", "unexpected identifier \"down\" at column 4 of series, expected \"{\" "
			"or the end"},
	    {"{__name__=\"1x\"}", "invalid metric name \"1x\" at column 1 of series, expected "
				  "[a-zA-Z_:][a-zA-Z0-9_:]*"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct label *labels = NULL;
		size_t count = 0;
		char *error = NULL;

		assert_int_equal(
		    series_notation_parse_labels(cases[i].text, &labels, &count, &error), -1);
		assert_non_null(error);
		assert_string_equal(error, cases[i].message);
		free(error);
	}
}

static void take_handle(void *arg, const struct expr_series *s)
{
	*(const void **)arg = s->handle;
}

/* Loads `values` one minute apart up to end_ms and reads back every sample. */
static size_t load_and_read(const char *values, int64_t end_ms, struct expr_sample *out, size_t max)
{
	struct series_registry *reg = series_registry_new();
	struct window_store *ws = window_store_new(INT64_MAX / 4, 1 << 20);
	struct series_notation_item *items = NULL;
	struct expr_sample_buffer buf = {0};
	struct expr_source src;
	struct expr_matcher match = {EXPR_MATCH_EQUAL, "__name__", "x", NULL};
	const void *handle = NULL;
	struct label *labels = NULL;
	size_t label_count = 0;
	size_t item_count = 0;
	char *error = NULL;
	struct series *s;
	size_t n;

	assert_int_equal(series_notation_parse_labels("x", &labels, &label_count, &error), 0);
	s = series_notation_intern(reg, labels, label_count, &error);
	assert_non_null(s);
	assert_int_equal(series_notation_parse_values(values, &items, &item_count, &error), 0);
	series_notation_load(ws, s, items, item_count, 60000, end_ms);

	window_source(ws, reg, &src);
	src.select(src.ctx, &match, 1, take_handle, &handle);
	/* A series without samples has no window, so the source does not list it. */
	if (handle != NULL)
		src.read(src.ctx, handle, 0, INT64_MAX / 4, &buf);
	n = buf.count < max ? buf.count : max;
	if (n > 0)
		memcpy(out, buf.v, n * sizeof *out);
	free(buf.v);
	free(items);
	series_notation_labels_free(labels, label_count);
	window_store_free(ws);
	series_registry_free(reg);
	return n;
}

static void load_places_samples_in_time(void **state)
{
	struct expr_sample v[16];
	size_t n = load_and_read("1+1x2 _x2 stale 7 -1-0.5x1", INT64_MAX, v, 16);

	(void)state;
	/* 1 2 3 at 0..2m, nothing at 3m and 4m, a marker at 5m, 7 at 6m, -1 -1.5 at 7m, 8m. */
	assert_int_equal(n, 7);
	assert_true(v[0].time_ms == 0 && v[0].value == 1);
	assert_true(v[2].time_ms == 120000 && v[2].value == 3);
	assert_true(v[3].time_ms == 300000 && expr_is_stale_marker(v[3].value));
	assert_true(v[4].time_ms == 360000 && v[4].value == 7);
	assert_true(v[5].time_ms == 420000 && v[5].value == -1);
	assert_true(v[6].time_ms == 480000 && v[6].value == -1.5);
}

static void load_adds_step_repeatedly(void **state)
{
	struct expr_sample v[16];
	size_t n = load_and_read("0+0.1x10", INT64_MAX, v, 16);
	double sum = 0;

	(void)state;
	/* As promtool: each value is the previous plus 0.1, so the last is 0.9999999999999999. */
	assert_int_equal(n, 11);
	for (int i = 0; i < 10; i++)
		sum += 0.1;
	assert_true(v[10].value == sum);
	assert_true(v[10].value != 1.0);
}

static void load_stops_at_end(void **state)
{
	struct expr_sample v[16];
	size_t n = load_and_read("1x99999999999 _x99999999999", 180000, v, 16);

	(void)state;
	assert_int_equal(n, 4);
	assert_int_equal(v[3].time_ms, 180000);
	n = load_and_read("_x18446744073709551614 5", 600000, v, 16);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(values_plain_numbers),
	    cmocka_unit_test(values_expansions),
	    cmocka_unit_test(values_empty_string),
	    cmocka_unit_test(values_errors_name_column),
	    cmocka_unit_test(labels_parse_and_format),
	    cmocka_unit_test(labels_sorted_with_name),
	    cmocka_unit_test(labels_errors),
	    cmocka_unit_test(load_places_samples_in_time),
	    cmocka_unit_test(load_adds_step_repeatedly),
	    cmocka_unit_test(load_stops_at_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
