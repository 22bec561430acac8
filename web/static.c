/*
 * Serves the embedded dashboard files. Every reply, errors included, carries the security
 * headers, so that a page of the dashboard runs only scripts and styles from its own
 * origin and cannot be framed. index.html is revalidated on every load by its ETag, and an
 * asset requested with its current version ("?v=ETAG", as index.html links it) may be
 * cached for a year, because a new build changes the version and so the URL.
 */
#include "web/static.h"

#include <stdbool.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "web/http.h"

#define STATIC_PREFIX "/static/"

/*
 * Only same-origin scripts, styles, images and API calls; no inline script or style, no
 * plugins, no framing, and no <base> or form target that points elsewhere.
 */
#define STATIC_CSP                                                                                 \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "                \
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "             \
	"frame-ancestors 'none'"

#define STATIC_CACHE_REVALIDATE "no-cache"
#define STATIC_CACHE_VERSIONED  "public, max-age=31536000, immutable"

const struct static_asset *static_find(const char *name)
{
	for (size_t i = 0; i < static_asset_count; i++) {
		if (strcmp(static_assets[i].name, name) == 0)
			return &static_assets[i];
	}
	return NULL;
}

static void add_security_headers(struct evkeyvalq *headers)
{
	evhttp_add_header(headers, "Content-Security-Policy", STATIC_CSP);
	evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(headers, "X-Frame-Options", "DENY");
	evhttp_add_header(headers, "Referrer-Policy", "no-referrer");
}

static void send_error(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);

	add_security_headers(headers);
	evhttp_add_header(headers, "Content-Type", "text/plain; charset=utf-8");
	evhttp_add_header(headers, "Cache-Control", "no-store");
	evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
	http_send_reply(req, code, reason);
}

/*
 * Returns whether the If-None-Match header lists the asset's ETag or is "*". A weak
 * validator (W/"...") matches too, because If-None-Match compares ETags weakly.
 */
static bool etag_matches(const char *header, const struct static_asset *asset)
{
	const char *p = header;
	size_t etag_length = strlen(asset->etag);

	while (*p != '\0') {
		size_t length;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		length = strcspn(p, ",");
		while (length > 0 && (p[length - 1] == ' ' || p[length - 1] == '\t'))
			length--;
		if (length == etag_length && strncmp(p, asset->etag, length) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

/* Whether the query string is exactly "v=VERSION" with the asset's current version. */
static bool is_versioned_request(struct evhttp_request *req, const struct static_asset *asset)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;

	return query != NULL && strncmp(query, "v=", 2) == 0 &&
	       strcmp(query + 2, asset->version) == 0;
}

static void send_asset(struct evhttp_request *req, const struct static_asset *asset)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	const char *if_none_match =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
	bool versioned = strcmp(asset->name, "index.html") != 0 && is_versioned_request(req, asset);

	add_security_headers(headers);
	evhttp_add_header(headers, "ETag", asset->etag);
	evhttp_add_header(headers, "Cache-Control",
			  versioned ? STATIC_CACHE_VERSIONED : STATIC_CACHE_REVALIDATE);
	if (if_none_match != NULL && etag_matches(if_none_match, asset)) {
		http_send_reply(req, HTTP_NOTMODIFIED, "Not Modified");
		return;
	}
	evhttp_add_header(headers, "Content-Type", asset->content_type);
	evbuffer_add_reference(evhttp_request_get_output_buffer(req), asset->data, asset->size,
			       NULL, NULL);
	http_send_reply(req, HTTP_OK, "OK");
}

static bool accept_read_method(struct evhttp_request *req)
{
	enum evhttp_cmd_type method = evhttp_request_get_command(req);

	if (method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD)
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
	send_error(req, 405, "Method Not Allowed", "method not allowed: use GET or HEAD\n");
	return false;
}

static void handle_index(struct evhttp_request *req, void *arg)
{
	const struct static_asset *asset = static_find("index.html");

	(void)arg;
	if (!accept_read_method(req))
		return;
	if (asset == NULL) {
		send_error(
		    req, HTTP_NOTFOUND, "Not Found",
		    "this build has no dashboard (web/static/index.html was not embedded)\n");
		return;
	}
	send_asset(req, asset);
}

/* The route matched the undecoded prefix; the name is taken from the raw path. */
static void handle_asset(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const struct static_asset *asset = NULL;

	(void)arg;
	if (!accept_read_method(req))
		return;
	/* Asset names are plain file names, so a name with "/" or "%" is simply not found. */
	if (path != NULL && strncmp(path, STATIC_PREFIX, strlen(STATIC_PREFIX)) == 0)
		asset = static_find(path + strlen(STATIC_PREFIX));
	if (asset == NULL || strcmp(asset->name, "index.html") == 0) {
		send_error(req, HTTP_NOTFOUND, "Not Found",
			   "no such dashboard file; the dashboard starts at /\n");
		return;
	}
	send_asset(req, asset);
}

void static_route(struct http_server *srv)
{
	http_server_route(srv, "/", handle_index, NULL);
	http_server_route(srv, "/index.html", handle_index, NULL);
	http_server_route_prefix(srv, STATIC_PREFIX, handle_asset, NULL);
}
