/*
 * Reading the `alerting:` section. Time intervals and receivers are read first so that
 * the route can check the names it refers to. Each part records its errors and goes on,
 * so one run reports every error of the section.
 */
#include "alerter/alerting_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerter/receiver.h"
#include "collector/cfg.h"
#include "collector/units.h"
#include "collector/xalloc.h"

#define ALERTING_NAME_MAX 128

static void alerting_receiver_clear(struct alerting_receiver *r)
{
	for (size_t i = 0; i < r->integration_count; i++) {
		struct alerting_integration *it = &r->integrations[i];

		if (it->state != NULL && it->type->free != NULL)
			it->type->free(it->state);
		free(it->location);
	}
	free(r->integrations);
	free(r->name);
	free(r->location);
}

void alerting_config_free(struct alerting_config *ac)
{
	if (ac == NULL)
		return;
	route_free(ac->route);
	for (size_t i = 0; i < ac->inhibit_rule_count; i++)
		inhibit_rule_clear(&ac->inhibit_rules[i]);
	free(ac->inhibit_rules);
	for (size_t i = 0; i < ac->time_interval_count; i++)
		timeinterval_clear(&ac->time_intervals[i]);
	free(ac->time_intervals);
	for (size_t i = 0; i < ac->receiver_count; i++)
		alerting_receiver_clear(&ac->receivers[i]);
	free(ac->receivers);
	free(ac->external_url);
	free(ac);
}

const struct alerting_receiver *alerting_config_receiver(const struct alerting_config *ac,
							 const char *name)
{
	for (size_t i = 0; i < ac->receiver_count; i++)
		if (ac->receivers[i].name != NULL && strcmp(ac->receivers[i].name, name) == 0)
			return &ac->receivers[i];
	return NULL;
}

const struct time_interval *alerting_config_time_interval(const struct alerting_config *ac,
							  const char *name)
{
	for (size_t i = 0; i < ac->time_interval_count; i++)
		if (ac->time_intervals[i].name != NULL &&
		    strcmp(ac->time_intervals[i].name, name) == 0)
			return &ac->time_intervals[i];
	return NULL;
}

/*
 * Names appear in logs, metrics labels and the API, so control characters and outer
 * spaces, which an operator cannot see, are rejected.
 */
static bool alerting_valid_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > ALERTING_NAME_MAX || s[0] == ' ' || s[len - 1] == ' ')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* ---- time intervals ---- */

static void alerting_read_time_intervals(struct cfg_map *m, struct alerting_config *ac)
{
	char quoted[CFG_QUOTE_SIZE];
	struct cfg_seq seq;

	if (cfg_get_seq(m, "time_intervals", &seq) != 1)
		return;
	ac->time_intervals = xcalloc(cfg_seq_count(&seq) + 1, sizeof(*ac->time_intervals));
	for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
		struct time_interval *ti = &ac->time_intervals[ac->time_interval_count];
		const struct time_interval *first;

		timeinterval_read(&seq, i, ti);
		first = ti->name != NULL ? alerting_config_time_interval(ac, ti->name) : NULL;
		if (first != NULL) {
			cfg_seq_error(&seq, i,
				      "duplicate time interval name %s (first defined at %s)",
				      cfg_quote(ti->name, quoted, sizeof quoted), first->location);
			timeinterval_clear(ti);
			continue;
		}
		ac->time_interval_count++;
	}
}

/* ---- receivers ---- */

/* Marks the value of `key` used, whatever its kind, without recording an error. */
static void alerting_take(struct cfg_map *m, const char *key)
{
	struct cfg_map sub;
	struct cfg_seq seq;
	char *text;

	switch (cfg_kind(m, key)) {
	case CFG_KIND_SEQUENCE:
		cfg_get_seq(m, key, &seq);
		break;
	case CFG_KIND_SCALAR:
		if (cfg_get_string(m, key, &text) == 1)
			free(text);
		break;
	default:
		cfg_get_map(m, key, &sub);
		cfg_map_discard(&sub);
		break;
	}
}

