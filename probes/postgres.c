/*
 * The `postgres` probe: one persistent, asynchronous libpq connection per probe, reused
 * by every run and re-established at the next run after any connection failure. A run
 * connects when needed, sends `SELECT 1`, reads version and role, then runs the built-in
 * queries that fit the role and the user's queries, one at a time on the same connection.
 * Only the connection, `SELECT 1`, the version query and queries marked `required`
 * decide the run's status; any other query that fails is counted in
 * tocsin_pg_query_errors_total{query} and the run goes on.
 *
 * A host name is resolved on the loop with c-ares at each new connection, and libpq gets
 * the address as hostaddr next to the name, so it never calls the blocking getaddrinfo.
 *
 * When the scheduler cancels a run (timeout), the connection is closed rather than
 * cancelled with PQcancel, which blocks on a new connection to the server. The server
 * ends the abandoned statement at statement_timeout at the latest, and the next run
 * reconnects.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/cfg.h"
#include "collector/log.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"
#include "probes/cares_loop.h"
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
	struct pg_conn *conn;        /* made at the first run, when the event base is known */
	struct cares_loop *resolver; /* made at the first resolution, on the same base */
	struct event *resolve_timer; /* connect_timeout of the resolution */
	bool resolving;              /* a lookup of opt.host is in flight for st->run */
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
	if (strcmp(context, "connect") == 0 || strcmp(context, "resolve") == 0 ||
	    error->status == PROBE_STATUS_CONNECTION_LOST)
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

/*
 * Starts libpq's connection attempt. `hostaddr` is the address resolved for the host
 * name, or NULL. Resolution and connection share connect_timeout from step_started_us.
 */
static void connect_start(struct pg_state *st, const char *hostaddr)
{
	const char *keywords[PG_OPTIONS_KEYWORDS_MAX];
	const char *values[PG_OPTIONS_KEYWORDS_MAX];
	uint64_t elapsed_ms = (probe_now_us() - st->step_started_us) / 1000;
	uint64_t timeout_ms =
	    st->opt.connect_timeout_ms > elapsed_ms ? st->opt.connect_timeout_ms - elapsed_ms : 1;
	struct pg_error_class error;
	char options[128];
	char message[512];

	pg_options_keywords(&st->opt, hostaddr, keywords, values, options, sizeof options);
	if (pg_conn_connect(st->conn, keywords, values, timeout_ms, on_connected, st, &error,
			    message, sizeof message) < 0)
		run_fail(st, true, &error, "connect", message);
}

/*
 * Writes the first address of `result` as text for libpq's hostaddr; -1 when there is
 * none. Only that address is tried, in the order c-ares returns them. When it rejects the
 * connection or does not respond, the run fails, and the next connection resolves again.
 */
static int address_text(const struct ares_addrinfo *result, char *buf, size_t size)
{
	const struct ares_addrinfo_node *node = result != NULL ? result->nodes : NULL;
	const struct sockaddr_in6 *in6;
	size_t length;

	if (node == NULL)
		return -1;
	if (node->ai_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(void *)node->ai_addr;

		return inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)size) != NULL ? 0 : -1;
	}
	if (node->ai_family != AF_INET6)
		return -1;
	in6 = (const struct sockaddr_in6 *)(void *)node->ai_addr;
	if (inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)size) == NULL)
		return -1;
	/* A link-local address needs its interface, which getaddrinfo reads as "%N" in hostaddr. */
	length = strlen(buf);
	if (in6->sin6_scope_id != 0 && (size_t)snprintf(buf + length, size - length, "%%%u",
							in6->sin6_scope_id) >= size - length)
		return -1;
	return 0;
}

static void on_resolved(void *arg, int status, int timeouts, struct ares_addrinfo *result)
{
	struct pg_state *st = arg;
	struct pg_error_class error = {PROBE_STATUS_RESOLVE_ERROR, "name not resolved"};
	char address[INET6_ADDRSTRLEN + 16];
	char message[512];
	int found;

	(void)timeouts;
	if (!st->resolving) {
		/* Cancelled: the resolve timer fired, the run was cancelled, or the probe freed. */
		ares_freeaddrinfo(result);
		return;
	}
	st->resolving = false;
	evtimer_del(st->resolve_timer);
	found = status == ARES_SUCCESS ? address_text(result, address, sizeof address) : -1;
	ares_freeaddrinfo(result);
	if (found < 0) {
		snprintf(
		    message, sizeof message, "could not resolve host name \"%s\": %s", st->opt.host,
		    status != ARES_SUCCESS ? ares_strerror(status) : "no IPv4 or IPv6 address");
		run_fail(st, true, &error, "resolve", message);
		return;
	}
	/* The later steps name no phase. */
	probe_run_set_phase(st->run, NULL);
	connect_start(st, address);
}

