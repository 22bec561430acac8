/*
 * Time intervals: reading `time_intervals` entries from the config and deciding whether
 * an instant falls in one. Local time comes from the period's own zone (alerter/tzfile.h)
 * and gmtime_r() of the shifted instant, so no process-wide TZ setting is involved.
 */
#include "alerter/timeinterval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alerter/tzfile.h"
#include "collector/cfg.h"
#include "collector/xalloc.h"

#define TIMEINTERVAL_DAY_MINUTES 1440

static const char *const timeinterval_weekday_names[] = {
    "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
};

static const char *const timeinterval_month_names[] = {
    "january", "february", "march",     "april",   "may",      "june",
    "july",    "august",   "september", "october", "november", "december",
};

/* ---- matching ---- */

static bool timeinterval_is_leap(int year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int timeinterval_month_length(int year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return days[month - 1] + (month == 2 && timeinterval_is_leap(year) ? 1 : 0);
}

static bool timeinterval_in_ranges(const struct timeinterval_range *r, size_t count, int value)
{
	if (count == 0)
		return true;
	for (size_t i = 0; i < count; i++)
		if (value >= r[i].begin && value <= r[i].end)
			return true;
	return false;
}

/*
 * Negative days count from the end of the month (-1 is the last day). A range whose
 * first day is past the end of a short month matches nothing in it. A range whose last
 * day is past the end stops at the last day.
 */
static bool timeinterval_in_days(const struct timeinterval_range *r, size_t count, int mday,
				 int length)
{
	if (count == 0)
		return true;
	for (size_t i = 0; i < count; i++) {
		int begin = r[i].begin < 0 ? length + r[i].begin + 1 : r[i].begin;
		int end = r[i].end < 0 ? length + r[i].end + 1 : r[i].end;

		if (begin > length)
			continue;
		if (end > length)
			end = length;
		if (mday >= begin && mday <= end)
			return true;
	}
	return false;
}

bool timeinterval_period_contains(const struct timeinterval_period *p, int64_t unix_ms)
{
	int64_t unix_s = unix_ms / 1000 - (unix_ms % 1000 < 0 ? 1 : 0);
	time_t local = (time_t)(unix_s + (p->zone != NULL ? tzfile_offset(p->zone, unix_s) : 0));
	struct tm tm;
	int minute;
	int year;

	if (gmtime_r(&local, &tm) == NULL)
		return false;
	minute = tm.tm_hour * 60 + tm.tm_min;
	year = tm.tm_year + 1900;
	if (p->time_count > 0) {
		bool in = false;

		/* The end of a time range is exclusive, unlike every other field. */
		for (size_t i = 0; i < p->time_count && !in; i++)
			in = minute >= p->times[i].begin && minute < p->times[i].end;
		if (!in)
			return false;
	}
	return timeinterval_in_ranges(p->weekdays, p->weekday_count, tm.tm_wday) &&
	       timeinterval_in_days(p->days_of_month, p->day_count, tm.tm_mday,
				    timeinterval_month_length(year, tm.tm_mon + 1)) &&
	       timeinterval_in_ranges(p->months, p->month_count, tm.tm_mon + 1) &&
	       timeinterval_in_ranges(p->years, p->year_count, year);
}

bool timeinterval_active(const struct time_interval *ti, int64_t unix_ms)
{
	for (size_t i = 0; i < ti->period_count; i++)
		if (timeinterval_period_contains(&ti->periods[i], unix_ms))
			return true;
	return false;
}

/* ---- freeing ---- */

static void timeinterval_period_clear(struct timeinterval_period *p)
{
	free(p->times);
	free(p->weekdays);
	free(p->days_of_month);
	free(p->months);
	free(p->years);
	tzfile_free(p->zone);
}

void timeinterval_clear(struct time_interval *ti)
{
	for (size_t i = 0; i < ti->period_count; i++)
		timeinterval_period_clear(&ti->periods[i]);
	free(ti->periods);
	free(ti->name);
	free(ti->location);
	memset(ti, 0, sizeof(*ti));
}

/* ---- reading ---- */

/* Parses a whole decimal integer with an optional '-'; false for anything else. */
static bool timeinterval_parse_int(const char *s, int *out)
{
	const char *digits = s[0] == '-' ? s + 1 : s;
	long v;
	char *end;

	if (digits[0] < '0' || digits[0] > '9' || strlen(digits) > 6)
		return false;
	v = strtol(s, &end, 10);
	if (*end != '\0')
		return false;
	*out = (int)v;
	return true;
}

/* Parses one end of a range for a field; false when the text is not accepted. */
typedef bool timeinterval_value_fn(const char *text, int *out);

static bool timeinterval_name_index(const char *text, const char *const *names, size_t count,
				    int first, int *out)
{
	for (size_t i = 0; i < count; i++) {
		if (strcasecmp(text, names[i]) == 0) {
			*out = (int)i + first;
			return true;
		}
	}
	return false;
}

static bool timeinterval_weekday(const char *text, int *out)
{
	return timeinterval_name_index(text, timeinterval_weekday_names, 7, 0, out);
}

static bool timeinterval_month(const char *text, int *out)
{
	if (timeinterval_name_index(text, timeinterval_month_names, 12, 1, out))
		return true;
	return timeinterval_parse_int(text, out) && *out >= 1 && *out <= 12;
}

static bool timeinterval_day(const char *text, int *out)
{
	return timeinterval_parse_int(text, out) && *out != 0 && *out >= -31 && *out <= 31;
}

static bool timeinterval_year(const char *text, int *out)
{
	return timeinterval_parse_int(text, out) && *out >= 1 && *out <= 9999;
}

/* One field: its key, how one value reads, and what to say about a wrong value. */
struct timeinterval_field {
	const char *key;
	timeinterval_value_fn *parse;
	const char *noun;     /* "a weekday" */
	const char *accepted; /* for the message */
	const char *order;    /* why a descending range is rejected */
};

static const struct timeinterval_field timeinterval_fields[] = {
    {"weekdays", timeinterval_weekday, "a weekday",
     "sunday to saturday, or a range such as \"monday:friday\"",
     "a week runs from sunday to saturday here, so list a range that wraps as two items, "
     "e.g. [\"saturday\", \"sunday\"]"},
    {"days_of_month", timeinterval_day, "a day of the month",
     "1 to 31, -31 to -1 counting from the end of the month (-1 is the last day), or a "
     "range such as \"1:7\" or \"-3:-1\"",
     "write the earlier day first"},
    {"months", timeinterval_month, "a month",
     "january to december, 1 to 12, or a range such as \"march:may\"",
     "a range cannot wrap past december, so list it as two items, e.g. "
     "[\"november:december\", \"january:february\"]"},
    {"years", timeinterval_year, "a year", "1 to 9999, or a range such as \"2024:2026\"",
     "write the earlier year first"},
};

/* Checks a days_of_month range beyond the order of its ends; NULL when fine. */
static const char *timeinterval_day_range_problem(const struct timeinterval_range *r)
{
	if (r->begin < 0 && r->end > 0)
		return "a range that starts from the end of the month (negative) must end from "
		       "the end too";
	if ((r->begin < 0) == (r->end < 0))
		return r->begin > r->end ? "the range ends before it starts; write the earlier day "
					   "first"
					 : NULL;
	/* A positive start and a negative end: empty in every month (28 to 31 days) when
	 * the start comes after the end even in a 31-day month. */
	if (r->begin > 32 + r->end)
		return "the range is empty in every month: its first day always comes after its "
		       "last";
	return NULL;
}

/* Parses "A" or "A:B" of a field into *r; returns NULL or the problem (in why). */
static const char *timeinterval_parse_range(const struct timeinterval_field *f, const char *text,
					    struct timeinterval_range *r, char *why, size_t size)
{
	char quoted[CFG_QUOTE_SIZE];
	const char *colon = strchr(text, ':');
	char *first = colon != NULL ? xstrndup(text, (size_t)(colon - text)) : xstrdup(text);
	bool ok = f->parse(first, &r->begin);
	const char *problem;

	free(first);
	if (ok && colon != NULL)
		ok = f->parse(colon + 1, &r->end);
	else
		r->end = r->begin;
	cfg_quote(text, quoted, sizeof quoted);
	if (!ok) {
		snprintf(why, size, "%s is not %s (accepted: %s)", quoted, f->noun, f->accepted);
		return why;
	}
	if (f->parse == timeinterval_day) {
		problem = timeinterval_day_range_problem(r);
		if (problem == NULL)
			return NULL;
		snprintf(why, size, "%s: %s", quoted, problem);
		return why;
	}
	if (r->begin > r->end) {
		snprintf(why, size, "%s: the range ends before it starts; %s", quoted, f->order);
		return why;
	}
	return NULL;
}

static int timeinterval_read_ranges(struct cfg_map *m, const struct timeinterval_field *f,
				    struct timeinterval_range **out, size_t *count)
{
	struct cfg_seq seq;
	int rc = cfg_get_seq(m, f->key, &seq);
	int failed = 0;

	if (rc != 1)
		return rc;
	*out = xcalloc(cfg_seq_count(&seq) + 1, sizeof(**out));
	for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
		char why[512];
		char *text;

		if (cfg_seq_string(&seq, i, &text) != 1) {
			failed = -1;
			continue;
		}
		if (timeinterval_parse_range(f, text, &(*out)[*count], why, sizeof why) != NULL) {
			cfg_seq_error(&seq, i, "%s", why);
			failed = -1;
		} else {
			(*count)++;
		}
		free(text);
	}
	return failed;
}

