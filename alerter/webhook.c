/*
 * The `webhook` receiver: one JSON POST per notification, in Alertmanager's webhook
 * format (default), as a Slack message or as a PagerDuty event, optionally signed with
 * HMAC-SHA256. Also the HTTP delivery that the `alertmanager` receiver shares (see
 * webhook.h): options, one POST on the curl multi handle, and the response's outcome.
 *
 * Every request carries an Idempotency-Key header with the notification's key, so a
 * receiver can drop the duplicate that at-least-once delivery sends after a retry whose
 * first attempt did arrive.
 */
#include "alerter/webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alerter/receiver.h"
#include "alerter/webhook_payload.h"
#include "autoconf.h"
#include "collector/cfg.h"
#include "collector/clock.h"
#include "collector/log.h"
#include "collector/secret.h"
#include "collector/xalloc.h"
#include "probes/curlev.h"

/* Maximum size of a password, token, HMAC key or routing key file, in bytes. */
#define WEBHOOK_SECRET_MAX 4096
/* Response bytes kept for the detail and for recognizing Alertmanager's errors. */
#define WEBHOOK_RESPONSE_KEEP 4096
/* Response bytes quoted in an outcome's detail. */
#define WEBHOOK_DETAIL_BODY 200
/* First quiet interval of the throttle of the endsAt-before-startsAt error line. */
#define WEBHOOK_BUG_LOG_MS (10 * 60 * 1000)

#define WEBHOOK_DEFAULT_HMAC_HEADER "X-Tocsin-Signature"

/* ---- options shared with the alertmanager receiver ---- */

static void read_basic_auth(struct cfg_map *auth, struct webhook_http *h, bool *failed)
{
	struct cfg_map basic;
	char *path = NULL;
	int rc = cfg_get_map(auth, "basic", &basic);

	if (rc < 0)
		*failed = true;
	if (rc == 1) {
		if (cfg_get_string(&basic, "username", &h->username) != 1) {
			if (!cfg_has(&basic, "username"))
				cfg_error(&basic, NULL, "username is missing");
			*failed = true;
		}
		rc = cfg_get_string(&basic, "password_file", &path);
		if (rc == 1)
			h->password =
			    secret_read_file(&basic, "password_file", path, WEBHOOK_SECRET_MAX);
		else if (rc == 0)
			h->password = xstrdup(""); /* a user name alone is valid basic auth */
		if (rc < 0 || (rc == 1 && h->password == NULL))
			*failed = true;
		free(path);
	}
	cfg_map_finish(&basic);
}

static void read_auth(struct cfg_map *m, struct webhook_http *h, bool *failed)
{
	struct cfg_map auth;
	char *path = NULL;
	int rc = cfg_get_map(m, "auth", &auth);

	if (rc < 0)
		*failed = true;
	if (rc == 1) {
		read_basic_auth(&auth, h, failed);
		rc = cfg_get_string(&auth, "bearer_token_file", &path);
		if (rc < 0)
			*failed = true;
		if (rc == 1) {
			h->bearer_token =
			    secret_read_file(&auth, "bearer_token_file", path, WEBHOOK_SECRET_MAX);
			if (h->bearer_token == NULL)
				*failed = true;
			if (cfg_has(&auth, "basic")) {
				cfg_error(&auth, "bearer_token_file",
					  "basic and bearer_token_file are mutually exclusive; "
					  "keep one of them");
				*failed = true;
			}
		}
		free(path);
	}
	cfg_map_finish(&auth);
}

int webhook_http_parse(struct cfg_map *m, const char *module, struct webhook_http *h)
{
	uint64_t timeout = WEBHOOK_DEFAULT_TIMEOUT_MS;
	bool failed = false;

	h->module = module;
	throttle_init(&h->bug_log, WEBHOOK_BUG_LOG_MS, THROTTLE_DEFAULT_MAX_MS);
	if (cfg_get_duration_ms(m, "timeout", &timeout) < 0) {
		failed = true;
	} else if (timeout == 0) {
		cfg_error(m, "timeout", "must be longer than 0s; the default is 10s");
		failed = true;
	}
	h->timeout_ms = (int64_t)timeout;
	if (http_client_tls_parse(m, &h->tls) < 0)
		failed = true;
	read_auth(m, h, &failed);
	return failed ? -1 : 0;
}

