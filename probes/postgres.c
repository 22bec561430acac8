/*
 * The `postgres` probe: one persistent, asynchronous libpq connection per probe, reused
 * by every run and re-established at the next run after any connection failure. A run
 * connects when needed, sends `SELECT 1`, reads version and role, then runs the built-in
 * queries that fit the role and the user's queries, one at a time on the same connection.
 * Only the connection, `SELECT 1`, the version query and queries marked `required`
 * decide the run's status; any other query that fails is counted in
 * tocsin_pg_query_errors_total{query} and the run goes on.
 *
 * When the scheduler cancels a run (timeout), the connection is closed rather than
 * cancelled with PQcancel, which blocks on a new connection to the server. The server
 * ends the abandoned statement at statement_timeout at the latest, and the next run
 * reconnects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/cfg.h"
#include "collector/log.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"
#include "probes/pg_conn.h"
#include "probes/pg_error.h"
#include "probes/pg_options.h"
#include "probes/pg_queries.h"
#include "probes/probe.h"

enum {
	STEP_PING,
	STEP_INFO,
	STEP_BUILTIN, /* then one step per built-in query, then one per user query */
};

struct pg_state {
	struct pg_options opt;
	struct pg_conn *conn; /* made at the first run, when the event base is known */
	struct probe_run *run;
	char ids[256];
	char target[200]; /* host:port/dbname for log lines */
	size_t step;
	uint64_t step_started_us;
	double connect_seconds; /* of the connection in use */
	struct pg_server server;
	uint64_t *query_errors;                     /* per built-in query, then per user query */
	struct pg_status_throttle connect_throttle; /* failures of the connection */
	struct throttle *step_throttles; /* failures of each step's query, one per step */
	char top_statements[16];         /* $1 of the statements query */
};

static const struct metric_desc m_up = {"pg_up", "1 when the server answered every required query.",
					METRIC_GAUGE};
static const struct metric_desc m_connect = {"tocsin_pg_connect_duration_seconds",
					     "Time the connection in use took to establish.",
					     METRIC_GAUGE};
static const struct metric_desc m_ping = {"tocsin_pg_ping_duration_seconds",
					  "Round trip of SELECT 1 in this run.", METRIC_GAUGE};
static const struct metric_desc m_opened = {"tocsin_pg_connections_opened_total",
					    "Connections this probe opened to the server.",
					    METRIC_COUNTER};
static const struct metric_desc m_query_errors = {"tocsin_pg_query_errors_total",
						  "Failures of an optional query, by query name.",
						  METRIC_COUNTER};

static void step_send(struct pg_state *st);

static size_t step_count(const struct pg_state *st)
{
	return STEP_BUILTIN + pg_builtin_count + st->opt.query_count;
}

static const char *step_name(const struct pg_state *st, size_t step)
{
	if (step == STEP_PING)
		return "ping";
	if (step == STEP_INFO)
		return "info";
	if (step < STEP_BUILTIN + pg_builtin_count)
		return pg_builtins[step - STEP_BUILTIN].name;
	return st->opt.queries[step - STEP_BUILTIN - pg_builtin_count].name;
}

static const struct pg_user_query *step_user_query(const struct pg_state *st, size_t step)
{
	if (step < STEP_BUILTIN + pg_builtin_count)
		return NULL;
	return &st->opt.queries[step - STEP_BUILTIN - pg_builtin_count];
}

static bool step_required(const struct pg_state *st, size_t step)
{
	const struct pg_user_query *q = step_user_query(st, step);

	return step < STEP_BUILTIN || (q != NULL && q->required);
}

/* Samples every run ends with, whatever its outcome. */
static void emit_common(struct pg_state *st, bool up)
{
	size_t counters = pg_builtin_count + st->opt.query_count;

	probe_run_emit(st->run, &m_up, NULL, 0, up ? 1 : 0);
	probe_run_emit(st->run, &m_opened, NULL, 0, (double)pg_conn_opened(st->conn));
	if (up)
		probe_run_emit(st->run, &m_connect, NULL, 0, st->connect_seconds);
	for (size_t i = 0; i < counters; i++) {
		struct label label = {"query", step_name(st, STEP_BUILTIN + i)};

		probe_run_emit(st->run, &m_query_errors, &label, 1, (double)st->query_errors[i]);
	}
}

static void run_succeed(struct pg_state *st)
{
	struct probe_run *run = st->run;

	emit_common(st, true);
	st->run = NULL;
	probe_run_finish(run, PROBE_STATUS_OK, "%s", "");
}

/*
 * Ends the run as failed: `reason` is the short classified text, `message` libpq's or
 * the server's text, which only goes to the log (throttled). A failure of the
 * connection is throttled by its status, a failed query by the query's own throttle.
 */
