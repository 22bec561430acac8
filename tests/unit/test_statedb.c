/*
 * Unit tests of the state database on real SQLite files in a temporary directory: alert
 * instances, the transition log, SLO buckets, named values, label JSON, the connection
 * settings, reopening, and the errors for a locked, unwritable or newer database.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collector/log.h"
#include "collector/statedb.h"

struct fixture {
	char dir[64];
	struct statedb *db;
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

	snprintf(f->dir, sizeof f->dir, "/tmp/test_statedb.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->db = statedb_open(f->dir, &error);
	if (f->db == NULL) {
		fprintf(stderr, "statedb_open: %s\n", error);
		free(error);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	statedb_close(f->db);
	nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static double elapsed_s(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) + (now.tv_nsec - since->tv_nsec) / 1e9;
}

/* An instance with every field set to a value derived from `seed`. */
static struct alert_instance instance(int seed, double value)
{
	struct alert_instance inst = {
	    .state = ALERT_FIRING,
	    .level = ALERT_LEVEL_CRITICAL,
	    .candidate = ALERT_LEVEL_WARNING,
	    .candidate_since_ms = 1000 + seed,
	    .active_at_ms = 2000 + seed,
	    .fired_at_ms = 3000 + seed,
	    .resolved_at_ms = 4000 + seed,
	    .last_seen_ms = 5000 + seed,
	    .last_eval_ms = 6000 + seed,
	    .value = value,
	    .flap_bits = 0x1abcdeu + (uint32_t)seed,
	    .flap_count = 21,
	    .flapping = true,
	};

	return inst;
}

struct loaded_alerts {
	size_t count;
	char rules[8][16];
	uint64_t fingerprints[8];
	char labels[8][128];
	struct alert_instance inst[8];
};

static void collect_alert(void *arg, const struct statedb_alert *a)
{
	struct loaded_alerts *l = arg;
	size_t n = 0;

	assert_true(l->count < 8);
	snprintf(l->rules[l->count], sizeof l->rules[0], "%s", a->rule);
	l->fingerprints[l->count] = a->fingerprint;
	l->labels[l->count][0] = '\0';
	for (size_t i = 0; i < a->label_count; i++)
		n += (size_t)snprintf(l->labels[l->count] + n, sizeof l->labels[0] - n, "%s=%s;",
				      a->labels[i].name, a->labels[i].value);
	l->inst[l->count] = a->inst;
	l->count++;
}

/* The index of fingerprint in l, failing the test when it is missing. */
static size_t find_alert(const struct loaded_alerts *l, uint64_t fingerprint)
{
	for (size_t i = 0; i < l->count; i++) {
		if (l->fingerprints[i] == fingerprint)
			return i;
	}
	fail_msg("fingerprint %016llx not loaded", (unsigned long long)fingerprint);
	return 0;
}

static void assert_instance_equal(const struct alert_instance *a, const struct alert_instance *b)
{
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->level, b->level);
	assert_int_equal(a->candidate, b->candidate);
	assert_int_equal(a->candidate_since_ms, b->candidate_since_ms);
	assert_int_equal(a->active_at_ms, b->active_at_ms);
	assert_int_equal(a->fired_at_ms, b->fired_at_ms);
	assert_int_equal(a->resolved_at_ms, b->resolved_at_ms);
	assert_int_equal(a->last_seen_ms, b->last_seen_ms);
	assert_int_equal(a->last_eval_ms, b->last_eval_ms);
	if (isnan(b->value))
		assert_true(isnan(a->value));
	else
		assert_true(a->value == b->value); /* exact: infinities included */
	assert_int_equal(a->flap_bits, b->flap_bits);
	assert_int_equal(a->flap_count, b->flap_count);
	assert_int_equal(a->flapping, b->flapping);
}

