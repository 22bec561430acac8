/*
 * Parsing and validation of the `http` probe's options; see http_options.h. Everything
 * that can be checked without a network is checked here, at load, so that a typo in a
 * regex, a status code or a file name stops the config instead of failing every run.
 */
#include "probes/http_options.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collector/cfg.h"
#include "collector/posix_regex.h"
#include "collector/secret.h"
#include "collector/xalloc.h"

/* Longest secret read from a password or token file. */
#define HTTP_SECRET_MAX 4096

static void status_set_bit(struct http_status_set *set, long code)
{
	set->bits[code / 64] |= (uint64_t)1 << (code % 64);
}

bool http_status_set_contains(const struct http_status_set *set, long code)
{
	if (code < 100 || code > 599)
		return false;
	return (set->bits[code / 64] >> (code % 64)) & 1;
}

static void status_set_append_text(struct http_status_set *set, const char *item)
{
	size_t used = strlen(set->text);

	snprintf(set->text + used, sizeof(set->text) - used, "%s%s", used > 0 ? ", " : "", item);
}

int http_status_set_add(struct http_status_set *set, const char *item)
{
	size_t n = strlen(item);

	if (n == 3 && item[0] >= '1' && item[0] <= '5' && tolower((unsigned char)item[1]) == 'x' &&
	    tolower((unsigned char)item[2]) == 'x') {
		long base = (item[0] - '0') * 100;
		char text[4] = {item[0], 'x', 'x', '\0'};

		for (long code = base; code < base + 100; code++)
			status_set_bit(set, code);
		status_set_append_text(set, text);
		return 0;
	}
	if (n == 3 && isdigit((unsigned char)item[0]) && isdigit((unsigned char)item[1]) &&
	    isdigit((unsigned char)item[2])) {
		long code = strtol(item, NULL, 10);

		if (code < 100 || code > 599)
			return -1;
		status_set_bit(set, code);
		status_set_append_text(set, item);
		return 0;
	}
	return -1;
}

int http_regex_first_match(const struct http_regex *list, size_t count, const char *body,
			   size_t length)
{
	for (size_t i = 0; i < count; i++) {
		/* REG_STARTEND bounds the match by length, so NUL bytes in a body do not end it. */
		regmatch_t range = {0, (regoff_t)length};

		if (regexec(&list[i].compiled, body != NULL ? body : "", 1, &range, REG_STARTEND) ==
		    0)
			return (int)i;
	}
	return -1;
}

static bool coding_supported(const char *coding, size_t n)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	static const char *const always[] = {"identity", "gzip", "x-gzip", "deflate"};

	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++) {
		if (strlen(always[i]) == n && strncasecmp(coding, always[i], n) == 0)
			return (v->features & CURL_VERSION_LIBZ) || i == 0;
	}
	if (n == 2 && strncasecmp(coding, "br", 2) == 0)
		return (v->features & CURL_VERSION_BROTLI) != 0;
#ifdef CURL_VERSION_ZSTD
	if (n == 4 && strncasecmp(coding, "zstd", 4) == 0)
		return (v->features & CURL_VERSION_ZSTD) != 0;
#endif
	return false;
}

int http_accept_encoding_check(const char *value, char *bad, size_t bad_size)
{
	const char *p = value;
	bool any = false;

	while (*p != '\0') {
		const char *start;
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
			p++;
		n = (size_t)(p - start);
		/* Parameters such as ";q=0.5" only weigh the coding; skip them. */
		while (*p != '\0' && *p != ',')
			p++;
		if (!coding_supported(start, n)) {
			snprintf(bad, bad_size, "%.*s", (int)n, start);
			return -1;
		}
		any = true;
	}
	if (!any) {
		snprintf(bad, bad_size, "%s", value);
		return -1;
	}
	return 0;
}