static void run_fail(struct pg_state *st, bool connection, const struct pg_error_class *error,
		     const char *context, const char *message)
{
	struct probe_run *run = st->run;
	uint64_t suppressed = 0;
	uint64_t now = probe_now_ms();
	char line[256];
	bool logged = connection ? pg_status_throttle_fail(&st->connect_throttle, error->status,
							   now, &suppressed)
				 : throttle_fail(&st->step_throttles[st->step], now, &suppressed);

	if (logged)
		log_warn("postgres", st->ids, "%s failed: %s: %s (%llu similar suppressed)",
			 context, error->reason, pg_error_first_line(message, line, sizeof line),
			 (unsigned long long)suppressed);
	emit_common(st, false);
	st->run = NULL;
	if (strcmp(context, "connect") == 0 || error->status == PROBE_STATUS_CONNECTION_LOST)
		probe_run_finish(run, error->status, "%s", error->reason);
	else
		probe_run_finish(run, error->status, "query %s: %s", context, error->reason);
}

static void step_next(struct pg_state *st)
{
	st->step++;
	while (st->step < step_count(st)) {
		bool builtin =
		    st->step >= STEP_BUILTIN && st->step < STEP_BUILTIN + pg_builtin_count;

		if (!builtin || pg_builtin_applies(&pg_builtins[st->step - STEP_BUILTIN],
						   &st->server, &st->opt)) {
			step_send(st);
			return;
		}
		st->step++;
	}
	run_succeed(st);
}

/* An optional query failed: count it, log it (throttled) and go on with the next. */
static void optional_failed(struct pg_state *st, const char *reason)
{
	uint64_t suppressed = 0;

	st->query_errors[st->step - STEP_BUILTIN]++;
	if (throttle_fail(&st->step_throttles[st->step], probe_now_ms(), &suppressed))
		log_warn("postgres", st->ids, "query %s failed: %s (%llu similar suppressed)",
			 step_name(st, st->step), reason, (unsigned long long)suppressed);
	step_next(st);
}

/* Handles a result that is not an error; returns -1 with `error` set if it is unusable. */
static int result_use(struct pg_state *st, const PGresult *res, char *error, size_t size)
{
	const struct pg_user_query *q = step_user_query(st, st->step);

	if (st->step == STEP_PING) {
		probe_run_emit(st->run, &m_ping, NULL, 0,
			       (double)(probe_now_us() - st->step_started_us) / 1e6);
		return 0;
	}
	if (st->step == STEP_INFO) {
		if (pg_info_emit(st->run, res, &st->server) == 0)
			return 0;
		snprintf(error, size, "%s", "unexpected result of the version query");
		return -1;
	}
	if (q != NULL)
		return pg_user_emit(st->run, q, res, error, size);
	pg_builtins[st->step - STEP_BUILTIN].emit(st->run, res, &st->server);
	return 0;
}

static void on_result(struct pg_conn *conn, const PGresult *res, const char *message, void *arg)
{
	struct pg_state *st = arg;
	struct pg_error_class error = {PROBE_STATUS_CONNECTION_LOST, "connection lost"};
	uint64_t failures = 0;
	char text[256];

	if (res == NULL || pg_conn_broken(conn)) {
		/* The session ended, whatever the result contains: reconnect at the next run. */
		log_info("postgres", st->ids, "connection lost during query %s",
			 step_name(st, st->step));
		run_fail(st, true, &error, step_name(st, st->step), message);
		return;
	}
	if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
		const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		pg_error_classify_sqlstate(sqlstate, false, &error);
		snprintf(text, sizeof text, "%s (SQLSTATE %s)", error.reason,
			 sqlstate != NULL ? sqlstate : "none");
		if (!step_required(st, st->step)) {
			optional_failed(st, text);
			return;
		}
		run_fail(st, false, &error, step_name(st, st->step), PQresultErrorMessage(res));
		return;
	}
	if (result_use(st, res, text, sizeof text) < 0) {
		if (!step_required(st, st->step)) {
			optional_failed(st, text);
			return;
		}
		error = (struct pg_error_class){PROBE_STATUS_PROTOCOL_ERROR, text};
		run_fail(st, false, &error, step_name(st, st->step), text);
		return;
	}
	if (throttle_ok(&st->step_throttles[st->step], &failures))
		log_info("postgres", st->ids, "query %s succeeds again after %llu failures",
			 step_name(st, st->step), (unsigned long long)failures);
	step_next(st);
}