static void on_resolve_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pg_state *st = arg;
	struct pg_error_class error = {PROBE_STATUS_TIMEOUT, "resolve timeout"};
	char message[512];

	(void)fd;
	(void)what;
	/* The lookup's callback runs inside cares_loop_cancel and finds `resolving` false. */
	st->resolving = false;
	cares_loop_cancel(st->resolver);
	snprintf(message, sizeof message,
		 "no address for host name \"%s\" within connect_timeout (%llu ms)", st->opt.host,
		 (unsigned long long)st->opt.connect_timeout_ms);
	run_fail(st, true, &error, "resolve", message);
}

/* Creates the c-ares channel at the first resolution. Returns -1 with `message` set. */
static int resolver_ready(struct pg_state *st, char *message, size_t size)
{
	struct event_base *base = probe_run_base(st->run);
	int status;

	if (st->resolver != NULL)
		return 0;
	st->resolver = cares_loop_new(base, NULL, 0, &status);
	if (st->resolver == NULL) {
		snprintf(message, size, "could not create a resolver: %s", ares_strerror(status));
		return -1;
	}
	if (st->opt.dns_server != NULL) {
		status = ares_set_servers_ports_csv(cares_loop_channel(st->resolver),
						    st->opt.dns_server);
		if (status != ARES_SUCCESS) {
			snprintf(message, size, "could not use dns_server %s: %s",
				 st->opt.dns_server, ares_strerror(status));
			cares_loop_free(st->resolver);
			st->resolver = NULL;
			return -1;
		}
	}
	st->resolve_timer = evtimer_new(base, on_resolve_timeout, st);
	if (st->resolve_timer == NULL)
		log_fatal("postgres", "out of memory for libevent events");
	return 0;
}

/* Resolves opt.host on the loop, then connects to the first address (on_resolved). */
static void resolve_start(struct pg_state *st)
{
	struct pg_error_class error = {PROBE_STATUS_INTERNAL_ERROR, "resolver unavailable"};
	uint64_t timeout_ms = st->opt.connect_timeout_ms;
	struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
	char message[256];

	if (resolver_ready(st, message, sizeof message) < 0) {
		run_fail(st, true, &error, "resolve", message);
		return;
	}
	probe_run_set_phase(st->run, "resolve");
	/*
	 * c-ares may call on_resolved before cares_loop_getaddrinfo returns (an /etc/hosts
	 * entry), so the state and the timer are set first.
	 */
	st->resolving = true;
	evtimer_add(st->resolve_timer, &tv);
	cares_loop_getaddrinfo(st->resolver, st->opt.host, AF_UNSPEC, on_resolved, st);
}

static void postgres_start(struct probe_run *run, void *state)
{
	struct pg_state *st = state;

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
	st->step_started_us = probe_now_us();
	if (pg_options_host_is_name(&st->opt)) {
		resolve_start(st);
		return;
	}
	/*
	 * NOTE: without `host`, libpq takes the host from PGHOST or a service file, and
	 * resolves a name found there with the blocking getaddrinfo.
	 */
	connect_start(st, NULL);
}

/* Drops the connection: libpq's cancel request would block the loop on a new connection. */
static void postgres_cancel(struct probe_run *run, void *state)
{
	struct pg_state *st = state;

	(void)run;
	if (st->resolving) {
		st->resolving = false;
		evtimer_del(st->resolve_timer);
		cares_loop_cancel(st->resolver);
	}
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
	/* A pending lookup's callback runs inside cares_loop_free and must ignore it. */
	st->resolving = false;
	cares_loop_free(st->resolver);
	if (st->resolve_timer != NULL)
		event_free(st->resolve_timer);
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
