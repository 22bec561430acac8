/*
 * The outbox table in the state database (see outbox.h): its schema and the version
 * kept beside it, the cached statements, and the state machine of one entry. Each
 * change is one statement. With synchronous=FULL it is on disk when the function returns,
 * or, inside a transaction of the caller (the delivery loop batches its marks), when that
 * transaction commits.
 */
#include "alerter/outbox.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "collector/clock.h"
#include "collector/log.h"
#include "collector/statedb.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"

/*
 * The outbox keeps its own schema version in the kv table, so that it adds its table
 * without a step in statedb.c's migrations. migrations[v] takes it from version v to
 * v + 1; append new steps and never change one that has shipped.
 */
#define OUTBOX_SCHEMA_VERSION 1
#define OUTBOX_VERSION_KEY    "outbox_schema_version"

static const char *const migrations[OUTBOX_SCHEMA_VERSION] = {
    /*
     * One row per notification and receiver integration: the two webhooks of a receiver
     * get the same idempotency key and are delivered independently. AUTOINCREMENT keeps
     * the ids of pruned rows from being reused, because the API names entries by id.
     */
    [0] = "CREATE TABLE IF NOT EXISTS outbox ("
	  " id INTEGER PRIMARY KEY AUTOINCREMENT,"
	  " idempotency_key TEXT NOT NULL,"
	  " receiver TEXT NOT NULL,"
	  " integration INTEGER NOT NULL,"
	  " state TEXT NOT NULL"
	  "  CHECK (state IN ('queued', 'sending', 'delivered', 'retrying', 'dead')),"
	  " attempts INTEGER NOT NULL,"
	  " created_ms INTEGER NOT NULL,"
	  " next_attempt_ms INTEGER NOT NULL,"
	  " last_attempt_ms INTEGER NOT NULL,"
	  " delivered_ms INTEGER NOT NULL,"
	  " last_reason TEXT NOT NULL,"
	  " last_detail TEXT NOT NULL,"
	  " payload TEXT NOT NULL," /* the notification's JSON */
	  " condition_ms INTEGER NOT NULL,"
	  " UNIQUE (receiver, integration, idempotency_key));"
	  /* For the due entries, pruning, and listing by state in id order. */
	  "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_ms);"
	  "CREATE INDEX IF NOT EXISTS outbox_delivered ON outbox (state, delivered_ms);"
	  "CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state);",
};

enum outbox_stmt {
	STMT_ENQUEUE,
	STMT_FIND_KEY,
	STMT_DUE,
	STMT_NEXT_ATTEMPT,
	STMT_MARK_SENDING,
	STMT_MARK_RESULT,
	STMT_GET,
	STMT_COUNTS,
	STMT_LIST_ALL,
	STMT_LIST_STATE,
	STMT_PRUNE,
	STMT_RESUME,
	STMT_COUNT,
};

#define ENTRY_COLUMNS                                                                              \
	"id, idempotency_key, receiver, integration, state, attempts, created_ms, "                \
	"next_attempt_ms, last_attempt_ms, delivered_ms, condition_ms, last_reason, "              \
	"last_detail, payload"
#define DUE_FILTER                                                                                 \
	"state IN ('queued', 'retrying') AND (?2 IS NULL OR receiver = ?2) AND "                   \
	"(?3 < 0 OR integration = ?3)"

