/*
 * The built-in queries of the postgres probe and the column mapping of user queries.
 * Every built-in query is a single read-only SELECT; none opens a transaction of its own.
 * Names follow postgres_exporter where it has the measurement, tocsin_pg_* otherwise.
 */
#include "probes/pg_queries.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/xalloc.h"

/* Metrics */

static const struct metric_desc m_static = {"pg_static", "Server version; the value is always 1.",
					    METRIC_GAUGE};
static const struct metric_desc m_version_num = {"pg_settings_server_version_num",
						 "Server version as a number (server_version_num).",
						 METRIC_GAUGE};
static const struct metric_desc m_in_recovery = {
    "pg_in_recovery", "1 when the server is a standby in recovery, 0 on a primary.", METRIC_GAUGE};
static const struct metric_desc m_max_connections = {"pg_settings_max_connections",
						     "The max_connections setting.", METRIC_GAUGE};

static const struct metric_desc m_receive_lsn = {"tocsin_pg_wal_receive_lsn_bytes",
						 "WAL position received by this standby, in bytes.",
						 METRIC_GAUGE};
static const struct metric_desc m_replay_lsn = {"tocsin_pg_wal_replay_lsn_bytes",
						"WAL position replayed by this standby, in bytes.",
						METRIC_GAUGE};
static const struct metric_desc m_replay_lag_bytes = {
    "tocsin_pg_replication_replay_lag_bytes",
    "WAL received by this standby but not yet replayed, in bytes.", METRIC_GAUGE};
static const struct metric_desc m_lag_seconds = {
    "pg_replication_lag_seconds",
    "Age of the last replayed transaction; 0 while everything received is replayed.", METRIC_GAUGE};
static const struct metric_desc m_replay_age = {
    "tocsin_pg_last_replay_age_seconds",
    "Seconds since the commit time of the last transaction this standby replayed.", METRIC_GAUGE};

static const struct metric_desc m_wal_lsn = {
    "tocsin_pg_wal_lsn_bytes", "Current WAL write position of this primary, in bytes.",
    METRIC_GAUGE};
static const struct metric_desc m_standby_lag_bytes = {
    "tocsin_pg_standby_lag_bytes",
    "WAL a standby has not yet written, flushed or replayed (label position), in bytes.",
    METRIC_GAUGE};
static const struct metric_desc m_standby_lag_seconds = {
    "tocsin_pg_standby_lag_seconds",
    "Write, flush or replay lag of a standby as the primary measured it, in seconds.",
    METRIC_GAUGE};
static const struct metric_desc m_wal_lsn_diff = {"pg_stat_replication_pg_wal_lsn_diff",
						  "WAL a standby has not yet replayed, in bytes.",
						  METRIC_GAUGE};

static const struct metric_desc m_activity_count = {
    "pg_stat_activity_count", "Client connections by database and state.", METRIC_GAUGE};
static const struct metric_desc m_activity_max_tx = {
    "pg_stat_activity_max_tx_duration",
    "Age of the oldest open transaction by database and state, in seconds.", METRIC_GAUGE};
static const struct metric_desc m_oldest_xact = {"tocsin_pg_oldest_xact_age_seconds",
						 "Age of the oldest open transaction, in seconds.",
						 METRIC_GAUGE};

static const struct metric_desc m_db_size = {"pg_database_size_bytes",
					     "Disk space used by the database.", METRIC_GAUGE};
static const struct metric_desc m_db_xid_age = {
    "tocsin_pg_database_frozen_xid_age",
    "Transactions since the database's datfrozenxid: wraparound comes at 2^31.", METRIC_GAUGE};
/* pg_stat_database columns, in the query's order from column 2. */
static const struct metric_desc m_db_stats[] = {
    {"pg_stat_database_xact_commit", "Transactions committed.", METRIC_COUNTER},
    {"pg_stat_database_xact_rollback", "Transactions rolled back.", METRIC_COUNTER},
    {"pg_stat_database_deadlocks", "Deadlocks detected.", METRIC_COUNTER},
    {"pg_stat_database_blks_hit", "Blocks found in shared buffers.", METRIC_COUNTER},
    {"pg_stat_database_blks_read", "Blocks read from disk or the OS cache.", METRIC_COUNTER},
    {"pg_stat_database_temp_bytes", "Bytes written to temporary files.", METRIC_COUNTER},
};

