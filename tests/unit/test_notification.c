/*
 * Unit tests of notifications. They cover the JSON round trip of every field (UTF-8,
 * escapes, a fingerprint with the top bit set) and the errors for invalid stored forms.
 * They also cover the labels and annotations common to a group, and the RFC 3339 form of
 * times around and far from 1970.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "alerter/notification.h"

static struct label first_labels[] = {
    {"alertname", "DiskFull"},
    {"instance", "db-1:9100"},
    {"mount", "/var/lib/caf\xc3\xa9"}, /* "café" */
    {"severity", "critical"},
};
static struct label first_annotations[] = {
    {"description", "line one\nline \"two\"\twith a tab and a \\ backslash"},
    {"summary", "\xe2\x98\x83 snowman and \xe6\x97\xa5\xe6\x9c\xac"}, /* ☃ and 日本 */
};
static struct label second_labels[] = {
    {"alertname", "DiskFull"},
    {"instance", "db-2:9100"},
    {"mount", "/var/lib/caf\xc3\xa9"},
    {"severity", "critical"},
};
static struct label second_annotations[] = {
    {"description", "control \x01 byte"},
    {"summary", "\xe2\x98\x83 snowman and \xe6\x97\xa5\xe6\x9c\xac"},
};
static struct label group_labels[] = {
    {"alertname", "DiskFull"},
};

/* A notification with every field set. Its strings are static, so it is never freed. */
static struct notification full_notification(struct notification_alert alerts[2])
{
	alerts[0] = (struct notification_alert){
	    .labels = first_labels,
	    .label_count = 4,
	    .annotations = first_annotations,
	    .annotation_count = 2,
	    .firing = true,
	    .starts_at_ms = 1714558050123,
	    .ends_at_ms = 0,
	    .condition_at_ms = 1714558049000,
	    .fingerprint = UINT64_C(0xfedcba9876543210),
	    .generator_url = "http://127.0.0.1:9517/alerts?rule=disk&x=\"y\"",
	};
	alerts[1] = (struct notification_alert){
	    .labels = second_labels,
	    .label_count = 4,
	    .annotations = second_annotations,
	    .annotation_count = 2,
	    .firing = false,
	    .starts_at_ms = -86400000, /* before 1970 */
	    .ends_at_ms = INT64_MAX,
	    .condition_at_ms = INT64_MIN,
	    .fingerprint = 1,
	    .generator_url = NULL,
	};
	return (struct notification){
	    .receiver = "ops-\xc3\xa9quipe",
	    .group_key = "{}/{severity=\"critical\"}:{alertname=\"DiskFull\"}",
	    .sequence = 42,
	    .idempotency_key = "{}/{severity=\"critical\"}:{alertname=\"DiskFull\"}/42",
	    .group_labels = group_labels,
	    .group_label_count = 1,
	    .firing = true,
	    .alerts = alerts,
	    .alert_count = 2,
	    .truncated_alerts = 3,
	    .external_url = "http://127.0.0.1:9517/",
	    .created_ms = 1714558051000,
	};
}

static void assert_labels_equal(const struct label *a, size_t a_count, const struct label *b,
				size_t b_count)
{
	assert_int_equal(a_count, b_count);
	for (size_t i = 0; i < a_count; i++) {
		assert_string_equal(a[i].name, b[i].name);
		assert_string_equal(a[i].value, b[i].value);
	}
}

static void assert_alert_equal(const struct notification_alert *a,
			       const struct notification_alert *b)
{
	assert_labels_equal(a->labels, a->label_count, b->labels, b->label_count);
	assert_labels_equal(a->annotations, a->annotation_count, b->annotations,
			    b->annotation_count);
	assert_int_equal(a->firing, b->firing);
	assert_true(a->starts_at_ms == b->starts_at_ms);
	assert_true(a->ends_at_ms == b->ends_at_ms);
	assert_true(a->condition_at_ms == b->condition_at_ms);
	assert_true(a->fingerprint == b->fingerprint);
	if (a->generator_url == NULL) {
		assert_null(b->generator_url);
	} else {
		assert_non_null(b->generator_url);
		assert_string_equal(a->generator_url, b->generator_url);
	}
}