static const struct {
	const char *name; /* for log lines: what failed */
	const char *sql;
} statements[STMT_COUNT] = {
    [STMT_ENQUEUE] = {"outbox write",
		      "INSERT INTO outbox (idempotency_key, receiver, integration, state, "
		      "attempts, created_ms, next_attempt_ms, last_attempt_ms, delivered_ms, "
		      "last_reason, last_detail, payload, condition_ms) VALUES "
		      "(?1, ?2, ?3, 'queued', 0, ?4, ?4, 0, 0, '', '', ?5, ?6) "
		      "ON CONFLICT (receiver, integration, idempotency_key) DO NOTHING"},
    [STMT_FIND_KEY] = {"outbox read", "SELECT id FROM outbox WHERE receiver = ?2 AND "
				      "integration = ?3 AND idempotency_key = ?1"},
    [STMT_DUE] = {"outbox read", "SELECT " ENTRY_COLUMNS " FROM outbox WHERE " DUE_FILTER
				 " AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id "
				 "LIMIT ?4"},
    [STMT_NEXT_ATTEMPT] = {"outbox read",
			   "SELECT MIN(next_attempt_ms) FROM outbox WHERE " DUE_FILTER},
    [STMT_MARK_SENDING] =
	{"outbox write", "UPDATE outbox SET state = 'sending', attempts = attempts + 1, "
			 "last_attempt_ms = ?2 WHERE id = ?1 AND state IN ('queued', 'retrying')"},
    [STMT_MARK_RESULT] = {"outbox write",
			  "UPDATE outbox SET state = ?2, next_attempt_ms = ?3, delivered_ms = ?4, "
			  "last_reason = ?5, last_detail = ?6 WHERE id = ?1 AND state = 'sending'"},
    [STMT_GET] = {"outbox read", "SELECT " ENTRY_COLUMNS " FROM outbox WHERE id = ?1"},
    [STMT_COUNTS] = {"outbox count", "SELECT state, COUNT(*) FROM outbox "
				     "WHERE ?1 IS NULL OR receiver = ?1 GROUP BY state"},
    [STMT_LIST_ALL] = {"outbox read", "SELECT " ENTRY_COLUMNS " FROM outbox "
				      "ORDER BY id DESC LIMIT ?1 OFFSET ?2"},
    [STMT_LIST_STATE] = {"outbox read", "SELECT " ENTRY_COLUMNS " FROM outbox WHERE state = ?3 "
					"ORDER BY id DESC LIMIT ?1 OFFSET ?2"},
    [STMT_PRUNE] = {"outbox prune",
		    "DELETE FROM outbox WHERE state = 'delivered' AND delivered_ms < ?1"},
    /* An attempt in flight when tocsind stopped may or may not have arrived: send again. */
    [STMT_RESUME] = {"outbox resume",
		     "UPDATE outbox SET state = 'retrying', next_attempt_ms = last_attempt_ms, "
		     "last_reason = 'interrupted', last_detail = 'tocsind stopped during the "
		     "attempt' WHERE state = 'sending'"},
};

static const char *const state_names[OUTBOX_STATE_COUNT] = {
    [OUTBOX_QUEUED] = "queued",     [OUTBOX_SENDING] = "sending", [OUTBOX_DELIVERED] = "delivered",
    [OUTBOX_RETRYING] = "retrying", [OUTBOX_DEAD] = "dead",
};

struct outbox {
	struct statedb *db;
	sqlite3 *sqlite;
	sqlite3_stmt *stmt[STMT_COUNT];
	struct throttle log[STMT_COUNT]; /* one per statement: one per kind of failure */
	struct throttle misuse_log;      /* transitions from the wrong state */
	struct throttle corrupt_log;     /* rows that do not parse */
	backoff_random_fn *random;
	void *random_arg;
	struct backoff_random default_random;
	uint64_t dead_total;
};

const char *outbox_state_name(enum outbox_state state)
{
	if ((unsigned)state >= OUTBOX_STATE_COUNT)
		return "unknown";
	return state_names[state];
}

int outbox_state_parse(const char *name, enum outbox_state *out)
{
	for (int i = 0; i < OUTBOX_STATE_COUNT; i++) {
		if (strcmp(state_names[i], name) == 0) {
			*out = (enum outbox_state)i;
			return 0;
		}
	}
	return -1;
}

/* Resets a statement after use so that it holds no read lock and no bound text. */
static void statement_done(sqlite3_stmt *stmt)
{
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
}

/* Logs a failed statement (throttled per statement), resets it and returns -1. */
static int statement_failed(struct outbox *ob, enum outbox_stmt s)
{
	uint64_t suppressed = 0;
	char ids[PATH_MAX + 16];

	if (throttle_fail(&ob->log[s], clock_monotonic_ms(), &suppressed)) {
		log_error("outbox", log_ids(ids, sizeof ids, "file", statedb_path(ob->db), NULL),
			  "%s failed (%" PRIu64 " more such failures since the last report): %s; "
			  "check the state directory's file system",
			  statements[s].name, suppressed, sqlite3_errmsg(ob->sqlite));
	}
	statement_done(ob->stmt[s]);
	return -1;
}

