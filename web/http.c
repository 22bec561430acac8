/*
 * The HTTP server: one evhttp on the daemon's event loop, a table of exact-path routes,
 * and the built-in endpoints /, /healthz and /metrics. Every request passes through one
 * dispatch function, which counts it and picks the route.
 */
#include "web/http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "collector/log.h"
#include "collector/xalloc.h"
#include "web/exposition.h"

/* Limits on one request. A scrape request is a few hundred bytes. */
#define HTTP_MAX_HEADERS_SIZE (16 * 1024)
#define HTTP_MAX_BODY_SIZE    (1024 * 1024)
/* Read and write timeout of a connection, idle keep-alive connections included. */
#define HTTP_TIMEOUT_SECONDS 30

/* Methods evhttp passes to the handlers. It replies 501 Not Implemented to any other. */
#define HTTP_ALLOWED_METHODS                                                                       \
	(EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
	 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH)

#define HTTP_TEXT_CONTENT_TYPE "text/plain; charset=utf-8"

/* Room for "[", a host name of up to 255 bytes, "]:" and a port. */
#define HTTP_ADDRESS_SIZE 272

struct http_route {
	char *path;
	void (*handler)(struct evhttp_request *req, void *arg);
	void *arg;
	const char *description; /* text on the index page, NULL for routes of other modules */
	bool prefix;             /* matches every path that starts with `path` */
};

struct http_server {
	struct evhttp *http;
	struct evhttp_bound_socket *socket;
	struct series_registry *reg;
	http_refresh_fn *refresh;
	void *refresh_arg;
	uint16_t port;
	struct http_route *routes;
	size_t route_count;
	size_t route_capacity;
	struct http_stats stats;
};

void http_send_reply(struct evhttp_request *req, int code, const char *reason)
{
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		struct evbuffer *body = evhttp_request_get_output_buffer(req);

		evbuffer_drain(body, evbuffer_get_length(body));
	}
	evhttp_send_reply(req, code, reason, NULL);
}

static void send_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);

	evhttp_add_header(headers, "Content-Type", HTTP_TEXT_CONTENT_TYPE);
	evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
	http_send_reply(req, code, reason);
}

/*
 * Rejects any method but GET and HEAD with 405 and an Allow header. Returns whether the
 * handler may continue.
 */
static bool accept_read_method(struct evhttp_request *req)
{
	enum evhttp_cmd_type method = evhttp_request_get_command(req);

	if (method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD)
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
	send_text(req, 405, "Method Not Allowed", "method not allowed: use GET or HEAD\n");
	return false;
}

static double monotonic_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* A HEAD request gets the headers only: nothing is refreshed or rendered. */
static void handle_metrics(struct evhttp_request *req, void *arg)
{
	struct http_server *srv = arg;
	struct evbuffer *body = evhttp_request_get_output_buffer(req);
	double start;

	if (!accept_read_method(req))
		return;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  EXPOSITION_CONTENT_TYPE);
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		http_send_reply(req, HTTP_OK, "OK");
		return;
	}

	/* Counted before the refresh, so that the daemon's own counter includes this scrape. */
	srv->stats.scrapes++;
	start = monotonic_seconds();
	if (srv->refresh != NULL)
		srv->refresh(srv->refresh_arg);
	if (srv->reg != NULL)
		exposition_write_registry(body, srv->reg);
	srv->stats.last_scrape_seconds = monotonic_seconds() - start;
	http_send_reply(req, HTTP_OK, "OK");
}

static void handle_healthz(struct evhttp_request *req, void *arg)
{
	if (accept_read_method(req))
		send_text(req, HTTP_OK, "OK", "ok\n");
}

static void handle_index(struct evhttp_request *req, void *arg)
{
	const struct http_server *srv = arg;
	struct evbuffer *body = evhttp_request_get_output_buffer(req);

	if (!accept_read_method(req))
		return;
	evbuffer_add_printf(body, "tocsin monitoring daemon\n\nEndpoints:\n");
	for (size_t i = 0; i < srv->route_count; i++) {
		const struct http_route *route = &srv->routes[i];

		if (route->description != NULL)
			evbuffer_add_printf(body, "  %-10s %s\n", route->path, route->description);
		else
			evbuffer_add_printf(body, "  %s\n", route->path);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  HTTP_TEXT_CONTENT_TYPE);
	http_send_reply(req, HTTP_OK, "OK");
}

