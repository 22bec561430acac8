/*
 * One asynchronous libpq connection driven by the libevent loop: connect with
 * PQconnectStartParams/PQconnectPoll, then one query at a time with PQsendQueryParams,
 * PQflush, PQconsumeInput, PQisBusy and PQgetResult. The socket from PQsocket is watched
 * on the loop and re-registered whenever libpq moves to another socket (next address,
 * SSL fallback). Nothing here blocks as long as the keywords carry hostaddr whenever
 * host is a name: libpq would otherwise resolve the name with the blocking getaddrinfo
 * inside PQconnectStartParams. The probe resolves names itself, with c-ares.
 *
 * Callbacks run from the loop, never from inside pg_conn_connect() or pg_conn_query();
 * a callback may start the next query or close the connection.
 */
#ifndef TOCSIN_PG_CONN_H
#define TOCSIN_PG_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "probes/pg_error.h"

struct event_base;
struct pg_conn;

/* Connection finished: `error` is NULL on success, else the classified failure. */
typedef void pg_conn_connected_fn(struct pg_conn *conn, const struct pg_error_class *error,
				  const char *message, void *arg);

/*
 * Query finished. `res` is the query's result (owned by pg_conn, valid only during the
 * call), or NULL when the connection failed before a result arrived; then `message` is
 * libpq's error text. A result may be an error result (PGRES_FATAL_ERROR).
 */
typedef void pg_conn_result_fn(struct pg_conn *conn, const PGresult *res, const char *message,
			       void *arg);

struct pg_conn *pg_conn_new(struct event_base *base);
/* Closes the connection and frees. Not from inside one of its own callbacks. */
void pg_conn_free(struct pg_conn *conn);

/*
 * Starts connecting with NULL-terminated keyword/value arrays (copied by libpq). Fails
 * after timeout_ms. Any previous connection is closed first. Returns 0, or -1 with the
 * callback not called when libpq could not even allocate the attempt; then *error holds
 * the classification and `message` libpq's text (may be empty).
 */
int pg_conn_connect(struct pg_conn *conn, const char *const *keywords, const char *const *values,
		    uint64_t timeout_ms, pg_conn_connected_fn *done, void *arg,
		    struct pg_error_class *error, char *message, size_t message_size);

/*
 * Sends `sql` with text parameters. Returns 0, or -1 (callback not called) when the
 * connection is not usable; then `message` holds libpq's text.
 */
int pg_conn_query(struct pg_conn *conn, const char *sql, int param_count, const char *const *params,
		  pg_conn_result_fn *done, void *arg, char *message, size_t message_size);

/* Drops the connection and any operation in flight without calling its callback. */
void pg_conn_close(struct pg_conn *conn);

/* True when connected, idle and PQstatus() is CONNECTION_OK. */
bool pg_conn_ready(const struct pg_conn *conn);

/* True when the last failure left the connection unusable (CONNECTION_BAD). */
bool pg_conn_broken(const struct pg_conn *conn);

/* Server version from the connection (PQserverVersion), 0 when not connected. */
int pg_conn_server_version(const struct pg_conn *conn);

/* Connections opened successfully since pg_conn_new. */
uint64_t pg_conn_opened(const struct pg_conn *conn);

#endif
