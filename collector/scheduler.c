/*
 * Probe scheduling and result commit; see scheduler.h for the contract.
 *
 * A run's done callback can fire deep inside a probe's own I/O callback (or inside
 * start() itself), where freeing the run would pull the stack out from under the probe.
 * So the done callback only records the run and activates a deferred event. The commit
 * and the free happen in that event, from the top of the loop.
 */
#include "collector/scheduler.h"

#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/config.h"
#include "collector/hash.h"
#include "collector/health.h"
#include "collector/log.h"
#include "collector/series.h"
#include "collector/shard.h"
#include "collector/store.h"
#include "collector/throttle.h"
#include "collector/units.h"
#include "collector/window.h"
#include "collector/xalloc.h"
#include "probes/probe.h"

struct sched_probe {
	struct scheduler *sched;
	char *name;
	const struct probe_type *type;
	void *state;
	uint64_t interval_ms;
	uint64_t timeout_ms;
	uint32_t heartbeat_s;
	uint64_t fast_interval_ms;
	struct label *labels; /* user labels, owned */
	size_t label_count;
	uint64_t fingerprint;

	struct event *timer;
	struct event *deadline;
	struct event *commit;  /* deferred commit of a finished run */
	struct probe_run *run; /* in flight, or finished and waiting for commit */
	uint64_t next_ms;      /* monotonic time of the next turn */
	uint64_t phase_ms;     /* time of the first turn: regular turns are phase + k x interval */
	bool once;             /* run once for --once, then report */
	bool retired;          /* removed from the config while a run was in flight */
	bool kept;             /* scheduler_apply: still in the new config */

	uint64_t run_seq;
	uint64_t runs;
	uint64_t failures;
	uint64_t skipped;
	uint64_t state_changes;
	int last_ok; /* -1 before the first run */
	struct health health;
	uint64_t duplicates; /* samples dropped because their series was already set */
	struct throttle duplicate_log;
	char failure_status[32]; /* of the last failed run, "" before the first failure */
	char failure_reason[256];
	/* The last finished run, for the API: wall-clock times, 0 before the first. */
	int64_t last_run_ms;
	int64_t last_change_ms; /* when the health state last changed, unknown -> up included */
	double last_duration_s;
	char last_status[32];
	char last_reason[256];

	struct series **owned; /* every series this probe writes */
	size_t owned_count;
	size_t owned_capacity;
};

struct scheduler {
	struct event_base *base;
	struct series_registry *reg;
	struct store *store;
	struct window_store *window; /* sample windows for the evaluator, or NULL */
	struct sched_probe **probes;
	size_t probe_count;
	size_t probe_capacity;
	uint64_t samples_total;
	scheduler_report_fn *report;
	void *report_arg;
	scheduler_outcome_fn *on_outcome;
	void *on_outcome_arg;
	size_t once_pending;
	struct sched_probe **retired; /* removed, waiting for their run's deferred commit */
	size_t retired_count;
	size_t retired_capacity;
};

static const struct metric_desc desc_success = {
    "tocsin_probe_success", "Whether the probe's last run succeeded (1) or failed (0).",
    METRIC_GAUGE};
static const struct metric_desc desc_duration = {
    "tocsin_probe_duration_seconds", "How long the probe's last run took.", METRIC_GAUGE};
static const struct metric_desc desc_runs = {"tocsin_probe_runs_total",
					     "Runs of the probe that finished.", METRIC_COUNTER};
static const struct metric_desc desc_failures = {
    "tocsin_probe_failures_total", "Runs of the probe that failed, timeouts included.",
    METRIC_COUNTER};
static const struct metric_desc desc_skipped = {
    "tocsin_probe_skipped_total",
    "Turns skipped because the probe's previous run was still in flight.", METRIC_COUNTER};
static const struct metric_desc desc_up = {
    "tocsin_probe_up",
    "Health state after rise/fall: 1 up, 0 down; absent until the first decision.", METRIC_GAUGE};
static const struct metric_desc desc_state_changes = {"tocsin_probe_state_changes_total",
						      "Health state changes (up to down and back).",
						      METRIC_COUNTER};
