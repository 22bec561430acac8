/*
 * The audit trail's table, hash chain and redaction (see audit.h). Records are rare (a
 * reload, a silence, an API call), so statements are prepared per call and no cache has
 * to be finalized before the state database closes.
 */
#include "collector/audit.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "collector/clock.h"
#include "collector/log.h"
#include "collector/statedb.h"
#include "collector/throttle.h"
#include "collector/utf8.h"
#include "collector/xalloc.h"

#define AUDIT_SCHEMA_KEY     "schema_version.audit"
#define AUDIT_SCHEMA_VERSION "1"
#define AUDIT_HEAD_KEY       "audit.head"
#define AUDIT_HASH_TAG       "tocsin-audit-1"

static const char audit_schema[] = "CREATE TABLE IF NOT EXISTS audit ("
				   " id INTEGER PRIMARY KEY,"
				   " time_ms INTEGER NOT NULL,"
				   " actor TEXT NOT NULL,"
				   " remote TEXT NOT NULL,"
				   " action TEXT NOT NULL,"
				   " detail TEXT NOT NULL,"
				   " prev_hash TEXT NOT NULL,"
				   " hash TEXT NOT NULL)";

#define AUDIT_COLUMNS "id, time_ms, actor, remote, action, detail, prev_hash, hash"

static const char genesis_hash[AUDIT_HASH_SIZE] =
    "0000000000000000000000000000000000000000000000000000000000000000";

struct audit {
	struct statedb *db;
	struct throttle log; /* failed writes */
};

/* The newest record as the chain continues from it. */
struct audit_head {
	int64_t id;
	char hash[AUDIT_HASH_SIZE];
};

static void to_hex(const unsigned char *bytes, size_t size, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < size; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0x0f];
	}
	out[2 * size] = '\0';
}

void audit_sha256_hex(const void *data, size_t size, char out[AUDIT_HASH_SIZE])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_size = 0;

	/* A failed SHA-256 leaves nothing to record or verify, so it ends the process as a
	 * failed xmalloc() does. */
	if (EVP_Digest(data, size, digest, &digest_size, EVP_sha256(), NULL) != 1 ||
	    digest_size != 32)
		log_fatal("audit", "SHA-256 failed in OpenSSL");
	to_hex(digest, 32, out);
}

static void digest_u64(EVP_MD_CTX *ctx, uint64_t value)
{
	unsigned char bytes[8];

	for (int i = 7; i >= 0; i--) {
		bytes[i] = (unsigned char)(value & 0xff);
		value >>= 8;
	}
	EVP_DigestUpdate(ctx, bytes, sizeof bytes);
}

static void digest_text(EVP_MD_CTX *ctx, const char *text)
{
	size_t length = strlen(text);
	unsigned char bytes[4] = {
	    (unsigned char)(length >> 24),
	    (unsigned char)(length >> 16),
	    (unsigned char)(length >> 8),
	    (unsigned char)length,
	};

	EVP_DigestUpdate(ctx, bytes, sizeof bytes);
	EVP_DigestUpdate(ctx, text, length);
}

/* The record's hash over the encoding that audit.h documents. */
static void entry_hash(const struct audit_entry *e, char out[AUDIT_HASH_SIZE])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_size = 0;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		log_fatal("audit", "SHA-256 is not available in OpenSSL");
	EVP_DigestUpdate(ctx, AUDIT_HASH_TAG, sizeof AUDIT_HASH_TAG);
	digest_u64(ctx, (uint64_t)e->id);
	digest_u64(ctx, (uint64_t)e->time_ms);
	digest_text(ctx, e->actor);
	digest_text(ctx, e->remote);
	digest_text(ctx, e->action);
	digest_text(ctx, e->detail);
	digest_text(ctx, e->prev_hash);
	if (EVP_DigestFinal_ex(ctx, digest, &digest_size) != 1 || digest_size != 32)
		log_fatal("audit", "SHA-256 failed in OpenSSL");
	EVP_MD_CTX_free(ctx);
	to_hex(digest, 32, out);
}

