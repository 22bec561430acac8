/*
 * Unit tests of the webhook receiver's bodies: Alertmanager's webhook payload version 4
 * field by field, truncation by max_alerts, and the Slack and PagerDuty presets. Also the
 * HMAC signature against independently computed vectors, the Alertmanager API body of
 * the `alertmanager` receiver, and the mapping of HTTP responses to delivery outcomes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alerter/am_forward.h"
#include "alerter/webhook.h"
#include "alerter/webhook_payload.h"

/* 2024-05-01T10:00:00Z and friends, in Unix milliseconds. */
#define T_10_00    1714557600000LL
#define T_09_50    1714557000000LL
#define T_10_07_30 1714558050000LL

static struct label disk_full_db1[] = {
    {"alertname", "DiskFull"}, {"instance", "db1"}, {"severity", "critical"}};
static struct label disk_full_db2[] = {
    {"alertname", "DiskFull"}, {"instance", "db2"}, {"severity", "critical"}};
static struct label summary_db1[] = {{"runbook", "https://runbooks/disk"},
				     {"summary", "Disk of db1 is full"}};
static struct label summary_db2[] = {{"runbook", "https://runbooks/disk"},
				     {"summary", "Disk of db2 is full"}};
static struct label group_labels[] = {{"alertname", "DiskFull"}};

/* One firing alert (db1) and one resolved alert (db2) of one group. The label arrays are
 * static: the tests never call notification_free(). */
static void fixture(struct notification *n, struct notification_alert alerts[2])
{
	memset(n, 0, sizeof(*n));
	memset(alerts, 0, 2 * sizeof(*alerts));
	alerts[0] = (struct notification_alert){
	    .labels = disk_full_db1,
	    .label_count = 3,
	    .annotations = summary_db1,
	    .annotation_count = 2,
	    .firing = true,
	    .starts_at_ms = T_10_00,
	    .fingerprint = 0xab,
	    .generator_url = "http://tocsin.example:9517/rules#DiskFull",
	};
	alerts[1] = (struct notification_alert){
	    .labels = disk_full_db2,
	    .label_count = 3,
	    .annotations = summary_db2,
	    .annotation_count = 2,
	    .firing = false,
	    .starts_at_ms = T_09_50 + 123,
	    .ends_at_ms = T_10_07_30,
	    .fingerprint = 0x1234567890abcdefULL,
	};
	n->receiver = "ops";
	n->group_key = "{}:{alertname=\"DiskFull\"}";
	n->sequence = 3;
	n->idempotency_key = "{}:{alertname=\"DiskFull\"}/3";
	n->group_labels = group_labels;
	n->group_label_count = 1;
	n->firing = true;
	n->alerts = alerts;
	n->alert_count = 2;
	n->external_url = "http://tocsin.example:9517";
	n->created_ms = T_10_07_30;
}

static json_t *parse(char *text)
{
	json_error_t error;
	json_t *root = json_loads(text, 0, &error);

	if (root == NULL)
		fail_msg("invalid JSON (%s): %s", error.text, text);
	free(text);
	return root;
}

static const char *str(const json_t *object, const char *key)
{
	json_t *v = json_object_get(object, key);

	if (!json_is_string(v))
		fail_msg("member %s is missing or not a string", key);
	return json_string_value(v);
}

static json_int_t num(const json_t *object, const char *key)
{
	json_t *v = json_object_get(object, key);

	if (!json_is_integer(v))
		fail_msg("member %s is missing or not an integer", key);
	return json_integer_value(v);
}

