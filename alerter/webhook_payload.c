/*
 * Request bodies of the `webhook` receiver; see webhook_payload.h. Every body is built as
 * a jansson tree and dumped compact, in insertion order, so the bytes that are signed are
 * the bytes that are sent.
 */
#include "alerter/webhook_payload.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/utf8.h"
#include "collector/xalloc.h"

/* PagerDuty truncates longer summaries and rejects dedup keys longer than 255 characters. */
#define PAGERDUTY_SUMMARY_MAX 1024
#define PAGERDUTY_DEDUP_MAX   255

/* Room for notification_time()'s longest output. */
#define TIME_SIZE 40

json_t *webhook_payload_json_text(const char *s)
{
	json_t *j = json_string(s != NULL ? s : "");
	char *copy;

	if (j != NULL)
		return j;
	copy = xstrdup(s);
	utf8_repair(copy); /* jansson rejects invalid UTF-8 */
	j = json_string(copy);
	free(copy);
	return j;
}

json_t *webhook_payload_json_time(int64_t ms)
{
	char buf[TIME_SIZE];

	return json_string(notification_time(ms, buf, sizeof(buf)));
}

json_t *webhook_payload_json_labels(const struct label *labels, size_t count)
{
	json_t *o = json_object();

	for (size_t i = 0; i < count; i++)
		json_object_set_new(o, labels[i].name, webhook_payload_json_text(labels[i].value));
	return o;
}

static const char *label_find(const struct label *labels, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(labels[i].name, name) == 0)
			return labels[i].value;
	}
	return NULL;
}

static char *dump(json_t *root)
{
	char *text = json_dumps(root, JSON_COMPACT);

	json_decref(root);
	if (text == NULL)
		abort(); /* json_dumps() fails when out of memory: abort as xmalloc does */
	/* json_dumps() allocates with malloc() unless the allocator was replaced. */
	return text;
}

/* How many of n's alerts a body carries, and how many it reports as left out. */
static size_t alerts_sent(const struct notification *n, size_t max_alerts)
{
	if (max_alerts == 0 || max_alerts > n->alert_count)
		return n->alert_count;
	return max_alerts;
}

static size_t alerts_left_out(const struct notification *n, size_t max_alerts)
{
	return n->truncated_alerts + (n->alert_count - alerts_sent(n, max_alerts));
}

static json_t *alert_object(const struct notification_alert *a)
{
	json_t *o = json_object();
	char fingerprint[17];

	snprintf(fingerprint, sizeof(fingerprint), "%016llx", (unsigned long long)a->fingerprint);
	json_object_set_new(o, "status", json_string(a->firing ? "firing" : "resolved"));
	json_object_set_new(o, "labels", webhook_payload_json_labels(a->labels, a->label_count));
	json_object_set_new(o, "annotations",
			    webhook_payload_json_labels(a->annotations, a->annotation_count));
	json_object_set_new(o, "startsAt", webhook_payload_json_time(a->starts_at_ms));
	/* Alertmanager sends the zero time for an alert that has not ended. */
	json_object_set_new(o, "endsAt", webhook_payload_json_time(a->firing ? 0 : a->ends_at_ms));
	json_object_set_new(o, "generatorURL", webhook_payload_json_text(a->generator_url));
	json_object_set_new(o, "fingerprint", json_string(fingerprint));
	return o;
}

char *webhook_payload_alertmanager(const struct notification *n, size_t max_alerts)
{
	json_t *root = json_object();
	json_t *alerts = json_array();
	struct label *common;
	size_t common_count;
	size_t sent = alerts_sent(n, max_alerts);

	for (size_t i = 0; i < sent; i++)
		json_array_append_new(alerts, alert_object(&n->alerts[i]));

	json_object_set_new(root, "receiver", webhook_payload_json_text(n->receiver));
	json_object_set_new(root, "status", json_string(n->firing ? "firing" : "resolved"));
	json_object_set_new(root, "alerts", alerts);
	json_object_set_new(root, "groupLabels",
			    webhook_payload_json_labels(n->group_labels, n->group_label_count));
	notification_common_labels(n, &common, &common_count);
	json_object_set_new(root, "commonLabels",
			    webhook_payload_json_labels(common, common_count));
	notification_labels_release(common);
	notification_common_annotations(n, &common, &common_count);
	json_object_set_new(root, "commonAnnotations",
			    webhook_payload_json_labels(common, common_count));
	notification_labels_release(common);
	json_object_set_new(root, "externalURL", webhook_payload_json_text(n->external_url));
	json_object_set_new(root, "version", json_string("4"));
	json_object_set_new(root, "groupKey", webhook_payload_json_text(n->group_key));
	json_object_set_new(root, "truncatedAlerts",
			    json_integer((json_int_t)alerts_left_out(n, max_alerts)));
	json_object_set_new(root, "idempotencyKey", webhook_payload_json_text(n->idempotency_key));
	return dump(root);
}