/* ---- redaction ---- */

static bool secret_name(const char *name)
{
	static const char *const words[] = {
	    "password", "passwd", "token",      "secret", "authorization",
	    "api_key",  "apikey", "credential", "cookie", "private_key",
	};

	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
		if (strcasestr(name, words[i]) != NULL)
			return true;
	}
	return false;
}

size_t audit_redact_json(json_t *value)
{
	size_t count = 0;

	if (json_is_object(value)) {
		/* The iterator API is the one that allows replacing values while iterating. */
		for (void *it = json_object_iter(value); it != NULL;
		     it = json_object_iter_next(value, it)) {
			if (secret_name(json_object_iter_key(it))) {
				json_object_iter_set_new(value, it, json_string(AUDIT_REDACTED));
				count++;
			} else {
				count += audit_redact_json(json_object_iter_value(it));
			}
		}
	} else if (json_is_array(value)) {
		for (size_t i = 0; i < json_array_size(value); i++)
			count += audit_redact_json(json_array_get(value, i));
	}
	return count;
}

/* ---- opening ---- */

struct audit *audit_open(struct statedb *db, char **error)
{
	sqlite3 *sqlite = statedb_sqlite(db);
	char *version;
	struct audit *audit;

	if (sqlite3_exec(sqlite, audit_schema, NULL, NULL, NULL) != SQLITE_OK) {
		*error = xasprintf("cannot create the audit table in state database %s: %s; check "
				   "that the file and its directory are writable",
				   statedb_path(db), sqlite3_errmsg(sqlite));
		return NULL;
	}
	version = statedb_kv_get(db, AUDIT_SCHEMA_KEY);
	if (version != NULL && strcmp(version, AUDIT_SCHEMA_VERSION) != 0) {
		*error =
		    xasprintf("state database %s has audit schema version \"%s\", which this "
			      "tocsind (version " AUDIT_SCHEMA_VERSION ") cannot read; run the "
			      "newer tocsind or move the file away",
			      statedb_path(db), version);
		free(version);
		return NULL;
	}
	if (version == NULL && statedb_kv_put(db, AUDIT_SCHEMA_KEY, AUDIT_SCHEMA_VERSION) < 0) {
		*error = xasprintf("cannot write the audit schema version to state database %s; "
				   "check that the file is writable",
				   statedb_path(db));
		return NULL;
	}
	free(version);
	audit = xcalloc(1, sizeof(*audit));
	audit->db = db;
	throttle_init(&audit->log, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	return audit;
}

void audit_close(struct audit *audit)
{
	free(audit);
}

struct statedb *audit_statedb(struct audit *audit)
{
	return audit->db;
}

/* ---- writing ---- */

/* Parses "ID HASH" from the kv table. Returns 1 when found, 0 when absent or malformed. */
static int read_head_key(struct statedb *db, struct audit_head *head)
{
	char *text = statedb_kv_get(db, AUDIT_HEAD_KEY);
	char *end = NULL;
	int found = 0;

	if (text == NULL)
		return 0;
	head->id = strtoll(text, &end, 10);
	if (end != text && *end == ' ' && strlen(end + 1) == AUDIT_HASH_SIZE - 1 && head->id > 0) {
		memcpy(head->hash, end + 1, AUDIT_HASH_SIZE);
		found = 1;
	}
	free(text);
	return found;
}

/* The largest id in the table, 0 when empty, -1 on error. */
static int64_t max_id(sqlite3 *sqlite)
{
	sqlite3_stmt *stmt = NULL;
	int64_t id = -1;

	if (sqlite3_prepare_v2(sqlite, "SELECT coalesce(max(id), 0) FROM audit", -1, &stmt, NULL) ==
		SQLITE_OK &&
	    sqlite3_step(stmt) == SQLITE_ROW)
		id = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return id;
}

/* The hash of record id, copied to out. Returns 0, or -1 when absent or unreadable. */
static int hash_of(sqlite3 *sqlite, int64_t id, char out[AUDIT_HASH_SIZE])
{
	sqlite3_stmt *stmt = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(sqlite, "SELECT hash FROM audit WHERE id = ?1", -1, &stmt, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(stmt, 1, id);
		if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_bytes(stmt, 0) == 64) {
			memcpy(out, sqlite3_column_text(stmt, 0), 64);
			out[64] = '\0';
			rc = 0;
		}
	}
	sqlite3_finalize(stmt);
	return rc;
}

