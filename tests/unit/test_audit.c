/*
 * Unit tests of the audit trail on real SQLite files in a temporary directory. They cover
 * the hash chain and its verification after raw SQL changes every column of every row or
 * deletes rows, newest-first listing, redaction of secrets, and the detail objects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "alerter/ack.h"
#include "alerter/silence.h"
#include "collector/audit.h"
#include "collector/log.h"
#include "collector/statedb.h"

#define RECORD_COUNT 4

struct fixture {
	char dir[64];
	struct statedb *db;
	struct audit *audit;
};

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *error = NULL;

	snprintf(f->dir, sizeof f->dir, "/tmp/test_audit.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->db = statedb_open(f->dir, &error);
	if (f->db != NULL)
		f->audit = audit_open(f->db, &error);
	if (f->audit == NULL) {
		fprintf(stderr, "open: %s\n", error);
		free(error);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	audit_close(f->audit);
	statedb_close(f->db);
	nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Writes RECORD_COUNT records with ids 1 to RECORD_COUNT. */
static void write_records(struct fixture *f)
{
	assert_int_equal(
	    audit_record(f->audit, "tocsind", NULL, "config.load", "{\"result\":\"loaded\"}"), 0);
	assert_int_equal(audit_record(f->audit, "signal", "", "config.reload",
				      "{\"probes\":{\"added\":[\"web\"]}}"),
			 0);
	assert_int_equal(audit_record(f->audit, "cli", NULL, "silence.create", "{\"id\":\"x\"}"),
			 0);
	assert_int_equal(
	    audit_record(f->audit, "ops-token", "127.0.0.1", "api.silence.expire", NULL), 0);
}

static void exec_sql(struct fixture *f, const char *sql)
{
	char *message = NULL;

	if (sqlite3_exec(statedb_sqlite(f->db), sql, NULL, NULL, &message) != SQLITE_OK)
		fail_msg("%s: %s", sql, message);
}

/* Runs sql, which names the row as ?1, on row id. */
static void exec_sql_on_row(struct fixture *f, const char *sql, int id)
{
	sqlite3 *sqlite = statedb_sqlite(f->db);
	sqlite3_stmt *stmt = NULL;

	if (sqlite3_prepare_v2(sqlite, sql, -1, &stmt, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(sqlite));
	sqlite3_bind_int(stmt, 1, id);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		fail_msg("%s: %s", sql, sqlite3_errmsg(sqlite));
	sqlite3_finalize(stmt);
}

/* Runs audit_verify and returns the id it names, 0 when the chain is intact. */
static int64_t first_bad(struct fixture *f)
{
	int64_t bad = -1;
	char *error = NULL;
	int64_t count = audit_verify(f->audit, &bad, &error);

	if (count >= 0) {
		assert_null(error);
		assert_int_equal(bad, 0);
		return 0;
	}
	assert_non_null(error);
	free(error);
	return bad;
}

static void chain_verifies(void **state)
{
	struct fixture *f = *state;
	int64_t bad = -1;
	char *error = NULL;

	assert_int_equal(audit_verify(f->audit, &bad, &error), 0);
	write_records(f);
	assert_int_equal(audit_verify(f->audit, &bad, &error), RECORD_COUNT);
	assert_int_equal(bad, 0);
	assert_null(error);
}

static void collect_ids(void *arg, const struct audit_entry *e)
{
	int64_t **next = arg;

	*(*next)++ = e->id;
}

static void list_newest_first(void **state)
{
	struct fixture *f = *state;
	int64_t ids[RECORD_COUNT] = {0};
	int64_t *next = ids;

	write_records(f);
	assert_int_equal(audit_list(f->audit, 0, 0, collect_ids, &next), RECORD_COUNT);
	assert_int_equal(ids[0], 4);
	assert_int_equal(ids[3], 1);

	next = ids;
	assert_int_equal(audit_list(f->audit, 2, 1, collect_ids, &next), 2);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[1], 2);
}

static void copy_entry(void *arg, const struct audit_entry *e)
{
	struct audit_entry *out = arg;

	*out = *e;
	out->actor = strdup(e->actor);
	out->remote = strdup(e->remote);
	out->action = strdup(e->action);
	out->detail = strdup(e->detail);
	out->prev_hash = strdup(e->prev_hash);
	out->hash = strdup(e->hash);
}

static void free_entry(struct audit_entry *e)
{
	free((char *)e->actor);
	free((char *)e->remote);
	free((char *)e->action);
	free((char *)e->detail);
	free((char *)e->prev_hash);
	free((char *)e->hash);
}

static void record_fields_stored(void **state)
{
	struct fixture *f = *state;
	struct audit_entry first = {0};
	struct audit_entry second = {0};

	write_records(f);
	assert_int_equal(audit_list(f->audit, 1, RECORD_COUNT - 1, copy_entry, &first), 1);
	assert_int_equal(audit_list(f->audit, 1, RECORD_COUNT - 2, copy_entry, &second), 1);
	assert_int_equal(first.id, 1);
	assert_string_equal(first.actor, "tocsind");
	assert_string_equal(first.remote, "");
	assert_string_equal(first.action, "config.load");
	assert_string_equal(first.detail, "{\"result\":\"loaded\"}");
	assert_string_equal(first.prev_hash,
			    "0000000000000000000000000000000000000000000000000000000000000000");
	assert_int_equal(strlen(first.hash), 64);
	assert_string_equal(second.prev_hash, first.hash);
	assert_true(first.time_ms > 1600000000000);
	free_entry(&first);
	free_entry(&second);
}

