/*
 * Acknowledgements (see ack.h): the in-memory set, sorted by fingerprint and rule for
 * binary search, and its table in the state database.
 */
#include "alerter/ack.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "alerter/notification.h"
#include "alerter/silence_impl.h"
#include "collector/log.h"
#include "collector/statedb.h"
#include "collector/utf8.h"
#include "collector/xalloc.h"

#define ACK_SCHEMA_KEY "schema_version.acks"

static const char ack_schema[] = "CREATE TABLE IF NOT EXISTS acks ("
				 " rule TEXT NOT NULL,"
				 " fingerprint INTEGER NOT NULL," /* the uint64's bits as int64 */
				 " created_by TEXT NOT NULL,"
				 " comment TEXT NOT NULL,"
				 " created_at_ms INTEGER NOT NULL,"
				 " expires_at_ms INTEGER NOT NULL," /* 0: until resolved */
				 " PRIMARY KEY (rule, fingerprint))";

enum ack_stmt {
	STMT_PUT,
	STMT_DELETE,
	STMT_PRUNE,
	STMT_LOAD,
	STMT_COUNT,
};

static const struct silence_table_stmt statements[STMT_COUNT] = {
    [STMT_PUT] = {"acknowledgement write",
		  "INSERT OR REPLACE INTO acks (rule, fingerprint, created_by, comment, "
		  "created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
    [STMT_DELETE] = {"acknowledgement delete",
		     "DELETE FROM acks WHERE rule = ?1 AND fingerprint = ?2"},
    [STMT_PRUNE] = {"acknowledgement prune",
		    "DELETE FROM acks WHERE expires_at_ms != 0 AND expires_at_ms <= ?1"},
    [STMT_LOAD] = {"acknowledgement read",
		   "SELECT rule, fingerprint, created_by, comment, created_at_ms, "
		   "expires_at_ms FROM acks"},
};

struct ack_set {
	struct silence_table table;
	struct ack *acks; /* sorted by fingerprint, then rule */
	size_t count;
	size_t capacity;
};

static int compare_key(uint64_t fingerprint, const char *rule, const struct ack *a)
{
	if (fingerprint != a->fingerprint)
		return fingerprint < a->fingerprint ? -1 : 1;
	return strcmp(rule, a->rule);
}

static int compare_acks(const void *x, const void *y)
{
	const struct ack *a = x;

	return compare_key(a->fingerprint, a->rule, y);
}

/* The index of the key, or where it would be inserted with *found false. */
static size_t search(const struct ack_set *set, const char *rule, uint64_t fingerprint, bool *found)
{
	size_t low = 0;
	size_t high = set->count;

	*found = false;
	while (low < high) {
		size_t mid = low + (high - low) / 2;
		int c = compare_key(fingerprint, rule, &set->acks[mid]);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			high = mid;
		else
			low = mid + 1;
	}
	return low;
}

static void ack_clear(struct ack *a)
{
	free(a->rule);
	free(a->created_by);
	free(a->comment);
}

static void free_acks(struct ack *acks, size_t count)
{
	for (size_t i = 0; i < count; i++)
		ack_clear(&acks[i]);
	free(acks);
}

/* Replaces the in-memory set with the table's rows. */
static int load(void *owner, char **error)
{
	struct ack_set *set = owner;
	sqlite3_stmt *stmt = set->table.stmt[STMT_LOAD];
	struct ack *acks = NULL;
	size_t count = 0;
	size_t capacity = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		acks = xreallocarray_grow(acks, &capacity, count + 1, sizeof(*acks));
		acks[count++] = (struct ack){
		    .rule = xstrdup(silence_table_text(stmt, 0)),
		    .fingerprint = statedb_fingerprint_from_sql(sqlite3_column_int64(stmt, 1)),
		    .created_by = xstrdup(silence_table_text(stmt, 2)),
		    .comment = xstrdup(silence_table_text(stmt, 3)),
		    .created_at_ms = sqlite3_column_int64(stmt, 4),
		    .expires_at_ms = sqlite3_column_int64(stmt, 5),
		};
	}
	if (rc != SQLITE_DONE) {
		free_acks(acks, count);
		return silence_table_failed(&set->table, STMT_LOAD, rc, error);
	}
	silence_table_succeeded(&set->table, STMT_LOAD);
	/* The primary key makes (rule, fingerprint) unique, so the order is total. */
	if (count > 1)
		qsort(acks, count, sizeof(*acks), compare_acks);
	free_acks(set->acks, set->count);
	set->acks = acks;
	set->count = count;
	set->capacity = capacity;
	return 0;
}

struct ack_set *ack_set_open(struct statedb *db, char **error)
{
	struct ack_set *set = xcalloc(1, sizeof(*set));

	if (silence_table_open(&set->table, db, "ack", ACK_SCHEMA_KEY, ack_schema, statements,
			       STMT_COUNT, load, set, error) < 0) {
		free(set);
		return NULL;
	}
	return set;
}

void ack_set_free(struct ack_set *set)
{
	if (set == NULL)
		return;
	silence_table_close(&set->table);
	free_acks(set->acks, set->count);
	free(set);
}