static const struct metric_desc desc_failure_info = {
    "tocsin_probe_last_failure_info",
    "The status and reason of the probe's last failed run; always 1.", METRIC_INFO};

/* A series its probe stopped emitting is stale at once, so /metrics leaves it out. After
 * this many further runs without it, it is removed from memory; its archive file stays. */
#define STALE_FORGET_RUNS 5

void scheduler_set_window(struct scheduler *sched, struct window_store *ws)
{
	sched->window = ws;
}

void scheduler_on_outcome_change(struct scheduler *sched, scheduler_outcome_fn *fn, void *arg)
{
	sched->on_outcome = fn;
	sched->on_outcome_arg = arg;
}

struct scheduler *scheduler_new(struct event_base *base, struct series_registry *reg,
				struct store *store)
{
	struct scheduler *sched = xcalloc(1, sizeof(*sched));

	sched->base = base;
	sched->reg = reg;
	sched->store = store;
	return sched;
}

static char *probe_ids(const struct sched_probe *p, char *buf, size_t size)
{
	const char *target = p->type->target != NULL ? p->type->target(p->state) : NULL;

	if (target == NULL)
		return log_ids(buf, size, "probe", p->name, "type", p->type->name, NULL);
	return log_ids(buf, size, "probe", p->name, "type", p->type->name, "target", target, NULL);
}

/* First turn: a stable offset inside the interval, derived from the name. */
static uint64_t first_turn_ms(const struct sched_probe *p, uint64_t now_ms)
{
	return now_ms + hash_string(HASH_FNV_OFFSET, p->name) % p->interval_ms;
}

static void arm_timer(struct sched_probe *p)
{
	uint64_t now = probe_now_ms();
	uint64_t delay = p->next_ms > now ? p->next_ms - now : 0;
	struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};

	/* The delay was computed from the clock now, not from the loop's cached time. */
	event_base_update_cache_time(p->sched->base);
	evtimer_add(p->timer, &tv);
}

static void owned_add(struct sched_probe *p, struct series *s)
{
	p->owned =
	    xreallocarray_grow(p->owned, &p->owned_capacity, p->owned_count + 1, sizeof(*p->owned));
	p->owned[p->owned_count++] = s;
}

/* Merges sample labels, the probe label and user labels. A user label that collides with
 * a sample label is renamed exported_NAME, as Prometheus does for scraped targets. */
static size_t merge_labels(const struct sched_probe *p, const struct probe_sample *smp,
			   struct label *out, char names[][80], size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < smp->label_count && n < max; i++)
		out[n++] = smp->labels[i];
	if (n < max)
		out[n++] = (struct label){"probe", p->name};
	for (size_t i = 0; i < p->label_count && n < max; i++) {
		const char *name = p->labels[i].name;

		for (size_t j = 0; j < smp->label_count; j++) {
			if (strcmp(smp->labels[j].name, name) == 0) {
				snprintf(names[i], 80, "exported_%s", name);
				name = names[i];
				break;
			}
		}
		out[n++] = (struct label){name, p->labels[i].value};
	}
	return n;
}