/* A growing NUL-terminated string for the text of chat messages. */
struct text {
	char *data;
	size_t length;
	size_t capacity;
};

static void text_append(struct text *t, const char *s, size_t n)
{
	t->data = xreallocarray_grow(t->data, &t->capacity, t->length + n + 1, 1);
	memcpy(t->data + t->length, s, n);
	t->length += n;
	t->data[t->length] = '\0';
}

static void text_add(struct text *t, const char *s)
{
	text_append(t, s, strlen(s));
}

/*
 * The title Alertmanager's default templates give a group: "[FIRING:2] " or "[RESOLVED] "
 * followed by the group label values, or the common alertname when there are none.
 */
static char *group_title(const struct notification *n)
{
	struct text t = {0};
	size_t firing = 0;
	char head[48];

	for (size_t i = 0; i < n->alert_count; i++)
		firing += n->alerts[i].firing;
	if (n->firing)
		snprintf(head, sizeof(head), "[FIRING:%zu]", firing);
	else
		snprintf(head, sizeof(head), "[RESOLVED]");
	text_add(&t, head);
	for (size_t i = 0; i < n->group_label_count; i++) {
		text_add(&t, " ");
		text_add(&t, n->group_labels[i].value);
	}
	if (n->group_label_count == 0 && n->alert_count > 0) {
		const struct notification_alert *a = &n->alerts[0];
		const char *name = label_find(a->labels, a->label_count, "alertname");

		if (name != NULL) {
			text_add(&t, " ");
			text_add(&t, name);
		}
	}
	return t.data;
}

/* One line per alert: its summary or description annotation, else its labels. */
static void add_alert_line(struct text *t, const struct notification_alert *a)
{
	const char *summary = label_find(a->annotations, a->annotation_count, "summary");

	if (summary == NULL)
		summary = label_find(a->annotations, a->annotation_count, "description");
	if (t->length > 0)
		text_add(t, "\n");
	text_add(t, a->firing ? "[firing] " : "[resolved] ");
	if (summary != NULL) {
		text_add(t, summary);
		return;
	}
	text_add(t, "{");
	for (size_t i = 0; i < a->label_count; i++) {
		text_add(t, i > 0 ? ", " : "");
		text_add(t, a->labels[i].name);
		text_add(t, "=\"");
		text_add(t, a->labels[i].value);
		text_add(t, "\"");
	}
	text_add(t, "}");
}

static void add_left_out_line(struct text *t, size_t left_out)
{
	char line[64];

	if (left_out == 0)
		return;
	snprintf(line, sizeof(line), "%sand %zu more alert%s", t->length > 0 ? "\n" : "", left_out,
		 left_out == 1 ? "" : "s");
	text_add(t, line);
}

static char *slack_body(const struct notification *n, const struct webhook_payload_options *o)
{
	json_t *root = json_object();
	json_t *attachment = json_object();
	char *title = group_title(n);
	struct text lines = {0};
	size_t sent = alerts_sent(n, o->max_alerts);

	for (size_t i = 0; i < sent; i++)
		add_alert_line(&lines, &n->alerts[i]);
	add_left_out_line(&lines, alerts_left_out(n, o->max_alerts));
	if (lines.data == NULL)
		text_add(&lines, "");

	if (o->slack_channel != NULL)
		json_object_set_new(root, "channel", webhook_payload_json_text(o->slack_channel));
	if (o->slack_username != NULL)
		json_object_set_new(root, "username", webhook_payload_json_text(o->slack_username));
	/* Slack's named colours: "danger" is red, "good" is green. */
	json_object_set_new(attachment, "color", json_string(n->firing ? "danger" : "good"));
	json_object_set_new(attachment, "title", webhook_payload_json_text(title));
	if (n->external_url != NULL)
		json_object_set_new(attachment, "title_link",
				    webhook_payload_json_text(n->external_url));
	json_object_set_new(attachment, "text", webhook_payload_json_text(lines.data));
	json_object_set_new(attachment, "fallback", webhook_payload_json_text(title));
	json_object_set_new(root, "attachments", json_pack("[o]", attachment));
	free(title);
	free(lines.data);
	return dump(root);
}

