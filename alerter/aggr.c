/*
 * Aggregation groups and their notification log, with Alertmanager's timing: a group
 * sends its first notification group_wait after it formed (at once when its first alert
 * started longer ago than that), then checks every group_interval. A check sends when an
 * alert fires that the last notification did not list as firing, when an alert that it
 * listed has resolved, or when repeat_interval has passed since the last notification
 * and an alert that is not acknowledged still fires. Silenced and inhibited alerts are
 * left out; a muted route sends nothing until the check after the mute ends.
 *
 * The outbox rows of all notifications of one timer turn and the groups' logs are
 * written in one transaction. When it fails, the store and the groups are read back
 * from the tables, so memory never claims a notification that the outbox does not hold.
 */
#include <event2/event.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerter/ack.h"
#include "alerter/alerter_impl.h"
#include "alerter/alerting_config.h"
#include "alerter/am_forward.h"
#include "alerter/inhibit.h"
#include "alerter/notification.h"
#include "alerter/outbox.h"
#include "alerter/route.h"
#include "alerter/silence.h"
#include "collector/hash.h"
#include "collector/log.h"
#include "collector/statedb.h"
#include "collector/xalloc.h"

/* Retry of a turn whose transaction failed. */
#define RETRY_AFTER_FAILURE_MS 1000

static const char groups_schema[] =
    "CREATE TABLE IF NOT EXISTS alerter_groups ("
    " group_key TEXT PRIMARY KEY,"
    " sequence INTEGER NOT NULL,"
    " first_ms INTEGER NOT NULL,"
    " last_notify_ms INTEGER NOT NULL,"
    " flushed INTEGER NOT NULL,"
    " notified TEXT NOT NULL," /* fingerprints, hex, space-separated */
    " receiver TEXT NOT NULL DEFAULT '')";
/* Tables made before the receiver column; the error for an existing column is ignored. */
static const char groups_add_receiver[] =
    "ALTER TABLE alerter_groups ADD COLUMN receiver TEXT NOT NULL DEFAULT ''";

/* ---- the table --------------------------------------------------------------------- */

static char *notified_text(const uint64_t *v, size_t count)
{
	char *s = xmalloc(count * 17 + 1);
	size_t len = 0;

	s[0] = '\0';
	for (size_t i = 0; i < count; i++)
		len += (size_t)snprintf(s + len, 18, "%s%016llx", i ? " " : "",
					(unsigned long long)v[i]);
	return s;
}

static void notified_parse(const char *text, uint64_t **out, size_t *count)
{
	size_t n = 0;
	size_t cap = 0;
	uint64_t *v = NULL;
	char *end;

	while (text != NULL && *text != '\0') {
		unsigned long long x = strtoull(text, &end, 16);

		if (end == text)
			break;
		v = xreallocarray_grow(v, &cap, n + 1, sizeof(*v));
		v[n++] = x;
		text = end;
		while (*text == ' ')
			text++;
	}
	*out = v;
	*count = n;
}

