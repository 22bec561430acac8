/*
 * tocsinctl's HTTP client (see client.h): builds the request URL, sends it with libcurl's
 * easy interface, parses the JSON envelope of docs/api.md and reports failures with the
 * exit code that scripts can test.
 */
#include "ctl/client.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoconf.h"
#include "collector/xalloc.h"

#define CTL_CONNECT_TIMEOUT_MS 5000L
#define CTL_TOTAL_TIMEOUT_MS   30000L
/* A larger reply is rejected instead of buffered. This is an estimate with a wide margin:
 * the replies that tocsinctl requests (probes, alerts, silences, instant queries) are
 * expected to stay far below it. */
#define CTL_MAX_REPLY_BYTES (64u * 1024 * 1024)

struct reply_buffer {
	char *data;
	size_t length;
	size_t capacity;
	bool too_large;
};

static bool has_control_char(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7F)
			return true;
	}
	return false;
}

/* Removes "user:password@" from a URL so that messages never show credentials. */
static char *strip_userinfo(const char *url)
{
	const char *host = strstr(url, "://");
	if (host == NULL)
		return xstrdup(url);
	host += 3;
	size_t authority = strcspn(host, "/?#");
	const char *at = memchr(host, '@', authority);
	if (at == NULL)
		return xstrdup(url);
	return xasprintf("%.*s%s", (int)(host - url), url, at + 1);
}

int ctl_client_init(struct ctl_client *c, const char *server, const char *token)
{
	memset(c, 0, sizeof(*c));
	if (strncmp(server, "http://", 7) != 0 && strncmp(server, "https://", 8) != 0) {
		fprintf(
		    stderr,
		    "tocsinctl: invalid server URL \"%s\": it must start with http:// or https:// "
		    "(for example %s); set it with --server or TOCSIN_URL\n",
		    server, CTL_DEFAULT_SERVER);
		return CTL_EXIT_USAGE;
	}
	if (has_control_char(server)) {
		fprintf(stderr, "tocsinctl: invalid server URL: it contains control characters\n");
		return CTL_EXIT_USAGE;
	}
	if (token != NULL && token[0] != '\0' && has_control_char(token)) {
		fprintf(stderr,
			"tocsinctl: invalid token (from --token or TOCSIN_TOKEN): it "
			"contains control characters such as a newline; pass the token alone\n");
		return CTL_EXIT_USAGE;
	}

	c->base = xstrdup(server);
	for (size_t n = strlen(c->base); n > 0 && c->base[n - 1] == '/'; n--)
		c->base[n - 1] = '\0';
	c->display = strip_userinfo(c->base);
	c->token = token != NULL && token[0] != '\0' ? xstrdup(token) : NULL;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (c->curl = curl_easy_init()) == NULL) {
		fprintf(stderr, "tocsinctl: libcurl failed to initialize\n");
		ctl_client_cleanup(c);
		return CTL_EXIT_SERVER;
	}
	return CTL_EXIT_OK;
}

void ctl_client_cleanup(struct ctl_client *c)
{
	if (c->curl != NULL) {
		curl_easy_cleanup(c->curl);
		curl_global_cleanup();
	}
	free(c->base);
	free(c->display);
	if (c->token != NULL) {
		/* Clear the secret before the memory goes back to the allocator. */
		memset(c->token, 0, strlen(c->token));
		free(c->token);
	}
	memset(c, 0, sizeof(*c));
}

char *ctl_client_escape(const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t length = strlen(text);
	char *out = xmalloc(length * 3 + 1);
	char *p = out;
	for (const unsigned char *s = (const unsigned char *)text; *s != '\0'; s++) {
		if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_' || *s == '~') {
			*p++ = (char)*s;
		} else {
			*p++ = '%';
			*p++ = hex[*s >> 4];
			*p++ = hex[*s & 0x0F];
		}
	}
	*p = '\0';
	return out;
}

static size_t collect_reply(char *data, size_t size, size_t count, void *arg)
{
	struct reply_buffer *buffer = arg;
	size_t n = size * count;
	if (buffer->length + n > CTL_MAX_REPLY_BYTES) {
		buffer->too_large = true;
		return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
	}
	buffer->data =
	    xreallocarray_grow(buffer->data, &buffer->capacity, buffer->length + n + 1, 1);
	memcpy(buffer->data + buffer->length, data, n);
	buffer->length += n;
	buffer->data[buffer->length] = '\0';
	return n;
}

static char *build_url(const struct ctl_client *c, const char *path, const struct ctl_param *params,
		       size_t param_count)
{
	char *url = xasprintf("%s/api/v1%s", c->base, path);
	for (size_t i = 0; i < param_count; i++) {
		char *name = ctl_client_escape(params[i].name);
		char *value = ctl_client_escape(params[i].value);
		char *next = xasprintf("%s%c%s=%s", url, i == 0 ? '?' : '&', name, value);
		free(name);
		free(value);
		free(url);
		url = next;
	}
	return url;
}