static void commit_sample(struct sched_probe *p, const struct probe_sample *smp, int64_t wall_ms)
{
	struct scheduler *sched = p->sched;
	struct label labels[64];
	char renamed[32][80];
	size_t n;
	struct series *s;

	if (smp->label_count + 1 + p->label_count > 64 || p->label_count > 32) {
		log_warn("scheduler", NULL, "probe %s: metric %s has too many labels; dropped",
			 p->name, smp->desc->name);
		return;
	}
	n = merge_labels(p, smp, labels, renamed, 64);
	s = series_intern(sched->reg, smp->desc, labels, n);
	if (s == NULL)
		return;

	if (s->owner == p && s->owner_seq == p->run_seq) {
		/* Two samples of one run map to one series (two interfaces whose names differ
		 * only in bytes that are not valid UTF-8, say): keep the first, say so. */
		p->duplicates++;
		if (throttle_fail(&p->duplicate_log, probe_now_ms(), NULL))
			log_warn(
			    "scheduler", NULL,
			    "probe %s emitted metric %s twice with the same labels in one run; "
			    "kept the first value (%llu duplicates so far)",
			    p->name, smp->desc->name, (unsigned long long)p->duplicates);
		return;
	}
	if (s->rule_owned) {
		if (throttle_fail(&p->duplicate_log, probe_now_ms(), NULL))
			log_warn("scheduler", NULL,
				 "probe %s emitted metric %s, which a recording rule writes; "
				 "dropped the probe's sample (rename the rule's `record`)",
				 p->name, smp->desc->name);
		return;
	}
	if (s->owner != p) {
		s->owner = p;
		owned_add(p, s);
	}
	s->owner_seq = p->run_seq;
	series_set(s, smp->value, wall_ms);
	sched->samples_total++;
	if (sched->window != NULL)
		window_append(sched->window, s, wall_ms, smp->value);

	if (sched->store == NULL)
		return;
	if (smp->desc->type != METRIC_INFO && s->file == NULL) {
		uint32_t step = (uint32_t)(p->interval_ms / 1000);

		s->file = store_file_get(sched->store, s, step ? step : 1, p->heartbeat_s);
	}
	if (s->file != NULL && isfinite(smp->value))
		store_submit(sched->store, s->file, wall_ms / 1000, smp->value);
}

static void emit_own_metrics(struct sched_probe *p, struct probe_run *run, bool ok)
{
	struct label type_label = {"type", p->type->name};
	double seconds = probe_run_duration_seconds(run);

	/* Added to the run so that they follow the same label and archive path. */
	probe_run_add_sample(run, &desc_success, &type_label, 1, ok ? 1 : 0);
	probe_run_add_sample(run, &desc_duration, &type_label, 1, seconds);
	probe_run_add_sample(run, &desc_runs, &type_label, 1, (double)p->runs);
	probe_run_add_sample(run, &desc_failures, &type_label, 1, (double)p->failures);
	probe_run_add_sample(run, &desc_skipped, &type_label, 1, (double)p->skipped);
	probe_run_add_sample(run, &desc_state_changes, &type_label, 1, (double)p->state_changes);
	if (p->health.state != HEALTH_UNKNOWN)
		probe_run_add_sample(run, &desc_up, &type_label, 1,
				     p->health.state == HEALTH_UP ? 1 : 0);
	if (!ok || p->failure_status[0] != '\0') {
		struct label info[] = {{"type", p->type->name},
				       {"status", p->failure_status},
				       {"reason", p->failure_reason}};

		if (!ok) {
			snprintf(p->failure_status, sizeof(p->failure_status), "%s",
				 probe_status_info(probe_run_status(run))->name);
			snprintf(p->failure_reason, sizeof(p->failure_reason), "%s",
				 probe_run_reason(run));
		}
		probe_run_add_sample(run, &desc_failure_info, info, 3, 1);
	}
}

/*
 * One notice line per health state change, and only then; its format is an interface
 * (tests and operators grep it): "state OLD -> NEW after MS ms: status=S reason="R"
 * (rise|fall N/M)".
 */
static void log_outcome(struct sched_probe *p, struct probe_run *run, bool ok,
			enum health_state before)
{
	char ids[512];
	char position[32];
	const struct probe_status_info *info = probe_status_info(probe_run_status(run));
	double ms = probe_run_duration_seconds(run) * 1000.0;

	health_position(&p->health, ok, position, sizeof(position));
	if (p->health.state == before) {
		log_debug("scheduler", probe_ids(p, ids, sizeof(ids)),
			  "run finished in %.3f ms: status=%s reason=\"%s\" (%s)", ms, info->name,
			  probe_run_reason(run), position);
		return;
	}
	log_notice("scheduler", probe_ids(p, ids, sizeof(ids)),
		   "state %s -> %s after %.3f ms: status=%s reason=\"%s\" (%s)",
		   health_state_name(before), health_state_name(p->health.state), ms, info->name,
		   probe_run_reason(run), position);
}

