/*
 * The remote-write sender; see remote_write.h.
 */
#include "collector/remote_write.h"

#include "autoconf.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerter/backoff.h"
#include "alerter/receiver.h"
#include "collector/clock.h"
#include "collector/log.h"
#include "collector/remote_write_config.h"
#include "collector/remote_write_encode.h"
#include "collector/remote_write_queue.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"
#include "probes/curlev.h"

/* Labels of one sample: __name__, the series' labels and the external labels. */
#define REMOTE_WRITE_MAX_LABELS 128
/* Response bytes kept for the log line of a rejected batch. */
#define REMOTE_WRITE_RESPONSE_KEEP 256
/* Distinct response codes counted per endpoint; further ones count as "other". */
#define REMOTE_WRITE_MAX_CODES 16

struct code_count {
	char code[8];
	uint64_t count;
};

struct endpoint {
	struct remote_write *rw;
	char *name;
	char *url;
	struct label *external_labels;
	size_t external_label_count;
	char *username;
	char *password;
	char *bearer_token;
	uint64_t timeout_ms;
	size_t batch_size;
	uint64_t flush_interval_ms;
	struct backoff_policy backoff;
	char ids[256]; /* endpoint=NAME, for log lines */

	struct remote_write_queue *queue;
	struct event *timer;
	CURL *easy;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
	char response[REMOTE_WRITE_RESPONSE_KEEP];
	size_t response_len;
	bool in_flight;
	bool waiting_retry;              /* a failed batch waits for its retry timer */
	struct remote_write_batch batch; /* the batch being sent or retried */
	char *body;                      /* its encoded request body, NULL when none */
	size_t body_len;
	unsigned retry;  /* failed attempts of the current batch */
	size_t appended; /* samples queued since the last read */
	struct throttle log_throttle;

	uint64_t sent;
	uint64_t failed;
	uint64_t append_failed;
	struct code_count codes[REMOTE_WRITE_MAX_CODES];
	size_t code_count;
};

struct remote_write {
	struct event_base *base;
	struct endpoint *endpoints;
	size_t endpoint_count;
	struct backoff_random random;
};

static const struct metric_desc d_queue_bytes = {"tocsin_remote_write_queue_bytes",
						 "Bytes of the remote-write queue's segment files.",
						 METRIC_GAUGE};
static const struct metric_desc d_queue_samples = {
    "tocsin_remote_write_queue_samples", "Samples queued and not yet acknowledged.", METRIC_GAUGE};
static const struct metric_desc d_sent = {"tocsin_remote_write_samples_sent_total",
					  "Samples acknowledged by the receiver.", METRIC_COUNTER};
static const struct metric_desc d_failed = {
    "tocsin_remote_write_samples_failed_total",
    "Samples of batches the receiver rejected with a status that is not retried.", METRIC_COUNTER};
static const struct metric_desc d_dropped = {
    "tocsin_remote_write_samples_dropped_total",
    "Samples deleted unsent because the queue was full or could not be written.", METRIC_COUNTER};
static const struct metric_desc d_requests = {
    "tocsin_remote_write_requests_total",
    "Requests by response status code (\"error\": no response).", METRIC_COUNTER};

static void schedule(struct endpoint *ep, uint64_t delay_ms)
{
	struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};

	evtimer_add(ep->timer, &tv);
}

static void count_code(struct endpoint *ep, const char *code)
{
	for (size_t i = 0; i < ep->code_count; i++) {
		if (strcmp(ep->codes[i].code, code) == 0) {
			ep->codes[i].count++;
			return;
		}
	}
	if (ep->code_count == REMOTE_WRITE_MAX_CODES)
		code = "other";
	for (size_t i = 0; i < ep->code_count; i++) {
		if (strcmp(ep->codes[i].code, code) == 0) {
			ep->codes[i].count++;
			return;
		}
	}
	if (ep->code_count == REMOTE_WRITE_MAX_CODES) /* "other" itself did not fit */
		ep->code_count--;
	snprintf(ep->codes[ep->code_count].code, sizeof(ep->codes[0].code), "%s", code);
	ep->codes[ep->code_count++].count = 1;
}

static size_t response_received(char *data, size_t size, size_t n, void *arg)
{
	struct endpoint *ep = arg;
	size_t len = size * n;
	size_t room = sizeof(ep->response) - 1 - ep->response_len;
	size_t take = len < room ? len : room;

	memcpy(ep->response + ep->response_len, data, take);
	ep->response_len += take;
	ep->response[ep->response_len] = '\0';
	return len;
}

