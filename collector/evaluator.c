/*
 * The evaluator; see evaluator.h. Alert instances live in a small hash table per rule,
 * keyed by the fingerprint of their identity labels (alertname, the rule's labels and the
 * expression's labels; a threshold rule's `severity` is left out because it follows the
 * level). Series the evaluator writes are marked rule_owned so that no probe takes them
 * over; the evaluator holds pointers only to series it owns and only it removes them.
 */
#include "collector/evaluator.h"

#include <event2/event.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/clock.h"
#include "collector/evaluator_impl.h"
#include "collector/hash.h"
#include "collector/log.h"
#include "collector/store.h"
#include "collector/window.h"
#include "collector/xalloc.h"

/* Evaluations an inactive instance is kept for, so that flap detection sees its history. */
#define EV_FORGET_EVALUATIONS ALERT_FLAP_HISTORY
/* Transitions of one evaluation logged one by one; the rest are counted in one line. */
#define EV_LOGGED_TRANSITIONS 20
/* Transitions kept in memory while the state database refuses writes; about 1 KiB each. */
#define EV_UNWRITTEN_MAX 10000
/* Evaluations a recorded series may be missing before it is removed from memory. */
#define EV_STALE_FORGET_EVALS 5

static const struct metric_desc desc_alerts = {
    "ALERTS", "Alerts that are pending or firing (stale: no data), one series per state.",
    METRIC_GAUGE};
static const struct metric_desc desc_for_state = {
    "ALERTS_FOR_STATE", "Unix time at which a pending or firing alert became active.",
    METRIC_GAUGE};
static const struct metric_desc desc_duration = {"tocsin_rule_evaluation_duration_seconds",
						 "How long the group's last evaluation took.",
						 METRIC_GAUGE};
static const struct metric_desc desc_failures = {
    "tocsin_rule_evaluation_failures_total",
    "Rule evaluations in the group that failed (the rule's previous state is kept).",
    METRIC_COUNTER};
static const struct metric_desc desc_missed = {
    "tocsin_rule_group_iterations_missed_total",
    "Evaluations of the group skipped because the previous one overran its interval.",
    METRIC_COUNTER};
static const struct metric_desc desc_early = {
    "tocsin_rule_group_early_evaluations_total",
    "Evaluations of the group out of turn, after a probe's outcome changed.", METRIC_COUNTER};
static const struct metric_desc desc_last = {"tocsin_rule_group_last_evaluation_timestamp_seconds",
					     "Unix time of the group's last evaluation.",
					     METRIC_GAUGE};

