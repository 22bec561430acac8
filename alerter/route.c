/*
 * The routing tree: reading `alerting.route` with inheritance and name checks, matching an
 * alert's labels to nodes, and forming the group key of an alert at a node.
 */
#include "alerter/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerter/timeinterval.h"
#include "collector/cfg.h"
#include "collector/units.h"
#include "collector/xalloc.h"

void route_free(struct route *root)
{
	if (root == NULL)
		return;
	for (size_t i = 0; i < root->route_count; i++)
		route_free(root->routes[i]);
	free(root->routes);
	free(root->receiver);
	matcher_set_clear(&root->matchers);
	for (size_t i = 0; i < root->group_by_count; i++)
		free(root->group_by[i]);
	free(root->group_by);
	free(root->mute_intervals);
	free(root->active_intervals);
	free(root->key);
	free(root->location);
	free(root);
}

/* ---- reading ---- */

static int route_compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void route_read_receiver(struct cfg_map *m, struct route *r, const struct route_context *ctx)
{
	char quoted[CFG_QUOTE_SIZE];
	char *name;

	if (cfg_get_string(m, "receiver", &name) != 1) {
		if (r->parent == NULL && !cfg_has(m, "receiver"))
			cfg_error(m, NULL,
				  "missing required key \"receiver\": the root route needs one for "
				  "the alerts that match no child route");
		if (r->parent != NULL && r->parent->receiver != NULL)
			r->receiver = xstrdup(r->parent->receiver);
		return;
	}
	for (size_t i = 0; i < ctx->receiver_count; i++) {
		if (strcmp(ctx->receivers[i], name) == 0) {
			r->receiver = name;
			return;
		}
	}
	if (ctx->receiver_count == 0)
		cfg_error(m, "receiver",
			  "unknown receiver %s: no receivers are defined; add it under "
			  "alerting.receivers",
			  cfg_quote(name, quoted, sizeof quoted));
	else
		cfg_error(m, "receiver",
			  "unknown receiver %s; define it under alerting.receivers or use one of "
			  "the defined names",
			  cfg_quote(name, quoted, sizeof quoted));
	free(name);
}

/* Copies the parent's group_by settings. */
static void route_inherit_group_by(struct route *r)
{
	if (r->parent == NULL)
		return;
	r->group_by_all = r->parent->group_by_all;
	r->group_by_count = r->parent->group_by_count;
	r->group_by = xcalloc(r->group_by_count + 1, sizeof(*r->group_by));
	for (size_t i = 0; i < r->group_by_count; i++)
		r->group_by[i] = xstrdup(r->parent->group_by[i]);
}

static void route_read_group_by(struct cfg_map *m, struct route *r)
{
	char quoted[CFG_QUOTE_SIZE];
	struct cfg_seq seq;
	size_t count;
	int rc = cfg_get_seq(m, "group_by", &seq);

	if (rc != 1) {
		route_inherit_group_by(r);
		return;
	}
	count = cfg_seq_count(&seq);
	r->group_by = xcalloc(count + 1, sizeof(*r->group_by));
	for (size_t i = 0; i < count; i++) {
		char *name;
		bool duplicate = false;

		if (cfg_seq_string(&seq, i, &name) != 1)
			continue;
		for (size_t j = 0; j < r->group_by_count; j++)
			duplicate = duplicate || strcmp(r->group_by[j], name) == 0;
		if (strcmp(name, "...") == 0 && count > 1) {
			cfg_seq_error(&seq, i,
				      "\"...\" groups by every label, so it must be the only item "
				      "of group_by");
		} else if (strcmp(name, "...") == 0) {
			r->group_by_all = true;
		} else if (!series_valid_label_name(name)) {
			cfg_seq_error(
			    &seq, i,
			    "invalid label name %s (accepted: letters, digits and \"_\", "
			    "not starting with a digit, or \"...\" alone for every label)",
			    cfg_quote(name, quoted, sizeof quoted));
		} else if (duplicate) {
			cfg_seq_error(&seq, i, "label %s is listed twice",
				      cfg_quote(name, quoted, sizeof quoted));
		} else {
			r->group_by[r->group_by_count++] = name;
			continue;
		}
		free(name);
	}
	qsort(r->group_by, r->group_by_count, sizeof(*r->group_by), route_compare_strings);
}

