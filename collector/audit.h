/*
 * The audit trail: an append-only table `audit` in the state database that records who
 * changed what (config loads and reloads, silences, acknowledgements, API calls). Each
 * record stores the SHA-256 of the record before it, so editing, reordering or deleting a
 * record breaks the chain and audit_verify() names the first broken record. Loop thread
 * only, like the state database.
 *
 * A record's hash is SHA-256 over this byte string (integers big-endian):
 *   "tocsin-audit-1" NUL, id (8 bytes), time_ms (8 bytes, two's complement), then actor,
 *   remote, action, detail and prev_hash, each as its length (4 bytes) and its bytes.
 * hash and prev_hash are 64 lowercase hex digits; the first record's prev_hash is 64 zeros.
 * The kv key "audit.head" contains "ID HASH" of the newest record, so a removed tail shows.
 *
 * Details never hold secrets: callers build them from non-secret fields, and
 * audit_record() also replaces the value of every key that audit_redact_json() matches.
 */
#ifndef TOCSIN_AUDIT_H
#define TOCSIN_AUDIT_H

#include <stddef.h>
#include <stdint.h>

struct ack;
struct audit;
struct config;
struct json_t;
struct rule_set;
struct silence;
struct statedb;

/* 64 hex digits and the NUL. */
#define AUDIT_HASH_SIZE 65
/* The replacement value that audit_redact_json() writes over a secret. */
#define AUDIT_REDACTED "<redacted>"

/* One record as stored. The strings are valid during the audit_list() callback only. */
struct audit_entry {
	int64_t id; /* 1, 2, 3, ... in the order written */
	int64_t time_ms;
	const char *actor;  /* token name, "tocsind", "cli" or "signal" */
	const char *remote; /* client address, "" when the change did not come over HTTP */
	const char *action; /* "config.reload", "silence.create", "api.<...>", ... */
	const char *detail; /* a JSON object, compact with sorted keys */
	const char *prev_hash;
	const char *hash;
};

/*
 * Creates the `audit` table when missing (schema version 1 under the kv key
 * "schema_version.audit") and returns the handle. Returns NULL with *error set (caller
 * frees) when the table cannot be created or a newer tocsin wrote a later schema. Free
 * the handle with audit_close() before closing db.
 */
struct audit *audit_open(struct statedb *db, char **error);
void audit_close(struct audit *audit);
/* The state database that audit writes to, so that a caller can make a change and its
 * record in one transaction (statedb_begin, the change, audit_record, statedb_commit). */
struct statedb *audit_statedb(struct audit *audit);

/*
 * Appends a record at the current wall-clock time. actor and action must be non-empty
 * UTF-8; remote may be NULL (stored as ""); detail_json must be a JSON object or NULL
 * (stored as {}). Values of secret-like keys in the detail are redacted before hashing.
 * Runs in its own IMMEDIATE transaction, so records from the daemon and from command-line
 * tools sharing the database chain in one order. When the caller already has a
 * transaction open, the record joins it and commits or rolls back with it. May wait up to
 * the state database's busy timeout for another writer. Returns 0, or -1 after logging
 * why (throttled).
 */
int audit_record(struct audit *audit, const char *actor, const char *remote, const char *action,
		 const char *detail_json);

/*
 * Calls fn for up to `limit` records (every record when limit is 0), newest first,
 * skipping the `offset` newest. Returns the number passed to fn, or -1 (logged).
 */
typedef void audit_list_fn(void *arg, const struct audit_entry *entry);
int audit_list(struct audit *audit, size_t limit, size_t offset, audit_list_fn *fn, void *arg);

/*
 * Recomputes every record's hash and checks each prev_hash against the record before it
 * and the newest record against "audit.head". Returns the number of records when the chain
 * is intact. Returns -1 with *first_bad_id and *error (caller frees) set otherwise.
 * *first_bad_id is the lowest id whose stored hash does not match its content. When every
 * record matches its hash, it is the first record whose link to the previous one is
 * broken, and for a removed tail it is the id that audit.head names. It is 0 when reading
 * the table failed.
 */
int64_t audit_verify(struct audit *audit, int64_t *first_bad_id, char **error);

/*
 * Replaces, in place and at any depth of objects and arrays, the value of every object
 * member whose name contains (ignoring case) password, passwd, token, secret,
 * authorization, api_key, apikey, private_key, credential or cookie with AUDIT_REDACTED.
 * Returns the number of values replaced.
 */
size_t audit_redact_json(struct json_t *value);

/* Writes the lowercase hex SHA-256 of the bytes to out, AUDIT_HASH_SIZE characters. */
void audit_sha256_hex(const void *data, size_t size, char out[AUDIT_HASH_SIZE]);

/*
 * Records config.load (old_cfg and old_rules NULL) or config.reload. The detail has the
 * SHA-256 of the config file (config_path NULL: the embedded config) and of each rule
 * file, and the probe and rule counts. A reload adds the probes (by name and
 * config_probe.fingerprint) and rules (by key and a hash of their fields) that were added,
 * removed or changed. Does nothing when audit is NULL. A failed write is logged.
 */
void audit_config_loaded(struct audit *audit, const char *actor, const char *action,
			 const char *config_path, const struct config *old_cfg,
			 const struct rule_set *old_rules, const struct config *cfg,
			 const struct rule_set *rules);

/* Records config.reload_rejected with the first line of errors and the config file's
 * SHA-256. Does nothing when audit is NULL. */
void audit_config_rejected(struct audit *audit, const char *actor, const char *config_path,
			   const char *errors);

/*
 * Detail objects for the silence and acknowledgement actions, built from non-secret
 * fields only (id, matchers, times, created_by, comment; rule key and fingerprint).
 * Callers free the returned JSON text.
 */
char *audit_silence_detail(const struct silence *s);
char *audit_ack_detail(const struct ack *a);

#endif
