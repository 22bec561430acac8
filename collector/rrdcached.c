/*
 * rrdcached client: address parsing, connecting, line I/O with timeouts, single
 * commands and BATCH exchanges. librrd's own client (rrdc_update) waits for a reply
 * after every update; this one sends thousands of updates per write.
 */
#include "collector/rrdcached.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "collector/clock.h"
#include "collector/xalloc.h"

/* Time without progress after which a read or write is abandoned. */
#define RRDCACHED_IO_TIMEOUT_MS      30000
#define RRDCACHED_CONNECT_TIMEOUT_MS 5000
/* Upper bound of lines read while resynchronizing after an error reply. */
#define RRDCACHED_RESYNC_MAX_LINES 100000

struct rrdcached {
	char *address;
	bool is_unix;
	char *unix_path;
	char *host;
	char *port;
	int fd;
	char error[256];
	/* Read buffer: bytes [rstart, rend) are received and not yet consumed. */
	char rbuf[8192];
	size_t rstart;
	size_t rend;
};

static void set_error(struct rrdcached *c, const char *what, int errnum)
{
	if (errnum != 0) {
		snprintf(c->error, sizeof c->error, "%s: %s", what, strerror(errnum));
	} else {
		snprintf(c->error, sizeof c->error, "%s", what);
	}
}

static int parse_tcp_address(struct rrdcached *c, const char *address)
{
	const char *colon;

	if (address[0] == '[') {
		const char *end = strchr(address, ']');
		if (end == NULL || end == address + 1) {
			return -1;
		}
		c->host = xstrndup(address + 1, (size_t)(end - address - 1));
		if (end[1] == '\0') {
			c->port = xstrdup(RRDCACHED_DEFAULT_PORT);
			return 0;
		}
		if (end[1] != ':' || end[2] == '\0') {
			return -1;
		}
		c->port = xstrdup(end + 2);
		return 0;
	}
	colon = strrchr(address, ':');
	if (colon != NULL && strchr(address, ':') != colon) {
		/* A bare IPv6 address without brackets has no port. */
		c->host = xstrdup(address);
		c->port = xstrdup(RRDCACHED_DEFAULT_PORT);
		return 0;
	}
	if (colon == NULL) {
		c->host = xstrdup(address);
		c->port = xstrdup(RRDCACHED_DEFAULT_PORT);
		return 0;
	}
	if (colon == address || colon[1] == '\0') {
		return -1;
	}
	c->host = xstrndup(address, (size_t)(colon - address));
	c->port = xstrdup(colon + 1);
	return 0;
}

struct rrdcached *rrdcached_new(const char *address)
{
	struct rrdcached *c;
	const char *path = NULL;

	if (address == NULL || address[0] == '\0') {
		return NULL;
	}
	c = xcalloc(1, sizeof *c);
	c->fd = -1;
	c->address = xstrdup(address);
	if (strncmp(address, "unix:", 5) == 0) {
		path = address + 5;
	} else if (address[0] == '/') {
		path = address;
	}
	if (path != NULL) {
		struct sockaddr_un sa;
		if (path[0] == '\0' || strlen(path) >= sizeof sa.sun_path) {
			rrdcached_free(c);
			return NULL;
		}
		c->is_unix = true;
		c->unix_path = xstrdup(path);
		return c;
	}
	if (parse_tcp_address(c, address) != 0) {
		rrdcached_free(c);
		return NULL;
	}
	return c;
}

void rrdcached_free(struct rrdcached *c)
{
	if (c == NULL) {
		return;
	}
	rrdcached_disconnect(c);
	free(c->address);
	free(c->unix_path);
	free(c->host);
	free(c->port);
	free(c);
}

const char *rrdcached_address(const struct rrdcached *c)
{
	return c->address;
}

bool rrdcached_is_unix(const struct rrdcached *c)
{
	return c->is_unix;
}