static void am_payload_top_level(void **unused)
{
	struct notification n;
	struct notification_alert alerts[2];
	json_t *root, *common, *groups;

	(void)unused;
	fixture(&n, alerts);
	root = parse(webhook_payload_alertmanager(&n, 0));
	assert_string_equal(str(root, "version"), "4");
	assert_string_equal(str(root, "groupKey"), "{}:{alertname=\"DiskFull\"}");
	assert_int_equal(num(root, "truncatedAlerts"), 0);
	assert_string_equal(str(root, "status"), "firing");
	assert_string_equal(str(root, "receiver"), "ops");
	assert_string_equal(str(root, "externalURL"), "http://tocsin.example:9517");
	assert_string_equal(str(root, "idempotencyKey"), "{}:{alertname=\"DiskFull\"}/3");

	groups = json_object_get(root, "groupLabels");
	assert_int_equal(json_object_size(groups), 1);
	assert_string_equal(str(groups, "alertname"), "DiskFull");
	/* instance differs between the alerts, so it is not common. */
	common = json_object_get(root, "commonLabels");
	assert_int_equal(json_object_size(common), 2);
	assert_string_equal(str(common, "alertname"), "DiskFull");
	assert_string_equal(str(common, "severity"), "critical");
	common = json_object_get(root, "commonAnnotations");
	assert_int_equal(json_object_size(common), 1);
	assert_string_equal(str(common, "runbook"), "https://runbooks/disk");
	assert_int_equal(json_array_size(json_object_get(root, "alerts")), 2);
	json_decref(root);
}

static void am_payload_firing_alert(void **unused)
{
	struct notification n;
	struct notification_alert alerts[2];
	json_t *root, *alert, *labels;

	(void)unused;
	fixture(&n, alerts);
	root = parse(webhook_payload_alertmanager(&n, 0));
	alert = json_array_get(json_object_get(root, "alerts"), 0);
	assert_string_equal(str(alert, "status"), "firing");
	labels = json_object_get(alert, "labels");
	assert_int_equal(json_object_size(labels), 3);
	assert_string_equal(str(labels, "instance"), "db1");
	assert_string_equal(str(json_object_get(alert, "annotations"), "summary"),
			    "Disk of db1 is full");
	assert_string_equal(str(alert, "startsAt"), "2024-05-01T10:00:00Z");
	assert_string_equal(str(alert, "endsAt"), "0001-01-01T00:00:00Z");
	assert_string_equal(str(alert, "generatorURL"),
			    "http://tocsin.example:9517/rules#DiskFull");
	assert_string_equal(str(alert, "fingerprint"), "00000000000000ab");
	json_decref(root);

	/* The status decides, not a stray end time. */
	alerts[0].ends_at_ms = T_10_07_30;
	root = parse(webhook_payload_alertmanager(&n, 0));
	alert = json_array_get(json_object_get(root, "alerts"), 0);
	assert_string_equal(str(alert, "endsAt"), "0001-01-01T00:00:00Z");
	json_decref(root);
}

static void am_payload_resolved_alert(void **unused)
{
	struct notification n;
	struct notification_alert alerts[2];
	json_t *root, *alert;

	(void)unused;
	fixture(&n, alerts);
	root = parse(webhook_payload_alertmanager(&n, 0));
	alert = json_array_get(json_object_get(root, "alerts"), 1);
	assert_string_equal(str(alert, "status"), "resolved");
	assert_string_equal(str(json_object_get(alert, "labels"), "instance"), "db2");
	assert_string_equal(str(alert, "startsAt"), "2024-05-01T09:50:00.123Z");
	assert_string_equal(str(alert, "endsAt"), "2024-05-01T10:07:30Z");
	/* Alertmanager always sends the member, empty when the alert has no source link. */
	assert_string_equal(str(alert, "generatorURL"), "");
	assert_string_equal(str(alert, "fingerprint"), "1234567890abcdef");
	json_decref(root);
}

static void am_payload_all_resolved(void **unused)
{
	struct notification n;
	struct notification_alert alerts[2];
	json_t *root;

	(void)unused;
	fixture(&n, alerts);
	alerts[0].firing = false;
	alerts[0].ends_at_ms = T_10_07_30;
	n.firing = false;
	root = parse(webhook_payload_alertmanager(&n, 0));
	assert_string_equal(str(root, "status"), "resolved");
	assert_string_equal(str(json_array_get(json_object_get(root, "alerts"), 0), "endsAt"),
			    "2024-05-01T10:07:30Z");
	json_decref(root);
}

