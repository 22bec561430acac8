/*
 * The HTTP server: one evhttp on the daemon's event loop, a table of exact-path routes,
 * and the built-in endpoints /, /healthz and /metrics. Every request passes through one
 * dispatch function, which counts it, enforces the connection, header and read-access
 * limits, and picks the route. Every rejection, including the replies libevent sends by
 * itself, timeouts and failed TLS handshakes, is counted by reason and logged (throttled).
 */
#include "web/http.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "collector/clock.h"
#include "collector/config.h"
#include "collector/log.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"
#include "web/exposition.h"

/*
 * Limits until http_server_configure() applies the config's `http:` section. They equal
 * that section's defaults, so that a server made without a config (the unit tests) is
 * bounded the same way.
 */
#define HTTP_MAX_HEADERS_SIZE (16 * 1024)
#define HTTP_MAX_HEADER_COUNT 64
#define HTTP_MAX_BODY_SIZE    (1024 * 1024)
#define HTTP_MAX_CONNECTIONS  256
#define HTTP_TIMEOUT_SECONDS  30

/* Methods evhttp passes to the handlers. It replies 501 Not Implemented to any other. */
#define HTTP_ALLOWED_METHODS                                                                       \
	(EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
	 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH)

#define HTTP_TEXT_CONTENT_TYPE "text/plain; charset=utf-8"

/* Room for "[", a host name of up to 255 bytes, "]:" and a port. */
#define HTTP_ADDRESS_SIZE 272

/* Bytes kept of a request's first line, to log the method and path of a request that
 * libevent rejects before dispatch() gets it. */
#define HTTP_REQUEST_LINE_SIZE 160

/* Rejections of one reason are logged at most once per interval, which doubles from 10 s up
 * to 5 minutes while they go on. */
#define HTTP_REJECT_LOG_INITIAL_MS 10000u
#define HTTP_REJECT_LOG_MAX_MS     300000u

struct http_route {
	char *path;
	void (*handler)(struct evhttp_request *req, void *arg);
	void *arg;
	const char *description; /* text on the index page, NULL for routes of other modules */
	bool prefix;             /* matches every path that starts with `path` */
};

/* The stage of a connection's current request, which decides whether a close is a timeout. */
enum http_connection_state {
	HTTP_CONNECTION_IDLE,     /* no byte of a request since the last reply */
	HTTP_CONNECTION_READING,  /* part of a request arrived; libevent waits for the rest */
	HTTP_CONNECTION_HANDLING, /* dispatch() has the request */
	HTTP_CONNECTION_DONE,     /* libevent rejected the request and closes the connection */
};

/*
 * An open client connection, from the bufferevent that make_bufferevent() gives evhttp until
 * evhttp closes it. `evcon` is NULL until hook_connections() finds it. `rejected` marks one
 * accepted over max_connections: its first request gets 503 and the connection is closed.
 */
struct http_connection {
	LIST_ENTRY(http_connection) entry;
	struct http_server *srv;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;
	struct evbuffer_cb_entry *input_cb;
	struct evbuffer_cb_entry *output_cb;
	enum http_connection_state state;
	bool counted; /* track_connection() has weighed it against max_connections */
	bool rejected;
	bool tls_failed;
	uint64_t requests;    /* requests dispatched */
	size_t request_bytes; /* bytes of the current request received so far */
	char address[HTTP_ADDRESS_SIZE];
	char line[HTTP_REQUEST_LINE_SIZE]; /* the current request's first line, cut */
	size_t line_length;
	bool line_complete;
};

LIST_HEAD(http_connection_list, http_connection);

/* A copy of a configured bearer token, so that the server does not depend on a config's
 * lifetime. */
struct http_token {
	unsigned char sha256[CONFIG_API_SHA256_SIZE];
};

struct http_tls {
	SSL_CTX *ctx;
};

struct http_server {
	struct evhttp *http;
	struct http_tls *tls; /* NULL: plain HTTP */
	struct evhttp_bound_socket *socket;
	struct series_registry *reg;
	http_refresh_fn *refresh;
	void *refresh_arg;
	uint16_t port;
	struct http_route *routes;
	size_t route_count;
	size_t route_capacity;
	struct http_stats stats;

