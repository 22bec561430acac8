/*
 * The state database (see statedb.h): opening and migrating the SQLite file, the cached
 * prepared statements of each table, and the JSON form of label sets. Every runtime
 * failure is logged through one throttle per statement, so a full disk produces one
 * line per doubling interval and one line when writes succeed again.
 */
#include "collector/statedb.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>

#include "collector/clock.h"
#include "collector/log.h"
#include "collector/throttle.h"
#include "collector/utf8.h"
#include "collector/xalloc.h"

/* The schema version this file writes; PRAGMA user_version stores the file's version. */
#define STATEDB_SCHEMA_VERSION 1
/* How long a statement waits for another connection's lock before failing. */
#define STATEDB_BUSY_TIMEOUT_MS 5000

/*
 * migrations[v] takes a database from schema version v to v + 1. An empty file has
 * version 0. Append new steps; never change a step that has shipped.
 */
static const char *const migrations[STATEDB_SCHEMA_VERSION] = {
    [0] = "CREATE TABLE alerts ("
	  " rule TEXT NOT NULL,"
	  " fingerprint INTEGER NOT NULL," /* the uint64 hash's bits as int64 */
	  " labels TEXT NOT NULL,"         /* JSON object */
	  " state TEXT NOT NULL,"          /* alert_state_name() */
	  " level TEXT NOT NULL,"          /* alert_level_name() */
	  " candidate TEXT NOT NULL,"
	  " candidate_since_ms INTEGER NOT NULL,"
	  " active_at_ms INTEGER NOT NULL,"
	  " fired_at_ms INTEGER NOT NULL,"
	  " resolved_at_ms INTEGER NOT NULL,"
	  " last_seen_ms INTEGER NOT NULL,"
	  " last_eval_ms INTEGER NOT NULL,"
	  " value REAL," /* NULL for NaN */
	  " flap_bits INTEGER NOT NULL,"
	  " flap_count INTEGER NOT NULL,"
	  " flapping INTEGER NOT NULL,"
	  " PRIMARY KEY (rule, fingerprint));"
	  "CREATE TABLE transitions ("
	  " id INTEGER PRIMARY KEY AUTOINCREMENT,"
	  " time_ms INTEGER NOT NULL,"
	  " group_name TEXT NOT NULL,"
	  " rule TEXT NOT NULL,"
	  " alertname TEXT NOT NULL,"
	  " fingerprint INTEGER NOT NULL,"
	  " labels TEXT NOT NULL,"
	  " annotations TEXT NOT NULL,"
	  " value REAL,"
	  " from_state TEXT NOT NULL,"
	  " to_state TEXT NOT NULL,"
	  " from_level TEXT NOT NULL,"
	  " to_level TEXT NOT NULL,"
	  " notify INTEGER NOT NULL,"
	  " flapping INTEGER NOT NULL,"
	  " resolved INTEGER NOT NULL);"
	  "CREATE INDEX transitions_time_ms ON transitions (time_ms);"
	  "CREATE TABLE slo_buckets ("
	  " slo TEXT NOT NULL,"
	  " minute INTEGER NOT NULL," /* Unix time in minutes */
	  " good REAL NOT NULL,"
	  " total REAL NOT NULL,"
	  " PRIMARY KEY (slo, minute));"
	  "CREATE TABLE kv ("
	  " key TEXT PRIMARY KEY,"
	  " value TEXT NOT NULL);",
};

enum statedb_stmt {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_ALERT_PUT,
	STMT_ALERT_DELETE,
	STMT_ALERT_LOAD_RULE,
	STMT_ALERT_LOAD_ALL,
	STMT_TRANSITION_ADD,
	STMT_TRANSITIONS_AFTER,
	STMT_TRANSITIONS_PRUNE,
	STMT_SLO_BUCKET_ADD,
	STMT_SLO_BUCKETS_LOAD,
	STMT_SLO_BUCKETS_PRUNE,
	STMT_KV_PUT,
	STMT_KV_GET,
	STMT_COUNT,
};

#define ALERT_COLUMNS                                                                              \
	"rule, fingerprint, labels, state, level, candidate, candidate_since_ms, "                 \
	"active_at_ms, fired_at_ms, resolved_at_ms, last_seen_ms, last_eval_ms, value, "           \
	"flap_bits, flap_count, flapping"
#define TRANSITION_COLUMNS                                                                         \
	"id, time_ms, group_name, rule, alertname, fingerprint, labels, annotations, value, "      \
	"from_state, to_state, from_level, to_level, notify, flapping, resolved"

