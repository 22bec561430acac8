/*
 * The receiver registry and what every receiver type shares: lookup by config key, and
 * the Retry-After header of HTTP responses (RFC 9110, section 10.2.3).
 */
#include "alerter/receiver.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerter/am_forward.h"
#include "alerter/email.h"
#include "alerter/exec_receiver.h"
#include "alerter/receiver_testing.h"
#include "alerter/webhook.h"

/*
 * The compiled-in types, each defined in its own file. A new type adds its line here
 * (and its source to Makefile.am). The NULL slots after them are for
 * receiver_register_for_tests(); the last slot always stays NULL as the terminator.
 */
static const struct receiver_type *receiver_table[] = {
    &receiver_webhook,
    &receiver_alertmanager,
    &receiver_email,
    &receiver_exec,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};

#define RECEIVER_TABLE_SIZE (sizeof(receiver_table) / sizeof(receiver_table[0]))

const struct receiver_type *const *receiver_types(void)
{
	return receiver_table;
}

const struct receiver_type *receiver_type_find(const char *name)
{
	for (size_t i = 0; receiver_table[i] != NULL; i++)
		if (strcmp(receiver_table[i]->name, name) == 0)
			return receiver_table[i];
	return NULL;
}

void receiver_register_for_tests(const struct receiver_type *type)
{
	size_t i = 0;

	while (receiver_table[i] != NULL && receiver_table[i] != type)
		i++;
	if (receiver_table[i] == type)
		return;
	if (i + 1 >= RECEIVER_TABLE_SIZE)
		abort(); /* a test registered too many types; enlarge the NULL slots */
	receiver_table[i] = type;
}

/* ---- Retry-After ---- */

static const char *const receiver_day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const receiver_long_day_names[] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};
static const char *const receiver_month_names[] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* A cursor over the header value for the date forms. */
struct receiver_date_text {
	const char *s;
	bool ok;
};

static void receiver_expect(struct receiver_date_text *t, const char *literal)
{
	size_t n = strlen(literal);

	if (t->ok && strncmp(t->s, literal, n) == 0)
		t->s += n;
	else
		t->ok = false;
}

/* Reads exactly `digits` decimal digits. */
static int receiver_number(struct receiver_date_text *t, int digits)
{
	int v = 0;

	for (int i = 0; i < digits && t->ok; i++) {
		if (t->s[i] < '0' || t->s[i] > '9')
			t->ok = false;
		else
			v = v * 10 + (t->s[i] - '0');
	}
	if (t->ok)
		t->s += digits;
	return v;
}

/* Matches one name of the list, case-sensitive as in RFC 9110's grammar; returns its index. */
static int receiver_name(struct receiver_date_text *t, const char *const *names, size_t count)
{
	for (size_t i = 0; i < count && t->ok; i++) {
		size_t n = strlen(names[i]);

		if (strncmp(t->s, names[i], n) == 0) {
			t->s += n;
			return (int)i;
		}
	}
	t->ok = false;
	return 0;
}

/* "HH:MM:SS" into tm. */
static void receiver_clock(struct receiver_date_text *t, struct tm *tm)
{
	tm->tm_hour = receiver_number(t, 2);
	receiver_expect(t, ":");
	tm->tm_min = receiver_number(t, 2);
	receiver_expect(t, ":");
	tm->tm_sec = receiver_number(t, 2);
}

/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT". */
static bool receiver_imf_fixdate(const char *s, struct tm *tm)
{
	struct receiver_date_text t = {s, true};

	receiver_name(&t, receiver_day_names, 7);
	receiver_expect(&t, ", ");
	tm->tm_mday = receiver_number(&t, 2);
	receiver_expect(&t, " ");
	tm->tm_mon = receiver_name(&t, receiver_month_names, 12);
	receiver_expect(&t, " ");
	tm->tm_year = receiver_number(&t, 4) - 1900;
	receiver_expect(&t, " ");
	receiver_clock(&t, tm);
	receiver_expect(&t, " GMT");
	return t.ok && *t.s == '\0';
}