static const struct metric_desc m_locks = {"pg_locks_count", "Locks held or awaited by mode.",
					   METRIC_GAUGE};
static const struct metric_desc m_locks_waiting = {
    "tocsin_pg_locks_waiting", "Lock requests not yet granted, by mode.", METRIC_GAUGE};

static const struct metric_desc m_stmt_calls = {"pg_stat_statements_calls_total",
						"Executions of a statement.", METRIC_COUNTER};
static const struct metric_desc m_stmt_seconds = {"pg_stat_statements_seconds_total",
						  "Time spent executing a statement, in seconds.",
						  METRIC_COUNTER};
static const struct metric_desc m_stmt_rows = {
    "pg_stat_statements_rows_total", "Rows retrieved or affected by a statement.", METRIC_COUNTER};

/* Helpers */

bool pg_cell_number(const PGresult *res, int row, int column, double *out)
{
	const char *text;
	char *end;

	if (PQgetisnull(res, row, column))
		return false;
	text = PQgetvalue(res, row, column);
	if (strcmp(text, "t") == 0 || strcmp(text, "f") == 0) {
		*out = text[0] == 't' ? 1 : 0;
		return true;
	}
	if (*text == '\0')
		return false;
	*out = strtod(text, &end);
	return *end == '\0';
}

static void emit_cell(struct probe_run *run, const struct metric_desc *desc,
		      const struct label *labels, size_t label_count, const PGresult *res, int row,
		      int column)
{
	double value;

	if (pg_cell_number(res, row, column, &value))
		probe_run_emit(run, desc, labels, label_count, value);
}

static const char *cell_text(const PGresult *res, int row, int column)
{
	return PQgetisnull(res, row, column) ? "" : PQgetvalue(res, row, column);
}

static bool shape_ok(const PGresult *res, int columns)
{
	return PQresultStatus(res) == PGRES_TUPLES_OK && PQnfields(res) == columns;
}

/* Server information */

const char *const pg_info_sql =
    "SELECT current_setting('server_version'), current_setting('server_version_num')::int, "
    "pg_is_in_recovery(), current_setting('max_connections')::int, "
    "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')";

int pg_info_emit(struct probe_run *run, const PGresult *res, struct pg_server *server)
{
	struct label labels[2];
	char short_version[32];
	double num;

	if (!shape_ok(res, 5) || PQntuples(res) != 1 || !pg_cell_number(res, 0, 1, &num))
		return -1;
	server->version_num = (int)num;
	server->in_recovery = strcmp(cell_text(res, 0, 2), "t") == 0;
	server->has_statements = strcmp(cell_text(res, 0, 4), "t") == 0;

	/* server_version_num is MMmmpp since PostgreSQL 10: 150020 is 15.20. */
	snprintf(short_version, sizeof short_version, "%d.%d", server->version_num / 10000,
		 server->version_num % 10000);
	labels[0] = (struct label){"short_version", short_version};
	labels[1] = (struct label){"version", cell_text(res, 0, 0)};
	probe_run_emit(run, &m_static, labels, 2, 1);
	probe_run_emit(run, &m_version_num, NULL, 0, num);
	labels[0] = (struct label){"role", server->in_recovery ? "standby" : "primary"};
	probe_run_emit(run, &m_in_recovery, labels, 1, server->in_recovery ? 1 : 0);
	emit_cell(run, &m_max_connections, NULL, 0, res, 0, 3);
	return 0;
}

/* Built-in queries */