static const struct {
	const char *name; /* for log lines: what failed */
	const char *sql;
} statements[STMT_COUNT] = {
    [STMT_BEGIN] = {"begin transaction", "BEGIN IMMEDIATE"},
    [STMT_COMMIT] = {"commit", "COMMIT"},
    [STMT_ROLLBACK] = {"rollback", "ROLLBACK"},
    [STMT_ALERT_PUT] = {"alert write",
			"INSERT OR REPLACE INTO alerts (" ALERT_COLUMNS ") VALUES "
			"(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"},
    [STMT_ALERT_DELETE] = {"alert delete",
			   "DELETE FROM alerts WHERE rule = ?1 AND fingerprint = ?2"},
    [STMT_ALERT_LOAD_RULE] = {"alert load", "SELECT " ALERT_COLUMNS " FROM alerts "
					    "WHERE rule = ?1 ORDER BY fingerprint"},
    [STMT_ALERT_LOAD_ALL] = {"alert load",
			     "SELECT " ALERT_COLUMNS " FROM alerts ORDER BY rule, fingerprint"},
    [STMT_TRANSITION_ADD] = {"transition write",
			     "INSERT INTO transitions (time_ms, group_name, rule, alertname, "
			     "fingerprint, labels, annotations, value, from_state, to_state, "
			     "from_level, to_level, notify, flapping, resolved) VALUES "
			     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"},
    [STMT_TRANSITIONS_AFTER] = {"transition read",
				"SELECT " TRANSITION_COLUMNS " FROM transitions WHERE id > ?1 "
				"ORDER BY id"},
    [STMT_TRANSITIONS_PRUNE] = {"transition prune", "DELETE FROM transitions WHERE time_ms < ?1"},
    [STMT_SLO_BUCKET_ADD] = {"slo bucket write",
			     "INSERT INTO slo_buckets (slo, minute, good, total) "
			     "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (slo, minute) DO UPDATE SET "
			     "good = good + excluded.good, total = total + excluded.total"},
    [STMT_SLO_BUCKETS_LOAD] = {"slo bucket read",
			       "SELECT minute, good, total FROM slo_buckets "
			       "WHERE slo = ?1 AND minute >= ?2 ORDER BY minute"},
    [STMT_SLO_BUCKETS_PRUNE] = {"slo bucket prune",
				"DELETE FROM slo_buckets WHERE slo = ?1 AND minute < ?2"},
    [STMT_KV_PUT] = {"value write", "INSERT INTO kv (key, value) VALUES (?1, ?2) "
				    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"},
    [STMT_KV_GET] = {"value read", "SELECT value FROM kv WHERE key = ?1"},
};

struct statedb {
	sqlite3 *sqlite;
	char *path;
	bool in_transaction;
	int begin_changes; /* sqlite3_total_changes() when the transaction began */
	/* Transition ids added in the open transaction (0 when none), and whether an add
	 * failed in it. */
	int64_t txn_first_transition, txn_last_transition;
	bool txn_transition_failed;
	/* The ids that the last commit which added transitions stored; 0 and 0 when an add
	 * of that transaction failed, since its transitions then carry made-up ids. */
	int64_t committed_first_transition, committed_last_transition;
	sqlite3_stmt *stmt[STMT_COUNT];
	struct throttle log[STMT_COUNT]; /* one per statement: one per kind of failure */
	struct throttle corrupt_log;     /* rows that do not parse */
};

int64_t statedb_fingerprint_to_sql(uint64_t fingerprint)
{
	int64_t v;

	memcpy(&v, &fingerprint, sizeof(v));
	return v;
}

uint64_t statedb_fingerprint_from_sql(int64_t value)
{
	uint64_t fingerprint;

	memcpy(&fingerprint, &value, sizeof(fingerprint));
	return fingerprint;
}

/* SQLite turns a bound NaN into NULL, so NULL reads back as NaN. Infinities are REALs. */
static void bind_value(sqlite3_stmt *stmt, int index, double value)
{
	if (isnan(value)) {
		sqlite3_bind_null(stmt, index);
	} else {
		sqlite3_bind_double(stmt, index, value);
	}
}

static double column_value(sqlite3_stmt *stmt, int index)
{
	if (sqlite3_column_type(stmt, index) == SQLITE_NULL)
		return NAN;
	return sqlite3_column_double(stmt, index);
}

static const char *column_text(sqlite3_stmt *stmt, int index)
{
	const unsigned char *text = sqlite3_column_text(stmt, index);

	return text != NULL ? (const char *)text : "";
}

/* The remedy for a failed statement, chosen by SQLite's primary result code. */
static const char *failure_hint(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return "free space on the file system that holds the state directory";
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		return "make the state directory and its files writable by tocsind";
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return "stop the other process that holds the state database";
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return "stop tocsind and move the damaged state database away";
	default:
		return "check the state directory's file system";
	}
}

/*
 * Logs a failed statement (throttled per statement), resets it and returns -1. The
 * message ends with the consequence, because the caller carries on in memory.
 */
static int statement_failed(struct statedb *db, enum statedb_stmt s, int rc)
{
	uint64_t suppressed = 0;
	char ids[PATH_MAX + 16];

	if (throttle_fail(&db->log[s], clock_monotonic_ms(), &suppressed)) {
		log_error("statedb", log_ids(ids, sizeof ids, "file", db->path, NULL),
			  "%s failed (%" PRIu64 " more such failures since the last report): "
			  "%s; %s. The change is kept in memory only",
			  statements[s].name, suppressed, sqlite3_errmsg(db->sqlite),
			  failure_hint(rc));
	}
	sqlite3_reset(db->stmt[s]);
	sqlite3_clear_bindings(db->stmt[s]);
	return -1;
}

static void statement_succeeded(struct statedb *db, enum statedb_stmt s)
{
	uint64_t failures = 0;
	char ids[PATH_MAX + 16];

	if (throttle_ok(&db->log[s], &failures)) {
		log_notice("statedb", log_ids(ids, sizeof ids, "file", db->path, NULL),
			   "%s succeeded again after %" PRIu64 " failures", statements[s].name,
			   failures);
	}
}

/* Logs (throttled) a stored row that does not parse; the caller skips the row. */
static void log_corrupt_row(struct statedb *db, const char *table, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_corrupt_row(struct statedb *db, const char *table, const char *fmt, ...)
{
	uint64_t suppressed = 0;
	char ids[PATH_MAX + 16];
	char problem[512];
	va_list ap;

	if (!throttle_fail(&db->corrupt_log, clock_monotonic_ms(), &suppressed))
		return;
	va_start(ap, fmt);
	vsnprintf(problem, sizeof problem, fmt, ap);
	va_end(ap);
	log_warn("statedb", log_ids(ids, sizeof ids, "file", db->path, NULL),
		 "skipped a row of table %s (%" PRIu64 " more skipped since the last report): "
		 "%s; delete the row or move the file away",
		 table, suppressed, problem);
}

/* Runs a statement that returns no rows; returns 0 or -1 (logged). */
static int run_statement(struct statedb *db, enum statedb_stmt s)
{
	sqlite3_stmt *stmt = db->stmt[s];
	int rc = sqlite3_step(stmt);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return statement_failed(db, s, rc);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	statement_succeeded(db, s);
	return 0;
}

/* Creates dir and its missing parents with mode 0750. Returns 0 or -1 with errno set. */
static int make_directory(const char *dir)
{
	char *copy = xstrdup(dir);
	int rc = 0;

	for (char *p = copy + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0750) < 0 && errno != EEXIST) {
			rc = -1;
			break;
		}
		*p = '/';
	}
	if (rc == 0 && mkdir(copy, 0750) < 0 && errno != EEXIST)
		rc = -1;
	free(copy);
	return rc;
}