void webhook_http_clear(struct webhook_http *h)
{
	http_client_tls_clear(&h->tls);
	free(h->username);
	secret_free(h->password);
	secret_free(h->bearer_token);
	memset(h, 0, sizeof(*h));
}

int webhook_url_prepare(const char *url, const struct webhook_http *h, struct webhook_url *u,
			char *error, size_t size)
{
	CURLU *cu = curl_url();
	char *scheme = NULL;
	char *host = NULL;
	char q[CFG_QUOTE_SIZE];
	int rc = -1;

	u->url = http_client_redact_url(url);
	if (curl_url_set(cu, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(cu, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(cu, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(error, size,
			 "%s is not a valid URL; expected http://HOST[:PORT]/PATH or https://...",
			 cfg_quote(u->url, q, sizeof(q)));
		goto out;
	}
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
		snprintf(error, size, "scheme %s is not supported; use http or https",
			 cfg_quote(scheme, q, sizeof(q)));
		goto out;
	}
	if (h->tls.server_name != NULL) {
		rc = http_client_apply_server_name(cu, h->tls.server_name, &u->request_url,
						   &u->connect_to, &u->host_header);
		if (rc < 0) {
			snprintf(error, size, "tls.server_name %s is not a valid host name",
				 cfg_quote(h->tls.server_name, q, sizeof(q)));
		}
		goto out;
	}
	u->request_url = xstrdup(url);
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(cu);
	return rc;
}

void webhook_url_clear(struct webhook_url *u)
{
	free(u->url);
	free(u->request_url);
	free(u->connect_to);
	free(u->host_header);
	memset(u, 0, sizeof(*u));
}

/* ---- outcomes ---- */

static void outcome_set(struct delivery_outcome *out, enum delivery_result result,
			const char *reason)
{
	out->result = result;
	out->retry_after_ms = 0;
	snprintf(out->reason, sizeof(out->reason), "%s", reason);
	out->detail[0] = '\0';
}

/* Appends up to WEBHOOK_DETAIL_BODY bytes of body. Control characters become spaces, and
 * the cut falls on a UTF-8 sequence boundary. */
static void detail_add_body(char *detail, size_t size, const char *body, size_t body_length)
{
	size_t used = strlen(detail);
	size_t n = body_length < WEBHOOK_DETAIL_BODY ? body_length : WEBHOOK_DETAIL_BODY;

	if (n < body_length) {
		while (n > 0 && ((unsigned char)body[n] & 0xC0) == 0x80)
			n--;
	}
	if (n == 0 || used + 3 >= size)
		return;
	memcpy(detail + used, ": ", 2);
	used += 2;
	for (size_t i = 0; i < n && used + 1 < size; i++) {
		unsigned char c = (unsigned char)body[i];

		detail[used++] = c < 0x20 || c == 0x7F ? ' ' : (char)c;
	}
	detail[used] = '\0';
}

void webhook_outcome_from_status(long status, const char *status_line, const char *retry_after,
				 const char *body, size_t body_length, int64_t now_ms,
				 struct delivery_outcome *out)
{
	if (status >= 200 && status <= 299)
		outcome_set(out, DELIVERY_OK, "2xx");
	else if (status == 408)
		outcome_set(out, DELIVERY_RETRY, "408");
	else if (status == 429)
		outcome_set(out, DELIVERY_RETRY, "429");
	else if (status >= 500 && status <= 599)
		outcome_set(out, DELIVERY_RETRY, "5xx");
	else if (status >= 400 && status <= 499)
		outcome_set(out, DELIVERY_PERMANENT, "4xx");
	else if (status >= 300 && status <= 399)
		outcome_set(out, DELIVERY_PERMANENT, "3xx"); /* redirects are not followed */
	else
		outcome_set(out, DELIVERY_PERMANENT, "1xx");

	if ((status == 429 || status == 503) && retry_after != NULL) {
		int64_t delay = receiver_parse_retry_after(retry_after, now_ms);

		out->retry_after_ms = delay > 0 ? delay : 0;
	}
	if (status_line != NULL && status_line[0] != '\0')
		snprintf(out->detail, sizeof(out->detail), "%s", status_line);
	else
		snprintf(out->detail, sizeof(out->detail), "HTTP status %ld", status);
	if (out->result != DELIVERY_OK)
		detail_add_body(out->detail, sizeof(out->detail), body, body_length);
}

bool webhook_body_reports_time_order(const char *body, size_t body_length)
{
	return body != NULL && memmem(body, body_length, "start time must be before end time",
				      strlen("start time must be before end time")) != NULL;
}

static bool ssl_error(CURLcode code)
{
	switch (code) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
		return true;
	default:
		return false;
	}
}

/* Every transport error is worth a retry, because the server may be back by then. */
static void outcome_from_transport(CURLcode code, long os_errno, const char *curl_error,
				   struct delivery_outcome *out)
{
	const char *text = curl_error[0] != '\0' ? curl_error : curl_easy_strerror(code);
	const char *reason = "error";

	if (code == CURLE_OPERATION_TIMEDOUT)
		reason = "timeout";
	else if (code == CURLE_COULDNT_CONNECT)
		reason = os_errno == ECONNREFUSED ? "refused" : "connect";
	else if (code == CURLE_COULDNT_RESOLVE_HOST)
		reason = "dns";
	else if (ssl_error(code))
		reason = "tls";
	else if (code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR ||
		 code == CURLE_GOT_NOTHING || code == CURLE_PARTIAL_FILE)
		reason = "reset"; /* the server closed or reset the connection mid-request */
	outcome_set(out, DELIVERY_RETRY, reason);
	snprintf(out->detail, sizeof(out->detail), "%s", text);
}

/* ---- one POST ---- */

struct webhook_post {
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *connect_to;
	char *body;
	struct webhook_http *http;
	const struct webhook_url *url;
	webhook_post_done_fn *done;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
	char status_line[128];
	char response[WEBHOOK_RESPONSE_KEEP + 1];
	size_t response_length;
};

static size_t response_received(char *data, size_t size, size_t count, void *arg)
{
	struct webhook_post *p = arg;
	size_t n = size * count;
	size_t room = WEBHOOK_RESPONSE_KEEP - p->response_length;
	size_t keep = n < room ? n : room;

	/* The rest of a long response is read and dropped, so the connection can be reused. */
	memcpy(p->response + p->response_length, data, keep);
	p->response_length += keep;
	p->response[p->response_length] = '\0';
	return n;
}

static size_t header_received(char *data, size_t size, size_t count, void *arg)
{
	struct webhook_post *p = arg;
	size_t n = size * count;

	/* The last status line wins: an interim "100 Continue" precedes the real one. */
	if (n > 5 && strncmp(data, "HTTP/", 5) == 0) {
		size_t len = n;

		while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
			len--;
		if (len >= sizeof(p->status_line))
			len = sizeof(p->status_line) - 1;
		memcpy(p->status_line, data, len);
		p->status_line[len] = '\0';
	}
	return n;
}

static bool header_listed(const char *const *headers, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
		if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':')
			return true;
	}
	return false;
}