static int group_sql(struct alerter *a, const char *sql, const struct al_group *g)
{
	sqlite3 *db = statedb_sqlite(a->db);
	sqlite3_stmt *st = al_prepare(a, sql);
	int rc = st != NULL ? SQLITE_OK : SQLITE_ERROR;

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, g->key, -1, SQLITE_STATIC);
		if (sqlite3_bind_parameter_count(st) > 1) {
			sqlite3_bind_int64(st, 2, (int64_t)g->sequence);
			sqlite3_bind_int64(st, 3, g->first_ms);
			sqlite3_bind_int64(st, 4, g->last_notify_ms);
			sqlite3_bind_int(st, 5, g->flushed);
			sqlite3_bind_text(st, 6, notified_text(g->notified, g->notified_count), -1,
					  free);
			sqlite3_bind_text(st, 7, g->route->receiver, -1, SQLITE_STATIC);
		}
		rc = sqlite3_step(st);
		sqlite3_reset(st);
	}
	if (rc != SQLITE_DONE) {
		log_error("alerter", NULL,
			  "state database %s: writing the log of group %s failed: %s",
			  statedb_path(a->db), g->key, sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

static int group_put_row(struct alerter *a, const struct al_group *g)
{
	return group_sql(a,
			 "INSERT OR REPLACE INTO alerter_groups (group_key, sequence, first_ms, "
			 "last_notify_ms, flushed, notified, receiver) "
			 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			 g);
}

static int group_delete_row(struct alerter *a, const struct al_group *g)
{
	return group_sql(a, "DELETE FROM alerter_groups WHERE group_key = ?1", g);
}

static void saved_free(struct al_saved_group *s)
{
	free(s->key);
	free(s->receiver);
	free(s->notified);
	free(s);
}

static void saved_clear(struct alerter *a)
{
	while (a->saved != NULL) {
		struct al_saved_group *next = a->saved->next;

		saved_free(a->saved);
		a->saved = next;
	}
}

static int load_saved(struct alerter *a, char **error)
{
	sqlite3 *db = statedb_sqlite(a->db);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db,
				    "SELECT group_key, sequence, first_ms, last_notify_ms, "
				    "flushed, notified, receiver FROM alerter_groups",
				    -1, &st, NULL);

	saved_clear(a);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct al_saved_group *s = xcalloc(1, sizeof(*s));

		s->key = xstrdup((const char *)sqlite3_column_text(st, 0));
		s->sequence = (uint64_t)sqlite3_column_int64(st, 1);
		s->first_ms = sqlite3_column_int64(st, 2);
		s->last_notify_ms = sqlite3_column_int64(st, 3);
		s->flushed = sqlite3_column_int(st, 4) != 0;
		s->receiver = xstrdup((const char *)sqlite3_column_text(st, 6));
		notified_parse((const char *)sqlite3_column_text(st, 5), &s->notified,
			       &s->notified_count);
		s->next = a->saved;
		a->saved = s;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		*error = xasprintf("state database %s: reading table alerter_groups failed: %s",
				   statedb_path(a->db), sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

int al_groups_open(struct alerter *a, char **error)
{
	char *sqlerr = NULL;

	a->group_bucket_count = 64;
	a->group_buckets = xcalloc(a->group_bucket_count, sizeof(*a->group_buckets));
	if (sqlite3_exec(statedb_sqlite(a->db), groups_schema, NULL, NULL, &sqlerr) != SQLITE_OK) {
		*error = xasprintf("state database %s: creating table alerter_groups failed: %s",
				   statedb_path(a->db), sqlerr ? sqlerr : "unknown error");
		sqlite3_free(sqlerr);
		return -1;
	}
	sqlite3_exec(statedb_sqlite(a->db), groups_add_receiver, NULL, NULL, NULL);
	return load_saved(a, error);
}

/* ---- the groups in memory ---------------------------------------------------------- */

static size_t group_bucket(const struct alerter *a, const char *key)
{
	return (size_t)hash_string(HASH_FNV_OFFSET, key) & (a->group_bucket_count - 1);
}

static struct al_group *group_find(struct alerter *a, const char *key)
{
	for (struct al_group *g = a->group_buckets[group_bucket(a, key)]; g != NULL;
	     g = g->hash_next)
		if (strcmp(g->key, key) == 0)
			return g;
	return NULL;
}

static void group_grow(struct alerter *a)
{
	struct al_group **old = a->group_buckets;
	size_t old_count = a->group_bucket_count;

	a->group_bucket_count *= 2;
	a->group_buckets = xcalloc(a->group_bucket_count, sizeof(*a->group_buckets));
	for (size_t i = 0; i < old_count; i++) {
		struct al_group *g = old[i];

		while (g != NULL) {
			struct al_group *next = g->hash_next;
			size_t b = group_bucket(a, g->key);

			g->hash_next = a->group_buckets[b];
			a->group_buckets[b] = g;
			g = next;
		}
	}
	free(old);
}

static bool notified_has(const struct al_group *g, uint64_t fp)
{
	size_t lo = 0;
	size_t hi = g->notified_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g->notified[mid] == fp)
			return true;
		if (g->notified[mid] < fp)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int compare_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x;
	uint64_t b = *(const uint64_t *)y;

	return (a > b) - (a < b);
}

static int64_t tick(const struct alerter *a, uint64_t ms)
{
	return (int64_t)ms > a->opts.min_tick_ms ? (int64_t)ms : a->opts.min_tick_ms;
}

/* Takes the saved log of `key` when there is one. */
static void adopt_saved(struct alerter *a, struct al_group *g)
{
	for (struct al_saved_group **pp = &a->saved; *pp != NULL; pp = &(*pp)->next) {
		struct al_saved_group *s = *pp;

		if (strcmp(s->key, g->key) != 0)
			continue;
		*pp = s->next;
		/* The route now sends to another receiver, which has no notification yet: start a new log. */
		if (s->receiver[0] != '\0' && strcmp(s->receiver, g->route->receiver) != 0) {
			saved_free(s);
			return;
		}
		g->sequence = s->sequence;
		g->first_ms = s->first_ms;
		g->last_notify_ms = s->last_notify_ms;
		g->flushed = s->flushed;
		g->notified = s->notified;
		g->notified_count = s->notified_count;
		s->notified = NULL;
		saved_free(s);
		return;
	}
}

/*
 * Returns the highest sequence that the outbox holds for group key `key` at `receiver`, 0
 * when it holds none. A group's log is deleted when the group empties, so a group that
 * forms again under the same key would count from 1 again; the outbox drops a row whose
 * (receiver, integration, idempotency key) it already holds, and such a notification would
 * be lost. Each integration is read on its own so that the lookup uses the outbox's unique
 * index.
 * NOTE: once the outbox has pruned a key's rows (after keep_delivered_ms), its sequence
 * numbers can be used again; receivers that remember keys for longer may drop them.
 */
static uint64_t outbox_last_sequence(struct alerter *a, const char *receiver, const char *key)
{
	const struct alerting_receiver *rcv = al_receiver(a, receiver);
	sqlite3 *db = statedb_sqlite(a->db);
	sqlite3_stmt *st = NULL;
	char *low = xasprintf("%s/", key);
	char *high = xasprintf("%s0", key); /* '0' follows '/' in ASCII */
	uint64_t last = 0;
	int rc = SQLITE_DONE;

	if (rcv != NULL && rcv->integration_count > 0) {
		st = al_prepare(a, "SELECT MAX(CAST(substr(idempotency_key, ?5) AS INTEGER)) "
				   "FROM outbox WHERE receiver = ?1 AND integration = ?2 AND "
				   "idempotency_key > ?3 AND idempotency_key < ?4");
		rc = st != NULL ? SQLITE_DONE : SQLITE_ERROR;
	}
	for (size_t i = 0; st != NULL && i < rcv->integration_count; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, receiver, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, (int)i);
		sqlite3_bind_text(st, 3, low, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, high, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (int64_t)strlen(low) + 1);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			break;
		if (sqlite3_column_int64(st, 0) > (int64_t)last)
			last = (uint64_t)sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE)
		log_error("alerter", NULL,
			  "state database %s: reading the last notification of group %s from the "
			  "outbox failed: %s; its next notification may reuse a stored key",
			  statedb_path(a->db), key, sqlite3_errmsg(db));
	if (st != NULL)
		sqlite3_reset(st);
	free(low);
	free(high);
	return last;
}

static bool has_integration(struct alerter *a, const struct al_group *g,
			    const struct receiver_type *type);

static struct al_group *group_new(struct alerter *a, const struct route *r, char *key,
				  struct label *labels, size_t label_count, int64_t first_ms,
				  int64_t now_ms)
{
	struct al_group *g = xcalloc(1, sizeof(*g));
	uint64_t last;
	size_t b;

	if (a->group_count + 1 > a->group_bucket_count)
		group_grow(a);
	g->key = key;
	g->route = r;
	g->group_labels = labels;
	g->group_label_count = label_count;
	g->first_ms = first_ms;
	adopt_saved(a, g);
	last = outbox_last_sequence(a, r->receiver, key);
	if (last > g->sequence)
		g->sequence = last;
	if (g->flushed)
		g->next_flush_ms = g->last_notify_ms + tick(a, r->group_interval_ms);
	else
		g->next_flush_ms = g->first_ms + (int64_t)r->group_wait_ms;
	if (g->next_flush_ms < now_ms)
		g->next_flush_ms = now_ms;
	/* A group with a saved log is formed again after a restart or a reload, which lost its
	 * re-send time. Re-send at once: Alertmanager resolves the group's alerts when their
	 * endsAt passes without a re-send. */
	if (g->flushed && has_integration(a, g, &receiver_alertmanager))
		g->am_resend_ms = now_ms;
	b = group_bucket(a, key);
	g->hash_next = a->group_buckets[b];
	a->group_buckets[b] = g;
	a->group_count++;
	return g;
}

static void group_unlink(struct alerter *a, struct al_group *g)
{
	struct al_group **pp = &a->group_buckets[group_bucket(a, g->key)];

	while (*pp != g)
		pp = &(*pp)->hash_next;
	*pp = g->hash_next;
	a->group_count--;
}

static void group_free(struct al_group *g)
{
	route_labels_free(g->group_labels, g->group_label_count);
	free(g->key);
	free(g->alerts);
	free(g->notified);
	free(g);
}

void al_groups_route(struct alerter *a, struct al_alert *al, int64_t now_ms)
{
	const struct route **nodes = NULL;
	size_t count;

	if (a->ac == NULL || a->ac->route == NULL)
		return;
	count = route_match(a->ac->route, al->labels, al->label_count, &nodes);
	for (size_t i = 0; i < count; i++) {
		char *key = NULL;
		struct label *labels = NULL;
		size_t label_count = 0;
		struct al_group *g;
		bool member = false;

		route_group_key(nodes[i], al->labels, al->label_count, &key, &labels, &label_count);
		g = group_find(a, key);
		if (g == NULL) {
			g = group_new(a, nodes[i], key, labels, label_count, al->condition_ms,
				      now_ms);
		} else {
			free(key);
			route_labels_free(labels, label_count);
		}
		for (size_t k = 0; k < g->alert_count && !member; k++)
			member = g->alerts[k] == al;
		if (!member) {
			g->alerts = xreallocarray_grow(g->alerts, &g->alert_capacity,
						       g->alert_count + 1, sizeof(*g->alerts));
			g->alerts[g->alert_count++] = al;
			al->group_refs++;
		}
		/* A group that has not sent yet sends at once for an alert that started
		 * longer than group_wait ago (after a restart or a reload, say). */
		if (!g->flushed && al->firing &&
		    al->starts_at_ms + (int64_t)nodes[i]->group_wait_ms <= now_ms &&
		    g->next_flush_ms > now_ms)
			g->next_flush_ms = now_ms;
	}
	free(nodes);
}

/* Moves every group's log back to the saved list and empties the groups. */
static void groups_to_saved(struct alerter *a)
{
	for (size_t i = 0; i < a->group_bucket_count; i++) {
		struct al_group *g = a->group_buckets[i];

		while (g != NULL) {
			struct al_group *next = g->hash_next;
			struct al_saved_group *s = xcalloc(1, sizeof(*s));

			s->key = g->key;
			g->key = NULL;
			s->receiver = xstrdup(g->route->receiver);
			s->sequence = g->sequence;
			s->first_ms = g->first_ms;
			s->last_notify_ms = g->last_notify_ms;
			s->flushed = g->flushed;
			s->notified = g->notified;
			s->notified_count = g->notified_count;
			g->notified = NULL;
			s->next = a->saved;
			a->saved = s;
			for (size_t k = 0; k < g->alert_count; k++)
				g->alerts[k]->group_refs = 0;
			group_free(g);
			g = next;
		}
		a->group_buckets[i] = NULL;
	}
	a->group_count = 0;
}

/* Routes every alert of the store again; logs of groups that did not form are deleted. */
void al_groups_rebuild(struct alerter *a, int64_t now_ms)
{
	struct al_alert **all = xcalloc(a->alert_count + 1, sizeof(*all));
	size_t n = 0;

	groups_to_saved(a);
	for (size_t i = 0; i < a->alert_bucket_count; i++)
		for (struct al_alert *al = a->alert_buckets[i]; al != NULL; al = al->hash_next)
			all[n++] = al;
	for (size_t i = 0; i < n; i++)
		al_groups_route(a, all[i], now_ms);

	if (statedb_begin(a->db) == 0) {
		for (size_t i = 0; i < n; i++)
			if (all[i]->group_refs == 0 && !all[i]->firing) {
				all[i]->group_refs = 1;
				al_alert_release(a, all[i]);
			}
		for (struct al_saved_group *s = a->saved; s != NULL; s = s->next) {
			struct al_group tmp = {.key = s->key};

			group_delete_row(a, &tmp);
		}
		if (statedb_commit(a->db) < 0)
			statedb_rollback(a->db);
	}
	saved_clear(a);
	free(all);
	al_groups_schedule(a);
}

void al_groups_free(struct alerter *a)
{
	if (a->group_buckets != NULL)
		groups_to_saved(a);
	saved_clear(a);
	free(a->group_buckets);
	a->group_buckets = NULL;
}

/* ---- suppression ------------------------------------------------------------------- */

struct source_iter {
	struct alerter *a;
	size_t bucket;
	struct al_alert *next;
};

static bool next_source(void *ctx, struct inhibit_alert *out)
{
	struct source_iter *it = ctx;

	for (;;) {
		while (it->next == NULL) {
			if (it->bucket >= it->a->alert_bucket_count)
				return false;
			it->next = it->a->alert_buckets[it->bucket++];
		}
		struct al_alert *al = it->next;

		it->next = al->hash_next;
		if (!al->firing)
			continue;
		*out = (struct inhibit_alert){al->labels, al->label_count, al->fp};
		return true;
	}
}

void al_alert_suppression(struct alerter *a, const struct al_alert *al, int64_t now_ms,
			  const char **silence, bool *inhibited, uint64_t *inhibitor)
{
	*silence = silence_matches(a->silences, al->labels, al->label_count, now_ms);
	*inhibited = false;
	*inhibitor = 0;
	if (*silence == NULL && a->ac != NULL && a->ac->inhibit_rule_count > 0) {
		struct inhibit_alert target = {al->labels, al->label_count, al->fp};
		struct source_iter it = {a, 0, NULL};
		struct inhibit_source_iter sources = {&it, next_source};
		struct inhibit_result why;

		*inhibited = inhibit_check(a->ac->inhibit_rules, a->ac->inhibit_rule_count, &target,
					   &sources, &why);
		if (*inhibited)
			*inhibitor = why.source_fingerprint;
	}
}

/* ---- notifications ----------------------------------------------------------------- */

/* Writes the notification to the outbox of each integration of the group's receiver that
 * `only` selects (NULL: all). Returns the number of rows, or -1. */
static int enqueue(struct alerter *a, struct al_group *g, struct al_alert **alerts, size_t count,
		   const struct receiver_type *only, int64_t condition_ms, int64_t now_ms)
{
	const struct alerting_receiver *rcv = al_receiver(a, g->route->receiver);
	struct notification_alert *na = xcalloc(count ? count : 1, sizeof(*na));
	struct notification n = {
	    .receiver = g->route->receiver,
	    .group_key = g->key,
	    .sequence = g->sequence,
	    .group_labels = g->group_labels,
	    .group_label_count = g->group_label_count,
	    .alerts = na,
	    .alert_count = count,
	    .external_url = a->ac->external_url,
	    .created_ms = now_ms,
	};
	char *json;
	char *generator = NULL;
	int rows = 0;

	n.idempotency_key = xasprintf("%s/%llu", g->key, (unsigned long long)g->sequence);
	/* The dashboard's alert list, so that a receiver's "source" link leads somewhere. */
	if (a->ac->external_url != NULL) {
		size_t len = strlen(a->ac->external_url);
		bool slash = len > 0 && a->ac->external_url[len - 1] == '/';

		generator = xasprintf("%s%s#/alerts", a->ac->external_url, slash ? "" : "/");
	}
	for (size_t i = 0; i < count; i++) {
		const struct al_alert *al = alerts[i];

		na[i] = (struct notification_alert){
		    .labels = al->labels,
		    .label_count = al->label_count,
		    .annotations = al->annotations,
		    .annotation_count = al->annotation_count,
		    .firing = al->firing,
		    .starts_at_ms = al->starts_at_ms,
		    .ends_at_ms = al->firing ? 0 : al->ends_at_ms,
		    .condition_at_ms = al->condition_ms,
		    .fingerprint = al->fp,
		    .generator_url = generator,
		};
		n.firing = n.firing || al->firing;
	}
	json = notification_to_json(&n);
	for (size_t i = 0; rcv != NULL && i < rcv->integration_count; i++) {
		if (only != NULL && rcv->integrations[i].type != only)
			continue;
		if (outbox_enqueue(a->outbox, rcv->name, (int)i, n.idempotency_key, json,
				   condition_ms, now_ms) < 0) {
			rows = -1;
			break;
		}
		rows++;
	}
	if (rows > 0)
		a->stats.notifications++;
	free(json);
	free(generator);
	free(n.idempotency_key);
	free(na);
	return rows;
}

static bool has_integration(struct alerter *a, const struct al_group *g,
			    const struct receiver_type *type)
{
	const struct alerting_receiver *rcv = al_receiver(a, g->route->receiver);

	for (size_t i = 0; rcv != NULL && i < rcv->integration_count; i++)
		if (rcv->integrations[i].type == type)
			return true;
	return false;
}

/* The shortest re-send delay of the receiver's Alertmanager integrations, 0 if none. */
static int64_t am_resend_delay(struct alerter *a, const struct al_group *g)
{
	const struct alerting_receiver *rcv = al_receiver(a, g->route->receiver);
	int64_t best = 0;

	for (size_t i = 0; rcv != NULL && i < rcv->integration_count; i++) {
		struct am_forward_schedule s;

		if (rcv->integrations[i].type != &receiver_alertmanager)
			continue;
		am_forward_schedule(rcv->integrations[i].state, &s);
		if (best == 0 || s.resend_delay_ms < best)
			best = s.resend_delay_ms;
	}
	return best;
}

/* The maximum resolved_keep of the receiver's Alertmanager integrations, 0 if none. */
static int64_t am_resolved_keep(struct alerter *a, const struct al_group *g)
{
	const struct alerting_receiver *rcv = al_receiver(a, g->route->receiver);
	int64_t max_keep = 0;

	for (size_t i = 0; rcv != NULL && i < rcv->integration_count; i++) {
		struct am_forward_schedule s;

		if (rcv->integrations[i].type != &receiver_alertmanager)
			continue;
		am_forward_schedule(rcv->integrations[i].state, &s);
		if (s.resolved_keep_ms > max_keep)
			max_keep = s.resolved_keep_ms;
	}
	return max_keep;
}

/*
 * Tells whether the group's Alertmanager integrations still get resolved alert al again.
 * A check drops every resolved alert except those it sent and those already kept, so an
 * alert that resolved before the group's last notification (last_notify_ms) was sent.
 * NOTE: a resolution that the intake applies only after a later notification passes too,
 * so Alertmanager may get as resolved an alert that it never got as firing.
 */
static bool resolved_resent(const struct al_alert *al, int64_t last_notify_ms, int64_t keep_ms,
			    int64_t now_ms)
{
	return !al->firing && keep_ms > 0 && al->ends_at_ms <= last_notify_ms &&
	       now_ms < al->ends_at_ms + keep_ms;
}

struct flush_lists {
	struct al_alert **send; /* firing (not suppressed) first, then resolved-notified */
	size_t firing_count;
	size_t resolved_count;
	bool changed;       /* an alert fires that was not notified, or one resolved */
	bool repeat_wanted; /* a firing alert is not acknowledged */
	int64_t condition_ms;
};

static void collect(struct alerter *a, struct al_group *g, int64_t now_ms, struct flush_lists *l)
{
	l->send = xcalloc(g->alert_count + 1, sizeof(*l->send));
	for (size_t i = 0; i < g->alert_count; i++) {
		struct al_alert *al = g->alerts[i];
		const char *silence;
		bool inhibited;
		uint64_t by;

		if (!al->firing)
			continue;
		al_alert_suppression(a, al, now_ms, &silence, &inhibited, &by);
		if (silence != NULL || inhibited)
			continue;
		l->send[l->firing_count++] = al;
		if (!notified_has(g, al->fp)) {
			l->changed = true;
			if (al->condition_ms > l->condition_ms)
				l->condition_ms = al->condition_ms;
		}
		if (ack_active(a->acks, al->rule, al->fp, now_ms) == NULL)
			l->repeat_wanted = true;
	}
	for (size_t i = 0; i < g->alert_count; i++) {
		struct al_alert *al = g->alerts[i];

		if (al->firing || !notified_has(g, al->fp))
			continue;
		l->send[l->firing_count + l->resolved_count++] = al;
		l->changed = true;
		if (al->condition_ms > l->condition_ms)
			l->condition_ms = al->condition_ms;
	}
}

static int compare_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x;
	int64_t b = *(const int64_t *)y;

	return (a > b) - (a < b);
}

