/*
 * The alerter's lifecycle, the alert store with its table, the reading of the transition
 * log, and the metrics; see alerter.h. Groups are in aggr.c, delivery in delivery.c.
 */
#include "alerter/alerter.h"

#include <event2/event.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerter/ack.h"
#include "alerter/alerter_impl.h"
#include "alerter/alerting_config.h"
#include "alerter/outbox.h"
#include "alerter/silence.h"
#include "collector/alert.h"
#include "collector/clock.h"
#include "collector/hash.h"
#include "collector/log.h"
#include "collector/statedb.h"
#include "collector/xalloc.h"

/* Transitions read from the log per statement, and applied per turn of the loop (in one
 * transaction, so one sync of the log file). */
#define INTAKE_BATCH    500
#define INTAKE_PER_TURN 5000
/* Handed-over transitions kept in memory at most; later ones are read from the log. */
#define HANDOVER_MAX 100000
/* How often silences and acks are checked for changes by other processes. */
#define REFRESH_INTERVAL_MS 1000
#define PRUNE_INTERVAL_MS   (3600 * 1000)
#define CURSOR_KEY          "alerter.transition_cursor"

static const char alerts_schema[] = "CREATE TABLE IF NOT EXISTS alerter_alerts ("
				    " rule TEXT NOT NULL,"
				    " fingerprint INTEGER NOT NULL,"
				    " ident_fingerprint INTEGER NOT NULL,"
				    " labels TEXT NOT NULL,"
				    " annotations TEXT NOT NULL,"
				    " firing INTEGER NOT NULL,"
				    " starts_at_ms INTEGER NOT NULL,"
				    " ends_at_ms INTEGER NOT NULL,"
				    " condition_ms INTEGER NOT NULL,"
				    " PRIMARY KEY (rule, fingerprint))";

int64_t al_wall_ms(void)
{
	return clock_wall_ms();
}

static int64_t to_sql(uint64_t v)
{
	int64_t s;

	memcpy(&s, &v, sizeof(s));
	return s;
}

static uint64_t from_sql(int64_t s)
{
	uint64_t v;

	memcpy(&v, &s, sizeof(v));
	return v;
}

uint64_t al_labels_fingerprint(const struct label *v, size_t count)
{
	return label_set_hash(HASH_FNV_OFFSET, v, count);
}

static struct label *labels_dup(const struct label *v, size_t count)
{
	struct label *out = xcalloc(count ? count : 1, sizeof(*out));

	for (size_t i = 0; i < count; i++) {
		out[i].name = xstrdup(v[i].name);
		out[i].value = xstrdup(v[i].value);
	}
	return out;
}

static void labels_free(struct label *v, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free((char *)v[i].name);
		free((char *)v[i].value);
	}
	free(v);
}

/* ---- the store --------------------------------------------------------------------- */

static size_t alert_bucket(const struct alerter *a, uint64_t fp)
{
	return (size_t)(fp ^ (fp >> 29)) & (a->alert_bucket_count - 1);
}

struct al_alert *al_alert_find(struct alerter *a, const char *rule, uint64_t fp)
{
	for (struct al_alert *al = a->alert_buckets[alert_bucket(a, fp)]; al != NULL;
	     al = al->hash_next)
		if (al->fp == fp && strcmp(al->rule, rule) == 0)
			return al;
	return NULL;
}

static void alert_grow(struct alerter *a)
{
	size_t count = a->alert_bucket_count * 2;
	struct al_alert **old = a->alert_buckets;
	size_t old_count = a->alert_bucket_count;

	a->alert_buckets = xcalloc(count, sizeof(*a->alert_buckets));
	a->alert_bucket_count = count;
	for (size_t i = 0; i < old_count; i++) {
		struct al_alert *al = old[i];

		while (al != NULL) {
			struct al_alert *next = al->hash_next;
			size_t b = alert_bucket(a, al->fp);

			al->hash_next = a->alert_buckets[b];
			a->alert_buckets[b] = al;
			al = next;
		}
	}
	free(old);
}