/* Marks the series this run did not write stale, and removes long-stale ones. */
static void mark_stale(struct sched_probe *p, int64_t wall_ms)
{
	size_t kept = 0;

	for (size_t i = 0; i < p->owned_count; i++) {
		struct series *s = p->owned[i];

		if (s->owner_seq != p->run_seq && !s->stale) {
			s->stale = true;
			if (p->sched->window != NULL)
				window_mark_stale(p->sched->window, s, wall_ms);
		}
		if (s->owner_seq + STALE_FORGET_RUNS < p->run_seq) {
			series_remove(p->sched->reg, s);
			continue;
		}
		p->owned[kept++] = s;
	}
	p->owned_count = kept;
}

static void probe_free(struct sched_probe *p);

/* Hands --once the series this run wrote, with the labels /metrics would show. */
static void report_committed(struct sched_probe *p, struct probe_run *run)
{
	struct scheduler *sched = p->sched;
	const struct series **written = xcalloc(p->owned_count + 1, sizeof(*written));
	size_t n = 0;

	for (size_t i = 0; i < p->owned_count; i++) {
		if (p->owned[i]->owner_seq == p->run_seq)
			written[n++] = p->owned[i];
	}
	sched->report(p->name, p->type->name, run, written, n, sched->report_arg);
	free(written);
}

/* While failing, the next turn comes after fast_interval instead of the regular grid. */
static void schedule_fast_turn(struct sched_probe *p)
{
	uint64_t fast = probe_now_ms() + p->fast_interval_ms;

	if (fast < p->next_ms) {
		p->next_ms = fast;
		arm_timer(p);
	}
}

/* The first regular turn after now: phase + k x interval. */
static uint64_t next_regular_turn(const struct sched_probe *p, uint64_t now)
{
	if (now < p->phase_ms)
		return p->phase_ms;
	return now + p->interval_ms - (now - p->phase_ms) % p->interval_ms;
}

static void commit_run(evutil_socket_t fd, short what, void *arg)
{
	struct sched_probe *p = arg;
	struct probe_run *run = p->run;
	enum probe_status_class cls = probe_status_info(probe_run_status(run))->status_class;
	/* A warning (a Nagios plugin's exit 1) is a degraded but working target. */
	bool ok = cls == PROBE_CLASS_OK || cls == PROBE_CLASS_WARNING;
	int64_t wall_ms = probe_wall_ms();
	struct scheduler *sched = p->sched;
	enum health_state before = p->health.state;

	(void)fd;
	(void)what;
	evtimer_del(p->deadline);
	p->run_seq++;
	p->runs++;
	if (!ok)
		p->failures++;
	if (health_update(&p->health, ok) && before != HEALTH_UNKNOWN)
		p->state_changes++;
	if (p->health.state != before)
		p->last_change_ms = wall_ms;
	p->last_run_ms = wall_ms;
	p->last_duration_s = probe_run_duration_seconds(run);
	snprintf(p->last_status, sizeof(p->last_status), "%s",
		 probe_status_info(probe_run_status(run))->name);
	snprintf(p->last_reason, sizeof(p->last_reason), "%s", probe_run_reason(run));

	if (!p->retired) {
		emit_own_metrics(p, run, ok);
		log_outcome(p, run, ok, before);
		for (size_t i = 0; i < probe_run_sample_count(run); i++)
			commit_sample(p, probe_run_sample(run, i), wall_ms);
		mark_stale(p, wall_ms);
		if (sched->on_outcome != NULL &&
		    ((p->runs == 1 ? !ok : ok != p->last_ok) || p->health.state != before))
			sched->on_outcome(sched->on_outcome_arg);
	}
	p->last_ok = ok;

	if (p->once && sched->report != NULL)
		report_committed(p, run);
	probe_run_free(run);
	p->run = NULL;

	if (p->retired) {
		probe_free(p);
		return;
	}
	if (p->once) {
		p->once = false;
		if (--sched->once_pending == 0)
			event_base_loopbreak(sched->base);
		return;
	}
	if (!ok && p->fast_interval_ms != 0)
		schedule_fast_turn(p);
}

static void run_done(struct probe_run *run, void *arg)
{
	struct sched_probe *p = arg;

	(void)run;
	event_active(p->commit, EV_TIMEOUT, 0);
}