int64_t ev_wall_ms(void)
{
	return clock_wall_ms();
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- label sets ---------------------------------------------------------------------- */

void ev_labels_set(struct ev_labels *b, const char *name, const char *value)
{
	for (size_t i = 0; i < b->count; i++) {
		if (label_name_equal(b->v[i].name, name)) {
			b->v[i].value = value;
			return;
		}
	}
	b->v = xreallocarray_grow(b->v, &b->capacity, b->count + 1, sizeof(*b->v));
	b->v[b->count++] = (struct label){name, value};
}

/* Keeps a string alive until ev_labels_clear(). */
const char *ev_labels_keep(struct ev_labels *b, char *owned)
{
	b->owned =
	    xreallocarray_grow(b->owned, &b->owned_capacity, b->owned_count + 1, sizeof(*b->owned));
	b->owned[b->owned_count++] = owned;
	return owned;
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

void ev_labels_sort(struct ev_labels *b)
{
	if (b->count > 1)
		qsort(b->v, b->count, sizeof(*b->v), label_cmp);
}

void ev_labels_clear(struct ev_labels *b)
{
	for (size_t i = 0; i < b->owned_count; i++)
		free(b->owned[i]);
	b->count = 0;
	b->owned_count = 0;
}

void ev_labels_free(struct ev_labels *b)
{
	ev_labels_clear(b);
	free(b->v);
	free(b->owned);
	memset(b, 0, sizeof(*b));
}

uint64_t ev_labels_fingerprint(const struct label *v, size_t count)
{
	return label_set_hash(HASH_FNV_OFFSET, v, count);
}

static struct label *labels_copy(const struct label *v, size_t count)
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

/* ---- instances ------------------------------------------------------------------------- */

static size_t bucket_of(const struct ev_rule *r, uint64_t fp)
{
	return (size_t)(fp ^ (fp >> 29)) & (r->bucket_count - 1);
}

struct ev_instance *ev_instance_find(const struct ev_rule *r, uint64_t fp)
{
	if (r->bucket_count == 0)
		return NULL;
	for (struct ev_instance *i = r->buckets[bucket_of(r, fp)]; i != NULL; i = i->next)
		if (i->fp == fp)
			return i;
	return NULL;
}

static void rehash(struct ev_rule *r)
{
	size_t count = r->bucket_count ? r->bucket_count * 2 : 16;

	free(r->buckets);
	r->bucket_count = count;
	r->buckets = xcalloc(count, sizeof(*r->buckets));
	for (size_t k = 0; k < r->count; k++) {
		struct ev_instance *i = r->inst[k];
		size_t b = bucket_of(r, i->fp);

		i->next = r->buckets[b];
		r->buckets[b] = i;
	}
}

struct ev_instance *ev_instance_add(struct ev_rule *r, uint64_t fp, const struct label *labels,
				    size_t count)
{
	struct ev_instance *i = xcalloc(1, sizeof(*i));
	size_t b;

	i->fp = fp;
	i->labels = labels_copy(labels, count);
	i->label_count = count;
	alert_instance_init(&i->inst);
	r->inst = xreallocarray_grow(r->inst, &r->capacity, r->count + 1, sizeof(*r->inst));
	r->inst[r->count++] = i;
	if (r->count > r->bucket_count) {
		rehash(r); /* links every instance, the new one included */
		return i;
	}
	b = bucket_of(r, fp);
	i->next = r->buckets[b];
	r->buckets[b] = i;
	return i;
}

void ev_instance_set_annotations(struct ev_instance *i, const struct label *v, size_t count)
{
	labels_free(i->annotations, i->annotation_count);
	i->annotations = labels_copy(v, count);
	i->annotation_count = count;
}

static void instance_free(struct ev_instance *i)
{
	labels_free(i->labels, i->label_count);
	labels_free(i->annotations, i->annotation_count);
	free(i);
}

/* Removes instance k of r (order of the others is not kept). */
void ev_instance_remove(struct ev_rule *r, size_t k)
{
	struct ev_instance *i = r->inst[k];
	struct ev_instance **pp = &r->buckets[bucket_of(r, i->fp)];

	while (*pp != i)
		pp = &(*pp)->next;
	*pp = i->next;
	r->inst[k] = r->inst[--r->count];
	instance_free(i);
}

void ev_rule_clear(struct ev_rule *r)
{
	for (size_t k = 0; k < r->count; k++)
		instance_free(r->inst[k]);
	free(r->inst);
	free(r->buckets);
	free(r->recorded);
	free(r->last_error);
	memset(r, 0, sizeof(*r));
}

/* The level a threshold alert's `severity` label shows: the one it waits for while pending. */
static enum alert_level shown_level(const struct ev_rule *r, const struct ev_instance *i)
{
	if (!r->threshold)
		return ALERT_LEVEL_OK;
	return i->inst.state == ALERT_PENDING ? i->inst.candidate : i->inst.level;
}

/* The labels an instance shows: identity labels plus, for threshold rules, `severity`. */
void ev_instance_labels(const struct ev_rule *r, const struct ev_instance *i, struct ev_labels *out)
{
	ev_labels_clear(out);
	for (size_t k = 0; k < i->label_count; k++)
		ev_labels_set(out, i->labels[k].name, i->labels[k].value);
	if (r->threshold)
		ev_labels_set(out, "severity", alert_level_name(shown_level(r, i)));
	ev_labels_sort(out);
}

/* ---- series the evaluator writes -------------------------------------------------------- */

/*
 * Interns a series for `owner`. Returns NULL when another writer (a probe, or another rule)
 * has the series: the evaluator never takes over a series it did not create.
 */
struct series *ev_series_claim(struct evaluator *ev, const void *owner,
			       const struct metric_desc *desc, const struct label *labels,
			       size_t count, bool *claimed_now)
{
	/* Most calls find a series written by the last evaluation: look it up before the
	 * general intern, which sorts and checks the labels. */
	struct series *s = series_find_sorted(ev->reg, desc->name, labels, count);

	if (s == NULL)
		s = series_intern(ev->reg, desc, labels, count);
	if (claimed_now != NULL)
		*claimed_now = false;
	if (s == NULL)
		return NULL;
	if (s->owner == owner && s->rule_owned)
		return s;
	if (s->owner != NULL || s->time_ms != 0 || s->rule_owned)
		return NULL;
	s->owner = owner;
	s->rule_owned = true;
	if (claimed_now != NULL)
		*claimed_now = true;
	return s;
}

/* Sets the value and appends it to the window; archives it when step_s > 0. */
void ev_series_write(struct evaluator *ev, struct series *s, double value, int64_t now_ms,
		     uint32_t step_s)
{
	series_set(s, value, now_ms);
	if (ev->ws != NULL)
		window_append(ev->ws, s, now_ms, value);
	if (ev->store == NULL || step_s == 0)
		return;
	if (s->file == NULL)
		s->file = store_file_get(ev->store, s, step_s, 2 * step_s);
	if (s->file != NULL && isfinite(value))
		store_submit(ev->store, s->file, now_ms / 1000, value);
}

void ev_series_stale(struct evaluator *ev, struct series *s, int64_t now_ms)
{
	if (s->stale)
		return;
	s->stale = true;
	if (ev->ws != NULL)
		window_mark_stale(ev->ws, s, now_ms);
}

/* Removes a series the evaluator owns, if it exists. */
void ev_series_drop(struct evaluator *ev, const void *owner, const struct metric_desc *desc,
		    const struct label *labels, size_t count)
{
	struct series *s = series_intern(ev->reg, desc, labels, count);

	if (s == NULL)
		return;
	if (s->rule_owned && s->owner == owner)
		series_remove(ev->reg, s);
	else if (s->owner == NULL && s->time_ms == 0)
		series_remove(ev->reg, s); /* just created by the lookup above */
}

/* ALERTS and ALERTS_FOR_STATE of one instance in `state` (pending, firing or stale). */
static void alerts_series_labels(const struct ev_rule *r, const struct ev_instance *i,
				 enum alert_state state, bool with_state, struct ev_labels *out)
{
	ev_instance_labels(r, i, out);
	if (with_state)
		ev_labels_set(out, "alertstate", alert_state_name(state));
	ev_labels_sort(out);
}

static bool exported_state(enum alert_state s)
{
	return s == ALERT_PENDING || s == ALERT_FIRING || s == ALERT_STALE;
}

/*
 * Brings ALERTS and ALERTS_FOR_STATE in line with the instance after an evaluation. Their
 * labels follow from the identity, the state and the shown level, so while those two stay
 * the same the series kept from the last evaluation are written directly: an evaluation
 * of thousands of firing alerts interns no label set. The instance owns its series, so no
 * other alert removes them while it keeps them.
 */
static void export_alert(struct evaluator *ev, const struct ev_rule *r, struct ev_instance *i,
			 int64_t now_ms)
{
	struct ev_labels *b = &ev->scratch;
	double active_s = (double)(i->inst.active_at_ms / 1000);

	if (i->exported &&
	    (i->exported_state != i->inst.state || i->exported_level != shown_level(r, i)))
		ev_unexport_alert(ev, i);
	if (!exported_state(i->inst.state)) {
		ev_unexport_alert(ev, i);
		return;
	}

	if (!i->exported || i->alerts_series == NULL) {
		alerts_series_labels(r, i, i->inst.state, true, b);
		i->alerts_series = ev_series_claim(ev, i, &desc_alerts, b->v, b->count, NULL);
	}
	if (!i->exported || i->for_state_series == NULL) {
		alerts_series_labels(r, i, i->inst.state, false, b);
		i->for_state_series = ev_series_claim(ev, i, &desc_for_state, b->v, b->count, NULL);
	}
	i->exported = true;
	i->exported_state = i->inst.state;
	i->exported_level = shown_level(r, i);
	if (i->alerts_series != NULL)
		ev_series_write(ev, i->alerts_series, 1, now_ms, 0);
	if (i->for_state_series != NULL)
		ev_series_write(ev, i->for_state_series, active_s, now_ms, 0);
}

void ev_unexport_alert(struct evaluator *ev, struct ev_instance *i)
{
	if (i->alerts_series != NULL)
		series_remove(ev->reg, i->alerts_series);
	if (i->for_state_series != NULL)
		series_remove(ev->reg, i->for_state_series);
	i->alerts_series = NULL;
	i->for_state_series = NULL;
	i->exported = false;
}

/* ---- transitions ----------------------------------------------------------------------- */

/* Fields whose change must reach the state database. */
static bool instance_changed(const struct alert_instance *a, const struct alert_instance *b)
{
	return a->state != b->state || a->level != b->level || a->candidate != b->candidate ||
	       a->candidate_since_ms != b->candidate_since_ms ||
	       a->active_at_ms != b->active_at_ms || a->fired_at_ms != b->fired_at_ms ||
	       a->resolved_at_ms != b->resolved_at_ms || a->flapping != b->flapping;
}

void ev_persist_instance(struct evaluator *ev, const struct ev_rule *r, const struct ev_instance *i)
{
	struct statedb_alert a = {
	    .rule = r->key,
	    .fingerprint = i->fp,
	    .labels = i->labels,
	    .label_count = i->label_count,
	    .inst = i->inst,
	};

	if (ev->db != NULL)
		statedb_alert_put(ev->db, &a);
}

/* Queues a transition: persisted now (inside the group's transaction), handed on after
 * the commit. */
void ev_record_change(struct evaluator *ev, const struct ev_rule *r, struct ev_instance *i,
		      const struct alert_change *c, int64_t now_ms)
{
	struct ev_pending *p;
	struct ev_labels *b = &ev->scratch;
	struct statedb_transition t;

	ev->pending = xreallocarray_grow(ev->pending, &ev->pending_capacity, ev->pending_count + 1,
					 sizeof(*ev->pending));
	p = &ev->pending[ev->pending_count++];
	memset(p, 0, sizeof(*p));

	/* The labels of the level left or reached: a resolved threshold alert keeps the
	 * severity it had, so that receivers can match it to the alert it ends. */
	ev_instance_labels(r, i, b);
	if (r->threshold && c->to_level == ALERT_LEVEL_OK && c->from_level != ALERT_LEVEL_OK)
		ev_labels_set(b, "severity", alert_level_name(c->from_level));
	p->labels = labels_copy(b->v, b->count);
	p->label_count = b->count;
	p->annotations = labels_copy(i->annotations, i->annotation_count);
	p->annotation_count = i->annotation_count;
	p->group = xstrdup(r->group_name);
	p->rule = xstrdup(r->key);
	p->alertname = xstrdup(r->alertname);

	t = (struct statedb_transition){
	    .time_ms = now_ms,
	    .group = p->group,
	    .rule = p->rule,
	    .alertname = p->alertname,
	    .fingerprint = i->fp,
	    .labels = p->labels,
	    .label_count = p->label_count,
	    .annotations = p->annotations,
	    .annotation_count = p->annotation_count,
	    .value = i->inst.value,
	    .change = *c,
	};
	t.id = ev->db != NULL ? statedb_transition_add(ev->db, &t) : -1;
	if (t.id <= 0)
		t.id = ++ev->local_transition_id;
	p->t = t;

	/* A storm of changes (10,000 alerts of one rule at once) logs the first few and a
	 * count, not a line each. */
	if (ev->pending_count > EV_LOGGED_TRANSITIONS)
		return;
	log_info("evaluator", NULL, "alert %s %s -> %s%s%s fingerprint=%016llx value=%g%s", r->key,
		 alert_state_name(c->from_state), alert_state_name(c->to_state),
		 r->threshold ? " level " : "", r->threshold ? alert_level_name(c->to_level) : "",
		 (unsigned long long)i->fp, i->inst.value, c->notify ? "" : " (not notified)");
}

static void pending_free(struct ev_pending *p)
{
	labels_free(p->labels, p->label_count);
	labels_free(p->annotations, p->annotation_count);
	free(p->group);
	free(p->rule);
	free(p->alertname);
}

void ev_deliver_pending(struct evaluator *ev)
{
	if (ev->pending_count > EV_LOGGED_TRANSITIONS)
		log_info("evaluator", NULL,
			 "%zu more alert transitions in this evaluation were not "
			 "logged one by one",
			 ev->pending_count - EV_LOGGED_TRANSITIONS);
	for (size_t k = 0; k < ev->pending_count; k++) {
		struct ev_pending *p = &ev->pending[k];

		if (ev->on_transition != NULL)
			ev->on_transition(ev->on_transition_arg, &p->t);
		pending_free(p);
	}
	ev->pending_count = 0;
}

/*
 * Advances one instance and handles what follows: persistence, the transition, ALERTS.
 * Returns true when the instance may be forgotten.
 */
bool ev_step_instance(struct evaluator *ev, struct ev_rule *r, struct ev_instance *i,
		      const struct alert_params *params, bool present, double value, int64_t now_ms,
		      int64_t forget_after_ms)
{
	struct alert_instance before = i->inst;
	struct alert_change c;
	bool changed;

	if (params->threshold)
		changed = alert_step_threshold(&i->inst, params, present, value, now_ms, &c);
	else
		changed = alert_step(&i->inst, params, present, value, now_ms, &c);
	if (changed)
		ev_record_change(ev, r, i, &c, now_ms);

	export_alert(ev, r, i, now_ms);
	if (alert_instance_forgettable(&i->inst, now_ms, forget_after_ms)) {
		if (ev->db != NULL)
			statedb_alert_delete(ev->db, r->key, i->fp);
		ev_unexport_alert(ev, i);
		return true;
	}
	if (changed || instance_changed(&before, &i->inst))
		ev_persist_instance(ev, r, i);
	return false;
}

/* ---- rules ----------------------------------------------------------------------------- */

/* The data an expression result element gives a template. */
static void template_data_for(const struct evaluator *ev, const struct label *labels, size_t count,
			      double value, struct template_data *d)
{
	*d = (struct template_data){
	    .labels = labels,
	    .label_count = count,
	    .value = value,
	    .external_labels = ev->external.v,
	    .external_label_count = ev->external.count,
	};
}

/* Renders a template; a run-time error becomes the text, as in Prometheus. */
static char *render(const struct rule_template *t, const struct template_data *d)
{
	char *error = NULL;
	char *out = template_render(t->tmpl, d, &error);

	if (out != NULL)
		return out;
	out = xasprintf("<error expanding template %s: %s>", t->name,
			error != NULL ? error : "unknown error");
	free(error);
	return out;
}

/* Element labels without __name__, sorted. */
static void element_labels(const struct expr_element *el, struct ev_labels *out)
{
	ev_labels_clear(out);
	for (size_t k = 0; k < el->label_count; k++)
		if (strcmp(el->labels[k].name, "__name__") != 0)
			ev_labels_set(out, el->labels[k].name, el->labels[k].value);
}

static void eval_alert_element(struct evaluator *ev, struct ev_rule *r,
			       const struct expr_element *el)
{
	const struct rule *rule = r->rule;
	struct ev_labels *base = &ev->base_labels;
	struct ev_labels *id = &ev->id_labels;
	struct template_data d;
	struct ev_instance *i;
	uint64_t fp;

	element_labels(el, base);
	ev_labels_sort(base);
	template_data_for(ev, base->v, base->count, el->value, &d);

	ev_labels_clear(id);
	for (size_t k = 0; k < base->count; k++)
		ev_labels_set(id, base->v[k].name, base->v[k].value);
	for (size_t k = 0; k < rule->label_count; k++) {
		const char *v = ev_labels_keep(id, render(&rule->labels[k], &d));

		ev_labels_set(id, rule->labels[k].name, v);
	}
	/* A threshold rule's `severity` follows its level: the loader rejects one in the
	 * rule's labels, and one from the expression is dropped from the identity. */
	if (r->threshold)
		for (size_t k = 0; k < id->count; k++)
			if (strcmp(id->v[k].name, "severity") == 0)
				id->v[k] = id->v[--id->count];
	ev_labels_set(id, "alertname", rule->name);
	ev_labels_sort(id);
	fp = ev_labels_fingerprint(id->v, id->count);

	i = ev_instance_find(r, fp);
	if (i != NULL && i->seen_seq == r->eval_seq) {
		r->duplicate = true; /* two elements with one label set after the rule's labels */
		return;
	}
	if (i == NULL)
		i = ev_instance_add(r, fp, id->v, id->count);
	i->seen_seq = r->eval_seq;
	i->seen_value = el->value;

	if (rule->annotation_count > 0) {
		struct ev_labels *ann = &ev->ann_labels;

		ev_labels_clear(ann);
		for (size_t k = 0; k < rule->annotation_count; k++)
			ev_labels_set(ann, rule->annotations[k].name,
				      ev_labels_keep(ann, render(&rule->annotations[k], &d)));
		ev_labels_sort(ann);
		ev_instance_set_annotations(i, ann->v, ann->count);
	}
}

/* A scalar result is one element without labels, as Prometheus treats it. */
static void result_elements(const struct expr_result *res, struct expr_element *scalar,
			    const struct expr_element **els, size_t *count)
{
	if (res->type == EXPR_TYPE_SCALAR) {
		*scalar = (struct expr_element){NULL, 0, res->scalar};
		*els = scalar;
		*count = 1;
		return;
	}
	*els = res->elements;
	*count = res->count;
}

static void rule_failed(struct evaluator *ev, struct ev_group *g, struct ev_rule *r,
			const char *error, int64_t now_ms)
{
	char ids[256];

	g->failures++;
	r->failures++;
	ev->failures_total++;
	free(r->last_error);
	r->last_error = xstrdup(error);
	if (throttle_fail(&r->error_log, (uint64_t)now_ms, NULL))
		log_warn("evaluator",
			 log_ids(ids, sizeof(ids), "group", g->name, "rule", r->key, NULL),
			 "evaluation failed: %s; keeping the previous state", error);
}

static void eval_alert_rule(struct evaluator *ev, struct ev_group *g, struct ev_rule *r,
			    const struct expr_result *res, int64_t now_ms)
{
	const struct expr_element *els;
	struct expr_element scalar;
	size_t count;
	int64_t forget_ms = EV_FORGET_EVALUATIONS * g->interval_ms;

	result_elements(res, &scalar, &els, &count);
	if (g->limit > 0 && count > g->limit) {
		char msg[128];

		snprintf(msg, sizeof(msg), "%zu alerts exceed the group's limit of %llu", count,
			 (unsigned long long)g->limit);
		rule_failed(ev, g, r, msg, now_ms);
		return;
	}
	r->duplicate = false;
	for (size_t k = 0; k < count; k++)
		eval_alert_element(ev, r, &els[k]);
	if (r->duplicate)
		rule_failed(ev, g, r,
			    "the expression returned two series with the same labels once the "
			    "rule's labels were added; add a label that tells them apart",
			    now_ms);

	for (size_t k = 0; k < r->count;) {
		struct ev_instance *i = r->inst[k];
		bool present = i->seen_seq == r->eval_seq;

		if (present) {
			i->restored_until_ms = 0;
		} else if (i->restored_until_ms > now_ms) {
			k++;
			continue;
		}
		if (ev_step_instance(ev, r, i, &r->rule->params, present,
				     present ? i->seen_value : NAN, now_ms, forget_ms)) {
			ev_instance_remove(r, k);
			continue;
		}
		k++;
	}
}

/*
 * The series the rule wrote at position k of its list when its labels are b's, else NULL.
 * An expression returns its series in much the same order every time, so this usually
 * finds the output's series without a registry lookup.
 */
static struct series *recorded_at(const struct ev_rule *r, size_t k, const struct ev_labels *b)
{
	struct series *s;

	if (k >= r->recorded_count)
		return NULL;
	s = r->recorded[k];
	if (s->label_count != b->count)
		return NULL;
	for (size_t i = 0; i < b->count; i++)
		if (!label_name_equal(s->labels[i].name, b->v[i].name) ||
		    strcmp(s->labels[i].value, b->v[i].value) != 0)
			return NULL;
	return s;
}

static void eval_record_rule(struct evaluator *ev, struct ev_group *g, struct ev_rule *r,
			     const struct expr_result *res, int64_t now_ms)
{
	const struct rule *rule = r->rule;
	const struct metric_desc desc = {rule->name, r->help, METRIC_GAUGE};
	struct ev_labels *b = &ev->base_labels;
	const struct expr_element *els;
	struct expr_element scalar;
	size_t count;
	size_t kept = 0;
	uint32_t step_s = (uint32_t)(g->interval_ms / 1000);

	result_elements(res, &scalar, &els, &count);
	if (g->limit > 0 && count > g->limit) {
		char msg[128];

		snprintf(msg, sizeof(msg), "%zu series exceed the group's limit of %llu", count,
			 (unsigned long long)g->limit);
		rule_failed(ev, g, r, msg, now_ms);
		return;
	}
	for (size_t k = 0; k < count; k++) {
		struct series *s;
		bool claimed;

		element_labels(&els[k], b);
		for (size_t j = 0; j < rule->label_count; j++)
			ev_labels_set(b, rule->labels[j].name, rule->labels[j].text);
		ev_labels_sort(b);
		claimed = false;
		s = recorded_at(r, k, b);
		if (s == NULL)
			s = ev_series_claim(ev, r, &desc, b->v, b->count, &claimed);
		if (s == NULL) {
			char msg[256];

			snprintf(msg, sizeof(msg),
				 "series %s is written by a probe or another rule; rename the "
				 "rule's record",
				 rule->name);
			rule_failed(ev, g, r, msg, now_ms);
			continue;
		}
		if (s->owner_seq == r->eval_seq)
			continue; /* the same labels twice: keep the first */
		if (claimed) {
			r->recorded =
			    xreallocarray_grow(r->recorded, &r->recorded_capacity,
					       r->recorded_count + 1, sizeof(*r->recorded));
			r->recorded[r->recorded_count++] = s;
		}
		s->owner_seq = r->eval_seq;
		ev_series_write(ev, s, els[k].value, now_ms, step_s ? step_s : 1);
	}

	for (size_t k = 0; k < r->recorded_count; k++) {
		struct series *s = r->recorded[k];

		if (s->owner_seq == r->eval_seq) {
			r->recorded[kept++] = s;
			continue;
		}
		ev_series_stale(ev, s, now_ms);
		if (s->owner_seq + EV_STALE_FORGET_EVALS < r->eval_seq) {
			series_remove(ev->reg, s);
			continue;
		}
		r->recorded[kept++] = s;
	}
	r->recorded_count = kept;
}

static void eval_rule(struct evaluator *ev, struct ev_group *g, struct ev_rule *r, int64_t now_ms)
{
	struct expr_source src;
	struct expr_result res;
	int64_t start = mono_ns();

	window_source(ev->ws, ev->reg, &src);
	r->eval_seq++;
	if (expr_eval(r->rule->expr, &src, now_ms, &res) < 0) {
		rule_failed(ev, g, r, res.error != NULL ? res.error : "evaluation error", now_ms);
		expr_result_free(&res);
		r->last_eval_ms = now_ms;
		r->last_duration_s = (double)(mono_ns() - start) / 1e9;
		return;
	}
	throttle_ok(&r->error_log, NULL);
	free(r->last_error);
	r->last_error = NULL;
	if (r->rule->kind == RULE_RECORD)
		eval_record_rule(ev, g, r, &res, now_ms);
	else
		eval_alert_rule(ev, g, r, &res, now_ms);
	expr_result_free(&res);
	r->last_eval_ms = now_ms;
	r->last_duration_s = (double)(mono_ns() - start) / 1e9;
}

/* ---- groups ---------------------------------------------------------------------------- */

static void group_metrics(struct evaluator *ev, struct ev_group *g, int64_t now_ms)
{
	struct label l = {"rule_group", g->name};
	struct series *s;

	if ((s = ev_series_claim(ev, ev, &desc_duration, &l, 1, NULL)) != NULL)
		series_set(s, g->last_duration_s, now_ms);
	if ((s = ev_series_claim(ev, ev, &desc_failures, &l, 1, NULL)) != NULL)
		series_set(s, (double)g->failures, now_ms);
	if ((s = ev_series_claim(ev, ev, &desc_missed, &l, 1, NULL)) != NULL)
		series_set(s, (double)g->missed, now_ms);
	if ((s = ev_series_claim(ev, ev, &desc_early, &l, 1, NULL)) != NULL)
		series_set(s, (double)g->early, now_ms);
	if ((s = ev_series_claim(ev, ev, &desc_last, &l, 1, NULL)) != NULL)
		series_set(s, (double)now_ms / 1000.0, now_ms);
}

static void group_metrics_drop(struct evaluator *ev, const char *name)
{
	struct label l = {"rule_group", name};

	ev_series_drop(ev, ev, &desc_duration, &l, 1);
	ev_series_drop(ev, ev, &desc_failures, &l, 1);
	ev_series_drop(ev, ev, &desc_missed, &l, 1);
	ev_series_drop(ev, ev, &desc_early, &l, 1);
	ev_series_drop(ev, ev, &desc_last, &l, 1);
}

/* Adds the transitions that earlier commits lost to the open transaction; returns how
 * many it added. */
static size_t unwritten_add(struct evaluator *ev)
{
	for (size_t k = 0; k < ev->unwritten_count; k++)
		statedb_transition_add(ev->db, &ev->unwritten[k].t);
	return ev->unwritten_count;
}

/* Frees the first n unwritten transitions, which a commit has now stored. */
static void unwritten_drop_written(struct evaluator *ev, size_t n)
{
	if (n == 0)
		return;
	for (size_t k = 0; k < n; k++)
		pending_free(&ev->unwritten[k]);
	memmove(ev->unwritten, ev->unwritten + n,
		(ev->unwritten_count - n) * sizeof(*ev->unwritten));
	ev->unwritten_count -= n;
	log_notice("evaluator", NULL,
		   "%zu alert transitions that a failed commit had kept in memory are stored now",
		   n);
	if (ev->unwritten_count == 0)
		ev->unwritten_full_logged = false;
}

/* Moves this evaluation's transitions, which its commit lost, to the unwritten list. The
 * pending entries keep pointing at the moved copies until ev_deliver_pending. */
static void unwritten_keep_pending(struct evaluator *ev)
{
	for (size_t k = 0; k < ev->pending_count; k++) {
		struct ev_pending *p = &ev->pending[k];

		if (ev->unwritten_count >= EV_UNWRITTEN_MAX) {
			if (!ev->unwritten_full_logged)
				log_error("evaluator", NULL,
					  "%d alert transitions wait for the state database; newer "
					  "ones are not notified until it takes writes again",
					  EV_UNWRITTEN_MAX);
			ev->unwritten_full_logged = true;
			continue;
		}
		ev->unwritten = xreallocarray_grow(ev->unwritten, &ev->unwritten_capacity,
						   ev->unwritten_count + 1, sizeof(*ev->unwritten));
		ev->unwritten[ev->unwritten_count++] = *p;
		p->labels = NULL;
		p->label_count = 0;
		p->annotations = NULL;
		p->annotation_count = 0;
		p->group = NULL;
		p->rule = NULL;
		p->alertname = NULL;
	}
}

void evaluator_eval_group(struct evaluator *ev, size_t group_index, int64_t now_ms)
{
	struct ev_group *g = &ev->groups[group_index];
	int64_t start = mono_ns();
	size_t rewritten = 0;

	if (ev->db != NULL && statedb_begin(ev->db) < 0)
		log_warn("evaluator", NULL, "group %s: cannot start a state transaction", g->name);
	else if (ev->db != NULL)
		rewritten = unwritten_add(ev);
	for (size_t k = 0; k < g->rule_count; k++)
		eval_rule(ev, g, &g->rules[k], now_ms);
	if (ev->db != NULL && statedb_commit(ev->db) < 0) {
		uint64_t suppressed = 0;

		if (throttle_fail(&ev->commit_log, (uint64_t)(mono_ns() / 1000000), &suppressed))
			log_error(
			    "evaluator", NULL,
			    "group %s: the state database did not take this evaluation's "
			    "changes (%" PRIu64 " more such failures since the last report); "
			    "its alert transitions are written again with the next evaluation",
			    g->name, suppressed);
		unwritten_keep_pending(ev);
	} else {
		if (rewritten > 0)
			throttle_ok(&ev->commit_log, NULL);
		unwritten_drop_written(ev, rewritten);
	}
	ev_deliver_pending(ev);

	g->iterations++;
	g->last_eval_ms = now_ms;
	g->last_duration_s = (double)(mono_ns() - start) / 1e9;
	group_metrics(ev, g, now_ms);
}

/* The first evaluation time after `after_ms` of a group: aligned to its interval, offset
 * by a hash of its name so that groups with one interval do not all run at once. */
static int64_t next_slot(const struct ev_group *g, int64_t after_ms)
{
	int64_t phase = (after_ms - g->offset_ms) % g->interval_ms;

	if (phase < 0)
		phase += g->interval_ms;
	return after_ms - phase + g->interval_ms;
}

static void arm_timer(struct ev_group *g, int64_t now_ms)
{
	int64_t delay = g->next_ms - now_ms;
	struct timeval tv;

	if (delay < 0)
		delay = 0;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(g->timer, &tv);
}

static void group_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ev_group *g = arg;
	struct evaluator *ev = g->ev;
	int64_t now;

	(void)fd;
	(void)what;
	now = ev_wall_ms();
	g->nudge_pending = false;
	evaluator_eval_group(ev, (size_t)(g - ev->groups), now);

	/* Turns whose time passed during this evaluation (or while the loop was busy) are
	 * skipped and counted, never run late in a burst. */
	{
		int64_t end = ev_wall_ms();
		/* A timer that fired a little before its slot must not run the same slot twice. */
		int64_t next = next_slot(g, end > g->next_ms ? end : g->next_ms);
		int64_t due = g->next_ms + g->interval_ms;

		if (next > due)
			g->missed += (uint64_t)((next - due) / g->interval_ms);
		g->next_ms = next;
	}
	arm_timer(g, ev_wall_ms());
}

/* Series from which a rule reads whether a probe's runs succeed or fail. */
static const char *const outcome_metrics[] = {"tocsin_probe_success", "tocsin_probe_up",
					      "probe_success"};

static bool group_reads_outcomes(const struct ev_group *g)
{
	for (size_t k = 0; k < g->rule_count; k++)
		for (size_t m = 0; m < sizeof(outcome_metrics) / sizeof(*outcome_metrics); m++)
			if (expr_may_select(g->rules[k].rule->expr, outcome_metrics[m]))
				return true;
	return false;
}

static void arm_nudge(struct evaluator *ev, int64_t at_ms, int64_t now_ms)
{
	int64_t delay = at_ms > now_ms ? at_ms - now_ms : 0;
	struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};

	/* An earlier deadline wins; a later one never delays a pending run. */
	if (evtimer_pending(ev->nudge_timer, NULL) && ev->nudge_at_ms <= at_ms)
		return;
	ev->nudge_at_ms = at_ms;
	evtimer_add(ev->nudge_timer, &tv);
}

