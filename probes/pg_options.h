/*
 * Options of the postgres probe: connection parameters, timeouts, which built-in query
 * groups run, and the user-defined queries with their column mapping. Parsed once per
 * config load with the cfg getters; every error names file:line:col and the key.
 */
#ifndef TOCSIN_PG_OPTIONS_H
#define TOCSIN_PG_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/series.h"

struct cfg_map;

/* Built-in query groups, selected with `collect:`. */
enum pg_collect {
	PG_COLLECT_ACTIVITY = 1u << 0,    /* connections by state, oldest transaction */
	PG_COLLECT_DATABASES = 1u << 1,   /* size, commits, blocks, wraparound per database */
	PG_COLLECT_LOCKS = 1u << 2,       /* locks by mode, waiting locks */
	PG_COLLECT_REPLICATION = 1u << 3, /* WAL position and lag, primary or standby */
	PG_COLLECT_STATEMENTS = 1u << 4,  /* top statements from pg_stat_statements */
	PG_COLLECT_ALL = (1u << 5) - 1,
};

/* One value column of a user query and the metric it becomes. */
struct pg_user_value {
	char *column;
	struct metric_desc desc; /* name and help owned */
};

/* A user-defined query: each result row becomes one sample per value column. */
struct pg_user_query {
	char *name;
	char *sql;
	char **labels; /* column names whose text becomes label values */
	size_t label_count;
	struct pg_user_value *values;
	size_t value_count;
	bool required; /* a failure fails the run instead of only being counted */
};

struct pg_options {
	char *host;       /* host name, IP address or unix socket directory; NULL: libpq default */
	char *hostaddr;   /* set when host is an IP address, so libpq never resolves it */
	char *dns_server; /* "ip:port" or "[ip6]:port" for c-ares; NULL: the system resolver */
	char *port;       /* decimal text, as libpq takes it */
	char *dbname;
	char *user;
	char *password; /* from password_file; wiped on free */
	char *sslmode;
	char *sslrootcert;
	char *sslcert;
	char *sslkey;
	char *application_name;
	uint64_t connect_timeout_ms;
	uint64_t statement_timeout_ms; /* 0: no server-side limit */
	unsigned top_statements;
	unsigned collect; /* enum pg_collect bits */
	struct pg_user_query *queries;
	size_t query_count;
};

/* Upper bound of top_statements: each statement adds a few series per run. */
#define PG_TOP_STATEMENTS_MAX 100

/*
 * Reads every option from `options` into *out (zeroed first). Returns 0, or -1 after
 * recording every error found. *out must be released with pg_options_free() either way.
 */
int pg_options_parse(struct cfg_map *options, struct pg_options *out);
void pg_options_free(struct pg_options *opt);

/*
 * True when `host` is a name that the probe must resolve before connecting: not an IP
 * address, not a unix socket directory ('/') or abstract socket ('@'), and not unset.
 */
bool pg_options_host_is_name(const struct pg_options *opt);

/*
 * Fills parallel keyword/value arrays for PQconnectStartParams from `opt`, NULL-terminated.
 * The arrays must hold PG_OPTIONS_KEYWORDS_MAX entries. `hostaddr` is the address the
 * probe resolved `host` to, passed as libpq's hostaddr next to the unchanged host name;
 * NULL uses opt->hostaddr. The strings stay owned by `opt` and the caller, except the
 * server options string written into `options_buf`.
 */
#define PG_OPTIONS_KEYWORDS_MAX 20
void pg_options_keywords(const struct pg_options *opt, const char *hostaddr, const char **keywords,
			 const char **values, char *options_buf, size_t options_size);

/* "host:port/dbname" (or the socket directory) for logs; never holds the password. */
const char *pg_options_target(const struct pg_options *opt, char *buf, size_t size);

#endif
