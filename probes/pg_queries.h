/*
 * The postgres probe's query set: the SQL of each built-in query, which server role it
 * applies to, and how its result becomes samples; plus the mapping of user-defined
 * queries' columns to labels and values. Emitters only read a PGresult and call
 * probe_run_emit(), so they are tested with results built by PQmakeEmptyPGresult().
 */
#ifndef TOCSIN_PG_QUERIES_H
#define TOCSIN_PG_QUERIES_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "probes/pg_options.h"
#include "probes/probe.h"

/* What the server-information query found; decides which queries run next. */
struct pg_server {
	int version_num;     /* server_version_num, 150020 for 15.20 */
	bool in_recovery;    /* a standby (or a server in crash recovery) */
	bool has_statements; /* pg_stat_statements installed in the connected database */
};

/* Which role a built-in query applies to. */
enum pg_query_role {
	PG_QUERY_ANY,
	PG_QUERY_PRIMARY, /* uses functions that fail during recovery (SQLSTATE 55000) */
	PG_QUERY_STANDBY,
};

struct pg_builtin {
	const char *name; /* the `query` label of tocsin_pg_query_errors_total */
	unsigned group;   /* enum pg_collect bit */
	enum pg_query_role role;
	const char *sql;
	/* Emits the result's samples; `server` is the info of this run. */
	void (*emit)(struct probe_run *run, const PGresult *res, const struct pg_server *server);
};

extern const struct pg_builtin pg_builtins[];
extern const size_t pg_builtin_count;

/* The server-information query: one row of version, role and pg_stat_statements presence. */
extern const char *const pg_info_sql;

/*
 * Reads the info row into *server and emits version, role and max_connections. Returns
 * -1 when the result does not have the expected shape.
 */
int pg_info_emit(struct probe_run *run, const PGresult *res, struct pg_server *server);

/* Whether a built-in query runs against a server with this role and these options. */
bool pg_builtin_applies(const struct pg_builtin *q, const struct pg_server *server,
			const struct pg_options *opt);

/* The top-statements query for this server version, with $1 = the row limit. */
const char *pg_statements_sql(const struct pg_server *server);

/*
 * Emits one sample per row and value column of a user query's result. Rows past
 * PG_USER_ROWS_MAX, a missing column or a non-numeric value make it return -1 with a
 * short reason in `error`; the rows and values that could be read are still emitted.
 * NULL values are skipped: a NULL is "no value", not 0.
 */
#define PG_USER_ROWS_MAX 1000
int pg_user_emit(struct probe_run *run, const struct pg_user_query *q, const PGresult *res,
		 char *error, size_t error_size);

/*
 * Parses one cell as a number: text of a float or integer (also NaN and Infinity), or a
 * boolean "t"/"f" as 1/0. Returns false for NULL and for other text.
 */
bool pg_cell_number(const PGresult *res, int row, int column, double *out);

#endif