/* The message statedb_open() returns for a failure of SQLite on the file. */
static char *open_error(const char *dir, const char *path, sqlite3 *sqlite, int rc)
{
	const char *message = sqlite != NULL ? sqlite3_errmsg(sqlite) : sqlite3_errstr(rc);

	/* statedb_open() reports a lock as EBUSY, so the daemon can tell it from the rest. */
	errno = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ? EBUSY : EIO;
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return xasprintf("state database %s is locked by another process (%s after "
				 "waiting %d ms); stop the other tocsind that uses it or set "
				 "state_dir to another directory",
				 path, message, STATEDB_BUSY_TIMEOUT_MS);
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
	case SQLITE_AUTH:
		return xasprintf("state_dir %s is not writable: cannot open %s: %s; fix the "
				 "permissions or set state_dir",
				 dir, path, message);
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return xasprintf("state database %s is not a valid SQLite database: %s; move "
				 "it away to start with empty state, or set state_dir",
				 path, message);
	case SQLITE_FULL:
		return xasprintf("state database %s: %s; free space on its file system or "
				 "set state_dir",
				 path, message);
	default:
		return xasprintf("state database %s cannot be opened: %s; check the file "
				 "system of state_dir %s",
				 path, message, dir);
	}
}

/* Runs one statement with no parameters; returns SQLite's code, SQLITE_OK on success. */
static int exec_sql(sqlite3 *sqlite, const char *sql)
{
	return sqlite3_exec(sqlite, sql, NULL, NULL, NULL);
}

/* Runs a PRAGMA that returns one value and copies the value into out. */
static int query_pragma(sqlite3 *sqlite, const char *sql, char *out, size_t size)
{
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v2(sqlite, sql, -1, &stmt, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		snprintf(out, size, "%s", column_text(stmt, 0));
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		out[0] = '\0';
		rc = SQLITE_OK;
	}
	sqlite3_finalize(stmt);
	return rc;
}

/*
 * Brings the schema to STATEDB_SCHEMA_VERSION inside one write transaction. Taking the
 * write lock here, even when nothing changes, makes a database that another process
 * holds fail at open instead of at the first write.
 */
