/*
 * The state database: one SQLite file under the state directory (WAL mode,
 * synchronous=FULL, busy timeout) holding what must survive a restart: alert instances,
 * the log of alert transitions (the evaluator's queue to the alerter), SLO minute
 * buckets, and small named values. Other modules add their own tables through
 * statedb_sqlite(). Loop thread only.
 *
 * Errors: functions return -1 and log once per kind of failure (throttled) with the
 * SQLite message and the path; the caller keeps running on its in-memory state.
 */
#ifndef TOCSIN_STATEDB_H
#define TOCSIN_STATEDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/alert.h"
#include "collector/series.h"

struct statedb;
struct sqlite3;
struct json_t;

/* File name inside the state directory. */
#define STATEDB_FILE "state.db"

/*
 * Opens (creating when missing) dir/STATEDB_FILE and migrates its schema. Returns NULL
 * with *error set (caller frees) naming the path, the SQLite error and the fix, for
 * instance when the directory is not writable or another process holds a lock past the
 * busy timeout (5 s). errno is then EBUSY when the file stayed locked, so a caller can
 * tell a lock held elsewhere from a broken directory or file.
 */
struct statedb *statedb_open(const char *dir, char **error);
void statedb_close(struct statedb *db);
const char *statedb_path(const struct statedb *db);
struct sqlite3 *statedb_sqlite(struct statedb *db);

/* One transaction around many writes (an evaluation of a group). Nesting is an error. */
int statedb_begin(struct statedb *db);
int statedb_commit(struct statedb *db);
void statedb_rollback(struct statedb *db);

/* A persisted alert instance. `rule` is the evaluator's stable key of the rule. */
struct statedb_alert {
	const char *rule;
	uint64_t fingerprint; /* hash of the label set */
	const struct label *labels;
	size_t label_count;
	struct alert_instance inst;
};

/* Inserts or replaces the instance (rule, fingerprint). */
int statedb_alert_put(struct statedb *db, const struct statedb_alert *a);
int statedb_alert_delete(struct statedb *db, const char *rule, uint64_t fingerprint);

/* Calls fn for every stored instance of `rule` (every rule when NULL). Pointers in `a`
 * are valid during the call only. */
typedef void statedb_alert_fn(void *arg, const struct statedb_alert *a);
int statedb_alert_load(struct statedb *db, const char *rule, statedb_alert_fn *fn, void *arg);

/* One alert transition: the record the alerter reads. */
struct statedb_transition {
	int64_t id; /* assigned by statedb_transition_add, increasing */
	int64_t time_ms;
	const char *group;
	const char *rule; /* the rule's key */
	const char *alertname;
	uint64_t fingerprint;
	const struct label *labels; /* sorted by name, alertname and severity included */
	size_t label_count;
	const struct label *annotations; /* rendered, sorted by name */
	size_t annotation_count;
	double value;
	struct alert_change change;
};

/* Appends a transition; returns its id (> 0) or -1. */
int64_t statedb_transition_add(struct statedb *db, const struct statedb_transition *t);

/*
 * True when transition `id` was added through this connection by the last commit that added
 * transitions, or by an autocommit add. Such a row is on disk, so the caller may act on its
 * in-memory copy instead of reading the row back. False for the ids of a transaction that
 * rolled back (SQLite hands those ids out again), of a transaction in which an add failed,
 * and of rows that other connections wrote: callers read those from the log.
 */
bool statedb_transition_committed(const struct statedb *db, int64_t id);

/* Calls fn for up to `limit` transitions with id > after_id, in id order. Returns the
 * number passed to fn, or -1. */
typedef void statedb_transition_fn(void *arg, const struct statedb_transition *t);
int statedb_transitions_after(struct statedb *db, int64_t after_id, size_t limit,
			      statedb_transition_fn *fn, void *arg);

/* Removes transitions older than before_ms; returns the number removed or -1. */
int statedb_transitions_prune(struct statedb *db, int64_t before_ms);

/* SLO minute buckets: minute is the Unix time in minutes. Put adds to what is there. */
int statedb_slo_bucket_add(struct statedb *db, const char *slo, int64_t minute, double good,
			   double total);
typedef void statedb_slo_bucket_fn(void *arg, int64_t minute, double good, double total);
int statedb_slo_buckets_load(struct statedb *db, const char *slo, int64_t from_minute,
			     statedb_slo_bucket_fn *fn, void *arg);
int statedb_slo_buckets_prune(struct statedb *db, const char *slo, int64_t before_minute);

/* Small named values (cursors, counters' last readings). Get returns a copy or NULL. */
int statedb_kv_put(struct statedb *db, const char *key, const char *value);
char *statedb_kv_get(struct statedb *db, const char *key);

/* A fingerprint's 64 bits as SQLite's signed integer, and back, without overflow. Other
 * modules' tables store fingerprints the same way. */
int64_t statedb_fingerprint_to_sql(uint64_t fingerprint);
uint64_t statedb_fingerprint_from_sql(int64_t value);

/* Labels as a JSON object {"name":"value",...} in label order, and back (sorted). */
char *statedb_labels_json(const struct label *labels, size_t count);
int statedb_labels_parse(const char *json, struct label **labels, size_t *count);
/*
 * Copies a JSON object of strings into *labels, sorted by name and freed with
 * statedb_labels_free(), and *count. Returns 0, or -1 with *bad_name NULL when object is not
 * an object. Returns -1 with *bad_name set to the name of the first member that is not a
 * string otherwise; that name stays valid while object does.
 */
int statedb_labels_from_json(struct json_t *object, struct label **labels, size_t *count,
			     const char **bad_name);
void statedb_labels_free(struct label *labels, size_t count);

#endif
