/*
 * HTTP delivery shared by the `webhook` and `alertmanager` receivers. It reads the
 * connection options (timeout, TLS, authentication) from the config, sends one JSON POST
 * on the curl multi handle of probes/curlev.c, and maps the response or transport error
 * to a delivery outcome. Loop thread only.
 */
#ifndef TOCSIN_WEBHOOK_H
#define TOCSIN_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerter/receiver.h"
#include "collector/throttle.h"
#include "probes/http_client.h"

struct cfg_map;
struct event_base;

/*
 * The `webhook` receiver type, listed in alerter/receiver.c. An operation in flight points
 * into its receiver's state, so free() must come after every operation ended or was
 * cancelled. The same applies to receiver_alertmanager.
 */
extern const struct receiver_type receiver_webhook;

#define WEBHOOK_DEFAULT_TIMEOUT_MS 10000

/* Connection options of one receiver. The secrets never reach a log line. */
struct webhook_http {
	const char *module; /* the receiver type, as the module of log lines */
	int64_t timeout_ms;
	struct http_client_tls tls;
	char *username; /* basic auth */
	char *password;
	char *bearer_token;
	struct throttle bug_log; /* throttles the "endsAt before startsAt" error line */
};

/*
 * Reads timeout, tls and auth from m, recording each error with its position; module
 * (a string literal) names the receiver type in log lines. Returns 0, or -1 when any
 * option was invalid; webhook_http_clear() is needed in both cases.
 */
int webhook_http_parse(struct cfg_map *m, const char *module, struct webhook_http *h);
void webhook_http_clear(struct webhook_http *h);

/* A URL prepared for curl: where the request goes, and how tls.server_name redirects it. */
struct webhook_url {
	char *url;         /* as configured, with any user:password@ redacted: for logs */
	char *request_url; /* given to curl; the host is server_name when that is set */
	char *connect_to;  /* "server_name:port:host:port" for CURLOPT_CONNECT_TO, or NULL */
	char *host_header; /* "Host: host[:port]" keeping the URL's authority, or NULL */
};

/*
 * Checks that url is an http or https URL and fills u for h's server_name. Returns 0, or -1
 * with the problem written to error (for a config message); webhook_url_clear() is needed
 * in both cases.
 */
int webhook_url_prepare(const char *url, const struct webhook_http *h, struct webhook_url *u,
			char *error, size_t size);
void webhook_url_clear(struct webhook_url *u);

/*
 * Called once when a POST ends, with the outcome; `url` is the POST's webhook_url for the
 * caller's logs. The POST is freed right after the callback returns.
 */
typedef void webhook_post_done_fn(void *arg, const struct webhook_url *url,
				  const struct delivery_outcome *outcome);

struct webhook_post;

/*
 * Starts POSTing the JSON `body` (copied) to u with h's options and `headers` ("Name:
 * value" lines, NULL-terminated, may be NULL). timeout_ms bounds the whole request. h and
 * u must stay valid until done() or webhook_post_cancel(). Returns NULL, with the reason in
 * *failed, when curl rejects the request; done() is then never called.
 */
struct webhook_post *webhook_post_start(struct webhook_http *h, const struct webhook_url *u,
					struct event_base *base, const char *body,
					const char *const *headers, int64_t timeout_ms,
					webhook_post_done_fn *done, void *arg,
					struct delivery_outcome *failed);

/* Stops a POST in flight and frees it; done() is not called. Not from inside done(). */
void webhook_post_cancel(struct webhook_post *p);

/*
 * Maps an HTTP response to an outcome: 2xx OK; 408, 429 and 5xx RETRY (reason "408", "429",
 * "5xx"), with retry_after_ms from `retry_after` (the header's value, may be NULL) for 429
 * and 503. Every other status is PERMANENT ("4xx", "3xx", "1xx"). The detail contains the status
 * line and the first 200 bytes of the body. now_ms is the wall clock in Unix milliseconds,
 * for a Retry-After given as an HTTP-date.
 */
void webhook_outcome_from_status(long status, const char *status_line, const char *retry_after,
				 const char *body, size_t body_length, int64_t now_ms,
				 struct delivery_outcome *out);

/* True for Alertmanager's 400 reply to an alert whose endsAt precedes its startsAt. */
bool webhook_body_reports_time_order(const char *body, size_t body_length);

#endif
