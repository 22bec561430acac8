/*
 * The `http` probe: one HTTP(S) request per run through libcurl's multi interface on the
 * loop (probes/curlev.c), judged by status code, TLS policy and body regexes, with
 * blackbox_exporter's metric names. Options are parsed in http_options.c, verdicts are
 * made in http_check.c and certificate facts come from http_tls.c.
 *
 * Each probe keeps one easy handle, configured once and reused for every run. By default
 * every run opens a new connection, so each run measures connect and TLS afresh. The
 * scheduler never starts a run while the previous one is in flight, so a probe has at
 * most one transfer at a time.
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "autoconf.h"
#include "collector/cfg.h"
#include "collector/log.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"
#include "probes/curlev.h"
#include "probes/http_check.h"
#include "probes/http_client.h"
#include "probes/http_options.h"
#include "probes/http_tls.h"
#include "probes/probe.h"

struct http_state {
	struct http_options *opts;
	char *target; /* the URL with any user:password@ part replaced, for log lines */
	CURL *easy;   /* created on the first run, then reused */
	struct curl_slist *headers;
	struct curl_slist *connect_to;
	struct probe_run *run; /* the run in flight, NULL between runs */
	char errbuf[CURL_ERROR_SIZE];
	char *body; /* decoded body, kept only when regexes need it */
	size_t body_capacity;
	size_t body_length;     /* bytes kept in body */
	uint64_t decoded_bytes; /* decoded body bytes received, kept or not */
	bool keep_body;
	bool body_too_large;
	bool tls_watched;
	struct http_tls_info tls;
	enum http_ip_family family; /* of the current attempt */
	bool fell_back;             /* the current attempt is the other family's */
	uint64_t started_us;
	struct throttle setup_errors;
};

static const struct metric_desc m_success = {
    "probe_success", "Whether the HTTP request and every check succeeded (1) or not (0).",
    METRIC_GAUGE};
static const struct metric_desc m_duration = {"probe_duration_seconds",
					      "Seconds the probe run took.", METRIC_GAUGE};
static const struct metric_desc m_phase = {
    "probe_http_duration_seconds",
    "Seconds spent in each phase of the request, all redirects "
    "included.",
    METRIC_GAUGE};
static const struct metric_desc m_status = {
    "probe_http_status_code", "Status code of the final response; 0 when none arrived.",
    METRIC_GAUGE};
static const struct metric_desc m_content_length = {
    "probe_http_content_length",
    "Body length as sent by the server (compressed, if it was): the Content-Length header, or "
    "the bytes received when the header was absent.",
    METRIC_GAUGE};
static const struct metric_desc m_uncompressed = {"probe_http_uncompressed_body_length",
						  "Body length after content decoding, in bytes.",
						  METRIC_GAUGE};
static const struct metric_desc m_redirects = {"probe_http_redirects", "Redirects followed.",
					       METRIC_GAUGE};
static const struct metric_desc m_ssl = {
    "probe_http_ssl", "Whether the final response came over TLS (1) or not (0).", METRIC_GAUGE};
static const struct metric_desc m_version = {
    "probe_http_version", "HTTP version of the final response (1.0, 1.1, 2 or 3).", METRIC_GAUGE};
static const struct metric_desc m_earliest_expiry = {
    "probe_ssl_earliest_cert_expiry",
    "Earliest not-after time among the certificates the server sent, in Unix seconds.",
    METRIC_GAUGE};
static const struct metric_desc m_chain_expiry = {
    "probe_ssl_last_chain_expiry_timestamp_seconds",
    "Earliest not-after time of the verified certificate chain, in Unix seconds.", METRIC_GAUGE};
static const struct metric_desc m_leaf_expiry = {
    "probe_tls_cert_not_after_seconds",
    "Not-after time of the server's own certificate, in Unix seconds; exported also when "
    "verification failed.",
    METRIC_GAUGE};
static const struct metric_desc m_regex = {
    "probe_failed_due_to_regex", "Whether the run failed because of a body regex (1) or not (0).",
    METRIC_GAUGE};
static const struct metric_desc m_ip_protocol = {
    "probe_ip_protocol", "IP version of the connection to the target: 4 or 6.", METRIC_GAUGE};

static void emit(struct probe_run *run, const struct metric_desc *desc, double value)
{
	probe_run_emit(run, desc, NULL, 0, value);
}

static size_t body_received(char *data, size_t size, size_t count, void *arg)
{
	struct http_state *st = arg;
	size_t n = size * count;

	st->decoded_bytes += n;
	if (st->decoded_bytes > st->opts->max_body_bytes) {
		/* Returning less than n makes libcurl end the transfer with CURLE_WRITE_ERROR. */
		st->body_too_large = true;
		return 0;
	}
	if (st->keep_body) {
		st->body =
		    xreallocarray_grow(st->body, &st->body_capacity, st->body_length + n + 1, 1);
		memcpy(st->body + st->body_length, data, n);
		st->body_length += n;
		st->body[st->body_length] = '\0';
	}
	return n;
}

