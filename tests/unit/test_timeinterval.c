/*
 * Unit tests of time intervals and the TZif reader, on a virtual clock of fixed instants.
 * Zones: UTC offsets across the DST changes of Europe/Berlin and America/New_York, from
 * the transitions of the file and from its footer rule, and synthetic footers for
 * southern zones and odd offsets. Intervals: times (24:00, exclusive ends, repeated and
 * skipped local hours), weekday and month ranges, negative days of the month, February
 * 29 and years. Tests that need the system's zone files skip when they are missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alerter/alerting_config.h"
#include "alerter/timeinterval.h"
#include "alerter/tzfile.h"
#include "collector/cfg.h"

/* Unix milliseconds of "YYYY-MM-DDTHH:MM:SSZ". */
static int64_t at(const char *iso)
{
	struct tm tm = {0};
	const char *end = strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm);

	assert_non_null(end);
	assert_int_equal(*end, '\0');
	return (int64_t)timegm(&tm) * 1000;
}

static bool have_zone(const char *name)
{
	char path[256];

	snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
	return getenv("TZDIR") == NULL && access(path, R_OK) == 0;
}

static void zone_offsets_across_dst(void **state)
{
	static const struct {
		const char *zone;
		const char *time;
		int32_t offset;
	} cases[] = {
	    /* 2024: transitions listed in the file. */
	    {"Europe/Berlin", "2024-03-31T00:59:59Z", 3600},
	    {"Europe/Berlin", "2024-03-31T01:00:00Z", 7200},
	    {"Europe/Berlin", "2024-10-27T00:59:59Z", 7200},
	    {"Europe/Berlin", "2024-10-27T01:00:00Z", 3600},
	    {"America/New_York", "2024-03-10T06:59:59Z", -18000},
	    {"America/New_York", "2024-03-10T07:00:00Z", -14400},
	    {"America/New_York", "2024-11-03T05:59:59Z", -14400},
	    {"America/New_York", "2024-11-03T06:00:00Z", -18000},
	    /* 2100: past the listed transitions, so from the footer's rule. */
	    {"Europe/Berlin", "2100-03-28T00:59:59Z", 3600},
	    {"Europe/Berlin", "2100-03-28T01:00:00Z", 7200},
	    {"Europe/Berlin", "2100-10-31T00:59:59Z", 7200},
	    {"Europe/Berlin", "2100-10-31T01:00:00Z", 3600},
	    {"America/New_York", "2100-03-14T06:59:59Z", -18000},
	    {"America/New_York", "2100-03-14T07:00:00Z", -14400},
	    /* Before the first transition: local mean time. */
	    {"Europe/Berlin", "1850-01-01T00:00:00Z", 3208},
	    {"America/New_York", "1850-01-01T00:00:00Z", -17762},
	};

	(void)state;
	if (!have_zone("Europe/Berlin") || !have_zone("America/New_York"))
		skip();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char error[256] = "";
		struct tzfile *z = tzfile_load(cases[i].zone, error, sizeof error);

		assert_non_null(z);
		if (tzfile_offset(z, at(cases[i].time) / 1000) != cases[i].offset)
			print_error("case %zu: %s at %s\n", i, cases[i].zone, cases[i].time);
		assert_int_equal(tzfile_offset(z, at(cases[i].time) / 1000), cases[i].offset);
		tzfile_free(z);
	}
}

/* A version 2 TZif file with no transitions, one type and the given footer. */
static size_t make_tzif(unsigned char *out, int32_t offset, const char *footer)
{
	size_t n = 0;

	for (int copy = 0; copy < 2; copy++) {
		memset(out + n, 0, 44);
		memcpy(out + n, "TZif2", 5);
		out[n + 39] = 1; /* typecnt */
		out[n + 43] = 4; /* charcnt */
		n += 44;
		out[n++] = (unsigned char)((uint32_t)offset >> 24);
		out[n++] = (unsigned char)((uint32_t)offset >> 16);
		out[n++] = (unsigned char)((uint32_t)offset >> 8);
		out[n++] = (unsigned char)offset;
		out[n++] = 0; /* isdst */
		out[n++] = 0; /* abbreviation index */
		memcpy(out + n, "XYZ", 4);
		n += 4;
	}
	out[n++] = '\n';
	memcpy(out + n, footer, strlen(footer));
	n += strlen(footer);
	out[n++] = '\n';
	return n;
}