static void round_trip_keeps_every_field(void **state)
{
	struct notification_alert alerts[2];
	struct notification n = full_notification(alerts);
	struct notification *parsed;
	char *error = NULL;
	char *json = notification_to_json(&n);
	char *again;

	(void)state;
	parsed = notification_from_json(json, &error);
	assert_null(error);
	assert_non_null(parsed);
	assert_string_equal(parsed->receiver, n.receiver);
	assert_string_equal(parsed->group_key, n.group_key);
	assert_true(parsed->sequence == 42);
	assert_string_equal(parsed->idempotency_key, n.idempotency_key);
	assert_labels_equal(n.group_labels, n.group_label_count, parsed->group_labels,
			    parsed->group_label_count);
	assert_true(parsed->firing);
	assert_int_equal(parsed->alert_count, 2);
	assert_alert_equal(&n.alerts[0], &parsed->alerts[0]);
	assert_alert_equal(&n.alerts[1], &parsed->alerts[1]);
	assert_int_equal(parsed->truncated_alerts, 3);
	assert_string_equal(parsed->external_url, n.external_url);
	assert_true(parsed->created_ms == 1714558051000);

	/* The stored form is stable: writing what was read gives the same bytes. */
	again = notification_to_json(parsed);
	assert_string_equal(again, json);
	free(again);
	notification_free(parsed);
	free(json);
}

static void json_form_fields(void **state)
{
	struct notification_alert alerts[2];
	struct notification n = full_notification(alerts);
	char *json = notification_to_json(&n);

	(void)state;
	/* The fingerprint keeps all 64 bits as 16 hex digits. */
	assert_non_null(strstr(json, "\"fingerprint\":\"fedcba9876543210\""));
	assert_non_null(strstr(json, "\"fingerprint\":\"0000000000000001\""));
	/* Times are integers in ms, and label sets are objects in label order. */
	assert_non_null(strstr(json, "\"starts_at_ms\":1714558050123"));
	assert_non_null(strstr(json, "\"starts_at_ms\":-86400000"));
	assert_non_null(strstr(json, "\"group_labels\":{\"alertname\":\"DiskFull\"}"));
	assert_non_null(strstr(json, "\"labels\":{\"alertname\":\"DiskFull\",\"instance\":"
				     "\"db-1:9100\",\"mount\":\"/var/lib/caf\xc3\xa9\","
				     "\"severity\":\"critical\"}"));
	/* UTF-8 stays as it is, and quotes, backslashes and control characters are escaped. */
	assert_non_null(strstr(json, "\xe2\x98\x83 snowman"));
	assert_non_null(strstr(json, "line one\\nline \\\"two\\\"\\twith a tab and a \\\\ "));
	assert_non_null(strstr(json, "control \\u0001 byte"));
	assert_non_null(strstr(json, "\"generator_url\":null"));
	/* No floating-point values at all, so no NaN or Infinity can appear. */
	assert_null(strstr(json, "NaN"));
	assert_null(strstr(json, "Infinity"));
	assert_null(strstr(json, "e+"));
	free(json);
}

static void round_trip_empty_notification(void **state)
{
	struct notification n = {.receiver = "r", .group_key = "g", .idempotency_key = "g/1"};
	struct notification *parsed;
	char *error = NULL;
	char *json = notification_to_json(&n);

	(void)state;
	assert_string_equal(json, "{\"receiver\":\"r\",\"group_key\":\"g\",\"sequence\":0,"
				  "\"idempotency_key\":\"g/1\",\"group_labels\":{},"
				  "\"firing\":false,\"alerts\":[],\"truncated_alerts\":0,"
				  "\"external_url\":null,\"created_ms\":0}");
	parsed = notification_from_json(json, &error);
	assert_null(error);
	assert_non_null(parsed);
	assert_int_equal(parsed->alert_count, 0);
	assert_null(parsed->alerts);
	assert_int_equal(parsed->group_label_count, 0);
	assert_null(parsed->external_url);
	notification_free(parsed);
	free(json);
}

static void invalid_utf8_is_repaired(void **state)
{
	struct label labels[] = {{"alertname", "bad \xff byte"}};
	struct notification_alert alert = {.labels = labels, .label_count = 1};
	struct notification n = {.receiver = "r\xc3",
				 .group_key = "g",
				 .idempotency_key = "k",
				 .alerts = &alert,
				 .alert_count = 1};
	struct notification *parsed;
	char *error = NULL;
	char *json = notification_to_json(&n);

	(void)state;
	parsed = notification_from_json(json, &error);
	assert_non_null(parsed);
	assert_string_equal(parsed->receiver, "r?");
	assert_string_equal(parsed->alerts[0].labels[0].value, "bad ? byte");
	notification_free(parsed);
	free(json);
}