static void set_method(CURL *easy, const struct http_options *o)
{
	if (strcmp(o->method, "HEAD") == 0) {
		curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
		return;
	}
	if (strcmp(o->method, "POST") == 0)
		curl_easy_setopt(easy, CURLOPT_POST, 1L);
	else if (strcmp(o->method, "GET") != 0 || o->body != NULL)
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, o->method);
	if (o->body != NULL) {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, o->body);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(o->body));
	} else if (strcmp(o->method, "POST") == 0) {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
}

static void set_tls(struct http_state *st, CURL *easy, const struct http_options *o)
{
	http_client_tls_apply(easy, &o->tls);
	if (o->connect_to != NULL) {
		st->connect_to = curl_slist_append(NULL, o->connect_to);
		curl_easy_setopt(easy, CURLOPT_CONNECT_TO, st->connect_to);
	}
	st->tls_watched = http_tls_watch(easy, &st->tls) == 0;
}

static void set_auth(CURL *easy, const struct http_options *o)
{
	if (o->username != NULL) {
		curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(easy, CURLOPT_USERNAME, o->username);
		curl_easy_setopt(easy, CURLOPT_PASSWORD, o->password);
	} else if (o->bearer_token != NULL) {
		curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(easy, CURLOPT_XOAUTH2_BEARER, o->bearer_token);
	}
}

/* Configures the probe's easy handle once; every run reuses these options. */
static CURL *easy_setup(struct http_state *st)
{
	const struct http_options *o = st->opts;
	CURL *easy = curl_easy_init();

	if (easy == NULL)
		return NULL;
	curl_easy_setopt(easy, CURLOPT_URL, o->request_url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, st->errbuf);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "tocsin/" PACKAGE_VERSION);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, body_received);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, st);
	/* "" requests every coding libcurl decodes, so regexes always see the decoded body. */
	curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, o->accept_encoding);
	set_method(easy, o);
	for (size_t i = 0; i < o->header_count; i++)
		st->headers = curl_slist_append(st->headers, o->headers[i]);
	if (st->headers != NULL)
		curl_easy_setopt(easy, CURLOPT_HTTPHEADER, st->headers);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, o->follow_redirects ? 1L : 0L);
	curl_easy_setopt(easy, CURLOPT_MAXREDIRS, o->max_redirects);
	set_tls(st, easy, o);
	set_auth(easy, o);
	/* An empty proxy turns off the http_proxy environment variables, so a probe only uses
	 * the proxy its config names. */
	curl_easy_setopt(easy, CURLOPT_PROXY, o->proxy != NULL ? o->proxy : "");
	if (o->version == HTTP_VERSION_1_1)
		curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	else if (o->version == HTTP_VERSION_2)
		curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_0);
	if (!o->reuse_connections) {
		curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
	}
	return easy;
}

static void set_family(struct http_state *st, enum http_ip_family family)
{
	st->family = family;
	curl_easy_setopt(st->easy, CURLOPT_IPRESOLVE,
			 family == HTTP_IP6 ? (long)CURL_IPRESOLVE_V6 : (long)CURL_IPRESOLVE_V4);
}

static curl_off_t info_us(CURL *easy, CURLINFO what)
{
	curl_off_t us = 0;

	curl_easy_getinfo(easy, what, &us);
	return us;
}

static curl_off_t later(curl_off_t a, curl_off_t b)
{
	return a > b ? a : b;
}

static void emit_phases(struct probe_run *run, CURL *easy)
{
	/* curl's times are microseconds from the start, summed over redirects. A phase that
	 * did not happen reads 0, so each end is clamped to the previous phase's end. */
	curl_off_t resolved = info_us(easy, CURLINFO_NAMELOOKUP_TIME_T);
	curl_off_t connected = later(info_us(easy, CURLINFO_CONNECT_TIME_T), resolved);
	curl_off_t secured = later(info_us(easy, CURLINFO_APPCONNECT_TIME_T), connected);
	curl_off_t first_byte = info_us(easy, CURLINFO_STARTTRANSFER_TIME_T);
	curl_off_t answered = later(first_byte, secured);
	curl_off_t done = later(info_us(easy, CURLINFO_TOTAL_TIME_T), answered);
	const struct {
		const char *phase;
		curl_off_t us;
	} phases[] = {
	    {"resolve", resolved},
	    {"connect", connected - resolved},
	    {"tls", secured - connected},
	    {"processing", first_byte > 0 ? answered - secured : 0},
	    {"transfer", first_byte > 0 ? done - answered : 0},
	};

	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
		struct label l = {"phase", phases[i].phase};

		probe_run_emit(run, &m_phase, &l, 1, (double)phases[i].us / 1e6);
	}
}

