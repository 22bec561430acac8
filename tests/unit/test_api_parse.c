/*
 * Tables of the API's parameter parsers and value formatting: RFC 3339 and Unix-second
 * times, durations and steps, and Prometheus's text form of sample values.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "web/api_impl.h"

struct time_case {
	const char *text;
	int64_t ms;
};

static void test_time_valid(void **state)
{
	static const struct time_case cases[] = {
	    {"0", 0},
	    {"1714557600", 1714557600000},
	    {"1714557600.5", 1714557600500},
	    {"1714557600.123", 1714557600123},
	    {"2024-05-01T10:00:00Z", 1714557600000},
	    {"2024-05-01T10:00:00.250Z", 1714557600250},
	    {"2024-05-01T12:00:00+02:00", 1714557600000},
	    {"2024-05-01T05:30:00-04:30", 1714557600000},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = -1;

		assert_int_equal(api_parse_time(cases[i].text, &ms), 0);
		assert_int_equal(ms, cases[i].ms);
	}
}

static void test_time_invalid(void **state)
{
	static const char *const cases[] = {
	    "",
	    "yesterday",
	    "-5",
	    "1e400",
	    "nan",
	    "12abc",
	    "2024-05-01T10:00:00",
	    "2024-05-01T10:00:00+2",
	    "2024-05-01T10:00:00Zjunk",
	    "2024-13-01T10:00:00Z",
	    "2024-05-01T10:00:00.Z",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = 42;

		assert_int_equal(api_parse_time(cases[i], &ms), -1);
	}
}

static void test_duration(void **state)
{
	int64_t ms = 0;

	(void)state;
	assert_int_equal(api_parse_duration("15s", &ms), 0);
	assert_int_equal(ms, 15000);
	assert_int_equal(api_parse_duration("1m30s", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(api_parse_duration("0.5", &ms), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(api_parse_duration("60", &ms), 0);
	assert_int_equal(ms, 60000);
	assert_int_equal(api_parse_duration("", &ms), -1);
	assert_int_equal(api_parse_duration("-1", &ms), -1);
	assert_int_equal(api_parse_duration("fast", &ms), -1);
}

static void test_format_value(void **state)
{
	char buf[40];

	(void)state;
	assert_string_equal(api_format_value(0, buf, sizeof(buf)), "0");
	assert_string_equal(api_format_value(0.1, buf, sizeof(buf)), "0.1");
	assert_string_equal(api_format_value(1.0 / 3, buf, sizeof(buf)), "0.3333333333333333");
	assert_string_equal(api_format_value(1e21, buf, sizeof(buf)), "1e+21");
	assert_string_equal(api_format_value(NAN, buf, sizeof(buf)), "NaN");
	assert_string_equal(api_format_value(INFINITY, buf, sizeof(buf)), "+Inf");
	assert_string_equal(api_format_value(-INFINITY, buf, sizeof(buf)), "-Inf");
}

static void test_format_time(void **state)
{
	char buf[40];

	(void)state;
	assert_string_equal(api_format_time(1714557600250, buf, sizeof(buf)),
			    "2024-05-01T10:00:00.250Z");
	assert_string_equal(api_format_time(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_time_valid),  cmocka_unit_test(test_time_invalid),
	    cmocka_unit_test(test_duration),    cmocka_unit_test(test_format_value),
	    cmocka_unit_test(test_format_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
