/*
 * Verdicts of the `http` probe: how a finished transfer maps to a probe status and a
 * short reason. Pure functions over values read from libcurl, so that each failure mode
 * is tested without a server.
 */
#ifndef TOCSIN_HTTP_CHECK_H
#define TOCSIN_HTTP_CHECK_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "probes/http_options.h"
#include "probes/http_tls.h"
#include "probes/probe.h"

/* Facts about one finished transfer. */
struct http_transfer {
	CURLcode code;
	long os_errno;                   /* CURLINFO_OS_ERRNO of a failed connect, 0 otherwise */
	const char *curl_error;          /* curl's error buffer, may be empty */
	const char *host;                /* host name of the URL, for messages */
	long status;                     /* final HTTP status, 0 when no response arrived */
	bool over_tls;                   /* the final response came over TLS */
	bool body_too_large;             /* the write callback stopped at max_body_bytes */
	const struct http_tls_info *tls; /* NULL when not gathered */
	const char *body;                /* decoded body, NULL when not kept */
	size_t body_length;
};

/* Which check failed, for probe_failed_due_to_regex and tests. */
enum http_failure {
	HTTP_FAILURE_NONE,
	HTTP_FAILURE_TRANSPORT,
	HTTP_FAILURE_STATUS,
	HTTP_FAILURE_SSL_POLICY,
	HTTP_FAILURE_REGEX,
};

/*
 * Decides the outcome of a transfer under options `o`: the transport result first,
 * then the status code, the TLS policy and the body regexes. Writes the reason ("connect:
 * refused", "http: status 503 not in 2xx") into `reason` and the failed check into
 * *failure. Returns PROBE_STATUS_OK when every check passed.
 */
enum probe_status http_check_transfer(const struct http_options *o, const struct http_transfer *t,
				      enum http_failure *failure, char *reason, size_t size);

/* Formats a Unix time as YYYY-MM-DD in UTC. Returns buf. */
const char *http_format_date(double unix_seconds, char *buf, size_t size);

#endif
