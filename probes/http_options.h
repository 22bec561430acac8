/*
 * Options of the `http` probe: parsed and validated once at config load, read-only
 * afterwards. Also the pure matchers the options describe (status code sets and body
 * regexes), kept here so that they are tested without a network.
 */
#ifndef TOCSIN_HTTP_OPTIONS_H
#define TOCSIN_HTTP_OPTIONS_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "probes/http_client.h"

struct cfg_map;

#define HTTP_DEFAULT_MAX_REDIRECTS  10
#define HTTP_DEFAULT_MAX_BODY_BYTES (10u * 1024 * 1024)

/* Status codes 100 to 599 as a bit set, plus the configured text for messages ("2xx"). */
struct http_status_set {
	uint64_t bits[10];
	char text[96];
};

/* A POSIX extended regex and its source text, for messages ("body matched /x/"). */
struct http_regex {
	char *source;
	regex_t compiled;
};

enum http_ip_family {
	HTTP_IP4,
	HTTP_IP6,
};

/* Requested HTTP version; HTTP_VERSION_AUTO lets libcurl negotiate (h2 over TLS, else 1.1). */
enum http_version {
	HTTP_VERSION_AUTO,
	HTTP_VERSION_1_1,
	HTTP_VERSION_2,
};

struct http_options {
	char *url;         /* as configured: the target label and messages use it */
	char *request_url; /* the URL given to curl: url with server_name as host, if set */
	char *connect_to;  /* "server_name:port:host:port" for CURLOPT_CONNECT_TO, or NULL */
	char *method;      /* upper case; "GET" by default */
	char **headers;    /* "Name: value" lines, NULL-terminated, Accept-Encoding excluded */
	size_t header_count;
	char *accept_encoding; /* CURLOPT_ACCEPT_ENCODING: "" (every supported coding) or the
				  codings the user's Accept-Encoding header listed */
	char *body;            /* request body, or NULL */
	struct http_status_set valid_status;
	bool follow_redirects;
	long max_redirects;
	struct http_regex *must_match;
	size_t must_match_count;
	struct http_regex *must_not_match;
	size_t must_not_match_count;
	bool fail_if_ssl;
	bool fail_if_not_ssl;
	struct http_client_tls tls;
	enum http_ip_family ip_family;
	bool ip_fallback;     /* retry with the other family when the name has no address */
	bool host_is_address; /* the URL names an IP address, of family host_family */
	enum http_ip_family host_family;
	char *username; /* basic auth; secret fields below never reach a log */
	char *password;
	char *bearer_token;
	char *proxy;
	enum http_version version;
	uint64_t max_body_bytes;
	bool reuse_connections;
};

/*
 * Reads every option from `m`, recording each error with its location. Returns the
 * options, or NULL when any option was invalid (all errors recorded).
 */
struct http_options *http_options_parse(struct cfg_map *m);
void http_options_free(struct http_options *o);

/*
 * Adds one item of valid_status_codes to `set`: a code from 100 to 599 ("404") or a class
 * ("2xx", "5XX"). Returns 0, or -1 when the item is neither.
 */
int http_status_set_add(struct http_status_set *set, const char *item);
bool http_status_set_contains(const struct http_status_set *set, long code);

/*
 * Returns the index of the first regex in `list` that matches somewhere in the `length`
 * bytes of `body` (which may contain NUL bytes), or -1 when none does.
 */
int http_regex_first_match(const struct http_regex *list, size_t count, const char *body,
			   size_t length);

/*
 * Checks one Accept-Encoding header value. Every coding must be one that libcurl decodes:
 * identity, gzip, deflate, and br or zstd when libcurl was built with them. Returns 0, or
 * -1 with the first unsupported coding copied into `bad`.
 */
int http_accept_encoding_check(const char *value, char *bad, size_t bad_size);

#endif
