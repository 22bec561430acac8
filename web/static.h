/*
 * The dashboard: the files under web/static/, compiled into the daemon by
 * scripts/embed-static.sh and served at / (index.html) and /static/NAME with their
 * content type, an ETag, a cache policy and the browser security headers. The pages and
 * their use of the API are described in docs/dashboard.md.
 */
#ifndef TOCSIN_STATIC_H
#define TOCSIN_STATIC_H

#include <stddef.h>

struct evhttp_request;
struct http_server;

/* One embedded file. The table is generated at build time (static_assets.c). */
struct static_asset {
	const char *name;         /* file name inside web/static/, such as "app.js" */
	const char *content_type; /* Content-Type header value */
	const char *etag;         /* quoted strong ETag: a prefix of the SHA-256 of data */
	const char *version;      /* the ETag without quotes, the "v" of versioned URLs */
	const unsigned char *data;
	size_t size; /* bytes of data; data[size] is a NUL added by the generator */
};

extern const struct static_asset static_assets[];
extern const size_t static_asset_count;

/* Returns the asset named `name` ("app.js"), or NULL. */
const struct static_asset *static_find(const char *name);

/*
 * Registers / and /index.html (index.html) and every path under /static/ on srv. The /
 * route replaces the server's built-in endpoint list. Call it again for every new HTTP
 * server, as for the other modules' routes. Loop thread only.
 */
void static_route(struct http_server *srv);

#endif
