/*
 * Unit tests of the receiver registry and of Retry-After parsing: delta seconds, the
 * three HTTP-date forms (IMF-fixdate, RFC 850 with its two-digit year, asctime), dates
 * in the past, and the values that must be rejected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alerter/receiver.h"
#include "alerter/receiver_testing.h"

/* 1994-11-06T08:49:00Z, 37 seconds before the date of RFC 9110's examples. */
#define NOV_1994_MS 784111740000LL
/* 2024-05-01T00:00:00Z */
#define MAY_2024_MS 1714521600000LL

static void retry_after_table(void **state)
{
	static const struct {
		const char *value;
		int64_t now_ms;
		int64_t expected;
	} cases[] = {
	    {"120", NOV_1994_MS, 120000},
	    {"0", NOV_1994_MS, 0},
	    {" 5\t", NOV_1994_MS, 5000},
	    {"007", NOV_1994_MS, 7000},
	    {"99999999999999999999", NOV_1994_MS, INT64_MAX / 1000 * 1000},
	    {"Sun, 06 Nov 1994 08:49:37 GMT", NOV_1994_MS, 37000},
	    {"Sun, 06 Nov 1994 08:49:37 GMT", NOV_1994_MS + 500, 36500},
	    {"Sunday, 06-Nov-94 08:49:37 GMT", NOV_1994_MS, 37000},
	    {"Sun Nov  6 08:49:37 1994", NOV_1994_MS, 37000},
	    {"Sun Nov 16 08:49:37 1994", NOV_1994_MS, 37000 + 10 * 86400000LL},
	    /* Dates in the past mean "now". */
	    {"Sun, 06 Nov 1994 08:48:00 GMT", NOV_1994_MS, 0},
	    {"Sun, 06 Nov 1994 08:49:37 GMT", MAY_2024_MS, 0},
	    /* A two-digit year up to 50 years ahead is in this century, else the last. */
	    {"Monday, 01-Jan-74 00:00:00 GMT", MAY_2024_MS, 3281990400000LL - MAY_2024_MS},
	    {"Tuesday, 01-Jan-75 00:00:00 GMT", MAY_2024_MS, 0},
	    {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400000LL - 1000, 1000},
	    /* Invalid values. */
	    {"", NOV_1994_MS, -1},
	    {"   ", NOV_1994_MS, -1},
	    {"-1", NOV_1994_MS, -1},
	    {"1.5", NOV_1994_MS, -1},
	    {"5s", NOV_1994_MS, -1},
	    {"+5", NOV_1994_MS, -1},
	    {"Sun, 06 Nov 1994 08:49:37 UTC", NOV_1994_MS, -1},
	    {"sun, 06 Nov 1994 08:49:37 GMT", NOV_1994_MS, -1},
	    {"Sun, 6 Nov 1994 08:49:37 GMT", NOV_1994_MS, -1},
	    {"Sun, 06 nov 1994 08:49:37 GMT", NOV_1994_MS, -1},
	    {"Sun, 06 Nov 1994 08:49:37 GMT x", NOV_1994_MS, -1},
	    {"Sun, 31 Feb 1994 08:49:37 GMT", NOV_1994_MS, -1},
	    {"Mon, 29 Feb 1993 08:49:37 GMT", NOV_1994_MS, -1},
	    {"Sun, 06 Nov 1994 24:00:00 GMT", NOV_1994_MS, -1},
	    {"Sun, 06 Nov 1994 08:60:00 GMT", NOV_1994_MS, -1},
	    {"Sun, 00 Nov 1994 08:49:37 GMT", NOV_1994_MS, -1},
	    {"Sun Nov 6 08:49:37 1994", NOV_1994_MS, -1},
	    {"Sunday, 06-Nov-1994 08:49:37 GMT", NOV_1994_MS, -1},
	    {"2024-05-01T00:00:00Z", NOV_1994_MS, -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = receiver_parse_retry_after(cases[i].value, cases[i].now_ms);

		if (got != cases[i].expected)
			print_error("case %zu: \"%s\" gave %lld\n", i, cases[i].value,
				    (long long)got);
		assert_int_equal(got, cases[i].expected);
	}
}

static const struct receiver_type fake_one = {.name = "fake_one"};
static const struct receiver_type fake_two = {.name = "fake_two"};

static size_t count_types(void)
{
	const struct receiver_type *const *types = receiver_types();
	size_t n = 0;

	while (types[n] != NULL)
		n++;
	return n;
}

static void registry_lookup(void **state)
{
	size_t before = count_types();

	(void)state;
	assert_null(receiver_type_find("fake_one"));
	receiver_register_for_tests(&fake_one);
	receiver_register_for_tests(&fake_one);
	assert_int_equal(count_types(), before + 1);
	receiver_register_for_tests(&fake_two);
	assert_int_equal(count_types(), before + 2);
	assert_ptr_equal(receiver_type_find("fake_one"), &fake_one);
	assert_ptr_equal(receiver_type_find("fake_two"), &fake_two);
	assert_null(receiver_type_find("fake"));
	assert_null(receiver_type_find(""));
	/* Every compiled-in type is found by its own name. */
	for (size_t i = 0; i < before; i++)
		assert_ptr_equal(receiver_type_find(receiver_types()[i]->name),
				 receiver_types()[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(retry_after_table),
	    cmocka_unit_test(registry_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
