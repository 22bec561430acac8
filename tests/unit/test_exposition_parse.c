/*
 * The text exposition parser: families with HELP and TYPE, labels and their escapes,
 * special values, ignored timestamps and comments, and errors that name line and column
 * and leave nothing behind.
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

#include "probes/exposition_parse.h"

static int parse(const char *text, struct exposition_doc *doc, char *error)
{
	memset(doc, 0, sizeof(*doc));
	return exposition_parse(text, strlen(text), doc, error, EXPOSITION_PARSE_ERROR_SIZE);
}

static const char *label_value(const struct exposition_sample *smp, const char *name)
{
	for (size_t i = 0; i < smp->label_count; i++) {
		if (strcmp(smp->labels[i].name, name) == 0)
			return smp->labels[i].value;
	}
	return NULL;
}

static void test_families_and_samples(void **state)
{
	static const char text[] =
	    "# HELP http_requests_total Requests served.\n"
	    "# TYPE http_requests_total counter\n"
	    "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
	    "http_requests_total{method=\"post\",code=\"400\"}    3\n"
	    "\n"
	    "# A comment that is neither HELP nor TYPE.\n"
	    "# TYPE temperature gauge\n"
	    "temperature -3.5e1\n"
	    "untyped_thing{a=\"1\",} 42\n";
	struct exposition_doc doc;
	char error[EXPOSITION_PARSE_ERROR_SIZE];
	const struct exposition_metric *m;

	(void)state;
	assert_int_equal(parse(text, &doc, error), 0);
	assert_string_equal(error, "");
	assert_int_equal(doc.sample_count, 4);
	assert_int_equal(doc.metric_count, 3);

	m = &doc.metrics[doc.samples[0].metric];
	assert_string_equal(m->name, "http_requests_total");
	assert_string_equal(m->help, "Requests served.");
	assert_int_equal(m->type, METRIC_COUNTER);
	assert_int_equal(doc.samples[0].label_count, 2);
	assert_string_equal(label_value(&doc.samples[0], "code"), "200");
	assert_true(doc.samples[0].value == 1027);
	assert_true(doc.samples[1].value == 3);

	m = &doc.metrics[doc.samples[2].metric];
	assert_string_equal(m->name, "temperature");
	assert_int_equal(m->type, METRIC_GAUGE);
	assert_string_equal(m->help, "");
	assert_true(doc.samples[2].value == -35);

	m = &doc.metrics[doc.samples[3].metric];
	assert_string_equal(m->name, "untyped_thing");
	assert_int_equal(m->type, METRIC_GAUGE);
	assert_string_equal(label_value(&doc.samples[3], "a"), "1");
	exposition_doc_free(&doc);
}

static void test_label_escapes(void **state)
{
	static const char text[] = "m{path=\"C:\\\\dir\",quote=\"say \\\"hi\\\"\",nl=\"a\\nb\","
				   "utf8=\"caf\xc3\xa9\"} 1\n"
				   "# HELP m Line one\\nback\\\\slash\n";
	struct exposition_doc doc;
	char error[EXPOSITION_PARSE_ERROR_SIZE];

	(void)state;
	assert_int_equal(parse(text, &doc, error), 0);
	assert_string_equal(label_value(&doc.samples[0], "path"), "C:\\dir");
	assert_string_equal(label_value(&doc.samples[0], "quote"), "say \"hi\"");
	assert_string_equal(label_value(&doc.samples[0], "nl"), "a\nb");
	assert_string_equal(label_value(&doc.samples[0], "utf8"), "caf\xc3\xa9");
	exposition_doc_free(&doc);
}

static void test_special_values(void **state)
{
	static const struct {
		const char *line;
		double value;
	} cases[] = {
	    {"m NaN\n", NAN},      {"m +Inf\n", INFINITY}, {"m -Inf\n", -INFINITY},
	    {"m Inf\n", INFINITY}, {"m 1e3\n", 1000},      {"m -0.25 -5\n", -0.25},
	    {"m 7\r\n", 7},        {"m .5", 0.5},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct exposition_doc doc;
		char error[EXPOSITION_PARSE_ERROR_SIZE];
		double v;

		assert_int_equal(parse(cases[i].line, &doc, error), 0);
		assert_int_equal(doc.sample_count, 1);
		v = doc.samples[0].value;
		if (isnan(cases[i].value))
			assert_true(isnan(v));
		else
			assert_true(v == cases[i].value);
		exposition_doc_free(&doc);
	}
}

static void test_histogram_and_summary(void **state)
{
	static const char text[] = "# TYPE rpc histogram\n"
				   "rpc_bucket{le=\"0.1\"} 3\n"
				   "rpc_bucket{le=\"+Inf\"} 5\n"
				   "rpc_sum 1.5\n"
				   "rpc_count 5\n"
				   "# TYPE lat summary\n"
				   "lat{quantile=\"0.5\"} 0.2\n"
				   "lat_sum 10\n"
				   "lat_count 50\n";
	struct exposition_doc doc;
	char error[EXPOSITION_PARSE_ERROR_SIZE];

	(void)state;
	assert_int_equal(parse(text, &doc, error), 0);
	assert_int_equal(doc.sample_count, 7);
	assert_int_equal(doc.metric_count, 6);
	for (size_t i = 0; i < doc.metric_count; i++)
		assert_int_equal(doc.metrics[i].type, METRIC_GAUGE);
	exposition_doc_free(&doc);
}

static void test_errors_name_line_and_column(void **state)
{
	static const struct {
		const char *text;
		const char *error;
	} cases[] = {
	    {"ok 1\n9bad 1\n", "line 2, column 1: expected a metric name"},
	    {"m{a=\"1\" 1\n", "line 1, column 9: expected ',' or '}' after a label value"},
	    {"m{a=1} 1\n", "line 1, column 5: expected '\"' to start the label value"},
	    {"m{a\"1\"} 1\n", "line 1, column 4: expected '=' after label name"},
	    {"m{a=\"1} 1\n", "line 1, column 10: label value has no closing quote"},
	    {"m{a=\"\\t\"} 1\n", "line 1, column 6: invalid escape sequence"},
	    {"m{a=\"1\",a=\"2\"} 1\n", "line 1, column 9: label a repeated"},
	    {"m{1=\"1\"} 1\n", "line 1, column 3: expected a label name or '}'"},
	    {"m\n", "line 1, column 2: expected a sample value"},
	    {"m abc\n", "line 1, column 3: invalid sample value 'abc'"},
	    {"m 0x10\n", "line 1, column 3: invalid sample value '0x10'"},
	    {"m nan\n", "line 1, column 3: invalid sample value 'nan'"},
	    {"m 1 12.5\n", "line 1, column 5: invalid timestamp"},
	    {"m 1 2 3\n", "line 1, column 7: unexpected text after the timestamp"},
	    {"m-x 1\n", "line 1, column 2: invalid character '-' in the metric name"},
	    {"m{a=\"1\"}1\n", "line 1, column 9: expected a space after the labels"},
	    {"# TYPE m bogus\n", "line 1, column 15: unknown type 'bogus'"},
	    {"# TYPE m gauge extra\n", "line 1, column 16: unexpected text after the type"},
	    {"# TYPE m gauge\n# TYPE m counter\n", "line 2, column 10: second TYPE line for m"},
	    {"m 1\n# TYPE m gauge\n", "line 2, column 10: TYPE line for m after its samples"},
	    {"# HELP m a\n# HELP m b\n", "line 2, column 10: second HELP line for m"},
	    {"# HELP m bad \\t escape\n", "line 1, column 14: invalid escape sequence"},
	    {"# TYPE\n", "line 1, column 7: expected a metric name after TYPE"},
	    {"m{a=\"1\"} 1\nm{a=\"1\"} 2\n", "line 2, column 1: duplicate sample for m"},
	    {"# TYPE h histogram\nh_bucket 1\n", "line 2, column 11: histogram bucket h_bucket"},
	    {"# TYPE h histogram\nh 1\n", "line 2, column 4: histogram h has a sample without"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct exposition_doc doc;
		char error[EXPOSITION_PARSE_ERROR_SIZE];

		assert_int_equal(parse(cases[i].text, &doc, error), -1);
		if (strncmp(error, cases[i].error, strlen(cases[i].error)) != 0)
			fail_msg("input %zu: got \"%s\", expected \"%s...\"", i, error,
				 cases[i].error);
		/* Nothing partial is kept. */
		assert_int_equal(doc.sample_count, 0);
		assert_int_equal(doc.metric_count, 0);
		assert_null(doc.samples);
	}
}