static void read_headers(struct cfg_map *m, struct http_options *o, bool *failed)
{
	char **names = NULL;
	char **values = NULL;
	size_t count = 0;
	char q[CFG_QUOTE_SIZE];

	if (cfg_get_string_map(m, "headers", &names, &values, &count) < 0) {
		*failed = true;
		return;
	}
	o->headers = xcalloc(count + 1, sizeof(*o->headers));
	for (size_t i = 0; i < count; i++) {
		if (http_client_check_header(m, names[i], values[i]) < 0) {
			*failed = true;
			continue;
		}
		if (strcasecmp(names[i], "Accept-Encoding") == 0) {
			char bad[64];

			/* Sent raw, the header would make servers compress without libcurl
			 * decoding, and the body regexes would run on compressed bytes. */
			if (http_accept_encoding_check(values[i], bad, sizeof(bad)) < 0) {
				cfg_error(
				    m, "headers",
				    "Accept-Encoding %s: coding %s cannot be decoded; bodies "
				    "are always decoded, so omit the header or list identity, "
				    "gzip, deflate, br or zstd",
				    cfg_quote(values[i], q, sizeof(q)), bad);
				*failed = true;
				continue;
			}
			free(o->accept_encoding);
			o->accept_encoding = xstrdup(values[i]);
			continue;
		}
		o->headers[o->header_count++] = xasprintf("%s: %s", names[i], values[i]);
	}
	cfg_strv_free(names);
	cfg_strv_free(values);
}

static void read_status_codes(struct cfg_map *m, struct http_options *o, bool *failed)
{
	char **items = NULL;
	size_t count = 0;
	char q[CFG_QUOTE_SIZE];
	int rc = cfg_get_string_list(m, "valid_status_codes", &items, &count);

	if (rc < 0) {
		*failed = true;
		return;
	}
	if (rc == 0 || count == 0) {
		http_status_set_add(&o->valid_status, "2xx");
		cfg_strv_free(items);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		if (http_status_set_add(&o->valid_status, items[i]) < 0) {
			cfg_error(m, "valid_status_codes",
				  "%s is not a status code; use codes from 100 to 599 or classes "
				  "such as 2xx",
				  cfg_quote(items[i], q, sizeof(q)));
			*failed = true;
		}
	}
	cfg_strv_free(items);
}

static void read_regexes(struct cfg_map *m, const char *key, struct http_regex **out,
			 size_t *out_count, bool *failed)
{
	char **items = NULL;
	size_t count = 0;
	char q[CFG_QUOTE_SIZE];
	int rc = cfg_get_string_list(m, key, &items, &count);

	if (rc < 0)
		*failed = true;
	if (rc != 1)
		return;
	*out = xcalloc(count ? count : 1, sizeof(**out));
	for (size_t i = 0; i < count; i++) {
		struct http_regex *r = &(*out)[*out_count];
		char msg[128];
		int err = posix_regex_compile(&r->compiled, items[i], REG_EXTENDED | REG_NOSUB, msg,
					      sizeof(msg));

		if (err != 0) {
			cfg_error(m, key, "regex %s is invalid: %s (POSIX extended syntax)",
				  cfg_quote(items[i], q, sizeof(q)), msg);
			*failed = true;
			continue;
		}
		r->source = xstrdup(items[i]);
		(*out_count)++;
	}
	cfg_strv_free(items);
}

static void read_auth(struct cfg_map *m, struct http_options *o, bool *failed)
{
	struct cfg_map auth;
	char *path = NULL;
	int rc = cfg_get_map(m, "basic_auth", &auth);

	if (rc < 0)
		*failed = true;
	if (rc == 1) {
		if (cfg_get_string(&auth, "username", &o->username) != 1) {
			if (!cfg_has(&auth, "username"))
				cfg_error(&auth, NULL, "username is missing");
			*failed = true;
		}
		rc = cfg_get_string(&auth, "password_file", &path);
		if (rc == 1)
			o->password =
			    secret_read_file(&auth, "password_file", path, HTTP_SECRET_MAX);
		else if (rc == 0)
			o->password = xstrdup(""); /* a user name alone is valid basic auth */
		if (rc < 0 || (rc == 1 && o->password == NULL))
			*failed = true;
		free(path);
		path = NULL;
	}
	cfg_map_finish(&auth);

	rc = cfg_get_string(m, "bearer_token_file", &path);
	if (rc == 1) {
		o->bearer_token = secret_read_file(m, "bearer_token_file", path, HTTP_SECRET_MAX);
		if (o->bearer_token == NULL)
			*failed = true;
		if (o->username != NULL) {
			cfg_error(m, "bearer_token_file",
				  "basic_auth and bearer_token_file are mutually exclusive");
			*failed = true;
		}
	} else if (rc < 0) {
		*failed = true;
	}
	free(path);
}

