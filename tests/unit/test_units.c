/*
 * Tables of accepted and rejected durations, sizes and retention tiers, including
 * overflow at the edge of uint64 and junk around valid values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "collector/units.h"

struct duration_case {
	const char *text;
	uint64_t ms;
};

static void test_duration_valid(void **state)
{
	static const struct duration_case cases[] = {
	    {"0", 0},
	    {"0s", 0},
	    {"500ms", 500},
	    {"1s", 1000},
	    {"10s", 10000},
	    {"5m", 300000},
	    {"1h", 3600000},
	    {"1h30m", 5400000},
	    {"1m30s", 90000},
	    {"1s500ms", 1500},
	    {"7d", 604800000},
	    {"2w", 1209600000},
	    {"1w1d1h1m1s1ms", 604800000ull + 86400000 + 3600000 + 60000 + 1000 + 1},
	    {"90s", 90000},
	    {"18446744073709551615ms", UINT64_MAX},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t ms = 1;

		assert_int_equal(units_parse_duration_ms(cases[i].text, &ms), 0);
		assert_int_equal(ms, cases[i].ms);
	}
}

static void test_duration_invalid(void **state)
{
	static const char *const cases[] = {
	    "",
	    "10",                          /* no unit */
	    "10x",                         /* unknown unit */
	    "s",                           /* no number */
	    "-1s",                         /* sign */
	    "+1s",                         /* sign */
	    " 1s",                         /* space */
	    "1s ",                         /* space */
	    "1 s",                         /* space */
	    "1.5s",                        /* fraction */
	    "30m1h",                       /* smallest unit first */
	    "1h1h",                        /* repeated unit */
	    "1m1m",                        /* repeated unit */
	    "1s1m",                        /* wrong order */
	    "1h30",                        /* trailing number */
	    "1S",                          /* units are lower case */
	    "1H",                          /* units are lower case */
	    "0x10s",                       /* hex */
	    "18446744073709551616ms",      /* one past UINT64_MAX */
	    "18446744073709551615s",       /* overflows when multiplied */
	    "40000000000w",                /* overflows when multiplied */
	    "213503982334d23h59m59s999ms", /* each fits, the sum overflows */
	    "1d\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t ms = 42;

		assert_int_equal(units_parse_duration_ms(cases[i], &ms), -1);
		assert_int_equal(ms, 42); /* untouched on error */
	}
}

static void test_duration_format(void **state)
{
	static const struct duration_case cases[] = {
	    {"0s", 0},
	    {"500ms", 500},
	    {"1s", 1000},
	    {"1s500ms", 1500},
	    {"1m30s", 90000},
	    {"1h", 3600000},
	    {"1h30m", 5400000},
	    {"7d", 604800000},
	    {"400d", 34560000000ull},
	    {"1d1h1m1s1ms", 90061001},
	};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t back = 0;

		assert_string_equal(units_format_duration(cases[i].ms, buf, sizeof buf),
				    cases[i].text);
		/* Whatever the formatter writes, the parser reads back to the same value. */
		assert_int_equal(units_parse_duration_ms(buf, &back), 0);
		assert_int_equal(back, cases[i].ms);
	}
}

static void test_duration_format_short_buffer(void **state)
{
	char buf[4];

	(void)state;
	/* A component that does not fit is left out whole, never cut in the middle. */
	units_format_duration(90061001, buf, sizeof buf);
	assert_string_equal(buf, "1d");
}

struct size_case {
	const char *text;
	uint64_t bytes;
};

static void test_size_valid(void **state)
{
	static const struct size_case cases[] = {
	    {"0", 0},
	    {"4096", 4096},
	    {"10B", 10},
	    {"1kB", 1000},
	    {"1KB", 1000},
	    {"10MB", 10000000},
	    {"1GB", 1000000000},
	    {"2TB", 2000000000000ull},
	    {"512KiB", 524288},
	    {"1MiB", 1048576},
	    {"1GiB", 1073741824},
	    {"1TiB", 1099511627776ull},
	    {"18446744073709551615", UINT64_MAX},
	    {"16777215TiB", 16777215ull << 40},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t bytes = 1;

		assert_int_equal(units_parse_size(cases[i].text, &bytes), 0);
		assert_int_equal(bytes, cases[i].bytes);
	}
}

static void test_size_invalid(void **state)
{
	static const char *const cases[] = {
	    "",
	    "B",
	    "10 MB",
	    "1.5GiB",
	    "-1",
	    "+1",
	    "1kb",
	    "1Kib",
	    "1mb",
	    "1K",
	    "1KiBB",
	    "1MBs",
	    "1 ",
	    " 1",
	    "0x10",
	    "1e3",
	    "18446744073709551616", /* one past UINT64_MAX */
	    "16777216TiB",          /* overflows when multiplied */
	    "20000000TB",           /* overflows when multiplied */
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t bytes = 42;

		assert_int_equal(units_parse_size(cases[i], &bytes), -1);
		assert_int_equal(bytes, 42);
	}
}

struct tier_case {
	const char *text;
	uint32_t step_s;
	uint64_t keep_s;
};