static void test_duplicate_with_reordered_labels(void **state)
{
	struct exposition_doc doc;
	char error[EXPOSITION_PARSE_ERROR_SIZE];

	(void)state;
	assert_int_equal(parse("m{a=\"1\",b=\"2\"} 1\nm{b=\"2\",a=\"1\"} 1\n", &doc, error), -1);
	assert_non_null(strstr(error, "duplicate sample"));
	assert_int_equal(parse("m{a=\"1\",b=\"2\"} 1\nm{a=\"2\",b=\"1\"} 1\n", &doc, error), 0);
	assert_int_equal(doc.sample_count, 2);
	exposition_doc_free(&doc);
}

static void test_sample_limit(void **state)
{
	size_t count = EXPOSITION_PARSE_MAX_SAMPLES + 1;
	char *text = malloc(count * 32);
	size_t n = 0;
	struct exposition_doc doc;
	char error[EXPOSITION_PARSE_ERROR_SIZE];

	(void)state;
	assert_non_null(text);
	for (size_t i = 0; i < count; i++)
		n += (size_t)sprintf(text + n, "m{i=\"%zu\"} 1\n", i);
	assert_int_equal(parse(text, &doc, error), -1);
	assert_non_null(strstr(error, "more than 20000 samples"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_families_and_samples),
	    cmocka_unit_test(test_label_escapes),
	    cmocka_unit_test(test_special_values),
	    cmocka_unit_test(test_histogram_and_summary),
	    cmocka_unit_test(test_errors_name_line_and_column),
	    cmocka_unit_test(test_duplicate_with_reordered_labels),
	    cmocka_unit_test(test_sample_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