static void post_set_headers(struct webhook_post *p, const char *const *headers)
{
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
		p->headers = curl_slist_append(p->headers, headers[i]);
	if (!header_listed(headers, "Content-Type"))
		p->headers = curl_slist_append(p->headers, "Content-Type: application/json");
	if (p->url->host_header != NULL && !header_listed(headers, "Host"))
		p->headers = curl_slist_append(p->headers, p->url->host_header);
	/* "Expect: 100-continue" would wait for servers that never send the interim reply. */
	p->headers = curl_slist_append(p->headers, "Expect:");
}

static void post_set_tls_and_auth(struct webhook_post *p)
{
	const struct webhook_http *h = p->http;
	CURL *easy = p->easy;

	http_client_tls_apply(easy, &h->tls);
	if (p->url->connect_to != NULL) {
		p->connect_to = curl_slist_append(NULL, p->url->connect_to);
		curl_easy_setopt(easy, CURLOPT_CONNECT_TO, p->connect_to);
	}
	if (h->username != NULL) {
		curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(easy, CURLOPT_USERNAME, h->username);
		curl_easy_setopt(easy, CURLOPT_PASSWORD, h->password);
	} else if (h->bearer_token != NULL) {
		curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(easy, CURLOPT_XOAUTH2_BEARER, h->bearer_token);
	}
}

static void post_free(struct webhook_post *p)
{
	curl_easy_cleanup(p->easy);
	curl_slist_free_all(p->headers);
	curl_slist_free_all(p->connect_to);
	free(p->body);
	free(p);
}