static int migrate(struct statedb *db, const char *dir, char **error)
{
	char version_text[32];
	char *end;
	long version;
	int rc;

	rc = exec_sql(db->sqlite, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		goto bad;
	rc = query_pragma(db->sqlite, "PRAGMA user_version", version_text, sizeof version_text);
	if (rc != SQLITE_OK)
		goto bad;
	errno = 0;
	version = strtol(version_text, &end, 10);
	if (errno != 0 || *end != '\0' || version < 0) {
		errno = EIO;
		*error = xasprintf("state database %s has an invalid schema version \"%s\"; move "
				   "it away to start with empty state",
				   db->path, version_text);
		goto rollback;
	}
	if (version > STATEDB_SCHEMA_VERSION) {
		errno = EIO;
		*error = xasprintf("state database %s has schema version %ld, newer than the "
				   "version %d this tocsind supports; run a newer tocsind or move "
				   "the file away",
				   db->path, version, STATEDB_SCHEMA_VERSION);
		goto rollback;
	}
	for (long v = version; v < STATEDB_SCHEMA_VERSION; v++) {
		char pragma[64];

		rc = exec_sql(db->sqlite, migrations[v]);
		if (rc != SQLITE_OK)
			goto bad;
		snprintf(pragma, sizeof pragma, "PRAGMA user_version = %ld", v + 1);
		rc = exec_sql(db->sqlite, pragma);
		if (rc != SQLITE_OK)
			goto bad;
	}
	rc = exec_sql(db->sqlite, "COMMIT");
	if (rc != SQLITE_OK)
		goto bad;
	if (version == 0) {
		log_info("statedb", NULL, "state database %s created with schema version %d",
			 db->path, STATEDB_SCHEMA_VERSION);
	} else if (version < STATEDB_SCHEMA_VERSION) {
		log_info("statedb", NULL,
			 "state database %s migrated from schema version %ld to %d", db->path,
			 version, STATEDB_SCHEMA_VERSION);
	}
	return 0;

bad:
	*error = open_error(dir, db->path, db->sqlite, rc);
rollback:
	if (!sqlite3_get_autocommit(db->sqlite)) {
		int saved_errno = errno; /* EBUSY or EIO, for statedb_open()'s caller */

		exec_sql(db->sqlite, "ROLLBACK");
		errno = saved_errno;
	}
	return -1;
}

/* Applies the connection settings. */
static int configure(struct statedb *db, const char *dir, char **error)
{
	char mode[32];
	int rc;

	sqlite3_extended_result_codes(db->sqlite, 1);
	sqlite3_busy_timeout(db->sqlite, STATEDB_BUSY_TIMEOUT_MS);
	rc = query_pragma(db->sqlite, "PRAGMA journal_mode = WAL", mode, sizeof mode);
	if (rc != SQLITE_OK) {
		*error = open_error(dir, db->path, db->sqlite, rc);
		return -1;
	}
	if (strcmp(mode, "wal") != 0) {
		/* Some file systems (network mounts) have no shared memory for WAL. */
		log_warn("statedb", NULL,
			 "state database %s uses journal mode %s because WAL is not available "
			 "there; put state_dir on a local file system for concurrent readers",
			 db->path, mode);
	}
	rc = exec_sql(db->sqlite, "PRAGMA synchronous = FULL");
	if (rc == SQLITE_OK)
		rc = exec_sql(db->sqlite, "PRAGMA foreign_keys = ON");
	if (rc != SQLITE_OK) {
		*error = open_error(dir, db->path, db->sqlite, rc);
		return -1;
	}
	return 0;
}

static int prepare_statements(struct statedb *db, char **error)
{
	for (size_t i = 0; i < STMT_COUNT; i++) {
		int rc = sqlite3_prepare_v3(db->sqlite, statements[i].sql, -1,
					    SQLITE_PREPARE_PERSISTENT, &db->stmt[i], NULL);

		if (rc != SQLITE_OK) {
			errno = EIO;
			*error =
			    xasprintf("state database %s: preparing the %s statement failed: "
				      "%s; move the file away to start with empty state",
				      db->path, statements[i].name, sqlite3_errmsg(db->sqlite));
			return -1;
		}
	}
	return 0;
}

struct statedb *statedb_open(const char *dir, char **error)
{
	struct statedb *db;
	int saved_errno;
	int rc;

	*error = NULL;
	if (make_directory(dir) < 0) {
		*error = xasprintf("state_dir %s cannot be created: %s; create it, writable by "
				   "tocsind, or set state_dir",
				   dir, strerror(errno));
		return NULL;
	}

	db = xcalloc(1, sizeof(*db));
	db->path = xasprintf("%s/%s", dir, STATEDB_FILE);
	for (size_t i = 0; i < STMT_COUNT; i++)
		throttle_init(&db->log[i], THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	throttle_init(&db->corrupt_log, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);

	rc = sqlite3_open_v2(db->path, &db->sqlite, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			     NULL);
	if (rc != SQLITE_OK) {
		*error = open_error(dir, db->path, db->sqlite, rc);
		goto bad;
	}
	/* SQLite falls back to read-only when the file exists but cannot be written. */
	if (sqlite3_db_readonly(db->sqlite, "main") == 1) {
		*error = open_error(dir, db->path, db->sqlite, SQLITE_READONLY);
		goto bad;
	}
	if (configure(db, dir, error) < 0 || migrate(db, dir, error) < 0 ||
	    prepare_statements(db, error) < 0)
		goto bad;
	return db;

bad:
	saved_errno = errno;
	statedb_close(db);
	errno = saved_errno;
	return NULL;
}

void statedb_close(struct statedb *db)
{
	if (db == NULL)
		return;
	if (db->in_transaction)
		statedb_rollback(db);
	for (size_t i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(db->stmt[i]);
	if (db->sqlite != NULL && sqlite3_close(db->sqlite) != SQLITE_OK) {
		log_error("statedb", NULL, "closing state database %s failed: %s", db->path,
			  sqlite3_errmsg(db->sqlite));
	}
	free(db->path);
	free(db);
}

const char *statedb_path(const struct statedb *db)
{
	return db->path;
}

struct sqlite3 *statedb_sqlite(struct statedb *db)
{
	return db->sqlite;
}

int statedb_begin(struct statedb *db)
{
	if (db->in_transaction) {
		log_error("statedb", NULL,
			  "a transaction on %s is already open; transactions do not nest",
			  db->path);
		return -1;
	}
	if (run_statement(db, STMT_BEGIN) < 0)
		return -1;
	db->in_transaction = true;
	db->begin_changes = sqlite3_total_changes(db->sqlite);
	db->txn_first_transition = 0;
	db->txn_last_transition = 0;
	db->txn_transition_failed = false;
	return 0;
}

int statedb_commit(struct statedb *db)
{
	bool wrote;
	int rc;

	if (!db->in_transaction) {
		log_error("statedb", NULL, "commit on %s without a transaction", db->path);
		return -1;
	}
	wrote = sqlite3_total_changes(db->sqlite) != db->begin_changes;
	rc = sqlite3_step(db->stmt[STMT_COMMIT]);
	if (rc != SQLITE_DONE) {
		statement_failed(db, STMT_COMMIT, rc);
		/* A failed COMMIT may leave the transaction open: end it so the next begins. */
		statedb_rollback(db);
		return -1;
	}
	sqlite3_reset(db->stmt[STMT_COMMIT]);
	db->in_transaction = false;
	if (db->txn_transition_failed) {
		db->committed_first_transition = 0;
		db->committed_last_transition = 0;
	} else if (db->txn_first_transition > 0) {
		db->committed_first_transition = db->txn_first_transition;
		db->committed_last_transition = db->txn_last_transition;
	}
	/* An empty transaction commits even on a full disk, so only a commit that wrote
	 * rows ends a run of failures. Otherwise the throttle would log every failure. */
	if (wrote)
		statement_succeeded(db, STMT_COMMIT);
	return 0;
}

void statedb_rollback(struct statedb *db)
{
	if (!db->in_transaction)
		return;
	db->in_transaction = false;
	/* SQLite may have rolled back by itself already (after SQLITE_FULL, for instance). */
	if (!sqlite3_get_autocommit(db->sqlite))
		run_statement(db, STMT_ROLLBACK);
}

/* Binds labels as JSON to the statement's parameter `index`; the statement owns the text. */
static void bind_labels(sqlite3_stmt *stmt, int index, const struct label *labels, size_t count)
{
	char *json = statedb_labels_json(labels, count);

	sqlite3_bind_text(stmt, index, json, -1, free);
}

int statedb_alert_put(struct statedb *db, const struct statedb_alert *a)
{
	sqlite3_stmt *stmt = db->stmt[STMT_ALERT_PUT];
	const struct alert_instance *inst = &a->inst;

	sqlite3_bind_text(stmt, 1, a->rule, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, statedb_fingerprint_to_sql(a->fingerprint));
	bind_labels(stmt, 3, a->labels, a->label_count);
	sqlite3_bind_text(stmt, 4, alert_state_name(inst->state), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, alert_level_name(inst->level), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 6, alert_level_name(inst->candidate), -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 7, inst->candidate_since_ms);
	sqlite3_bind_int64(stmt, 8, inst->active_at_ms);
	sqlite3_bind_int64(stmt, 9, inst->fired_at_ms);
	sqlite3_bind_int64(stmt, 10, inst->resolved_at_ms);
	sqlite3_bind_int64(stmt, 11, inst->last_seen_ms);
	sqlite3_bind_int64(stmt, 12, inst->last_eval_ms);
	bind_value(stmt, 13, inst->value);
	sqlite3_bind_int64(stmt, 14, inst->flap_bits);
	sqlite3_bind_int(stmt, 15, inst->flap_count);
	sqlite3_bind_int(stmt, 16, inst->flapping);
	return run_statement(db, STMT_ALERT_PUT);
}

int statedb_alert_delete(struct statedb *db, const char *rule, uint64_t fingerprint)
{
	sqlite3_stmt *stmt = db->stmt[STMT_ALERT_DELETE];

	sqlite3_bind_text(stmt, 1, rule, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, statedb_fingerprint_to_sql(fingerprint));
	return run_statement(db, STMT_ALERT_DELETE);
}

/* Parses a name that alert_level_name() returns; -1 for any other name. */
static int parse_level(const char *name, enum alert_level *out)
{
	static const enum alert_level levels[] = {ALERT_LEVEL_OK, ALERT_LEVEL_WARNING,
						  ALERT_LEVEL_CRITICAL};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (strcmp(alert_level_name(levels[i]), name) == 0) {
			*out = levels[i];
			return 0;
		}
	}
	return -1;
}

/* Fills *a from the current row of an alert SELECT; a->labels is allocated. */
static int read_alert_row(struct statedb *db, sqlite3_stmt *stmt, struct statedb_alert *a)
{
	struct alert_instance *inst = &a->inst;
	struct label *labels = NULL;
	size_t count = 0;
	int64_t flap_bits;
	int flap_count;

	memset(a, 0, sizeof(*a));
	a->rule = column_text(stmt, 0);
	a->fingerprint = statedb_fingerprint_from_sql(sqlite3_column_int64(stmt, 1));
	if (statedb_labels_parse(column_text(stmt, 2), &labels, &count) < 0) {
		log_corrupt_row(db, "alerts",
				"rule %s fingerprint %016" PRIx64 ": labels %s are not a JSON "
				"object of strings",
				a->rule, a->fingerprint, column_text(stmt, 2));
		return -1;
	}
	if (alert_state_parse(column_text(stmt, 3), &inst->state) < 0 ||
	    parse_level(column_text(stmt, 4), &inst->level) < 0 ||
	    parse_level(column_text(stmt, 5), &inst->candidate) < 0) {
		log_corrupt_row(db, "alerts",
				"rule %s fingerprint %016" PRIx64 ": unknown state \"%s\" or "
				"level \"%s\" or \"%s\"",
				a->rule, a->fingerprint, column_text(stmt, 3), column_text(stmt, 4),
				column_text(stmt, 5));
		statedb_labels_free(labels, count);
		return -1;
	}
	flap_bits = sqlite3_column_int64(stmt, 13);
	flap_count = sqlite3_column_int(stmt, 14);
	if (flap_bits < 0 || flap_bits > UINT32_MAX || flap_count < 0 || flap_count > UINT8_MAX) {
		log_corrupt_row(db, "alerts",
				"rule %s fingerprint %016" PRIx64 ": flap history %" PRId64
				" of %d evaluations is out of range",
				a->rule, a->fingerprint, flap_bits, flap_count);
		statedb_labels_free(labels, count);
		return -1;
	}
	a->labels = labels;
	a->label_count = count;
	inst->candidate_since_ms = sqlite3_column_int64(stmt, 6);
	inst->active_at_ms = sqlite3_column_int64(stmt, 7);
	inst->fired_at_ms = sqlite3_column_int64(stmt, 8);
	inst->resolved_at_ms = sqlite3_column_int64(stmt, 9);
	inst->last_seen_ms = sqlite3_column_int64(stmt, 10);
	inst->last_eval_ms = sqlite3_column_int64(stmt, 11);
	inst->value = column_value(stmt, 12);
	inst->flap_bits = (uint32_t)flap_bits;
	inst->flap_count = (uint8_t)flap_count;
	inst->flapping = sqlite3_column_int(stmt, 15) != 0;
	return 0;
}

int statedb_alert_load(struct statedb *db, const char *rule, statedb_alert_fn *fn, void *arg)
{
	enum statedb_stmt s = rule != NULL ? STMT_ALERT_LOAD_RULE : STMT_ALERT_LOAD_ALL;
	sqlite3_stmt *stmt = db->stmt[s];
	int rc;

	if (rule != NULL)
		sqlite3_bind_text(stmt, 1, rule, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct statedb_alert a;

		if (read_alert_row(db, stmt, &a) < 0)
			continue;
		fn(arg, &a);
		statedb_labels_free((struct label *)a.labels, a.label_count);
	}
	if (rc != SQLITE_DONE)
		return statement_failed(db, s, rc);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	statement_succeeded(db, s);
	return 0;
}

int64_t statedb_transition_add(struct statedb *db, const struct statedb_transition *t)
{
	sqlite3_stmt *stmt = db->stmt[STMT_TRANSITION_ADD];
	const struct alert_change *c = &t->change;
	int64_t id;

	sqlite3_bind_int64(stmt, 1, t->time_ms);
	sqlite3_bind_text(stmt, 2, t->group, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, t->rule, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, t->alertname, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, statedb_fingerprint_to_sql(t->fingerprint));
	bind_labels(stmt, 6, t->labels, t->label_count);
	bind_labels(stmt, 7, t->annotations, t->annotation_count);
	bind_value(stmt, 8, t->value);
	sqlite3_bind_text(stmt, 9, alert_state_name(c->from_state), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 10, alert_state_name(c->to_state), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 11, alert_level_name(c->from_level), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 12, alert_level_name(c->to_level), -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 13, c->notify);
	sqlite3_bind_int(stmt, 14, c->flapping);
	sqlite3_bind_int(stmt, 15, c->resolved);
	if (run_statement(db, STMT_TRANSITION_ADD) < 0) {
		db->txn_transition_failed = true;
		return -1;
	}
	id = sqlite3_last_insert_rowid(db->sqlite);
	if (!db->in_transaction) {
		/* An autocommit statement: stored already. */
		db->committed_first_transition = id;
		db->committed_last_transition = id;
	} else {
		if (db->txn_first_transition == 0)
			db->txn_first_transition = id;
		db->txn_last_transition = id;
	}
	return id;
}

bool statedb_transition_committed(const struct statedb *db, int64_t id)
{
	return id > 0 && id >= db->committed_first_transition &&
	       id <= db->committed_last_transition;
}

/* Fills *t from the current row of the transition SELECT; labels are allocated. */
static int read_transition_row(struct statedb *db, sqlite3_stmt *stmt, struct statedb_transition *t)
{
	struct alert_change *c = &t->change;
	struct label *labels = NULL;
	struct label *annotations = NULL;
	size_t label_count = 0;
	size_t annotation_count = 0;

	memset(t, 0, sizeof(*t));
	if (statedb_labels_parse(column_text(stmt, 6), &labels, &label_count) < 0 ||
	    statedb_labels_parse(column_text(stmt, 7), &annotations, &annotation_count) < 0) {
		log_corrupt_row(db, "transitions",
				"id %" PRId64 ": labels %s or annotations %s are not a JSON "
				"object of strings",
				(int64_t)sqlite3_column_int64(stmt, 0), column_text(stmt, 6),
				column_text(stmt, 7));
		statedb_labels_free(labels, label_count);
		return -1;
	}
	if (alert_state_parse(column_text(stmt, 9), &c->from_state) < 0 ||
	    alert_state_parse(column_text(stmt, 10), &c->to_state) < 0 ||
	    parse_level(column_text(stmt, 11), &c->from_level) < 0 ||
	    parse_level(column_text(stmt, 12), &c->to_level) < 0) {
		log_corrupt_row(db, "transitions",
				"id %" PRId64 ": unknown state \"%s\" or \"%s\" or level \"%s\" "
				"or \"%s\"",
				(int64_t)sqlite3_column_int64(stmt, 0), column_text(stmt, 9),
				column_text(stmt, 10), column_text(stmt, 11),
				column_text(stmt, 12));
		statedb_labels_free(labels, label_count);
		statedb_labels_free(annotations, annotation_count);
		return -1;
	}
	t->id = sqlite3_column_int64(stmt, 0);
	t->time_ms = sqlite3_column_int64(stmt, 1);
	t->group = column_text(stmt, 2);
	t->rule = column_text(stmt, 3);
	t->alertname = column_text(stmt, 4);
	t->fingerprint = statedb_fingerprint_from_sql(sqlite3_column_int64(stmt, 5));
	t->labels = labels;
	t->label_count = label_count;
	t->annotations = annotations;
	t->annotation_count = annotation_count;
	t->value = column_value(stmt, 8);
	c->notify = sqlite3_column_int(stmt, 13) != 0;
	c->flapping = sqlite3_column_int(stmt, 14) != 0;
	c->resolved = sqlite3_column_int(stmt, 15) != 0;
	return 0;
}

int statedb_transitions_after(struct statedb *db, int64_t after_id, size_t limit,
			      statedb_transition_fn *fn, void *arg)
{
	sqlite3_stmt *stmt = db->stmt[STMT_TRANSITIONS_AFTER];
	int passed = 0;
	int rc = SQLITE_DONE;

	if (limit > INT_MAX)
		limit = INT_MAX; /* the count is returned as an int */
	sqlite3_bind_int64(stmt, 1, after_id);
	/*
	 * The limit counts rows passed to fn, not rows read, so that rows that do not parse
	 * never fill a batch and stop the reader's cursor before the rows after them.
	 */
	while ((size_t)passed < limit && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct statedb_transition t;

		if (read_transition_row(db, stmt, &t) < 0)
			continue;
		fn(arg, &t);
		passed++;
		statedb_labels_free((struct label *)t.labels, t.label_count);
		statedb_labels_free((struct label *)t.annotations, t.annotation_count);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return statement_failed(db, STMT_TRANSITIONS_AFTER, rc);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	statement_succeeded(db, STMT_TRANSITIONS_AFTER);
	return passed;
}

int statedb_transitions_prune(struct statedb *db, int64_t before_ms)
{
	sqlite3_bind_int64(db->stmt[STMT_TRANSITIONS_PRUNE], 1, before_ms);
	if (run_statement(db, STMT_TRANSITIONS_PRUNE) < 0)
		return -1;
	return sqlite3_changes(db->sqlite);
}

int statedb_slo_bucket_add(struct statedb *db, const char *slo, int64_t minute, double good,
			   double total)
{
	sqlite3_stmt *stmt = db->stmt[STMT_SLO_BUCKET_ADD];

	sqlite3_bind_text(stmt, 1, slo, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, minute);
	sqlite3_bind_double(stmt, 3, good);
	sqlite3_bind_double(stmt, 4, total);
	return run_statement(db, STMT_SLO_BUCKET_ADD);
}

int statedb_slo_buckets_load(struct statedb *db, const char *slo, int64_t from_minute,
			     statedb_slo_bucket_fn *fn, void *arg)
{
	sqlite3_stmt *stmt = db->stmt[STMT_SLO_BUCKETS_LOAD];
	int rc;

	sqlite3_bind_text(stmt, 1, slo, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, from_minute);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		fn(arg, sqlite3_column_int64(stmt, 0), sqlite3_column_double(stmt, 1),
		   sqlite3_column_double(stmt, 2));
	}
	if (rc != SQLITE_DONE)
		return statement_failed(db, STMT_SLO_BUCKETS_LOAD, rc);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	statement_succeeded(db, STMT_SLO_BUCKETS_LOAD);
	return 0;
}

int statedb_slo_buckets_prune(struct statedb *db, const char *slo, int64_t before_minute)
{
	sqlite3_stmt *stmt = db->stmt[STMT_SLO_BUCKETS_PRUNE];

	sqlite3_bind_text(stmt, 1, slo, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, before_minute);
	return run_statement(db, STMT_SLO_BUCKETS_PRUNE);
}

int statedb_kv_put(struct statedb *db, const char *key, const char *value)
{
	sqlite3_stmt *stmt = db->stmt[STMT_KV_PUT];

	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, value, -1, SQLITE_STATIC);
	return run_statement(db, STMT_KV_PUT);
}

char *statedb_kv_get(struct statedb *db, const char *key)
{
	sqlite3_stmt *stmt = db->stmt[STMT_KV_GET];
	char *value = NULL;
	int rc;

	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		value = xstrdup(column_text(stmt, 0));
	} else if (rc != SQLITE_DONE) {
		statement_failed(db, STMT_KV_GET, rc);
		return NULL;
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	statement_succeeded(db, STMT_KV_GET);
	return value;
}

/* A JSON string for text; utf8_repair() turns bytes that are not UTF-8 into '?'. */
static json_t *json_text(const char *text)
{
	char *copy;
	json_t *s;

	if (utf8_valid(text))
		return json_string(text);
	copy = xstrdup(text);
	utf8_repair(copy);
	s = json_string(copy);
	free(copy);
	return s;
}

/* Bytes that escape_json() writes for c: 1, 2 (\n, \", ...) or 6 (\u001F). */
static size_t escaped_length(unsigned char c)
{
	if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
		return 2;
	return c < 0x20 ? 6 : 1;
}

/* Writes text as a JSON string at out, escaped as jansson's json_dumps() escapes it, so
 * that rows keep one form whichever path wrote them. Returns the end. */
static char *escape_json(char *out, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";

	*out++ = '"';
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		unsigned char c = *p;

		if (escaped_length(c) == 1) {
			*out++ = (char)c;
			continue;
		}
		*out++ = '\\';
		switch (c) {
		case '"':
		case '\\':
			*out++ = (char)c;
			break;
		case '\b':
			*out++ = 'b';
			break;
		case '\f':
			*out++ = 'f';
			break;
		case '\n':
			*out++ = 'n';
			break;
		case '\r':
			*out++ = 'r';
			break;
		case '\t':
			*out++ = 't';
			break;
		default:
			*out++ = 'u';
			*out++ = '0';
			*out++ = '0';
			*out++ = hex[c >> 4];
			*out++ = hex[c & 0xf];
			break;
		}
	}
	*out++ = '"';
	return out;
}

