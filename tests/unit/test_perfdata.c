/*
 * Nagios plugin output: splitting status text from performance data, the item grammar
 * (quoted labels, U, units, omitted fields), range syntax, unit conversion, and recovery
 * after invalid items.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "probes/perfdata.h"

/* cmocka 1.1 has no floating-point assertion. */
#define assert_double_equal(a, b, epsilon) assert_true(fabs((a) - (b)) <= (epsilon))

/* Field value meaning "absent" in the expectation tables. */
#define NONE NAN

struct item_case {
	const char *label;
	double value;
	const char *uom;
	double warn; /* end of the warning range; NONE when absent */
	double crit;
	double min;
	double max;
};

static void check_item(const struct perfdata_item *item, const struct item_case *c)
{
	assert_string_equal(item->label, c->label);
	if (isnan(c->value))
		assert_true(item->unknown);
	else
		assert_double_equal(item->value, c->value, 1e-9);
	assert_string_equal(item->uom, c->uom);
	assert_int_equal(item->warn.present, !isnan(c->warn));
	if (!isnan(c->warn))
		assert_double_equal(item->warn.end, c->warn, 1e-9);
	assert_int_equal(item->crit.present, !isnan(c->crit));
	if (!isnan(c->crit))
		assert_double_equal(item->crit.end, c->crit, 1e-9);
	assert_int_equal(item->has_min, !isnan(c->min));
	if (!isnan(c->min))
		assert_double_equal(item->min, c->min, 1e-9);
	assert_int_equal(item->has_max, !isnan(c->max));
	if (!isnan(c->max))
		assert_double_equal(item->max, c->max, 1e-9);
}

/* Quoted labels with spaces, doubled quotes, '=' and backslashes; omitted trailing fields. */
static void test_quoted_labels_seven_metrics(void **state)
{
	static const char text[] =
	    "'Physical Memory Used'=12085620736Bytes; 'Physical Memory Utilisation'=94%;80;90;\n"
	    "'SMTP CONNECTIONS'=1766;7000;10000;;\n"
	    "'d:\\ Used Space'=75.48GB;90.00;95.00;0.00;100.00 'Rain probability'=80%;;\n"
	    "'it''s a=b'=3;;;0; load1=0.000;5.000;5.000;0;\n";
	static const struct item_case expected[] = {
	    {"Physical Memory Used", 12085620736.0, "Bytes", NONE, NONE, NONE, NONE},
	    {"Physical Memory Utilisation", 94, "%", 80, 90, NONE, NONE},
	    {"SMTP CONNECTIONS", 1766, "", 7000, 10000, NONE, NONE},
	    {"d:\\ Used Space", 75.48, "GB", 90, 95, 0, 100},
	    {"Rain probability", 80, "%", NONE, NONE, NONE, NONE},
	    {"it's a=b", 3, "", NONE, NONE, 0, NONE},
	    {"load1", 0, "", 5, 5, 0, NONE},
	};
	struct perfdata_list list = {0};

	(void)state;
	assert_int_equal(perfdata_parse(text, &list), 7);
	assert_int_equal(list.count, 7);
	assert_int_equal(list.errors, 0);
	assert_string_equal(list.first_error, "");
	for (size_t i = 0; i < 7; i++)
		check_item(&list.items[i], &expected[i]);
	perfdata_list_free(&list);
}

static void test_item_table(void **state)
{
	static const struct {
		const char *text;
		struct item_case item;
	} cases[] = {
	    {"time=0.000123s;;;0.000000;10.000000", {"time", 0.000123, "s", NONE, NONE, 0, 10}},
	    {"a=U", {"a", NONE, "", NONE, NONE, NONE, NONE}},
	    {"a=U;1;2", {"a", NONE, "", 1, 2, NONE, NONE}},
	    {"a=-1.5e3ms", {"a", -1500, "ms", NONE, NONE, NONE, NONE}},
	    {"a=+7", {"a", 7, "", NONE, NONE, NONE, NONE}},
	    {"a=.5", {"a", 0.5, "", NONE, NONE, NONE, NONE}},
	    {"a=10c", {"a", 10, "c", NONE, NONE, NONE, NONE}},
	    {"a=1KB;2KB;3KB;0KB;4KB", {"a", 1, "KB", 2, 3, 0, 4}},
	    {"'x'=1", {"x", 1, "", NONE, NONE, NONE, NONE}},
	    {"'a b'=2;;;;", {"a b", 2, "", NONE, NONE, NONE, NONE}},
	    {"''''=1", {"'", 1, "", NONE, NONE, NONE, NONE}},
	    {"/=2643MB;5948;6686;0;7430", {"/", 2643, "MB", 5948, 6686, 0, 7430}},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct perfdata_list list = {0};

		assert_int_equal(perfdata_parse(cases[i].text, &list), 1);
		assert_int_equal(list.errors, 0);
		check_item(&list.items[0], &cases[i].item);
		perfdata_list_free(&list);
	}
}

