/*
 * A notification: what one receiver is sent for one alert group at one time. The
 * dispatcher builds it from the group's alerts, the outbox stores it as JSON (so that it
 * survives a restart byte for byte) and a receiver turns it into an email, a webhook body
 * or an Alertmanager POST. Times are Unix milliseconds; 0 means "not set".
 */
#ifndef TOCSIN_NOTIFICATION_H
#define TOCSIN_NOTIFICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/series.h"

struct notification_alert {
	struct label *labels; /* sorted by name, alertname included; owned */
	size_t label_count;
	struct label *annotations; /* sorted by name; owned */
	size_t annotation_count;
	bool firing;             /* false: resolved */
	int64_t starts_at_ms;    /* when it started firing (kept across restarts) */
	int64_t ends_at_ms;      /* resolved: when it resolved; firing: 0 */
	int64_t condition_at_ms; /* when the evaluator saw the transition, for latency */
	uint64_t fingerprint;    /* of the labels, as the evaluator computes it */
	char *generator_url;     /* may be NULL */
};

struct notification {
	char *receiver;
	char *group_key;            /* stable per route and group labels */
	uint64_t sequence;          /* per group key, increasing */
	char *idempotency_key;      /* "GROUP_KEY/SEQUENCE": sent in every payload and header */
	struct label *group_labels; /* sorted; owned */
	size_t group_label_count;
	bool firing; /* true when at least one alert is firing */
	struct notification_alert *alerts;
	size_t alert_count;
	size_t truncated_alerts; /* left out because of the receiver's max_alerts */
	char *external_url;      /* the dashboard's URL, may be NULL */
	int64_t created_ms;
};

/* Labels every alert has with the same value, sorted (Alertmanager's commonLabels). */
void notification_common_labels(const struct notification *n, struct label **out, size_t *count);
void notification_common_annotations(const struct notification *n, struct label **out,
				     size_t *count);
/* Frees arrays returned by the two functions above (the strings are borrowed). */
void notification_labels_release(struct label *v);

/* The stored form. Returns a string the caller frees. */
char *notification_to_json(const struct notification *n);
/* Parses the stored form. Returns NULL with *error set (caller frees) when invalid. */
struct notification *notification_from_json(const char *json, char **error);
void notification_free(struct notification *n);

/* Formats Unix milliseconds as RFC 3339 UTC ("2024-05-01T10:07:30Z", with ".123" when the
 * milliseconds are not 0); 0 gives Go's zero time "0001-01-01T00:00:00Z". */
const char *notification_time(int64_t ms, char *buf, size_t size);

#endif
