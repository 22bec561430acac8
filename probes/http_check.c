/*
 * The `http` probe's verdicts; see http_check.h. The order of the checks follows the
 * order of a request: connection and TLS, then status, then TLS policy, then body.
 */
#include "probes/http_check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *http_format_date(double unix_seconds, char *buf, size_t size)
{
	time_t t = (time_t)unix_seconds;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, size, "%.0f", unix_seconds);
	return buf;
}

/* curl's message when it has one, else its generic text for the code. */
static const char *curl_text(const struct http_transfer *t)
{
	if (t->curl_error != NULL && t->curl_error[0] != '\0')
		return t->curl_error;
	return curl_easy_strerror(t->code);
}

static enum probe_status check_connect(const struct http_transfer *t, char *reason, size_t size)
{
	switch (t->os_errno) {
	case ECONNREFUSED:
		snprintf(reason, size, "connect: refused");
		return PROBE_STATUS_REFUSED;
	case EHOSTUNREACH:
		snprintf(reason, size, "connect: host unreachable");
		return PROBE_STATUS_UNREACHABLE;
	case ENETUNREACH:
		snprintf(reason, size, "connect: network unreachable");
		return PROBE_STATUS_UNREACHABLE;
	case ETIMEDOUT:
		snprintf(reason, size, "connect: timed out");
		return PROBE_STATUS_TIMEOUT;
	default:
		snprintf(reason, size, "connect: %s", curl_text(t));
		return PROBE_STATUS_UNREACHABLE;
	}
}

static enum probe_status check_tls(const struct http_transfer *t, char *reason, size_t size)
{
	char date[32];

	if (t->tls != NULL && t->tls->expired) {
		snprintf(reason, size, "tls: certificate expired on %s",
			 http_format_date(t->tls->expired_not_after, date, sizeof(date)));
		return PROBE_STATUS_TLS_EXPIRED;
	}
	if (t->tls != NULL && t->tls->verify_error != 0) {
		snprintf(reason, size, "tls: %s", http_tls_error_text(t->tls->verify_error));
		return PROBE_STATUS_TLS_ERROR;
	}
	snprintf(reason, size, "tls: %s", curl_text(t));
	return PROBE_STATUS_TLS_ERROR;
}

static enum probe_status check_transport(const struct http_options *o,
					 const struct http_transfer *t, char *reason, size_t size)
{
	switch (t->code) {
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(reason, size, "dns: cannot resolve %s", t->host ? t->host : curl_text(t));
		return PROBE_STATUS_RESOLVE_ERROR;
	case CURLE_COULDNT_RESOLVE_PROXY:
		snprintf(reason, size, "proxy: %s", curl_text(t));
		return PROBE_STATUS_RESOLVE_ERROR;
	case CURLE_COULDNT_CONNECT:
		return check_connect(t, reason, size);
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(reason, size, "timeout: %s", curl_text(t));
		return PROBE_STATUS_TIMEOUT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_USE_SSL_FAILED:
		return check_tls(t, reason, size);
	case CURLE_BAD_CONTENT_ENCODING:
		snprintf(reason, size, "http: content decoding error: %s", curl_text(t));
		return PROBE_STATUS_PROTOCOL_ERROR;
	case CURLE_TOO_MANY_REDIRECTS:
		snprintf(reason, size, "http: more than %ld redirects", o->max_redirects);
		return PROBE_STATUS_PROTOCOL_ERROR;
	case CURLE_WRITE_ERROR:
		if (t->body_too_large) {
			snprintf(reason, size, "http: body larger than max_body_bytes (%llu bytes)",
				 (unsigned long long)o->max_body_bytes);
			return PROBE_STATUS_LIMIT_REACHED;
		}
		snprintf(reason, size, "http: %s", curl_text(t));
		return PROBE_STATUS_INTERNAL_ERROR;
	case CURLE_GOT_NOTHING:
		snprintf(reason, size, "http: connection closed without a response");
		return PROBE_STATUS_CONNECTION_LOST;
	case CURLE_RECV_ERROR:
		/* libcurl reports an oversized header block as a receive error. */
		if (strstr(curl_text(t), "Too large response headers") != NULL) {
			snprintf(reason, size, "http: %s", curl_text(t));
			return PROBE_STATUS_PROTOCOL_ERROR;
		}
		snprintf(reason, size, "http: %s", curl_text(t));
		return PROBE_STATUS_CONNECTION_LOST;
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2_STREAM:
		snprintf(reason, size, "http: %s", curl_text(t));
		return PROBE_STATUS_CONNECTION_LOST;
	default:
		snprintf(reason, size, "http: %s", curl_text(t));
		return PROBE_STATUS_PROTOCOL_ERROR;
	}
}

enum probe_status http_check_transfer(const struct http_options *o, const struct http_transfer *t,
				      enum http_failure *failure, char *reason, size_t size)
{
	int hit;

	*failure = HTTP_FAILURE_NONE;
	reason[0] = '\0';
	if (t->code != CURLE_OK) {
		*failure = HTTP_FAILURE_TRANSPORT;
		return check_transport(o, t, reason, size);
	}
	if (!http_status_set_contains(&o->valid_status, t->status)) {
		*failure = HTTP_FAILURE_STATUS;
		snprintf(reason, size, "http: status %ld not in %s", t->status,
			 o->valid_status.text);
		return PROBE_STATUS_STATUS_MISMATCH;
	}
	if (o->fail_if_ssl && t->over_tls) {
		*failure = HTTP_FAILURE_SSL_POLICY;
		snprintf(reason, size, "http: response came over TLS and fail_if_ssl is set");
		return PROBE_STATUS_PROTOCOL_ERROR;
	}
	if (o->fail_if_not_ssl && !t->over_tls) {
		*failure = HTTP_FAILURE_SSL_POLICY;
		snprintf(reason, size,
			 "http: response came over plain HTTP and fail_if_not_ssl is set");
		return PROBE_STATUS_PROTOCOL_ERROR;
	}
	hit = http_regex_first_match(o->must_not_match, o->must_not_match_count, t->body,
				     t->body_length);
	if (hit >= 0) {
		*failure = HTTP_FAILURE_REGEX;
		snprintf(reason, size, "body matched forbidden pattern /%s/",
			 o->must_not_match[hit].source);
		return PROBE_STATUS_CONTENT_MISMATCH;
	}
	for (size_t i = 0; i < o->must_match_count; i++) {
		if (http_regex_first_match(&o->must_match[i], 1, t->body, t->body_length) < 0) {
			*failure = HTTP_FAILURE_REGEX;
			snprintf(reason, size, "body did not match /%s/", o->must_match[i].source);
			return PROBE_STATUS_CONTENT_MISMATCH;
		}
	}
	return PROBE_STATUS_OK;
}