static void deadline_passed(evutil_socket_t fd, short what, void *arg)
{
	struct sched_probe *p = arg;
	char reason[64];
	char dur[32];

	(void)fd;
	(void)what;
	if (p->run == NULL || probe_run_finished(p->run))
		return;
	if (p->type->cancel != NULL)
		p->type->cancel(p->run, p->state);
	units_format_duration(p->timeout_ms, dur, sizeof(dur));
	if (probe_run_phase(p->run) != NULL)
		snprintf(reason, sizeof(reason), "timeout after %s in phase %s", dur,
			 probe_run_phase(p->run));
	else
		snprintf(reason, sizeof(reason), "timeout after %s", dur);
	probe_run_timeout(p->run, reason);
}

static void start_run(struct sched_probe *p)
{
	uint64_t t = p->timeout_ms;
	struct timeval tv = {(time_t)(t / 1000), (suseconds_t)(t % 1000) * 1000};

	p->run = probe_run_new(p->sched->base, p->name, run_done, p);
	evtimer_add(p->deadline, &tv);
	p->type->start(p->run, p->state);
}

static void turn(evutil_socket_t fd, short what, void *arg)
{
	struct sched_probe *p = arg;
	uint64_t now = probe_now_ms();
	char ids[256];

	(void)fd;
	(void)what;

	/* Next turn on the probe's grid, missed turns skipped; fast while failing. libevent
	 * measures timeouts from its cached loop time, so a timer can fire a little before
	 * the intended turn: count from that turn then, or the next one would come at once
	 * and find this run still in flight. */
	p->next_ms = next_regular_turn(p, now > p->next_ms ? now : p->next_ms);
	if (p->last_ok == 0 && p->fast_interval_ms != 0 && now + p->fast_interval_ms < p->next_ms)
		p->next_ms = now + p->fast_interval_ms;
	arm_timer(p);

	if (p->run != NULL) {
		p->skipped++;
		log_info("scheduler", probe_ids(p, ids, sizeof(ids)),
			 "previous run still in flight; turn skipped (%llu so far)",
			 (unsigned long long)p->skipped);
		return;
	}
	start_run(p);
}

static struct sched_probe *probe_new(struct scheduler *sched, struct config *cfg,
				     struct config_probe *cp)
{
	struct sched_probe *p = xcalloc(1, sizeof(*p));