static void alerting_add_integration(struct alerting_receiver *r, const struct receiver_type *type,
				     struct cfg_map *options, size_t index)
{
	char where[CFG_PATH_MAX + 64];
	struct alerting_integration *it;
	void *state = NULL;

	if (type->parse(options, &state) < 0)
		return;
	r->integrations =
	    xrealloc(r->integrations, (r->integration_count + 1) * sizeof(*r->integrations));
	it = &r->integrations[r->integration_count++];
	it->type = type;
	it->state = state;
	it->index = index;
	it->location = xstrdup(cfg_location(options, NULL, where, sizeof where));
}

/* Reads the value of `type->name`: one mapping of options, or a list of them. */
static void alerting_read_integrations(struct cfg_map *m, const struct receiver_type *type,
				       struct alerting_receiver *r)
{
	struct cfg_map options;
	struct cfg_seq seq;

	switch (cfg_kind(m, type->name)) {
	case CFG_KIND_MAPPING:
		cfg_get_map(m, type->name, &options);
		alerting_add_integration(r, type, &options, 0);
		cfg_map_finish(&options);
		break;
	case CFG_KIND_SEQUENCE:
		cfg_get_seq(m, type->name, &seq);
		for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
			if (cfg_seq_map(&seq, i, &options) == 1)
				alerting_add_integration(r, type, &options, i);
			cfg_map_finish(&options);
		}
		break;
	case CFG_KIND_NULL:
		alerting_take(m, type->name);
		cfg_error(m, type->name,
			  "has no value; expected a mapping of %s options or a list "
			  "of them",
			  type->name);
		break;
	case CFG_KIND_SCALAR:
		alerting_take(m, type->name);
		cfg_error(m, type->name,
			  "expected a mapping of %s options or a list of them, found a string",
			  type->name);
		break;
	case CFG_KIND_ABSENT:
		break;
	}
}

/* Rejects Alertmanager's "email_configs" and the like with the key tocsin uses instead. */
static void alerting_check_am_keys(struct cfg_map *m)
{
	static const char suffix[] = "_configs";
	const struct receiver_type *const *types = receiver_types();

	for (size_t i = 0; i < cfg_map_size(m); i++) {
		const char *key = cfg_map_key(m, i);
		size_t len = key != NULL ? strlen(key) : 0;
		size_t stem = len - (sizeof suffix - 1);

		if (len <= sizeof suffix - 1 || strcmp(key + stem, suffix) != 0)
			continue;
		for (size_t t = 0; types[t] != NULL; t++) {
			if (strlen(types[t]->name) != stem ||
			    strncmp(types[t]->name, key, stem) != 0)
				continue;
			/* Taken, so that cfg_map_finish() does not report it a second time. */
			alerting_take(m, key);
			cfg_error(m, key,
				  "unknown key; tocsin names this receiver type \"%s\" (a mapping "
				  "or a list of mappings)",
				  types[t]->name);
		}
	}
}

static void alerting_read_receiver_name(struct cfg_map *m, struct alerting_config *ac,
					struct alerting_receiver *r)
{
	char quoted[CFG_QUOTE_SIZE];
	const struct alerting_receiver *first;

	if (!cfg_has(m, "name")) {
		cfg_error(m, NULL, "missing required key \"name\"");
		return;
	}
	if (cfg_get_string(m, "name", &r->name) != 1)
		return;
	if (!alerting_valid_name(r->name)) {
		cfg_error(m, "name",
			  "invalid receiver name %s (accepted: up to %d bytes of printable text, "
			  "without control characters or leading and trailing spaces)",
			  cfg_quote(r->name, quoted, sizeof quoted), ALERTING_NAME_MAX);
	} else if ((first = alerting_config_receiver(ac, r->name)) != NULL) {
		cfg_error(m, "name", "duplicate receiver name %s (first defined at %s)",
			  cfg_quote(r->name, quoted, sizeof quoted), first->location);
	} else {
		return;
	}
	free(r->name);
	r->name = NULL;
}

