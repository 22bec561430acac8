/*
 * The `alerting:` section of tocsin.yml: the routing tree, inhibit rules, named time
 * intervals, receivers and the delivery settings (retry back-off, circuit breaker). It is
 * read with the rest of the config, so its errors come in the same run and the same
 * FILE:LINE:COLUMN: KEY.PATH: PROBLEM form (docs/configuration.md, "Alerting").
 */
#ifndef TOCSIN_ALERTING_CONFIG_H
#define TOCSIN_ALERTING_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "alerter/inhibit.h"
#include "alerter/route.h"
#include "alerter/timeinterval.h"

struct cfg_map;
struct receiver_type;

#define ALERTING_DEFAULT_RETRY_INITIAL_MS    1000u
#define ALERTING_DEFAULT_RETRY_MAX_MS        (5u * 60 * 1000)
#define ALERTING_DEFAULT_RETRY_MAX_AGE_MS    (24u * 3600 * 1000)
#define ALERTING_DEFAULT_BREAKER_FAILURES    5u
#define ALERTING_DEFAULT_BREAKER_COOLDOWN_MS (60u * 1000)

/* One notifier of a receiver: an `email:` mapping, one item of a `webhook:` list, ... */
struct alerting_integration {
	const struct receiver_type *type;
	void *state;    /* the type's parsed options, freed with type->free */
	size_t index;   /* position among the receiver's integrations of this type */
	char *location; /* "file:line:column" of its mapping */
};

struct alerting_receiver {
	char *name;
	/* In file order; none is valid and means that notifications are dropped. */
	struct alerting_integration *integrations;
	size_t integration_count;
	char *location;
};

/* Back-off of failed deliveries: doubling from initial up to max, given up after max_age. */
struct alerting_retry {
	uint64_t initial_ms;
	uint64_t max_ms;
	uint64_t max_age_ms;
};

/* After `failures` consecutive failed deliveries a receiver rests for `cooldown_ms`. */
struct alerting_circuit_breaker {
	unsigned failures;
	uint64_t cooldown_ms;
};

struct alerting_config {
	struct route *route;
	struct inhibit_rule *inhibit_rules;
	size_t inhibit_rule_count;
	struct time_interval *time_intervals;
	size_t time_interval_count;
	struct alerting_receiver *receivers;
	size_t receiver_count;
	struct alerting_retry retry;
	struct alerting_circuit_breaker circuit_breaker;
	char *external_url; /* base URL of the dashboard for links, NULL when not set */
};

/*
 * Reads the `alerting` key of the config's root mapping. Returns NULL when the key is
 * absent, and NULL with every error recorded in the cfg when it is invalid. Loads zone
 * files and receiver options, so call it at config load only.
 */
struct alerting_config *alerting_config_read(struct cfg_map *root);
void alerting_config_free(struct alerting_config *ac);

/* Prints the section's summary for --check-config: counts, and each receiver's
 * integrations (or a warning that it has none). */
void alerting_config_summary(const struct alerting_config *ac, FILE *out);

/* Lookup by name; NULL when there is none. */
const struct alerting_receiver *alerting_config_receiver(const struct alerting_config *ac,
							 const char *name);
const struct time_interval *alerting_config_time_interval(const struct alerting_config *ac,
							  const char *name);

#endif