static void emit_standby(struct probe_run *run, const PGresult *res, const struct pg_server *s)
{
	double receive;
	double replay;

	(void)s;
	if (!shape_ok(res, 4) || PQntuples(res) != 1)
		return;
	emit_cell(run, &m_receive_lsn, NULL, 0, res, 0, 0);
	emit_cell(run, &m_replay_lsn, NULL, 0, res, 0, 1);
	/* A standby restored from archive only has no receive position. */
	if (pg_cell_number(res, 0, 0, &receive) && pg_cell_number(res, 0, 1, &replay))
		probe_run_emit(run, &m_replay_lag_bytes, NULL, 0, fmax(receive - replay, 0));
	emit_cell(run, &m_lag_seconds, NULL, 0, res, 0, 2);
	emit_cell(run, &m_replay_age, NULL, 0, res, 0, 3);
}

static void emit_wal(struct probe_run *run, const PGresult *res, const struct pg_server *s)
{
	(void)s;
	if (shape_ok(res, 1) && PQntuples(res) == 1)
		emit_cell(run, &m_wal_lsn, NULL, 0, res, 0, 0);
}

static void emit_standbys(struct probe_run *run, const PGresult *res, const struct pg_server *s)
{
	static const char *const positions[] = {"write", "flush", "replay"};

	(void)s;
	if (!shape_ok(res, 8))
		return;
	for (int row = 0; row < PQntuples(res); row++) {
		struct label labels[3] = {{"application_name", cell_text(res, row, 0)},
					  {"client_addr", cell_text(res, row, 1)},
					  {"position", NULL}};

		emit_cell(run, &m_wal_lsn_diff, labels, 2, res, row, 4);
		for (int k = 0; k < 3; k++) {
			labels[2].value = positions[k];
			emit_cell(run, &m_standby_lag_bytes, labels, 3, res, row, 2 + k);
			emit_cell(run, &m_standby_lag_seconds, labels, 3, res, row, 5 + k);
		}
	}
}

static void emit_activity(struct probe_run *run, const PGresult *res, const struct pg_server *s)
{
	double oldest = 0;

	(void)s;
	if (!shape_ok(res, 4))
		return;
	for (int row = 0; row < PQntuples(res); row++) {
		struct label labels[2] = {{"datname", cell_text(res, row, 0)},
					  {"state", cell_text(res, row, 1)}};
		double age;

		emit_cell(run, &m_activity_count, labels, 2, res, row, 2);
		emit_cell(run, &m_activity_max_tx, labels, 2, res, row, 3);
		if (pg_cell_number(res, row, 3, &age) && age > oldest)
			oldest = age;
	}
	probe_run_emit(run, &m_oldest_xact, NULL, 0, oldest);
}

static void emit_databases(struct probe_run *run, const PGresult *res, const struct pg_server *s)
{
	size_t stats = sizeof m_db_stats / sizeof m_db_stats[0];

	(void)s;
	if (!shape_ok(res, 3 + (int)stats))
		return;
	for (int row = 0; row < PQntuples(res); row++) {
		struct label label = {"datname", cell_text(res, row, 0)};

		emit_cell(run, &m_db_size, &label, 1, res, row, 1);
		emit_cell(run, &m_db_xid_age, &label, 1, res, row, 2);
		for (size_t k = 0; k < stats; k++)
			emit_cell(run, &m_db_stats[k], &label, 1, res, row, 3 + (int)k);
	}
}

static void emit_locks(struct probe_run *run, const PGresult *res, const struct pg_server *s)
{
	(void)s;
	if (!shape_ok(res, 3))
		return;
	for (int row = 0; row < PQntuples(res); row++) {
		struct label label = {"mode", cell_text(res, row, 0)};

		emit_cell(run, &m_locks, &label, 1, res, row, 1);
		emit_cell(run, &m_locks_waiting, &label, 1, res, row, 2);
	}
}