static void zone_footer_rules(void **state)
{
	static const struct {
		const char *footer;
		const char *time;
		int32_t offset;
	} cases[] = {
	    /* Sydney: DST from the first Sunday of October to the first of April. */
	    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2100-01-15T00:00:00Z", 39600},
	    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2100-07-15T00:00:00Z", 36000},
	    /* 2024-04-07 03:00 AEDT is 2024-04-06T16:00Z. */
	    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2024-04-06T15:59:59Z", 39600},
	    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2024-04-06T16:00:00Z", 36000},
	    /* 2024-10-06 02:00 AEST is 2024-10-05T16:00Z. */
	    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2024-10-05T15:59:59Z", 36000},
	    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2024-10-05T16:00:00Z", 39600},
	    {"<+0545>-5:45", "2024-01-01T00:00:00Z", 20700},
	    {"<-03>3", "2024-06-01T00:00:00Z", -10800},
	    /* Julian days without February 29 (J60 is March 1) and zero-based days. */
	    {"STD0DST,J60/0,J335/0", "2024-02-29T23:59:59Z", 0},
	    {"STD0DST,J60/0,J335/0", "2024-03-01T00:00:00Z", 3600},
	    {"STD0DST,59/0,334/0", "2024-02-29T00:00:00Z", 3600},
	    {"STD0DST,59/0,334/0", "2024-02-28T23:59:59Z", 0},
	    /* Last Sunday of a month with five Sundays (March 2024: the 31st). */
	    {"CET-1CEST,M3.5.0,M10.5.0/3", "2024-03-31T01:00:00Z", 7200},
	    {"CET-1CEST,M3.5.0,M10.5.0/3", "2024-03-24T12:00:00Z", 3600},
	    /* An empty footer: the last type applies. */
	    {"", "2024-06-01T00:00:00Z", 7200},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char data[256];
		size_t n = make_tzif(data, cases[i].footer[0] == '\0' ? 7200 : 0, cases[i].footer);
		char error[256] = "";
		struct tzfile *z = tzfile_parse("test", data, n, error, sizeof error);

		if (z == NULL)
			print_error("case %zu: %s\n", i, error);
		assert_non_null(z);
		if (tzfile_offset(z, at(cases[i].time) / 1000) != cases[i].offset)
			print_error("case %zu: %s at %s\n", i, cases[i].footer, cases[i].time);
		assert_int_equal(tzfile_offset(z, at(cases[i].time) / 1000), cases[i].offset);
		tzfile_free(z);
	}
}

static void zone_errors(void **state)
{
	static const char *const bad_footers[] = {"X0", "CET-1CEST,M13.1.0,M10.5.0",
						  "CET-1CEST,M3.5.0", "CET-25"};
	unsigned char data[256];
	char error[256];
	struct tzfile *z;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_footers) / sizeof(bad_footers[0]); i++) {
		size_t n = make_tzif(data, 0, bad_footers[i]);

		error[0] = '\0';
		assert_null(tzfile_parse("bad", data, n, error, sizeof error));
		assert_string_equal(error,
				    "time zone bad: invalid TZif data (unsupported TZ rule in the "
				    "footer)");
	}
	assert_null(tzfile_parse("short", data, 10, error, sizeof error));
	assert_string_equal(error, "time zone short: invalid TZif data (no TZif header)");
	assert_null(tzfile_parse("cut", data, 50, error, sizeof error));
	assert_string_equal(error, "time zone cut: invalid TZif data (truncated)");

	assert_null(tzfile_load("../etc/passwd", error, sizeof error));
	assert_string_equal(error, "invalid time zone name \"../etc/passwd\"; expected an IANA "
				   "name such as \"Europe/Berlin\", \"UTC\" or \"Local\"");
	assert_null(tzfile_load("/etc/localtime", error, sizeof error));
	assert_null(tzfile_load("Mars/Olympus_Mons", error, sizeof error));
	assert_true(strncmp(error, "unknown time zone \"Mars/Olympus_Mons\": cannot read ",
			    strlen("unknown time zone \"Mars/Olympus_Mons\": cannot read ")) == 0);
	z = tzfile_load("UTC", error, sizeof error);
	assert_non_null(z);
	assert_int_equal(tzfile_offset(z, 0), 0);
	assert_string_equal(tzfile_name(z), "UTC");
	tzfile_free(z);
}