static void log_time_order_bug(struct webhook_post *p, const struct delivery_outcome *outcome)
{
	char ids[512];
	uint64_t suppressed = 0;

	if (!throttle_fail(&p->http->bug_log, clock_monotonic_ms(), &suppressed))
		return;
	log_error(p->http->module, log_ids(ids, sizeof(ids), "url", p->url->url, NULL),
		  "BUG: the Alertmanager rejected an alert whose endsAt precedes its startsAt; "
		  "tocsin must never send one, so please report this line (%s; %llu similar "
		  "errors suppressed)",
		  outcome->detail, (unsigned long long)suppressed);
}

static void post_finished(CURL *easy, CURLcode code, void *arg)
{
	struct webhook_post *p = arg;
	struct delivery_outcome outcome;

	if (code == CURLE_OK) {
		long status = 0;
		struct curl_header *retry_after = NULL;

		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
		if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &retry_after) !=
		    CURLHE_OK)
			retry_after = NULL;
		webhook_outcome_from_status(status, p->status_line,
					    retry_after ? retry_after->value : NULL, p->response,
					    p->response_length, clock_wall_ms(), &outcome);
		if (status == 400 &&
		    webhook_body_reports_time_order(p->response, p->response_length))
			log_time_order_bug(p, &outcome);
	} else {
		long os_errno = 0;

		curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
		outcome_from_transport(code, os_errno, p->errbuf, &outcome);
	}
	p->done(p->arg, p->url, &outcome);
	post_free(p);
}

struct webhook_post *webhook_post_start(struct webhook_http *h, const struct webhook_url *u,
					struct event_base *base, const char *body,
					const char *const *headers, int64_t timeout_ms,
					webhook_post_done_fn *done, void *arg,
					struct delivery_outcome *failed)
{
	struct webhook_post *p = xcalloc(1, sizeof(*p));
	CURL *easy = curl_easy_init();

	if (easy == NULL) {
		free(p);
		outcome_set(failed, DELIVERY_RETRY, "error");
		snprintf(failed->detail, sizeof(failed->detail), "curl_easy_init failed");
		return NULL;
	}
	p->easy = easy;
	p->http = h;
	p->url = u;
	p->done = done;
	p->arg = arg;
	p->body = xstrdup(body);
	curl_easy_setopt(easy, CURLOPT_URL, u->request_url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "tocsin/" PACKAGE_VERSION);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, p->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(p->body));
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, response_received);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, p);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_received);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, p);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 1));
	/* No option names a proxy yet. The empty value makes curl ignore environment variables
	 * such as https_proxy. */
	curl_easy_setopt(easy, CURLOPT_PROXY, "");
	post_set_headers(p, headers);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, p->headers);
	post_set_tls_and_auth(p);

	if (curlev_add(base, easy, post_finished, p) < 0) {
		post_free(p);
		outcome_set(failed, DELIVERY_RETRY, "error");
		snprintf(failed->detail, sizeof(failed->detail), "cannot start the request to %s",
			 u->url);
		return NULL;
	}
	return p;
}

void webhook_post_cancel(struct webhook_post *p)
{
	if (p == NULL)
		return;
	curlev_remove(p->easy);
	post_free(p);
}

/* ---- the webhook receiver ---- */

struct webhook_state {
	struct webhook_http http;
	struct webhook_url url;
	char **headers; /* "Name: value", NULL-terminated */
	size_t header_count;
	char *hmac_secret; /* NULL: requests are not signed */
	char *hmac_header;
	struct webhook_payload_options payload;
	char *routing_key; /* pagerduty */
	char *channel;     /* slack */
	char *username;    /* slack */
};

/* One delivery in flight; handed out as the opaque struct receiver_op. */
struct webhook_op {
	struct webhook_post *post;
	receiver_done_fn *done;
	void *arg;
};