static struct al_alert *alert_add(struct alerter *a, const char *rule, const struct label *labels,
				  size_t label_count)
{
	struct al_alert *al = xcalloc(1, sizeof(*al));
	size_t b;

	if (a->alert_count + 1 > a->alert_bucket_count)
		alert_grow(a);
	al->rule = xstrdup(rule);
	al->labels = labels_dup(labels, label_count);
	al->label_count = label_count;
	al->fp = al_labels_fingerprint(labels, label_count);
	b = alert_bucket(a, al->fp);
	al->hash_next = a->alert_buckets[b];
	a->alert_buckets[b] = al;
	a->alert_count++;
	return al;
}

static void alert_free(struct al_alert *al)
{
	free(al->rule);
	labels_free(al->labels, al->label_count);
	labels_free(al->annotations, al->annotation_count);
	free(al);
}

/* Unlinks al from the store and frees it. */
static void alert_remove(struct alerter *a, struct al_alert *al)
{
	struct al_alert **pp = &a->alert_buckets[alert_bucket(a, al->fp)];

	while (*pp != al)
		pp = &(*pp)->hash_next;
	*pp = al->hash_next;
	a->alert_count--;
	alert_free(al);
}

sqlite3_stmt *al_prepare(struct alerter *a, const char *sql)
{
	sqlite3_stmt *st = NULL;

	for (size_t i = 0; i < a->stmt_count; i++) {
		if (a->stmts[i].sql == sql) {
			sqlite3_reset(a->stmts[i].stmt);
			sqlite3_clear_bindings(a->stmts[i].stmt);
			return a->stmts[i].stmt;
		}
	}
	if (sqlite3_prepare_v2(statedb_sqlite(a->db), sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	if (a->stmt_count < sizeof(a->stmts) / sizeof(a->stmts[0]))
		a->stmts[a->stmt_count++] = (struct al_stmt){sql, st};
	else
		log_fatal("alerter",
			  "the prepared statement cache is full; raise the size of alerter.stmts");
	return st;
}

static int exec_row(struct alerter *a, const char *sql, const struct al_alert *al, bool put)
{
	sqlite3 *db = statedb_sqlite(a->db);
	sqlite3_stmt *st = al_prepare(a, sql);
	int rc = st != NULL ? SQLITE_OK : SQLITE_ERROR;

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, al->rule, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, to_sql(al->fp));
		if (put) {
			char *labels = statedb_labels_json(al->labels, al->label_count);
			char *ann = statedb_labels_json(al->annotations, al->annotation_count);

			sqlite3_bind_int64(st, 3, to_sql(al->ident_fp));
			sqlite3_bind_text(st, 4, labels, -1, free);
			sqlite3_bind_text(st, 5, ann, -1, free);
			sqlite3_bind_int(st, 6, al->firing);
			sqlite3_bind_int64(st, 7, al->starts_at_ms);
			sqlite3_bind_int64(st, 8, al->ends_at_ms);
			sqlite3_bind_int64(st, 9, al->condition_ms);
		}
		rc = sqlite3_step(st);
		sqlite3_reset(st);
	}
	if (rc != SQLITE_DONE) {
		log_error("alerter", NULL, "state database %s: writing alert %s failed: %s",
			  statedb_path(a->db), al->rule, sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

static int alert_put_row(struct alerter *a, const struct al_alert *al)
{
	return exec_row(a,
			"INSERT OR REPLACE INTO alerter_alerts (rule, fingerprint, "
			"ident_fingerprint, labels, annotations, firing, starts_at_ms, ends_at_ms, "
			"condition_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
			al, true);
}

int al_alert_delete_row(struct alerter *a, const struct al_alert *al)
{
	return exec_row(a, "DELETE FROM alerter_alerts WHERE rule = ?1 AND fingerprint = ?2", al,
			false);
}

void al_alert_release(struct alerter *a, struct al_alert *al)
{
	if (al->group_refs > 0)
		al->group_refs--;
	if (al->group_refs == 0 && !al->firing) {
		al_alert_delete_row(a, al);
		alert_remove(a, al);
	}
}

static int load_alerts(struct alerter *a, char **error)
{
	sqlite3 *db = statedb_sqlite(a->db);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db,
				    "SELECT rule, fingerprint, ident_fingerprint, labels, "
				    "annotations, firing, starts_at_ms, ends_at_ms, condition_ms "
				    "FROM alerter_alerts",
				    -1, &st, NULL);

	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct label *labels = NULL;
		size_t label_count = 0;
		struct label *ann = NULL;
		size_t ann_count = 0;
		struct al_alert *al;

		if (statedb_labels_parse((const char *)sqlite3_column_text(st, 3), &labels,
					 &label_count) < 0 ||
		    statedb_labels_parse((const char *)sqlite3_column_text(st, 4), &ann,
					 &ann_count) < 0) {
			statedb_labels_free(labels, label_count);
			log_error("alerter", NULL,
				  "state database %s: an alert of rule %s has unreadable labels; "
				  "skipped",
				  statedb_path(a->db), (const char *)sqlite3_column_text(st, 0));
			rc = SQLITE_OK;
			continue;
		}
		al = alert_add(a, (const char *)sqlite3_column_text(st, 0), labels, label_count);
		statedb_labels_free(labels, label_count);
		al->annotations = labels_dup(ann, ann_count);
		al->annotation_count = ann_count;
		statedb_labels_free(ann, ann_count);
		al->ident_fp = from_sql(sqlite3_column_int64(st, 2));
		al->firing = sqlite3_column_int(st, 5) != 0;
		al->starts_at_ms = sqlite3_column_int64(st, 6);
		al->ends_at_ms = sqlite3_column_int64(st, 7);
		al->condition_ms = sqlite3_column_int64(st, 8);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		*error = xasprintf("state database %s: reading table alerter_alerts failed: %s",
				   statedb_path(a->db), sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

static void store_clear(struct alerter *a)
{
	for (size_t i = 0; i < a->alert_bucket_count; i++) {
		struct al_alert *al = a->alert_buckets[i];

		while (al != NULL) {
			struct al_alert *next = al->hash_next;

			alert_free(al);
			al = next;
		}
		a->alert_buckets[i] = NULL;
	}
	a->alert_count = 0;
}

int al_store_reload(struct alerter *a, char **error)
{
	store_clear(a);
	return load_alerts(a, error);
}

/* ---- the transition log ------------------------------------------------------------ */

static void set_annotations(struct al_alert *al, const struct statedb_transition *t)
{
	labels_free(al->annotations, al->annotation_count);
	al->annotations = labels_dup(t->annotations, t->annotation_count);
	al->annotation_count = t->annotation_count;
}

/* Resolves alert al at time_ms; its groups notify the end at their next check. */
static void resolve(struct alerter *a, struct al_alert *al, int64_t time_ms)
{
	if (!al->firing)
		return;
	/* An acknowledgement ends with the alert it acknowledged. */
	ack_clear_on_resolve(a->acks, al->rule, al->fp);
	al->firing = false;
	al->ends_at_ms = time_ms;
	al->condition_ms = time_ms;
	if (al->group_refs == 0) {
		al_alert_delete_row(a, al);
		alert_remove(a, al);
		return;
	}
	alert_put_row(a, al);
}

/*
 * A threshold alert that moves between warning and critical ends the alert of the level
 * it left: that one carries the old severity, so it is a different label set.
 */
static void resolve_level_left(struct alerter *a, const struct statedb_transition *t)
{
	const struct alert_change *c = &t->change;
	struct label *old;
	struct al_alert *al;
	bool had_severity = false;

	if (c->from_level == c->to_level || c->from_level == ALERT_LEVEL_OK)
		return;
	old = xcalloc(t->label_count ? t->label_count : 1, sizeof(*old));
	for (size_t i = 0; i < t->label_count; i++) {
		old[i] = t->labels[i];
		if (strcmp(old[i].name, "severity") == 0) {
			old[i].value = alert_level_name(c->from_level);
			had_severity = true;
		}
	}
	if (had_severity) {
		al = al_alert_find(a, t->rule, al_labels_fingerprint(old, t->label_count));
		if (al != NULL)
			resolve(a, al, t->time_ms);
	}
	free(old);
}

static void apply_transition(void *arg, const struct statedb_transition *t)
{
	struct alerter *a = arg;
	const struct alert_change *c = &t->change;
	uint64_t fp = al_labels_fingerprint(t->labels, t->label_count);
	struct al_alert *al = al_alert_find(a, t->rule, fp);
	bool firing = !c->resolved && (c->to_state == ALERT_FIRING || c->to_state == ALERT_STALE);

	a->cursor = t->id;
	a->stats.transitions++;
	/* Changes inside a flap episode, to pending, and of stale instances under `keep`
	 * are recorded by the evaluator but not notified. */
	if (!c->notify)
		return;

	if (!firing) {
		if (al != NULL)
			resolve(a, al, t->time_ms);
		return;
	}

	resolve_level_left(a, t);
	if (al == NULL) {
		al = alert_add(a, t->rule, t->labels, t->label_count);
		al->starts_at_ms = t->time_ms;
	} else if (!al->firing) {
		al->starts_at_ms = t->time_ms;
	}
	al->ident_fp = t->fingerprint;
	al->firing = true;
	al->ends_at_ms = 0;
	al->condition_ms = t->time_ms;
	set_annotations(al, t);
	alert_put_row(a, al);
	al_groups_route(a, al, al_wall_ms());
}

static int save_cursor(struct alerter *a)
{
	char text[24];

	snprintf(text, sizeof text, "%lld", (long long)a->cursor);
	return statedb_kv_put(a->db, CURSOR_KEY, text);
}

/* ---- the hand-over ------------------------------------------------------------------ */

static struct label *label_array_dup(const struct label *v, size_t count)
{
	return count > 0 ? labels_dup(v, count) : NULL;
}

static void handover_entry_free(struct statedb_transition *t)
{
	free((char *)t->group);
	free((char *)t->rule);
	free((char *)t->alertname);
	if (t->labels != NULL)
		labels_free((struct label *)t->labels, t->label_count);
	if (t->annotations != NULL)
		labels_free((struct label *)t->annotations, t->annotation_count);
}

static void handover_clear(struct alerter *a)
{
	for (size_t i = a->handover_head; i < a->handover_count; i++)
		handover_entry_free(&a->handover[i]);
	a->handover_head = 0;
	a->handover_count = 0;
}

/* Keeps a copy of t for the intake. Returns false when t must be read from the log. */
static bool handover_add(struct alerter *a, const struct statedb_transition *t)
{
	struct statedb_transition *copy;

	if (!statedb_transition_committed(a->db, t->id) ||
	    a->handover_count - a->handover_head >= HANDOVER_MAX)
		return false;
	if (a->handover_count > 0 && t->id <= a->handover[a->handover_count - 1].id)
		return false; /* out of order: the log has the order */
	/* Drop the consumed entries before growing, so that the array contains only the
	 * entries that wait. */
	if (a->handover_head > 0 && a->handover_count == a->handover_capacity) {
		a->handover_count -= a->handover_head;
		memmove(a->handover, a->handover + a->handover_head,
			a->handover_count * sizeof(*a->handover));
		a->handover_head = 0;
	}
	a->handover = xreallocarray_grow(a->handover, &a->handover_capacity, a->handover_count + 1,
					 sizeof(*a->handover));
	copy = &a->handover[a->handover_count++];
	*copy = *t;
	copy->group = xstrdup(t->group);
	copy->rule = xstrdup(t->rule);
	copy->alertname = xstrdup(t->alertname);
	copy->labels = label_array_dup(t->labels, t->label_count);
	copy->annotations = label_array_dup(t->annotations, t->annotation_count);
	return true;
}

/*
 * Applies up to `limit` transitions after the cursor. They come from the hand-over while
 * it continues the cursor without a gap, and from the log otherwise: rows that another
 * process wrote, or that the evaluator handed over before its commit failed and wrote
 * again later. Returns the number applied, or -1 when reading the log failed.
 */
static int intake_apply(struct alerter *a, int limit, int *from_log)
{
	int applied = 0;

	*from_log = 0;

	while (applied < limit) {
		int want = limit - applied;
		int n;

		/* Entries at or before the cursor were read from the log already. */
		while (a->handover_head < a->handover_count &&
		       a->handover[a->handover_head].id <= a->cursor)
			handover_entry_free(&a->handover[a->handover_head++]);
		if (a->handover_head < a->handover_count) {
			struct statedb_transition *t = &a->handover[a->handover_head];

			if (t->id == a->cursor + 1) {
				apply_transition(a, t);
				handover_entry_free(t);
				a->handover_head++;
				applied++;
				continue;
			}
			/* Read the gap before t from the log. */
			if (t->id - a->cursor - 1 < want)
				want = (int)(t->id - a->cursor - 1);
		}
		if (want > INTAKE_BATCH)
			want = INTAKE_BATCH;
		n = statedb_transitions_after(a->db, a->cursor, (size_t)want, apply_transition, a);
		if (n < 0)
			return -1;
		applied += n;
		*from_log += n;
		if (n < want && a->handover_head < a->handover_count) {
			/* The log contains nothing before the next handed-over transition,
			 * which is committed, so that transition follows the cursor. */
			struct statedb_transition *t = &a->handover[a->handover_head];

			if (t->id > a->cursor) {
				apply_transition(a, t);
				handover_entry_free(t);
				a->handover_head++;
				applied++;
			}
			continue;
		}
		if (n < want)
			break;
	}
	return applied;
}

/* Applies the transitions after the cursor, up to INTAKE_PER_TURN in one transaction. */
static void intake(evutil_socket_t fd, short what, void *arg)
{
	struct alerter *a = arg;
	int64_t started = al_wall_ms();
	int64_t first = a->cursor;
	int from_log = 0;
	int n = 0;

	(void)fd;
	(void)what;
	if (a->stopping)
		return;
	if (statedb_begin(a->db) == 0) {
		n = intake_apply(a, INTAKE_PER_TURN, &from_log);
		if (n < 0 || save_cursor(a) < 0 || statedb_commit(a->db) < 0) {
			/* The memory may be ahead of the table now. The next turn reads the same
			 * transitions from the log again, and applying one twice changes nothing. */
			statedb_rollback(a->db);
			handover_clear(a);
			a->cursor = first;
			n = 0;
		}
	}
	if (n == INTAKE_PER_TURN)
		event_active(a->intake_ev, 0, 0);
	if (a->cursor != first)
		log_debug("alerter", NULL,
			  "applied transitions %lld to %lld (%d read from the log) in %lld ms",
			  (long long)first + 1, (long long)a->cursor, from_log,
			  (long long)(al_wall_ms() - started));
	al_groups_schedule(a);
}

void alerter_on_transition(void *arg, const struct statedb_transition *t)
{
	struct alerter *a = arg;

	if (a == NULL || a->stopping)
		return;
	handover_add(a, t);
	event_active(a->intake_ev, 0, 0);
}

/* ---- housekeeping ------------------------------------------------------------------ */

static void arm_refresh(struct alerter *a)
{
	struct timeval tv = {REFRESH_INTERVAL_MS / 1000, (REFRESH_INTERVAL_MS % 1000) * 1000};

	evtimer_add(a->refresh_ev, &tv);
}

static void refresh(evutil_socket_t fd, short what, void *arg)
{
	struct alerter *a = arg;
	int64_t now = al_wall_ms();

	(void)fd;
	(void)what;
	silence_set_refresh(a->silences);
	ack_set_refresh(a->acks);
	if (now - a->last_prune_ms >= PRUNE_INTERVAL_MS) {
		a->last_prune_ms = now;
		silence_prune(a->silences, now, SILENCE_RETENTION_DEFAULT_MS);
		ack_prune(a->acks, now);
		outbox_prune(a->outbox, now - a->opts.keep_delivered_ms);
		statedb_transitions_prune(a->db, now - a->opts.keep_delivered_ms);
	}
	/* A transition that reached the log without the hook (another process) is read too,
	 * and due rows that no event woke (more than a pass reads) start. */
	event_active(a->intake_ev, 0, 0);
	al_delivery_kick(a);
	arm_refresh(a);
}

/* ---- lifecycle --------------------------------------------------------------------- */

/* The cursor: stored, or on the first start the end of the log, so that a history of
 * transitions from before the alerter existed is not sent now. */
static int load_cursor(struct alerter *a, char **error)
{
	char *text = statedb_kv_get(a->db, CURSOR_KEY);
	sqlite3_stmt *st = NULL;
	sqlite3 *db = statedb_sqlite(a->db);

	if (text != NULL) {
		a->cursor = strtoll(text, NULL, 10);
		free(text);
		return 0;
	}
	if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(id), 0) FROM transitions", -1, &st, NULL) !=
		SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		*error = xasprintf("state database %s: reading the transition log failed: %s",
				   statedb_path(a->db), sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return -1;
	}
	a->cursor = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return save_cursor(a) < 0 ? -1 : 0;
}

struct alerter *alerter_new(struct event_base *base, struct statedb *db,
			    struct series_registry *reg, const struct alerter_options *opts,
			    char **error)
{
	struct alerter *a;
	char *sqlerr = NULL;

	if (db == NULL) {
		*error = xstrdup("alerting needs the state database, which could not be opened");
		return NULL;
	}
	a = xcalloc(1, sizeof(*a));
	a->base = base;
	a->db = db;
	a->reg = reg;
	a->opts =
	    (struct alerter_options){ALERTER_DEFAULT_MIN_TICK_MS, ALERTER_DEFAULT_MAX_IN_FLIGHT,
				     ALERTER_DEFAULT_KEEP_DELIVERED_MS};
	if (opts != NULL)
		a->opts = *opts;
	if (a->opts.max_in_flight == 0)
		a->opts.max_in_flight = 1;
	backoff_random_seed_system(&a->random);
	a->alert_bucket_count = 64;
	a->alert_buckets = xcalloc(a->alert_bucket_count, sizeof(*a->alert_buckets));
	a->last_prune_ms = al_wall_ms();

	if (sqlite3_exec(statedb_sqlite(db), alerts_schema, NULL, NULL, &sqlerr) != SQLITE_OK) {
		*error = xasprintf("state database %s: creating table alerter_alerts failed: %s",
				   statedb_path(db), sqlerr ? sqlerr : "unknown error");
		sqlite3_free(sqlerr);
		goto fail;
	}
	a->outbox = outbox_open(db, error);
	if (a->outbox == NULL)
		goto fail;
	outbox_set_random(a->outbox, backoff_random_next, &a->random);
	a->silences = silence_set_open(db, error);
	if (a->silences == NULL)
		goto fail;
	a->acks = ack_set_open(db, error);
	if (a->acks == NULL)
		goto fail;
	if (load_cursor(a, error) < 0 || load_alerts(a, error) < 0 || al_groups_open(a, error) < 0)
		goto fail;

	a->intake_ev = event_new(base, -1, 0, intake, a);
	a->flush_ev = evtimer_new(base, al_groups_on_flush_timer, a);
	a->deliver_ev = evtimer_new(base, al_delivery_on_timer, a);
	a->refresh_ev = evtimer_new(base, refresh, a);
	a->results_ev = event_new(base, -1, 0, al_delivery_on_results, a);
	arm_refresh(a);
	log_info("alerter", NULL, "started: %zu alerts in the store, transition cursor %lld",
		 a->alert_count, (long long)a->cursor);
	return a;

fail:
	alerter_free(a);
	return NULL;
}

void alerter_apply(struct alerter *a, const struct alerting_config *ac)
{
	if (a == NULL)
		return;
	/* Attempts in flight hold the previous config's receiver options. */
	al_delivery_cancel_all(a);
	a->ac = ac;
	al_delivery_apply(a);
	al_groups_rebuild(a, al_wall_ms());
	event_active(a->intake_ev, 0, 0);
	al_delivery_kick(a);
}

void alerter_stop(struct alerter *a)
{
	if (a == NULL)
		return;
	a->stopping = true;
	al_delivery_cancel_all(a);
	if (a->intake_ev != NULL) {
		event_del(a->intake_ev);
		event_del(a->flush_ev);
		event_del(a->deliver_ev);
		event_del(a->refresh_ev);
		event_del(a->results_ev);
	}
}

void alerter_free(struct alerter *a)
{
	if (a == NULL)
		return;
	alerter_stop(a);
	if (a->intake_ev != NULL) {
		event_free(a->intake_ev);
		event_free(a->flush_ev);
		event_free(a->deliver_ev);
		event_free(a->refresh_ev);
		event_free(a->results_ev);
	}
	al_groups_free(a);
	al_delivery_free(a);
	store_clear(a);
	free(a->alert_buckets);
	handover_clear(a);
	free(a->handover);
	for (size_t i = 0; i < a->stmt_count; i++)
		sqlite3_finalize(a->stmts[i].stmt);
	ack_set_free(a->acks);
	silence_set_free(a->silences);
	outbox_close(a->outbox);
	free(a);
}

struct silence_set *alerter_silences(struct alerter *a)
{
	return a != NULL ? a->silences : NULL;
}

struct ack_set *alerter_acks(struct alerter *a)
{
	return a != NULL ? a->acks : NULL;
}

struct outbox *alerter_outbox(struct alerter *a)
{
	return a != NULL ? a->outbox : NULL;
}

void alerter_list_alerts(struct alerter *a, int64_t now_ms, alerter_alert_fn *fn, void *arg)
{
	for (size_t i = 0; i < a->alert_bucket_count; i++) {
		for (struct al_alert *al = a->alert_buckets[i]; al != NULL; al = al->hash_next) {
			struct alerter_alert_view v = {
			    .rule = al->rule,
			    .fingerprint = al->fp,
			    .labels = al->labels,
			    .label_count = al->label_count,
			    .annotations = al->annotations,
			    .annotation_count = al->annotation_count,
			    .firing = al->firing,
			    .starts_at_ms = al->starts_at_ms,
			    .ends_at_ms = al->ends_at_ms,
			};

			if (al->firing) {
				al_alert_suppression(a, al, now_ms, &v.silenced_by, &v.inhibited,
						     &v.inhibited_by);
				v.ack = ack_active(a->acks, al->rule, al->fp, now_ms);
			}
			fn(arg, &v);
		}
	}
}

bool alerter_alert_firing(struct alerter *a, const char *rule, uint64_t fingerprint)
{
	const struct al_alert *al = al_alert_find(a, rule, fingerprint);

	return al != NULL && al->firing;
}

void alerter_get_stats(const struct alerter *a, struct alerter_stats *out)
{
	*out = a->stats;
	out->alerts = a->alert_count;
	out->groups = a->group_count;
	out->in_flight = a->in_flight;
}

/* ---- metrics ----------------------------------------------------------------------- */

static const struct metric_desc d_notifications = {
    "tocsin_notifications_total",
    "Notification deliveries by receiver and result: delivered, failed (to be retried) or "
    "dead (given up).",
    METRIC_COUNTER};
static const struct metric_desc d_failures = {
    "tocsin_notification_failures_total",
    "Failed delivery attempts by receiver and reason (\"429\", \"5xx\", \"timeout\", ...).",
    METRIC_COUNTER};
/* One histogram: the three families share the help text, as the exposition needs. */
#define LATENCY_HELP                                                                               \
	"Time from the evaluator seeing a change to the first delivery of its notification."
static const struct metric_desc d_latency_bucket = {"tocsin_notification_latency_seconds_bucket",
						    LATENCY_HELP, METRIC_HISTOGRAM};
static const struct metric_desc d_latency_sum = {"tocsin_notification_latency_seconds_sum",
						 LATENCY_HELP, METRIC_HISTOGRAM};
static const struct metric_desc d_latency_count = {"tocsin_notification_latency_seconds_count",
						   LATENCY_HELP, METRIC_HISTOGRAM};
static const struct metric_desc d_outbox = {
    "tocsin_outbox_entries", "Outbox rows by state (queued, sending, retrying, delivered, dead).",
    METRIC_GAUGE};
static const struct metric_desc d_breaker = {
    "tocsin_receiver_circuit_breaker_state",
    "1 for the current state of each receiver integration's circuit breaker, 0 for the others.",
    METRIC_GAUGE};
static const struct metric_desc d_breaker_opened = {
    "tocsin_receiver_circuit_breaker_opened_total",
    "How often each receiver integration's circuit breaker opened.", METRIC_COUNTER};
static const struct metric_desc d_alerts = {
    "tocsin_alerts",
    "Alerts in the alerter's store by state: active (firing and notified), silenced, "
    "inhibited, acknowledged, or resolved (its resolved notification not sent yet, or kept "
    "for Alertmanager re-sends).",
    METRIC_GAUGE};

static const double latency_bounds[AL_LATENCY_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1,   2.5,
							  5,    10,  30,   60,  300, 3600};

static void set_metric(struct alerter *a, const struct metric_desc *d, const struct label *l,
		       size_t n, double value, int64_t now)
{
	struct series *s = series_intern(a->reg, d, l, n);

	if (s != NULL)
		series_set(s, value, now);
}

void al_record_latency(struct alerter *a, double seconds)
{
	for (size_t i = 0; i < AL_LATENCY_BUCKETS; i++)
		if (seconds <= latency_bounds[i])
			a->latency_buckets[i]++;
	a->latency_buckets[AL_LATENCY_BUCKETS]++;
	a->latency_sum += seconds;
	a->latency_count++;
}

struct al_counter *al_counter_for(struct alerter *a, const char *receiver, const char *reason)
{
	for (size_t i = 0; i < a->counter_count; i++) {
		struct al_counter *c = &a->counters[i];

		if (strcmp(c->receiver, receiver) == 0 &&
		    (reason == NULL ? c->reason == NULL
				    : c->reason != NULL && strcmp(c->reason, reason) == 0))
			return c;
	}
	a->counters = xrealloc(a->counters, (a->counter_count + 1) * sizeof(*a->counters));
	a->counters[a->counter_count] = (struct al_counter){
	    .receiver = xstrdup(receiver),
	    .reason = reason != NULL ? xstrdup(reason) : NULL,
	};
	return &a->counters[a->counter_count++];
}

static void refresh_alert_metrics(struct alerter *a, int64_t now)
{
	double counts[5] = {0};
	static const char *const names[5] = {"active", "silenced", "inhibited", "acknowledged",
					     "resolved"};

	for (size_t i = 0; i < a->alert_bucket_count; i++) {
		for (struct al_alert *al = a->alert_buckets[i]; al != NULL; al = al->hash_next) {
			const char *silence = NULL;
			bool inhibited = false;
			uint64_t by = 0;

			if (!al->firing) {
				counts[4]++;
				continue;
			}
			al_alert_suppression(a, al, now, &silence, &inhibited, &by);
			if (silence != NULL)
				counts[1]++;
			else if (inhibited)
				counts[2]++;
			else if (ack_active(a->acks, al->rule, al->fp, now) != NULL)
				counts[3]++;
			else
				counts[0]++;
		}
	}
	for (size_t k = 0; k < 5; k++) {
		struct label l = {"state", names[k]};

		set_metric(a, &d_alerts, &l, 1, counts[k], now);
	}
}

void alerter_refresh_metrics(struct alerter *a)
{
	int64_t now = al_wall_ms();
	struct outbox_counts oc;
	char le[32];

	if (a == NULL || a->reg == NULL)
		return;
	for (size_t i = 0; i < a->counter_count; i++) {
		struct al_counter *c = &a->counters[i];
		struct label l[2] = {{"receiver", c->receiver}, {"result", "delivered"}};

		if (c->reason != NULL) {
			l[1] = (struct label){"reason", c->reason};
			set_metric(a, &d_failures, l, 2, (double)c->failed, now);
			continue;
		}
		set_metric(a, &d_notifications, l, 2, (double)c->delivered, now);
		l[1].value = "failed";
		set_metric(a, &d_notifications, l, 2, (double)c->failed, now);
		l[1].value = "dead";
		set_metric(a, &d_notifications, l, 2, (double)c->dead, now);
	}
	for (size_t i = 0; i <= AL_LATENCY_BUCKETS; i++) {
		struct label l = {"le", le};

		if (i < AL_LATENCY_BUCKETS)
			snprintf(le, sizeof le, "%g", latency_bounds[i]);
		else
			snprintf(le, sizeof le, "+Inf");
		set_metric(a, &d_latency_bucket, &l, 1, (double)a->latency_buckets[i], now);
	}
	set_metric(a, &d_latency_sum, NULL, 0, a->latency_sum, now);
	set_metric(a, &d_latency_count, NULL, 0, (double)a->latency_count, now);

	if (outbox_counts(a->outbox, NULL, &oc) == 0) {
		for (int s = 0; s < OUTBOX_STATE_COUNT; s++) {
			struct label l = {"state", outbox_state_name(s)};

			set_metric(a, &d_outbox, &l, 1, (double)oc.state[s], now);
		}
	}
	for (size_t i = 0; i < a->integration_count; i++) {
		struct dl_integration *in = a->integrations[i];
		char index[16];
		struct label l[4] = {{"integration", index},
				     {"receiver", in->receiver},
				     {"state", ""},
				     {"type", in->type->name}};

		if (!in->present)
			continue;
		snprintf(index, sizeof index, "%d", in->index);
		for (int s = BREAKER_CLOSED; s <= BREAKER_HALF_OPEN; s++) {
			l[2].value = breaker_state_name(s);
			set_metric(a, &d_breaker, l, 4, in->breaker.state == (enum breaker_state)s,
				   now);
		}
		l[2] = l[3];
		set_metric(a, &d_breaker_opened, l, 3, (double)in->breaker.opened_total, now);
	}
	refresh_alert_metrics(a, now);
}