static void step_send(struct pg_state *st)
{
	struct pg_error_class error = {PROBE_STATUS_CONNECTION_LOST, "connection lost"};
	const struct pg_user_query *q = step_user_query(st, st->step);
	const char *params[1] = {st->top_statements};
	const char *sql;
	char message[256];
	int param_count = 0;

	if (st->step == STEP_PING) {
		sql = "SELECT 1";
	} else if (st->step == STEP_INFO) {
		sql = pg_info_sql;
	} else if (q != NULL) {
		sql = q->sql;
	} else if (pg_builtins[st->step - STEP_BUILTIN].group == PG_COLLECT_STATEMENTS) {
		sql = pg_statements_sql(&st->server);
		param_count = 1;
	} else {
		sql = pg_builtins[st->step - STEP_BUILTIN].sql;
	}
	st->step_started_us = probe_now_us();
	if (pg_conn_query(st->conn, sql, param_count, params, on_result, st, message,
			  sizeof message) < 0)
		run_fail(st, true, &error, step_name(st, st->step), message);
}

static void queries_start(struct pg_state *st)
{
	st->step = STEP_PING;
	memset(&st->server, 0, sizeof st->server);
	step_send(st);
}

static void on_connected(struct pg_conn *conn, const struct pg_error_class *error,
			 const char *message, void *arg)
{
	struct pg_state *st = arg;
	uint64_t failures = 0;

	if (error != NULL) {
		run_fail(st, true, error, "connect", message);
		return;
	}
	st->connect_seconds = (double)(probe_now_us() - st->step_started_us) / 1e6;
	if (pg_status_throttle_ok(&st->connect_throttle, &failures))
		log_notice("postgres", st->ids, "connected again after %llu failed attempts",
			   (unsigned long long)failures);
	else
		log_info("postgres", st->ids, "connected to server version %d in %.3f ms",
			 pg_conn_server_version(conn), st->connect_seconds * 1000);
	queries_start(st);
}

static void postgres_start(struct probe_run *run, void *state)
{
	struct pg_state *st = state;
	const char *keywords[PG_OPTIONS_KEYWORDS_MAX];
	const char *values[PG_OPTIONS_KEYWORDS_MAX];
	struct pg_error_class error;
	char options[128];
	char message[512];

	st->run = run;
	if (st->conn == NULL) {
		/* The probe's name is known only from a run. */
		st->conn = pg_conn_new(probe_run_base(run));
		log_ids(st->ids, sizeof st->ids, "probe", probe_run_probe_name(run), "target",
			st->target, NULL);
	}
	if (pg_conn_ready(st->conn)) {
		queries_start(st);
		return;
	}

	/*
	 * NOTE: for a host name (not an IP address, not a socket directory) libpq calls the
	 * blocking getaddrinfo inside PQconnectStartParams. Give an IP address where a slow
	 * resolver must not stall the loop.
	 */
	pg_options_keywords(&st->opt, keywords, values, options, sizeof options);
	st->step_started_us = probe_now_us();
	if (pg_conn_connect(st->conn, keywords, values, st->opt.connect_timeout_ms, on_connected,
			    st, &error, message, sizeof message) < 0)
		run_fail(st, true, &error, "connect", message);
}

/* Drops the connection: libpq's cancel request would block the loop on a new connection. */
static void postgres_cancel(struct probe_run *run, void *state)
{
	struct pg_state *st = state;

	(void)run;
	if (st->conn != NULL && st->run != NULL) {
		/* The run is not finished yet, so its samples still count: pg_up is 0. */
		emit_common(st, false);
		pg_conn_close(st->conn);
	}
	st->run = NULL;
}

static void postgres_free(void *state)
{
	struct pg_state *st = state;

	if (st == NULL)
		return;
	pg_conn_free(st->conn);
	pg_options_free(&st->opt);
	free(st->query_errors);
	free(st->step_throttles);
	free(st);
}

static int postgres_parse(struct cfg_map *options, void **state)
{
	struct pg_state *st = xcalloc(1, sizeof *st);

	if (pg_options_parse(options, &st->opt) < 0) {
		postgres_free(st);
		return -1;
	}
	st->query_errors =
	    xcalloc(pg_builtin_count + st->opt.query_count, sizeof *st->query_errors);
	snprintf(st->top_statements, sizeof st->top_statements, "%u", st->opt.top_statements);
	pg_status_throttle_init(&st->connect_throttle);
	st->step_throttles = xcalloc(step_count(st), sizeof *st->step_throttles);
	for (size_t i = 0; i < step_count(st); i++)
		throttle_init(&st->step_throttles[i], THROTTLE_DEFAULT_INITIAL_MS,
			      THROTTLE_DEFAULT_MAX_MS);
	pg_options_target(&st->opt, st->target, sizeof st->target);
	*state = st;
	return 0;
}

static const char *postgres_target(const void *state)
{
	const struct pg_state *st = state;

	return st->target;
}

const struct probe_type probe_type_postgres = {
    .name = "postgres",
    .parse = postgres_parse,
    .start = postgres_start,
    .cancel = postgres_cancel,
    .free = postgres_free,
    .target = postgres_target,
};