/* An exact route wins over a prefix route; among prefix routes the longest prefix wins. */
static const struct http_route *find_route(const struct http_server *srv, const char *path)
{
	const struct http_route *best = NULL;
	size_t best_length = 0;

	for (size_t i = 0; i < srv->route_count; i++) {
		const struct http_route *route = &srv->routes[i];
		size_t length = strlen(route->path);

		if (!route->prefix) {
			if (strcmp(route->path, path) == 0)
				return route;
		} else if (strncmp(route->path, path, length) == 0 &&
			   (best == NULL || length > best_length)) {
			best = route;
			best_length = length;
		}
	}
	return best;
}

/*
 * Matches the percent-decoded path, without the query string, against the routes, as
 * evhttp_set_cb would. A path that decodes to an embedded NUL is rejected, because it
 * would otherwise match the route named by its first part.
 */
static void dispatch(struct evhttp_request *req, void *arg)
{
	struct http_server *srv = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *raw_path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const struct http_route *route;
	size_t length;
	char *path;

	srv->stats.requests++;
	if (raw_path == NULL || raw_path[0] == '\0')
		raw_path = "/";
	path = evhttp_uridecode(raw_path, 0, &length);
	if (path == NULL || strlen(path) != length) {
		free(path);
		send_text(req, HTTP_BADREQUEST, "Bad Request", "invalid request path\n");
		return;
	}
	route = find_route(srv, path);
	free(path);

	if (route == NULL) {
		send_text(req, HTTP_NOTFOUND, "Not Found", "not found; see / for the endpoints\n");
		return;
	}
	route->handler(req, route->arg);
}

static void add_route(struct http_server *srv, const char *path,
		      void (*handler)(struct evhttp_request *req, void *arg), void *arg,
		      const char *description, bool prefix)
{
	struct http_route *route;

	for (size_t i = 0; i < srv->route_count; i++) {
		if (strcmp(srv->routes[i].path, path) == 0 && srv->routes[i].prefix == prefix) {
			/* A built-in route (one with a description, such as the endpoint list at
			 * /) may be replaced on purpose: the dashboard takes over /. */
			if (srv->routes[i].description == NULL)
				log_warn("http", NULL,
					 "route %s is registered twice, so the later handler "
					 "replaces the earlier one",
					 path);
			route = &srv->routes[i];
			route->handler = handler;
			route->arg = arg;
			route->description = description;
			return;
		}
	}
	srv->routes = xreallocarray_grow(srv->routes, &srv->route_capacity, srv->route_count + 1,
					 sizeof(*srv->routes));
	route = &srv->routes[srv->route_count++];
	route->path = xstrdup(path);
	route->handler = handler;
	route->arg = arg;
	route->description = description;
	route->prefix = prefix;
}

void http_server_route(struct http_server *srv, const char *path,
		       void (*handler)(struct evhttp_request *req, void *arg), void *arg)
{
	add_route(srv, path, handler, arg, NULL, false);
}

void http_server_route_prefix(struct http_server *srv, const char *prefix,
			      void (*handler)(struct evhttp_request *req, void *arg), void *arg)
{
	add_route(srv, prefix, handler, arg, NULL, true);
}

static const char *bind_hint(int err)
{
	switch (err) {
	case EADDRINUSE:
		return "another tocsind or an exporter already listens on this port, "
		       "so choose another address with --listen";
	case EACCES:
		return "ports below 1024 need the CAP_NET_BIND_SERVICE capability, "
		       "so choose a higher port with --listen";
	case EADDRNOTAVAIL:
		return "no interface of this host has this address, so check --listen";
	default:
		return "check the address given with --listen";
	}
}

/* Reads the port the kernel chose when the caller asked for port 0. */
static uint16_t bound_port(struct evhttp_bound_socket *socket)
{
	struct sockaddr_storage address;
	socklen_t length = sizeof(address);
	evutil_socket_t fd = evhttp_bound_socket_get_fd(socket);

	if (getsockname(fd, (struct sockaddr *)&address, &length) != 0)
		return 0;
	if (address.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&address)->sin6_port);
	if (address.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&address)->sin_port);
	return 0;
}

/*
 * Accepts an IPv6 literal with or without brackets ("::1" or "[::1]"), because
 * getaddrinfo, which evhttp calls, wants it without them.
 */
static char *strip_brackets(const char *host)
{
	size_t length = strlen(host);

	if (length >= 2 && host[0] == '[' && host[length - 1] == ']')
		return xstrndup(host + 1, length - 2);
	return xstrdup(host);
}

/*
 * Accepts an IPv6 address (with an optional zone, as in fe80::1%eth0), or an IPv4 address
 * or host name made of letters, digits, '-', '.' and '_'. Anything else is rejected here,
 * before evhttp could send it to the resolver.
 */