/* Certificate metrics, whenever a handshake showed a certificate, failed or not. */
static void emit_certificates(struct http_state *st, struct probe_run *run)
{
	if (!st->tls_watched || !st->tls.seen)
		return;
	emit(run, &m_leaf_expiry, st->tls.leaf_not_after);
	emit(run, &m_earliest_expiry, st->tls.earliest_not_after);
	if (st->tls.chain_verified)
		emit(run, &m_chain_expiry, st->tls.chain_not_after);
}

static double http_version_number(long version)
{
	switch (version) {
	case CURL_HTTP_VERSION_1_0:
		return 1.0;
	case CURL_HTTP_VERSION_1_1:
		return 1.1;
	case CURL_HTTP_VERSION_2_0:
		return 2;
	case CURL_HTTP_VERSION_3:
		return 3;
	default:
		return 0;
	}
}

static void emit_response(struct http_state *st, struct probe_run *run, long status, CURLcode code)
{
	CURL *easy = st->easy;
	curl_off_t content_length = -1;
	curl_off_t received = 0;
	long redirects = 0;
	long version = 0;
	char *scheme = NULL;
	char *ip = NULL;

	curl_easy_getinfo(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &content_length);
	curl_easy_getinfo(easy, CURLINFO_SIZE_DOWNLOAD_T, &received);
	curl_easy_getinfo(easy, CURLINFO_REDIRECT_COUNT, &redirects);
	curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
	curl_easy_getinfo(easy, CURLINFO_SCHEME, &scheme);
	curl_easy_getinfo(easy, CURLINFO_PRIMARY_IP, &ip);

	emit_phases(run, easy);
	emit(run, &m_status, (double)status);
	if (status > 0) {
		emit(run, &m_content_length,
		     (double)(content_length >= 0 ? content_length : received));
		/* After a decoding error the decoded length is unknown: leave it out rather
		 * than export a placeholder. */
		if (code != CURLE_BAD_CONTENT_ENCODING)
			emit(run, &m_uncompressed, (double)st->decoded_bytes);
		emit(run, &m_version, http_version_number(version));
	}
	emit(run, &m_redirects, (double)redirects);
	emit(run, &m_ssl, scheme != NULL && strcasecmp(scheme, "https") == 0 ? 1 : 0);
	if (ip != NULL && ip[0] != '\0')
		emit(run, &m_ip_protocol, strchr(ip, ':') != NULL ? 6 : 4);
}

static char *url_host(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	char *copy = NULL;

	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		copy = xstrdup(host);
	curl_free(host);
	curl_url_cleanup(u);
	return copy;
}

static void transfer_done(CURL *easy, CURLcode code, void *arg)
{
	struct http_state *st = arg;
	struct probe_run *run = st->run;
	struct http_transfer t = {0};
	enum http_failure failure;
	enum probe_status status;
	char reason[256];
	char *host;

	if (code == CURLE_COULDNT_RESOLVE_HOST && st->opts->ip_fallback && !st->fell_back) {
		/* The preferred family has no address: try the other one once. */
		st->fell_back = true;
		set_family(st, st->family == HTTP_IP4 ? HTTP_IP6 : HTTP_IP4);
		if (curlev_add(probe_run_base(run), easy, transfer_done, st) == 0)
			return;
	}
	st->run = NULL;

	t.code = code;
	t.curl_error = st->errbuf;
	curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &t.os_errno);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t.status);
	host = url_host(st->opts->request_url);
	t.host = host;
	t.body_too_large = st->body_too_large;
	t.tls = st->tls_watched ? &st->tls : NULL;
	t.body = st->body;
	t.body_length = st->body_length;
	char *scheme = NULL;
	curl_easy_getinfo(easy, CURLINFO_SCHEME, &scheme);
	t.over_tls = scheme != NULL && strcasecmp(scheme, "https") == 0;

	status = http_check_transfer(st->opts, &t, &failure, reason, sizeof(reason));
	free(host);

	emit(run, &m_success, status == PROBE_STATUS_OK ? 1 : 0);
	emit(run, &m_duration, (double)(probe_now_us() - st->started_us) / 1e6);
	emit_response(st, run, t.status, code);
	emit_certificates(st, run);
	emit(run, &m_regex, failure == HTTP_FAILURE_REGEX ? 1 : 0);
	probe_run_finish(run, status, "%s", reason);
}