static void parsed_labels_are_sorted(void **state)
{
	const char *json = "{\"receiver\":\"r\",\"group_key\":\"g\",\"sequence\":7,"
			   "\"idempotency_key\":\"g/7\",\"group_labels\":{\"z\":\"1\",\"a\":\"2\"},"
			   "\"firing\":true,\"alerts\":[{\"labels\":{\"job\":\"x\",\"alertname\":"
			   "\"A\"},\"annotations\":{},\"firing\":true,\"starts_at_ms\":1,"
			   "\"ends_at_ms\":0,\"condition_at_ms\":1,\"fingerprint\":"
			   "\"00000000000000FF\",\"generator_url\":null}],\"truncated_alerts\":0,"
			   "\"external_url\":null,\"created_ms\":5}";
	struct notification *n;
	char *error = NULL;

	(void)state;
	n = notification_from_json(json, &error);
	assert_null(error);
	assert_non_null(n);
	assert_string_equal(n->group_labels[0].name, "a");
	assert_string_equal(n->group_labels[1].name, "z");
	assert_string_equal(n->alerts[0].labels[0].name, "alertname");
	assert_string_equal(n->alerts[0].labels[1].name, "job");
	assert_true(n->alerts[0].fingerprint == 255);
	notification_free(n);
}

/* A valid stored form with one alert. The cases below replace one part of it. */
#define VALID_HEAD                                                                                 \
	"{\"receiver\":\"r\",\"group_key\":\"g\",\"sequence\":1,\"idempotency_key\":\"g/1\","      \
	"\"group_labels\":{},\"firing\":true,"
#define VALID_ALERT                                                                                \
	"{\"labels\":{\"alertname\":\"A\"},\"annotations\":{},\"firing\":true,"                    \
	"\"starts_at_ms\":1,\"ends_at_ms\":0,\"condition_at_ms\":1,"                               \
	"\"fingerprint\":\"0000000000000001\",\"generator_url\":null}"
#define VALID_TAIL "\"truncated_alerts\":0,\"external_url\":null,\"created_ms\":5}"