bool rrdcached_is_connected(const struct rrdcached *c)
{
	return c->fd >= 0;
}

const char *rrdcached_error(const struct rrdcached *c)
{
	return c->error;
}

void rrdcached_disconnect(struct rrdcached *c)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	c->rstart = 0;
	c->rend = 0;
}

/* Waits until fd is ready for `events`. Returns 0, or -1 with errno (ETIMEDOUT). */
static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t deadline = (int64_t)clock_monotonic_ms() + timeout_ms;

	for (;;) {
		int left = (int)(deadline - (int64_t)clock_monotonic_ms());
		int rc;
		if (left < 0) {
			left = 0;
		}
		rc = poll(&p, 1, left);
		if (rc > 0) {
			return 0;
		}
		if (rc == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR) {
			return -1;
		}
	}
}

/* Connects a non-blocking socket with a timeout, then leaves it non-blocking. */
static int connect_with_timeout(int fd, const struct sockaddr *sa, socklen_t len)
{
	int err = 0;
	socklen_t err_len = sizeof err;

	if (connect(fd, sa, len) == 0) {
		return 0;
	}
	if (errno != EINPROGRESS && errno != EAGAIN) {
		return -1;
	}
	if (wait_fd(fd, POLLOUT, RRDCACHED_CONNECT_TIMEOUT_MS) != 0) {
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0) {
		return -1;
	}
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

static int connect_unix(struct rrdcached *c)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, c->unix_path, strlen(c->unix_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		set_error(c, "socket failed", errno);
		return -1;
	}
	if (connect_with_timeout(fd, (const struct sockaddr *)&sa, sizeof sa) != 0) {
		set_error(c, "connect failed", errno);
		close(fd);
		return -1;
	}
	c->fd = fd;
	return 0;
}

static int connect_tcp(struct rrdcached *c)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
	struct addrinfo *list = NULL;
	int rc;

	/* Name resolution blocks, which is acceptable on the writer thread only. */
	rc = getaddrinfo(c->host, c->port, &hints, &list);
	if (rc != 0) {
		snprintf(c->error, sizeof c->error, "cannot resolve %s: %s", c->host,
			 gai_strerror(rc));
		return -1;
	}
	set_error(c, "no address to connect to", 0);
	for (struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0) {
			set_error(c, "socket failed", errno);
			continue;
		}
		if (connect_with_timeout(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			set_error(c, "connect failed", errno);
			close(fd);
			continue;
		}
		c->fd = fd;
		break;
	}
	freeaddrinfo(list);
	return c->fd >= 0 ? 0 : -1;
}

int rrdcached_connect(struct rrdcached *c)
{
	rrdcached_disconnect(c);
	c->error[0] = '\0';
	return c->is_unix ? connect_unix(c) : connect_tcp(c);
}

/* Writes all of buf. On failure the connection is closed. */
static int write_all(struct rrdcached *c, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(c->fd, POLLOUT, RRDCACHED_IO_TIMEOUT_MS) == 0) {
				continue;
			}
		}
		set_error(c, "write to rrdcached failed", errno);
		rrdcached_disconnect(c);
		return -1;
	}
	return 0;
}

/*
 * Reads one line (without its newline, and without a '\r' before it) into `line`.
 * Longer lines are cut to the buffer. On failure the connection is closed.
 */
