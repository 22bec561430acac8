/*
 * The `alertmanager` receiver; see am_forward.h. Each notification is POSTed to every
 * configured Alertmanager at once, as Prometheus sends to all of them rather than to one.
 * Clustered Alertmanagers deduplicate, and unclustered ones each need the alert. The
 * HTTP part is webhook.c's.
 *
 * Success rule: the notification counts as delivered when at least one Alertmanager
 * accepted it, the case in which Prometheus counts a batch as sent. The dispatcher sends
 * active alerts again every resend_delay, so an instance that missed one send gets the
 * next one. Partial failures are logged here, per URL and throttled.
 */
#include "alerter/am_forward.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerter/receiver.h"
#include "alerter/webhook.h"
#include "alerter/webhook_payload.h"
#include "collector/cfg.h"
#include "collector/clock.h"
#include "collector/log.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"
#include "probes/curlev.h"

/* The Alertmanager API path appended to each base URL. */
#define AM_FORWARD_API_PATH "/api/v2/alerts"

/* Alertmanager rejects an alert without a start, so a missing one (never expected) falls
 * back to the transition time, the notification's creation and finally now. */
static int64_t alert_start(const struct notification *n, const struct notification_alert *a,
			   int64_t now_ms)
{
	if (a->starts_at_ms > 0)
		return a->starts_at_ms;
	if (a->condition_at_ms > 0)
		return a->condition_at_ms;
	if (n->created_ms > 0)
		return n->created_ms;
	return now_ms;
}

static json_t *postable_alert(const struct notification *n, const struct notification_alert *a,
			      int64_t now_ms, int64_t resend_delay_ms)
{
	json_t *o = json_object();
	int64_t starts = alert_start(n, a, now_ms);
	int64_t ends;

	if (a->firing)
		ends = now_ms + 4 * resend_delay_ms; /* Prometheus: allow two failed sends */
	else
		ends = a->ends_at_ms > 0 ? a->ends_at_ms : now_ms;
	/* Alertmanager rejects the alert otherwise, with 400 "start time must be before end
	 * time". */
	if (ends < starts)
		ends = starts;
	json_object_set_new(o, "labels", webhook_payload_json_labels(a->labels, a->label_count));
	json_object_set_new(o, "annotations",
			    webhook_payload_json_labels(a->annotations, a->annotation_count));
	json_object_set_new(o, "startsAt", webhook_payload_json_time(starts));
	json_object_set_new(o, "endsAt", webhook_payload_json_time(ends));
	/* The API validates generatorURL as a URI, so an empty one is left out. */
	if (a->generator_url != NULL && a->generator_url[0] != '\0')
		json_object_set_new(o, "generatorURL", webhook_payload_json_text(a->generator_url));
	return o;
}

char *am_forward_payload(const struct notification *n, int64_t now_ms, int64_t resend_delay_ms)
{
	json_t *alerts = json_array();
	char *text;

	for (size_t i = 0; i < n->alert_count; i++)
		json_array_append_new(alerts,
				      postable_alert(n, &n->alerts[i], now_ms, resend_delay_ms));
	text = json_dumps(alerts, JSON_COMPACT);
	json_decref(alerts);
	if (text == NULL)
		abort(); /* json_dumps() fails when out of memory: abort as xmalloc does */
	return text;
}

/* ---- the receiver ---- */

struct am_state {
	struct webhook_http http;
	struct webhook_url *urls; /* request URLs end in AM_FORWARD_API_PATH */
	size_t url_count;
	struct throttle *partial_errors; /* per URL: failures while another one accepted */
	int64_t resend_delay_ms;
	int64_t resolved_keep_ms;
};

/* One notification in flight to every URL; handed out as the opaque struct receiver_op. */
struct am_op {
	struct am_state *st;
	struct webhook_post **posts; /* per URL; NULL once finished */
	struct delivery_outcome *outcomes;
	size_t pending;
	receiver_done_fn *done;
	void *arg;
};

void am_forward_schedule(const void *state, struct am_forward_schedule *out)
{
	const struct am_state *st = state;

	out->resend_delay_ms = st->resend_delay_ms;
	out->resolved_keep_ms = st->resolved_keep_ms;
}

/* Appends the base URL's path and AM_FORWARD_API_PATH; NULL when curl cannot parse it
 * (webhook_url_prepare then reports why). */
