/*
 * The asynchronous libpq connection of the postgres probe (see pg_conn.h). The socket is
 * watched with one-shot libevent events re-armed after each wake-up, so a socket that
 * libpq replaced during the connection attempt is picked up at the next arm.
 */
#include "probes/pg_conn.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/log.h"
#include "collector/xalloc.h"

enum pg_conn_phase {
	PG_CONN_CLOSED,
	PG_CONN_CONNECTING,
	PG_CONN_READY,
	PG_CONN_QUERYING,
};

struct pg_conn {
	struct event_base *base;
	PGconn *pg;
	enum pg_conn_phase phase;
	struct event *socket_event; /* assigned afresh at every arm */
	struct event *timer;        /* connect timeout */
	bool flushing;              /* PQflush returned 1: wait for writable too */
	bool broken;                /* closed after CONNECTION_BAD */
	PGresult *result;           /* the result to deliver when the query completes */
	pg_conn_connected_fn *connected;
	pg_conn_result_fn *done;
	void *arg;
	uint64_t opened;
};

#define MESSAGE_MAX 512

static void on_socket(evutil_socket_t fd, short what, void *arg);

static void copy_message(const PGconn *pg, const char *fallback, char *buf, size_t size)
{
	const char *text = pg != NULL ? PQerrorMessage(pg) : NULL;

	snprintf(buf, size, "%s", text != NULL && *text != '\0' ? text : fallback);
}

static void unwatch(struct pg_conn *c)
{
	if (c->socket_event != NULL)
		event_del(c->socket_event);
}

/* Waits for `what` on libpq's current socket. Returns -1 when libpq has no socket. */
static int arm(struct pg_conn *c, short what)
{
	int fd = PQsocket(c->pg);

	if (fd < 0)
		return -1;
	event_del(c->socket_event);
	event_assign(c->socket_event, c->base, fd, what, on_socket, c);
	return event_add(c->socket_event, NULL);
}

/* Deletes the events before libpq closes the socket, then ends the session. */
static void drop(struct pg_conn *c)
{
	unwatch(c);
	evtimer_del(c->timer);
	if (c->result != NULL) {
		PQclear(c->result);
		c->result = NULL;
	}
	if (c->pg != NULL) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	c->phase = PG_CONN_CLOSED;
	c->flushing = false;
}

static void connect_failed(struct pg_conn *c, const char *fallback)
{
	char message[MESSAGE_MAX];
	struct pg_error_class error;

	copy_message(c->pg, fallback, message, sizeof message);
	pg_error_classify_connect(message, &error);
	drop(c);
	c->broken = true;
	c->connected(c, &error, message, c->arg);
}

static void connect_step(struct pg_conn *c)
{
	/*
	 * NOTE: with SCRAM-SHA-256 authentication PQconnectPoll derives the key on the loop
	 * thread (4096 PBKDF2 rounds by default, a few milliseconds of CPU per connection).
	 * Connections are kept across runs, so this is paid once per connection.
	 */
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		if (arm(c, EV_READ) < 0)
			connect_failed(c, "no socket while connecting");
		return;
	case PGRES_POLLING_WRITING:
		if (arm(c, EV_WRITE) < 0)
			connect_failed(c, "no socket while connecting");
		return;
	case PGRES_POLLING_OK:
		unwatch(c);
		evtimer_del(c->timer);
		if (PQsetnonblocking(c->pg, 1) != 0) {
			connect_failed(c, "could not set the connection non-blocking");
			return;
		}
		c->phase = PG_CONN_READY;
		c->broken = false;
		c->opened++;
		c->connected(c, NULL, "", c->arg);
		return;
	default:
		connect_failed(c, "connection failed");
		return;
	}
}

static void connect_timed_out(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;
	struct pg_error_class error = {PROBE_STATUS_TIMEOUT, "connect timeout"};

	(void)fd;
	(void)what;
	drop(c);
	c->broken = true;
	c->connected(c, &error, "timeout expired", c->arg);
}

/* Ends the query: hands the result (or the failure) over and keeps the session if it can. */
static void query_complete(struct pg_conn *c, const char *failure)
{
	char message[MESSAGE_MAX] = "";
	PGresult *res = c->result;

	c->result = NULL;
	unwatch(c);
	c->flushing = false;
	if (failure != NULL || PQstatus(c->pg) == CONNECTION_BAD) {
		copy_message(c->pg, failure != NULL ? failure : "connection lost", message,
			     sizeof message);
		drop(c);
		c->broken = true;
		if (failure != NULL && res != NULL) {
			PQclear(res);
			res = NULL;
		}
	} else {
		c->phase = PG_CONN_READY;
	}
	c->done(c, res, message, c->arg);
	PQclear(res);
}

/* Keeps the first error result, or else the last result, of a query. */
static void result_keep(struct pg_conn *c, PGresult *res)
{
	if (c->result == NULL || PQresultStatus(c->result) != PGRES_FATAL_ERROR) {
		PQclear(c->result);
		c->result = res;
		return;
	}
	PQclear(res);
}