static int64_t nudge_spacing_ms(const struct ev_group *g)
{
	return g->interval_ms / 4 > EV_NUDGE_SPACING_MS ? g->interval_ms / 4 : EV_NUDGE_SPACING_MS;
}

/*
 * Evaluates out of turn the groups whose rules read probe outcomes, after one changed. A
 * group whose own turn comes first (or within EV_NUDGE_AHEAD_MS) waits for that turn. A
 * group that ran out of turn less than its spacing ago runs when the spacing has passed.
 * The regular turns keep their slots.
 */
static void nudge_timer(evutil_socket_t fd, short what, void *arg)
{
	struct evaluator *ev = arg;
	int64_t now = ev_wall_ms();
	int64_t next = INT64_MAX;

	(void)fd;
	(void)what;
	for (size_t k = 0; k < ev->group_count; k++) {
		struct ev_group *g = &ev->groups[k];
		int64_t allowed =
		    g->last_nudge_ms != 0 ? g->last_nudge_ms + nudge_spacing_ms(g) : 0;

		if (!g->nudge_pending)
			continue;
		if (g->next_ms - EV_NUDGE_AHEAD_MS <= (allowed > now ? allowed : now)) {
			g->nudge_pending = false; /* the regular turn comes first */
			continue;
		}
		if (allowed > now) {
			next = allowed < next ? allowed : next;
			continue;
		}
		g->nudge_pending = false;
		g->last_nudge_ms = now;
		g->early++;
		evaluator_eval_group(ev, k, now);
		now = ev_wall_ms();
	}
	if (next != INT64_MAX)
		arm_nudge(ev, next, now);
}