static void statement_succeeded(struct outbox *ob, enum outbox_stmt s)
{
	uint64_t failures = 0;
	char ids[PATH_MAX + 16];

	statement_done(ob->stmt[s]);
	if (throttle_ok(&ob->log[s], &failures)) {
		log_notice("outbox", log_ids(ids, sizeof ids, "file", statedb_path(ob->db), NULL),
			   "%s succeeded again after %" PRIu64 " failures", statements[s].name,
			   failures);
	}
}

/* Runs a statement that returns no rows; returns the rows changed, or -1 (logged). */
static int run_statement(struct outbox *ob, enum outbox_stmt s)
{
	int rc = sqlite3_step(ob->stmt[s]);

	if (rc != SQLITE_DONE)
		return statement_failed(ob, s);
	statement_succeeded(ob, s);
	return sqlite3_changes(ob->sqlite);
}

/* Logs (throttled) a call for an entry in the wrong state: a bug in the caller. */
static void log_misuse(struct outbox *ob, int64_t id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_misuse(struct outbox *ob, int64_t id, const char *fmt, ...)
{
	uint64_t suppressed = 0;
	char ids[64];
	char idtext[24];
	char problem[256];
	va_list ap;

	if (!throttle_fail(&ob->misuse_log, clock_monotonic_ms(), &suppressed))
		return;
	va_start(ap, fmt);
	vsnprintf(problem, sizeof problem, fmt, ap);
	va_end(ap);
	snprintf(idtext, sizeof idtext, "%" PRId64, id);
	log_error("outbox", log_ids(ids, sizeof ids, "entry", idtext, NULL),
		  "%s (%" PRIu64 " more such errors since the last report); the entry is left "
		  "as it is",
		  problem, suppressed);
}

static const char *column_text(sqlite3_stmt *stmt, int index)
{
	const unsigned char *text = sqlite3_column_text(stmt, index);

	return text != NULL ? (const char *)text : "";
}

/* Fills *e with copies of the current row of an ENTRY_COLUMNS select; -1 if it is corrupt. */
static int entry_read(struct outbox *ob, sqlite3_stmt *stmt, struct outbox_entry *e)
{
	uint64_t suppressed = 0;

	memset(e, 0, sizeof(*e));
	e->id = sqlite3_column_int64(stmt, 0);
	if (outbox_state_parse(column_text(stmt, 4), &e->state) < 0) {
		if (throttle_fail(&ob->corrupt_log, clock_monotonic_ms(), &suppressed)) {
			log_warn("outbox", NULL,
				 "skipped entry %" PRId64 " of %s: unknown state \"%s\" (%" PRIu64
				 " more skipped since the last report); delete the row",
				 e->id, statedb_path(ob->db), column_text(stmt, 4), suppressed);
		}
		return -1;
	}
	e->idempotency_key = xstrdup(column_text(stmt, 1));
	e->receiver = xstrdup(column_text(stmt, 2));
	e->integration = sqlite3_column_int(stmt, 3);
	e->attempts = sqlite3_column_int(stmt, 5);
	e->created_ms = sqlite3_column_int64(stmt, 6);
	e->next_attempt_ms = sqlite3_column_int64(stmt, 7);
	e->last_attempt_ms = sqlite3_column_int64(stmt, 8);
	e->delivered_ms = sqlite3_column_int64(stmt, 9);
	e->condition_ms = sqlite3_column_int64(stmt, 10);
	e->last_reason = xstrdup(column_text(stmt, 11));
	e->last_detail = xstrdup(column_text(stmt, 12));
	e->payload = xstrdup(column_text(stmt, 13));
	return 0;
}

/* Frees the strings of an entry filled by entry_read(). */
static void entry_clear(struct outbox_entry *e)
{
	free((char *)e->idempotency_key);
	free((char *)e->receiver);
	free((char *)e->last_reason);
	free((char *)e->last_detail);
	free((char *)e->payload);
}

void outbox_entry_free(struct outbox_entry *e)
{
	if (e == NULL)
		return;
	entry_clear(e);
	free(e);
}

/*
 * Steps statement s (its parameters bound) and copies every row that parses, then
 * resets it and calls fn on the copies: fn may then run other outbox statements.
 * Returns the number passed to fn, or -1.
 */
static int collect_entries(struct outbox *ob, enum outbox_stmt s, outbox_entry_fn *fn, void *arg)
{
	sqlite3_stmt *stmt = ob->stmt[s];
	struct outbox_entry *v = NULL;
	size_t count = 0;
	size_t capacity = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		v = xreallocarray_grow(v, &capacity, count + 1, sizeof(*v));
		if (entry_read(ob, stmt, &v[count]) == 0)
			count++;
	}
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < count; i++)
			entry_clear(&v[i]);
		free(v);
		return statement_failed(ob, s);
	}
	statement_succeeded(ob, s);
	for (size_t i = 0; i < count; i++) {
		fn(arg, &v[i]);
		entry_clear(&v[i]);
	}
	free(v);
	return (int)count;
}