	size_t max_header_count;
	size_t max_header_size;
	size_t max_connections;
	struct http_connection_list connections; /* every open client connection */
	struct event *hook_event;                /* runs hook_connections() after an accept */
	size_t accepted_count;                   /* connections counted and not marked rejected */
	bool closing; /* http_server_free() is closing every connection */
	struct throttle reject_log[HTTP_REJECT_COUNT];

	enum config_api_read read_access;
	struct http_token *tokens;
	size_t token_count;
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
	start = clock_monotonic_seconds();
	if (srv->refresh != NULL)
		srv->refresh(srv->refresh_arg);
	if (srv->reg != NULL)
		exposition_write_registry(body, srv->reg);
	srv->stats.last_scrape_seconds = clock_monotonic_seconds() - start;
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

static const char *const reject_reason_names[HTTP_REJECT_COUNT] = {
    [HTTP_REJECT_UNAUTHORIZED] = "unauthorized",
    [HTTP_REJECT_FORBIDDEN] = "forbidden",
    [HTTP_REJECT_BODY_TOO_LARGE] = "body_too_large",
    [HTTP_REJECT_HEADERS_TOO_LARGE] = "headers_too_large",
    [HTTP_REJECT_CONNECTION_LIMIT] = "connection_limit",
    [HTTP_REJECT_TIMEOUT] = "timeout",
    [HTTP_REJECT_BAD_REQUEST] = "bad_request",
    [HTTP_REJECT_TLS_HANDSHAKE] = "tls_handshake",
};

const char *http_reject_reason_name(enum http_reject_reason reason)
{
	return reason < HTTP_REJECT_COUNT ? reject_reason_names[reason] : "unknown";
}

static const char *method_name(enum evhttp_cmd_type method)
{
	switch (method) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "-";
	}
}

/* Copies text up to a space, a '?' or its end into buf, with bytes that are not printable
 * ASCII replaced by '?', so that a log line cannot be split or forged through it. */
static const char *copy_token(char *buf, size_t size, const char *text)
{
	size_t n = 0;

	while (text[n] != '\0' && text[n] != ' ' && text[n] != '?' && n + 1 < size) {
		unsigned char c = (unsigned char)text[n];

		buf[n] = c >= 0x21 && c < 0x7f ? (char)c : '?';
		n++;
	}
	buf[n] = '\0';
	return n > 0 ? buf : "-";
}

/*
 * Counts one rejection and logs it unless its reason was logged within the throttle's
 * interval. status 0 means no reply was sent. method and path may be NULL when unknown.
 */
static void log_reject(struct http_server *srv, enum http_reject_reason reason, int status,
		       const char *address, const char *method, const char *path,
		       const char *detail)
{
	char method_buf[16];
	char path_buf[HTTP_REQUEST_LINE_SIZE];
	char status_buf[24];
	char ids[3 * HTTP_ADDRESS_SIZE];
	uint64_t suppressed = 0;

	srv->stats.rejected[reason]++;
	if (!throttle_fail(&srv->reject_log[reason], (uint64_t)(clock_monotonic_seconds() * 1000.0),
			   &suppressed))
		return;
	if (status != 0)
		snprintf(status_buf, sizeof(status_buf), "rejected with %d", status);
	else
		snprintf(status_buf, sizeof(status_buf), "closed");
	log_ids(ids, sizeof(ids), "remote", address != NULL && address[0] != '\0' ? address : "-",
		"method", copy_token(method_buf, sizeof(method_buf), method != NULL ? method : ""),
		"path", copy_token(path_buf, sizeof(path_buf), path != NULL ? path : ""), "reason",
		reject_reason_names[reason], NULL);
	if (suppressed > 0)
		log_warn("http", ids, "%s: %s (%" PRIu64 " more with this reason not logged)",
			 status_buf, detail, suppressed);
	else
		log_warn("http", ids, "%s: %s", status_buf, detail);
}

/* Splits conn's captured first line into the method and the path for log_reject(). */
static void reject_connection(struct http_connection *conn, enum http_reject_reason reason,
			      int status, const char *detail)
{
	const char *space = memchr(conn->line, ' ', conn->line_length);
	char method[16] = "";

	if (space != NULL && (size_t)(space - conn->line) < sizeof(method)) {
		memcpy(method, conn->line, (size_t)(space - conn->line));
		method[space - conn->line] = '\0';
	}
	log_reject(conn->srv, reason, status, conn->address, method,
		   space != NULL ? space + 1 : NULL, detail);
}