void evaluator_nudge(struct evaluator *ev)
{
	bool any = false;
	int64_t now = ev_wall_ms();

	if (ev->nudge_timer == NULL)
		return;
	for (size_t k = 0; k < ev->group_count; k++)
		if (ev->groups[k].reads_outcomes)
			any = ev->groups[k].nudge_pending = true;
	/* The short delay lets the other probes that finish in the same moment (one target
	 * behind many probes) commit their samples first, so one evaluation reads them all. */
	if (any)
		arm_nudge(ev, now + EV_NUDGE_DELAY_MS, now);
}

static void slo_timer(evutil_socket_t fd, short what, void *arg)
{
	struct evaluator *ev = arg;
	int64_t now = ev_wall_ms();

	(void)fd;
	(void)what;
	ev_slo_eval_all(ev, now);
	ev->slo_next_ms = now - now % EV_SLO_INTERVAL_MS + EV_SLO_INTERVAL_MS;
	{
		struct timeval tv = {(time_t)((ev->slo_next_ms - now) / 1000),
				     (suseconds_t)((ev->slo_next_ms - now) % 1000) * 1000};

		evtimer_add(ev->slo_timer, &tv);
	}
}

void evaluator_eval_at(struct evaluator *ev, int64_t now_ms)
{
	for (size_t k = 0; k < ev->group_count; k++) {
		struct ev_group *g = &ev->groups[k];

		if (g->next_ms > now_ms)
			continue;
		/* Turns the caller stepped over were not run at their time: count them as the
		 * timers do when an evaluation overruns. */
		if (g->iterations > 0 && now_ms - g->next_ms >= g->interval_ms)
			g->missed += (uint64_t)((now_ms - g->next_ms) / g->interval_ms);
		evaluator_eval_group(ev, k, now_ms);
		g->next_ms = now_ms + g->interval_ms;
	}
	if (ev->slo_count > 0 && ev->slo_next_ms <= now_ms) {
		ev_slo_eval_all(ev, now_ms);
		ev->slo_next_ms = now_ms + EV_SLO_INTERVAL_MS;
	}
}