/*
 * Finds the id and prev_hash of the next record. It follows audit.head when present, so a
 * record appended after a removed tail still shows the gap, and never reuses an id.
 */
static int next_position(struct audit *audit, int64_t *id, char prev_hash[AUDIT_HASH_SIZE])
{
	sqlite3 *sqlite = statedb_sqlite(audit->db);
	struct audit_head head;
	int64_t last = max_id(sqlite);

	if (last < 0)
		return -1;
	if (read_head_key(audit->db, &head)) {
		*id = (head.id > last ? head.id : last) + 1;
		memcpy(prev_hash, head.hash, AUDIT_HASH_SIZE);
		return 0;
	}
	*id = last + 1;
	if (last == 0) {
		memcpy(prev_hash, genesis_hash, AUDIT_HASH_SIZE);
		return 0;
	}
	return hash_of(sqlite, last, prev_hash);
}

static int insert_entry(struct audit *audit, const struct audit_entry *e)
{
	sqlite3 *sqlite = statedb_sqlite(audit->db);
	sqlite3_stmt *stmt = NULL;
	char head[32 + AUDIT_HASH_SIZE];
	int rc;

	rc = sqlite3_prepare_v2(sqlite,
				"INSERT INTO audit (" AUDIT_COLUMNS ") VALUES "
				"(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
				-1, &stmt, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(stmt, 1, e->id);
		sqlite3_bind_int64(stmt, 2, e->time_ms);
		sqlite3_bind_text(stmt, 3, e->actor, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 4, e->remote, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 5, e->action, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 6, e->detail, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 7, e->prev_hash, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 8, e->hash, -1, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return -1;
	snprintf(head, sizeof head, "%" PRId64 " %s", e->id, e->hash);
	return statedb_kv_put(audit->db, AUDIT_HEAD_KEY, head);
}

/* The detail to store: the caller's object with secrets redacted, compact, keys sorted. */
static char *canonical_detail(const char *detail_json, const char *action)
{
	json_error_t json_error;
	json_t *detail;
	char *text;

	if (detail_json == NULL)
		return xstrdup("{}");
	detail = json_loads(detail_json, JSON_REJECT_DUPLICATES, &json_error);
	if (!json_is_object(detail)) {
		log_error("audit", NULL,
			  "record of %s not written: its detail is not a JSON object (%s); this is "
			  "a bug in the caller",
			  action, detail == NULL ? json_error.text : "another JSON type");
		json_decref(detail);
		return NULL;
	}
	audit_redact_json(detail);
	text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(detail);
	if (text == NULL)
		log_fatal("audit", "out of memory while writing JSON");
	return text;
}

static bool valid_name(const char *text)
{
	return text != NULL && text[0] != '\0' && utf8_valid(text);
}

/* Begins a transaction unless the caller has one open. Returns 1 when it began one. */
static int begin_unless_open(struct statedb *db)
{
	if (!sqlite3_get_autocommit(statedb_sqlite(db)))
		return 0;
	return statedb_begin(db) < 0 ? -1 : 1;
}

int audit_record(struct audit *audit, const char *actor, const char *remote, const char *action,
		 const char *detail_json)
{
	struct audit_entry e = {.time_ms = clock_wall_ms(), .remote = remote ? remote : ""};
	char prev_hash[AUDIT_HASH_SIZE];
	char hash[AUDIT_HASH_SIZE];
	char *detail;
	uint64_t suppressed = 0;
	int own;
	int rc = -1;

	if (!valid_name(actor) || !valid_name(action) || !utf8_valid(e.remote)) {
		log_error("audit", NULL,
			  "record not written: actor, action and remote must be UTF-8 and actor "
			  "and action non-empty (action \"%s\"); this is a bug in the caller",
			  action != NULL ? action : "(null)");
		return -1;
	}
	detail = canonical_detail(detail_json, action);
	if (detail == NULL)
		return -1;
	e.actor = actor;
	e.action = action;
	e.detail = detail;
	own = begin_unless_open(audit->db);
	if (own >= 0 && next_position(audit, &e.id, prev_hash) == 0) {
		e.prev_hash = prev_hash;
		entry_hash(&e, hash);
		e.hash = hash;
		rc = insert_entry(audit, &e);
	}
	if (own == 1) {
		if (rc == 0)
			rc = statedb_commit(audit->db);
		else
			statedb_rollback(audit->db);
	}
	if (rc < 0 && throttle_fail(&audit->log, clock_monotonic_ms(), &suppressed)) {
		log_error("audit", NULL,
			  "record of %s by %s not written to state database %s (%" PRIu64
			  " more failures since the last report): %s",
			  action, actor, statedb_path(audit->db), suppressed,
			  sqlite3_errmsg(statedb_sqlite(audit->db)));
	} else if (rc == 0) {
		uint64_t failures = 0;

		if (throttle_ok(&audit->log, &failures))
			log_notice("audit", NULL,
				   "records written again after %" PRIu64 " failures", failures);
		log_debug("audit", NULL, "record %" PRId64 ": %s by %s", e.id, action, actor);
	}
	free(detail);
	return rc;
}

/* ---- reading ---- */

static const char *column_text(sqlite3_stmt *stmt, int index)
{
	const unsigned char *text = sqlite3_column_text(stmt, index);

	return text != NULL ? (const char *)text : "";
}

static void read_entry(sqlite3_stmt *stmt, struct audit_entry *e)
{
	e->id = sqlite3_column_int64(stmt, 0);
	e->time_ms = sqlite3_column_int64(stmt, 1);
	e->actor = column_text(stmt, 2);
	e->remote = column_text(stmt, 3);
	e->action = column_text(stmt, 4);
	e->detail = column_text(stmt, 5);
	e->prev_hash = column_text(stmt, 6);
	e->hash = column_text(stmt, 7);
}

int audit_list(struct audit *audit, size_t limit, size_t offset, audit_list_fn *fn, void *arg)
{
	sqlite3 *sqlite = statedb_sqlite(audit->db);
	sqlite3_stmt *stmt = NULL;
	int count = 0;
	int rc;

	rc = sqlite3_prepare_v2(sqlite,
				"SELECT " AUDIT_COLUMNS " FROM audit ORDER BY id DESC "
				"LIMIT ?1 OFFSET ?2",
				-1, &stmt, NULL);
	if (rc == SQLITE_OK) {
		/* SQLite reads a negative LIMIT as no limit. */
		sqlite3_bind_int64(stmt, 1, limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit);
		sqlite3_bind_int64(stmt, 2, offset > INT64_MAX ? INT64_MAX : (int64_t)offset);
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && count < INT_MAX) {
			struct audit_entry e;

			read_entry(stmt, &e);
			fn(arg, &e);
			count++;
		}
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_error("audit", NULL, "reading the audit trail of state database %s failed: %s",
			  statedb_path(audit->db), sqlite3_errmsg(sqlite));
		count = -1;
	}
	sqlite3_finalize(stmt);
	return count;
}

/* The chain check's progress over the rows in id order. */
struct chain_check {
	int64_t count;
	int64_t content_bad_id; /* lowest id whose hash does not match, 0 if none */
	int64_t link_bad_id;    /* first id whose prev_hash breaks the chain, 0 if none */
	int64_t previous_id;    /* 0 before the first row */
	char previous_hash[AUDIT_HASH_SIZE];
	char link_problem[160];
};

/* Checks one row. A stored value whose SQLite type changed counts as changed content. */
static void check_row(struct chain_check *c, sqlite3_stmt *stmt)
{
	struct audit_entry e;
	char hash[AUDIT_HASH_SIZE];
	bool typed = sqlite3_column_type(stmt, 0) == SQLITE_INTEGER &&
		     sqlite3_column_type(stmt, 1) == SQLITE_INTEGER;

	for (int i = 2; i < 8; i++)
		typed = typed && sqlite3_column_type(stmt, i) == SQLITE_TEXT;
	read_entry(stmt, &e);
	c->count++;
	if (c->content_bad_id == 0) {
		entry_hash(&e, hash);
		if (!typed || strcmp(hash, e.hash) != 0)
			c->content_bad_id = e.id;
	}
	if (c->link_bad_id == 0 && strcmp(e.prev_hash, c->previous_hash) != 0) {
		c->link_bad_id = e.id;
		if (c->previous_id == 0)
			snprintf(c->link_problem, sizeof c->link_problem,
				 "prev_hash is not the chain's start, so earlier records were "
				 "deleted");
		else
			snprintf(c->link_problem, sizeof c->link_problem,
				 "prev_hash does not match the hash of record %" PRId64
				 " before it, so a record between them was deleted or replaced",
				 c->previous_id);
	}
	c->previous_id = e.id;
	snprintf(c->previous_hash, sizeof c->previous_hash, "%s", e.hash);
}

/* Compares the newest row with audit.head. Returns the bad id, or 0 when they agree. */
static int64_t check_head(struct audit *audit, const struct chain_check *c, char **error)
{
	struct audit_head head;

	if (!read_head_key(audit->db, &head)) {
		if (c->count == 0)
			return 0;
		*error = xasprintf("record %" PRId64 ": the kv key " AUDIT_HEAD_KEY
				   " that names the newest record is missing or malformed",
				   c->previous_id);
		return c->previous_id;
	}
	if (c->count == 0) {
		*error = xasprintf("record %" PRId64 ": missing; every record of the audit trail "
				   "was deleted",
				   head.id);
		return head.id;
	}
	if (head.id > c->previous_id) {
		*error = xasprintf("record %" PRId64 ": missing; the records after %" PRId64
				   " were deleted",
				   head.id, c->previous_id);
		return head.id;
	}
	if (head.id < c->previous_id || strcmp(head.hash, c->previous_hash) != 0) {
		*error = xasprintf("record %" PRId64 ": not the newest record that tocsin wrote "
				   "(" AUDIT_HEAD_KEY " names record %" PRId64 ")",
				   c->previous_id, head.id);
		return c->previous_id;
	}
	return 0;
}

int64_t audit_verify(struct audit *audit, int64_t *first_bad_id, char **error)
{
	sqlite3 *sqlite = statedb_sqlite(audit->db);
	sqlite3_stmt *stmt = NULL;
	struct chain_check c = {0};
	int rc;

	*first_bad_id = 0;
	*error = NULL;
	memcpy(c.previous_hash, genesis_hash, AUDIT_HASH_SIZE);
	rc = sqlite3_prepare_v2(sqlite, "SELECT " AUDIT_COLUMNS " FROM audit ORDER BY id", -1,
				&stmt, NULL);
	if (rc == SQLITE_OK) {
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
			check_row(&c, stmt);
	}
	if (rc != SQLITE_DONE) {
		*error = xasprintf("reading the audit trail of state database %s failed: %s",
				   statedb_path(audit->db), sqlite3_errmsg(sqlite));
		sqlite3_finalize(stmt);
		return -1;
	}
	sqlite3_finalize(stmt);
	if (c.content_bad_id != 0) {
		*first_bad_id = c.content_bad_id;
		*error = xasprintf("record %" PRId64 ": its hash does not match its content, so "
				   "the record was changed after it was written",
				   c.content_bad_id);
		return -1;
	}
	if (c.link_bad_id != 0) {
		*first_bad_id = c.link_bad_id;
		*error = xasprintf("record %" PRId64 ": %s", c.link_bad_id, c.link_problem);
		return -1;
	}
	*first_bad_id = check_head(audit, &c, error);
	return *first_bad_id != 0 ? -1 : c.count;
}