/*
 * RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT". A two-digit year that would be more than 50
 * years in the future is the most recent past year with those digits (RFC 9110).
 */
static bool receiver_rfc850(const char *s, int current_year, struct tm *tm)
{
	struct receiver_date_text t = {s, true};
	int year;

	receiver_name(&t, receiver_long_day_names, 7);
	receiver_expect(&t, ", ");
	tm->tm_mday = receiver_number(&t, 2);
	receiver_expect(&t, "-");
	tm->tm_mon = receiver_name(&t, receiver_month_names, 12);
	receiver_expect(&t, "-");
	year = current_year - current_year % 100 + receiver_number(&t, 2);
	if (year > current_year + 50)
		year -= 100;
	tm->tm_year = year - 1900;
	receiver_expect(&t, " ");
	receiver_clock(&t, tm);
	receiver_expect(&t, " GMT");
	return t.ok && *t.s == '\0';
}

/* asctime: "Sun Nov  6 08:49:37 1994", the day padded with a space. */
static bool receiver_asctime(const char *s, struct tm *tm)
{
	struct receiver_date_text t = {s, true};

	receiver_name(&t, receiver_day_names, 7);
	receiver_expect(&t, " ");
	tm->tm_mon = receiver_name(&t, receiver_month_names, 12);
	receiver_expect(&t, " ");
	if (t.ok && t.s[0] == ' ') {
		t.s++;
		tm->tm_mday = receiver_number(&t, 1);
	} else {
		tm->tm_mday = receiver_number(&t, 2);
	}
	receiver_expect(&t, " ");
	receiver_clock(&t, tm);
	receiver_expect(&t, " ");
	tm->tm_year = receiver_number(&t, 4) - 1900;
	return t.ok && *t.s == '\0';
}

static bool receiver_valid_date(const struct tm *tm)
{
	static const int days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int year = tm->tm_year + 1900;
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	if (tm->tm_mday < 1 || tm->tm_mday > days[tm->tm_mon])
		return false;
	if (tm->tm_mon == 1 && tm->tm_mday == 29 && !leap)
		return false;
	/* 60 is a leap second; timegm() carries it into the next minute. */
	return tm->tm_hour <= 23 && tm->tm_min <= 59 && tm->tm_sec <= 60;
}

int64_t receiver_parse_retry_after(const char *value, int64_t now_ms)
{
	char text[64];
	size_t start = strspn(value, " \t");
	size_t len = strlen(value + start);
	struct tm tm = {0};
	struct tm now_tm;
	time_t now_s = (time_t)(now_ms / 1000);
	int64_t at_ms;

	/* Optional whitespace around a field value is not part of it. */
	while (len > 0 && (value[start + len - 1] == ' ' || value[start + len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof text)
		return -1;
	memcpy(text, value + start, len);
	text[len] = '\0';

	if (strspn(text, "0123456789") == len) {
		int64_t seconds = 0;

		for (size_t i = 0; i < len; i++) {
			/* A delay past INT64_MAX ms is as good as forever: saturate. */
			if (seconds > (INT64_MAX / 1000 - 9) / 10)
				return INT64_MAX / 1000 * 1000;
			seconds = seconds * 10 + (text[i] - '0');
		}
		return seconds * 1000;
	}

	if (gmtime_r(&now_s, &now_tm) == NULL)
		return -1;
	if (!receiver_imf_fixdate(text, &tm) &&
	    !receiver_rfc850(text, now_tm.tm_year + 1900, &tm) && !receiver_asctime(text, &tm))
		return -1;
	if (!receiver_valid_date(&tm))
		return -1;
	at_ms = (int64_t)timegm(&tm) * 1000;
	return at_ms > now_ms ? at_ms - now_ms : 0;
}