static char *api_url(const char *base)
{
	CURLU *cu = curl_url();
	char *path = NULL;
	char *full = NULL;
	char *result = NULL;

	if (curl_url_set(cu, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_get(cu, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
		size_t n = strlen(path);
		char *joined;

		while (n > 0 && path[n - 1] == '/')
			n--;
		joined = xasprintf("%.*s%s", (int)n, path, AM_FORWARD_API_PATH);
		if (curl_url_set(cu, CURLUPART_PATH, joined, 0) == CURLUE_OK &&
		    curl_url_get(cu, CURLUPART_URL, &full, 0) == CURLUE_OK)
			result = xstrdup(full);
		free(joined);
	}
	curl_free(path);
	curl_free(full);
	curl_url_cleanup(cu);
	return result;
}

static void read_urls(struct cfg_map *m, struct am_state *st, bool *failed)
{
	struct cfg_seq seq;
	int rc = cfg_get_seq(m, "urls", &seq);
	size_t count;

	if (rc == 0)
		cfg_error(m, NULL,
			  "urls is missing; list the Alertmanagers, e.g. urls: "
			  "[http://127.0.0.1:9093]");
	if (rc != 1) {
		*failed = true;
		return;
	}
	count = cfg_seq_count(&seq);
	if (count == 0) {
		cfg_error(m, "urls", "is empty; list at least one Alertmanager base URL");
		*failed = true;
		return;
	}
	st->urls = xcalloc(count, sizeof(*st->urls));
	st->partial_errors = xcalloc(count, sizeof(*st->partial_errors));
	for (size_t i = 0; i < count; i++) {
		char *base = NULL;
		char *url;
		char error[256];

		if (cfg_seq_string(&seq, i, &base) != 1) {
			*failed = true;
			continue;
		}
		url = api_url(base);
		if (webhook_url_prepare(url != NULL ? url : base, &st->http,
					&st->urls[st->url_count], error, sizeof(error)) < 0) {
			cfg_seq_error(&seq, i, "%s", error);
			*failed = true;
		}
		throttle_init(&st->partial_errors[st->url_count], THROTTLE_DEFAULT_INITIAL_MS,
			      THROTTLE_DEFAULT_MAX_MS);
		st->url_count++;
		free(url);
		free(base);
	}
}

/* min_ms: 1 for "longer than 0s", more where a shorter value would flood something. */
static void read_duration(struct cfg_map *m, const char *key, int64_t fallback, uint64_t min_ms,
			  const char *why, int64_t *out, bool *failed)
{
	uint64_t ms = (uint64_t)fallback;

	if (cfg_get_duration_ms(m, key, &ms) < 0) {
		*failed = true;
	} else if (ms < min_ms) {
		if (min_ms <= 1)
			cfg_error(m, key, "must be longer than 0s");
		else
			cfg_error(m, key, "must be longer than 0s and at least %llu ms: %s",
				  (unsigned long long)min_ms, why);
		*failed = true;
	}
	*out = (int64_t)ms;
}

static void am_free(void *state)
{
	struct am_state *st = state;

	if (st == NULL)
		return;
	webhook_http_clear(&st->http);
	for (size_t i = 0; i < st->url_count; i++)
		webhook_url_clear(&st->urls[i]);
	free(st->urls);
	free(st->partial_errors);
	free(st);
	curlev_unref();
}

static int am_parse(struct cfg_map *m, void **state)
{
	struct am_state *st = xcalloc(1, sizeof(*st));
	bool failed = webhook_http_parse(m, "alertmanager", &st->http) < 0;

	curlev_ref(); /* released by am_free: the multi handle lives while a state does */
	read_urls(m, st, &failed);
	read_duration(m, "resend_delay", AM_FORWARD_DEFAULT_RESEND_DELAY_MS, 1000,
		      "each re-send writes one notification per group to the outbox",
		      &st->resend_delay_ms, &failed);
	read_duration(m, "resolved_keep", AM_FORWARD_DEFAULT_RESOLVED_KEEP_MS, 1, NULL,
		      &st->resolved_keep_ms, &failed);
	if (failed) {
		am_free(st);
		return -1;
	}
	*state = st;
	return 0;
}

static void op_free(struct am_op *op)
{
	free(op->posts);
	free(op->outcomes);
	free(op);
}

/* Appends to the combined detail, cutting what does not fit. */
static void detail_append(char *detail, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void detail_append(char *detail, size_t size, const char *fmt, ...)
{
	size_t used = strlen(detail);
	va_list ap;

	if (used + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(detail + used, size - used, fmt, ap);
	va_end(ap);
}

/*
 * Combines the instances' outcomes. The result is OK when one accepted. Otherwise it is
 * RETRY when one may accept later, with the earliest Retry-After among them (0 when one
 * gave none), and PERMANENT when none may.
 */
static void combine(const struct am_op *op, struct delivery_outcome *out)
{
	const struct am_state *st = op->st;
	size_t ok = 0;
	const struct delivery_outcome *first_retry = NULL;
	int64_t retry_after = INT64_MAX;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < st->url_count; i++) {
		const struct delivery_outcome *o = &op->outcomes[i];

		if (o->result == DELIVERY_OK) {
			ok++;
			continue;
		}
		detail_append(out->detail, sizeof(out->detail), "%s%s: %s",
			      out->detail[0] ? "; " : "", st->urls[i].url, o->detail);
		if (o->result == DELIVERY_RETRY) {
			if (first_retry == NULL)
				first_retry = o;
			if (o->retry_after_ms < retry_after)
				retry_after = o->retry_after_ms;
		} else if (out->reason[0] == '\0') {
			snprintf(out->reason, sizeof(out->reason), "%s", o->reason);
		}
	}
	if (ok > 0) {
		char failures[sizeof(out->detail)];

		snprintf(failures, sizeof(failures), "%s", out->detail);
		out->result = DELIVERY_OK;
		snprintf(out->reason, sizeof(out->reason), "2xx");
		out->detail[0] = '\0';
		detail_append(out->detail, sizeof(out->detail),
			      "accepted by %zu of %zu Alertmanagers", ok, st->url_count);
		if (failures[0] != '\0')
			detail_append(out->detail, sizeof(out->detail), "; failed: %s", failures);
	} else if (first_retry != NULL) {
		out->result = DELIVERY_RETRY;
		out->retry_after_ms = retry_after;
		snprintf(out->reason, sizeof(out->reason), "%s", first_retry->reason);
	} else {
		out->result = DELIVERY_PERMANENT;
	}
}

/* Logs an instance's failure when another one accepted the notification, and its
 * recovery; a total failure is the outbox's to log. */
static void log_partial(struct am_op *op)
{
	struct am_state *st = op->st;
	bool any_ok = false;
	char ids[512];

	for (size_t i = 0; i < st->url_count; i++)
		any_ok |= op->outcomes[i].result == DELIVERY_OK;
	for (size_t i = 0; i < st->url_count; i++) {
		const struct delivery_outcome *o = &op->outcomes[i];
		uint64_t count = 0;

		log_ids(ids, sizeof(ids), "url", st->urls[i].url, NULL);
		if (o->result == DELIVERY_OK) {
			if (throttle_ok(&st->partial_errors[i], &count))
				log_notice("alertmanager", ids,
					   "accepting alerts again after %llu "
					   "failed sends",
					   (unsigned long long)count);
		} else if (any_ok &&
			   throttle_fail(&st->partial_errors[i], clock_monotonic_ms(), &count)) {
			log_warn("alertmanager", ids,
				 "send failed (%s: %s) while another Alertmanager accepted it; "
				 "%llu similar errors suppressed",
				 o->reason, o->detail, (unsigned long long)count);
		}
	}
}

static void am_post_finished(void *arg, const struct webhook_url *url,
			     const struct delivery_outcome *outcome)
{
	struct am_op *op = arg;
	struct delivery_outcome combined;
	size_t i = (size_t)(url - op->st->urls);

	op->outcomes[i] = *outcome;
	op->posts[i] = NULL;
	if (--op->pending > 0)
		return;
	log_partial(op);
	combine(op, &combined);
	op->done(op->arg, &combined);
	op_free(op);
}

static struct receiver_op *am_send(void *state, struct event_base *base,
				   const struct notification *n, int64_t timeout_ms,
				   receiver_done_fn *done, void *arg,
				   struct delivery_outcome *failed)
{
	struct am_state *st = state;
	struct am_op *op = xcalloc(1, sizeof(*op));
	char *body = am_forward_payload(n, clock_wall_ms(), st->resend_delay_ms);
	char *idempotency = xasprintf("Idempotency-Key: %s", n->idempotency_key);
	const char *headers[] = {idempotency, NULL};

	/* The key is sent for proxies and logs; Alertmanager itself deduplicates by labels. */
	for (char *p = idempotency; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7F)
			*p = '?';
	}
	if (timeout_ms <= 0 || timeout_ms > st->http.timeout_ms)
		timeout_ms = st->http.timeout_ms;
	op->st = st;
	op->done = done;
	op->arg = arg;
	op->posts = xcalloc(st->url_count, sizeof(*op->posts));
	op->outcomes = xcalloc(st->url_count, sizeof(*op->outcomes));
	for (size_t i = 0; i < st->url_count; i++) {
		op->posts[i] =
		    webhook_post_start(&st->http, &st->urls[i], base, body, headers, timeout_ms,
				       am_post_finished, op, &op->outcomes[i]);
		if (op->posts[i] != NULL)
			op->pending++;
	}
	free(body);
	free(idempotency);
	if (op->pending == 0) {
		/* Posts finish from the loop, never inside webhook_post_start(), so no callback
		 * has run yet and every outcome is a start failure. */
		combine(op, failed);
		op_free(op);
		return NULL;
	}
	return (struct receiver_op *)op;
}

static void am_cancel(struct receiver_op *handle)
{
	struct am_op *op = (struct am_op *)handle;

	if (op == NULL)
		return;
	for (size_t i = 0; i < op->st->url_count; i++)
		webhook_post_cancel(op->posts[i]);
	op_free(op);
}

const struct receiver_type receiver_alertmanager = {
    .name = "alertmanager",
    .parse = am_parse,
    .free = am_free,
    .send = am_send,
    .cancel = am_cancel,
};