/* Checks the URL; with tls.server_name, derives the request URL and CONNECT_TO mapping. */
static int prepare_url(struct cfg_map *m, struct http_options *o)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *host_header = NULL;
	char q[CFG_QUOTE_SIZE];
	int rc = -1;

	if (curl_url_set(u, CURLUPART_URL, o->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		cfg_error(m, "url",
			  "%s is not a valid URL; expected http://HOST[:PORT]/PATH or "
			  "https://...",
			  cfg_quote(o->url, q, sizeof(q)));
		goto out;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		cfg_error(m, "url", "scheme %s is not supported; use http or https",
			  cfg_quote(scheme, q, sizeof(q)));
		goto out;
	}
	/* An address literal has one family: a resolver preference cannot apply to it. */
	unsigned char addr[16];
	if (host[0] == '[') {
		o->host_is_address = true;
		o->host_family = HTTP_IP6;
	} else if (inet_pton(AF_INET, host, addr) == 1) {
		o->host_is_address = true;
		o->host_family = HTTP_IP4;
	}
	if (o->tls.server_name == NULL) {
		o->request_url = xstrdup(o->url);
		rc = 0;
		goto out;
	}
	if (http_client_apply_server_name(u, o->tls.server_name, &o->request_url, &o->connect_to,
					  &host_header) < 0) {
		cfg_error(m, "tls", "server_name %s is not a valid host name",
			  cfg_quote(o->tls.server_name, q, sizeof(q)));
		goto out;
	}

	bool has_host = false;
	for (size_t i = 0; i < o->header_count; i++)
		has_host |= strncasecmp(o->headers[i], "Host:", 5) == 0;
	if (!has_host) {
		o->headers = xrealloc(o->headers, (o->header_count + 2) * sizeof(*o->headers));
		o->headers[o->header_count++] = host_header;
		o->headers[o->header_count] = NULL;
		host_header = NULL;
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	free(host_header);
	curl_url_cleanup(u);
	return rc;
}

static void read_method_and_body(struct cfg_map *m, struct http_options *o, bool *failed)
{
	char q[CFG_QUOTE_SIZE];
	int rc = cfg_get_string(m, "method", &o->method);

	if (rc < 0)
		*failed = true;
	if (rc != 1)
		o->method = xstrdup("GET");
	for (char *p = o->method; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	if (!http_client_valid_token(o->method)) {
		cfg_error(m, "method", "%s is not an HTTP method; use GET, HEAD, POST, PUT...",
			  cfg_quote(o->method, q, sizeof(q)));
		*failed = true;
	}
	if (cfg_get_string(m, "body", &o->body) < 0)
		*failed = true;
	if (o->body != NULL && strcmp(o->method, "HEAD") == 0) {
		cfg_error(m, "body", "a HEAD request cannot carry a body");
		*failed = true;
	}
}

static void read_ip_protocol(struct cfg_map *m, struct http_options *o, bool *failed)
{
	char *family = NULL;
	char q[CFG_QUOTE_SIZE];
	int rc = cfg_get_string(m, "ip_protocol", &family);

	o->ip_family = HTTP_IP4;
	o->ip_fallback = true;
	if (rc < 0)
		*failed = true;
	if (rc == 1) {
		if (strcmp(family, "ip6") == 0) {
			o->ip_family = HTTP_IP6;
		} else if (strcmp(family, "ip4") != 0) {
			cfg_error(m, "ip_protocol", "%s is not accepted; use ip4 or ip6",
				  cfg_quote(family, q, sizeof(q)));
			*failed = true;
		}
	}
	free(family);
	if (cfg_get_bool(m, "ip_protocol_fallback", &o->ip_fallback) < 0)
		*failed = true;
}

static void read_connection(struct cfg_map *m, struct http_options *o, bool *failed)
{
	char *version = NULL;
	char q[CFG_QUOTE_SIZE];
	int64_t redirects = HTTP_DEFAULT_MAX_REDIRECTS;
	int rc;

	o->follow_redirects = true;
	if (cfg_get_bool(m, "follow_redirects", &o->follow_redirects) < 0)
		*failed = true;
	if (cfg_get_int(m, "max_redirects", 0, 1000, &redirects) < 0)
		*failed = true;
	o->max_redirects = (long)redirects;

	rc = cfg_get_string(m, "http_version", &version);
	if (rc < 0)
		*failed = true;
	if (rc == 1) {
		if (strcmp(version, "1.1") == 0) {
			o->version = HTTP_VERSION_1_1;
		} else if (strcmp(version, "2") == 0 || strcmp(version, "2.0") == 0) {
			o->version = HTTP_VERSION_2;
		} else {
			cfg_error(m, "http_version", "%s is not accepted; use \"1.1\" or \"2\"",
				  cfg_quote(version, q, sizeof(q)));
			*failed = true;
		}
	}
	free(version);

	o->max_body_bytes = HTTP_DEFAULT_MAX_BODY_BYTES;
	if (cfg_get_size(m, "max_body_bytes", &o->max_body_bytes) < 0)
		*failed = true;
	if (cfg_get_bool(m, "reuse_connections", &o->reuse_connections) < 0)
		*failed = true;
	if (cfg_get_string(m, "proxy", &o->proxy) < 0)
		*failed = true;
	if (cfg_get_bool(m, "fail_if_ssl", &o->fail_if_ssl) < 0)
		*failed = true;
	if (cfg_get_bool(m, "fail_if_not_ssl", &o->fail_if_not_ssl) < 0)
		*failed = true;
	if (o->fail_if_ssl && o->fail_if_not_ssl) {
		cfg_error(m, "fail_if_not_ssl",
			  "fail_if_ssl and fail_if_not_ssl cannot both be "
			  "true");
		*failed = true;
	}
}

struct http_options *http_options_parse(struct cfg_map *m)
{
	struct http_options *o = xcalloc(1, sizeof(*o));
	bool failed = false;
	int rc = cfg_get_string(m, "url", &o->url);

	if (rc == 0)
		cfg_error(m, NULL, "url is missing; an http probe needs url: http://HOST/PATH");
	if (rc != 1)
		failed = true;
	o->accept_encoding = xstrdup("");
	read_method_and_body(m, o, &failed);
	read_headers(m, o, &failed);
	read_status_codes(m, o, &failed);
	read_regexes(m, "body_must_match", &o->must_match, &o->must_match_count, &failed);
	read_regexes(m, "body_must_not_match", &o->must_not_match, &o->must_not_match_count,
		     &failed);
	if (http_client_tls_parse(m, &o->tls) < 0)
		failed = true;
	read_auth(m, o, &failed);
	read_ip_protocol(m, o, &failed);
	read_connection(m, o, &failed);
	if (o->url != NULL && prepare_url(m, o) < 0)
		failed = true;

	if (failed) {
		http_options_free(o);
		return NULL;
	}
	return o;
}

static void free_regexes(struct http_regex *list, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		regfree(&list[i].compiled);
		free(list[i].source);
	}
	free(list);
}

void http_options_free(struct http_options *o)
{
	if (o == NULL)
		return;
	free(o->url);
	free(o->request_url);
	free(o->connect_to);
	free(o->method);
	for (size_t i = 0; i < o->header_count; i++)
		free(o->headers[i]);
	free(o->headers);
	free(o->accept_encoding);
	free(o->body);
	free_regexes(o->must_match, o->must_match_count);
	free_regexes(o->must_not_match, o->must_not_match_count);
	http_client_tls_clear(&o->tls);
	free(o->username);
	secret_free(o->password);
	secret_free(o->bearer_token);
	free(o->proxy);
	free(o);
}