static bool host_is_valid(const char *host)
{
	static const char name_chars[] = "abcdefghijklmnopqrstuvwxyz"
					 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._";
	struct in6_addr address;
	char bare[INET6_ADDRSTRLEN];
	size_t length;

	if (strchr(host, ':') == NULL)
		return host[0] != '\0' && host[strspn(host, name_chars)] == '\0';

	length = strcspn(host, "%");
	if (length >= sizeof(bare))
		return false;
	memcpy(bare, host, length);
	bare[length] = '\0';
	return inet_pton(AF_INET6, bare, &address) == 1;
}

/* Renders host:port, with brackets around an IPv6 address so that the port stays distinct. */
static void format_address(char *buf, size_t size, const char *host, uint16_t port)
{
	if (strchr(host, ':') != NULL)
		snprintf(buf, size, "[%s]:%u", host, port);
	else
		snprintf(buf, size, "%s:%u", host, port);
}

static bool bind_socket(struct http_server *srv, const char *host, uint16_t port)
{
	char address[HTTP_ADDRESS_SIZE];
	char ids[2 * HTTP_ADDRESS_SIZE];
	char *bare_host = strip_brackets(host);
	bool bound = false;

	format_address(address, sizeof(address), bare_host, port);
	log_ids(ids, sizeof(ids), "listen", address, NULL);

	/*
	 * errno is cleared first because a failed name lookup inside evhttp leaves it
	 * untouched, and a stale value would name the wrong cause.
	 */
	if (!host_is_valid(bare_host)) {
		log_error("http", ids,
			  "invalid listen host \"%s\": expected an IP address such as 127.0.0.1 "
			  "or ::1, or a host name",
			  bare_host);
		goto out;
	}

	/*
	 * NOTE: evhttp resolves a host name with a blocking getaddrinfo and binds only the
	 * first address it returns, so an IP address is the predictable choice.
	 */
	errno = 0;
	srv->socket = evhttp_bind_socket_with_handle(srv->http, bare_host, port);
	if (srv->socket == NULL) {
		int err = errno;

		/* The errno text goes before the hint, so the line reads cause first, then fix. */
		if (err != 0)
			log_error("http", ids, "cannot listen: %s; %s", strerror(err),
				  bind_hint(err));
		else
			log_error("http", ids,
				  "cannot listen: the host name did not resolve to an address");
		goto out;
	}

	srv->port = bound_port(srv->socket);
	format_address(address, sizeof(address), bare_host, srv->port);
	log_ids(ids, sizeof(ids), "listen", address, NULL);
	log_info("http", ids, "listening");
	bound = true;
out:
	free(bare_host);
	return bound;
}

struct http_server *http_server_new(struct event_base *base, const char *host, uint16_t port,
				    struct series_registry *reg, http_refresh_fn *refresh,
				    void *refresh_arg)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));

	srv->reg = reg;
	srv->refresh = refresh;
	srv->refresh_arg = refresh_arg;
	srv->http = evhttp_new(base);
	if (srv->http == NULL) {
		log_error("http", NULL, "cannot create the HTTP server: evhttp_new failed");
		free(srv);
		return NULL;
	}
	evhttp_set_max_headers_size(srv->http, HTTP_MAX_HEADERS_SIZE);
	evhttp_set_max_body_size(srv->http, HTTP_MAX_BODY_SIZE);
	evhttp_set_timeout(srv->http, HTTP_TIMEOUT_SECONDS);
	evhttp_set_allowed_methods(srv->http, HTTP_ALLOWED_METHODS);
	evhttp_set_gencb(srv->http, dispatch, srv);

	add_route(srv, "/", handle_index, srv, "this list", false);
	add_route(srv, "/healthz", handle_healthz, srv, "liveness check, answers \"ok\"", false);
	add_route(srv, "/metrics", handle_metrics, srv, "metrics in the Prometheus text format",
		  false);

	if (!bind_socket(srv, host, port)) {
		http_server_free(srv);
		return NULL;
	}
	return srv;
}

uint16_t http_server_port(const struct http_server *srv)
{
	return srv->port;
}

void http_server_stats(const struct http_server *srv, struct http_stats *out)
{
	*out = srv->stats;
}

void http_server_free(struct http_server *srv)
{
	if (srv == NULL)
		return;
	/* evhttp_free closes the listening socket and every open connection. */
	evhttp_free(srv->http);
	for (size_t i = 0; i < srv->route_count; i++)
		free(srv->routes[i].path);
	free(srv->routes);
	free(srv);
}
