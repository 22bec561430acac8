/*
 * Classification of PostgreSQL failures into probe statuses. Server errors carry a
 * SQLSTATE, which is stable across versions and languages, so it decides whenever it is
 * known. libpq reports a failed connection attempt only as message text on the PGconn;
 * the postgres probe requests verbose errors, so a server error in that text carries its
 * SQLSTATE too, and pg_error_sqlstate_in() finds it. libpq's own client-side messages
 * have no code: pg_error_classify_message() matches them as libpq 15 writes them in the
 * C locale, which is the locale of tocsind (it never calls setlocale).
 * Pure functions: no I/O, usable from any thread.
 */
#ifndef TOCSIN_PG_ERROR_H
#define TOCSIN_PG_ERROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/throttle.h"
#include "probes/probe.h"

/* A failure's status and a short human reason ("authentication failed"). */
struct pg_error_class {
	enum probe_status status;
	const char *reason;
};

/*
 * Classifies a five-character SQLSTATE. `connecting` is true when it came while the
 * connection was being established: then 57P01 (admin shutdown) means the server is
 * shutting down, while on an established connection the caller reports the lost
 * connection instead. Returns false, with a generic "query failed" class, for a
 * SQLSTATE that is not a known availability or permission problem.
 */
bool pg_error_classify_sqlstate(const char *sqlstate, bool connecting, struct pg_error_class *out);

/*
 * Finds the SQLSTATE in a verbose libpq error message ("FATAL:  28P01: password ...").
 * Writes it NUL-terminated into out[6] and returns true, or returns false when the text
 * contains none (a client-side error).
 */
bool pg_error_sqlstate_in(const char *message, char out[6]);

/*
 * Classifies a libpq connection error message that has no SQLSTATE: name resolution,
 * refused, unreachable, timeout, TLS, lost connection, missing password. Anything else
 * is a protocol error.
 */
void pg_error_classify_message(const char *message, struct pg_error_class *out);

/*
 * Classifies a failed connection attempt from PQerrorMessage(): by SQLSTATE when the
 * server sent one, by message class otherwise.
 */
void pg_error_classify_connect(const char *message, struct pg_error_class *out);

/*
 * Copies the first line of a libpq message into buf without its "connection to server
 * at ... failed:" prefix, for logs. The message never contains the password: libpq does not
 * echo it. Returns buf.
 */
const char *pg_error_first_line(const char *message, char *buf, size_t size);

/*
 * The log throttle of connection failures. Repeats of one status are throttled; a
 * failure of another status starts the throttle afresh, so a new reason is logged at
 * once. `failures` counts every failure since the last success, whatever its status.
 */
struct pg_status_throttle {
	struct throttle throttle;
	enum probe_status status; /* of the failures being throttled */
	uint64_t failures;
};

void pg_status_throttle_init(struct pg_status_throttle *t);

/* Like throttle_fail(): true when this failure is to be logged. */
bool pg_status_throttle_fail(struct pg_status_throttle *t, enum probe_status status,
			     uint64_t now_ms, uint64_t *suppressed);

/* Like throttle_ok(): true when a success ends failures; then *failures is their count. */
bool pg_status_throttle_ok(struct pg_status_throttle *t, uint64_t *failures);

#endif