static const char *peer_address(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *address = NULL;
	ev_uint16_t port = 0;

	if (evcon == NULL)
		return NULL;
	evhttp_connection_get_peer(evcon, &address, &port);
	return address;
}

void http_server_reject(struct http_server *srv, struct evhttp_request *req,
			enum http_reject_reason reason, int status, const char *detail)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);

	if (srv == NULL)
		return;
	log_reject(srv, reason, status, peer_address(req),
		   method_name(evhttp_request_get_command(req)),
		   uri != NULL ? evhttp_uri_get_path(uri) : NULL, detail);
}

static struct http_connection *find_connection(struct http_server *srv,
					       const struct evhttp_connection *evcon)
{
	struct http_connection *conn;

	LIST_FOREACH(conn, &srv->connections, entry)
	{
		if (conn->evcon == evcon)
			return conn;
	}
	return NULL;
}

/* Returns whether the client has not closed its end, so that a close was the server's. */
static bool peer_still_open(struct http_connection *conn)
{
	evutil_socket_t fd = bufferevent_getfd(conn->bev);
	int saved = errno;
	char byte;
	ssize_t n;
	bool open;

	if (fd < 0)
		return false;
	n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
	open = n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
	errno = saved;
	return open;
}

static void connection_free(struct http_connection *conn)
{
	SSL *ssl = bufferevent_openssl_get_ssl(conn->bev);

	if (ssl != NULL)
		SSL_set_app_data(ssl, NULL);
	evbuffer_remove_cb_entry(bufferevent_get_input(conn->bev), conn->input_cb);
	evbuffer_remove_cb_entry(bufferevent_get_output(conn->bev), conn->output_cb);
	LIST_REMOVE(conn, entry);
	free(conn);
}

/*
 * Called by evhttp when a connection closes, including from evhttp_free, while the socket is
 * still open. libevent 2.1 closes a connection whose request did not arrive within
 * http.timeout without a reply (no 408), so such a close is recognized here: part of a
 * request had arrived, or none on a new connection, and the client had not closed its end.
 */
static void on_connection_close(struct evhttp_connection *evcon, void *arg)
{
	struct http_connection *conn = arg;
	struct http_server *srv = conn->srv;
	bool waiting = conn->state == HTTP_CONNECTION_READING ||
		       (conn->state == HTTP_CONNECTION_IDLE && conn->requests == 0);

	if (!srv->closing && !conn->tls_failed && waiting && peer_still_open(conn))
		reject_connection(conn, HTTP_REJECT_TIMEOUT, 0,
				  "no complete request within http.timeout");
	if (conn->counted && !conn->rejected)
		srv->accepted_count--;
	connection_free(conn);
}

/*
 * Turns off Nagle's algorithm. A response that does not fill the last segment would
 * otherwise wait for the client's delayed ACK, about 40 ms on Linux, before its end is
 * sent: a keep-alive client then gets one /metrics scrape per 40 ms whatever it costs.
 * A failure only costs that latency, so it is not reported.
 */