/* "HH:MM" from 00:00 to 23:59, or 24:00: minutes after midnight, or -1. */
static int timeinterval_parse_clock(const char *s)
{
	int hours;
	int minutes;

	if (strlen(s) != 5 || s[2] != ':' || strspn(s, "0123456789:") != 5 || s[0] == ':' ||
	    s[1] == ':' || s[3] == ':' || s[4] == ':')
		return -1;
	hours = (s[0] - '0') * 10 + (s[1] - '0');
	minutes = (s[3] - '0') * 10 + (s[4] - '0');
	if (hours == 24 && minutes == 0)
		return TIMEINTERVAL_DAY_MINUTES;
	if (hours > 23 || minutes > 59)
		return -1;
	return hours * 60 + minutes;
}

static int timeinterval_read_clock(struct cfg_map *m, const char *key, int *out)
{
	char quoted[CFG_QUOTE_SIZE];
	char *text;
	int rc;

	if (!cfg_has(m, key)) {
		cfg_error(m, NULL, "missing required key \"%s\" (a time such as \"09:00\")", key);
		return -1;
	}
	rc = cfg_get_string(m, key, &text);
	if (rc != 1)
		return -1;
	*out = timeinterval_parse_clock(text);
	if (*out < 0)
		cfg_error(m, key,
			  "%s is not a time of day (accepted: HH:MM from 00:00 to 23:59, or "
			  "24:00 for the end of the day)",
			  cfg_quote(text, quoted, sizeof quoted));
	free(text);
	return *out < 0 ? -1 : 0;
}