	(void)cfg;
	p->sched = sched;
	p->name = xstrdup(cp->name);
	p->type = cp->type;
	p->state = cp->state;
	cp->state = NULL;
	p->interval_ms = cp->interval_ms ? cp->interval_ms : 1000;
	p->timeout_ms = cp->timeout_ms ? cp->timeout_ms : p->interval_ms;
	p->heartbeat_s = cp->heartbeat_s;
	p->fast_interval_ms = cp->fast_interval_ms;
	health_init(&p->health, cp->rise, cp->fall);
	throttle_init(&p->duplicate_log, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	p->fingerprint = cp->fingerprint;
	p->label_count = cp->label_count;
	p->labels = xcalloc(cp->label_count ? cp->label_count : 1, sizeof(*p->labels));
	for (size_t i = 0; i < cp->label_count; i++) {
		p->labels[i].name = xstrdup(cp->labels[i].name);
		p->labels[i].value = xstrdup(cp->labels[i].value);
	}
	p->last_ok = -1;
	p->timer = evtimer_new(sched->base, turn, p);
	p->deadline = evtimer_new(sched->base, deadline_passed, p);
	p->commit = event_new(sched->base, -1, 0, commit_run, p);
	return p;
}

static void remove_owned_series(struct sched_probe *p)
{
	for (size_t i = 0; i < p->owned_count; i++)
		series_remove(p->sched->reg, p->owned[i]);
	p->owned_count = 0;
}

static void probe_free(struct sched_probe *p)
{
	struct scheduler *sched = p->sched;

	for (size_t i = 0; i < sched->retired_count; i++) {
		if (sched->retired[i] == p) {
			sched->retired[i] = sched->retired[--sched->retired_count];
			break;
		}
	}
	event_free(p->timer);
	event_free(p->deadline);
	event_free(p->commit);
	remove_owned_series(p);
	free(p->owned);
	if (p->type->free != NULL)
		p->type->free(p->state);
	for (size_t i = 0; i < p->label_count; i++) {
		free((char *)p->labels[i].name);
		free((char *)p->labels[i].value);
	}
	free(p->labels);
	free(p->name);
	free(p);
}

/* Stops a probe: frees it now, or, with a run in flight, cancels the run and frees it
 * when the deferred commit comes (which may not free it from inside a callback). */
static void probe_retire(struct sched_probe *p)
{
	struct scheduler *sched = p->sched;

	evtimer_del(p->timer);
	p->retired = true;
	if (p->run == NULL) {
		probe_free(p);
		return;
	}

	/* Its series go now: a successor with the same name may claim them before the
	 * deferred commit frees this instance. */
	remove_owned_series(p);
	sched->retired = xreallocarray_grow(sched->retired, &sched->retired_capacity,
					    sched->retired_count + 1, sizeof(*sched->retired));
	sched->retired[sched->retired_count++] = p;
	if (!probe_run_finished(p->run)) {
		if (p->type->cancel != NULL)
			p->type->cancel(p->run, p->state);
		probe_run_finish(p->run, PROBE_STATUS_CANCELLED, "probe removed from the config");
	}
}

static int compare_probe_names(const void *a, const void *b)
{
	const struct sched_probe *x = *(const struct sched_probe *const *)a;
	const struct sched_probe *y = *(const struct sched_probe *const *)b;

	return strcmp(x->name, y->name);
}

/* Binary search in probes sorted by name. */
static struct sched_probe *find_sorted(struct sched_probe **sorted, size_t count, const char *name)
{
	size_t lo = 0;
	size_t hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(sorted[mid]->name, name);

		if (c == 0)
			return sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void scheduler_apply(struct scheduler *sched, struct config *cfg)
{
	struct sched_probe **next = xcalloc(cfg->probe_count + 1, sizeof(*next));
	/* Sorted by name so that reconciling thousands of discovered probes stays
	 * O(n log n) on the loop. */
	struct sched_probe **sorted = xcalloc(sched->probe_count + 1, sizeof(*sorted));
	uint64_t now = probe_now_ms();
	size_t count = 0;
	size_t foreign = 0;
	char ids[256];

	if (sched->probe_count > 0) {
		memcpy(sorted, sched->probes, sched->probe_count * sizeof(*sorted));
		qsort(sorted, sched->probe_count, sizeof(*sorted), compare_probe_names);
	}
	for (size_t i = 0; i < sched->probe_count; i++)
		sched->probes[i]->kept = false;

	for (size_t i = 0; i < cfg->probe_count; i++) {
		struct config_probe *cp = &cfg->probes[i];
		struct sched_probe *old;
		struct sched_probe *p;

		/* A template is not run itself; its discovered targets come as probes. */
		if (cp->discovery != NULL)
			continue;
		/* Another instance runs it: no timer, no series, nothing exported here. */
		if (!shard_owns(cfg->shard_index, cfg->shard_count, cp->name)) {
			foreign++;
			continue;
		}
		old = find_sorted(sorted, sched->probe_count, cp->name);
		if (old != NULL && !old->kept && old->fingerprint == cp->fingerprint &&
		    old->type == cp->type) {
			old->kept = true;
			next[count++] = old;
			continue;
		}
		p = probe_new(sched, cfg, cp);
		p->next_ms = first_turn_ms(p, now);
		p->phase_ms = p->next_ms;
		arm_timer(p);
		next[count++] = p;
		log_info("scheduler", probe_ids(p, ids, sizeof(ids)), "%s",
			 old != NULL ? "probe changed; restarted" : "probe started");
	}

	/* Retire what the new config no longer has (or has changed). */
	for (size_t i = 0; i < sched->probe_count; i++) {
		struct sched_probe *p = sched->probes[i];

		if (!p->kept) {
			log_info("scheduler", probe_ids(p, ids, sizeof(ids)), "probe stopped");
			probe_retire(p);
		}
	}

	if (cfg->shard_count > 0)
		log_info("scheduler", NULL, "shard %u/%u: runs %zu of %zu probes", cfg->shard_index,
			 cfg->shard_count, count, count + foreign);
	free(sorted);
	free(sched->probes);
	sched->probes = next;
	sched->probe_count = count;
	sched->probe_capacity = count;
}

void scheduler_apply_with_discovered(struct scheduler *sched, struct config *cfg,
				     struct config_probe *const *found, size_t found_count)
{
	size_t total = cfg->probe_count + found_count;
	struct config_probe *all = xcalloc(total + 1, sizeof(*all));
	struct config_probe **origin = xcalloc(total + 1, sizeof(*origin));
	struct config merged = *cfg;
	size_t n = 0;