static void set_nodelay(evutil_socket_t fd)
{
	int on = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/*
 * Finds the evhttp connection of each bufferevent that make_bufferevent() made since the
 * last run, and takes its close callback. Runs after the accept callback has returned,
 * because evhttp creates the connection only after the bufferevent. evhttp passes the
 * connection as the argument of the bufferevent's callbacks; a bufferevent whose callbacks
 * are gone belongs to a connection that evhttp already freed.
 */
static void hook_connections(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;
	struct http_connection *conn;
	struct http_connection *next;

	for (conn = LIST_FIRST(&srv->connections); conn != NULL; conn = next) {
		struct bufferevent *bev = conn->bev;
		void *cbarg = NULL;

		next = LIST_NEXT(conn, entry);
		if (conn->evcon != NULL)
			continue;
		bufferevent_getcb(bev, NULL, NULL, NULL, &cbarg);
		if (cbarg == NULL) {
			connection_free(conn);
		} else {
			char *address = NULL;
			ev_uint16_t port = 0;

			conn->evcon = cbarg;
			set_nodelay(bufferevent_getfd(bev));
			evhttp_connection_get_peer(conn->evcon, &address, &port);
			snprintf(conn->address, sizeof(conn->address), "%s",
				 address != NULL ? address : "");
			evhttp_connection_set_closecb(conn->evcon, on_connection_close, conn);
		}
		/* The reference make_bufferevent() took; the last one frees the bufferevent. */
		bufferevent_decref(bev);
	}
}

/* Copies the start of a request's first line as it arrives, for reject_connection(). */
static void capture_line(struct http_connection *conn, struct evbuffer *buf, size_t added)
{
	size_t length = evbuffer_get_length(buf);
	size_t room = sizeof(conn->line) - 1 - conn->line_length;
	struct evbuffer_ptr start;
	char *end;
	ev_ssize_t copied;

	if (conn->line_complete || room == 0 || added > length)
		return;
	if (evbuffer_ptr_set(buf, &start, length - added, EVBUFFER_PTR_SET) < 0)
		return;
	copied = evbuffer_copyout_from(buf, &start, conn->line + conn->line_length,
				       added < room ? added : room);
	if (copied <= 0)
		return;
	conn->line[conn->line_length + (size_t)copied] = '\0';
	end = strpbrk(conn->line + conn->line_length, "\r\n");
	conn->line_length += (size_t)copied;
	if (end != NULL) {
		*end = '\0';
		conn->line_length = (size_t)(end - conn->line);
		conn->line_complete = true;
	}
}

/* Follows the bytes of each request as libevent reads them. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct http_connection *conn = arg;

	if (info->n_added == 0)
		return;
	if (conn->state == HTTP_CONNECTION_IDLE) {
		conn->state = HTTP_CONNECTION_READING;
		conn->request_bytes = 0;
		conn->line_length = 0;
		conn->line[0] = '\0';
		conn->line_complete = false;
	}
	if (conn->state != HTTP_CONNECTION_READING)
		return;
	conn->request_bytes += info->n_added;
	capture_line(conn, buf, info->n_added);
}

/*
 * Catches the error replies libevent sends by itself, before dispatch() sees the request: 400
 * for a malformed request or headers over http.max_header_size, and 413 for a body over
 * http.max_body_size. libevent writes a reply's status line with one evbuffer_add_printf().
 */
static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct http_connection *conn = arg;
	size_t length = evbuffer_get_length(buf);
	struct evbuffer_ptr start;
	char head[13];
	int status;

	if (info->n_added < 12 || conn->state == HTTP_CONNECTION_HANDLING ||
	    conn->state == HTTP_CONNECTION_DONE || conn->tls_failed || info->n_added > length)
		return;
	if (evbuffer_ptr_set(buf, &start, length - info->n_added, EVBUFFER_PTR_SET) < 0 ||
	    evbuffer_copyout_from(buf, &start, head, 12) != 12)
		return;
	head[12] = '\0';
	if (strncmp(head, "HTTP/1.", 7) != 0 || sscanf(head + 9, "%3d", &status) != 1 ||
	    status < 400)
		return; /* 100 Continue, which the body follows */
	conn->state = HTTP_CONNECTION_DONE;
	if (status == 413)
		reject_connection(conn, HTTP_REJECT_BODY_TOO_LARGE, status,
				  "the body is larger than http.max_body_size");
	else if (status == 400 && conn->request_bytes > conn->srv->max_header_size)
		reject_connection(conn, HTTP_REJECT_HEADERS_TOO_LARGE, status,
				  "the request line and headers are larger than "
				  "http.max_header_size");
	else if (status == 400)
		reject_connection(conn, HTTP_REJECT_BAD_REQUEST, status,
				  "malformed request line or header");
}

/* Marks the connection idle again once the reply to its request is sent. */
static void on_request_complete(struct evhttp_request *req, void *arg)
{
	struct http_connection *conn = arg;

	conn->state = HTTP_CONNECTION_IDLE;
	conn->request_bytes = 0;
}

/*
 * Counts the connection of req against max_connections the first time one of its requests
 * arrives, and returns whether it is over, so that it gets 503 and is closed.
 * NOTE: a connection counts from its first complete request line and headers, so one that
 * sends nothing takes no slot; the timeout closes it.
 */