static void emit_statements(struct probe_run *run, const PGresult *res, const struct pg_server *s)
{
	(void)s;
	if (!shape_ok(res, 6))
		return;
	for (int row = 0; row < PQntuples(res); row++) {
		struct label labels[3] = {{"user", cell_text(res, row, 0)},
					  {"datname", cell_text(res, row, 1)},
					  {"queryid", cell_text(res, row, 2)}};

		emit_cell(run, &m_stmt_calls, labels, 3, res, row, 3);
		emit_cell(run, &m_stmt_seconds, labels, 3, res, row, 4);
		emit_cell(run, &m_stmt_rows, labels, 3, res, row, 5);
	}
}

/*
 * pg_lsn minus '0/0' turns a WAL position into a byte count (numeric). The replay lag is
 * 0 while the standby has replayed all it received, as an idle primary sends nothing
 * newer to replay and the replay timestamp then only ages.
 */
#define STANDBY_SQL                                                                                \
	"SELECT pg_last_wal_receive_lsn() - '0/0'::pg_lsn, "                                       \
	"pg_last_wal_replay_lsn() - '0/0'::pg_lsn, "                                               \
	"CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "                   \
	"ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END, "                   \
	"extract(epoch FROM now() - pg_last_xact_replay_timestamp())"

#define STANDBYS_SQL                                                                               \
	"SELECT application_name, coalesce(host(client_addr), 'local'), "                          \
	"pg_current_wal_lsn() - write_lsn, pg_current_wal_lsn() - flush_lsn, "                     \
	"pg_current_wal_lsn() - replay_lsn, extract(epoch FROM write_lag), "                       \
	"extract(epoch FROM flush_lag), extract(epoch FROM replay_lag) FROM pg_stat_replication"

#define ACTIVITY_SQL                                                                               \
	"SELECT coalesce(datname, ''), coalesce(state, 'unknown'), count(*), "                     \
	"coalesce(max(extract(epoch FROM now() - xact_start)), 0) FROM pg_stat_activity "          \
	"WHERE backend_type = 'client backend' GROUP BY 1, 2"

/* Every database, template0 included: its frozen XID ages towards wraparound too. */
#define DATABASES_SQL                                                                              \
	"SELECT d.datname, CASE WHEN has_database_privilege(d.oid, 'CONNECT') "                    \
	"THEN pg_database_size(d.oid) END, age(d.datfrozenxid), s.xact_commit, "                   \
	"s.xact_rollback, s.deadlocks, s.blks_hit, s.blks_read, s.temp_bytes "                     \
	"FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid"

/* The eight table-lock modes, so each has a series (0 when none is held). */
#define LOCKS_SQL                                                                                  \
	"SELECT m.mode, count(l.mode), count(l.mode) FILTER (WHERE NOT l.granted) "                \
	"FROM unnest(ARRAY['AccessShareLock', 'RowShareLock', 'RowExclusiveLock', "                \
	"'ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', "      \
	"'AccessExclusiveLock']) AS m(mode) LEFT JOIN pg_locks l ON l.mode = m.mode "              \
	"GROUP BY m.mode"

const struct pg_builtin pg_builtins[] = {
    {"standby", PG_COLLECT_REPLICATION, PG_QUERY_STANDBY, STANDBY_SQL, emit_standby},
    {"wal", PG_COLLECT_REPLICATION, PG_QUERY_PRIMARY, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn",
     emit_wal},
    {"standbys", PG_COLLECT_REPLICATION, PG_QUERY_PRIMARY, STANDBYS_SQL, emit_standbys},
    {"activity", PG_COLLECT_ACTIVITY, PG_QUERY_ANY, ACTIVITY_SQL, emit_activity},
    {"databases", PG_COLLECT_DATABASES, PG_QUERY_ANY, DATABASES_SQL, emit_databases},
    {"locks", PG_COLLECT_LOCKS, PG_QUERY_ANY, LOCKS_SQL, emit_locks},
    /* The SQL depends on the server version: see pg_statements_sql(). */
    {"statements", PG_COLLECT_STATEMENTS, PG_QUERY_ANY, NULL, emit_statements},
};

const size_t pg_builtin_count = sizeof pg_builtins / sizeof pg_builtins[0];