/* The longest prefix of s of at most max bytes that does not split a UTF-8 sequence. */
static size_t utf8_prefix(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

/* The group key, or its SHA-256 in hex when PagerDuty would reject its length. */
static json_t *pagerduty_dedup_key(const char *group_key)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];

	if (strlen(group_key) <= PAGERDUTY_DEDUP_MAX)
		return webhook_payload_json_text(group_key);
	SHA256((const unsigned char *)group_key, strlen(group_key), md);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return json_string(hex);
}

/* The common severity label when it is one of PagerDuty's four, else "error" as in
 * Alertmanager's pagerduty_config. */
static const char *pagerduty_severity(const struct label *common, size_t count)
{
	static const char *const accepted[] = {"critical", "error", "warning", "info"};
	const char *severity = label_find(common, count, "severity");

	for (size_t i = 0; severity != NULL && i < 4; i++) {
		if (strcmp(severity, accepted[i]) == 0)
			return accepted[i];
	}
	return "error";
}

static json_t *pagerduty_details(const struct notification *n, size_t max_alerts)
{
	struct text firing = {0};
	struct text resolved = {0};
	size_t firing_count = 0;
	size_t sent = alerts_sent(n, max_alerts);
	json_t *details;

	for (size_t i = 0; i < sent; i++) {
		const struct notification_alert *a = &n->alerts[i];

		add_alert_line(a->firing ? &firing : &resolved, a);
		firing_count += a->firing;
	}
	add_left_out_line(n->firing ? &firing : &resolved, alerts_left_out(n, max_alerts));
	details = json_object();
	json_object_set_new(details, "firing", webhook_payload_json_text(firing.data));
	json_object_set_new(details, "resolved", webhook_payload_json_text(resolved.data));
	json_object_set_new(details, "num_firing", json_integer((json_int_t)firing_count));
	json_object_set_new(details, "num_resolved",
			    json_integer((json_int_t)(sent - firing_count)));
	json_object_set_new(details, "truncated_alerts",
			    json_integer((json_int_t)alerts_left_out(n, max_alerts)));
	json_object_set_new(details, "group_labels",
			    webhook_payload_json_labels(n->group_labels, n->group_label_count));
	free(firing.data);
	free(resolved.data);
	return details;
}

static char *pagerduty_body(const struct notification *n, const struct webhook_payload_options *o)
{
	json_t *root = json_object();

	json_object_set_new(root, "routing_key",
			    webhook_payload_json_text(o->pagerduty_routing_key));
	json_object_set_new(root, "event_action", json_string(n->firing ? "trigger" : "resolve"));
	json_object_set_new(root, "dedup_key", pagerduty_dedup_key(n->group_key));
	/* PagerDuty requires the payload of a trigger event only; a resolve event closes the
	 * incident with the same dedup_key, as Alertmanager's pagerduty_config sends it. */
	if (n->firing) {
		json_t *payload = json_object();
		struct label *common;
		size_t common_count;
		char *title = group_title(n);
		const char *instance;

		notification_common_labels(n, &common, &common_count);
		title[utf8_prefix(title, PAGERDUTY_SUMMARY_MAX)] = '\0';
		instance = label_find(common, common_count, "instance");
		json_object_set_new(payload, "summary", webhook_payload_json_text(title));
		json_object_set_new(payload, "severity",
				    json_string(pagerduty_severity(common, common_count)));
		json_object_set_new(payload, "source",
				    webhook_payload_json_text(instance ? instance : "tocsin"));
		json_object_set_new(payload, "custom_details", pagerduty_details(n, o->max_alerts));
		json_object_set_new(root, "payload", payload);
		notification_labels_release(common);
		free(title);
	}
	json_object_set_new(root, "client", json_string("tocsin"));
	if (n->external_url != NULL)
		json_object_set_new(root, "client_url", webhook_payload_json_text(n->external_url));
	return dump(root);
}

char *webhook_payload_build(const struct notification *n,
			    const struct webhook_payload_options *options)
{
	switch (options->format) {
	case WEBHOOK_FORMAT_SLACK:
		return slack_body(n, options);
	case WEBHOOK_FORMAT_PAGERDUTY:
		return pagerduty_body(n, options);
	case WEBHOOK_FORMAT_ALERTMANAGER:
	default:
		return webhook_payload_alertmanager(n, options->max_alerts);
	}
}

void webhook_payload_sign(const char *key, size_t key_length, const char *body, size_t body_length,
			  char out[WEBHOOK_SIGNATURE_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_length = 0;

	HMAC(EVP_sha256(), key, (int)key_length, (const unsigned char *)body, body_length, md,
	     &md_length);
	memcpy(out, "sha256=", 7);
	for (unsigned int i = 0; i < md_length && i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	out[WEBHOOK_SIGNATURE_SIZE - 1] = '\0';
}