static void alerts_round_trip(void **state)
{
	struct fixture *f = *state;
	const struct label labels[] = {{"alertname", "HighLoad"}, {"instance", "db-1"}};
	const uint64_t high = 0xfedcba9876543210ULL; /* above INT64_MAX */
	struct statedb_alert a = {"r1", high, labels, 2, instance(1, 1.5)};
	struct statedb_alert b = {"r1", 7, labels, 1, instance(2, NAN)};
	struct statedb_alert c = {"r2", 7, NULL, 0, instance(3, INFINITY)};
	struct statedb_alert d = {"r2", 8, NULL, 0, instance(4, -INFINITY)};
	struct loaded_alerts l = {0};

	assert_int_equal(statedb_alert_put(f->db, &a), 0);
	assert_int_equal(statedb_alert_put(f->db, &b), 0);
	assert_int_equal(statedb_alert_put(f->db, &c), 0);
	assert_int_equal(statedb_alert_put(f->db, &d), 0);

	assert_int_equal(statedb_alert_load(f->db, "r1", collect_alert, &l), 0);
	assert_int_equal(l.count, 2);
	assert_string_equal(l.rules[find_alert(&l, high)], "r1");
	assert_string_equal(l.labels[find_alert(&l, high)], "alertname=HighLoad;instance=db-1;");
	assert_string_equal(l.labels[find_alert(&l, 7)], "alertname=HighLoad;");
	assert_instance_equal(&l.inst[find_alert(&l, high)], &a.inst);
	assert_instance_equal(&l.inst[find_alert(&l, 7)], &b.inst);

	/* Infinities are stored as REALs; NaN as NULL. */
	memset(&l, 0, sizeof l);
	assert_int_equal(statedb_alert_load(f->db, "r2", collect_alert, &l), 0);
	assert_int_equal(l.count, 2);
	assert_true(isinf(l.inst[find_alert(&l, 7)].value));
	assert_true(l.inst[find_alert(&l, 7)].value > 0);
	assert_true(l.inst[find_alert(&l, 8)].value < 0);
	assert_true(isinf(l.inst[find_alert(&l, 8)].value));
	assert_string_equal(l.labels[find_alert(&l, 8)], "");

	/* A put on the same (rule, fingerprint) replaces the row. */
	b.inst.state = ALERT_PENDING;
	b.inst.level = ALERT_LEVEL_OK;
	b.inst.flapping = false;
	b.inst.value = 42;
	assert_int_equal(statedb_alert_put(f->db, &b), 0);
	memset(&l, 0, sizeof l);
	assert_int_equal(statedb_alert_load(f->db, "r1", collect_alert, &l), 0);
	assert_int_equal(l.count, 2);
	assert_instance_equal(&l.inst[find_alert(&l, 7)], &b.inst);

	/* NULL loads every rule. */
	memset(&l, 0, sizeof l);
	assert_int_equal(statedb_alert_load(f->db, NULL, collect_alert, &l), 0);
	assert_int_equal(l.count, 4);

	assert_int_equal(statedb_alert_delete(f->db, "r1", high), 0);
	assert_int_equal(statedb_alert_delete(f->db, "r1", 12345), 0); /* missing: no error */
	memset(&l, 0, sizeof l);
	assert_int_equal(statedb_alert_load(f->db, "r1", collect_alert, &l), 0);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.fingerprints[0], 7);
	memset(&l, 0, sizeof l);
	assert_int_equal(statedb_alert_load(f->db, "missing", collect_alert, &l), 0);
	assert_int_equal(l.count, 0);
}

struct loaded_transitions {
	size_t count;
	int64_t ids[16];
	int64_t times[16];
	char text[16][256];
	double values[16];
	struct alert_change changes[16];
};

static void collect_transition(void *arg, const struct statedb_transition *t)
{
	struct loaded_transitions *l = arg;
	size_t n;

	assert_true(l->count < 16);
	l->ids[l->count] = t->id;
	l->times[l->count] = t->time_ms;
	l->values[l->count] = t->value;
	l->changes[l->count] = t->change;
	n = (size_t)snprintf(l->text[l->count], sizeof l->text[0], "%s/%s/%s/%016llx/", t->group,
			     t->rule, t->alertname, (unsigned long long)t->fingerprint);
	for (size_t i = 0; i < t->label_count; i++)
		n += (size_t)snprintf(l->text[l->count] + n, sizeof l->text[0] - n, "%s=%s;",
				      t->labels[i].name, t->labels[i].value);
	n += (size_t)snprintf(l->text[l->count] + n, sizeof l->text[0] - n, "/");
	for (size_t i = 0; i < t->annotation_count; i++)
		n += (size_t)snprintf(l->text[l->count] + n, sizeof l->text[0] - n, "%s=%s;",
				      t->annotations[i].name, t->annotations[i].value);
	l->count++;
}