static void invalid_json_errors(void **state)
{
	/* jansson's columns and texts differ between versions, so for syntax errors only
	 * the start of the message is compared. */
	static const struct {
		const char *json;
		const char *error;
	} cases[] = {
	    {"{", "invalid JSON at line 1, column "},
	    {"[]", "expected a JSON object at the top level, got an array"},
	    {"{\"receiver\":\"a\",\"receiver\":\"b\"}", "invalid JSON at line 1, column "},
	    {"{}", "receiver: missing"},
	    {"{\"receiver\":3}", "receiver: expected a string, got an integer"},
	    {"{\"receiver\":\"r\",\"group_key\":\"g\",\"sequence\":-1}",
	     "sequence: -1 is below the minimum 0"},
	    {"{\"receiver\":\"r\",\"group_key\":\"g\",\"sequence\":1.5}",
	     "sequence: expected an integer, got a real number"},
	    {"{\"receiver\":\"r\",\"group_key\":\"g\",\"sequence\":1,\"idempotency_key\":\"k\","
	     "\"group_labels\":[]}",
	     "group_labels: expected an object of strings, got an array"},
	    {VALID_HEAD "\"alerts\":{}," VALID_TAIL, "alerts: expected an array, got an object"},
	    {VALID_HEAD "\"alerts\":[" VALID_ALERT "," VALID_ALERT ",{\"labels\":[]}]," VALID_TAIL,
	     "alerts[2].labels: expected an object of strings, got an array"},
	    {VALID_HEAD "\"alerts\":[" VALID_ALERT ",{\"labels\":{\"job\":1}}]," VALID_TAIL,
	     "alerts[1].labels: expected an object of strings, but \"job\" is an integer"},
	    {VALID_HEAD "\"alerts\":[" VALID_ALERT ",7]," VALID_TAIL,
	     "alerts[1]: expected an object, got an integer"},
	    {VALID_HEAD "\"alerts\":[{\"labels\":{},\"annotations\":{},\"firing\":1}]," VALID_TAIL,
	     "alerts[0].firing: expected true or false, got an integer"},
	    {VALID_HEAD "\"alerts\":[{\"labels\":{},\"annotations\":{},\"firing\":true,"
			"\"starts_at_ms\":\"1\"}]," VALID_TAIL,
	     "alerts[0].starts_at_ms: expected an integer, got a string"},
	    {VALID_HEAD "\"alerts\":[{\"labels\":{},\"annotations\":{},\"firing\":true,"
			"\"starts_at_ms\":1,\"ends_at_ms\":0,\"condition_at_ms\":1,"
			"\"fingerprint\":\"123\",\"generator_url\":null}]," VALID_TAIL,
	     "alerts[0].fingerprint: expected 16 hex digits, got \"123\""},
	    {VALID_HEAD "\"alerts\":[{\"labels\":{},\"annotations\":{},\"firing\":true,"
			"\"starts_at_ms\":1,\"ends_at_ms\":0,\"condition_at_ms\":1,"
			"\"fingerprint\":\"000000000000000g\",\"generator_url\":null}]," VALID_TAIL,
	     "alerts[0].fingerprint: expected 16 hex digits, got \"000000000000000g\""},
	    {VALID_HEAD
	     "\"alerts\":[{\"labels\":{},\"annotations\":{},\"firing\":true,"
	     "\"starts_at_ms\":1,\"ends_at_ms\":0,\"condition_at_ms\":1,"
	     "\"fingerprint\":\"0000000000000001\",\"generator_url\":false}]," VALID_TAIL,
	     "alerts[0].generator_url: expected a string or null, got a boolean"},
	    {VALID_HEAD "\"alerts\":[]," VALID_TAIL "x", "invalid JSON at line 1, column "},
	    {VALID_HEAD "\"alerts\":[],\"truncated_alerts\":0,\"external_url\":null}",
	     "created_ms: missing"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *error = NULL;
		struct notification *n = notification_from_json(cases[i].json, &error);
		size_t length = strlen(cases[i].error);
		bool prefix = strncmp(cases[i].error, "invalid JSON", 12) == 0;

		if (n != NULL || error == NULL ||
		    (prefix ? strncmp(error, cases[i].error, length) != 0 || error[length] == '\0'
			    : strcmp(error, cases[i].error) != 0)) {
			fail_msg("case %zu: %s\n  expected error: %s\n  got: %s", i, cases[i].json,
				 cases[i].error, error != NULL ? error : "(no error)");
		}
		free(error);
	}
}

static void valid_alert_form_parses(void **state)
{
	char *error = NULL;
	struct notification *n =
	    notification_from_json(VALID_HEAD "\"alerts\":[" VALID_ALERT "]," VALID_TAIL, &error);

	(void)state;
	assert_null(error);
	assert_non_null(n);
	assert_int_equal(n->alert_count, 1);
	notification_free(n);
}

static void common_labels_of_group(void **state)
{
	struct label a[] = {{"alertname", "A"}, {"env", "prod"}, {"instance", "x"}, {"job", "j"}};
	struct label b[] = {{"alertname", "A"}, {"env", "prod"}, {"instance", "y"}, {"job", "j"}};
	struct label c[] = {{"alertname", "A"}, {"env", "prod"}, {"instance", "x"}};
	struct label note_a[] = {{"runbook", "r"}, {"summary", "x down"}};
	struct label note_b[] = {{"runbook", "r"}, {"summary", "y down"}};
	struct label note_c[] = {{"runbook", "r"}};
	struct notification_alert alerts[] = {
	    {.labels = a, .label_count = 4, .annotations = note_a, .annotation_count = 2},
	    {.labels = b, .label_count = 4, .annotations = note_b, .annotation_count = 2},
	    {.labels = c, .label_count = 3, .annotations = note_c, .annotation_count = 1},
	};
	struct notification n = {.alerts = alerts, .alert_count = 3};
	struct label *common;
	size_t count;

	(void)state;
	/* The instance label differs between alerts, and job is missing from the third. */
	notification_common_labels(&n, &common, &count);
	assert_int_equal(count, 2);
	assert_string_equal(common[0].name, "alertname");
	assert_string_equal(common[0].value, "A");
	assert_string_equal(common[1].name, "env");
	assert_string_equal(common[1].value, "prod");
	notification_labels_release(common);

	notification_common_annotations(&n, &common, &count);
	assert_int_equal(count, 1);
	assert_string_equal(common[0].name, "runbook");
	notification_labels_release(common);

	/* One alert: all of its labels are common. */
	n.alert_count = 1;
	notification_common_labels(&n, &common, &count);
	assert_int_equal(count, 4);
	assert_string_equal(common[3].name, "job");
	notification_labels_release(common);

	/* No alerts: nothing is common. */
	n.alert_count = 0;
	notification_common_labels(&n, &common, &count);
	assert_int_equal(count, 0);
	assert_null(common);
}

static void common_labels_none_shared(void **state)
{
	struct label a[] = {{"instance", "x"}};
	struct label b[] = {{"job", "x"}};
	struct notification_alert alerts[] = {{.labels = a, .label_count = 1},
					      {.labels = b, .label_count = 1}};
	struct notification n = {.alerts = alerts, .alert_count = 2};
	struct label *common = (struct label *)1;
	size_t count = 9;

	(void)state;
	notification_common_labels(&n, &common, &count);
	assert_int_equal(count, 0);
	assert_null(common);
	notification_common_annotations(&n, &common, &count);
	assert_int_equal(count, 0);
	assert_null(common);
}

/* The Unix time of a UTC calendar date, computed independently with timegm(). */
static int64_t utc_ms(int year, int month, int day, int hour, int minute, int second, int ms)
{
	struct tm tm = {.tm_year = year - 1900,
			.tm_mon = month - 1,
			.tm_mday = day,
			.tm_hour = hour,
			.tm_min = minute,
			.tm_sec = second};

	return (int64_t)timegm(&tm) * 1000 + ms;
}

static void times_in_rfc3339(void **state)
{
	const struct {
		int64_t ms;
		const char *text;
	} cases[] = {
	    {0, "0001-01-01T00:00:00Z"},
	    {1714558050000, "2024-05-01T10:07:30Z"},
	    {1714558050123, "2024-05-01T10:07:30.123Z"},
	    {1714558050005, "2024-05-01T10:07:30.005Z"},
	    {1, "1970-01-01T00:00:00.001Z"},
	    {-1, "1969-12-31T23:59:59.999Z"},
	    {-1000, "1969-12-31T23:59:59Z"},
	    {-1001, "1969-12-31T23:59:58.999Z"},
	    {utc_ms(1900, 1, 1, 0, 0, 0, 0), "1900-01-01T00:00:00Z"},
	    {utc_ms(1600, 2, 29, 12, 30, 45, 250), "1600-02-29T12:30:45.250Z"},
	    {utc_ms(2000, 2, 29, 23, 59, 59, 999), "2000-02-29T23:59:59.999Z"},
	    {utc_ms(2038, 1, 19, 3, 14, 8, 0), "2038-01-19T03:14:08Z"},
	    {utc_ms(9999, 12, 31, 23, 59, 59, 0), "9999-12-31T23:59:59Z"},
	    {utc_ms(10000, 1, 1, 0, 0, 0, 0), "10000-01-01T00:00:00Z"},
	    {utc_ms(-1, 1, 1, 0, 0, 0, 0), "-0001-01-01T00:00:00Z"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[40];
		const char *text = notification_time(cases[i].ms, buf, sizeof buf);

		assert_ptr_equal(text, buf);
		if (strcmp(text, cases[i].text) != 0) {
			fail_msg("case %zu: %lld ms: expected %s, got %s", i,
				 (long long)cases[i].ms, cases[i].text, text);
		}
	}
}

static void times_extremes_fit(void **state)
{
	char buf[40];

	(void)state;
	/* The widest values still produce a complete, NUL-terminated time. */
	notification_time(INT64_MAX, buf, sizeof buf);
	assert_string_equal(buf, "292278994-08-17T07:12:55.807Z");
	notification_time(INT64_MIN, buf, sizeof buf);
	assert_string_equal(buf, "-292275055-05-16T16:47:04.192Z");
	/* A short buffer is truncated, never overrun. */
	notification_time(1714558050123, buf, 11);
	assert_string_equal(buf, "2024-05-01");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_trip_keeps_every_field),
	    cmocka_unit_test(json_form_fields),
	    cmocka_unit_test(round_trip_empty_notification),
	    cmocka_unit_test(invalid_utf8_is_repaired),
	    cmocka_unit_test(parsed_labels_are_sorted),
	    cmocka_unit_test(invalid_json_errors),
	    cmocka_unit_test(valid_alert_form_parses),
	    cmocka_unit_test(common_labels_of_group),
	    cmocka_unit_test(common_labels_none_shared),
	    cmocka_unit_test(times_in_rfc3339),
	    cmocka_unit_test(times_extremes_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