/*
 * Reads a timing; `inherited` is the parent's value, or the default at the root. 0s is
 * allowed for all three (unlike Alertmanager, which needs group_interval and
 * repeat_interval above 0): the dispatcher sends at once and never loops faster than its
 * own minimum tick.
 */
static void route_read_timing(struct cfg_map *m, const char *key, uint64_t inherited, uint64_t *out)
{
	*out = inherited;
	cfg_get_duration_ms(m, key, out);
}

static void route_read_timings(struct cfg_map *m, struct route *r)
{
	const struct route *p = r->parent;

	route_read_timing(m, "group_wait",
			  p != NULL ? p->group_wait_ms : ROUTE_DEFAULT_GROUP_WAIT_MS,
			  &r->group_wait_ms);
	route_read_timing(m, "group_interval",
			  p != NULL ? p->group_interval_ms : ROUTE_DEFAULT_GROUP_INTERVAL_MS,
			  &r->group_interval_ms);
	route_read_timing(m, "repeat_interval",
			  p != NULL ? p->repeat_interval_ms : ROUTE_DEFAULT_REPEAT_INTERVAL_MS,
			  &r->repeat_interval_ms);
}

/* Reads a list of time interval names and resolves each one. */
static void route_read_intervals(struct cfg_map *m, const char *key,
				 const struct route_context *ctx, const struct time_interval ***out,
				 size_t *count)
{
	char quoted[CFG_QUOTE_SIZE];
	struct cfg_seq seq;

	if (cfg_get_seq(m, key, &seq) != 1)
		return;
	*out = xcalloc(cfg_seq_count(&seq) + 1, sizeof(**out));
	for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
		const struct time_interval *found = NULL;
		char *name;

		if (cfg_seq_string(&seq, i, &name) != 1)
			continue;
		for (size_t j = 0; j < ctx->interval_count && found == NULL; j++)
			if (ctx->intervals[j].name != NULL &&
			    strcmp(ctx->intervals[j].name, name) == 0)
				found = &ctx->intervals[j];
		if (found == NULL)
			cfg_seq_error(&seq, i,
				      "unknown time interval %s; define it under "
				      "alerting.time_intervals",
				      cfg_quote(name, quoted, sizeof quoted));
		else
			(*out)[(*count)++] = found;
		free(name);
	}
}

/* Settings that Alertmanager forbids on the root route, with the reason. */
static void route_check_root(struct cfg_map *m, const struct route *r)
{
	static const char *const matcher_keys[] = {"matchers", "match", "match_re"};

	for (size_t i = 0; i < sizeof(matcher_keys) / sizeof(matcher_keys[0]); i++)
		if (cfg_has(m, matcher_keys[i]))
			cfg_error(m, matcher_keys[i],
				  "the root route receives every alert, so it cannot have "
				  "matchers; put them on a route under routes");
	if (r->continue_matching)
		cfg_error(m, "continue",
			  "the root route has no siblings, so it cannot have continue");
	if (cfg_has(m, "mute_time_intervals"))
		cfg_error(m, "mute_time_intervals",
			  "the root route cannot have time intervals; put them on a route under "
			  "routes");
	if (cfg_has(m, "active_time_intervals"))
		cfg_error(m, "active_time_intervals",
			  "the root route cannot have time intervals; put them on a route under "
			  "routes");
}

/* The node's key from its parent's and its matchers; `siblings` are those before it. */
static char *route_make_key(const struct route *r, struct route *const *siblings, size_t count)
{
	char *own;
	char *key;
	size_t same = 1;

	if (r->parent == NULL)
		return xstrdup("{}");
	own = matcher_set_format(&r->matchers);
	for (size_t i = 0; i < count; i++) {
		char *other = matcher_set_format(&siblings[i]->matchers);

		same += strcmp(own, other) == 0 ? 1 : 0;
		free(other);
	}
	if (same > 1)
		key = xasprintf("%s/%s#%zu", r->parent->key, own, same);
	else
		key = xasprintf("%s/%s", r->parent->key, own);
	free(own);
	return key;
}

static struct route *route_read_node(struct cfg_map *m, struct route *parent,
				     const struct route_context *ctx);

