/*
 * Request bodies of the `webhook` receiver: Alertmanager's webhook payload (version 4),
 * a Slack incoming-webhook message and a PagerDuty Events API v2 event, plus the
 * HMAC-SHA256 signature over a body. Pure functions of a notification, so that every
 * field is tested without a network.
 */
#ifndef TOCSIN_WEBHOOK_PAYLOAD_H
#define TOCSIN_WEBHOOK_PAYLOAD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "alerter/notification.h"

enum webhook_format {
	WEBHOOK_FORMAT_ALERTMANAGER, /* Alertmanager's webhook_config payload, version "4" */
	WEBHOOK_FORMAT_SLACK,        /* Slack incoming webhook: text and one attachment */
	WEBHOOK_FORMAT_PAGERDUTY,    /* PagerDuty Events API v2 (enqueue) */
};

struct webhook_payload_options {
	enum webhook_format format;
	size_t max_alerts;          /* 0: every alert; else the first max_alerts are sent */
	const char *slack_channel;  /* slack: overrides the webhook's channel; may be NULL */
	const char *slack_username; /* slack: overrides the webhook's user name; may be NULL */
	const char *pagerduty_routing_key; /* pagerduty: the integration key; required */
};

/*
 * Builds the body for n in the configured format. Alerts past max_alerts are left out
 * and counted, together with n->truncated_alerts, in truncatedAlerts (Alertmanager format)
 * or in a closing "and N more" line (Slack, PagerDuty). Returns a JSON string the caller
 * frees.
 */
char *webhook_payload_build(const struct notification *n,
			    const struct webhook_payload_options *options);

/*
 * Alertmanager's webhook payload version 4: version, groupKey, truncatedAlerts, status,
 * receiver, groupLabels, commonLabels, commonAnnotations, externalURL and alerts[] (status,
 * labels, annotations, startsAt, endsAt, generatorURL, fingerprint), plus idempotencyKey,
 * which receivers written for Alertmanager ignore. A firing alert's endsAt is Go's zero
 * time "0001-01-01T00:00:00Z". Returns a string the caller frees.
 */
char *webhook_payload_alertmanager(const struct notification *n, size_t max_alerts);

/*
 * JSON values of the payloads, also used by the alertmanager receiver's request body.
 * Each returns a new reference. webhook_payload_json_text() gives "" for NULL and sends
 * bytes that are not UTF-8, which jansson rejects, as '?'. webhook_payload_json_time()
 * formats with notification_time(). webhook_payload_json_labels() builds an object
 * {"name":"value",...} in label order.
 */
json_t *webhook_payload_json_text(const char *s);
json_t *webhook_payload_json_time(int64_t ms);
json_t *webhook_payload_json_labels(const struct label *labels, size_t count);

/* "sha256=" followed by 64 lowercase hex digits, and the terminating NUL. */
#define WEBHOOK_SIGNATURE_SIZE 72

/*
 * Writes "sha256=HEX", the HMAC-SHA256 of the body_length bytes of body under the
 * key_length bytes of key, into out. The receiver recomputes it over the exact bytes it
 * received.
 */
void webhook_payload_sign(const char *key, size_t key_length, const char *body, size_t body_length,
			  char out[WEBHOOK_SIGNATURE_SIZE]);

#endif