static void am_payload_truncation(void **unused)
{
	struct notification n;
	struct notification_alert alerts[2];
	struct webhook_payload_options o = {.format = WEBHOOK_FORMAT_ALERTMANAGER, .max_alerts = 1};
	json_t *root, *list;

	(void)unused;
	fixture(&n, alerts);
	/* The dispatcher already left 5 alerts out; max_alerts leaves out one more. */
	n.truncated_alerts = 5;
	root = parse(webhook_payload_build(&n, &o));
	list = json_object_get(root, "alerts");
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(str(json_object_get(json_array_get(list, 0), "labels"), "instance"),
			    "db1");
	assert_int_equal(num(root, "truncatedAlerts"), 6);
	json_decref(root);

	o.max_alerts = 10; /* more than there are: nothing more is left out */
	root = parse(webhook_payload_build(&n, &o));
	assert_int_equal(json_array_size(json_object_get(root, "alerts")), 2);
	assert_int_equal(num(root, "truncatedAlerts"), 5);
	json_decref(root);
}

static void slack_firing_body(void **unused)
{
	struct notification n;
	struct notification_alert alerts[2];
	struct webhook_payload_options o = {
	    .format = WEBHOOK_FORMAT_SLACK, .slack_channel = "#ops", .slack_username = "tocsin"};
	json_t *root, *attachments, *a;

	(void)unused;
	fixture(&n, alerts);
	root = parse(webhook_payload_build(&n, &o));
	assert_string_equal(str(root, "channel"), "#ops");
	assert_string_equal(str(root, "username"), "tocsin");
	assert_null(json_object_get(root, "idempotencyKey"));
	attachments = json_object_get(root, "attachments");
	assert_int_equal(json_array_size(attachments), 1);
	a = json_array_get(attachments, 0);
	assert_string_equal(str(a, "color"), "danger");
	assert_string_equal(str(a, "title"), "[FIRING:1] DiskFull");
	assert_string_equal(str(a, "fallback"), "[FIRING:1] DiskFull");
	assert_string_equal(str(a, "title_link"), "http://tocsin.example:9517");
	assert_string_equal(str(a, "text"),
			    "[firing] Disk of db1 is full\n[resolved] Disk of db2 is full");
	json_decref(root);
}

static void slack_resolved_truncated(void **unused)
{
	struct notification n;
	struct notification_alert alerts[2];
	struct webhook_payload_options o = {.format = WEBHOOK_FORMAT_SLACK, .max_alerts = 1};
	json_t *root, *a;

	(void)unused;
	fixture(&n, alerts);
	alerts[0].firing = false;
	alerts[0].ends_at_ms = T_10_07_30;
	alerts[0].annotations = NULL; /* no summary: the labels stand in for it */
	alerts[0].annotation_count = 0;
	n.firing = false;
	root = parse(webhook_payload_build(&n, &o));
	assert_null(json_object_get(root, "channel"));
	a = json_array_get(json_object_get(root, "attachments"), 0);
	assert_string_equal(str(a, "color"), "good");
	assert_string_equal(str(a, "title"), "[RESOLVED] DiskFull");
	assert_string_equal(
	    str(a, "text"),
	    "[resolved] {alertname=\"DiskFull\", instance=\"db1\", severity=\"critical\"}\n"
	    "and 1 more alert");
	json_decref(root);
}

