/*
 * Internals shared by silence.c and ack.c: a table of the state database with its cached
 * prepared statements, errors logged through one throttle per statement, a schema version
 * kept in the kv table, and change detection through PRAGMA data_version. Not for other
 * modules: they use alerter/silence.h and alerter/ack.h.
 */
#ifndef TOCSIN_SILENCE_IMPL_H
#define TOCSIN_SILENCE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "collector/throttle.h"

struct statedb;

struct silence_table_stmt {
	const char *name; /* for messages: what failed ("silence write") */
	const char *sql;
};

/*
 * Replaces owner's in-memory rows with the rows the table contains now. Returns 0, or -1 with
 * owner's rows unchanged and, when error is not NULL, *error set (caller frees).
 */
typedef int silence_table_load_fn(void *owner, char **error);

struct silence_table {
	struct statedb *db;
	const char *module; /* log module name */
	const struct silence_table_stmt *defs;
	size_t count;
	sqlite3_stmt **stmt;  /* stmt[i] runs defs[i] */
	struct throttle *log; /* log[i] for stmt[i], the last one for data_version */
	sqlite3_stmt *data_version;
	silence_table_load_fn *load;
	void *owner;            /* load's argument: the set that keeps the rows in memory */
	int64_t loaded_version; /* PRAGMA data_version read before the last load */
};

/*
 * Creates the tables of `schema` (CREATE TABLE IF NOT EXISTS statements) in one
 * transaction, records version 1 under `version_key` in the kv table, rejects a newer
 * stored version, prepares the statements, and loads the rows with load(owner). Returns 0,
 * or -1 with *error set (caller frees) and the table closed.
 */
int silence_table_open(struct silence_table *t, struct statedb *db, const char *module,
		       const char *version_key, const char *schema,
		       const struct silence_table_stmt *defs, size_t count,
		       silence_table_load_fn *load, void *owner, char **error);
void silence_table_close(struct silence_table *t);

/*
 * Loads the rows again when another connection committed since the last load. Returns 1
 * when it reloaded, 0 when nothing changed, and -1 when reading the version or the rows
 * failed (logged, throttled), keeping the rows of the last load.
 */
int silence_table_refresh(struct silence_table *t);

/* Runs statement s, which returns no rows, then resets it. -1 when it fails (logged,
 * throttled, and described in *error when error is not NULL). */
int silence_table_run(struct silence_table *t, size_t s, char **error);
/* Ends a statement that stopped with SQLite code rc; returns -1 as silence_table_run(). */
int silence_table_failed(struct silence_table *t, size_t s, int rc, char **error);
/* Resets statement s after its last row and logs a recovery after failures. */
void silence_table_succeeded(struct silence_table *t, size_t s);

/* The text of a column, "" for NULL. */
const char *silence_table_text(sqlite3_stmt *stmt, int index);

/* Sets *error (caller frees) to the formatted message and returns -1. */
int silence_fail(char **error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