/* Loads one `alerting:` section that defines time intervals. */
static struct alerting_config *load_intervals(const char *intervals_yaml)
{
	char yaml[4096];
	struct cfg *c;
	struct cfg_map root;
	struct alerting_config *ac;

	snprintf(yaml, sizeof yaml,
		 "alerting:\n"
		 "  receivers: [{name: ops}]\n"
		 "  route: {receiver: ops}\n"
		 "  time_intervals:\n%s",
		 intervals_yaml);
	c = cfg_parse_string("t.yml", yaml, strlen(yaml));
	assert_int_equal(cfg_root(c, &root), 0);
	ac = alerting_config_read(&root);
	cfg_map_finish(&root);
	if (cfg_error_count(c) > 0)
		print_error("unexpected errors:\n%s\n", cfg_errors(c));
	assert_int_equal(cfg_error_count(c), 0);
	cfg_free(c);
	return ac;
}

struct interval_case {
	const char *interval;
	const char *time;
	bool active;
};

static void check_cases(const struct alerting_config *ac, const struct interval_case *cases,
			size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct time_interval *ti =
		    alerting_config_time_interval(ac, cases[i].interval);

		assert_non_null(ti);
		if (timeinterval_active(ti, at(cases[i].time)) != cases[i].active)
			print_error("case %zu: %s at %s\n", i, cases[i].interval, cases[i].time);
		assert_int_equal(timeinterval_active(ti, at(cases[i].time)), cases[i].active);
	}
}