static void alerting_read_receivers(struct cfg_map *m, struct alerting_config *ac)
{
	const struct receiver_type *const *types = receiver_types();
	char where[CFG_PATH_MAX + 64];
	struct cfg_seq seq;

	if (cfg_get_seq(m, "receivers", &seq) != 1)
		return;
	ac->receivers = xcalloc(cfg_seq_count(&seq) + 1, sizeof(*ac->receivers));
	for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
		struct alerting_receiver *r = &ac->receivers[ac->receiver_count];
		struct cfg_map rm;

		if (cfg_seq_map(&seq, i, &rm) != 1) {
			cfg_map_discard(&rm);
			continue;
		}
		r->location = xstrdup(cfg_location(&rm, NULL, where, sizeof where));
		alerting_read_receiver_name(&rm, ac, r);
		alerting_check_am_keys(&rm);
		/* Types in table order; each keeps its integrations in file order. */
		for (size_t t = 0; types[t] != NULL; t++)
			alerting_read_integrations(&rm, types[t], r);
		cfg_map_finish(&rm);
		ac->receiver_count++;
	}
}

/* ---- route and inhibit rules ---- */

static void alerting_read_route(struct cfg_map *m, struct alerting_config *ac)
{
	const char **names = xcalloc(ac->receiver_count + 1, sizeof(*names));
	struct route_context ctx = {names, 0, ac->time_intervals, ac->time_interval_count};
	struct cfg_map rm;

	for (size_t i = 0; i < ac->receiver_count; i++)
		if (ac->receivers[i].name != NULL)
			names[ctx.receiver_count++] = ac->receivers[i].name;
	if (cfg_get_map(m, "route", &rm) == 1) {
		ac->route = route_read(&rm, &ctx);
		cfg_map_finish(&rm);
	} else {
		cfg_map_discard(&rm);
		if (cfg_kind(m, "route") == CFG_KIND_ABSENT ||
		    cfg_kind(m, "route") == CFG_KIND_NULL)
			cfg_error(m, NULL,
				  "missing required key \"route\" (the root of the routing tree, "
				  "e.g. route: {receiver: ops})");
	}
	free(names);
}

static void alerting_read_inhibit_rules(struct cfg_map *m, struct alerting_config *ac)
{
	struct cfg_seq seq;

	if (cfg_get_seq(m, "inhibit_rules", &seq) != 1)
		return;
	ac->inhibit_rules = xcalloc(cfg_seq_count(&seq) + 1, sizeof(*ac->inhibit_rules));
	for (size_t i = 0; i < cfg_seq_count(&seq); i++)
		inhibit_rule_read(&seq, i, &ac->inhibit_rules[ac->inhibit_rule_count++]);
}

/* ---- delivery settings ---- */

static void alerting_read_positive(struct cfg_map *m, const char *key, const char *why,
				   uint64_t *out)
{
	uint64_t ms;

	if (cfg_get_duration_ms(m, key, &ms) != 1)
		return;
	if (ms == 0) {
		cfg_error(m, key, "must be longer than 0; %s", why);
		return;
	}
	*out = ms;
}

static void alerting_read_retry(struct cfg_map *m, struct alerting_config *ac)
{
	struct alerting_retry *r = &ac->retry;
	char a[32];
	char b[32];
	struct cfg_map rm;

	if (cfg_get_map(m, "retry", &rm) != 1) {
		cfg_map_discard(&rm);
		return;
	}
	alerting_read_positive(&rm, "initial", "it is the delay before the first retry",
			       &r->initial_ms);
	alerting_read_positive(&rm, "max", "it is the longest delay between two retries",
			       &r->max_ms);
	alerting_read_positive(&rm, "max_age", "it is how long a notification is retried",
			       &r->max_age_ms);
	if (r->max_ms < r->initial_ms)
		cfg_error(&rm, cfg_has(&rm, "max") ? "max" : "initial",
			  "max (%s) is shorter than initial (%s); the delay doubles from initial "
			  "up to max",
			  units_format_duration(r->max_ms, a, sizeof a),
			  units_format_duration(r->initial_ms, b, sizeof b));
	cfg_map_finish(&rm);
}