static void read_hmac(struct cfg_map *m, struct webhook_state *st, bool *failed)
{
	struct cfg_map hmac;
	char *path = NULL;
	char q[CFG_QUOTE_SIZE];
	int rc = cfg_get_map(m, "hmac", &hmac);

	if (rc < 0)
		*failed = true;
	if (rc == 1) {
		rc = cfg_get_string(&hmac, "secret_file", &path);
		if (rc == 0)
			cfg_error(&hmac, NULL, "secret_file is missing; hmac needs the key's file");
		if (rc == 1)
			st->hmac_secret =
			    secret_read_file(&hmac, "secret_file", path, WEBHOOK_SECRET_MAX);
		if (rc != 1 || st->hmac_secret == NULL)
			*failed = true;
		free(path);
		if (cfg_get_string(&hmac, "header", &st->hmac_header) < 0)
			*failed = true;
		if (st->hmac_header != NULL && !http_client_valid_token(st->hmac_header)) {
			cfg_error(&hmac, "header", "%s is not a valid HTTP header name",
				  cfg_quote(st->hmac_header, q, sizeof(q)));
			*failed = true;
		}
	}
	cfg_map_finish(&hmac);
	if (st->hmac_header == NULL)
		st->hmac_header = xstrdup(WEBHOOK_DEFAULT_HMAC_HEADER);
}

static void read_headers(struct cfg_map *m, struct webhook_state *st, bool *failed)
{
	char **names = NULL;
	char **values = NULL;
	size_t count = 0;

	if (cfg_get_string_map(m, "headers", &names, &values, &count) < 0) {
		*failed = true;
		return;
	}
	st->headers = xcalloc(count + 1, sizeof(*st->headers));
	for (size_t i = 0; i < count; i++) {
		if (http_client_check_header(m, names[i], values[i]) < 0) {
			*failed = true;
			continue;
		}
		if (strcasecmp(names[i], "Idempotency-Key") == 0 ||
		    (st->hmac_secret != NULL && strcasecmp(names[i], st->hmac_header) == 0)) {
			cfg_error(m, "headers",
				  "header %s is set by tocsin on every request; remove it",
				  names[i]);
			*failed = true;
			continue;
		}
		st->headers[st->header_count++] = xasprintf("%s: %s", names[i], values[i]);
	}
	cfg_strv_free(names);
	cfg_strv_free(values);
}

static void read_format(struct cfg_map *m, struct webhook_state *st, bool *failed)
{
	char *format = NULL;
	char *path = NULL;
	char q[CFG_QUOTE_SIZE];
	int rc = cfg_get_string(m, "format", &format);
	struct webhook_payload_options *o = &st->payload;

	if (rc < 0)
		*failed = true;
	o->format = WEBHOOK_FORMAT_ALERTMANAGER;
	if (rc == 1 && strcmp(format, "slack") == 0) {
		o->format = WEBHOOK_FORMAT_SLACK;
	} else if (rc == 1 && strcmp(format, "pagerduty") == 0) {
		o->format = WEBHOOK_FORMAT_PAGERDUTY;
	} else if (rc == 1 && strcmp(format, "alertmanager") != 0) {
		cfg_error(m, "format", "%s is not accepted; use alertmanager, slack or pagerduty",
			  cfg_quote(format, q, sizeof(q)));
		*failed = true;
	}
	free(format);

	if (cfg_get_string(m, "channel", &st->channel) < 0 ||
	    cfg_get_string(m, "username", &st->username) < 0)
		*failed = true;
	if ((st->channel != NULL || st->username != NULL) && o->format != WEBHOOK_FORMAT_SLACK) {
		cfg_error(m, st->channel ? "channel" : "username",
			  "applies to format: slack only; remove it or set the format");
		*failed = true;
	}
	rc = cfg_get_string(m, "routing_key_file", &path);
	if (rc < 0)
		*failed = true;
	if (rc == 1 && o->format != WEBHOOK_FORMAT_PAGERDUTY) {
		cfg_error(m, "routing_key_file",
			  "applies to format: pagerduty only; remove it or set the format");
		*failed = true;
	} else if (rc == 1) {
		st->routing_key = secret_read_file(m, "routing_key_file", path, WEBHOOK_SECRET_MAX);
		if (st->routing_key == NULL)
			*failed = true;
	} else if (rc == 0 && o->format == WEBHOOK_FORMAT_PAGERDUTY) {
		cfg_error(m, NULL,
			  "routing_key_file is missing; format: pagerduty needs the "
			  "integration key's file");
		*failed = true;
	}
	free(path);
	o->slack_channel = st->channel;
	o->slack_username = st->username;
	o->pagerduty_routing_key = st->routing_key;
}