int ack_set_refresh(struct ack_set *set)
{
	return silence_table_refresh(&set->table);
}

int ack_set_reload(struct ack_set *set)
{
	return load(set, NULL);
}

static int check_text(const char *field, const char *text, char **error)
{
	if (text == NULL || text[strspn(text, " \t\r\n")] == '\0')
		return silence_fail(error, "%s: missing", field);
	if (!utf8_valid(text))
		return silence_fail(error, "%s: invalid UTF-8", field);
	return 0;
}

int ack_create(struct ack_set *set, const char *rule, uint64_t fingerprint, const char *created_by,
	       const char *comment, int64_t expires_at_ms, int64_t now_ms, char **error)
{
	sqlite3_stmt *stmt = set->table.stmt[STMT_PUT];
	struct ack a;
	size_t index;
	bool found;
	char expires[40];
	char hex[17];
	char ids[512];

	*error = NULL;
	if (check_text("rule", rule, error) < 0 || check_text("created_by", created_by, error) < 0)
		return -1;
	if (comment == NULL)
		comment = "";
	if (!utf8_valid(comment))
		return silence_fail(error, "comment: invalid UTF-8");
	if (expires_at_ms != 0 && expires_at_ms <= now_ms) {
		return silence_fail(error,
				    "expires_at: %s is not in the future; give a later time, or "
				    "0 to keep the acknowledgement until the alert resolves",
				    notification_time(expires_at_ms, expires, sizeof expires));
	}
	sqlite3_bind_text(stmt, 1, rule, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, statedb_fingerprint_to_sql(fingerprint));
	sqlite3_bind_text(stmt, 3, created_by, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, comment, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, now_ms);
	sqlite3_bind_int64(stmt, 6, expires_at_ms);
	if (silence_table_run(&set->table, STMT_PUT, error) < 0)
		return -1;

	a = (struct ack){
	    .rule = xstrdup(rule),
	    .fingerprint = fingerprint,
	    .created_by = xstrdup(created_by),
	    .comment = xstrdup(comment),
	    .created_at_ms = now_ms,
	    .expires_at_ms = expires_at_ms,
	};
	index = search(set, rule, fingerprint, &found);
	if (found) {
		ack_clear(&set->acks[index]);
	} else {
		set->acks = xreallocarray_grow(set->acks, &set->capacity, set->count + 1,
					       sizeof(*set->acks));
		memmove(&set->acks[index + 1], &set->acks[index],
			(set->count - index) * sizeof(*set->acks));
		set->count++;
	}
	set->acks[index] = a;
	snprintf(hex, sizeof hex, "%016" PRIx64, fingerprint);
	log_info("ack", log_ids(ids, sizeof ids, "rule", rule, "fingerprint", hex, NULL),
		 "alert acknowledged by %s until %s", created_by,
		 expires_at_ms != 0 ? notification_time(expires_at_ms, expires, sizeof expires)
				    : "it resolves");
	return 0;
}

const struct ack *ack_get(const struct ack_set *set, const char *rule, uint64_t fingerprint)
{
	bool found;
	size_t index = search(set, rule, fingerprint, &found);

	return found ? &set->acks[index] : NULL;
}

const struct ack *ack_active(const struct ack_set *set, const char *rule, uint64_t fingerprint,
			     int64_t now_ms)
{
	const struct ack *a = ack_get(set, rule, fingerprint);

	if (a == NULL || (a->expires_at_ms != 0 && a->expires_at_ms <= now_ms))
		return NULL;
	return a;
}

int ack_clear_on_resolve(struct ack_set *set, const char *rule, uint64_t fingerprint)
{
	sqlite3_stmt *stmt = set->table.stmt[STMT_DELETE];
	bool found;
	size_t index = search(set, rule, fingerprint, &found);

	if (!found)
		return 0;
	sqlite3_bind_text(stmt, 1, rule, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, statedb_fingerprint_to_sql(fingerprint));
	if (silence_table_run(&set->table, STMT_DELETE, NULL) < 0)
		return -1;
	ack_clear(&set->acks[index]);
	memmove(&set->acks[index], &set->acks[index + 1],
		(set->count - index - 1) * sizeof(*set->acks));
	set->count--;
	return 1;
}

void ack_list(const struct ack_set *set, ack_list_fn *fn, void *arg)
{
	for (size_t i = 0; i < set->count; i++)
		fn(arg, &set->acks[i]);
}

size_t ack_count(const struct ack_set *set)
{
	return set->count;
}

int ack_prune(struct ack_set *set, int64_t now_ms)
{
	size_t remaining = 0;
	int removed = 0;

	sqlite3_bind_int64(set->table.stmt[STMT_PRUNE], 1, now_ms);
	if (silence_table_run(&set->table, STMT_PRUNE, NULL) < 0)
		return -1;
	for (size_t i = 0; i < set->count; i++) {
		struct ack *a = &set->acks[i];

		if (a->expires_at_ms != 0 && a->expires_at_ms <= now_ms) {
			ack_clear(a);
			removed++;
		} else {
			set->acks[remaining++] = *a;
		}
	}
	set->count = remaining;
	return removed;
}
