/*
 * Health state of a probe, as a load balancer's health check keeps it: `rise`
 * consecutive successes make a probe up, `fall` consecutive failures make it down, and
 * anything in between leaves the state where it was. Before the first decision the state
 * is unknown. Pure logic with no I/O, so that every transition is tested with tables.
 */
#ifndef TOCSIN_HEALTH_H
#define TOCSIN_HEALTH_H

#include <stdbool.h>

enum health_state {
	HEALTH_UNKNOWN,
	HEALTH_UP,
	HEALTH_DOWN,
};

struct health {
	unsigned rise; /* successes in a row that make the probe up, at least 1 */
	unsigned fall; /* failures in a row that make the probe down, at least 1 */
	enum health_state state;
	unsigned ok_run;   /* consecutive successes so far */
	unsigned fail_run; /* consecutive failures so far */
};

void health_init(struct health *h, unsigned rise, unsigned fall);

/* Records one result; returns true when it changed the state. */
bool health_update(struct health *h, bool ok);

/*
 * Writes where the probe stands towards its next transition, for log lines:
 * "rise 1/3" while an up-move is under way, "fall 2/2" on the result that made it down.
 */
void health_position(const struct health *h, bool last_ok, char *buf, unsigned size);

const char *health_state_name(enum health_state state);

#endif
