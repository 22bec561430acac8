/*
 * The alert lifecycle: alerting rules, threshold levels with hysteresis, no-data policies
 * and flap detection. Each function depends only on an instance, the rule's parameters and
 * the evaluation time. alert.h states the contract.
 */
#include "collector/alert.h"

#include <math.h>
#include <string.h>

#define FLAP_MASK ((UINT32_C(1) << ALERT_FLAP_HISTORY) - 1)

/*
 * Weights of a change in the flap history: the newest change weighs FLAP_WEIGHT_NEWEST and
 * the oldest possible one (between the two oldest entries) FLAP_WEIGHT_OLDEST, linear in
 * between. The newest change thus weighs 50% more than the oldest, as Nagios Core's flap
 * detection documentation describes it (its base/flapping.c uses 0.75 and 1.25). The
 * weights of the ALERT_FLAP_HISTORY - 1 possible changes average 1, so the percentage is
 * the weighted sum over that count.
 */
#define FLAP_WEIGHT_NEWEST 1.2
#define FLAP_WEIGHT_OLDEST 0.8

const char *alert_state_name(enum alert_state s)
{
	switch (s) {
	case ALERT_INACTIVE:
		return "inactive";
	case ALERT_PENDING:
		return "pending";
	case ALERT_FIRING:
		return "firing";
	case ALERT_STALE:
		return "stale";
	}
	return "unknown";
}

int alert_state_parse(const char *name, enum alert_state *out)
{
	static const enum alert_state states[] = {ALERT_INACTIVE, ALERT_PENDING, ALERT_FIRING,
						  ALERT_STALE};

	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		if (strcmp(name, alert_state_name(states[i])) == 0) {
			*out = states[i];
			return 0;
		}
	}
	return -1;
}

const char *alert_level_name(enum alert_level l)
{
	switch (l) {
	case ALERT_LEVEL_OK:
		return "ok";
	case ALERT_LEVEL_WARNING:
		return "warning";
	case ALERT_LEVEL_CRITICAL:
		return "critical";
	}
	return "unknown";
}

void alert_instance_init(struct alert_instance *inst)
{
	memset(inst, 0, sizeof(*inst));
	inst->state = ALERT_INACTIVE;
	inst->level = ALERT_LEVEL_OK;
	inst->candidate = ALERT_LEVEL_OK;
}

/* ---- flap detection ---- */

double alert_flap_percent(const struct alert_instance *inst)
{
	unsigned count = inst->flap_count;
	double weighted = 0.0;

	if (count > ALERT_FLAP_HISTORY)
		count = ALERT_FLAP_HISTORY;
	/* Bit i is the entry of age i; the change between ages i and i + 1 has age i. */
	for (unsigned i = 0; i + 1 < count; i++) {
		bool newer = (inst->flap_bits >> i) & 1;
		bool older = (inst->flap_bits >> (i + 1)) & 1;

		if (newer != older)
			weighted += FLAP_WEIGHT_NEWEST - (FLAP_WEIGHT_NEWEST - FLAP_WEIGHT_OLDEST) *
							     i / (ALERT_FLAP_HISTORY - 2);
	}
	return weighted * 100.0 / (ALERT_FLAP_HISTORY - 1);
}

/* The notified condition flap detection records: firing, or a level above ok (stale too). */
static bool instance_bad(const struct alert_instance *inst)
{
	return inst->state == ALERT_FIRING || inst->level > ALERT_LEVEL_OK;
}

/*
 * Records the evaluation in the flap history and starts or ends an episode. `changed`
 * is true when the step changed the state or the level, and *change describes that step.
 * Returns true when a change must be reported, which includes the start and the end of an
 * episode at an evaluation that changed nothing else.
 */
static bool flap_update(struct alert_instance *inst, const struct alert_params *p, bool changed,
			struct alert_change *change)
{
	bool bad = instance_bad(inst);
	double percent;

	if (p->flap_high <= 0) {
		inst->flap_bits = 0;
		inst->flap_count = 0;
		if (!inst->flapping)
			return changed;
		/* Detection was turned off (a reload) during an episode: end it. */
		inst->flapping = false;
		change->notify = true;
		change->resolved = change->resolved || !bad;
		return true;
	}

	inst->flap_bits = ((inst->flap_bits << 1) | (bad ? 1u : 0u)) & FLAP_MASK;
	if (inst->flap_count < ALERT_FLAP_HISTORY)
		inst->flap_count++;
	percent = alert_flap_percent(inst);