static int64_t add_transition(struct statedb *db, int64_t time_ms, double value)
{
	const struct label labels[] = {{"alertname", "Down"}, {"severity", "page"}};
	const struct label annotations[] = {{"summary", "host \"db\" is down"}};
	struct statedb_transition t = {
	    .time_ms = time_ms,
	    .group = "g",
	    .rule = "g/Down",
	    .alertname = "Down",
	    .fingerprint = 0x8000000000000001ULL,
	    .labels = labels,
	    .label_count = 2,
	    .annotations = annotations,
	    .annotation_count = 1,
	    .value = value,
	    .change = {ALERT_PENDING, ALERT_FIRING, ALERT_LEVEL_OK, ALERT_LEVEL_WARNING, true,
		       false, true},
	};

	return statedb_transition_add(db, &t);
}

static void transitions_in_id_order(void **state)
{
	struct fixture *f = *state;
	struct loaded_transitions l = {0};
	int64_t ids[5];

	for (int i = 0; i < 5; i++) {
		ids[i] = add_transition(f->db, 1000 * (i + 1), i == 3 ? NAN : i);
		assert_true(ids[i] > 0);
		if (i > 0)
			assert_true(ids[i] > ids[i - 1]);
	}

	assert_int_equal(statedb_transitions_after(f->db, 0, 3, collect_transition, &l), 3);
	assert_int_equal(l.count, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(l.ids[i], ids[i]);
		assert_int_equal(l.times[i], 1000 * (i + 1));
	}
	assert_string_equal(l.text[0], "g/g/Down/Down/8000000000000001/alertname=Down;"
				       "severity=page;/summary=host \"db\" is down;");
	assert_int_equal(l.changes[0].from_state, ALERT_PENDING);
	assert_int_equal(l.changes[0].to_state, ALERT_FIRING);
	assert_int_equal(l.changes[0].from_level, ALERT_LEVEL_OK);
	assert_int_equal(l.changes[0].to_level, ALERT_LEVEL_WARNING);
	assert_true(l.changes[0].notify);
	assert_false(l.changes[0].flapping);
	assert_true(l.changes[0].resolved);
	assert_true(l.values[2] == 2.0);

	memset(&l, 0, sizeof l);
	assert_int_equal(statedb_transitions_after(f->db, ids[2], 100, collect_transition, &l), 2);
	assert_int_equal(l.ids[0], ids[3]);
	assert_int_equal(l.ids[1], ids[4]);
	assert_true(isnan(l.values[0]));
	assert_true(l.values[1] == 4.0);

	memset(&l, 0, sizeof l);
	assert_int_equal(statedb_transitions_after(f->db, ids[4], 100, collect_transition, &l), 0);
	assert_int_equal(statedb_transitions_after(f->db, 0, 0, collect_transition, &l), 0);
}

static void transitions_prune_keeps_ids(void **state)
{
	struct fixture *f = *state;
	struct loaded_transitions l = {0};
	int64_t last;

	add_transition(f->db, 1000, 1);
	add_transition(f->db, 2000, 2);
	last = add_transition(f->db, 3000, 3);
	assert_int_equal(statedb_transitions_prune(f->db, 2500), 2);
	assert_int_equal(statedb_transitions_prune(f->db, 2500), 0);
	assert_int_equal(statedb_transitions_after(f->db, 0, 10, collect_transition, &l), 1);
	assert_int_equal(l.ids[0], last);
	assert_int_equal(l.times[0], 3000);

	/* Ids are never reused, even after the newest row is removed. */
	assert_int_equal(statedb_transitions_prune(f->db, 10000), 1);
	assert_true(add_transition(f->db, 4000, 4) > last);
}

struct loaded_buckets {
	size_t count;
	int64_t minutes[8];
	double good[8];
	double total[8];
};

static void collect_bucket(void *arg, int64_t minute, double good, double total)
{
	struct loaded_buckets *l = arg;

	assert_true(l->count < 8);
	l->minutes[l->count] = minute;
	l->good[l->count] = good;
	l->total[l->count] = total;
	l->count++;
}