/* Each UPDATE changes one column of row ?1 to a value it did not have. */
static const char *const tamper_statements[] = {
    "UPDATE audit SET time_ms = time_ms + 1 WHERE id = ?1",
    "UPDATE audit SET actor = actor || 'x' WHERE id = ?1",
    "UPDATE audit SET remote = remote || '10.0.0.1' WHERE id = ?1",
    "UPDATE audit SET action = 'silence.expire' WHERE id = ?1",
    "UPDATE audit SET detail = '{\"forged\":true}' WHERE id = ?1",
    "UPDATE audit SET prev_hash = substr(prev_hash, 2) || 'f' WHERE id = ?1",
    "UPDATE audit SET hash = substr(hash, 2) || 'f' WHERE id = ?1",
    "UPDATE audit SET time_ms = CAST(time_ms AS TEXT) || '.5' WHERE id = ?1",
};

static void tampered_column_detected(void **state)
{
	struct fixture *f = *state;

	write_records(f);
	exec_sql(f, "CREATE TABLE pristine AS SELECT * FROM audit");
	for (size_t s = 0; s < sizeof tamper_statements / sizeof tamper_statements[0]; s++) {
		for (int id = 1; id <= RECORD_COUNT; id++) {
			exec_sql_on_row(f, tamper_statements[s], id);
			if (first_bad(f) != id)
				fail_msg("tampering by \"%s\" not named as record %d",
					 tamper_statements[s], id);
			exec_sql(f, "DELETE FROM audit; INSERT INTO audit SELECT * FROM pristine");
			assert_int_equal(first_bad(f), 0);
		}
	}
}

static void tampered_id_detected(void **state)
{
	struct fixture *f = *state;

	write_records(f);
	exec_sql(f, "UPDATE audit SET id = 1000 WHERE id = 2");
	assert_int_equal(first_bad(f), 1000);
}

static void deleted_middle_row_detected(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;
	int64_t bad = 0;

	write_records(f);
	exec_sql(f, "DELETE FROM audit WHERE id = 2");
	assert_int_equal(audit_verify(f->audit, &bad, &error), -1);
	assert_int_equal(bad, 3);
	assert_non_null(strstr(error, "record 3"));
	assert_non_null(strstr(error, "record 1 before it"));
	free(error);
}

static void deleted_first_row_detected(void **state)
{
	struct fixture *f = *state;

	write_records(f);
	exec_sql(f, "DELETE FROM audit WHERE id = 1");
	assert_int_equal(first_bad(f), 2);
}

static void deleted_tail_detected(void **state)
{
	struct fixture *f = *state;

	write_records(f);
	exec_sql(f, "DELETE FROM audit WHERE id >= 3");
	assert_int_equal(first_bad(f), 4);

	/* A record written after the removal links to the removed one, so the gap stays. */
	assert_int_equal(audit_record(f->audit, "cli", NULL, "silence.expire", "{}"), 0);
	assert_int_equal(first_bad(f), 5);

	exec_sql(f, "DELETE FROM audit");
	assert_int_equal(first_bad(f), 5);
}

static void forged_row_detected(void **state)
{
	struct fixture *f = *state;

	write_records(f);
	/* A copy of the newest row appended with a new id: its hash covers the old id. */
	exec_sql(f, "INSERT INTO audit SELECT id + 1, time_ms, actor, remote, action, detail, "
		    "hash, hash FROM audit WHERE id = 4");
	assert_int_equal(first_bad(f), 5);
}

static void chain_survives_reopen(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;

	write_records(f);
	audit_close(f->audit);
	statedb_close(f->db);
	f->db = statedb_open(f->dir, &error);
	assert_non_null(f->db);
	f->audit = audit_open(f->db, &error);
	assert_non_null(f->audit);
	assert_int_equal(audit_record(f->audit, "cli", NULL, "silence.create", "{}"), 0);
	assert_int_equal(first_bad(f), 0);
}

static void record_joins_open_transaction(void **state)
{
	struct fixture *f = *state;
	int64_t bad = 0;
	char *error = NULL;

	assert_int_equal(statedb_begin(f->db), 0);
	assert_int_equal(audit_record(f->audit, "cli", NULL, "silence.create", "{}"), 0);
	statedb_rollback(f->db);
	assert_int_equal(audit_verify(f->audit, &bad, &error), 0);

	assert_int_equal(statedb_begin(f->db), 0);
	assert_int_equal(audit_record(f->audit, "cli", NULL, "silence.create", "{}"), 0);
	assert_int_equal(statedb_commit(f->db), 0);
	assert_int_equal(audit_verify(f->audit, &bad, &error), 1);
}