static void alerting_read_circuit_breaker(struct cfg_map *m, struct alerting_config *ac)
{
	struct cfg_map bm;
	int64_t failures;

	if (cfg_get_map(m, "circuit_breaker", &bm) != 1) {
		cfg_map_discard(&bm);
		return;
	}
	if (cfg_get_int(&bm, "failures", 1, 1000000, &failures) == 1)
		ac->circuit_breaker.failures = (unsigned)failures;
	alerting_read_positive(&bm, "cooldown",
			       "it is how long a receiver rests after repeated failures",
			       &ac->circuit_breaker.cooldown_ms);
	cfg_map_finish(&bm);
}

static void alerting_read_external_url(struct cfg_map *m, struct alerting_config *ac)
{
	char quoted[CFG_QUOTE_SIZE];
	char *url;
	size_t scheme;
	size_t len;

	if (cfg_get_string(m, "external_url", &url) != 1)
		return;
	scheme = strncmp(url, "https://", 8) == 0 ? 8 : strncmp(url, "http://", 7) == 0 ? 7 : 0;
	if (scheme == 0 || url[scheme] == '\0' || url[scheme] == '/' ||
	    url[strcspn(url, " \t\r\n")] != '\0') {
		cfg_error(m, "external_url",
			  "%s is not an http or https URL (example: https://tocsin.example.com/)",
			  cfg_quote(url, quoted, sizeof quoted));
		free(url);
		return;
	}
	/* Links are joined as URL + "/path", so a trailing slash would double. */
	len = strlen(url);
	while (len > scheme + 1 && url[len - 1] == '/')
		url[--len] = '\0';
	ac->external_url = url;
}

struct alerting_config *alerting_config_read(struct cfg_map *root)
{
	size_t errors = cfg_error_count(root->cfg);
	struct alerting_config *ac;
	struct cfg_map m;

	if (cfg_get_map(root, "alerting", &m) != 1) {
		cfg_map_discard(&m);
		return NULL;
	}
	ac = xcalloc(1, sizeof(*ac));
	ac->retry.initial_ms = ALERTING_DEFAULT_RETRY_INITIAL_MS;
	ac->retry.max_ms = ALERTING_DEFAULT_RETRY_MAX_MS;
	ac->retry.max_age_ms = ALERTING_DEFAULT_RETRY_MAX_AGE_MS;
	ac->circuit_breaker.failures = ALERTING_DEFAULT_BREAKER_FAILURES;
	ac->circuit_breaker.cooldown_ms = ALERTING_DEFAULT_BREAKER_COOLDOWN_MS;

	alerting_read_time_intervals(&m, ac);
	alerting_read_receivers(&m, ac);
	alerting_read_route(&m, ac);
	alerting_read_inhibit_rules(&m, ac);
	alerting_read_retry(&m, ac);
	alerting_read_circuit_breaker(&m, ac);
	alerting_read_external_url(&m, ac);
	cfg_map_finish(&m);

	if (cfg_error_count(root->cfg) > errors) {
		alerting_config_free(ac);
		return NULL;
	}
	return ac;
}

static size_t count_routes(const struct route *r)
{
	size_t n = 1;

	for (size_t i = 0; i < r->route_count; i++)
		n += count_routes(r->routes[i]);
	return n;
}

void alerting_config_summary(const struct alerting_config *ac, FILE *out)
{
	fprintf(out, "alerting: %zu receivers, %zu routes, %zu inhibit rules, %zu time intervals\n",
		ac->receiver_count, ac->route != NULL ? count_routes(ac->route) : 0,
		ac->inhibit_rule_count, ac->time_interval_count);
	for (size_t i = 0; i < ac->receiver_count; i++) {
		const struct alerting_receiver *r = &ac->receivers[i];

		fprintf(out, "  receiver %s:", r->name);
		if (r->integration_count == 0)
			fprintf(out, " no integrations, so notifications routed to it are dropped");
		for (size_t k = 0; k < r->integration_count; k++)
			fprintf(out, "%s%s", k == 0 ? " " : ", ", r->integrations[k].type->name);
		fputc('\n', out);
	}
}