static void route_read_children(struct cfg_map *m, struct route *r, const struct route_context *ctx)
{
	struct cfg_seq seq;

	if (cfg_get_seq(m, "routes", &seq) != 1)
		return;
	r->routes = xcalloc(cfg_seq_count(&seq) + 1, sizeof(*r->routes));
	for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
		struct cfg_map child;
		struct route *node;

		if (cfg_seq_map(&seq, i, &child) != 1) {
			cfg_map_discard(&child);
			continue;
		}
		/* Read first: the child's key looks at the siblings counted so far. */
		node = route_read_node(&child, r, ctx);
		r->routes[r->route_count++] = node;
		cfg_map_finish(&child);
	}
}

static struct route *route_read_node(struct cfg_map *m, struct route *parent,
				     const struct route_context *ctx)
{
	char where[CFG_PATH_MAX + 64];
	struct route *r = xcalloc(1, sizeof(*r));

	r->parent = parent;
	r->location = xstrdup(cfg_location(m, NULL, where, sizeof where));
	route_read_receiver(m, r, ctx);
	matcher_set_read(m, "matchers", "match", "match_re", &r->matchers);
	route_read_group_by(m, r);
	route_read_timings(m, r);
	cfg_get_bool(m, "continue", &r->continue_matching);
	route_read_intervals(m, "mute_time_intervals", ctx, &r->mute_intervals,
			     &r->mute_interval_count);
	route_read_intervals(m, "active_time_intervals", ctx, &r->active_intervals,
			     &r->active_interval_count);
	if (parent == NULL)
		route_check_root(m, r);
	r->key = route_make_key(r, parent != NULL ? parent->routes : NULL,
				parent != NULL ? parent->route_count : 0);
	route_read_children(m, r, ctx);
	return r;
}

struct route *route_read(struct cfg_map *m, const struct route_context *ctx)
{
	size_t errors = cfg_error_count(m->cfg);
	struct route *root = route_read_node(m, NULL, ctx);

	if (cfg_error_count(m->cfg) > errors) {
		route_free(root);
		return NULL;
	}
	return root;
}

/* ---- matching ---- */

struct route_list {
	const struct route **v;
	size_t count;
	size_t capacity;
};

static bool route_collect(const struct route *r, const struct label *labels, size_t count,
			  struct route_list *list)
{
	size_t before = list->count;

	if (!matcher_set_matches(&r->matchers, labels, count))
		return false;
	for (size_t i = 0; i < r->route_count; i++) {
		if (route_collect(r->routes[i], labels, count, list) &&
		    !r->routes[i]->continue_matching)
			break;
	}
	if (list->count == before) {
		list->v =
		    xreallocarray_grow(list->v, &list->capacity, list->count + 1, sizeof(*list->v));
		list->v[list->count++] = r;
	}
	return true;
}

size_t route_match(const struct route *root, const struct label *labels, size_t count,
		   const struct route ***out)
{
	struct route_list list = {0};

	/* The root has no matchers, so it always collects at least itself. */
	route_collect(root, labels, count, &list);
	*out = list.v;
	return list.count;
}

bool route_muted(const struct route *r, int64_t unix_ms)
{
	for (size_t i = 0; i < r->mute_interval_count; i++)
		if (timeinterval_active(r->mute_intervals[i], unix_ms))
			return true;
	if (r->active_interval_count == 0)
		return false;
	for (size_t i = 0; i < r->active_interval_count; i++)
		if (timeinterval_active(r->active_intervals[i], unix_ms))
			return false;
	return true;
}

/* ---- groups ---- */

static int route_compare_labels(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

void route_labels_free(struct label *labels, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free((char *)labels[i].name);
		free((char *)labels[i].value);
	}
	free(labels);
}

void route_group_key(const struct route *r, const struct label *labels, size_t count, char **key,
		     struct label **group, size_t *group_count)
{
	struct label *g = xcalloc(count + 1, sizeof(*g));
	size_t n = 0;
	char *text;

	for (size_t i = 0; i < count; i++) {
		bool in_group = r->group_by_all;

		for (size_t j = 0; j < r->group_by_count && !in_group; j++)
			in_group = strcmp(r->group_by[j], labels[i].name) == 0;
		if (!in_group)
			continue;
		g[n].name = xstrdup(labels[i].name);
		g[n].value = xstrdup(labels[i].value);
		n++;
	}
	qsort(g, n, sizeof(*g), route_compare_labels);
	text = matcher_format_labels(g, n);
	*key = xasprintf("%s:%s", r->key, text);
	free(text);
	*group = g;
	*group_count = n;
}