/* Prints why the request got no reply and returns the exit code for it. */
static int report_transport_error(const struct ctl_client *c, CURLcode rc, const char *detail)
{
	const char *message = detail[0] != '\0' ? detail : curl_easy_strerror(rc);
	switch (rc) {
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		fprintf(stderr,
			"tocsinctl: invalid server URL \"%s\": %s; set it with --server or "
			"TOCSIN_URL\n",
			c->display, message);
		return CTL_EXIT_USAGE;
	case CURLE_OPERATION_TIMEDOUT:
		fprintf(stderr,
			"tocsinctl: no reply from %s within the timeout (connect %ld s, total %ld "
			"s): %s. "
			"Check that tocsind is running and responsive there, or point --server or "
			"TOCSIN_URL at its listen address.\n",
			c->display, CTL_CONNECT_TIMEOUT_MS / 1000, CTL_TOTAL_TIMEOUT_MS / 1000,
			message);
		return CTL_EXIT_CONNECT;
	default:
		fprintf(stderr,
			"tocsinctl: cannot connect to %s: %s. Check that tocsind is running and "
			"listening there, or point --server or TOCSIN_URL at its listen address.\n",
			c->display, message);
		return CTL_EXIT_CONNECT;
	}
}

/* Prints the API's error envelope, or the HTTP status when the reply is not one. */
static int report_reply_error(const struct ctl_client *c, const char *method, const char *path,
			      long http_status, json_t *reply)
{
	const char *error = json_string_value(json_object_get(reply, "error"));
	const char *detail = json_string_value(json_object_get(reply, "detail"));
	if (error == NULL) {
		fprintf(
		    stderr,
		    "tocsinctl: %s %s/api/v1%s: HTTP %ld with a reply that is not tocsind's JSON "
		    "API; check that --server or TOCSIN_URL names a tocsind listen address\n",
		    method, c->display, path, http_status);
		return CTL_EXIT_SERVER;
	}

	json_t *errors = json_object_get(reply, "errors");
	size_t i;
	json_t *item;

	/* A reply that lists its errors (a rejected reload) has the same lines joined in
	 * its detail: print them once, one per line. */
	fprintf(stderr, "tocsinctl: %s /api/v1%s: %ld %s", method, path, http_status, error);
	if (detail != NULL && detail[0] != '\0' && json_array_size(errors) == 0)
		fprintf(stderr, ": %s", detail);
	fputc('\n', stderr);
	json_array_foreach(errors, i, item)
	{
		if (json_is_string(item))
			fprintf(stderr, "  %s\n", json_string_value(item));
	}
	return CTL_EXIT_SERVER;
}

int ctl_client_call(struct ctl_client *c, const char *method, const char *path,
		    const struct ctl_param *params, size_t param_count, json_t *body, json_t **data)
{
	CURL *curl = c->curl;
	struct curl_slist *headers = NULL;
	struct reply_buffer reply = {0};
	char *request_body = NULL;
	char *authorization = NULL;
	char error_buffer[CURL_ERROR_SIZE] = "";
	json_t *parsed = NULL;
	int result = CTL_EXIT_SERVER;

	*data = NULL;
	char *url = build_url(c, path, params, param_count);

	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CTL_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, CTL_TOTAL_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_reply);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "tocsinctl/" PACKAGE_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif

	headers = curl_slist_append(headers, "Accept: application/json");
	if (c->token != NULL) {
		authorization = xasprintf("Authorization: Bearer %s", c->token);
		headers = curl_slist_append(headers, authorization);
	}
	if (body != NULL) {
		request_body = json_dumps(body, JSON_COMPACT);
		if (request_body == NULL) {
			fprintf(stderr, "tocsinctl: out of memory encoding the request body\n");
			goto done;
		}
		headers = curl_slist_append(headers, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request_body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(request_body));
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

	CURLcode rc = curl_easy_perform(curl);
	if (reply.too_large) {
		fprintf(stderr, "tocsinctl: %s %s/api/v1%s: the reply is larger than %u MiB\n",
			method, c->display, path, CTL_MAX_REPLY_BYTES / (1024 * 1024));
		goto done;
	}
	if (rc != CURLE_OK) {
		result = report_transport_error(c, rc, error_buffer);
		goto done;
	}

	long http_status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
	json_error_t json_error;
	parsed = reply.data != NULL ? json_loadb(reply.data, reply.length, 0, &json_error) : NULL;
	const char *status = json_string_value(json_object_get(parsed, "status"));
	if (http_status >= 200 && http_status < 300 && status != NULL &&
	    strcmp(status, "success") == 0 && json_object_get(parsed, "data") != NULL) {
		*data = json_incref(json_object_get(parsed, "data"));
		result = CTL_EXIT_OK;
	} else {
		result = report_reply_error(c, method, path, http_status, parsed);
	}

done:
	/* libcurl keeps pointers to these until the next reset. */
	curl_easy_reset(curl);
	curl_slist_free_all(headers);
	if (authorization != NULL) {
		memset(authorization, 0, strlen(authorization));
		free(authorization);
	}
	free(request_body);
	free(reply.data);
	free(url);
	json_decref(parsed);
	return result;
}
