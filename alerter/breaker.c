/*
 * The circuit breaker's state machine (see breaker.h).
 */
#include "alerter/breaker.h"

static void breaker_open(struct breaker *b, int64_t now_ms)
{
	b->state = BREAKER_OPEN;
	b->opened_ms = now_ms;
	b->failures = 0;
	b->trial_started = false;
	b->opened_total++;
}

void breaker_init(struct breaker *b, unsigned threshold, int64_t cooldown_ms)
{
	*b = (struct breaker){
	    .threshold = threshold > 0 ? threshold : 1,
	    .cooldown_ms = cooldown_ms > 0 ? cooldown_ms : 0,
	    .state = BREAKER_CLOSED,
	};
}

bool breaker_allow(struct breaker *b, int64_t now_ms)
{
	switch (b->state) {
	case BREAKER_CLOSED:
		return true;
	case BREAKER_OPEN:
		if (now_ms < b->opened_ms + b->cooldown_ms)
			return false;
		b->state = BREAKER_HALF_OPEN;
		b->trial_started = true;
		return true;
	case BREAKER_HALF_OPEN:
		if (b->trial_started)
			return false;
		b->trial_started = true;
		return true;
	}
	return false;
}

void breaker_record(struct breaker *b, enum delivery_result result, int64_t now_ms)
{
	if (b->state == BREAKER_OPEN)
		return;
	switch (result) {
	case DELIVERY_OK:
		b->state = BREAKER_CLOSED;
		b->failures = 0;
		b->trial_started = false;
		break;
	case DELIVERY_RETRY:
		if (b->state == BREAKER_HALF_OPEN || ++b->failures >= b->threshold)
			breaker_open(b, now_ms);
		break;
	case DELIVERY_PERMANENT:
		b->trial_started = false;
		break;
	}
}

void breaker_cancel(struct breaker *b)
{
	b->trial_started = false;
}

int64_t breaker_retry_at(const struct breaker *b)
{
	return b->state == BREAKER_OPEN ? b->opened_ms + b->cooldown_ms : 0;
}

const char *breaker_state_name(enum breaker_state state)
{
	switch (state) {
	case BREAKER_CLOSED:
		return "closed";
	case BREAKER_OPEN:
		return "open";
	case BREAKER_HALF_OPEN:
		return "half_open";
	}
	return "unknown";
}