static bool track_connection(struct http_server *srv, struct http_connection *conn)
{
	if (conn == NULL)
		return false;
	if (conn->counted)
		return conn->rejected;
	conn->counted = true;
	conn->rejected = srv->accepted_count >= srv->max_connections;
	if (!conn->rejected)
		srv->accepted_count++;
	return conn->rejected;
}

static size_t header_count(struct evhttp_request *req)
{
	const struct evkeyval *header;
	size_t count = 0;

	for (header = evhttp_request_get_input_headers(req)->tqh_first; header != NULL;
	     header = header->next.tqe_next)
		count++;
	return count;
}

/* 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8 (::ffff:127.0.0.1 on a dual-stack socket). */
static bool peer_is_loopback(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct sockaddr *peer = evcon != NULL ? evhttp_connection_get_addr(evcon) : NULL;

	if (peer == NULL)
		return false;
	if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)peer;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (peer->sa_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)peer)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(in6))
			return true;
		return IN6_IS_ADDR_V4MAPPED(in6) && in6->s6_addr[12] == 127;
	}
	return false;
}

/*
 * Returns whether the request carries `Authorization: Bearer TOKEN` with a configured token
 * of any role. Every token is compared in constant time, so the timing tells nothing about
 * which bytes matched.
 */
static bool has_valid_token(const struct http_server *srv, struct evhttp_request *req)
{
	const char *header =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_length = 0;
	bool found = false;

	if (header == NULL || strncmp(header, "Bearer ", 7) != 0)
		return false;
	if (EVP_Digest(header + 7, strlen(header + 7), digest, &digest_length, EVP_sha256(),
		       NULL) != 1 ||
	    digest_length != CONFIG_API_SHA256_SIZE)
		return false;
	for (size_t i = 0; i < srv->token_count; i++) {
		if (CRYPTO_memcmp(digest, srv->tokens[i].sha256, CONFIG_API_SHA256_SIZE) == 0)
			found = true;
	}
	return found;
}

/*
 * Sends an error found by the server's own checks. Under /api/ it has the shape of the API's
 * other errors, so that API clients read every error the same way; elsewhere it is plain text
 * "ERROR: DETAIL". error and detail are constants without '"' or '\\', so they need no JSON
 * escaping.
 */
static void send_error(struct evhttp_request *req, const char *path, int code, const char *reason,
		       const char *error_type, const char *error, const char *detail)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	struct evbuffer *body = evhttp_request_get_output_buffer(req);

	if (strncmp(path, "/api/", 5) == 0) {
		evhttp_add_header(headers, "Content-Type", "application/json");
		evbuffer_add_printf(body,
				    "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":\"%s\","
				    "\"detail\":\"%s\"}\n",
				    error_type, error, detail);
	} else {
		evhttp_add_header(headers, "Content-Type", HTTP_TEXT_CONTENT_TYPE);
		evbuffer_add_printf(body, "%s: %s\n", error, detail);
	}
	http_send_reply(req, code, reason);
}

/*
 * Applies api.read to every route but /healthz, which stays open for liveness checks. A
 * write still needs a token of role admin, checked by the API. Returns whether the
 * handler may run, or false after replying 401.
 */