/*
 * Drops the group's resolved alerts after its check at now_ms, except those that its
 * Alertmanager integrations get again until resolved_keep has passed. These are the ones
 * this check sent (`sent`, sent_count), and the ones that resolved_resent() accepts with
 * the last notification before this check (previous_notify_ms). Of those, it keeps the
 * AM_FORWARD_RESOLVED_KEEP_MAX that resolved last. Every other resolved alert was never
 * notified, or was in this notification while the receiver has no Alertmanager.
 */
static void drop_resolved(struct alerter *a, struct al_group *g, struct al_alert *const *sent,
			  size_t sent_count, int64_t previous_notify_ms, int64_t now_ms)
{
	int64_t keep_ms = am_resolved_keep(a, g);
	uint64_t *sent_fps = xcalloc(sent_count + 1, sizeof(*sent_fps));
	bool *resend = xcalloc(g->alert_count + 1, sizeof(*resend));
	int64_t *ends = xcalloc(g->alert_count + 1, sizeof(*ends));
	size_t candidates = 0;
	int64_t cutoff = INT64_MIN;
	size_t cutoff_ties = 0;
	size_t kept = 0;

	for (size_t i = 0; i < sent_count; i++)
		sent_fps[i] = sent[i]->fp;
	qsort(sent_fps, sent_count, sizeof(*sent_fps), compare_u64);
	for (size_t i = 0; i < g->alert_count && keep_ms > 0; i++) {
		const struct al_alert *al = g->alerts[i];

		if (al->firing || now_ms >= al->ends_at_ms + keep_ms)
			continue;
		if (bsearch(&al->fp, sent_fps, sent_count, sizeof(*sent_fps), compare_u64) !=
			NULL ||
		    resolved_resent(al, previous_notify_ms, keep_ms, now_ms)) {
			resend[i] = true;
			ends[candidates++] = al->ends_at_ms;
		}
	}
	/* Over the cap, keep the alerts that end after the cutoff, and as many of those that
	 * end at it as fit. */
	if (candidates > AM_FORWARD_RESOLVED_KEEP_MAX) {
		size_t first = candidates - AM_FORWARD_RESOLVED_KEEP_MAX;

		qsort(ends, candidates, sizeof(*ends), compare_i64);
		cutoff = ends[first];
		for (size_t i = first; i < candidates && ends[i] == cutoff; i++)
			cutoff_ties++;
	}
	for (size_t i = 0; i < g->alert_count; i++) {
		struct al_alert *al = g->alerts[i];
		bool keep = al->firing || (resend[i] && al->ends_at_ms > cutoff);

		if (!keep && resend[i] && al->ends_at_ms == cutoff && cutoff_ties > 0) {
			cutoff_ties--;
			keep = true;
		}
		if (keep)
			g->alerts[kept++] = al;
		else
			al_alert_release(a, al);
	}
	g->alert_count = kept;
	free(sent_fps);
	free(resend);
	free(ends);
}