static void query_step(struct pg_conn *c, short what)
{
	if ((what & EV_READ) && !PQconsumeInput(c->pg)) {
		query_complete(c, "could not receive data from server");
		return;
	}
	if (c->flushing) {
		int rc = PQflush(c->pg);

		if (rc < 0) {
			query_complete(c, "could not send data to server");
			return;
		}
		c->flushing = rc == 1;
	}
	while (!PQisBusy(c->pg)) {
		PGresult *res = PQgetResult(c->pg);
		ExecStatusType status;

		if (res == NULL) {
			query_complete(c, NULL);
			return;
		}
		status = PQresultStatus(res);
		if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT ||
		    status == PGRES_COPY_BOTH) {
			/* libpq would wait for COPY data forever; the probe never requests it. */
			PQclear(res);
			query_complete(c, "COPY is not supported in probe queries");
			return;
		}
		result_keep(c, res);
	}
	if (arm(c, c->flushing ? EV_READ | EV_WRITE : EV_READ) < 0)
		query_complete(c, "no connection to the server");
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;

	(void)fd;
	if (c->phase == PG_CONN_CONNECTING)
		connect_step(c);
	else if (c->phase == PG_CONN_QUERYING)
		query_step(c, what);
}

struct pg_conn *pg_conn_new(struct event_base *base)
{
	struct pg_conn *c = xcalloc(1, sizeof *c);

	c->base = base;
	c->socket_event = event_new(base, -1, 0, on_socket, c);
	c->timer = evtimer_new(base, connect_timed_out, c);
	if (c->socket_event == NULL || c->timer == NULL)
		log_fatal("postgres", "out of memory for libevent events");
	return c;
}

void pg_conn_free(struct pg_conn *c)
{
	if (c == NULL)
		return;
	drop(c);
	event_free(c->socket_event);
	event_free(c->timer);
	free(c);
}

int pg_conn_connect(struct pg_conn *c, const char *const *keywords, const char *const *values,
		    uint64_t timeout_ms, pg_conn_connected_fn *done, void *arg,
		    struct pg_error_class *error, char *message, size_t message_size)
{
	struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};

	drop(c);
	c->connected = done;
	c->arg = arg;
	c->pg = PQconnectStartParams(keywords, values, 0);
	if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
		copy_message(c->pg, "out of memory", message, message_size);
		pg_error_classify_connect(message, error);
		drop(c);
		c->broken = true;
		return -1;
	}
	/* Verbose errors carry the SQLSTATE in the text of a failed connection attempt. */
	PQsetErrorVerbosity(c->pg, PQERRORS_VERBOSE);
	c->phase = PG_CONN_CONNECTING;
	/* libpq's contract: start as if PQconnectPoll had returned PGRES_POLLING_WRITING. */
	if (arm(c, EV_WRITE) < 0) {
		snprintf(message, message_size, "%s", "no socket while connecting");
		*error = (struct pg_error_class){PROBE_STATUS_INTERNAL_ERROR, "no socket"};
		drop(c);
		c->broken = true;
		return -1;
	}
	evtimer_add(c->timer, &tv);
	return 0;
}

int pg_conn_query(struct pg_conn *c, const char *sql, int param_count, const char *const *params,
		  pg_conn_result_fn *done, void *arg, char *message, size_t message_size)
{
	int rc;

	if (!pg_conn_ready(c)) {
		snprintf(message, message_size, "%s", "no connection to the server");
		return -1;
	}
	if (!PQsendQueryParams(c->pg, sql, param_count, NULL, params, NULL, NULL, 0)) {
		copy_message(c->pg, "could not send the query", message, message_size);
		if (PQstatus(c->pg) == CONNECTION_BAD) {
			drop(c);
			c->broken = true;
		}
		return -1;
	}
	rc = PQflush(c->pg);
	if (rc < 0) {
		copy_message(c->pg, "could not send data to server", message, message_size);
		drop(c);
		c->broken = true;
		return -1;
	}
	c->flushing = rc == 1;
	c->done = done;
	c->arg = arg;
	c->phase = PG_CONN_QUERYING;
	if (arm(c, c->flushing ? EV_READ | EV_WRITE : EV_READ) < 0) {
		snprintf(message, message_size, "%s", "no connection to the server");
		drop(c);
		c->broken = true;
		return -1;
	}
	return 0;
}

void pg_conn_close(struct pg_conn *c)
{
	drop(c);
}

bool pg_conn_ready(const struct pg_conn *c)
{
	return c->pg != NULL && c->phase == PG_CONN_READY && PQstatus(c->pg) == CONNECTION_OK;
}

bool pg_conn_broken(const struct pg_conn *c)
{
	return c->broken;
}

int pg_conn_server_version(const struct pg_conn *c)
{
	return c->pg != NULL ? PQserverVersion(c->pg) : 0;
}

uint64_t pg_conn_opened(const struct pg_conn *c)
{
	return c->opened;
}