static bool authorize_read(struct http_server *srv, struct evhttp_request *req, const char *path)
{
	const char *detail;

	if (strcmp(path, "/healthz") == 0 || srv->read_access == CONFIG_API_READ_OPEN)
		return true;
	if (srv->read_access == CONFIG_API_READ_LOOPBACK && peer_is_loopback(req))
		return true;
	if (has_valid_token(srv, req))
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
			  "Bearer realm=\"tocsin\"");
	detail = srv->read_access == CONFIG_API_READ_TOKEN
		     ? "api.read is token, so every read needs the header `Authorization: "
		       "Bearer TOKEN` with a token of role read or admin"
		     : "reads from a non-loopback address need the header `Authorization: "
		       "Bearer TOKEN` with a token of role read or admin";
	http_server_reject(
	    srv, req, HTTP_REJECT_UNAUTHORIZED, 401,
	    srv->read_access == CONFIG_API_READ_TOKEN
		? "request without a valid bearer token, and api.read is token"
		: "request from a non-loopback address without a valid bearer token");
	send_error(req, path, 401, "Unauthorized", "unauthorized", "unauthorized", detail);
	return false;
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
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct http_connection *conn = evcon != NULL ? find_connection(srv, evcon) : NULL;
	size_t length;
	char *path;

	if (raw_path == NULL || raw_path[0] == '\0')
		raw_path = "/";
	srv->stats.requests++;
	if (conn != NULL) {
		conn->state = HTTP_CONNECTION_HANDLING;
		conn->requests++;
		evhttp_request_set_on_complete_cb(req, on_request_complete, conn);
	}
	if (track_connection(srv, conn)) {
		http_server_reject(srv, req, HTTP_REJECT_CONNECTION_LIMIT, 503,
				   "http.max_connections connections are open");
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		send_error(req, raw_path, 503, "Service Unavailable", "unavailable",
			   "too many connections",
			   "the server has http.max_connections connections open; retry later");
		return;
	}
	if (header_count(req) > srv->max_header_count) {
		http_server_reject(srv, req, HTTP_REJECT_HEADERS_TOO_LARGE, 431,
				   "more header fields than http.max_header_count");
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		send_error(req, raw_path, 431, "Request Header Fields Too Large", "bad_data",
			   "too many request header fields",
			   "the request has more header fields than http.max_header_count allows");
		return;
	}
	path = evhttp_uridecode(raw_path, 0, &length);
	if (path == NULL || strlen(path) != length) {
		free(path);
		http_server_reject(
		    srv, req, HTTP_REJECT_BAD_REQUEST, 400,
		    "the path is not valid percent-encoding or decodes to a NUL byte");
		send_error(req, raw_path, HTTP_BADREQUEST, "Bad Request", "bad_data",
			   "invalid request path",
			   "the path is not valid percent-encoding or contains %00");
		return;
	}
	route = find_route(srv, path);
	if (!authorize_read(srv, req, path)) {
		free(path);
		return;
	}
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

/*
 * Writes OpenSSL's reason for the failure into buf and clears its error queue. The oldest
 * queued error is the cause, such as "no start line"; later ones only name the caller.
 */
static void tls_error_reason(char *buf, size_t size)
{
	unsigned long code = ERR_peek_error();
	const char *reason = code != 0 ? ERR_reason_error_string(code) : NULL;

	snprintf(buf, size, "OpenSSL: %s", reason != NULL ? reason : "no reason given");
	ERR_clear_error();
}

/*
 * Opens the file once before OpenSSL does, because OpenSSL reports a missing or unreadable
 * file without the errno text. Returns NULL, or the message for the caller.
 */
static char *tls_check_readable(const char *key, const char *path)
{
	FILE *file = fopen(path, "r");

	if (file == NULL)
		return xasprintf("http.tls.%s %s: cannot open: %s; check the path (a relative one "
				 "is resolved against tocsind's working directory) and that "
				 "tocsind may read the file",
				 key, path, strerror(errno));
	fclose(file);
	return NULL;
}

/* Fails any passphrase prompt, so that an encrypted key never blocks on the terminal. */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return 0;
}

static char *tls_key_mismatch(const struct config_http_tls *cfg, const char *reason)
{
	return xasprintf("http.tls.key_file %s: the private key does not match the certificate "
			 "in %s (%s); give the key the certificate was issued for",
			 cfg->key_file, cfg->cert_file, reason);
}

static char *tls_load_files(SSL_CTX *ctx, const struct config_http_tls *cfg)
{
	char reason[256];
	char *error;

	error = tls_check_readable("cert_file", cfg->cert_file);
	if (error != NULL)
		return error;
	error = tls_check_readable("key_file", cfg->key_file);
	if (error != NULL)
		return error;
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
		tls_error_reason(reason, sizeof(reason));
		return xasprintf("http.tls.cert_file %s: cannot load the certificate (%s); give a "
				 "PEM file with the server certificate first, followed by its "
				 "intermediate certificates",
				 cfg->cert_file, reason);
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
		/* OpenSSL already compares the key with the certificate while loading it. */
		bool mismatch = ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_X509 &&
				ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH;

		tls_error_reason(reason, sizeof(reason));
		if (mismatch)
			return tls_key_mismatch(cfg, reason);
		return xasprintf("http.tls.key_file %s: cannot load the private key (%s); give the "
				 "PEM private key without a passphrase",
				 cfg->key_file, reason);
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error_reason(reason, sizeof(reason));
		return tls_key_mismatch(cfg, reason);
	}
	return NULL;
}