static void pagerduty_trigger_body(void **unused)
{
	struct notification n;
	struct notification_alert alerts[2];
	struct webhook_payload_options o = {.format = WEBHOOK_FORMAT_PAGERDUTY,
					    .pagerduty_routing_key = "R0UT1NG"};
	json_t *root, *payload, *details;

	(void)unused;
	fixture(&n, alerts);
	root = parse(webhook_payload_build(&n, &o));
	assert_string_equal(str(root, "routing_key"), "R0UT1NG");
	assert_string_equal(str(root, "event_action"), "trigger");
	assert_string_equal(str(root, "dedup_key"), "{}:{alertname=\"DiskFull\"}");
	assert_string_equal(str(root, "client"), "tocsin");
	assert_string_equal(str(root, "client_url"), "http://tocsin.example:9517");
	payload = json_object_get(root, "payload");
	assert_non_null(payload);
	assert_string_equal(str(payload, "summary"), "[FIRING:1] DiskFull");
	assert_string_equal(str(payload, "severity"), "critical");
	/* instance is not common to the alerts, so the source is tocsin itself. */
	assert_string_equal(str(payload, "source"), "tocsin");
	details = json_object_get(payload, "custom_details");
	assert_int_equal(num(details, "num_firing"), 1);
	assert_int_equal(num(details, "num_resolved"), 1);
	assert_string_equal(str(details, "firing"), "[firing] Disk of db1 is full");
	assert_string_equal(str(details, "resolved"), "[resolved] Disk of db2 is full");
	json_decref(root);
}

static void pagerduty_resolve_body(void **unused)
{
	struct notification n;
	struct notification_alert alerts[2];
	struct webhook_payload_options o = {.format = WEBHOOK_FORMAT_PAGERDUTY,
					    .pagerduty_routing_key = "R0UT1NG"};
	char long_key[300];
	json_t *root;

	(void)unused;
	fixture(&n, alerts);
	alerts[0].firing = false;
	alerts[0].ends_at_ms = T_10_07_30;
	n.firing = false;
	root = parse(webhook_payload_build(&n, &o));
	assert_string_equal(str(root, "event_action"), "resolve");
	assert_string_equal(str(root, "dedup_key"), "{}:{alertname=\"DiskFull\"}");
	assert_null(json_object_get(root, "payload"));
	json_decref(root);

	/* PagerDuty rejects dedup keys past 255 characters: a long key is hashed. */
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	n.group_key = long_key;
	root = parse(webhook_payload_build(&n, &o));
	assert_int_equal(strlen(str(root, "dedup_key")), 64);
	json_decref(root);
}

static void pagerduty_severity_fallback(void **unused)
{
	struct notification n;
	struct notification_alert alerts[2];
	struct webhook_payload_options o = {.format = WEBHOOK_FORMAT_PAGERDUTY,
					    .pagerduty_routing_key = "R"};
	struct label page[] = {
	    {"alertname", "DiskFull"}, {"instance", "db1"}, {"severity", "page"}};
	json_t *root, *payload;

	(void)unused;
	fixture(&n, alerts);
	alerts[0].labels = page;
	n.alert_count = 1;
	root = parse(webhook_payload_build(&n, &o));
	payload = json_object_get(root, "payload");
	assert_string_equal(str(payload, "severity"), "error");
	assert_string_equal(str(payload, "source"), "db1");
	json_decref(root);
}

