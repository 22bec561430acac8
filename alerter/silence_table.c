/*
 * The storage helpers of silences and acknowledgements (see silence_impl.h): versioned
 * table creation, cached statements, and throttled logging of failed statements, the
 * same way collector/statedb.c handles its own tables.
 */
#include "alerter/silence_impl.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/clock.h"
#include "collector/log.h"
#include "collector/statedb.h"
#include "collector/xalloc.h"

/* The only schema version written so far. */
#define SILENCE_TABLE_VERSION "1"

int silence_fail(char **error, const char *fmt, ...)
{
	char message[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	*error = xstrdup(message);
	return -1;
}

const char *silence_table_text(sqlite3_stmt *stmt, int index)
{
	const unsigned char *text = sqlite3_column_text(stmt, index);

	return text != NULL ? (const char *)text : "";
}

/* The statement and its name; index count is the data_version statement. */
static sqlite3_stmt *statement(struct silence_table *t, size_t s, const char **name)
{
	if (s == t->count) {
		*name = "change check";
		return t->data_version;
	}
	*name = t->defs[s].name;
	return t->stmt[s];
}

int silence_table_failed(struct silence_table *t, size_t s, int rc, char **error)
{
	const char *name;
	sqlite3_stmt *stmt = statement(t, s, &name);
	char message[512];
	uint64_t suppressed = 0;
	char ids[PATH_MAX + 16];

	/* Copied first: resetting the statement may replace the connection's message. */
	snprintf(message, sizeof message, "%s", sqlite3_errmsg(statedb_sqlite(t->db)));
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (throttle_fail(&t->log[s], clock_monotonic_ms(), &suppressed)) {
		log_error(t->module, log_ids(ids, sizeof ids, "file", statedb_path(t->db), NULL),
			  "%s failed (%" PRIu64 " more failures since the last report): %s (%s)",
			  name, suppressed, message, sqlite3_errstr(rc));
	}
	if (error != NULL) {
		silence_fail(error,
			     "%s in state database %s failed: %s; check that the file and its "
			     "directory are writable and that the disk has free space",
			     name, statedb_path(t->db), message);
	}
	return -1;
}

void silence_table_succeeded(struct silence_table *t, size_t s)
{
	const char *name;
	sqlite3_stmt *stmt = statement(t, s, &name);
	uint64_t failures = 0;
	char ids[PATH_MAX + 16];

	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (throttle_ok(&t->log[s], &failures)) {
		log_notice(t->module, log_ids(ids, sizeof ids, "file", statedb_path(t->db), NULL),
			   "%s succeeded again after %" PRIu64 " failures", name, failures);
	}
}

int silence_table_run(struct silence_table *t, size_t s, char **error)
{
	int rc = sqlite3_step(t->stmt[s]);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return silence_table_failed(t, s, rc, error);
	silence_table_succeeded(t, s);
	return 0;
}

/* Reads PRAGMA data_version, which changes when another connection commits. */
static int read_data_version(struct silence_table *t, int64_t *version)
{
	int rc = sqlite3_step(t->data_version);

	if (rc != SQLITE_ROW)
		return silence_table_failed(t, t->count, rc, NULL);
	*version = sqlite3_column_int64(t->data_version, 0);
	silence_table_succeeded(t, t->count);
	return 0;
}

/* Creates the tables and records their version, or checks the recorded version. */
static int create_schema(struct statedb *db, const char *version_key, const char *schema,
			 char **error)
{
	sqlite3 *sqlite = statedb_sqlite(db);
	char *stored;
	int rc;

	if (statedb_begin(db) < 0) {
		return silence_fail(error, "state database %s: starting a transaction failed: %s",
				    statedb_path(db), sqlite3_errmsg(sqlite));
	}
	stored = statedb_kv_get(db, version_key);
	if (stored != NULL && strcmp(stored, SILENCE_TABLE_VERSION) != 0) {
		silence_fail(error,
			     "state database %s has %s \"%s\", a schema this tocsind does not "
			     "read; run a newer tocsind or move the file away",
			     statedb_path(db), version_key, stored);
		goto bad;
	}
	rc = sqlite3_exec(sqlite, schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK ||
	    (stored == NULL && statedb_kv_put(db, version_key, SILENCE_TABLE_VERSION) < 0)) {
		silence_fail(error, "state database %s: creating the tables for %s failed: %s",
			     statedb_path(db), version_key, sqlite3_errmsg(sqlite));
		goto bad;
	}
	free(stored);
	if (statedb_commit(db) < 0) {
		return silence_fail(error,
				    "state database %s: committing the tables for %s "
				    "failed: %s",
				    statedb_path(db), version_key, sqlite3_errmsg(sqlite));
	}
	return 0;

bad:
	free(stored);
	statedb_rollback(db);
	return -1;
}

static int prepare(struct silence_table *t, const char *name, const char *sql, sqlite3_stmt **stmt,
		   char **error)
{
	int rc = sqlite3_prepare_v3(statedb_sqlite(t->db), sql, -1, SQLITE_PREPARE_PERSISTENT, stmt,
				    NULL);

	if (rc != SQLITE_OK) {
		return silence_fail(error,
				    "state database %s: preparing the %s statement failed: %s; "
				    "move the file away to start with empty state",
				    statedb_path(t->db), name,
				    sqlite3_errmsg(statedb_sqlite(t->db)));
	}
	return 0;
}

/* Runs the owner's load and records the data version that the loaded rows reflect. */
static int load(struct silence_table *t, char **error)
{
	int64_t version;

	if (read_data_version(t, &version) < 0) {
		if (error != NULL)
			silence_fail(error, "reading the data version of %s failed",
				     statedb_path(t->db));
		return -1;
	}
	if (t->load(t->owner, error) < 0)
		return -1;
	t->loaded_version = version;
	return 0;
}

int silence_table_refresh(struct silence_table *t)
{
	int64_t version;

	if (read_data_version(t, &version) < 0)
		return -1;
	if (version == t->loaded_version)
		return 0;
	return load(t, NULL) < 0 ? -1 : 1;
}

int silence_table_open(struct silence_table *t, struct statedb *db, const char *module,
		       const char *version_key, const char *schema,
		       const struct silence_table_stmt *defs, size_t count,
		       silence_table_load_fn *load_rows, void *owner, char **error)
{
	memset(t, 0, sizeof(*t));
	*error = NULL;
	if (create_schema(db, version_key, schema, error) < 0)
		return -1;
	t->db = db;
	t->module = module;
	t->defs = defs;
	t->count = count;
	t->load = load_rows;
	t->owner = owner;
	t->stmt = xcalloc(count, sizeof(*t->stmt));
	t->log = xcalloc(count + 1, sizeof(*t->log));
	for (size_t i = 0; i <= count; i++)
		throttle_init(&t->log[i], THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	for (size_t i = 0; i < count; i++) {
		if (prepare(t, defs[i].name, defs[i].sql, &t->stmt[i], error) < 0)
			goto bad;
	}
	if (prepare(t, "change check", "PRAGMA data_version", &t->data_version, error) < 0)
		goto bad;
	if (load(t, error) < 0)
		goto bad;
	return 0;

bad:
	silence_table_close(t);
	return -1;
}

void silence_table_close(struct silence_table *t)
{
	if (t->stmt != NULL) {
		for (size_t i = 0; i < t->count; i++)
			sqlite3_finalize(t->stmt[i]);
	}
	sqlite3_finalize(t->data_version);
	free(t->stmt);
	free(t->log);
	memset(t, 0, sizeof(*t));
}