struct http_tls *http_tls_new(const struct config_http_tls *cfg, char **error)
{
	struct http_tls *tls = xcalloc(1, sizeof(*tls));
	char reason[256];
	int version = cfg->min_version == CONFIG_TLS_VERSION_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;

	*error = NULL;
	tls->ctx = SSL_CTX_new(TLS_server_method());
	if (tls->ctx == NULL) {
		tls_error_reason(reason, sizeof(reason));
		*error = xasprintf("http.tls: cannot create the TLS context (%s)", reason);
		goto fail;
	}
	if (SSL_CTX_set_min_proto_version(tls->ctx, version) != 1) {
		tls_error_reason(reason, sizeof(reason));
		*error = xasprintf("http.tls.min_version: this OpenSSL rejects the version (%s); "
				   "use \"1.2\"",
				   reason);
		goto fail;
	}
#ifdef SSL_OP_NO_RENEGOTIATION
	/* A client could otherwise make the server repeat the expensive handshake at will. */
	SSL_CTX_set_options(tls->ctx, SSL_OP_NO_RENEGOTIATION);
#endif
	SSL_CTX_set_default_passwd_cb(tls->ctx, tls_no_passphrase);
	*error = tls_load_files(tls->ctx, cfg);
	if (*error != NULL)
		goto fail;
	return tls;
fail:
	http_tls_free(tls);
	return NULL;
}

void http_tls_free(struct http_tls *tls)
{
	if (tls == NULL)
		return;
	SSL_CTX_free(tls->ctx);
	free(tls);
}

void http_server_set_tls(struct http_server *srv, struct http_tls *tls)
{
	http_tls_free(srv->tls);
	srv->tls = tls;
}

/*
 * Logs a failed TLS handshake with OpenSSL's reason. OpenSSL calls this at the end of each
 * SSL_do_handshake() step; a step that only waits for more bytes leaves its error queue
 * empty, a failed one has queued the reason. The queue is left for bufferevent_openssl.
 */
static void tls_info(const SSL *ssl, int where, int ret)
{
	struct http_connection *conn = SSL_get_app_data(ssl);
	unsigned long code;
	const char *reason;
	char detail[160];

	if (conn == NULL || conn->tls_failed || (where & SSL_CB_EXIT) == 0 || ret > 0)
		return;
	code = ERR_peek_error();
	if (code == 0)
		return;
	reason = ERR_reason_error_string(code);
	conn->tls_failed = true;
	snprintf(detail, sizeof(detail), "TLS handshake failed (OpenSSL: %s)",
		 reason != NULL ? reason : "no reason given");
	reject_connection(conn, HTTP_REJECT_TLS_HANDSHAKE, 0, detail);
}

/*
 * Gives evhttp the bufferevent of each accepted connection: an OpenSSL one while TLS is on,
 * else a plain one as evhttp would make. evhttp sets the socket afterwards, which starts the
 * handshake. Each SSL holds a reference to its context, so a reload may free the context.
 * The connection is followed from here on (struct http_connection), and a reference on the
 * bufferevent keeps it valid until hook_connections() has run.
 */
static struct bufferevent *make_bufferevent(struct event_base *base, void *arg)
{
	struct http_server *srv = arg;
	struct http_connection *conn = xcalloc(1, sizeof(*conn));
	struct bufferevent *bev;
	SSL *ssl = NULL;