static void set_request_options(struct endpoint *ep)
{
	CURL *easy = ep->easy;

	ep->headers = curl_slist_append(ep->headers, "Content-Encoding: snappy");
	ep->headers = curl_slist_append(ep->headers, "Content-Type: application/x-protobuf");
	ep->headers = curl_slist_append(ep->headers, "X-Prometheus-Remote-Write-Version: 0.1.0");
	/* No "Expect: 100-continue" round trip for large bodies. */
	ep->headers = curl_slist_append(ep->headers, "Expect:");
	curl_easy_setopt(easy, CURLOPT_URL, ep->url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, ep->errbuf);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "tocsin/" PACKAGE_VERSION);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, ep->headers);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, response_received);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, ep);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)ep->timeout_ms);
	/* The empty value makes curl ignore proxy environment variables. */
	curl_easy_setopt(easy, CURLOPT_PROXY, "");
	if (ep->username != NULL) {
		curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(easy, CURLOPT_USERNAME, ep->username);
		curl_easy_setopt(easy, CURLOPT_PASSWORD, ep->password);
	} else if (ep->bearer_token != NULL) {
		curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(easy, CURLOPT_XOAUTH2_BEARER, ep->bearer_token);
	}
}

static void drop_body(struct endpoint *ep)
{
	free(ep->body);
	ep->body = NULL;
	ep->body_len = 0;
	ep->retry = 0;
}

/* Reads and encodes the next batch unless one is pending. Returns false when idle. */
static bool prepare_batch(struct endpoint *ep)
{
	if (ep->body != NULL)
		return true;
	ep->appended = 0;
	if (remote_write_queue_read(ep->queue, ep->batch_size, &ep->batch) == 0)
		return false;
	if (remote_write_encode(ep->batch.samples, ep->batch.count, &ep->body, &ep->body_len) < 0) {
		/* snappy_compress() fails only when the output buffer is smaller than
		 * snappy_max_compressed_length(), which the encoder allocates. */
		log_error("remote_write", ep->ids,
			  "cannot compress a batch of %zu samples; dropped it", ep->batch.count);
		ep->failed += ep->batch.count;
		remote_write_queue_ack(ep->queue, &ep->batch);
		return false;
	}
	return true;
}

static void request_done(CURL *easy, CURLcode result, void *arg);

static void send_next(struct endpoint *ep)
{
	if (ep->in_flight || ep->waiting_retry)
		return;
	if (!prepare_batch(ep)) {
		schedule(ep, ep->flush_interval_ms);
		return;
	}
	ep->response_len = 0;
	ep->response[0] = '\0';
	ep->errbuf[0] = '\0';
	curl_easy_setopt(ep->easy, CURLOPT_POSTFIELDS, ep->body);
	curl_easy_setopt(ep->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ep->body_len);
	if (curlev_add(ep->rw->base, ep->easy, request_done, ep) < 0) {
		log_error("remote_write", ep->ids, "cannot start a request; retrying in %llu ms",
			  (unsigned long long)ep->flush_interval_ms);
		schedule(ep, ep->flush_interval_ms);
		return;
	}
	ep->in_flight = true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct endpoint *ep = arg;

	(void)fd;
	(void)what;
	ep->waiting_retry = false;
	/* While a batch waits for its retry no read flushes the queue, so flush here. */
	remote_write_queue_flush(ep->queue);
	send_next(ep);
}

static void log_failure(struct endpoint *ep, const char *what, const char *detail)
{
	uint64_t suppressed = 0;

	if (!throttle_fail(&ep->log_throttle, clock_monotonic_ms(), &suppressed))
		return;
	if (suppressed > 0)
		log_warn("remote_write", ep->ids, "%s: %s (%llu similar failures suppressed)", what,
			 detail, (unsigned long long)suppressed);
	else
		log_warn("remote_write", ep->ids, "%s: %s", what, detail);
}

static void retry_later(struct endpoint *ep, int64_t retry_after_ms, const char *detail)
{
	int64_t delay = retry_after_ms >= 0 ? backoff_retry_after(&ep->backoff, retry_after_ms)
					    : backoff_delay(&ep->backoff, ep->retry,
							    backoff_random_next, &ep->rw->random);
	char what[128];

	snprintf(what, sizeof(what), "batch of %zu samples not delivered, retry %u in %lld ms",
		 ep->batch.count, ep->retry + 1, (long long)delay);
	log_failure(ep, what, detail);
	ep->retry++;
	ep->waiting_retry = true;
	schedule(ep, (uint64_t)delay);
}

/* Retry-After in ms, or -1 when the response has none or it is invalid. */
static int64_t retry_after_ms(CURL *easy)
{
	struct curl_header *h = NULL;

	if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return -1;
	return receiver_parse_retry_after(h->value, clock_wall_ms());
}