/*
 * Renders labels sorted by name without duplicates, in valid UTF-8, straight into a
 * string: this runs for every transition and alert row, and building a jansson object
 * first costs several times as much. Returns NULL for any other label set.
 */
static char *labels_json_direct(const struct label *labels, size_t count)
{
	size_t size = 3; /* braces and the terminating NUL */
	char *text;
	char *out;

	for (size_t i = 0; i < count; i++) {
		if (i > 0 && strcmp(labels[i - 1].name, labels[i].name) >= 0)
			return NULL;
		if (!utf8_valid(labels[i].name) || !utf8_valid(labels[i].value))
			return NULL;
		size += 6; /* quotes, colon, comma */
		for (const char *p = labels[i].name; *p != '\0'; p++)
			size += escaped_length((unsigned char)*p);
		for (const char *p = labels[i].value; *p != '\0'; p++)
			size += escaped_length((unsigned char)*p);
	}
	text = xmalloc(size);
	out = text;
	*out++ = '{';
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			*out++ = ',';
		out = escape_json(out, labels[i].name);
		*out++ = ':';
		out = escape_json(out, labels[i].value);
	}
	*out++ = '}';
	*out = '\0';
	return text;
}

char *statedb_labels_json(const struct label *labels, size_t count)
{
	json_t *object;
	char *text = labels_json_direct(labels, count);

	if (text != NULL)
		return text;
	object = json_object();

	if (object == NULL)
		log_fatal("statedb", "out of memory building a JSON object");
	for (size_t i = 0; i < count; i++) {
		json_t *name = json_text(labels[i].name);
		json_t *value = json_text(labels[i].value);

		if (name == NULL || value == NULL ||
		    json_object_set_new(object, json_string_value(name), value) < 0)
			log_fatal("statedb", "out of memory building a JSON object");
		json_decref(name);
	}
	text = json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(object);
	if (text == NULL)
		log_fatal("statedb", "out of memory rendering a JSON object");
	/* jansson allocates with malloc() unless json_set_alloc_funcs() replaced it. */
	return text;
}