/* Each text holds invalid items between two valid ones, "good=1" and "after=2". */
static void test_invalid_items_keep_valid_ones(void **state)
{
	static const struct {
		const char *bad;
		const char *error;
	} cases[] = {
	    {"novalue", "not followed by '='"},
	    {"x=", "is not a number or U"},
	    {"x=abc", "is not a number or U"},
	    {"x=1;2;3;4;5;6", "more than 5 fields"},
	    {"x=1;a", "warn 'a' is not a range"},
	    {"x=1;;5:1", "crit '5:1' is not a range"},
	    {"x=1;;;z", "min 'z' is not a number"},
	    {"x=1;;;;1..2", "max '1..2' is not a number"},
	    {"x=1s2", "invalid unit"},
	    {"x=1,5", "invalid unit"},
	    {"x=1averyveryverylongunit", "longer than"},
	    {"=1", "empty label"},
	    {"''=1", "empty label"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct perfdata_list list = {0};
		char text[128];

		snprintf(text, sizeof(text), "good=1 %s after=2", cases[i].bad);
		assert_int_equal(perfdata_parse(text, &list), 2);
		assert_int_equal(list.errors, 1);
		assert_non_null(strstr(list.first_error, cases[i].error));
		assert_string_equal(list.items[0].label, "good");
		assert_string_equal(list.items[1].label, "after");
		perfdata_list_free(&list);
	}
}

static void test_unterminated_quote_ends_parse(void **state)
{
	struct perfdata_list list = {0};

	(void)state;
	assert_int_equal(perfdata_parse("a=1 'open label=2 b=3", &list), 1);
	assert_int_equal(list.errors, 1);
	assert_non_null(strstr(list.first_error, "no closing quote"));
	perfdata_list_free(&list);
}

struct range_case {
	const char *text;
	bool inside;
	bool start_explicit;
	double start;
	double end;
};

static void test_range_syntax(void **state)
{
	static const struct range_case cases[] = {
	    {"10", false, false, 0, 10},          {"10:", false, true, 10, INFINITY},
	    {"~:10", false, true, -INFINITY, 10}, {"10:20", false, true, 10, 20},
	    {"@10:20", true, true, 10, 20},       {"@10", true, false, 0, 10},
	    {":5", false, false, 0, 5},           {"-5:-1", false, true, -5, -1},
	    {"0.5:1.5", false, true, 0.5, 1.5},   {"~:", false, true, -INFINITY, INFINITY},
	    {"80%", false, false, 0, 80},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct perfdata_range r;

		assert_int_equal(perfdata_parse_range(cases[i].text, "%", &r), 0);
		assert_true(r.present);
		assert_int_equal(r.inside, cases[i].inside);
		assert_int_equal(r.start_explicit, cases[i].start_explicit);
		assert_true(r.start == cases[i].start);
		assert_true(r.end == cases[i].end);
	}
}

static void test_range_invalid(void **state)
{
	static const char *const cases[] = {
	    "20:10", "abc", "1:2:3", "@", "~", "10x", "10%", "@@1", "1;2",
	};
	struct perfdata_range r;

	(void)state;
	assert_int_equal(perfdata_parse_range("", "", &r), 0);
	assert_false(r.present);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(perfdata_parse_range(cases[i], "", &r), -1);
}

static void test_unit_conversion(void **state)
{
	static const struct {
		const char *uom;
		double factor; /* of one unit, in the base unit */
		const char *name;
		bool counter;
	} cases[] = {
	    {"", 1, "", false},
	    {"s", 1, "seconds", false},
	    {"ms", 0.001, "seconds", false},
	    {"us", 0.000001, "seconds", false},
	    {"%", 0.01, "ratio", false},
	    {"B", 1, "bytes", false},
	    {"KB", 1024, "bytes", false},
	    {"MB", 1048576, "bytes", false},
	    {"GB", 1073741824.0, "bytes", false},
	    {"TB", 1099511627776.0, "bytes", false},
	    {"c", 1, "", true},
	    {"Bytes", 1, "Bytes", false},
	    {"kb", 1, "kb", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct perfdata_unit u = perfdata_unit_lookup(cases[i].uom);

		assert_double_equal(perfdata_unit_convert(&u, 1), cases[i].factor, 1e-15);
		assert_string_equal(u.name, cases[i].name);
		assert_int_equal(u.counter, cases[i].counter);
	}
}

/* Converted values are the doubles nearest the decimal result, as the text would read. */
static void test_unit_conversion_exact(void **state)
{
	static const struct {
		double value;
		const char *uom;
		double want;
	} cases[] = {
	    {94, "%", 0.94},
	    {57, "%", 0.57},
	    {100, "%", 1},
	    {0.5, "%", 0.005},
	    {12.5, "%", 0.125},
	    {3, "ms", 0.003},
	    {250, "ms", 0.25},
	    {1.1, "ms", 0.0011},
	    {123, "ms", 0.123},
	    {7, "us", 0.000007},
	    {41, "us", 0.000041},
	    {1.5, "KB", 1536},
	    {2, "MB", 2097152},
	    {75, "GB", 80530636800.0},
	    {1, "TB", 1099511627776.0},
	    {-12, "%", -0.12},
	    {0, "ms", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct perfdata_unit u = perfdata_unit_lookup(cases[i].uom);
		double got = perfdata_unit_convert(&u, cases[i].value);

		if (got != cases[i].want)
			fail_msg("%g%s: got %.17g, want %.17g", cases[i].value, cases[i].uom, got,
				 cases[i].want);
	}
}

static void test_split_output(void **state)
{
	static const struct {
		const char *output;
		const char *summary;
		const char *perfdata; /* after trimming */
	} cases[] = {
	    {"OK - fine", "OK - fine", ""},
	    {"OK - fine | a=1", "OK - fine", "a=1"},
	    {"OK - fine|a=1\n", "OK - fine", "a=1"},
	    {"DISK OK | a=1\nline 2\nline 3 | b=2\nc=3\n", "DISK OK", "a=1  b=2\nc=3"},
	    {"OK\nlong text\nmore | b=2 c=3", "OK", "b=2 c=3"},
	    {"OK\nlong text without data\n", "OK", ""},
	    {"  spaced  \t\n", "spaced", ""},
	    {"", "", ""},
	    {"| only=1", "", "only=1"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct perfdata_output out;
		const char *p;
		size_t n;

		perfdata_split_output(cases[i].output, strlen(cases[i].output), &out);
		assert_string_equal(out.summary, cases[i].summary);
		p = out.perfdata;
		while (*p == ' ')
			p++;
		n = strlen(p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\n'))
			n--;
		assert_int_equal(n, strlen(cases[i].perfdata));
		assert_memory_equal(p, cases[i].perfdata, n);
		perfdata_output_free(&out);
	}
}

static void test_split_output_nul_byte(void **state)
{
	static const char output[] = "OK\0hidden | a=1";
	struct perfdata_output out;
	struct perfdata_list list = {0};

	(void)state;
	perfdata_split_output(output, sizeof(output) - 1, &out);
	assert_string_equal(out.summary, "OK hidden");
	assert_int_equal(perfdata_parse(out.perfdata, &list), 1);
	perfdata_list_free(&list);
	perfdata_output_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quoted_labels_seven_metrics),
	    cmocka_unit_test(test_item_table),
	    cmocka_unit_test(test_invalid_items_keep_valid_ones),
	    cmocka_unit_test(test_unterminated_quote_ends_parse),
	    cmocka_unit_test(test_range_syntax),
	    cmocka_unit_test(test_range_invalid),
	    cmocka_unit_test(test_unit_conversion),
	    cmocka_unit_test(test_unit_conversion_exact),
	    cmocka_unit_test(test_split_output),
	    cmocka_unit_test(test_split_output_nul_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