static int read_line(struct rrdcached *c, char *line, size_t size)
{
	size_t used = 0;

	for (;;) {
		char *nl = memchr(c->rbuf + c->rstart, '\n', c->rend - c->rstart);
		size_t take =
		    nl != NULL ? (size_t)(nl - (c->rbuf + c->rstart)) : c->rend - c->rstart;
		size_t copy = take < size - 1 - used ? take : size - 1 - used;
		ssize_t n;

		memcpy(line + used, c->rbuf + c->rstart, copy);
		used += copy;
		if (nl != NULL) {
			c->rstart += take + 1;
			if (used > 0 && line[used - 1] == '\r') {
				used--;
			}
			line[used] = '\0';
			return 0;
		}
		c->rstart = 0;
		c->rend = 0;
		n = recv(c->fd, c->rbuf, sizeof c->rbuf, 0);
		if (n > 0) {
			c->rend = (size_t)n;
			continue;
		}
		if (n == 0) {
			set_error(c, "rrdcached closed the connection", 0);
			rrdcached_disconnect(c);
			return -1;
		}
		if (errno == EINTR) {
			continue;
		}
		if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
		    wait_fd(c->fd, POLLIN, RRDCACHED_IO_TIMEOUT_MS) == 0) {
			continue;
		}
		set_error(c, "read from rrdcached failed", errno);
		rrdcached_disconnect(c);
		return -1;
	}
}

/* Splits "STATUS TEXT". Returns -1 when the line does not start with a number. */
static int parse_status(const char *line, long *status, const char **text)
{
	char *end;

	errno = 0;
	*status = strtol(line, &end, 10);
	if (end == line || errno != 0 || (*end != ' ' && *end != '\0')) {
		return -1;
	}
	while (*end == ' ') {
		end++;
	}
	*text = end;
	return 0;
}

/*
 * Sends PING and reads until its "0 PONG", passing every other line to `extra` (may be
 * NULL). This skips the continuation lines of multi-line error messages.
 */
static int resync(struct rrdcached *c, void (*extra)(const char *line, void *arg), void *arg)
{
	char line[1024];

	if (write_all(c, "PING\n", 5) != 0) {
		return -1;
	}
	for (size_t i = 0; i < RRDCACHED_RESYNC_MAX_LINES; i++) {
		if (read_line(c, line, sizeof line) != 0) {
			return -1;
		}
		if (strcmp(line, "0 PONG") == 0) {
			return 0;
		}
		if (extra != NULL) {
			extra(line, arg);
		}
	}
	set_error(c, "rrdcached sent too many lines while resynchronizing", 0);
	rrdcached_disconnect(c);
	return -1;
}

void rrdcached_reply_free(struct rrdcached_reply *reply)
{
	for (size_t i = 0; i < reply->line_count; i++) {
		free(reply->lines[i]);
	}
	free(reply->lines);
	reply->lines = NULL;
	reply->line_count = 0;
}

int rrdcached_command(struct rrdcached *c, const char *line, struct rrdcached_reply *reply)
{
	char buf[RRDCACHED_LINE_MAX + 2];
	size_t len = strlen(line);
	const char *text;

	memset(reply, 0, sizeof *reply);
	if (c->fd < 0) {
		set_error(c, "not connected", 0);
		return -1;
	}
	if (len + 1 >= sizeof buf || memchr(line, '\n', len) != NULL) {
		set_error(c, "command line too long or contains a newline", 0);
		return -1;
	}
	memcpy(buf, line, len);
	buf[len] = '\n';
	if (write_all(c, buf, len + 1) != 0 || read_line(c, buf, sizeof buf) != 0) {
		return -1;
	}
	if (parse_status(buf, &reply->status, &text) != 0) {
		set_error(c, "rrdcached sent a reply without a status", 0);
		rrdcached_disconnect(c);
		return -1;
	}
	snprintf(reply->message, sizeof reply->message, "%s", text);
	if (reply->status < 0) {
		return resync(c, NULL, NULL);
	}
	if (reply->status > 0) {
		reply->lines = xcalloc((size_t)reply->status, sizeof *reply->lines);
	}
	for (long i = 0; i < reply->status; i++) {
		if (read_line(c, buf, sizeof buf) != 0) {
			rrdcached_reply_free(reply);
			return -1;
		}
		reply->lines[reply->line_count++] = xstrdup(buf);
	}
	return 0;
}

void rrdcached_batch_init(struct rrdcached_batch *b)
{
	memset(b, 0, sizeof *b);
}