static void intervals_in_zones_across_dst(void **state)
{
	static const struct interval_case cases[] = {
	    /* Berlin office hours, before DST starts: 09:00 CET is 08:00Z. */
	    {"berlin-office", "2024-03-29T07:59:59Z", false},
	    {"berlin-office", "2024-03-29T08:00:00Z", true},
	    {"berlin-office", "2024-03-29T15:59:59Z", true},
	    {"berlin-office", "2024-03-29T16:00:00Z", false},
	    /* After: 09:00 CEST is 07:00Z. */
	    {"berlin-office", "2024-04-02T06:59:59Z", false},
	    {"berlin-office", "2024-04-02T07:00:00Z", true},
	    {"berlin-office", "2024-04-02T14:59:59Z", true},
	    {"berlin-office", "2024-04-02T15:00:00Z", false},
	    {"berlin-office", "2024-03-30T10:00:00Z", false},
	    /* 02:00 to 03:00 local never happens on 2024-03-31 ... */
	    {"berlin-two", "2024-03-31T00:30:00Z", false},
	    {"berlin-two", "2024-03-31T01:00:00Z", false},
	    {"berlin-two", "2024-03-31T01:30:00Z", false},
	    /* ... and happens twice on 2024-10-27. */
	    {"berlin-two", "2024-10-26T23:59:59Z", false},
	    {"berlin-two", "2024-10-27T00:00:00Z", true},
	    {"berlin-two", "2024-10-27T00:59:59Z", true},
	    {"berlin-two", "2024-10-27T01:00:00Z", true},
	    {"berlin-two", "2024-10-27T01:59:59Z", true},
	    {"berlin-two", "2024-10-27T02:00:00Z", false},
	    /* New York: 09:00 EST is 14:00Z, 09:00 EDT is 13:00Z. */
	    {"ny-office", "2024-03-08T13:59:59Z", false},
	    {"ny-office", "2024-03-08T14:00:00Z", true},
	    {"ny-office", "2024-03-11T12:59:59Z", false},
	    {"ny-office", "2024-03-11T13:00:00Z", true},
	    {"ny-office", "2024-03-11T20:59:59Z", true},
	    {"ny-office", "2024-03-11T21:00:00Z", false},
	    /* 01:00 to 02:00 local twice on 2024-11-03: 05:00Z (EDT) and 06:00Z (EST). */
	    {"ny-one", "2024-11-03T04:59:59Z", false},
	    {"ny-one", "2024-11-03T05:00:00Z", true},
	    {"ny-one", "2024-11-03T06:59:59Z", true},
	    {"ny-one", "2024-11-03T07:00:00Z", false},
	    /* The weekend starts at local midnight: Friday 22:00Z in Berlin's summer. */
	    {"berlin-weekend", "2024-05-03T21:59:59Z", false},
	    {"berlin-weekend", "2024-05-03T22:00:00Z", true},
	    {"berlin-weekend", "2024-05-05T21:59:59Z", true},
	    {"berlin-weekend", "2024-05-05T22:00:00Z", false},
	    {"utc-weekend", "2024-05-03T22:00:00Z", false},
	    {"utc-weekend", "2024-05-04T00:00:00Z", true},
	    /* Years in New York's local time: 2024 starts at 05:00Z. */
	    {"ny-2024", "2024-01-01T04:59:59Z", false},
	    {"ny-2024", "2024-01-01T05:00:00Z", true},
	};
	struct alerting_config *ac;

	(void)state;
	if (!have_zone("Europe/Berlin") || !have_zone("America/New_York"))
		skip();
	ac = load_intervals(
	    "    - name: berlin-office\n"
	    "      time_intervals:\n"
	    "        - times: [{start_time: '09:00', end_time: '17:00'}]\n"
	    "          weekdays: ['monday:friday']\n"
	    "          location: Europe/Berlin\n"
	    "    - name: berlin-two\n"
	    "      time_intervals:\n"
	    "        - times: [{start_time: '02:00', end_time: '03:00'}]\n"
	    "          location: Europe/Berlin\n"
	    "    - name: ny-office\n"
	    "      time_intervals:\n"
	    "        - times: [{start_time: '09:00', end_time: '17:00'}]\n"
	    "          weekdays: ['Monday:Friday']\n"
	    "          location: America/New_York\n"
	    "    - name: ny-one\n"
	    "      time_intervals:\n"
	    "        - times: [{start_time: '01:00', end_time: '02:00'}]\n"
	    "          location: America/New_York\n"
	    "    - name: berlin-weekend\n"
	    "      time_intervals:\n"
	    "        - weekdays: [saturday, SUNDAY]\n"
	    "          location: Europe/Berlin\n"
	    "    - name: utc-weekend\n"
	    "      time_intervals: [{weekdays: [saturday, sunday]}]\n"
	    "    - name: ny-2024\n"
	    "      time_intervals: [{years: ['2024'], location: America/New_York}]\n");
	check_cases(ac, cases, sizeof(cases) / sizeof(cases[0]));
	alerting_config_free(ac);
}