static int compare_labels(const void *a, const void *b)
{
	const struct label *x = a;
	const struct label *y = b;

	return strcmp(x->name, y->name);
}

int statedb_labels_from_json(json_t *object, struct label **labels, size_t *count,
			     const char **bad_name)
{
	struct label *out = NULL;
	size_t n = 0;
	const char *name;
	json_t *value;

	*labels = NULL;
	*count = 0;
	*bad_name = NULL;
	if (!json_is_object(object))
		return -1;
	if (json_object_size(object) > 0)
		out = xcalloc(json_object_size(object), sizeof(*out));
	json_object_foreach(object, name, value)
	{
		if (!json_is_string(value)) {
			statedb_labels_free(out, n);
			*bad_name = name;
			return -1;
		}
		out[n].name = xstrdup(name);
		out[n].value = xstrdup(json_string_value(value));
		n++;
	}
	if (n > 1)
		qsort(out, n, sizeof(*out), compare_labels);
	*labels = out;
	*count = n;
	return 0;
}

int statedb_labels_parse(const char *json, struct label **labels, size_t *count)
{
	json_t *object = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
	const char *bad_name;
	int rc;

	*labels = NULL;
	*count = 0;
	if (object == NULL)
		return -1;
	rc = statedb_labels_from_json(object, labels, count, &bad_name);
	json_decref(object);
	return rc;
}

void statedb_labels_free(struct label *labels, size_t count)
{
	if (labels == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((char *)labels[i].name);
		free((char *)labels[i].value);
	}
	free(labels);
}