static void test_retention_tier_valid(void **state)
{
	static const struct tier_case cases[] = {
	    {"10s:2d", 10, 172800}, {"1m:30d", 60, 2592000}, {"1h:400d", 3600, 34560000},
	    {"1s:2s", 1, 2},        {"1m30s:3m", 90, 180},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct retention_tier tier = {0};

		assert_null(units_retention_tier_problem(cases[i].text));
		assert_int_equal(units_parse_retention_tier(cases[i].text, &tier), 0);
		assert_int_equal(tier.step_s, cases[i].step_s);
		assert_int_equal(tier.keep_s, cases[i].keep_s);
	}
}

struct tier_error_case {
	const char *text;
	const char *problem;
};

static void test_retention_tier_invalid(void **state)
{
	static const struct tier_error_case cases[] = {
	    {"10s", "is not STEP:KEEP"},
	    {"", "is not STEP:KEEP"},
	    {"10x:2d", "has a STEP that is not a duration"},
	    {":2d", "has a STEP that is not a duration"},
	    {"10s:", "has a KEEP that is not a duration"},
	    {"10s:2d:3d", "has a KEEP that is not a duration"},
	    {"10s: 2d", "has a KEEP that is not a duration"},
	    {"500ms:1d", "has a STEP that is not a whole number of seconds of at least 1s"},
	    {"1500ms:1d", "has a STEP that is not a whole number of seconds of at least 1s"},
	    {"0s:1d", "has a STEP that is not a whole number of seconds of at least 1s"},
	    {"10s:10s", "has a KEEP that is not longer than its STEP"},
	    {"1m:30s", "has a KEEP that is not longer than its STEP"},
	    {"7s:1m", "has a KEEP that is not a multiple of its STEP"},
	    {"200000000w:400000000w", "has a STEP longer than an RRD step can be (4294967295s)"},
	    {"1s:100d", "keeps more than 1000000 rows (each RRD file would hold over 22 MiB per "
			"tier); use a coarser STEP or a shorter KEEP, e.g. 10s:100d or 1m:1y"},
	    {"1s:1000001s", "keeps more than 1000000 rows (each RRD file would hold over 22 MiB "
			    "per tier); use a coarser STEP or a shorter KEEP, e.g. 10s:100d or "
			    "1m:1y"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct retention_tier tier = {7, 7};
		const char *problem = units_retention_tier_problem(cases[i].text);

		assert_non_null(problem);
		assert_string_equal(problem, cases[i].problem);
		assert_int_equal(units_parse_retention_tier(cases[i].text, &tier), -1);
		assert_int_equal(tier.step_s, 7);
		assert_int_equal(tier.keep_s, 7);
	}
}

static void test_retention_list(void **state)
{
	struct retention r = {0};
	char buf[128];

	(void)state;
	assert_int_equal(units_parse_retention("10s:2d, 1m:30d, 1h:400d", &r), 0);
	assert_int_equal(r.count, 3);
	assert_int_equal(r.tier[0].step_s, 10);
	assert_int_equal(r.tier[0].keep_s, 2 * 86400);
	assert_int_equal(r.tier[1].step_s, 60);
	assert_int_equal(r.tier[1].keep_s, 30 * 86400);
	assert_int_equal(r.tier[2].step_s, 3600);
	assert_int_equal(r.tier[2].keep_s, 400 * 86400);
	assert_string_equal(units_format_retention(&r, buf, sizeof buf), "10s:2d, 1m:30d, 1h:400d");

	assert_int_equal(units_parse_retention("1m:1d", &r), 0);
	assert_int_equal(r.count, 1);
	assert_int_equal(
	    units_parse_retention("1s:2s,2s:4s,3s:6s,4s:8s,5s:10s,6s:12s,7s:14s,8s:16s", &r), 0);
	assert_int_equal(r.count, RETENTION_MAX_TIERS);
}

static void test_retention_list_invalid(void **state)
{
	static const char *const cases[] = {
	    "",
	    ",",
	    "10s:2d,",
	    "10s:2d,,1m:30d",
	    "1m:30d, 10s:2d", /* steps must increase */
	    "1m:30d, 1m:60d", /* steps must increase strictly */
	    "10s:2d, junk",
	    "1s:2s,2s:4s,3s:6s,4s:8s,5s:10s,6s:12s,7s:14s,8s:16s,9s:18s", /* nine tiers */
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct retention r = {.count = 99};

		assert_int_equal(units_parse_retention(cases[i], &r), -1);
		assert_int_equal(r.count, 99);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration_valid),
	    cmocka_unit_test(test_duration_invalid),
	    cmocka_unit_test(test_duration_format),
	    cmocka_unit_test(test_duration_format_short_buffer),
	    cmocka_unit_test(test_size_valid),
	    cmocka_unit_test(test_size_invalid),
	    cmocka_unit_test(test_retention_tier_valid),
	    cmocka_unit_test(test_retention_tier_invalid),
	    cmocka_unit_test(test_retention_list),
	    cmocka_unit_test(test_retention_list_invalid),
	};

	return cmocka_run_group_tests_name("units", tests, NULL, NULL);
}