static void webhook_free(void *state)
{
	struct webhook_state *st = state;

	if (st == NULL)
		return;
	webhook_http_clear(&st->http);
	webhook_url_clear(&st->url);
	for (size_t i = 0; i < st->header_count; i++)
		free(st->headers[i]);
	free(st->headers);
	secret_free(st->hmac_secret);
	free(st->hmac_header);
	secret_free(st->routing_key);
	free(st->channel);
	free(st->username);
	free(st);
}

static int webhook_parse(struct cfg_map *m, void **state)
{
	struct webhook_state *st = xcalloc(1, sizeof(*st));
	bool failed = webhook_http_parse(m, "webhook", &st->http) < 0;
	char *url = NULL;
	int64_t max_alerts = 0;
	char error[256];
	int rc = cfg_get_string(m, "url", &url);

	if (rc == 0)
		cfg_error(m, NULL, "url is missing; a webhook needs url: https://HOST/PATH");
	if (rc != 1) {
		failed = true;
	} else if (webhook_url_prepare(url, &st->http, &st->url, error, sizeof(error)) < 0) {
		cfg_error(m, "url", "%s", error);
		failed = true;
	}
	free(url);
	read_hmac(m, st, &failed);
	read_headers(m, st, &failed);
	read_format(m, st, &failed);
	if (cfg_get_int(m, "max_alerts", 0, INT32_MAX, &max_alerts) < 0)
		failed = true;
	st->payload.max_alerts = (size_t)max_alerts;
	if (failed) {
		webhook_free(st);
		return -1;
	}
	*state = st;
	return 0;
}

static void webhook_finished(void *arg, const struct webhook_url *url,
			     const struct delivery_outcome *outcome)
{
	struct webhook_op *op = arg;

	(void)url;
	op->done(op->arg, outcome);
	free(op);
}

/* The Idempotency-Key header line. A control character (from a label value in the group
 * key) would end the header early, so it is sent as '?' there but unchanged in the body. */
static char *idempotency_header(const char *key)
{
	char *line = xasprintf("Idempotency-Key: %s", key != NULL ? key : "");

	for (char *p = line; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7F)
			*p = '?';
	}
	return line;
}

static struct receiver_op *webhook_send(void *state, struct event_base *base,
					const struct notification *n, int64_t timeout_ms,
					receiver_done_fn *done, void *arg,
					struct delivery_outcome *failed)
{
	struct webhook_state *st = state;
	struct webhook_op *op = xcalloc(1, sizeof(*op));
	char *body = webhook_payload_build(n, &st->payload);
	char signature[WEBHOOK_SIGNATURE_SIZE];
	const char **headers = xcalloc(st->header_count + 3, sizeof(*headers));
	char *idempotency = idempotency_header(n->idempotency_key);
	char *signed_header = NULL;
	size_t count = 0;

	for (size_t i = 0; i < st->header_count; i++)
		headers[count++] = st->headers[i];
	headers[count++] = idempotency;
	if (st->hmac_secret != NULL) {
		webhook_payload_sign(st->hmac_secret, strlen(st->hmac_secret), body, strlen(body),
				     signature);
		signed_header = xasprintf("%s: %s", st->hmac_header, signature);
		headers[count++] = signed_header;
	}
	if (timeout_ms <= 0 || timeout_ms > st->http.timeout_ms)
		timeout_ms = st->http.timeout_ms;
	op->done = done;
	op->arg = arg;
	op->post = webhook_post_start(&st->http, &st->url, base, body, headers, timeout_ms,
				      webhook_finished, op, failed);
	free(body);
	free(headers);
	free(idempotency);
	free(signed_header);
	if (op->post == NULL) {
		free(op);
		return NULL;
	}
	return (struct receiver_op *)op;
}

static void webhook_cancel(struct receiver_op *handle)
{
	struct webhook_op *op = (struct webhook_op *)handle;

	if (op == NULL)
		return;
	webhook_post_cancel(op->post);
	free(op);
}

/* curlev's multi handle lives while any receiver state does: see curlev.h. */
static int webhook_parse_ref(struct cfg_map *m, void **state)
{
	if (webhook_parse(m, state) < 0)
		return -1;
	curlev_ref();
	return 0;
}

static void webhook_free_unref(void *state)
{
	if (state == NULL)
		return;
	webhook_free(state);
	curlev_unref();
}

const struct receiver_type receiver_webhook = {
    .name = "webhook",
    .parse = webhook_parse_ref,
    .free = webhook_free_unref,
    .send = webhook_send,
    .cancel = webhook_cancel,
};