static void slo_buckets_add_up(void **state)
{
	struct fixture *f = *state;
	struct loaded_buckets l = {0};

	assert_int_equal(statedb_slo_bucket_add(f->db, "api", 11, 1, 2), 0);
	assert_int_equal(statedb_slo_bucket_add(f->db, "api", 10, 5, 5), 0);
	assert_int_equal(statedb_slo_bucket_add(f->db, "api", 11, 2.5, 3), 0);
	assert_int_equal(statedb_slo_bucket_add(f->db, "other", 11, 100, 100), 0);

	assert_int_equal(statedb_slo_buckets_load(f->db, "api", 0, collect_bucket, &l), 0);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.minutes[0], 10);
	assert_int_equal(l.minutes[1], 11);
	assert_true(l.good[1] == 3.5);
	assert_true(l.total[1] == 5);

	memset(&l, 0, sizeof l);
	assert_int_equal(statedb_slo_buckets_load(f->db, "api", 11, collect_bucket, &l), 0);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.minutes[0], 11);

	assert_int_equal(statedb_slo_buckets_prune(f->db, "api", 11), 0);
	memset(&l, 0, sizeof l);
	assert_int_equal(statedb_slo_buckets_load(f->db, "api", 0, collect_bucket, &l), 0);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.minutes[0], 11);
	memset(&l, 0, sizeof l);
	assert_int_equal(statedb_slo_buckets_load(f->db, "other", 0, collect_bucket, &l), 0);
	assert_int_equal(l.count, 1);
	assert_true(l.total[0] == 100);
}

static void kv_put_get_replace(void **state)
{
	struct fixture *f = *state;
	char *value;

	assert_null(statedb_kv_get(f->db, "cursor"));
	assert_int_equal(statedb_kv_put(f->db, "cursor", "17"), 0);
	value = statedb_kv_get(f->db, "cursor");
	assert_string_equal(value, "17");
	free(value);
	assert_int_equal(statedb_kv_put(f->db, "cursor", "18 \"quoted\""), 0);
	value = statedb_kv_get(f->db, "cursor");
	assert_string_equal(value, "18 \"quoted\"");
	free(value);
	assert_int_equal(statedb_kv_put(f->db, "empty", ""), 0);
	value = statedb_kv_get(f->db, "empty");
	assert_string_equal(value, "");
	free(value);
}

static void labels_json_escapes_utf8(void **state)
{
	const struct label labels[] = {
	    {"job", "a\"b\\c\nd\te"},
	    {"city", "Zürich €5 😀"},
	    {"ctl", "\x01"},
	};
	const struct label bad[] = {{"v", "ok\xff\xfe"}};
	struct label *parsed = NULL;
	size_t count = 0;
	char *json;

	(void)state;
	json = statedb_labels_json(labels, 3);
	/* Label order is kept in the text; parsing sorts by name. */
	assert_string_equal(json, "{\"job\":\"a\\\"b\\\\c\\nd\\te\",\"city\":\"Zürich €5 😀\","
				  "\"ctl\":\"\\u0001\"}");
	assert_int_equal(statedb_labels_parse(json, &parsed, &count), 0);
	assert_int_equal(count, 3);
	assert_string_equal(parsed[0].name, "city");
	assert_string_equal(parsed[0].value, "Zürich €5 😀");
	assert_string_equal(parsed[1].name, "ctl");
	assert_string_equal(parsed[1].value, "\x01");
	assert_string_equal(parsed[2].name, "job");
	assert_string_equal(parsed[2].value, "a\"b\\c\nd\te");
	statedb_labels_free(parsed, count);
	free(json);

	/* Sorted labels take the direct path, which must escape as jansson does. */
	json = statedb_labels_json(
	    (const struct label[]){{"a", "q\"\\\b\f\r\x1f/\x7f"}, {"b", "Zürich"}}, 2);
	assert_string_equal(json, "{\"a\":\"q\\\"\\\\\\b\\f\\r\\u001F/\x7f\",\"b\":\"Zürich\"}");
	free(json);

	json = statedb_labels_json(NULL, 0);
	assert_string_equal(json, "{}");
	assert_int_equal(statedb_labels_parse(json, &parsed, &count), 0);
	assert_int_equal(count, 0);
	assert_null(parsed);
	free(json);

	/* Bytes that are not UTF-8 become '?' rather than making invalid JSON. */
	json = statedb_labels_json(bad, 1);
	assert_string_equal(json, "{\"v\":\"ok??\"}");
	free(json);

	assert_int_equal(statedb_labels_parse("[\"a\"]", &parsed, &count), -1);
	assert_int_equal(statedb_labels_parse("{\"a\":1}", &parsed, &count), -1);
	assert_int_equal(statedb_labels_parse("{\"a\":", &parsed, &count), -1);
	assert_int_equal(statedb_labels_parse("{\"a\":\"1\",\"a\":\"2\"}", &parsed, &count), -1);
	assert_null(parsed);
	assert_int_equal(count, 0);
}

