/*
 * The evaluator's private structures, shared by evaluator.c (rule groups) and
 * evaluator_slo.c (SLOs). Not for other modules.
 */
#ifndef TOCSIN_EVALUATOR_IMPL_H
#define TOCSIN_EVALUATOR_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/evaluator.h"
#include "collector/throttle.h"

struct event;

/* How often SLOs read their SLI and check their burn-rate alerts. */
#define EV_SLO_INTERVAL_MS 30000
/* evaluator_nudge(): how long to wait for other probes' results, and how close a group's
 * own turn must be for it to wait for that instead. */
#define EV_NUDGE_DELAY_MS 20
#define EV_NUDGE_AHEAD_MS 100
/* Out-of-turn evaluations of one group are this far apart at least (or a quarter of its
 * interval when longer), so that a flapping target costs a bounded amount of CPU. */
#define EV_NUDGE_SPACING_MS 1000

/* A growable label set; strings are borrowed or kept with ev_labels_keep(). */
struct ev_labels {
	struct label *v;
	size_t count;
	size_t capacity;
	char **owned;
	size_t owned_count;
	size_t owned_capacity;
};

void ev_labels_set(struct ev_labels *b, const char *name, const char *value);
const char *ev_labels_keep(struct ev_labels *b, char *owned);
void ev_labels_sort(struct ev_labels *b);
void ev_labels_clear(struct ev_labels *b);
void ev_labels_free(struct ev_labels *b);
uint64_t ev_labels_fingerprint(const struct label *v, size_t count);

struct ev_instance {
	uint64_t fp;
	struct label *labels; /* identity labels, sorted, owned */
	size_t label_count;
	struct label *annotations; /* last rendered, sorted, owned */
	size_t annotation_count;
	struct alert_instance inst;
	uint64_t seen_seq; /* the rule's eval_seq when the expression last returned it */
	double seen_value;
	/* Restored from the state database: while its series may not be sampled yet (before
	 * this time), an evaluation that does not return it leaves it as it is. */
	int64_t restored_until_ms;
	/* ALERTS and ALERTS_FOR_STATE as exported now: the series this instance owns (NULL
	 * when not exported, or when another rule's alert owns the same label set) and the
	 * state and shown level their labels were made from. */
	bool exported;
	enum alert_state exported_state;
	enum alert_level exported_level;
	struct series *alerts_series;
	struct series *for_state_series;
	struct ev_instance *next; /* hash chain */
};

struct ev_rule {
	const struct rule *rule; /* NULL for an SLO's alerts */
	const char *key;
	const char *alertname;
	const char *group_name;
	bool threshold;
	bool taken;     /* moved to the new rule set by a reload */
	bool duplicate; /* this evaluation met one label set twice */
	struct ev_instance **inst;
	size_t count;
	size_t capacity;
	struct ev_instance **buckets;
	size_t bucket_count;      /* 0 or a power of two */
	struct series **recorded; /* recording rule: series it owns */
	size_t recorded_count;
	size_t recorded_capacity;
	uint64_t eval_seq;
	int64_t last_eval_ms;
	double last_duration_s;
	char *last_error;
	uint64_t failures;
	struct throttle error_log;
	char help[256];
};

struct ev_group {
	struct evaluator *ev;
	const char *name;
	int64_t interval_ms;
	int64_t offset_ms;
	uint64_t limit;
	struct ev_rule *rules;
	size_t rule_count;
	struct event *timer;
	int64_t next_ms;
	bool reads_outcomes;   /* a rule can select a probe's success or health series */
	bool nudge_pending;    /* a probe's outcome changed since the last evaluation */
	int64_t last_nudge_ms; /* last evaluation out of turn (evaluator_nudge()) */
	uint64_t iterations, missed, failures;
	uint64_t early; /* evaluations out of turn */
	int64_t last_eval_ms;
	double last_duration_s;
};

struct ev_slo {
	const struct slo_config *c;
	struct slo_state *st;
	struct ev_rule alerts; /* one instance per alert window pair */
	char key[300];
};

/* A transition persisted in the current transaction and handed on after its commit. */
struct ev_pending {
	struct statedb_transition t;
	struct label *labels;
	size_t label_count;
	struct label *annotations;
	size_t annotation_count;
	char *group;
	char *rule;
	char *alertname;
};

struct evaluator {
	struct event_base *base;
	struct series_registry *reg;
	struct store *store;
	struct window_store *ws;
	struct statedb *db;
	struct rule_set *set;
	struct ev_group *groups;
	size_t group_count;
	struct ev_slo *slos;
	size_t slo_count;
	struct event *slo_timer;
	int64_t slo_next_ms;
	struct event *nudge_timer;
	int64_t nudge_at_ms; /* when nudge_timer fires, while it is pending */
	int64_t restore_grace_ms;
	struct ev_labels external;
	struct ev_labels scratch, base_labels, id_labels, ann_labels;
	struct ev_pending *pending;
	size_t pending_count;
	size_t pending_capacity;
	/* Transitions of evaluations whose commit failed (a full disk, a lock): written
	 * again with the next evaluation, because the alerter reads transitions from the
	 * state database only. Oldest first, at most EV_UNWRITTEN_MAX. */
	struct ev_pending *unwritten;
	size_t unwritten_count;
	size_t unwritten_capacity;
	bool unwritten_full_logged;
	struct throttle commit_log;
	int64_t local_transition_id;
	uint64_t failures_total;
	evaluator_transition_fn *on_transition;
	void *on_transition_arg;
};

int64_t ev_wall_ms(void);

struct ev_instance *ev_instance_find(const struct ev_rule *r, uint64_t fp);
struct ev_instance *ev_instance_add(struct ev_rule *r, uint64_t fp, const struct label *labels,
				    size_t count);
void ev_instance_set_annotations(struct ev_instance *i, const struct label *v, size_t count);
/* Removes instance k of r; the order of the others changes. */
void ev_instance_remove(struct ev_rule *r, size_t k);
void ev_instance_labels(const struct ev_rule *r, const struct ev_instance *i,
			struct ev_labels *out);
void ev_rule_clear(struct ev_rule *r);
size_t ev_restore_rule(struct evaluator *ev, struct ev_rule *r);

struct series *ev_series_claim(struct evaluator *ev, const void *owner,
			       const struct metric_desc *desc, const struct label *labels,
			       size_t count, bool *claimed_now);
void ev_series_write(struct evaluator *ev, struct series *s, double value, int64_t now_ms,
		     uint32_t step_s);
void ev_series_stale(struct evaluator *ev, struct series *s, int64_t now_ms);
void ev_series_drop(struct evaluator *ev, const void *owner, const struct metric_desc *desc,
		    const struct label *labels, size_t count);

void ev_record_change(struct evaluator *ev, const struct ev_rule *r, struct ev_instance *i,
		      const struct alert_change *c, int64_t now_ms);
void ev_deliver_pending(struct evaluator *ev);
void ev_persist_instance(struct evaluator *ev, const struct ev_rule *r,
			 const struct ev_instance *i);
void ev_unexport_alert(struct evaluator *ev, struct ev_instance *i);
bool ev_step_instance(struct evaluator *ev, struct ev_rule *r, struct ev_instance *i,
		      const struct alert_params *params, bool present, double value, int64_t now_ms,
		      int64_t forget_after_ms);

/* evaluator_slo.c */
void ev_slo_apply(struct evaluator *ev, const struct rule_set *set, int64_t now_ms);
void ev_slo_eval_all(struct evaluator *ev, int64_t now_ms);
void ev_slo_free_all(struct evaluator *ev);

#endif