/* Checks group g at now_ms. Returns -1 when a write failed; true when g was freed. */
static int flush(struct alerter *a, struct al_group *g, int64_t now_ms, bool *freed)
{
	struct flush_lists l = {0};
	int64_t previous_notify_ms = g->last_notify_ms;
	bool send;
	int rc = 0;

	*freed = false;
	if (route_muted(g->route, now_ms)) {
		g->next_flush_ms = now_ms + tick(a, g->route->group_interval_ms);
		return 0;
	}
	collect(a, g, now_ms, &l);
	send = l.changed || (l.firing_count > 0 && l.repeat_wanted &&
			     now_ms >= g->last_notify_ms + (int64_t)g->route->repeat_interval_ms);
	if (send) {
		g->sequence++;
		if (enqueue(a, g, l.send, l.firing_count + l.resolved_count, NULL,
			    l.changed ? l.condition_ms : 0, now_ms) < 0)
			rc = -1;
		free(g->notified);
		g->notified = xcalloc(l.firing_count + 1, sizeof(*g->notified));
		for (size_t i = 0; i < l.firing_count; i++)
			g->notified[i] = l.send[i]->fp;
		g->notified_count = l.firing_count;
		qsort(g->notified, g->notified_count, sizeof(*g->notified), compare_u64);
		g->last_notify_ms = now_ms;
		if (has_integration(a, g, &receiver_alertmanager))
			g->am_resend_ms = now_ms + am_resend_delay(a, g);
	}
	g->flushed = true;
	drop_resolved(a, g, l.send + l.firing_count, l.resolved_count, previous_notify_ms, now_ms);
	free(l.send);
	if (g->alert_count == 0) {
		if (group_delete_row(a, g) < 0)
			rc = -1;
		group_unlink(a, g);
		group_free(g);
		*freed = true;
		return rc;
	}
	if (send && group_put_row(a, g) < 0)
		rc = -1;
	g->next_flush_ms = now_ms + tick(a, g->route->group_interval_ms);
	return rc;
}