void rrdcached_batch_clear(struct rrdcached_batch *b)
{
	b->length = 0;
	b->commands = 0;
	b->line_start = 0;
}

void rrdcached_batch_free(struct rrdcached_batch *b)
{
	free(b->text);
	rrdcached_batch_init(b);
}

static void batch_reserve(struct rrdcached_batch *b, size_t more)
{
	if (b->length + more + 1 > b->capacity) {
		b->text = xreallocarray_grow(b->text, &b->capacity, b->length + more + 1, 1);
	}
}

void rrdcached_batch_begin_update(struct rrdcached_batch *b, const char *path)
{
	b->line_start = b->length;
	batch_reserve(b, 7 + 2 * strlen(path));
	memcpy(b->text + b->length, "UPDATE ", 7);
	b->length += 7;
	for (const char *p = path; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\\') {
			b->text[b->length++] = '\\';
		}
		b->text[b->length++] = *p;
	}
}

void rrdcached_batch_append_value(struct rrdcached_batch *b, int64_t unix_s, double value)
{
	int n;

	batch_reserve(b, 64);
	if (isfinite(value)) {
		n = snprintf(b->text + b->length, 64, " %" PRId64 ":%.17g", unix_s, value);
	} else {
		n = snprintf(b->text + b->length, 64, " %" PRId64 ":U", unix_s);
	}
	b->length += (size_t)n;
}

size_t rrdcached_batch_line_length(const struct rrdcached_batch *b)
{
	return b->length - b->line_start;
}

void rrdcached_batch_end_command(struct rrdcached_batch *b)
{
	batch_reserve(b, 1);
	b->text[b->length++] = '\n';
	b->line_start = b->length;
	b->commands++;
}

struct batch_errors {
	rrdcached_batch_error_fn *on_error;
	void *arg;
	size_t commands;
};

/* Handles one line of the error list: "COMMAND MESSAGE". Others are continuations. */
static void batch_error_line(const char *line, void *arg)
{
	struct batch_errors *e = arg;
	long command;
	const char *text;

	if (parse_status(line, &command, &text) != 0 || command < 1 ||
	    (size_t)command > e->commands) {
		return;
	}
	e->on_error((size_t)command, text, e->arg);
}

int rrdcached_batch_send(struct rrdcached *c, const struct rrdcached_batch *b,
			 rrdcached_batch_error_fn *on_error, void *arg)
{
	struct batch_errors errors = {.on_error = on_error, .arg = arg, .commands = b->commands};
	char line[1024];
	long status;
	const char *text;

	if (c->fd < 0) {
		set_error(c, "not connected", 0);
		return -1;
	}
	if (b->commands == 0) {
		return 0;
	}
	if (write_all(c, "BATCH\n", 6) != 0 || read_line(c, line, sizeof line) != 0) {
		return -1;
	}
	if (parse_status(line, &status, &text) != 0 || status != 0) {
		snprintf(c->error, sizeof c->error, "rrdcached rejected BATCH: %.200s", line);
		rrdcached_disconnect(c);
		return -1;
	}
	/* rrdcached sends no reply until the final ".", so one long write cannot deadlock. */
	if (write_all(c, b->text, b->length) != 0 || write_all(c, ".\n", 2) != 0 ||
	    read_line(c, line, sizeof line) != 0) {
		return -1;
	}
	if (parse_status(line, &status, &text) != 0 || status < 0) {
		snprintf(c->error, sizeof c->error, "unexpected end of BATCH: %.200s", line);
		rrdcached_disconnect(c);
		return -1;
	}
	if (status == 0) {
		return 0;
	}
	for (long i = 0; i < status; i++) {
		if (read_line(c, line, sizeof line) != 0) {
			return -1;
		}
		batch_error_line(line, &errors);
	}
	/* A message may have spanned two lines; the PING skips what is left of the list. */
	return resync(c, batch_error_line, &errors);
}