static void intervals_calendar_fields(void **state)
{
	static const struct interval_case cases[] = {
	    /* 24:00 ends the day; the end of a time range is exclusive. */
	    {"late", "2024-05-06T21:59:59Z", false},
	    {"late", "2024-05-06T22:00:00Z", true},
	    {"late", "2024-05-06T23:59:59Z", true},
	    {"late", "2024-05-07T00:00:00Z", false},
	    /* Several time ranges: either one. */
	    {"split", "2024-05-06T00:30:00Z", true},
	    {"split", "2024-05-06T01:00:00Z", false},
	    {"split", "2024-05-06T23:30:00Z", true},
	    /* The last day of the month, in leap and common years. */
	    {"last-day", "2024-02-29T12:00:00Z", true},
	    {"last-day", "2024-02-28T12:00:00Z", false},
	    {"last-day", "2023-02-28T12:00:00Z", true},
	    {"last-day", "2024-04-30T12:00:00Z", true},
	    {"last-day", "2024-05-30T12:00:00Z", false},
	    {"last-day", "2024-05-31T12:00:00Z", true},
	    /* The last week: 23 to 29 in February 2024, 22 to 28 in 2023. */
	    {"last-week", "2024-02-22T12:00:00Z", false},
	    {"last-week", "2024-02-23T12:00:00Z", true},
	    {"last-week", "2023-02-22T12:00:00Z", true},
	    {"last-week", "2023-02-21T12:00:00Z", false},
	    /* 30:31 is past the end of February, so it matches nothing there. */
	    {"month-end", "2024-02-29T12:00:00Z", false},
	    {"month-end", "2024-01-30T12:00:00Z", true},
	    {"month-end", "2024-04-30T12:00:00Z", true},
	    /* 25:31 stops at the last day of a short month. */
	    {"from-25", "2024-02-29T12:00:00Z", true},
	    {"from-25", "2024-02-24T12:00:00Z", false},
	    /* 1:-1 is the whole month. */
	    {"whole", "2024-02-01T00:00:00Z", true},
	    {"whole", "2024-02-29T23:59:59Z", true},
	    /* February 29 exists only in leap years. */
	    {"leap-day", "2024-02-29T00:00:00Z", true},
	    {"leap-day", "2023-03-01T00:00:00Z", false},
	    {"leap-day", "2025-02-28T00:00:00Z", false},
	    {"leap-day", "2028-02-29T08:00:00Z", true},
	    {"leap-day", "2100-02-28T08:00:00Z", false},
	    /* Month names, numbers and ranges. */
	    {"quarters", "2024-01-15T00:00:00Z", true},
	    {"quarters", "2024-03-31T23:59:59Z", true},
	    {"quarters", "2024-04-01T00:00:00Z", false},
	    {"quarters", "2024-05-01T00:00:00Z", true},
	    {"quarters", "2024-12-31T00:00:00Z", true},
	    {"quarters", "2024-11-30T00:00:00Z", false},
	    /* Years: inclusive ranges. */
	    {"years", "2023-12-31T23:59:59Z", false},
	    {"years", "2024-01-01T00:00:00Z", true},
	    {"years", "2025-12-31T23:59:59Z", true},
	    {"years", "2026-01-01T00:00:00Z", false},
	    /* Every field of a period must match; periods are alternatives. */
	    {"combined", "2024-05-06T10:00:00Z", true},
	    {"combined", "2024-05-13T10:00:00Z", false},
	    {"combined", "2024-05-06T08:00:00Z", false},
	    {"combined", "2024-05-11T08:00:00Z", true},
	    /* An empty period is always active; an empty list never. */
	    {"always", "1999-01-01T00:00:00Z", true},
	    {"never", "1999-01-01T00:00:00Z", false},
	};
	struct alerting_config *ac;

	(void)state;
	ac = load_intervals("    - name: late\n"
			    "      time_intervals: [{times: [{start_time: '22:00', end_time: "
			    "'24:00'}]}]\n"
			    "    - name: split\n"
			    "      time_intervals:\n"
			    "        - times:\n"
			    "            - {start_time: '00:00', end_time: '01:00'}\n"
			    "            - {start_time: '23:00', end_time: '24:00'}\n"
			    "    - name: last-day\n"
			    "      time_intervals: [{days_of_month: ['-1']}]\n"
			    "    - name: last-week\n"
			    "      time_intervals: [{days_of_month: ['-7:-1']}]\n"
			    "    - name: month-end\n"
			    "      time_intervals: [{days_of_month: ['30:31']}]\n"
			    "    - name: from-25\n"
			    "      time_intervals: [{days_of_month: ['25:31']}]\n"
			    "    - name: whole\n"
			    "      time_intervals: [{days_of_month: ['1:-1']}]\n"
			    "    - name: leap-day\n"
			    "      time_intervals: [{months: [february], days_of_month: [29]}]\n"
			    "    - name: quarters\n"
			    "      time_intervals: [{months: ['january:march', May, '12']}]\n"
			    "    - name: years\n"
			    "      time_intervals: [{years: ['2024:2025']}]\n"
			    "    - name: combined\n"
			    "      time_intervals:\n"
			    "        - weekdays: [monday]\n"
			    "          days_of_month: ['1:7']\n"
			    "          times: [{start_time: '09:00', end_time: '17:00'}]\n"
			    "        - weekdays: [saturday]\n"
			    "    - name: always\n"
			    "      time_intervals: [{}]\n"
			    "    - name: never\n"
			    "      time_intervals: []\n");
	check_cases(ac, cases, sizeof(cases) / sizeof(cases[0]));
	alerting_config_free(ac);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(zone_offsets_across_dst),
	    cmocka_unit_test(zone_footer_rules),
	    cmocka_unit_test(zone_errors),
	    cmocka_unit_test(intervals_in_zones_across_dst),
	    cmocka_unit_test(intervals_calendar_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
