/*
 * Doubling-interval throttle for repeated errors; see throttle.h.
 */
#include "collector/throttle.h"

#include <string.h>

void throttle_init(struct throttle *t, uint64_t initial_ms, uint64_t max_ms)
{
	memset(t, 0, sizeof(*t));
	t->initial_ms = initial_ms ? initial_ms : THROTTLE_DEFAULT_INITIAL_MS;
	t->max_ms = max_ms >= t->initial_ms ? max_ms : t->initial_ms;
	t->interval_ms = t->initial_ms;
}

bool throttle_fail(struct throttle *t, uint64_t now_ms, uint64_t *suppressed)
{
	t->failures++;

	if (!t->failing) {
		/* First failure of a run: always reported. */
		t->failing = true;
		t->interval_ms = t->initial_ms;
		t->next_ms = now_ms + t->interval_ms;
		t->suppressed = 0;
		if (suppressed != NULL)
			*suppressed = 0;
		return true;
	}

	if (now_ms < t->next_ms) {
		t->suppressed++;
		return false;
	}

	if (suppressed != NULL)
		*suppressed = t->suppressed;
	t->suppressed = 0;
	t->interval_ms = t->interval_ms * 2 > t->max_ms ? t->max_ms : t->interval_ms * 2;
	t->next_ms = now_ms + t->interval_ms;
	return true;
}

bool throttle_ok(struct throttle *t, uint64_t *failures)
{
	if (!t->failing)
		return false;

	if (failures != NULL)
		*failures = t->failures;
	t->failing = false;
	t->failures = 0;
	t->suppressed = 0;
	t->interval_ms = t->initial_ms;
	return true;
}