	if (!inst->flapping) {
		if (percent <= p->flap_high)
			return changed;
		inst->flapping = true;
		change->notify = true;
		return true;
	}
	/* A history without changes also ends the episode, so a flap_low of 0 cannot keep
	 * an instance flapping for ever. */
	if (percent < p->flap_low || percent <= 0.0) {
		inst->flapping = false;
		change->notify = true;
		/* Receivers may still hold the instance as firing from the episode's start,
		 * because every change inside it was silent. */
		change->resolved = change->resolved || !bad;
		return true;
	}
	change->notify = false;
	return changed;
}

/*
 * Completes a step: describes the move from (from_state, from_level) to the instance's
 * state, applies flap detection and returns whether to report it. A change is notified when
 * the level changed, or when `notify_anyway` says so (no_data alert).
 */
static bool step_finish(struct alert_instance *inst, const struct alert_params *p,
			enum alert_state from_state, enum alert_level from_level,
			bool notify_anyway, struct alert_change *change)
{
	bool changed = inst->state != from_state || inst->level != from_level;
	bool report;

	memset(change, 0, sizeof(*change));
	change->from_state = from_state;
	change->to_state = inst->state;
	change->from_level = from_level;
	change->to_level = inst->level;
	change->notify = changed && (from_level != inst->level || notify_anyway);
	change->resolved = from_level > ALERT_LEVEL_OK && inst->level == ALERT_LEVEL_OK;

	report = flap_update(inst, p, changed, change);
	change->flapping = inst->flapping;
	return report;
}

/* ---- alerting rules ---- */

bool alert_step(struct alert_instance *inst, const struct alert_params *p, bool present,
		double value, int64_t now_ms, struct alert_change *change)
{
	enum alert_state from_state = inst->state;
	enum alert_level from_level = inst->level;

	inst->last_eval_ms = now_ms;
	/* Only threshold rules go stale; an instance restored under a changed rule kind
	 * continues from its level. */
	if (inst->state == ALERT_STALE)
		inst->state = inst->level > ALERT_LEVEL_OK ? ALERT_FIRING : ALERT_INACTIVE;

	if (present) {
		inst->last_seen_ms = now_ms;
		inst->value = value;
		if (inst->state == ALERT_INACTIVE) {
			inst->state = ALERT_PENDING;
			inst->active_at_ms = now_ms;
		}
		/* With `for` 0 this fires at the evaluation that made the instance pending. */
		if (inst->state == ALERT_PENDING && now_ms - inst->active_at_ms >= p->for_ms) {
			inst->state = ALERT_FIRING;
			inst->fired_at_ms = now_ms;
		}
	} else if (inst->state == ALERT_PENDING) {
		inst->state = ALERT_INACTIVE;
	} else if (inst->state == ALERT_FIRING) {
		/*
		 * NOTE: keep_firing_for counts from the last evaluation that returned the
		 * label set, as Prometheus's documentation words it. Prometheus's code
		 * (rules/alerting.go) counts from the first evaluation that missed it, so it
		 * keeps firing one evaluation interval longer.
		 */
		if (now_ms - inst->last_seen_ms >= p->keep_firing_for_ms) {
			inst->state = ALERT_INACTIVE;
			inst->resolved_at_ms = now_ms;
		}
	}

	inst->level = inst->state == ALERT_FIRING ? ALERT_LEVEL_WARNING : ALERT_LEVEL_OK;
	inst->candidate = inst->level;
	return step_finish(inst, p, from_state, from_level, false, change);
}

/* ---- threshold rules ---- */

/* True when `value` is past `limit` in the rule's bad direction. */
static bool threshold_past(const struct alert_params *p, double value, double limit)
{
	return p->direction_above ? value > limit : value < limit;
}

enum alert_level alert_threshold_level(const struct alert_params *p, enum alert_level current,
				       double value)
{
	if (isnan(value))
		return current;
	/* A level is entered past its threshold and, once reached, held past its clear value.
	 * Levels below the current one are held the same way, so a drop from critical stops
	 * at warning while the value has not cleared warning. */
	if (p->has_crit &&
	    (threshold_past(p, value, p->crit) ||
	     (current >= ALERT_LEVEL_CRITICAL && threshold_past(p, value, p->clear_crit))))
		return ALERT_LEVEL_CRITICAL;
	if (p->has_warn &&
	    (threshold_past(p, value, p->warn) ||
	     (current >= ALERT_LEVEL_WARNING && threshold_past(p, value, p->clear_warn))))
		return ALERT_LEVEL_WARNING;
	return ALERT_LEVEL_OK;
}

static enum alert_state threshold_state(const struct alert_instance *inst)
{
	if (inst->level > ALERT_LEVEL_OK)
		return ALERT_FIRING;
	return inst->candidate > ALERT_LEVEL_OK ? ALERT_PENDING : ALERT_INACTIVE;
}