/*
 * Sends the group's firing alerts again to its Alertmanager integrations, which resolve an
 * alert on their own when it is not re-sent before its endsAt. Sends the resolved alerts
 * that drop_resolved() kept too, with their original endsAt, as Prometheus does until
 * resolved_keep has passed. Resolutions that the next check notifies are left to it.
 */
static int am_resend(struct alerter *a, struct al_group *g, int64_t now_ms)
{
	struct flush_lists l = {0};
	int64_t keep_ms = am_resolved_keep(a, g);
	size_t count;
	int rc = 0;

	g->am_resend_ms = now_ms + am_resend_delay(a, g);
	if (route_muted(g->route, now_ms))
		return 0;
	collect(a, g, now_ms, &l);
	count = l.firing_count;
	for (size_t i = 0; i < g->alert_count; i++)
		if (resolved_resent(g->alerts[i], g->last_notify_ms, keep_ms, now_ms))
			l.send[count++] = g->alerts[i];
	if (count > 0) {
		g->sequence++;
		if (enqueue(a, g, l.send, count, &receiver_alertmanager, 0, now_ms) < 0 ||
		    group_put_row(a, g) < 0)
			rc = -1;
	}
	free(l.send);
	return rc;
}

static int64_t group_due(const struct al_group *g)
{
	if (g->am_resend_ms != 0 && g->am_resend_ms < g->next_flush_ms)
		return g->am_resend_ms;
	return g->next_flush_ms;
}