static int timeinterval_read_times(struct cfg_map *m, struct timeinterval_period *p)
{
	struct cfg_seq seq;
	int rc = cfg_get_seq(m, "times", &seq);
	int failed = 0;

	if (rc != 1)
		return rc;
	p->times = xcalloc(cfg_seq_count(&seq) + 1, sizeof(*p->times));
	for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
		struct timeinterval_range *r = &p->times[p->time_count];
		struct cfg_map item;

		if (cfg_seq_map(&seq, i, &item) != 1) {
			cfg_map_discard(&item);
			failed = -1;
			continue;
		}
		/* Both ends are read whatever the first gives, so that both are checked. */
		rc = timeinterval_read_clock(&item, "start_time", &r->begin);
		if (timeinterval_read_clock(&item, "end_time", &r->end) < 0)
			rc = -1;
		if (rc == 0) {
			if (r->begin >= r->end) {
				cfg_error(&item, "end_time",
					  "end_time is not after start_time; the end is exclusive, "
					  "and a range that passes midnight is written as two "
					  "ranges, up to 24:00 and from 00:00");
				failed = -1;
			} else {
				p->time_count++;
			}
		} else {
			failed = -1;
		}
		cfg_map_finish(&item);
	}
	return failed;
}

static int timeinterval_read_location(struct cfg_map *m, struct timeinterval_period *p)
{
	char error[512];
	char *name;
	int rc = cfg_get_string(m, "location", &name);

	if (rc != 1)
		return rc;
	p->zone = tzfile_load(name, error, sizeof error);
	if (p->zone == NULL) {
		cfg_error(m, "location", "%s", error);
		rc = -1;
	}
	free(name);
	return rc;
}

static int timeinterval_read_period(struct cfg_map *m, struct timeinterval_period *p)
{
	struct {
		struct timeinterval_range **v;
		size_t *count;
	} lists[] = {
	    {&p->weekdays, &p->weekday_count},
	    {&p->days_of_month, &p->day_count},
	    {&p->months, &p->month_count},
	    {&p->years, &p->year_count},
	};
	int failed = timeinterval_read_times(m, p) < 0 ? -1 : 0;

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (timeinterval_read_ranges(m, &timeinterval_fields[i], lists[i].v,
					     lists[i].count) < 0)
			failed = -1;
	if (timeinterval_read_location(m, p) < 0)
		failed = -1;
	return failed;
}

int timeinterval_read(struct cfg_seq *seq, size_t index, struct time_interval *out)
{
	char where[CFG_PATH_MAX + 64];
	struct cfg_map m;
	struct cfg_seq periods;
	int failed = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (cfg_seq_map(seq, index, &m) != 1) {
		cfg_map_discard(&m);
		return -1;
	}
	out->location = xstrdup(cfg_location(&m, NULL, where, sizeof where));
	if (!cfg_has(&m, "name")) {
		cfg_error(&m, NULL, "missing required key \"name\"");
		failed = -1;
	} else if (cfg_get_string(&m, "name", &out->name) != 1) {
		failed = -1;
	} else if (out->name[0] == '\0') {
		cfg_error(&m, "name", "is empty; give the interval a name that routes refer to");
		failed = -1;
	}

	rc = cfg_get_seq(&m, "time_intervals", &periods);
	if (rc == 0 && !cfg_has(&m, "time_intervals")) {
		cfg_error(&m, NULL,
			  "missing required key \"time_intervals\" (a list of periods, e.g. "
			  "[{weekdays: [\"saturday\", \"sunday\"]}])");
		failed = -1;
	} else if (rc < 0) {
		failed = -1;
	}
	out->periods = xcalloc(cfg_seq_count(&periods) + 1, sizeof(*out->periods));
	for (size_t i = 0; i < cfg_seq_count(&periods); i++) {
		struct timeinterval_period *p = &out->periods[out->period_count++];
		struct cfg_map pm;

		if (cfg_seq_map(&periods, i, &pm) != 1) {
			cfg_map_discard(&pm);
			failed = -1;
			continue;
		}
		if (timeinterval_read_period(&pm, p) < 0)
			failed = -1;
		cfg_map_finish(&pm);
	}
	cfg_map_finish(&m);
	return failed;
}