static void hmac_known_vectors(void **unused)
{
	char out[WEBHOOK_SIGNATURE_SIZE];
	const char *body = "{\"version\":\"4\",\"status\":\"firing\"}";

	(void)unused;
	/* RFC 4231, test case 2. */
	webhook_payload_sign("Jefe", 4, "what do ya want for nothing?", 28, out);
	assert_string_equal(
	    out, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* printf '%s' '{"version":"4","status":"firing"}' | openssl dgst -sha256 -hmac s3cret-key */
	webhook_payload_sign("s3cret-key", 10, body, strlen(body), out);
	assert_string_equal(
	    out, "sha256=31e40e202502398f1a804fbb81a2df7f1d8d3f1f9d5979760294cd4fe7349d5d");
}

static void hmac_covers_every_byte(void **unused)
{
	char a[WEBHOOK_SIGNATURE_SIZE];
	char b[WEBHOOK_SIGNATURE_SIZE];

	(void)unused;
	webhook_payload_sign("k", 1, "{\"a\":1}", 7, a);
	webhook_payload_sign("k", 1, "{\"a\":1} ", 8, b);
	assert_string_not_equal(a, b);
	webhook_payload_sign("K", 1, "{\"a\":1}", 7, b);
	assert_string_not_equal(a, b);
}

static void am_forward_firing_and_resolved(void **unused)
{
	struct notification n;
	struct notification_alert alerts[2];
	json_t *root, *alert;

	(void)unused;
	fixture(&n, alerts);
	alerts[0].ends_at_ms = T_09_50; /* ignored while the alert fires */
	root = parse(am_forward_payload(&n, T_10_07_30, 60000));
	assert_true(json_is_array(root));
	assert_int_equal(json_array_size(root), 2);

	alert = json_array_get(root, 0);
	assert_int_equal(json_object_size(alert), 5);
	assert_string_equal(str(json_object_get(alert, "labels"), "instance"), "db1");
	assert_string_equal(str(json_object_get(alert, "annotations"), "summary"),
			    "Disk of db1 is full");
	assert_string_equal(str(alert, "startsAt"), "2024-05-01T10:00:00Z");
	/* now + 4 * resend_delay: 10:07:30 + 4 min. */
	assert_string_equal(str(alert, "endsAt"), "2024-05-01T10:11:30Z");
	assert_string_equal(str(alert, "generatorURL"),
			    "http://tocsin.example:9517/rules#DiskFull");

	alert = json_array_get(root, 1);
	assert_string_equal(str(alert, "startsAt"), "2024-05-01T09:50:00.123Z");
	assert_string_equal(str(alert, "endsAt"), "2024-05-01T10:07:30Z");
	/* The API validates generatorURL as a URI: an absent one is left out. */
	assert_null(json_object_get(alert, "generatorURL"));
	json_decref(root);
}

static void am_forward_times_ordered(void **unused)
{
	struct notification n;
	struct notification_alert alerts[2];
	json_t *root;

	(void)unused;
	fixture(&n, alerts);
	alerts[0].starts_at_ms = 0; /* missing start: the transition time is used */
	alerts[0].condition_at_ms = T_09_50;
	alerts[1].ends_at_ms = T_09_50; /* ended before it started (clock step) */
	root = parse(am_forward_payload(&n, T_10_07_30, 60000));
	assert_string_equal(str(json_array_get(root, 0), "startsAt"), "2024-05-01T09:50:00Z");
	assert_string_equal(str(json_array_get(root, 1), "startsAt"), "2024-05-01T09:50:00.123Z");
	assert_string_equal(str(json_array_get(root, 1), "endsAt"), "2024-05-01T09:50:00.123Z");
	json_decref(root);

	/* A firing alert that starts after now + 4 * resend_delay still ends after it starts. */
	alerts[0].starts_at_ms = T_10_07_30 + 3600000;
	root = parse(am_forward_payload(&n, T_10_07_30, 60000));
	assert_string_equal(str(json_array_get(root, 0), "endsAt"), "2024-05-01T11:07:30Z");
	json_decref(root);
}

static void outcome_statuses(void **unused)
{
	struct delivery_outcome o;

	(void)unused;
	webhook_outcome_from_status(200, "HTTP/1.1 200 OK", NULL, "", 0, T_10_00, &o);
	assert_int_equal(o.result, DELIVERY_OK);
	assert_string_equal(o.reason, "2xx");
	webhook_outcome_from_status(204, "HTTP/1.1 204 No Content", NULL, NULL, 0, T_10_00, &o);
	assert_int_equal(o.result, DELIVERY_OK);

	webhook_outcome_from_status(429, "HTTP/1.1 429 Too Many Requests", "2", "", 0, T_10_00, &o);
	assert_int_equal(o.result, DELIVERY_RETRY);
	assert_string_equal(o.reason, "429");
	assert_int_equal(o.retry_after_ms, 2000);

	webhook_outcome_from_status(503, "HTTP/1.1 503 Service Unavailable", "120", "", 0, T_10_00,
				    &o);
	assert_int_equal(o.result, DELIVERY_RETRY);
	assert_string_equal(o.reason, "5xx");
	assert_int_equal(o.retry_after_ms, 120000);

	/* Retry-After counts for 429 and 503 only. */
	webhook_outcome_from_status(500, "HTTP/1.1 500 Internal Server Error", "120", "", 0,
				    T_10_00, &o);
	assert_string_equal(o.reason, "5xx");
	assert_int_equal(o.retry_after_ms, 0);

	webhook_outcome_from_status(408, "HTTP/1.1 408 Request Timeout", NULL, "", 0, T_10_00, &o);
	assert_int_equal(o.result, DELIVERY_RETRY);
	assert_string_equal(o.reason, "408");

	webhook_outcome_from_status(404, "HTTP/1.1 404 Not Found", NULL, "", 0, T_10_00, &o);
	assert_int_equal(o.result, DELIVERY_PERMANENT);
	assert_string_equal(o.reason, "4xx");

	webhook_outcome_from_status(301, "HTTP/1.1 301 Moved Permanently", NULL, "", 0, T_10_00,
				    &o);
	assert_int_equal(o.result, DELIVERY_PERMANENT);
	assert_string_equal(o.reason, "3xx");
}

static void outcome_retry_after_date(void **unused)
{
	struct delivery_outcome o;

	(void)unused;
	/* 10:07:30 is 450 s after 10:00:00. */
	webhook_outcome_from_status(429, "HTTP/1.1 429 Too Many Requests",
				    "Wed, 01 May 2024 10:07:30 GMT", "", 0, T_10_00, &o);
	assert_int_equal(o.retry_after_ms, 450000);
	webhook_outcome_from_status(429, "HTTP/1.1 429 Too Many Requests", "86400", "", 0, T_10_00,
				    &o);
	assert_int_equal(o.retry_after_ms, 86400000);
	webhook_outcome_from_status(429, "HTTP/1.1 429 Too Many Requests", "soon", "", 0, T_10_00,
				    &o);
	assert_int_equal(o.result, DELIVERY_RETRY);
	assert_int_equal(o.retry_after_ms, 0);
}

static void outcome_detail_quotes_body(void **unused)
{
	struct delivery_outcome o;
	char body[300];

	(void)unused;
	memset(body, 'x', sizeof(body));
	memcpy(body, "bad\nrequest", 11);
	webhook_outcome_from_status(400, "HTTP/1.1 400 Bad Request", NULL, body, sizeof(body),
				    T_10_00, &o);
	assert_int_equal(o.result, DELIVERY_PERMANENT);
	/* The status line, then 200 bytes of the body with the line break made a space. */
	assert_int_equal(strncmp(o.detail, "HTTP/1.1 400 Bad Request: bad request", 37), 0);
	assert_int_equal(strlen(o.detail), strlen("HTTP/1.1 400 Bad Request: ") + 200);
}

static void time_order_error_recognized(void **unused)
{
	const char *reply = "{\"code\":400,\"message\":\"start time must be before end time\"}";

	(void)unused;
	assert_true(webhook_body_reports_time_order(reply, strlen(reply)));
	assert_false(webhook_body_reports_time_order("{\"code\":400}", 12));
	assert_false(webhook_body_reports_time_order(NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(am_payload_top_level),
	    cmocka_unit_test(am_payload_firing_alert),
	    cmocka_unit_test(am_payload_resolved_alert),
	    cmocka_unit_test(am_payload_all_resolved),
	    cmocka_unit_test(am_payload_truncation),
	    cmocka_unit_test(slack_firing_body),
	    cmocka_unit_test(slack_resolved_truncated),
	    cmocka_unit_test(pagerduty_trigger_body),
	    cmocka_unit_test(pagerduty_resolve_body),
	    cmocka_unit_test(pagerduty_severity_fallback),
	    cmocka_unit_test(hmac_known_vectors),
	    cmocka_unit_test(hmac_covers_every_byte),
	    cmocka_unit_test(am_forward_firing_and_resolved),
	    cmocka_unit_test(am_forward_times_ordered),
	    cmocka_unit_test(outcome_statuses),
	    cmocka_unit_test(outcome_retry_after_date),
	    cmocka_unit_test(outcome_detail_quotes_body),
	    cmocka_unit_test(time_order_error_recognized),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