	/* Returning NULL here would serve plain HTTP on the TLS port, so a failure to
	 * allocate aborts, like any other allocation failure. */
	if (srv->tls != NULL) {
		ssl = SSL_new(srv->tls->ctx);
		if (ssl == NULL) {
			log_error("http", NULL, "out of memory: SSL_new failed");
			abort();
		}
		bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
						     BEV_OPT_CLOSE_ON_FREE);
	} else {
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (bev == NULL) {
		log_error("http", NULL, "out of memory: cannot create a bufferevent");
		abort();
	}
	if (ssl != NULL) {
		/* Many clients close without a TLS close_notify; that is an ordinary end here. */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		SSL_set_app_data(ssl, conn);
		SSL_set_info_callback(ssl, tls_info);
	}

	conn->srv = srv;
	conn->bev = bev;
	conn->input_cb = evbuffer_add_cb(bufferevent_get_input(bev), on_input, conn);
	conn->output_cb = evbuffer_add_cb(bufferevent_get_output(bev), on_output, conn);
	if (conn->input_cb == NULL || conn->output_cb == NULL) {
		log_error("http", NULL, "out of memory: evbuffer_add_cb failed");
		abort();
	}
	LIST_INSERT_HEAD(&srv->connections, conn, entry);
	bufferevent_incref(bev);
	event_active(srv->hook_event, EV_TIMEOUT, 1);
	return bev;
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
	srv->hook_event = event_new(base, -1, 0, hook_connections, srv);
	if (srv->hook_event == NULL) {
		log_error("http", NULL, "cannot create the HTTP server: event_new failed");
		evhttp_free(srv->http);
		free(srv);
		return NULL;
	}
	LIST_INIT(&srv->connections);
	for (size_t i = 0; i < HTTP_REJECT_COUNT; i++)
		throttle_init(&srv->reject_log[i], HTTP_REJECT_LOG_INITIAL_MS,
			      HTTP_REJECT_LOG_MAX_MS);
	evhttp_set_max_headers_size(srv->http, HTTP_MAX_HEADERS_SIZE);
	evhttp_set_max_body_size(srv->http, HTTP_MAX_BODY_SIZE);
	evhttp_set_timeout(srv->http, HTTP_TIMEOUT_SECONDS);
	srv->max_header_count = HTTP_MAX_HEADER_COUNT;
	srv->max_header_size = HTTP_MAX_HEADERS_SIZE;
	srv->max_connections = HTTP_MAX_CONNECTIONS;
	srv->read_access = CONFIG_API_READ_LOOPBACK;
	evhttp_set_allowed_methods(srv->http, HTTP_ALLOWED_METHODS);
	evhttp_set_gencb(srv->http, dispatch, srv);
	evhttp_set_bevcb(srv->http, make_bufferevent, srv);

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

void http_server_configure(struct http_server *srv, const struct config *cfg)
{
	const struct config_http *limits = &cfg->http;
	struct timeval timeout = {
	    .tv_sec = (time_t)(limits->timeout_ms / 1000),
	    .tv_usec = (suseconds_t)(limits->timeout_ms % 1000 * 1000),
	};

	evhttp_set_max_headers_size(srv->http, (ev_ssize_t)limits->max_header_size);
	evhttp_set_max_body_size(srv->http, (ev_ssize_t)limits->max_body_size);
	evhttp_set_timeout_tv(srv->http, &timeout);
	srv->max_header_count = (size_t)limits->max_header_count;
	srv->max_header_size = (size_t)limits->max_header_size;
	srv->max_connections = (size_t)limits->max_connections;

	srv->read_access = cfg->api_read;
	free(srv->tokens);
	srv->tokens = xcalloc(cfg->api_token_count + 1, sizeof(*srv->tokens));
	srv->token_count = cfg->api_token_count;
	for (size_t i = 0; i < cfg->api_token_count; i++)
		memcpy(srv->tokens[i].sha256, cfg->api_tokens[i].sha256, CONFIG_API_SHA256_SIZE);
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
	/* evhttp_free closes the listening socket and every open connection; on_connection_close
	 * frees their records. Those not yet hooked remain, each holding a bufferevent
	 * reference. */
	srv->closing = true;
	evhttp_free(srv->http);
	while (!LIST_EMPTY(&srv->connections)) {
		struct http_connection *conn = LIST_FIRST(&srv->connections);
		struct bufferevent *bev = conn->bev;

		if (conn->evcon != NULL) {
			/* Its bufferevent is gone with the connection. */
			LIST_REMOVE(conn, entry);
			free(conn);
		} else {
			connection_free(conn);
			bufferevent_decref(bev);
		}
	}
	event_free(srv->hook_event);
	for (size_t i = 0; i < srv->route_count; i++)
		free(srv->routes[i].path);
	free(srv->routes);
	free(srv->tokens);
	http_tls_free(srv->tls);
	free(srv);
}