bool pg_builtin_applies(const struct pg_builtin *q, const struct pg_server *server,
			const struct pg_options *opt)
{
	if ((opt->collect & q->group) == 0)
		return false;
	if (q->role == PG_QUERY_PRIMARY && server->in_recovery)
		return false;
	if (q->role == PG_QUERY_STANDBY && !server->in_recovery)
		return false;
	if (q->group == PG_COLLECT_STATEMENTS)
		return server->has_statements && opt->top_statements > 0;
	return true;
}

/*
 * Since PostgreSQL 14 a statement can have two entries (top level and nested): the sums
 * keep one series per user, database and queryid.
 */
#define STATEMENTS_SQL(total)                                                                      \
	"SELECT r.rolname, d.datname, s.queryid::text, sum(s.calls), sum(s." total ") / 1000, "    \
	"sum(s.rows) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "               \
	"JOIN pg_database d ON d.oid = s.dbid WHERE s.queryid IS NOT NULL "                        \
	"GROUP BY 1, 2, 3 ORDER BY 5 DESC LIMIT $1"

const char *pg_statements_sql(const struct pg_server *server)
{
	/* total_time became total_exec_time in pg_stat_statements 1.8 (PostgreSQL 13). */
	return server->version_num >= 130000 ? STATEMENTS_SQL("total_exec_time")
					     : STATEMENTS_SQL("total_time");
}

/* User queries */

static int column_find(const PGresult *res, const char *name)
{
	/* Exact match: PQfnumber would fold unquoted names to lower case. */
	for (int i = 0; i < PQnfields(res); i++) {
		if (strcmp(PQfname(res, i), name) == 0)
			return i;
	}
	return -1;
}

static int columns_map(const struct pg_user_query *q, const PGresult *res, int *label_columns,
		       int *value_columns, char *error, size_t error_size)
{
	for (size_t i = 0; i < q->label_count; i++) {
		label_columns[i] = column_find(res, q->labels[i]);
		if (label_columns[i] < 0) {
			snprintf(error, error_size, "label column '%s' not in the result",
				 q->labels[i]);
			return -1;
		}
	}
	for (size_t i = 0; i < q->value_count; i++) {
		value_columns[i] = column_find(res, q->values[i].column);
		if (value_columns[i] < 0) {
			snprintf(error, error_size, "value column '%s' not in the result",
				 q->values[i].column);
			return -1;
		}
	}
	return 0;
}

int pg_user_emit(struct probe_run *run, const struct pg_user_query *q, const PGresult *res,
		 char *error, size_t error_size)
{
	int *label_columns = xcalloc(q->label_count + 1, sizeof *label_columns);
	int *value_columns = xcalloc(q->value_count + 1, sizeof *value_columns);
	struct label *labels = xcalloc(q->label_count + 1, sizeof *labels);
	int rows = PQntuples(res);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(error, error_size, "%s", "the statement returned no rows");
		rc = -1;
		goto out;
	}
	if (columns_map(q, res, label_columns, value_columns, error, error_size) < 0) {
		rc = -1;
		goto out;
	}
	if (rows > PG_USER_ROWS_MAX) {
		snprintf(error, error_size, "%d rows, more than the limit of %d", rows,
			 PG_USER_ROWS_MAX);
		rows = PG_USER_ROWS_MAX;
		rc = -1;
	}
	for (int row = 0; row < rows; row++) {
		for (size_t i = 0; i < q->label_count; i++)
			labels[i] =
			    (struct label){q->labels[i], cell_text(res, row, label_columns[i])};
		for (size_t i = 0; i < q->value_count; i++) {
			double value;

			if (pg_cell_number(res, row, value_columns[i], &value)) {
				probe_run_emit(run, &q->values[i].desc, labels, q->label_count,
					       value);
			} else if (!PQgetisnull(res, row, value_columns[i]) && rc == 0) {
				snprintf(error, error_size, "column '%s' is not a number in row %d",
					 q->values[i].column, row + 1);
				rc = -1;
			}
		}
	}
out:
	free(label_columns);
	free(value_columns);
	free(labels);
	return rc;
}