static void http_start(struct probe_run *run, void *state)
{
	struct http_state *st = state;
	const struct http_options *o = st->opts;
	char ids[256];
	uint64_t suppressed;

	if (st->easy == NULL)
		st->easy = easy_setup(st);
	st->run = run;
	st->errbuf[0] = '\0';
	st->body_length = 0;
	st->decoded_bytes = 0;
	st->body_too_large = false;
	memset(&st->tls, 0, sizeof(st->tls));
	st->fell_back = false;
	st->started_us = probe_now_us();
	if (o->host_is_address && o->host_family != o->ip_family && !o->ip_fallback) {
		st->run = NULL;
		emit(run, &m_success, 0);
		probe_run_finish(run, PROBE_STATUS_RESOLVE_ERROR,
				 "dns: %s is an %s address but ip_protocol is %s without fallback",
				 o->url, o->host_family == HTTP_IP6 ? "IPv6" : "IPv4",
				 o->ip_family == HTTP_IP6 ? "ip6" : "ip4");
		return;
	}
	if (st->easy != NULL) {
		set_family(st, o->host_is_address ? o->host_family : o->ip_family);
		if (curlev_add(probe_run_base(run), st->easy, transfer_done, st) == 0)
			return;
	}
	st->run = NULL;
	if (throttle_fail(&st->setup_errors, probe_now_ms(), &suppressed))
		log_error("http",
			  log_ids(ids, sizeof(ids), "probe", probe_run_probe_name(run), "url",
				  st->opts->url, NULL),
			  "cannot start the request (%llu similar errors suppressed)",
			  (unsigned long long)suppressed);
	probe_run_finish(run, PROBE_STATUS_INTERNAL_ERROR, "http: cannot start the request");
}

/* The step an unfinished transfer is in, from the timings libcurl has recorded so far:
 * a step that has not ended yet reads 0. */
static const char *transfer_phase(CURL *easy)
{
	curl_off_t resolved = 0;
	curl_off_t connected = 0;
	curl_off_t tls_done = 0;
	curl_off_t first_byte = 0;
	long local_port = 0;
	char *scheme = NULL;

	curl_easy_getinfo(easy, CURLINFO_NAMELOOKUP_TIME_T, &resolved);
	curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connected);
	curl_easy_getinfo(easy, CURLINFO_APPCONNECT_TIME_T, &tls_done);
	curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME_T, &first_byte);
	curl_easy_getinfo(easy, CURLINFO_SCHEME, &scheme);
	curl_easy_getinfo(easy, CURLINFO_LOCAL_PORT, &local_port);
	if (resolved == 0)
		return "resolve";
	/* With TLS, libcurl (7.88) records the connect time only after the handshake, but
	 * it records the local port as soon as the TCP connection is established. */
	if (connected == 0 && local_port == 0)
		return "connect";
	if (tls_done == 0 && scheme != NULL && strcasecmp(scheme, "https") == 0)
		return "tls";
	if (first_byte == 0)
		return "processing";
	return "transfer";
}

static void http_cancel(struct probe_run *run, void *state)
{
	struct http_state *st = state;

	if (st->run != run)
		return;
	probe_run_set_phase(run, transfer_phase(st->easy));
	curlev_remove(st->easy);
	st->run = NULL;
	/* What is known before the deadline is still worth exporting, certificates first:
	 * a server that hangs after the handshake still shows its expiry. */
	emit(run, &m_success, 0);
	emit(run, &m_duration, (double)(probe_now_us() - st->started_us) / 1e6);
	emit_certificates(st, run);
}

static int http_parse(struct cfg_map *options, void **state)
{
	struct http_options *o = http_options_parse(options);
	struct http_state *st;

	if (o == NULL)
		return -1;
	st = xcalloc(1, sizeof(*st));
	st->opts = o;
	st->target = http_client_redact_url(o->url);
	st->keep_body = o->must_match_count + o->must_not_match_count > 0;
	throttle_init(&st->setup_errors, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	curlev_ref();
	*state = st;
	return 0;
}

static void http_free(void *state)
{
	struct http_state *st = state;

	if (st == NULL)
		return;
	if (st->easy != NULL) {
		curlev_remove(st->easy);
		curl_easy_cleanup(st->easy);
	}
	curl_slist_free_all(st->headers);
	curl_slist_free_all(st->connect_to);
	http_options_free(st->opts);
	free(st->target);
	free(st->body);
	free(st);
	curlev_unref();
}

static const char *http_target(const void *state)
{
	const struct http_state *st = state;

	return st->target;
}

const struct probe_type probe_type_http = {
    .name = "http",
    .parse = http_parse,
    .start = http_start,
    .cancel = http_cancel,
    .free = http_free,
    .target = http_target,
};
