/*
 * Silences: label matchers plus a time window during which matching alerts send no
 * notification, as in Alertmanager. The set is stored in the state database (table
 * `silences`) and kept in memory, so that silence_matches() on the loop never reads
 * SQLite. Every change is written to SQLite before it is applied in memory. Loop thread
 * only.
 */
#ifndef TOCSIN_SILENCE_H
#define TOCSIN_SILENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/expr.h"
#include "collector/series.h"

struct statedb;

/* A UUID in its 36-character text form plus the NUL. */
#define SILENCE_ID_SIZE 37
/* How long an expired silence is kept for listing: 5 days, Alertmanager's default
 * --data.retention (120h). */
#define SILENCE_RETENTION_DEFAULT_MS (5 * 24 * 3600 * INT64_C(1000))

/* One matcher: `name op "value"` with PromQL's operators and anchored POSIX regexes. */
struct silence_matcher {
	char *name;
	enum expr_match_op op;
	char *value;
};

struct silence {
	char id[SILENCE_ID_SIZE]; /* UUID version 4 */
	struct silence_matcher *matchers;
	size_t matcher_count;
	int64_t starts_at_ms;
	int64_t ends_at_ms; /* > starts_at_ms */
	char *created_by;
	char *comment;
	int64_t created_at_ms;
	int64_t updated_at_ms;
};

enum silence_state {
	SILENCE_PENDING, /* now < starts_at */
	SILENCE_ACTIVE,  /* starts_at <= now < ends_at */
	SILENCE_EXPIRED, /* ends_at <= now */
};

enum silence_filter {
	SILENCE_FILTER_ACTIVE,
	SILENCE_FILTER_PENDING,
	SILENCE_FILTER_EXPIRED,
	SILENCE_FILTER_ALL,
};

/* The request of silence_create(). Its strings are copied. */
struct silence_spec {
	const struct silence_matcher *matchers;
	size_t matcher_count;
	int64_t starts_at_ms; /* 0 or a time in the past: now */
	int64_t ends_at_ms;
	const char *created_by;
	const char *comment;
};

struct silence_set;

/*
 * Creates the `silences` table when missing and loads every stored silence. Returns NULL
 * with *error set (caller frees) when the table cannot be created or read. Free the set
 * before closing db, because the set keeps prepared statements on db's connection.
 */
struct silence_set *silence_set_open(struct statedb *db, char **error);
void silence_set_free(struct silence_set *set);

/*
 * Reloads the set when another process (`tocsind --silence add`, for instance) changed
 * the database since the last load. Cheap when nothing changed: one PRAGMA data_version.
 * Returns 1 when it reloaded, 0 when nothing changed, -1 on a SQLite error (logged, and
 * the set keeps its previous content).
 */
int silence_set_refresh(struct silence_set *set);
/*
 * Loads the set from the table unconditionally, for a caller that rolled back a
 * transaction in which silence_create() or silence_expire() already changed the set.
 * Returns 0, or -1 on a SQLite error (logged, and the set keeps its content).
 */
int silence_set_reload(struct silence_set *set);

/*
 * Validates spec and stores a new silence. Returns 0 and writes the new id to `id`, or
 * -1 with *error set (caller frees) to a message that starts with the field at fault:
 * "matchers[1].value: invalid regex ...", "ends_at: ...", "created_by: missing".
 * Rules: at least one matcher, valid label names, regexes that compile, at least one
 * matcher that does not match the empty string, ends_at after starts_at and after now,
 * a non-empty created_by and comment.
 */
int silence_create(struct silence_set *set, const struct silence_spec *spec, int64_t now_ms,
		   char id[SILENCE_ID_SIZE], char **error);

/*
 * Ends the silence `id` at now_ms (a pending silence gets starts_at = ends_at = now).
 * Returns -1 with *error set when the id is not found, when the silence is already
 * expired, or when the write fails.
 */
int silence_expire(struct silence_set *set, const char *id, int64_t now_ms, char **error);

/* The silence with this id, or NULL. Valid until the next change or refresh of the set. */
const struct silence *silence_get(const struct silence_set *set, const char *id);

enum silence_state silence_state(const struct silence *s, int64_t now_ms);
/* "pending", "active" or "expired". */
const char *silence_state_name(enum silence_state state);

/* Calls fn for each silence that passes the filter at now_ms, oldest created first. */
typedef void silence_list_fn(void *arg, const struct silence *s);
void silence_list(const struct silence_set *set, enum silence_filter filter, int64_t now_ms,
		  silence_list_fn *fn, void *arg);
size_t silence_count(const struct silence_set *set);

/*
 * Returns the id of an active silence whose matchers all pass for these labels (a
 * missing label matches as the empty string), the oldest created when several do, or
 * NULL. The id is valid until the next change or refresh of the set. No SQLite access.
 */
const char *silence_matches(const struct silence_set *set, const struct label *labels,
			    size_t label_count, int64_t now_ms);

/* Deletes silences that expired before now_ms - retention_ms. Returns the number deleted
 * or -1 when the delete fails. */
int silence_prune(struct silence_set *set, int64_t now_ms, int64_t retention_ms);

/*
 * Parses one matcher as written on a command line or in an API request: NAME OP VALUE
 * with OP one of = != =~ !~ and VALUE a PromQL string ("...", '...' or `...`) or, as
 * amtool accepts, unquoted text up to the end. Fills *m (free with silence_matcher_clear)
 * or returns -1 with *error set (caller frees).
 */
int silence_matcher_parse(const char *text, struct silence_matcher *m, char **error);
void silence_matcher_clear(struct silence_matcher *m);
/* "=", "!=", "=~" or "!~". */
const char *silence_op_name(enum expr_match_op op);
/* Renders name op "value" with the value quoted as PromQL reads it. Caller frees. */
char *silence_matcher_format(const struct silence_matcher *m);

#endif