void al_groups_schedule(struct alerter *a)
{
	int64_t next = INT64_MAX;
	int64_t now = al_wall_ms();
	struct timeval tv;

	if (a->stopping)
		return;
	for (size_t i = 0; i < a->group_bucket_count; i++)
		for (struct al_group *g = a->group_buckets[i]; g != NULL; g = g->hash_next)
			if (group_due(g) < next)
				next = group_due(g);
	if (next == INT64_MAX) {
		event_del(a->flush_ev);
		return;
	}
	next = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(next / 1000);
	tv.tv_usec = (suseconds_t)(next % 1000) * 1000;
	evtimer_add(a->flush_ev, &tv);
}

/* Reads the store and the groups back from the tables after a failed transaction. */
static void reload_from_tables(struct alerter *a)
{
	char *error = NULL;

	groups_to_saved(a);
	saved_clear(a);
	if (al_store_reload(a, &error) < 0 || load_saved(a, &error) < 0) {
		log_error("alerter", NULL, "%s; retrying in %d s", error,
			  RETRY_AFTER_FAILURE_MS / 1000);
		free(error);
	}
	al_groups_rebuild(a, al_wall_ms());
}

void al_groups_on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
	struct alerter *a = arg;
	int64_t now = al_wall_ms();
	struct al_group **due = NULL;
	size_t due_count = 0;
	size_t due_capacity = 0;
	int rc = 0;

	(void)fd;
	(void)what;
	if (a->stopping || a->ac == NULL)
		return;
	for (size_t i = 0; i < a->group_bucket_count; i++)
		for (struct al_group *g = a->group_buckets[i]; g != NULL; g = g->hash_next)
			if (group_due(g) <= now) {
				due = xreallocarray_grow(due, &due_capacity, due_count + 1,
							 sizeof(*due));
				due[due_count++] = g;
			}
	/* Silences and acks that another process wrote count from this check on: one
	 * PRAGMA each when nothing changed. */
	if (due_count > 0) {
		silence_set_refresh(a->silences);
		ack_set_refresh(a->acks);
	}
	if (due_count > 0 && statedb_begin(a->db) == 0) {
		for (size_t i = 0; i < due_count && rc == 0; i++) {
			struct al_group *g = due[i];
			bool freed = false;

			if (g->am_resend_ms != 0 && g->am_resend_ms <= now &&
			    am_resend(a, g, now) < 0)
				rc = -1;
			if (rc == 0 && g->next_flush_ms <= now && flush(a, g, now, &freed) < 0)
				rc = -1;
		}
		if (rc < 0 || statedb_commit(a->db) < 0) {
			statedb_rollback(a->db);
			rc = -1;
		}
	} else if (due_count > 0) {
		rc = -1;
	}
	free(due);
	if (due_count > 0)
		log_debug("alerter", NULL, "checked %zu groups in %lld ms", due_count,
			  (long long)(al_wall_ms() - now));
	if (rc < 0) {
		struct timeval tv = {RETRY_AFTER_FAILURE_MS / 1000, 0};

		reload_from_tables(a);
		evtimer_add(a->flush_ev, &tv);
		return;
	}
	al_groups_schedule(a);
	al_delivery_kick(a);
}