	for (size_t i = 0; i < cfg->probe_count; i++) {
		if (cfg->probes[i].discovery != NULL)
			continue;
		all[n] = cfg->probes[i];
		origin[n++] = &cfg->probes[i];
	}
	for (size_t i = 0; i < found_count; i++) {
		all[n] = *found[i];
		origin[n++] = found[i];
	}
	merged.probes = all;
	merged.probe_count = n;
	scheduler_apply(sched, &merged);

	/* scheduler_apply cleared the state it took in the copies; clear the records too. */
	for (size_t i = 0; i < n; i++)
		origin[i]->state = all[i].state;
	free(all);
	free(origin);
}

void scheduler_run_once(struct scheduler *sched, scheduler_report_fn *report, void *arg)
{
	sched->report = report;
	sched->report_arg = arg;
	sched->once_pending = sched->probe_count;
	for (size_t i = 0; i < sched->probe_count; i++) {
		struct sched_probe *p = sched->probes[i];

		evtimer_del(p->timer);
		p->once = true;
		start_run(p);
	}
	if (sched->probe_count == 0)
		event_base_loopbreak(sched->base);
}

void scheduler_stop(struct scheduler *sched)
{
	for (size_t i = 0; i < sched->probe_count; i++) {
		struct sched_probe *p = sched->probes[i];

		evtimer_del(p->timer);
		if (p->run != NULL && !probe_run_finished(p->run) && p->type->cancel != NULL)
			p->type->cancel(p->run, p->state);
	}
}

void scheduler_free(struct scheduler *sched)
{
	if (sched == NULL)
		return;
	scheduler_stop(sched);
	for (size_t i = 0; i < sched->probe_count; i++) {
		struct sched_probe *p = sched->probes[i];

		if (p->run != NULL)
			probe_run_free(p->run);
		probe_free(p);
	}
	while (sched->retired_count > 0) {
		struct sched_probe *p = sched->retired[0];

		if (p->run != NULL)
			probe_run_free(p->run);
		probe_free(p);
	}
	free(sched->retired);
	free(sched->probes);
	free(sched);
}

size_t scheduler_probe_count(const struct scheduler *sched)
{
	return sched->probe_count;
}

uint64_t scheduler_samples_total(const struct scheduler *sched)
{
	return sched->samples_total;
}

bool scheduler_probe_info(const struct scheduler *sched, size_t index,
			  struct scheduler_probe_info *out)
{
	const struct sched_probe *p;

	if (index >= sched->probe_count)
		return false;
	p = sched->probes[index];
	memset(out, 0, sizeof(*out));
	out->name = p->name;
	out->type = p->type->name;
	out->target = p->type->target != NULL ? p->type->target(p->state) : NULL;
	out->interval_ms = p->interval_ms;
	out->timeout_ms = p->timeout_ms;
	out->labels = p->labels;
	out->label_count = p->label_count;
	out->state = p->health.state;
	out->runs = p->runs;
	out->failures = p->failures;
	out->last_run_ms = p->last_run_ms;
	out->last_change_ms = p->last_change_ms;
	out->last_duration_s = p->last_duration_s;
	out->last_status = p->last_run_ms != 0 ? p->last_status : NULL;
	out->last_reason = p->last_run_ms != 0 ? p->last_reason : NULL;
	return true;
}
