/*
 * Rise/fall health state; see health.h.
 */
#include "collector/health.h"

#include <stdio.h>

void health_init(struct health *h, unsigned rise, unsigned fall)
{
	h->rise = rise ? rise : 1;
	h->fall = fall ? fall : 1;
	h->state = HEALTH_UNKNOWN;
	h->ok_run = 0;
	h->fail_run = 0;
}

bool health_update(struct health *h, bool ok)
{
	enum health_state before = h->state;

	if (ok) {
		h->fail_run = 0;
		if (h->ok_run < h->rise)
			h->ok_run++;
		if (h->ok_run >= h->rise)
			h->state = HEALTH_UP;
	} else {
		h->ok_run = 0;
		if (h->fail_run < h->fall)
			h->fail_run++;
		if (h->fail_run >= h->fall)
			h->state = HEALTH_DOWN;
	}
	return h->state != before;
}

void health_position(const struct health *h, bool last_ok, char *buf, unsigned size)
{
	if (last_ok)
		snprintf(buf, size, "rise %u/%u", h->ok_run, h->rise);
	else
		snprintf(buf, size, "fall %u/%u", h->fail_run, h->fall);
}

const char *health_state_name(enum health_state state)
{
	switch (state) {
	case HEALTH_UP:
		return "up";
	case HEALTH_DOWN:
		return "down";
	case HEALTH_UNKNOWN:
		break;
	}
	return "unknown";
}