/* The first column of the first row of a query on the database's own connection. */
static void pragma_text(struct statedb *db, const char *sql, char *out, size_t size)
{
	sqlite3_stmt *stmt = NULL;

	assert_int_equal(sqlite3_prepare_v2(statedb_sqlite(db), sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	snprintf(out, size, "%s", (const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
}

static void connection_settings(void **state)
{
	struct fixture *f = *state;
	char text[64];
	char expected[128];
	struct stat sb;

	pragma_text(f->db, "PRAGMA journal_mode", text, sizeof text);
	assert_string_equal(text, "wal");
	pragma_text(f->db, "PRAGMA synchronous", text, sizeof text);
	assert_string_equal(text, "2"); /* FULL */
	pragma_text(f->db, "PRAGMA foreign_keys", text, sizeof text);
	assert_string_equal(text, "1");
	pragma_text(f->db, "PRAGMA user_version", text, sizeof text);
	assert_string_equal(text, "1");
	pragma_text(f->db, "PRAGMA busy_timeout", text, sizeof text);
	assert_string_equal(text, "5000");
	snprintf(expected, sizeof expected, "%s/state.db", f->dir);
	assert_string_equal(statedb_path(f->db), expected);
	assert_int_equal(stat(expected, &sb), 0);
}

static void open_creates_directory(void **state)
{
	struct fixture *f = *state;
	char dir[128];
	char *error = NULL;
	struct statedb *db;
	struct stat sb;

	snprintf(dir, sizeof dir, "%s/a/b", f->dir);
	db = statedb_open(dir, &error);
	assert_non_null(db);
	assert_null(error);
	assert_int_equal(stat(dir, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0027, 0); /* 0750 less the umask */
	statedb_close(db);
}

static void reopen_keeps_data(void **state)
{
	struct fixture *f = *state;
	struct statedb_alert a = {"r", 99, NULL, 0, instance(9, 0.25)};
	struct loaded_alerts la = {0};
	struct loaded_transitions lt = {0};
	struct loaded_buckets lb = {0};
	char *error = NULL;
	char *value;
	int64_t id;

	assert_int_equal(statedb_alert_put(f->db, &a), 0);
	id = add_transition(f->db, 5000, 5);
	assert_int_equal(statedb_slo_bucket_add(f->db, "api", 3, 1, 2), 0);
	assert_int_equal(statedb_kv_put(f->db, "k", "v"), 0);
	statedb_close(f->db);

	f->db = statedb_open(f->dir, &error);
	assert_non_null(f->db);
	assert_int_equal(statedb_alert_load(f->db, NULL, collect_alert, &la), 0);
	assert_int_equal(la.count, 1);
	assert_instance_equal(&la.inst[0], &a.inst);
	assert_int_equal(statedb_transitions_after(f->db, 0, 10, collect_transition, &lt), 1);
	assert_int_equal(lt.ids[0], id);
	assert_int_equal(statedb_slo_buckets_load(f->db, "api", 0, collect_bucket, &lb), 0);
	assert_int_equal(lb.count, 1);
	value = statedb_kv_get(f->db, "k");
	assert_string_equal(value, "v");
	free(value);
}

static void transaction_commit_rollback(void **state)
{
	struct fixture *f = *state;
	char *value;

	assert_int_equal(statedb_begin(f->db), 0);
	assert_int_equal(statedb_begin(f->db), -1); /* nesting */
	assert_int_equal(statedb_kv_put(f->db, "a", "1"), 0);
	assert_int_equal(statedb_commit(f->db), 0);
	assert_int_equal(statedb_commit(f->db), -1); /* none open */

	assert_int_equal(statedb_begin(f->db), 0);
	assert_int_equal(statedb_kv_put(f->db, "a", "2"), 0);
	assert_int_equal(statedb_kv_put(f->db, "b", "2"), 0);
	statedb_rollback(f->db);
	value = statedb_kv_get(f->db, "a");
	assert_string_equal(value, "1");
	free(value);
	assert_null(statedb_kv_get(f->db, "b"));
}

static void transition_committed_by_last_commit(void **state)
{
	struct fixture *f = *state;
	int64_t single, first, second, rolled_back, reused;

	single = add_transition(f->db, 1000, 1);
	assert_true(statedb_transition_committed(f->db, single)); /* autocommit */

	assert_int_equal(statedb_begin(f->db), 0);
	first = add_transition(f->db, 2000, 1);
	second = add_transition(f->db, 3000, 1);
	assert_false(statedb_transition_committed(f->db, first)); /* not committed yet */
	assert_int_equal(statedb_commit(f->db), 0);
	assert_true(statedb_transition_committed(f->db, first));
	assert_true(statedb_transition_committed(f->db, second));

	/* A transaction without transitions leaves the last ones committed. */
	assert_int_equal(statedb_begin(f->db), 0);
	assert_int_equal(statedb_kv_put(f->db, "k", "v"), 0);
	assert_int_equal(statedb_commit(f->db), 0);
	assert_true(statedb_transition_committed(f->db, second));

	/* SQLite hands the id of a rolled-back row out again. */
	assert_int_equal(statedb_begin(f->db), 0);
	rolled_back = add_transition(f->db, 4000, 1);
	statedb_rollback(f->db);
	assert_false(statedb_transition_committed(f->db, rolled_back));
	assert_int_equal(statedb_begin(f->db), 0);
	reused = add_transition(f->db, 5000, 2);
	assert_int_equal(reused, rolled_back);
	assert_int_equal(statedb_commit(f->db), 0);
	assert_true(statedb_transition_committed(f->db, reused));
	assert_false(statedb_transition_committed(f->db, 0));
	assert_false(statedb_transition_committed(f->db, -1));
}

static void locked_database_fails_open(void **state)
{
	struct fixture *f = *state;
	char path[128];
	sqlite3 *other = NULL;
	char *error = NULL;
	struct statedb *db;
	struct timespec start;
	double seconds;

	snprintf(path, sizeof path, "%s/state.db", f->dir);
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);

	clock_gettime(CLOCK_MONOTONIC, &start);
	db = statedb_open(f->dir, &error);
	seconds = elapsed_s(&start);
	assert_null(db);
	assert_non_null(error);
	assert_non_null(strstr(error, path));
	assert_non_null(strstr(error, "locked by another process"));
	assert_non_null(strstr(error, "database is locked"));
	assert_non_null(strstr(error, "state_dir"));
	/* It waits for the busy timeout, 5 s, and no longer. */
	assert_true(seconds >= 4.5);
	assert_true(seconds < 8);
	free(error);

	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	db = statedb_open(f->dir, &error);
	assert_non_null(db);
	statedb_close(db);
}

static void unwritable_directory_fails_open(void **state)
{
	struct fixture *f = *state;
	char file[128];
	char dir[160];
	char *error = NULL;
	FILE *fp;

	/* A path below a regular file cannot be created, even by root. */
	snprintf(file, sizeof file, "%s/plain", f->dir);
	fp = fopen(file, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(dir, sizeof dir, "%s/sub", file);
	assert_null(statedb_open(dir, &error));
	assert_non_null(error);
	assert_non_null(strstr(error, dir));
	assert_non_null(strstr(error, "Not a directory"));
	assert_non_null(strstr(error, "set state_dir"));
	free(error);
	error = NULL;

	/* state.db is a directory: SQLite cannot open it. */
	snprintf(dir, sizeof dir, "%s/d", f->dir);
	snprintf(file, sizeof file, "%s/d/state.db", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mkdir(file, 0700), 0);
	assert_null(statedb_open(dir, &error));
	assert_non_null(error);
	assert_non_null(strstr(error, file));
	assert_non_null(strstr(error, "not writable"));
	assert_non_null(strstr(error, "fix the permissions or set state_dir"));
	free(error);
}

/* Opens dir as an unprivileged user: root writes anywhere, so as root the check runs in a
 * child process that has dropped to uid/gid 65534 ("nobody"). */
static void unwritable_directory_as_user(void **state)
{
	struct fixture *f = *state;
	char dir[128];
	pid_t pid;
	int status;

	snprintf(dir, sizeof dir, "%s/ro", f->dir);
	assert_int_equal(mkdir(dir, 0555), 0);
	assert_int_equal(chmod(f->dir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *error = NULL;

		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(3);
		if (statedb_open(dir, &error) != NULL)
			_exit(1);
		_exit(error != NULL && strstr(error, "is not writable") != NULL ? 0 : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	chmod(dir, 0700);
}

static void newer_schema_fails_open(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;

	assert_int_equal(
	    sqlite3_exec(statedb_sqlite(f->db), "PRAGMA user_version = 7", NULL, NULL, NULL),
	    SQLITE_OK);
	statedb_close(f->db);
	f->db = statedb_open(f->dir, &error);
	assert_null(f->db);
	assert_non_null(error);
	assert_non_null(strstr(error, "schema version 7, newer than the version 1"));
	free(error);
}

static void write_failure_logged_throttled(void **state)
{
	struct fixture *f = *state;
	FILE *log = tmpfile();
	char text[4096];
	size_t n;
	const char *first;

	assert_non_null(log);
	log_set_fd(fileno(log));
	assert_int_equal(sqlite3_exec(statedb_sqlite(f->db), "DROP TABLE kv", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(statedb_kv_put(f->db, "a", "1"), -1);
	assert_int_equal(statedb_kv_put(f->db, "a", "2"), -1);
	assert_int_equal(statedb_kv_put(f->db, "a", "3"), -1);
	log_set_fd(2);

	rewind(log);
	n = fread(text, 1, sizeof text - 1, log);
	text[n] = '\0';
	fclose(log);
	first = strstr(text, "value write failed");
	assert_non_null(first);
	assert_non_null(strstr(text, "no such table: kv"));
	assert_non_null(strstr(text, statedb_path(f->db)));
	assert_null(strstr(first + 1, "value write failed")); /* repeats are throttled */
}

/* Rows that do not parse are skipped with a warning; the others still load. */
static void corrupt_rows_skipped(void **state)
{
	struct fixture *f = *state;
	struct statedb_alert a = {"r", 1, NULL, 0, instance(1, 1)};
	struct loaded_alerts la = {0};
	struct loaded_transitions lt = {0};
	FILE *log = tmpfile();
	char text[4096];
	size_t n;

	assert_non_null(log);
	assert_int_equal(statedb_alert_put(f->db, &a), 0);
	a.fingerprint = 2;
	assert_int_equal(statedb_alert_put(f->db, &a), 0);
	a.fingerprint = 3;
	assert_int_equal(statedb_alert_put(f->db, &a), 0);
	add_transition(f->db, 1000, 1);
	add_transition(f->db, 2000, 2);
	assert_int_equal(
	    sqlite3_exec(statedb_sqlite(f->db),
			 "UPDATE alerts SET labels = '[1]' WHERE fingerprint = 2;"
			 "UPDATE alerts SET state = 'gone' WHERE fingerprint = 3;"
			 "UPDATE transitions SET to_level = 'severe' WHERE time_ms = 1000",
			 NULL, NULL, NULL),
	    SQLITE_OK);

	log_set_fd(fileno(log));
	assert_int_equal(statedb_alert_load(f->db, NULL, collect_alert, &la), 0);
	/* The corrupt row does not use up the limit of 1. */
	assert_int_equal(statedb_transitions_after(f->db, 0, 1, collect_transition, &lt), 1);
	log_set_fd(2);
	assert_int_equal(la.count, 1);
	assert_int_equal(la.fingerprints[0], 1);
	assert_int_equal(lt.times[0], 2000);

	rewind(log);
	n = fread(text, 1, sizeof text - 1, log);
	text[n] = '\0';
	fclose(log);
	assert_non_null(strstr(text, "skipped a row of table alerts"));
	assert_non_null(strstr(text, "fingerprint 0000000000000002: labels [1] are not a JSON"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(alerts_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(transitions_in_id_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(transitions_prune_keeps_ids, setup, teardown),
	    cmocka_unit_test_setup_teardown(slo_buckets_add_up, setup, teardown),
	    cmocka_unit_test_setup_teardown(kv_put_get_replace, setup, teardown),
	    cmocka_unit_test(labels_json_escapes_utf8),
	    cmocka_unit_test_setup_teardown(connection_settings, setup, teardown),
	    cmocka_unit_test_setup_teardown(open_creates_directory, setup, teardown),
	    cmocka_unit_test_setup_teardown(reopen_keeps_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(transaction_commit_rollback, setup, teardown),
	    cmocka_unit_test_setup_teardown(transition_committed_by_last_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(locked_database_fails_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(unwritable_directory_fails_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(unwritable_directory_as_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(newer_schema_fails_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(write_failure_logged_throttled, setup, teardown),
	    cmocka_unit_test_setup_teardown(corrupt_rows_skipped, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
