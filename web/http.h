/*
 * The HTTP server (libevent evhttp): /metrics, /healthz and the routes later modules
 * add. Requests are bounded in header size and count, body size and time, and the number of
 * open connections is bounded too.
 */
#ifndef TOCSIN_HTTP_H
#define TOCSIN_HTTP_H

#include <stdint.h>

struct config;
struct config_http_tls;
struct event_base;
struct evhttp_request;
struct series_registry;

struct http_server;

/* Called before /metrics is rendered, so that the daemon refreshes its own gauges. */
typedef void http_refresh_fn(void *arg);

/*
 * Binds host:port and serves. Returns NULL (error logged with the address) when the
 * socket cannot be bound.
 */
struct http_server *http_server_new(struct event_base *base, const char *host, uint16_t port,
				    struct series_registry *reg, http_refresh_fn *refresh,
				    void *refresh_arg);
/*
 * Applies cfg's `http:` limits and its api.read and api.tokens to srv. The server copies
 * what it needs, so cfg may be freed afterwards. Call it after http_server_new() and again
 * after each reload. The size and timeout limits apply to connections accepted afterwards,
 * because libevent copies them into each connection when it accepts it.
 */
void http_server_configure(struct http_server *srv, const struct config *cfg);
/*
 * A TLS server context built from http.tls: the certificate chain, its private key and the
 * minimum protocol version.
 */
struct http_tls;

/*
 * Reads cfg's cert_file and key_file and checks that the key matches the certificate.
 * Returns NULL with *error set to a message that names the file, the problem and the fix
 * (the caller frees it). Reads the files with blocking I/O, so call it at start or reload.
 */
struct http_tls *http_tls_new(const struct config_http_tls *cfg, char **error);
void http_tls_free(struct http_tls *tls);
/*
 * Serves connections accepted from now on over TLS with `tls`, or over plain HTTP when tls
 * is NULL. The server takes ownership of tls and frees the previous one. Open connections
 * keep the context they started with until they close.
 */
void http_server_set_tls(struct http_server *srv, struct http_tls *tls);

/* Registers a handler for an exact path. */
void http_server_route(struct http_server *srv, const char *path,
		       void (*handler)(struct evhttp_request *req, void *arg), void *arg);
/*
 * Registers a handler for every path that starts with `prefix` ("/api/v1/"). Exact routes
 * win over prefix routes, and a longer prefix wins over a shorter one. The handler reads
 * the full path from the request's URI.
 */
void http_server_route_prefix(struct http_server *srv, const char *prefix,
			      void (*handler)(struct evhttp_request *req, void *arg), void *arg);
/*
 * Sends the reply with the request's output buffer as its body. For a HEAD request the body
 * is dropped, because libevent 2.1 would write it after the headers and so corrupt the next
 * response on a keep-alive connection. Route handlers should reply through this function.
 */
void http_send_reply(struct evhttp_request *req, int code, const char *reason);

/* The bound port (useful with port 0). */
uint16_t http_server_port(const struct http_server *srv);
void http_server_free(struct http_server *srv);

/*
 * The reasons the server rejects a request or a connection for. Each has a name, the value
 * of the label `reason` of tocsin_http_rejected_total.
 */
enum http_reject_reason {
	HTTP_REJECT_UNAUTHORIZED,      /* 401: no bearer token, or one that matches none */
	HTTP_REJECT_FORBIDDEN,         /* 403: a token without the role, or writes disabled */
	HTTP_REJECT_BODY_TOO_LARGE,    /* 413: over http.max_body_size or the API's 64 KiB */
	HTTP_REJECT_HEADERS_TOO_LARGE, /* 431 over http.max_header_count, 400 over max_header_size */
	HTTP_REJECT_CONNECTION_LIMIT,  /* 503: over http.max_connections */
	HTTP_REJECT_TIMEOUT,           /* closed after http.timeout with the request incomplete */
	HTTP_REJECT_BAD_REQUEST,       /* 400: a malformed request line, header or path */
	HTTP_REJECT_TLS_HANDSHAKE,     /* the TLS handshake failed */
	HTTP_REJECT_COUNT,
};

/* "unauthorized", "forbidden", "body_too_large", ...: the reason's label value. */
const char *http_reject_reason_name(enum http_reject_reason reason);

/*
 * Counts a request that a route handler rejects with `status` and logs it, throttled per
 * reason, with the client's address, the method, the path without its query string, and
 * `detail`. Headers are never logged, so neither is a token. Call it before replying.
 */
void http_server_reject(struct http_server *srv, struct evhttp_request *req,
			enum http_reject_reason reason, int status, const char *detail);

/* Counters of served requests, for tocsin's own metrics. */
struct http_stats {
	uint64_t requests;
	uint64_t scrapes;
	uint64_t rejected[HTTP_REJECT_COUNT]; /* requests and connections, by reason */
	double last_scrape_seconds;
};
void http_server_stats(const struct http_server *srv, struct http_stats *out);

#endif