static void invalid_record_rejected(void **state)
{
	struct fixture *f = *state;
	int64_t bad = 0;
	char *error = NULL;

	assert_int_equal(audit_record(f->audit, "", NULL, "config.load", NULL), -1);
	assert_int_equal(audit_record(f->audit, "cli", NULL, NULL, NULL), -1);
	assert_int_equal(audit_record(f->audit, "cli", NULL, "x", "[1]"), -1);
	assert_int_equal(audit_record(f->audit, "cli", NULL, "x", "{\"a\":"), -1);
	assert_int_equal(audit_record(f->audit, "cli", "\xff", "x", NULL), -1);
	assert_int_equal(audit_verify(f->audit, &bad, &error), 0);
}

static void redaction_replaces_secrets(void **state)
{
	json_t *value = json_loads("{\"name\":\"web\",\"Password\":\"hunter2\","
				   "\"headers\":{\"Authorization\":\"Bearer x\",\"accept\":\"*\"},"
				   "\"list\":[{\"api_token\":\"t\"},{\"client_secret\":{\"a\":1}}],"
				   "\"tokens\":[\"a\",\"b\"],\"comment\":\"my password is x\"}",
				   0, NULL);
	char *text;

	(void)state;
	assert_non_null(value);
	assert_int_equal(audit_redact_json(value), 5);
	text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"Password\":\"<redacted>\",\"comment\":\"my password is x\","
				  "\"headers\":{\"Authorization\":\"<redacted>\",\"accept\":\"*\"},"
				  "\"list\":[{\"api_token\":\"<redacted>\"},"
				  "{\"client_secret\":\"<redacted>\"}],\"name\":\"web\","
				  "\"tokens\":\"<redacted>\"}");
	free(text);
	json_decref(value);
}

static void record_redacts_detail(void **state)
{
	struct fixture *f = *state;
	struct audit_entry e = {0};

	assert_int_equal(
	    audit_record(f->audit, "ops", "::1", "api.receiver.update",
			 "{\"receiver\":\"pager\",\"webhook\":{\"bearer_token\":\"s3\","
			 "\"url\":\"http://127.0.0.1/\"}}"),
	    0);
	assert_int_equal(audit_list(f->audit, 1, 0, copy_entry, &e), 1);
	assert_null(strstr(e.detail, "s3"));
	assert_string_equal(e.detail, "{\"receiver\":\"pager\",\"webhook\":{\"bearer_token\":"
				      "\"<redacted>\",\"url\":\"http://127.0.0.1/\"}}");
	free_entry(&e);
	assert_int_equal(first_bad(f), 0);
}

static void silence_and_ack_details(void **state)
{
	struct silence_matcher matchers[] = {
	    {.name = "alertname", .op = EXPR_MATCH_EQUAL, .value = "DiskFull"}};
	struct silence s = {.id = "4b4a2c1e-0000-4000-8000-000000000001",
			    .matchers = matchers,
			    .matcher_count = 1,
			    .starts_at_ms = 1000,
			    .ends_at_ms = 2000,
			    .created_by = "alice",
			    .comment = "disk swap"};
	struct ack a = {.rule = "node/DiskFull",
			.fingerprint = 0xabcdef,
			.created_by = "bob",
			.comment = "on it",
			.created_at_ms = 5,
			.expires_at_ms = 0};
	char *text = audit_silence_detail(&s);

	(void)state;
	assert_string_equal(text, "{\"comment\":\"disk swap\",\"created_by\":\"alice\","
				  "\"ends_at_ms\":2000,\"id\":\"4b4a2c1e-0000-4000-8000-"
				  "000000000001\",\"matchers\":[\"alertname=\\\"DiskFull\\\"\"],"
				  "\"starts_at_ms\":1000}");
	free(text);
	text = audit_ack_detail(&a);
	assert_string_equal(text,
			    "{\"comment\":\"on it\",\"created_at_ms\":5,\"created_by\":"
			    "\"bob\",\"expires_at_ms\":0,\"fingerprint\":\"0000000000abcdef\","
			    "\"rule\":\"node/DiskFull\"}");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(chain_verifies, setup, teardown),
	    cmocka_unit_test_setup_teardown(list_newest_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(record_fields_stored, setup, teardown),
	    cmocka_unit_test_setup_teardown(tampered_column_detected, setup, teardown),
	    cmocka_unit_test_setup_teardown(tampered_id_detected, setup, teardown),
	    cmocka_unit_test_setup_teardown(deleted_middle_row_detected, setup, teardown),
	    cmocka_unit_test_setup_teardown(deleted_first_row_detected, setup, teardown),
	    cmocka_unit_test_setup_teardown(deleted_tail_detected, setup, teardown),
	    cmocka_unit_test_setup_teardown(forged_row_detected, setup, teardown),
	    cmocka_unit_test_setup_teardown(chain_survives_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(record_joins_open_transaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(invalid_record_rejected, setup, teardown),
	    cmocka_unit_test(redaction_replaces_secrets),
	    cmocka_unit_test_setup_teardown(record_redacts_detail, setup, teardown),
	    cmocka_unit_test(silence_and_ack_details),
	};

	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
