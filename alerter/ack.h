/*
 * Acknowledgements: an operator's note that an alert is being handled. An acknowledged
 * alert sends no repeat notifications until it resolves or the acknowledgement expires.
 * The dispatcher applies that rule with ack_active(), and it calls ack_clear_on_resolve()
 * when the alert resolves. An alert is identified by its rule's key and its label fingerprint.
 * The set is stored in the state database (table `acks`) and kept in memory, so lookups
 * never read SQLite. Every change is written to SQLite before it is applied in memory.
 * Loop thread only.
 */
#ifndef TOCSIN_ACK_H
#define TOCSIN_ACK_H

#include <stddef.h>
#include <stdint.h>

struct statedb;

struct ack {
	char *rule; /* the evaluator's key of the rule */
	uint64_t fingerprint;
	char *created_by;
	char *comment;
	int64_t created_at_ms;
	int64_t expires_at_ms; /* 0: until the alert resolves */
};

struct ack_set;

/*
 * Creates the `acks` table when missing and loads every stored acknowledgement. Returns
 * NULL with *error set (caller frees). Free the set before closing db.
 */
struct ack_set *ack_set_open(struct statedb *db, char **error);
void ack_set_free(struct ack_set *set);

/* Reloads the set when another process changed the database since the last load.
 * Returns 1 when it reloaded, 0 when nothing changed, -1 on a SQLite error (logged). */
int ack_set_refresh(struct ack_set *set);
/* Loads the set from the table unconditionally, for a caller that rolled back a transaction
 * in which ack_create() already changed the set. Returns 0, or -1 (logged). */
int ack_set_reload(struct ack_set *set);

/*
 * Acknowledges the alert (rule, fingerprint), replacing an earlier acknowledgement of the
 * same alert. expires_at_ms is 0 for "until the alert resolves", or a time after now_ms.
 * Returns -1 with *error set (caller frees) naming the field: "rule: missing",
 * "created_by: missing", "expires_at: ... is not in the future", or the failed write.
 */
int ack_create(struct ack_set *set, const char *rule, uint64_t fingerprint, const char *created_by,
	       const char *comment, int64_t expires_at_ms, int64_t now_ms, char **error);

/* The acknowledgement of the alert, expired or not, or NULL. Valid until the next change
 * or refresh of the set. */
const struct ack *ack_get(const struct ack_set *set, const char *rule, uint64_t fingerprint);
/* The same, but NULL when the acknowledgement has expired at now_ms. */
const struct ack *ack_active(const struct ack_set *set, const char *rule, uint64_t fingerprint,
			     int64_t now_ms);

/* Deletes the alert's acknowledgement. Returns 1 when there was one, 0 when there was
 * none, -1 when the delete fails (logged; the acknowledgement stays). */
int ack_clear_on_resolve(struct ack_set *set, const char *rule, uint64_t fingerprint);

/* Calls fn for every acknowledgement, expired ones included, by fingerprint and rule. */
typedef void ack_list_fn(void *arg, const struct ack *a);
void ack_list(const struct ack_set *set, ack_list_fn *fn, void *arg);
size_t ack_count(const struct ack_set *set);

/* Deletes acknowledgements whose expiry is at or before now_ms. Returns the number
 * deleted or -1. */
int ack_prune(struct ack_set *set, int64_t now_ms);

#endif