/* ---- lifecycle ------------------------------------------------------------------------- */

struct evaluator *evaluator_new(struct event_base *base, struct series_registry *reg,
				struct store *store, struct window_store *ws, struct statedb *db)
{
	struct evaluator *ev = xcalloc(1, sizeof(*ev));

	ev->base = base;
	ev->reg = reg;
	ev->store = store;
	ev->ws = ws;
	ev->db = db;
	throttle_init(&ev->commit_log, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	if (base != NULL) {
		ev->slo_timer = evtimer_new(base, slo_timer, ev);
		ev->nudge_timer = evtimer_new(base, nudge_timer, ev);
	}
	return ev;
}

void evaluator_set_external_labels(struct evaluator *ev, const struct label *labels, size_t count)
{
	ev_labels_free(&ev->external);
	for (size_t k = 0; k < count; k++)
		ev_labels_set(&ev->external, ev_labels_keep(&ev->external, xstrdup(labels[k].name)),
			      ev_labels_keep(&ev->external, xstrdup(labels[k].value)));
	ev_labels_sort(&ev->external);
}

static void restore_instance(void *arg, const struct statedb_alert *a)
{
	struct ev_rule *r = arg;
	struct ev_instance *i;

	if (ev_instance_find(r, a->fingerprint) != NULL)
		return;
	i = ev_instance_add(r, a->fingerprint, a->labels, a->label_count);
	i->inst = a->inst;
	i->seen_seq = 0;
}

/* Restores a rule's instances from the state database; counts what came back. */
size_t ev_restore_rule(struct evaluator *ev, struct ev_rule *r)
{
	if (ev->db == NULL)
		return 0;
	statedb_alert_load(ev->db, r->key, restore_instance, r);
	for (size_t k = 0; k < r->count; k++)
		r->inst[k]->restored_until_ms = ev_wall_ms() + ev->restore_grace_ms;
	return r->count;
}

static struct ev_rule *find_old_rule(struct ev_group *old, size_t old_count, const char *key,
				     enum rule_kind kind)
{
	for (size_t g = 0; g < old_count; g++)
		for (size_t k = 0; k < old[g].rule_count; k++) {
			struct ev_rule *r = &old[g].rules[k];

			if (r->rule != NULL && r->key != NULL && strcmp(r->key, key) == 0 &&
			    r->rule->kind == kind && !r->taken)
				return r;
		}
	return NULL;
}

static void init_rule(struct evaluator *ev, struct ev_group *g, struct ev_rule *r,
		      const struct rule *rule, struct ev_group *old, size_t old_count)
{
	struct ev_rule *prev = find_old_rule(old, old_count, rule->key, rule->kind);

	if (prev != NULL) {
		/* Keep the instances and series of a rule that survives the reload. */
		*r = *prev;
		prev->taken = true;
		memset(prev, 0, sizeof(*prev));
		prev->taken = true;
		for (size_t k = 0; k < r->recorded_count; k++)
			r->recorded[k]->owner = r;
	} else {
		memset(r, 0, sizeof(*r));
		throttle_init(&r->error_log, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	}
	r->rule = rule;
	r->key = rule->key;
	r->alertname = rule->name;
	r->group_name = g->name;
	r->threshold = rule->kind == RULE_THRESHOLD;
	snprintf(r->help, sizeof(r->help), "Recording rule %.200s.", rule->key);
	if (prev == NULL && rule->kind != RULE_RECORD) {
		size_t n = ev_restore_rule(ev, r);

		if (n > 0)
			log_notice("evaluator", NULL, "rule %s: restored %zu alert instances",
				   rule->key, n);
	}
}

/* Drops what a rule that is gone left behind: its series, alerts and stored instances. */
static void retire_rule(struct evaluator *ev, struct ev_rule *r)
{
	if (r->taken)
		return;
	for (size_t k = 0; k < r->recorded_count; k++)
		series_remove(ev->reg, r->recorded[k]);
	r->recorded_count = 0;
	for (size_t k = 0; k < r->count; k++) {
		ev_unexport_alert(ev, r->inst[k]);
		if (ev->db != NULL && r->key != NULL)
			statedb_alert_delete(ev->db, r->key, r->inst[k]->fp);
	}
	ev_rule_clear(r);
}

static void free_groups(struct evaluator *ev, struct ev_group *groups, size_t count)
{
	for (size_t g = 0; g < count; g++) {
		for (size_t k = 0; k < groups[g].rule_count; k++)
			retire_rule(ev, &groups[g].rules[k]);
		if (groups[g].timer != NULL)
			event_free(groups[g].timer);
		free(groups[g].rules);
	}
	free(groups);
}

void evaluator_apply(struct evaluator *ev, struct rule_set *set, int64_t now_ms)
{
	struct ev_group *old = ev->groups;
	size_t old_count = ev->group_count;
	struct rule_set *old_set = ev->set;

	ev->set = set;
	ev->group_count = set != NULL ? set->group_count : 0;
	ev->groups = xcalloc(ev->group_count ? ev->group_count : 1, sizeof(*ev->groups));
	if (ev->ws != NULL && set != NULL) {
		/* SLOs read the samples since their previous observation (latency SLIs count
		 * every probe run), so they need at least a lookback of history too. */
		int64_t history = set->history_ms;

		if (set->slo_count > 0 && history < EXPR_LOOKBACK_MS)
			history = EXPR_LOOKBACK_MS;
		window_store_set_history(ev->ws, history);
	}

	if (ev->db != NULL)
		statedb_begin(ev->db);
	for (size_t k = 0; k < ev->group_count; k++) {
		struct ev_group *g = &ev->groups[k];
		const struct rule_group *rg = &set->groups[k];

		g->ev = ev;
		g->name = rg->name;
		g->interval_ms = rg->interval_ms > 0 ? rg->interval_ms : 60000;
		g->limit = rg->limit;
		g->offset_ms =
		    (int64_t)(hash_string(HASH_FNV_OFFSET, rg->name) % (uint64_t)g->interval_ms);
		g->rule_count = rg->rule_count;
		g->rules = xcalloc(rg->rule_count ? rg->rule_count : 1, sizeof(*g->rules));
		for (size_t j = 0; j < rg->rule_count; j++)
			init_rule(ev, g, &g->rules[j], &rg->rules[j], old, old_count);
		g->reads_outcomes = group_reads_outcomes(g);
		if (ev->base != NULL) {
			g->timer = evtimer_new(ev->base, group_timer, g);
			g->next_ms = next_slot(g, now_ms);
			arm_timer(g, now_ms);
		} else {
			g->next_ms = now_ms;
		}
	}
	ev_slo_apply(ev, set, now_ms);
	if (ev->db != NULL)
		statedb_commit(ev->db);

	for (size_t g = 0; g < old_count; g++) {
		bool kept = false;

		for (size_t k = 0; k < ev->group_count && !kept; k++)
			kept = strcmp(old[g].name, ev->groups[k].name) == 0;
		if (!kept)
			group_metrics_drop(ev, old[g].name);
	}
	free_groups(ev, old, old_count);
	rules_free(old_set);
	if (ev->base != NULL && ev->slo_count > 0) {
		/* The first observation runs at once, so that the SLO series are there from
		 * the start; later ones follow the interval. */
		struct timeval tv = {0, 0};

		ev->slo_next_ms = now_ms;
		evtimer_add(ev->slo_timer, &tv);
	} else {
		ev->slo_next_ms = now_ms;
	}
}

void evaluator_set_restore_grace(struct evaluator *ev, int64_t grace_ms)
{
	ev->restore_grace_ms = grace_ms > 0 ? grace_ms : 0;
}

void evaluator_on_transition(struct evaluator *ev, evaluator_transition_fn *fn, void *arg)
{
	ev->on_transition = fn;
	ev->on_transition_arg = arg;
}

static void list_rule_alerts(const struct evaluator *ev, const struct ev_rule *r,
			     evaluator_alert_fn *fn, void *arg)
{
	struct ev_labels b = {0};

	(void)ev;
	for (size_t k = 0; k < r->count; k++) {
		const struct ev_instance *i = r->inst[k];
		struct evaluator_alert a;

		if (!exported_state(i->inst.state))
			continue;
		ev_instance_labels(r, i, &b);
		a = (struct evaluator_alert){
		    .group = r->group_name,
		    .rule_key = r->key,
		    .alertname = r->alertname,
		    .labels = b.v,
		    .label_count = b.count,
		    .annotations = i->annotations,
		    .annotation_count = i->annotation_count,
		    .inst = &i->inst,
		};
		fn(arg, &a);
	}
	ev_labels_free(&b);
}

void evaluator_alerts(const struct evaluator *ev, evaluator_alert_fn *fn, void *arg)
{
	for (size_t g = 0; g < ev->group_count; g++)
		for (size_t k = 0; k < ev->groups[g].rule_count; k++)
			list_rule_alerts(ev, &ev->groups[g].rules[k], fn, arg);
	for (size_t k = 0; k < ev->slo_count; k++)
		list_rule_alerts(ev, &ev->slos[k].alerts, fn, arg);
}

const struct rule_set *evaluator_rules(const struct evaluator *ev)
{
	return ev->set;
}

uint64_t evaluator_failures_total(const struct evaluator *ev)
{
	return ev->failures_total;
}

void evaluator_stop(struct evaluator *ev)
{
	for (size_t k = 0; k < ev->group_count; k++)
		if (ev->groups[k].timer != NULL)
			evtimer_del(ev->groups[k].timer);
	if (ev->slo_timer != NULL)
		evtimer_del(ev->slo_timer);
	if (ev->nudge_timer != NULL)
		evtimer_del(ev->nudge_timer);
}

/* Removes every series the evaluator wrote (only the evaluator marks series rule_owned),
 * so that nothing in the registry points at freed rules. */
static void remove_owned_series(struct evaluator *ev)
{
	struct series **doomed = NULL;
	size_t count = 0, capacity = 0;

	for (size_t f = 0; f < series_registry_family_count(ev->reg); f++) {
		struct series_family *fam = series_registry_family(ev->reg, f);

		for (size_t k = 0; k < fam->count; k++) {
			if (!fam->series[k]->rule_owned)
				continue;
			doomed = xreallocarray_grow(doomed, &capacity, count + 1, sizeof(*doomed));
			doomed[count++] = fam->series[k];
		}
	}
	for (size_t k = 0; k < count; k++)
		series_remove(ev->reg, doomed[k]);
	free(doomed);
}

void evaluator_free(struct evaluator *ev)
{
	if (ev == NULL)
		return;
	evaluator_stop(ev);
	ev_slo_free_all(ev);
	remove_owned_series(ev);
	for (size_t g = 0; g < ev->group_count; g++) {
		for (size_t k = 0; k < ev->groups[g].rule_count; k++)
			ev_rule_clear(&ev->groups[g].rules[k]);
		if (ev->groups[g].timer != NULL)
			event_free(ev->groups[g].timer);
		free(ev->groups[g].rules);
	}
	free(ev->groups);
	rules_free(ev->set);
	if (ev->slo_timer != NULL)
		event_free(ev->slo_timer);
	if (ev->nudge_timer != NULL)
		event_free(ev->nudge_timer);
	ev_labels_free(&ev->scratch);
	ev_labels_free(&ev->base_labels);
	ev_labels_free(&ev->id_labels);
	ev_labels_free(&ev->ann_labels);
	ev_labels_free(&ev->external);
	free(ev->pending);
	for (size_t k = 0; k < ev->unwritten_count; k++)
		pending_free(&ev->unwritten[k]);
	free(ev->unwritten);
	free(ev);
}

bool evaluator_group_status(const struct evaluator *ev, size_t group,
			    struct evaluator_group_status *out)
{
	const struct ev_group *g;

	if (group >= ev->group_count)
		return false;
	g = &ev->groups[group];
	out->interval_ms = g->interval_ms;
	out->last_eval_ms = g->last_eval_ms;
	out->last_duration_s = g->last_duration_s;
	out->iterations = g->iterations;
	out->missed = g->missed;
	out->failures = g->failures;
	return true;
}

bool evaluator_rule_status(const struct evaluator *ev, size_t group, size_t rule,
			   struct evaluator_rule_status *out)
{
	const struct ev_rule *r;

	if (group >= ev->group_count || rule >= ev->groups[group].rule_count)
		return false;
	r = &ev->groups[group].rules[rule];
	out->last_eval_ms = r->last_eval_ms;
	out->last_duration_s = r->last_duration_s;
	out->last_error = r->last_error;
	out->failures = r->failures;
	out->instance_count = r->count;
	return true;
}