/* Clamps a row count to what SQLite's LIMIT and our int returns hold. */
static int64_t clamp_limit(size_t n)
{
	return n > INT_MAX ? INT_MAX : (int64_t)n;
}

/* Brings the outbox schema to OUTBOX_SCHEMA_VERSION in one write transaction. */
static int outbox_migrate(struct outbox *ob, char **error)
{
	char *stored = NULL;
	char *end = NULL;
	long version = 0;
	int rc = sqlite3_exec(ob->sqlite, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		goto bad;
	stored = statedb_kv_get(ob->db, OUTBOX_VERSION_KEY);
	if (stored != NULL)
		version = strtol(stored, &end, 10);
	if (stored != NULL && (*end != '\0' || version < 0 || version > OUTBOX_SCHEMA_VERSION)) {
		*error = xasprintf("state database %s has outbox schema version \"%s\", and this "
				   "tocsind supports versions up to %d; run a newer tocsind or "
				   "move the file away",
				   statedb_path(ob->db), stored, OUTBOX_SCHEMA_VERSION);
		goto rollback;
	}
	for (long v = version; v < OUTBOX_SCHEMA_VERSION; v++) {
		char text[24];

		rc = sqlite3_exec(ob->sqlite, migrations[v], NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto bad;
		snprintf(text, sizeof text, "%ld", v + 1);
		if (statedb_kv_put(ob->db, OUTBOX_VERSION_KEY, text) < 0)
			goto bad;
	}
	rc = sqlite3_exec(ob->sqlite, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto bad;
	free(stored);
	return 0;

bad:
	*error = xasprintf("state database %s: creating the outbox table failed: %s; check the "
			   "state directory's file system or move the file away",
			   statedb_path(ob->db), sqlite3_errmsg(ob->sqlite));
rollback:
	if (!sqlite3_get_autocommit(ob->sqlite))
		sqlite3_exec(ob->sqlite, "ROLLBACK", NULL, NULL, NULL);
	free(stored);
	return -1;
}

/* Puts every entry left in `sending` back to `retrying`, due at once. */
static int outbox_resume(struct outbox *ob, char **error)
{
	int resumed = run_statement(ob, STMT_RESUME);

	if (resumed < 0) {
		*error = xasprintf("state database %s: resuming interrupted notifications failed: "
				   "%s; check the state directory's file system",
				   statedb_path(ob->db), sqlite3_errmsg(ob->sqlite));
		return -1;
	}
	if (resumed > 0) {
		log_notice("outbox", NULL,
			   "%d notifications were being sent when tocsind stopped; they will be "
			   "sent again, so receivers may get them twice",
			   resumed);
	}
	return 0;
}

struct outbox *outbox_open(struct statedb *db, char **error)
{
	struct outbox *ob = xcalloc(1, sizeof(*ob));

	*error = NULL;
	ob->db = db;
	ob->sqlite = statedb_sqlite(db);
	for (size_t i = 0; i < STMT_COUNT; i++)
		throttle_init(&ob->log[i], THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	throttle_init(&ob->misuse_log, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	throttle_init(&ob->corrupt_log, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	if (backoff_random_seed_system(&ob->default_random) < 0) {
		log_warn("outbox", NULL,
			 "getrandom() has no entropy yet; the retry jitter is seeded from the "
			 "clock instead");
	}
	ob->random = backoff_random_next;
	ob->random_arg = &ob->default_random;

	if (outbox_migrate(ob, error) < 0)
		goto bad;
	for (size_t i = 0; i < STMT_COUNT; i++) {
		int rc = sqlite3_prepare_v3(ob->sqlite, statements[i].sql, -1,
					    SQLITE_PREPARE_PERSISTENT, &ob->stmt[i], NULL);

		if (rc != SQLITE_OK) {
			*error = xasprintf("state database %s: preparing the %s statement failed: "
					   "%s; move the file away to start with an empty outbox",
					   statedb_path(db), statements[i].name,
					   sqlite3_errmsg(ob->sqlite));
			goto bad;
		}
	}
	if (outbox_resume(ob, error) < 0)
		goto bad;
	return ob;

bad:
	outbox_close(ob);
	return NULL;
}

void outbox_close(struct outbox *ob)
{
	if (ob == NULL)
		return;
	for (size_t i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(ob->stmt[i]);
	free(ob);
}

void outbox_set_random(struct outbox *ob, backoff_random_fn *random, void *random_arg)
{
	ob->random = random;
	ob->random_arg = random_arg;
}

int64_t outbox_enqueue(struct outbox *ob, const char *receiver, int integration,
		       const char *idempotency_key, const char *payload_json, int64_t condition_ms,
		       int64_t now_ms)
{
	sqlite3_stmt *stmt = ob->stmt[STMT_ENQUEUE];
	sqlite3_stmt *find = ob->stmt[STMT_FIND_KEY];
	int64_t id = -1;
	int rc;

	sqlite3_bind_text(stmt, 1, idempotency_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, receiver, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 3, integration);
	sqlite3_bind_int64(stmt, 4, now_ms);
	sqlite3_bind_text(stmt, 5, payload_json, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, condition_ms);
	rc = run_statement(ob, STMT_ENQUEUE);
	if (rc < 0)
		return -1;
	if (rc > 0)
		return sqlite3_last_insert_rowid(ob->sqlite);

	/* The key is stored already: return that row. */
	sqlite3_bind_text(find, 1, idempotency_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(find, 2, receiver, -1, SQLITE_STATIC);
	sqlite3_bind_int(find, 3, integration);
	rc = sqlite3_step(find);
	if (rc != SQLITE_ROW)
		return statement_failed(ob, STMT_FIND_KEY);
	id = sqlite3_column_int64(find, 0);
	statement_succeeded(ob, STMT_FIND_KEY);
	return id;
}

/* Binds the receiver and integration filters shared by the due queries. */
static void bind_due_filter(sqlite3_stmt *stmt, const char *receiver, int integration)
{
	if (receiver != NULL)
		sqlite3_bind_text(stmt, 2, receiver, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 2);
	sqlite3_bind_int(stmt, 3, integration);
}

int outbox_next_due(struct outbox *ob, int64_t now_ms, const char *receiver, int integration,
		    size_t limit, outbox_entry_fn *fn, void *arg)
{
	sqlite3_stmt *stmt = ob->stmt[STMT_DUE];

	sqlite3_bind_int64(stmt, 1, now_ms);
	bind_due_filter(stmt, receiver, integration);
	sqlite3_bind_int64(stmt, 4, clamp_limit(limit));
	return collect_entries(ob, STMT_DUE, fn, arg);
}

int outbox_next_attempt(struct outbox *ob, const char *receiver, int integration, int64_t *next_ms)
{
	sqlite3_stmt *stmt = ob->stmt[STMT_NEXT_ATTEMPT];
	int found;

	bind_due_filter(stmt, receiver, integration);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return statement_failed(ob, STMT_NEXT_ATTEMPT);
	found = sqlite3_column_type(stmt, 0) != SQLITE_NULL;
	if (found)
		*next_ms = sqlite3_column_int64(stmt, 0);
	statement_succeeded(ob, STMT_NEXT_ATTEMPT);
	return found;
}

int outbox_mark_sending(struct outbox *ob, int64_t id, int64_t now_ms)
{
	sqlite3_stmt *stmt = ob->stmt[STMT_MARK_SENDING];
	int changed;

	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, now_ms);
	changed = run_statement(ob, STMT_MARK_SENDING);
	if (changed < 0)
		return -1;
	if (changed == 0) {
		log_misuse(ob, id,
			   "an attempt was to start for an entry that is missing or is "
			   "not queued or retrying");
		return -1;
	}
	return 0;
}

/* Reads entry id into *e (free with entry_clear()); returns 1, 0 when missing, or -1. */
static int entry_get(struct outbox *ob, int64_t id, struct outbox_entry *e)
{
	sqlite3_stmt *stmt = ob->stmt[STMT_GET];
	int found = 0;
	int rc;

	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		found = entry_read(ob, stmt, e) == 0;
	} else if (rc != SQLITE_DONE) {
		return statement_failed(ob, STMT_GET);
	}
	statement_succeeded(ob, STMT_GET);
	return found;
}

/* Logs an entry that turned dead, with the receiver, integration and key that name it. */
static void log_dead_letter(const struct outbox_entry *e, const struct delivery_outcome *outcome,
			    const struct backoff_policy *policy, int64_t now_ms)
{
	char ids[1024];
	char integration[16];

	snprintf(integration, sizeof integration, "%d", e->integration);
	log_ids(ids, sizeof ids, "receiver", e->receiver, "integration", integration, "key",
		e->idempotency_key, NULL);
	if (outcome->result == DELIVERY_PERMANENT) {
		log_error("outbox", ids,
			  "notification not delivered, permanent error %.*s (attempts: %d): %.*s; "
			  "it will not be retried and stays in the outbox as a dead letter",
			  (int)sizeof outcome->reason, outcome->reason, e->attempts,
			  (int)sizeof outcome->detail, outcome->detail);
	} else {
		log_error("outbox", ids,
			  "notification not delivered, retries given up after %" PRId64 " s "
			  "(max_age %" PRId64 " s, attempts: %d); last error %.*s: %.*s; it "
			  "stays in the outbox as a dead letter",
			  (now_ms - e->created_ms) / 1000, policy->max_age_ms / 1000, e->attempts,
			  (int)sizeof outcome->reason, outcome->reason, (int)sizeof outcome->detail,
			  outcome->detail);
	}
}

/* Chooses the state after an outcome and, when retrying, the time of the next attempt. */
static enum outbox_state next_state(struct outbox *ob, const struct outbox_entry *e,
				    const struct delivery_outcome *outcome, int64_t now_ms,
				    const struct backoff_policy *policy, int64_t *next_ms)
{
	int64_t delay;

	*next_ms = e->next_attempt_ms;
	if (outcome->result == DELIVERY_OK)
		return OUTBOX_DELIVERED;
	if (outcome->result == DELIVERY_PERMANENT || backoff_expired(policy, e->created_ms, now_ms))
		return OUTBOX_DEAD;
	if (outcome->retry_after_ms > 0) {
		delay = backoff_retry_after(policy, outcome->retry_after_ms);
	} else {
		unsigned retry = e->attempts > 0 ? (unsigned)e->attempts - 1 : 0;

		delay = backoff_delay(policy, retry, ob->random, ob->random_arg);
	}
	*next_ms = backoff_next_attempt(policy, e->created_ms, now_ms, delay);
	return OUTBOX_RETRYING;
}

int outbox_mark_result(struct outbox *ob, int64_t id, const struct delivery_outcome *outcome,
		       int64_t now_ms, const struct backoff_policy *policy)
{
	sqlite3_stmt *stmt = ob->stmt[STMT_MARK_RESULT];
	struct outbox_entry e;
	enum outbox_state state;
	int64_t next_ms;
	int changed;
	int found;

	if (outcome->result != DELIVERY_OK && outcome->result != DELIVERY_RETRY &&
	    outcome->result != DELIVERY_PERMANENT) {
		log_misuse(ob, id, "unknown delivery result %d", (int)outcome->result);
		return -1;
	}
	found = entry_get(ob, id, &e);
	if (found < 0)
		return -1;
	if (found == 0) {
		log_misuse(ob, id, "an outcome was recorded for a missing entry");
		return -1;
	}
	if (e.state != OUTBOX_SENDING) {
		log_misuse(ob, id, "an outcome was recorded for an entry in state %s, not sending",
			   outbox_state_name(e.state));
		entry_clear(&e);
		return -1;
	}

	state = next_state(ob, &e, outcome, now_ms, policy, &next_ms);
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, state_names[state], -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, next_ms);
	sqlite3_bind_int64(stmt, 4, state == OUTBOX_DELIVERED ? now_ms : 0);
	sqlite3_bind_text(stmt, 5, outcome->reason,
			  (int)strnlen(outcome->reason, sizeof outcome->reason), SQLITE_STATIC);
	sqlite3_bind_text(stmt, 6, outcome->detail,
			  (int)strnlen(outcome->detail, sizeof outcome->detail), SQLITE_STATIC);
	changed = run_statement(ob, STMT_MARK_RESULT);
	if (changed > 0 && state == OUTBOX_DEAD) {
		ob->dead_total++;
		log_dead_letter(&e, outcome, policy, now_ms);
	}
	entry_clear(&e);
	if (changed <= 0)
		return -1;
	return (int)state;
}

int outbox_counts(struct outbox *ob, const char *receiver, struct outbox_counts *out)
{
	sqlite3_stmt *stmt = ob->stmt[STMT_COUNTS];
	int rc;

	memset(out, 0, sizeof(*out));
	if (receiver != NULL)
		sqlite3_bind_text(stmt, 1, receiver, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 1);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		enum outbox_state state;

		if (outbox_state_parse(column_text(stmt, 0), &state) == 0)
			out->state[state] = (uint64_t)sqlite3_column_int64(stmt, 1);
	}
	if (rc != SQLITE_DONE)
		return statement_failed(ob, STMT_COUNTS);
	statement_succeeded(ob, STMT_COUNTS);
	return 0;
}

uint64_t outbox_dead_total(const struct outbox *ob)
{
	return ob->dead_total;
}

struct outbox_entry *outbox_get(struct outbox *ob, int64_t id)
{
	struct outbox_entry *e = xmalloc(sizeof(*e));

	if (entry_get(ob, id, e) <= 0) {
		free(e);
		return NULL;
	}
	return e;
}

int outbox_list(struct outbox *ob, int state, size_t limit, size_t offset, outbox_entry_fn *fn,
		void *arg)
{
	enum outbox_stmt s = state == OUTBOX_STATE_ANY ? STMT_LIST_ALL : STMT_LIST_STATE;
	sqlite3_stmt *stmt = ob->stmt[s];

	if (state != OUTBOX_STATE_ANY && (state < 0 || state >= OUTBOX_STATE_COUNT)) {
		log_error("outbox", NULL,
			  "listing entries in unknown state %d; pass an enum "
			  "outbox_state or OUTBOX_STATE_ANY",
			  state);
		return -1;
	}
	sqlite3_bind_int64(stmt, 1, clamp_limit(limit));
	sqlite3_bind_int64(stmt, 2, offset > INT64_MAX ? INT64_MAX : (int64_t)offset);
	if (state != OUTBOX_STATE_ANY)
		sqlite3_bind_text(stmt, 3, state_names[state], -1, SQLITE_STATIC);
	return collect_entries(ob, s, fn, arg);
}

int outbox_prune(struct outbox *ob, int64_t before_ms)
{
	sqlite3_bind_int64(ob->stmt[STMT_PRUNE], 1, before_ms);
	return run_statement(ob, STMT_PRUNE);
}
