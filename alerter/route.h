/*
 * The routing tree of `alerting.route`, with Alertmanager's semantics. An alert enters at
 * the root, which matches every alert. At each node the children are tried in order, and
 * the alert goes down into every matching child until one without `continue: true`
 * matches. A node where no child matches keeps the alert itself. A child inherits receiver,
 * group_by and the three timings from its parent unless it sets them; time intervals are
 * not inherited. All functions here are pure and may be called from any callback.
 */
#ifndef TOCSIN_ROUTE_H
#define TOCSIN_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerter/matcher.h"
#include "collector/series.h"

struct cfg_map;
struct time_interval;

/* Alertmanager's defaults. */
#define ROUTE_DEFAULT_GROUP_WAIT_MS      (30 * 1000)
#define ROUTE_DEFAULT_GROUP_INTERVAL_MS  (5 * 60 * 1000)
#define ROUTE_DEFAULT_REPEAT_INTERVAL_MS (4 * 3600 * 1000)

struct route {
	struct route *parent; /* NULL for the root */
	struct route **routes;
	size_t route_count;
	char *receiver; /* its own or the nearest ancestor's */
	struct matcher_set matchers;
	/* Labels an alert group is formed by: sorted, without duplicates, own or inherited.
	 * group_by_all (written `...`) groups by every label, so each alert is a group. */
	char **group_by;
	size_t group_by_count;
	bool group_by_all;
	uint64_t group_wait_ms;      /* before a new group's first notification */
	uint64_t group_interval_ms;  /* between notifications when the group changed */
	uint64_t repeat_interval_ms; /* before a notification that repeats the last one */
	bool continue_matching;      /* `continue`: siblings after this one are tried too */
	const struct time_interval **mute_intervals; /* notifications are held while active */
	size_t mute_interval_count;
	const struct time_interval **active_intervals; /* if any: held unless one is active */
	size_t active_interval_count;
	/* Identity of the node for group keys: "{}" for the root, then the parent's key, "/"
	 * and the node's matchers (matcher_set_format), with "#2", "#3"... for a sibling
	 * whose matchers repeat an earlier sibling's. Stable across reloads as long as the
	 * path of matchers to the node stays. */
	char *key;
	char *location; /* "file:line:column" of the node's mapping */
};

/* Names that routes refer to, defined elsewhere in `alerting`. */
struct route_context {
	const char *const *receivers;
	size_t receiver_count;
	const struct time_interval *intervals;
	size_t interval_count;
};

/*
 * Reads the root route from mapping m (the value of `alerting.route`). Records every error
 * with its position: a missing receiver on the root, matchers, continue or time intervals
 * on the root, unknown receiver or interval names, invalid durations, group_by labels.
 * Returns the tree, or NULL when there was any error.
 */
struct route *route_read(struct cfg_map *m, const struct route_context *ctx);
void route_free(struct route *root);

/*
 * Collects the nodes that alert `labels` (not necessarily sorted) is routed to, in
 * Alertmanager's order (depth first, children in file order). Never empty: the root
 * matches everything. *out is an array the caller frees; returns its length.
 */
size_t route_match(const struct route *root, const struct label *labels, size_t count,
		   const struct route ***out);

/*
 * True when notifications of node r are held at unix_ms: one of its mute intervals is
 * active, or it has active intervals and none is active. Mute intervals win.
 */
bool route_muted(const struct route *r, int64_t unix_ms);

/*
 * Computes the group an alert falls in at node r. *group gets the group_by labels the
 * alert has (all of them for `...`), sorted by name, as copies (free them with
 * route_labels_free). *key gets "ROUTE_KEY:{name=\"value\",...}", which is the same for
 * every alert of the group and differs between groups and between nodes; the caller
 * frees it.
 */
void route_group_key(const struct route *r, const struct label *labels, size_t count, char **key,
		     struct label **group, size_t *group_count);
void route_labels_free(struct label *labels, size_t count);

#endif