static void request_done(CURL *easy, CURLcode result, void *arg)
{
	struct endpoint *ep = arg;
	long status = 0;
	char code[8];
	char detail[CURL_ERROR_SIZE + REMOTE_WRITE_RESPONSE_KEEP + 32];

	ep->in_flight = false;
	if (result != CURLE_OK) {
		count_code(ep, "error");
		snprintf(detail, sizeof(detail), "%s",
			 ep->errbuf[0] != '\0' ? ep->errbuf : curl_easy_strerror(result));
		retry_later(ep, -1, detail);
		return;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	snprintf(code, sizeof(code), "%ld", status);
	count_code(ep, code);
	snprintf(detail, sizeof(detail), "HTTP %ld: %.200s", status, ep->response);
	if (status >= 200 && status < 300) {
		uint64_t failures = 0;

		ep->sent += ep->batch.count;
		remote_write_queue_ack(ep->queue, &ep->batch);
		drop_body(ep);
		if (throttle_ok(&ep->log_throttle, &failures))
			log_notice("remote_write", ep->ids,
				   "delivering again after %llu failed requests",
				   (unsigned long long)failures);
		/* Catch up at once when a full batch waits; else wait for the next flush. */
		if (ep->appended >= ep->batch_size || ep->batch.count == ep->batch_size)
			schedule(ep, 0);
		else
			schedule(ep, ep->flush_interval_ms);
		return;
	}
	if (status >= 500 || status == 429) {
		retry_later(ep, retry_after_ms(easy), detail);
		return;
	}
	{
		char what[128];

		snprintf(what, sizeof(what), "receiver rejected a batch of %zu samples; dropped it",
			 ep->batch.count);
		log_failure(ep, what, detail);
	}
	ep->failed += ep->batch.count;
	remote_write_queue_ack(ep->queue, &ep->batch);
	drop_body(ep);
	schedule(ep, 0);
}

static void copy_settings(struct endpoint *ep, const struct remote_write_endpoint_config *c)
{
	ep->name = xstrdup(c->name);
	ep->url = xstrdup(c->url);
	ep->external_label_count = c->external_label_count;
	ep->external_labels = xcalloc(c->external_label_count + 1, sizeof(struct label));
	for (size_t i = 0; i < c->external_label_count; i++)
		ep->external_labels[i] = (struct label){xstrdup(c->external_labels[i].name),
							xstrdup(c->external_labels[i].value)};
	ep->username = c->username != NULL ? xstrdup(c->username) : NULL;
	ep->password = c->password != NULL ? xstrdup(c->password) : NULL;
	ep->bearer_token = c->bearer_token != NULL ? xstrdup(c->bearer_token) : NULL;
	ep->timeout_ms = c->timeout_ms;
	ep->batch_size = (size_t)c->batch_size;
	ep->flush_interval_ms = c->flush_interval_ms;
	ep->backoff = (struct backoff_policy){.initial_ms = (int64_t)c->retry_initial_ms,
					      .max_ms = (int64_t)c->retry_max_ms};
	log_ids(ep->ids, sizeof(ep->ids), "endpoint", ep->name, NULL);
}

static void free_secret(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static void endpoint_clear(struct endpoint *ep)
{
	if (ep->in_flight)
		curlev_remove(ep->easy);
	if (ep->timer != NULL)
		event_free(ep->timer);
	if (ep->easy != NULL)
		curl_easy_cleanup(ep->easy);
	curl_slist_free_all(ep->headers);
	remote_write_queue_close(ep->queue);
	remote_write_batch_free(&ep->batch);
	free(ep->body);
	free(ep->name);
	free(ep->url);
	for (size_t i = 0; i < ep->external_label_count; i++) {
		free((char *)ep->external_labels[i].name);
		free((char *)ep->external_labels[i].value);
	}
	free(ep->external_labels);
	free(ep->username);
	free_secret(ep->password);
	free_secret(ep->bearer_token);
}

static bool endpoint_start(struct remote_write *rw, struct endpoint *ep,
			   const struct remote_write_endpoint_config *c, const char *data_dir)
{
	char *dir = c->queue_dir != NULL ? xstrdup(c->queue_dir)
					 : xasprintf("%s/remote-write/%s", data_dir, c->name);
	char *error = NULL;
	struct remote_write_queue_stats st;

	ep->rw = rw;
	copy_settings(ep, c);
	throttle_init(&ep->log_throttle, THROTTLE_DEFAULT_INITIAL_MS, 10 * 60 * 1000);
	ep->queue = remote_write_queue_open(dir, c->queue_max_bytes, &error);
	ep->easy = curl_easy_init();
	if (ep->queue == NULL || ep->easy == NULL) {
		log_error("remote_write", ep->ids,
			  "%s; this endpoint receives nothing until a restart",
			  error != NULL ? error : "cannot create a curl handle");
		free(error);
		free(dir);
		endpoint_clear(ep);
		return false;
	}
	set_request_options(ep);
	ep->timer = evtimer_new(rw->base, on_timer, ep);
	remote_write_queue_get_stats(ep->queue, &st);
	log_notice("remote_write", ep->ids,
		   "started: sending to %s, the queue in %s contains %llu samples", ep->url, dir,
		   (unsigned long long)st.samples);
	free(dir);
	schedule(ep, st.samples > 0 ? 0 : ep->flush_interval_ms);
	return true;
}

struct remote_write *remote_write_new(struct event_base *base,
				      const struct remote_write_config *cfg, const char *data_dir)
{
	struct remote_write *rw;

	if (cfg == NULL || cfg->endpoint_count == 0)
		return NULL;
	rw = xcalloc(1, sizeof(*rw));
	rw->base = base;
	backoff_random_seed_system(&rw->random);
	rw->endpoints = xcalloc(cfg->endpoint_count, sizeof(*rw->endpoints));
	curlev_ref();
	for (size_t i = 0; i < cfg->endpoint_count; i++) {
		struct endpoint *ep = &rw->endpoints[rw->endpoint_count];

		if (endpoint_start(rw, ep, &cfg->endpoints[i], data_dir))
			rw->endpoint_count++;
		else
			memset(ep, 0, sizeof(*ep));
	}
	return rw;
}

static int compare_label(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

/* __name__, the series' labels, and each external label the series does not have, sorted
 * by name in byte order as the specification requires. Returns the count, 0 when too many. */
static size_t build_labels(const struct endpoint *ep, const struct series *s, struct label *out)
{
	size_t n = 0;

	if (1 + s->label_count + ep->external_label_count > REMOTE_WRITE_MAX_LABELS)
		return 0;
	out[n++] = (struct label){"__name__", s->family->name};
	for (size_t i = 0; i < s->label_count; i++)
		out[n++] = s->labels[i];
	for (size_t i = 0; i < ep->external_label_count; i++)
		if (series_label(s, ep->external_labels[i].name) == NULL)
			out[n++] = ep->external_labels[i];
	qsort(out, n, sizeof(*out), compare_label);
	return n;
}

void remote_write_append(struct remote_write *rw, const struct series *s, int64_t time_ms,
			 double value)
{
	struct label labels[REMOTE_WRITE_MAX_LABELS];

	if (rw == NULL)
		return;
	for (size_t i = 0; i < rw->endpoint_count; i++) {
		struct endpoint *ep = &rw->endpoints[i];
		struct remote_write_sample smp = {time_ms, value, labels, 0};

		smp.label_count = build_labels(ep, s, labels);
		if (smp.label_count == 0 || remote_write_queue_append(ep->queue, &smp) < 0) {
			ep->append_failed++;
			continue;
		}
		/* A full batch goes out at once instead of at the next flush. */
		if (++ep->appended == ep->batch_size && !ep->in_flight && !ep->waiting_retry)
			schedule(ep, 0);
	}
}

static void set_metric(struct series_registry *reg, const struct metric_desc *d,
		       const struct label *labels, size_t n, double value, int64_t now_ms)
{
	struct series *s = series_intern(reg, d, labels, n);

	if (s != NULL)
		series_set(s, value, now_ms);
}

void remote_write_refresh_metrics(struct remote_write *rw, struct series_registry *reg,
				  int64_t now_ms)
{
	if (rw == NULL)
		return;
	for (size_t i = 0; i < rw->endpoint_count; i++) {
		struct endpoint *ep = &rw->endpoints[i];
		struct remote_write_queue_stats st;
		struct label l[2] = {{"name", ep->name}, {"code", NULL}};

		remote_write_queue_get_stats(ep->queue, &st);
		set_metric(reg, &d_queue_bytes, l, 1, (double)st.bytes, now_ms);
		set_metric(reg, &d_queue_samples, l, 1, (double)st.samples, now_ms);
		set_metric(reg, &d_sent, l, 1, (double)ep->sent, now_ms);
		set_metric(reg, &d_failed, l, 1, (double)ep->failed, now_ms);
		set_metric(reg, &d_dropped, l, 1, (double)(st.dropped_samples + ep->append_failed),
			   now_ms);
		for (size_t k = 0; k < ep->code_count; k++) {
			l[1].value = ep->codes[k].code;
			set_metric(reg, &d_requests, l, 2, (double)ep->codes[k].count, now_ms);
		}
	}
}

void remote_write_free(struct remote_write *rw)
{
	if (rw == NULL)
		return;
	for (size_t i = 0; i < rw->endpoint_count; i++)
		endpoint_clear(&rw->endpoints[i]);
	free(rw->endpoints);
	curlev_unref();
	free(rw);
}