/*
 * The level a pending upgrade reaches at now_ms: the highest level between the current one
 * (exclusive) and the candidate whose `for` has elapsed. From ok, the value has pointed at
 * warning or higher since active_at_ms; the candidate itself since candidate_since_ms.
 */
static enum alert_level threshold_upgrade(const struct alert_instance *inst,
					  const struct alert_params *p, int64_t now_ms)
{
	for (enum alert_level l = inst->candidate; l > inst->level; l--) {
		int64_t since = inst->candidate_since_ms;
		int64_t hold = l == ALERT_LEVEL_CRITICAL ? p->crit_for_ms : p->warn_for_ms;

		if (l == ALERT_LEVEL_WARNING && inst->level == ALERT_LEVEL_OK)
			since = inst->active_at_ms;
		if (now_ms - since >= hold)
			return l;
	}
	return inst->level;
}

/* Moves a threshold instance by one value; the instance is not stale any more. */
static void threshold_advance(struct alert_instance *inst, const struct alert_params *p,
			      double value, int64_t now_ms)
{
	enum alert_level target = alert_threshold_level(p, inst->level, value);
	enum alert_level next = inst->level;

	if (target != inst->candidate) {
		/* From ok, the value starts a new pending (and possibly firing) run. */
		if (inst->level == ALERT_LEVEL_OK && inst->candidate == ALERT_LEVEL_OK)
			inst->active_at_ms = now_ms;
		inst->candidate = target;
		inst->candidate_since_ms = now_ms;
	}

	if (inst->candidate > inst->level) {
		next = threshold_upgrade(inst, p, now_ms);
	} else if (inst->candidate < inst->level) {
		/*
		 * NOTE: candidate_since_ms restarts when the value moves from pointing at
		 * warning to pointing at ok during a drop from critical, so clear_for then
		 * counts from that move: the level never clears early but may clear late.
		 */
		if (now_ms - inst->candidate_since_ms >= p->clear_for_ms)
			next = inst->candidate;
	}

	if (next != inst->level) {
		if (inst->level == ALERT_LEVEL_OK)
			inst->fired_at_ms = now_ms;
		else if (next == ALERT_LEVEL_OK)
			inst->resolved_at_ms = now_ms;
		inst->level = next;
	}
	inst->state = threshold_state(inst);
}

bool alert_step_threshold(struct alert_instance *inst, const struct alert_params *p, bool present,
			  double value, int64_t now_ms, struct alert_change *change)
{
	enum alert_state from_state = inst->state;
	enum alert_level from_level = inst->level;
	bool notify_anyway = false;

	inst->last_eval_ms = now_ms;
	if (present) {
		inst->last_seen_ms = now_ms;
		inst->value = value;
		/*
		 * Data returning to a stale instance continues from the kept level. The
		 * change out of stale is notified when the level changed, or under
		 * no_data `alert`, whose change into stale was notified too.
		 */
		notify_anyway = from_state == ALERT_STALE && p->no_data == ALERT_NO_DATA_ALERT;
		threshold_advance(inst, p, value, now_ms);
		return step_finish(inst, p, from_state, from_level, notify_anyway, change);
	}

	/* No data: whatever was pending is dropped. */
	inst->candidate = inst->level;
	inst->candidate_since_ms = now_ms;
	switch (p->no_data) {
	case ALERT_NO_DATA_KEEP:
	case ALERT_NO_DATA_ALERT:
		inst->state = ALERT_STALE;
		notify_anyway = p->no_data == ALERT_NO_DATA_ALERT;
		break;
	case ALERT_NO_DATA_RESOLVE:
		if (inst->level > ALERT_LEVEL_OK)
			inst->resolved_at_ms = now_ms;
		inst->level = ALERT_LEVEL_OK;
		inst->candidate = ALERT_LEVEL_OK;
		inst->state = ALERT_INACTIVE;
		break;
	}
	return step_finish(inst, p, from_state, from_level, notify_anyway, change);
}

bool alert_instance_forgettable(const struct alert_instance *inst, int64_t now_ms,
				int64_t retention_ms)
{
	if (inst->flapping)
		return false;
	if (inst->state == ALERT_STALE) {
		/* A stale instance at ok carries no state that a new instance would lack. */
		if (inst->level > ALERT_LEVEL_OK || now_ms - inst->last_seen_ms <= retention_ms)
			return false;
	} else if (inst->state != ALERT_INACTIVE) {
		return false;
	}
	if (inst->fired_at_ms == 0)
		return true;
	return inst->resolved_at_ms >= inst->fired_at_ms &&
	       now_ms - inst->resolved_at_ms > retention_ms;
}
