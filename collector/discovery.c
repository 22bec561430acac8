/*
 * File-based target discovery; see discovery.h.
 */
#include "collector/discovery.h"

#include <errno.h>
#include <event2/event.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/cfg.h"
#include "collector/config.h"
#include "collector/discovery_dns.h"
#include "collector/hash.h"
#include "collector/log.h"
#include "collector/throttle.h"
#include "collector/utf8.h"
#include "collector/xalloc.h"
#include "probes/probe.h"

/* Targets past this many per template are ignored, with an error: a runaway generator
 * must not start a million probes. */
#define DISCOVERY_MAX_TARGETS 10000

static void append_error(char **errors, const char *text)
{
	char *joined = *errors == NULL ? xstrdup(text) : xasprintf("%s\n%s", *errors, text);

	free(*errors);
	*errors = joined;
}

static bool target_valid(const char *t)
{
	if (*t == '\0' || strlen(t) > 255 || !utf8_valid(t))
		return false;
	for (const unsigned char *p = (const unsigned char *)t; *p != '\0'; p++) {
		if (*p <= ' ' || *p == 0x7f || *p == '/')
			return false;
	}
	return true;
}

static bool target_known(const struct discovery_target *targets, size_t count, const char *t)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(targets[i].target, t) == 0)
			return true;
	}
	return false;
}

/* Reads one group {targets: [...], labels: {...}} and appends its targets. */
static void read_group(struct cfg_seq *groups, size_t index, struct discovery_target **out,
		       size_t *count, size_t *capacity)
{
	struct cfg_map group;
	char **targets = NULL;
	char **names = NULL;
	char **values = NULL;
	size_t target_count = 0;
	size_t label_count = 0;

	if (cfg_seq_map(groups, index, &group) != 1) {
		cfg_map_discard(&group);
		return;
	}
	if (cfg_get_string_list(&group, "targets", &targets, &target_count) != 1 &&
	    !cfg_has(&group, "targets"))
		cfg_error(&group, NULL, "missing required key \"targets\" (a list of addresses)");
	cfg_get_string_map(&group, "labels", &names, &values, &label_count);

	for (size_t i = 0; i < target_count; i++) {
		struct discovery_target *t;

		if (!target_valid(targets[i])) {
			char quoted[CFG_QUOTE_SIZE];

			cfg_error(&group, "targets",
				  "target %s is not accepted: it must be 1 to 255 bytes of UTF-8 "
				  "without spaces, control characters or \"/\"",
				  cfg_quote(targets[i], quoted, sizeof(quoted)));
			continue;
		}
		if (target_known(*out, *count, targets[i]))
			continue;
		if (*count >= DISCOVERY_MAX_TARGETS) {
			cfg_error(&group, "targets", "more than %d targets; the rest are ignored",
				  DISCOVERY_MAX_TARGETS);
			break;
		}
		*out = xreallocarray_grow(*out, capacity, *count + 1, sizeof(**out));
		t = &(*out)[(*count)++];
		t->target = xstrdup(targets[i]);
		t->label_count = label_count;
		t->labels = xcalloc(label_count + 1, sizeof(*t->labels));
		for (size_t j = 0; j < label_count; j++) {
			t->labels[j].name = xstrdup(names[j]);
			t->labels[j].value = xstrdup(values[j]);
		}
	}
	cfg_strv_free(targets);
	cfg_strv_free(names);
	cfg_strv_free(values);
	cfg_map_finish(&group);
}

static void read_file(const char *path, struct discovery_target **out, size_t *count,
		      size_t *capacity, char **errors)
{
	struct cfg *parsed = cfg_parse_file(path);
	struct cfg_seq groups;

	if (cfg_root_seq(parsed, &groups) == 0) {
		for (size_t i = 0; i < cfg_seq_count(&groups); i++)
			read_group(&groups, i, out, count, capacity);
	}
	if (cfg_error_count(parsed) > 0)
		append_error(errors, cfg_errors(parsed));
	cfg_free(parsed);
}

/* The directory glob() could not read, and why. glob() reports it through a callback that
 * takes no user pointer, so the callback leaves it here for the message that follows. */
static _Thread_local char glob_failed_path[512];
static _Thread_local int glob_failed_errno;

/* A missing directory only means that no file matches yet, as for a pattern that matches
 * nothing. Any other error (such as EACCES) stops glob() with GLOB_ABORTED, so that it is
 * reported. GLOB_ERR is not set, because it would stop glob() on every error. */
static int glob_error(const char *path, int error)
{
	if (error == ENOENT || error == ENOTDIR)
		return 0;
	snprintf(glob_failed_path, sizeof(glob_failed_path), "%s", path);
	glob_failed_errno = error;
	return 1;
}

int discovery_read_targets(const struct config_discovery *dc, struct discovery_target **out,
			   size_t *count, char **errors)
{
	size_t capacity = 0;

	*out = NULL;
	*count = 0;
	*errors = NULL;
	for (size_t i = 0; i < dc->file_count; i++) {
		glob_t g;
		int rc;

		glob_failed_path[0] = '\0';
		glob_failed_errno = 0;
		rc = glob(dc->files[i], 0, glob_error, &g);
		if (rc == GLOB_NOMATCH) {
			globfree(&g);
			continue;
		}
		if (rc != 0) {
			char *e;

			if (glob_failed_errno != 0)
				e = xasprintf(
				    "%s:%zu: file_sd.files: cannot list %s for the pattern "
				    "\"%s\": %s; give tocsind read access to it, or fix "
				    "the pattern",
				    dc->source, dc->template_line + 1, glob_failed_path,
				    dc->files[i], strerror(glob_failed_errno));
			else
				e = xasprintf("%s:%zu: file_sd.files: cannot list the files of the "
					      "pattern \"%s\": out of memory",
					      dc->source, dc->template_line + 1, dc->files[i]);
			append_error(errors, e);
			free(e);
			globfree(&g);
			continue;
		}
		for (size_t j = 0; j < g.gl_pathc; j++)
			read_file(g.gl_pathv[j], out, count, &capacity, errors);
		globfree(&g);
	}
	if (*errors != NULL) {
		discovery_targets_free(*out, *count);
		*out = NULL;
		*count = 0;
		return -1;
	}
	return 0;
}

void discovery_targets_free(struct discovery_target *targets, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		for (size_t j = 0; j < targets[i].label_count; j++) {
			free((char *)targets[i].labels[j].name);
			free((char *)targets[i].labels[j].value);
		}
		free(targets[i].labels);
		free(targets[i].target);
	}
	free(targets);
}

/* Instantiates every target; on any error returns -1 with all errors, and no probes. */
static int instantiate_all(const struct config *cfg, const struct config_probe *tmpl,
			   const struct discovery_target *targets, size_t count,
			   struct config_probe **probes, char **errors)
{
	struct config_probe *out = xcalloc(count + 1, sizeof(*out));

	*errors = NULL;
	for (size_t i = 0; i < count; i++) {
		char *e = NULL;

		if (config_instantiate_probe(cfg, tmpl, targets[i].target, targets[i].labels,
					     targets[i].label_count, &out[i], &e) < 0) {
			append_error(errors, e);
			free(e);
		}
	}
	if (*errors != NULL) {
		for (size_t i = 0; i < count; i++)
			config_probe_clear(&out[i]);
		free(out);
		*probes = NULL;
		return -1;
	}
	*probes = out;
	return 0;
}

int discovery_check_template(const struct config *cfg, const struct config_probe *tmpl,
			     char **errors)
{
	struct discovery_target *targets;
	struct config_probe *probes;
	size_t count;
	int rc;

	/* DNS answers are not waited for while a config loads: that would stall a reload. */
	if (tmpl->discovery->kind == CONFIG_DISCOVERY_DNS) {
		*errors = NULL;
		return 0;
	}
	if (discovery_read_targets(tmpl->discovery, &targets, &count, errors) < 0)
		return -1;
	rc = instantiate_all(cfg, tmpl, targets, count, &probes, errors);
	if (rc == 0) {
		for (size_t i = 0; i < count; i++)
			config_probe_clear(&probes[i]);
		free(probes);
	}
	discovery_targets_free(targets, count);
	return rc;
}

/* The discovered probes of one template, and how they were last read. */
struct discovery_source {
	struct discovery *d;
	const struct config_probe *tmpl;
	struct discovery_dns *dns; /* dns_sd resolver, NULL for file_sd */
	struct config_probe *probes;
	size_t probe_count;
	uint64_t signature; /* of the targets and labels last read: a change re-instantiates */
	struct throttle errors;
};

struct discovery {
	struct event_base *base;
	discovery_changed_fn *changed;
	void *arg;
	const struct config *cfg;
	struct discovery_source *sources;
	size_t source_count;
	struct event *timer;
	uint64_t refresh_ms;
	struct config_probe **merged; /* every source's probes, for discovery_probes() */
	size_t merged_count;
};

static uint64_t targets_signature(const struct discovery_target *targets, size_t count)
{
	uint64_t h = HASH_FNV_OFFSET;

	for (size_t i = 0; i < count; i++) {
		h = hash_string(h, targets[i].target);
		for (size_t j = 0; j < targets[i].label_count; j++) {
			h = hash_string(h, targets[i].labels[j].name);
			h = hash_string(h, targets[i].labels[j].value);
		}
		h = hash_string(h, "");
	}
	return h;
}

static void source_clear_probes(struct discovery_source *src)
{
	for (size_t i = 0; i < src->probe_count; i++)
		config_probe_clear(&src->probes[i]);
	free(src->probes);
	src->probes = NULL;
	src->probe_count = 0;
}

static void log_source_errors(struct discovery_source *src, const char *errors)
{
	char ids[256];
	uint64_t suppressed = 0;
	const char *line = errors;

	if (!throttle_fail(&src->errors, probe_now_ms(), &suppressed))
		return;
	log_ids(ids, sizeof(ids), "probe", src->tmpl->name, NULL);
	log_error("discovery", ids,
		  "target files have errors; keeping the last good targets (%llu similar "
		  "suppressed)",
		  (unsigned long long)suppressed);
	for (int n = 0; line != NULL && *line != '\0' && n < 20; n++) {
		const char *end = strchr(line, '\n');
		int len = end != NULL ? (int)(end - line) : (int)strlen(line);

		log_error("discovery", ids, "%.*s", len, line);
		line = end != NULL ? end + 1 : NULL;
	}
}

/* Takes a fresh target list (ownership) and re-instantiates on a change; returns true
 * when the template's probes changed. */
static bool source_update(struct discovery *d, struct discovery_source *src,
			  struct discovery_target *targets, size_t count)
{
	struct config_probe *probes;
	char *errors = NULL;
	uint64_t signature = targets_signature(targets, count);
	char ids[256];

	if (signature == src->signature && src->probes != NULL) {
		discovery_targets_free(targets, count);
		return false;
	}
	if (instantiate_all(d->cfg, src->tmpl, targets, count, &probes, &errors) < 0) {
		log_source_errors(src, errors);
		free(errors);
		discovery_targets_free(targets, count);
		return false;
	}
	if (throttle_ok(&src->errors, NULL))
		log_notice("discovery", log_ids(ids, sizeof(ids), "probe", src->tmpl->name, NULL),
			   "targets read without errors again");
	log_info("discovery", log_ids(ids, sizeof(ids), "probe", src->tmpl->name, NULL),
		 "%zu targets", count);
	source_clear_probes(src);
	/* Empty but not NULL, so that "no targets" is remembered as read. */
	src->probes = probes != NULL ? probes : xcalloc(1, sizeof(*probes));
	src->probe_count = count;
	src->signature = signature;
	discovery_targets_free(targets, count);
	return true;
}

static void rebuild_merged(struct discovery *d);

static void on_dns_done(struct discovery_dns *q, void *arg)
{
	struct discovery_source *src = arg;
	struct discovery *d = src->d;
	char *errors = NULL;
	size_t count;
	struct discovery_target *targets = discovery_dns_result(q, &count, &errors);

	if (errors != NULL) {
		log_source_errors(src, errors);
		free(errors);
		discovery_targets_free(targets, count);
		return;
	}
	if (source_update(d, src, targets, count)) {
		rebuild_merged(d);
		d->changed(d->arg);
	}
}

/* Reads one template's targets; returns true when its probes changed now (a DNS lookup
 * reports its changes later, from on_dns_done). */
static bool source_refresh(struct discovery *d, struct discovery_source *src)
{
	struct discovery_target *targets;
	char *errors = NULL;
	size_t count;

	if (src->tmpl->discovery->kind == CONFIG_DISCOVERY_DNS) {
		if (src->dns != NULL && !discovery_dns_busy(src->dns))
			discovery_dns_start(src->dns, on_dns_done, src);
		return false;
	}
	if (discovery_read_targets(src->tmpl->discovery, &targets, &count, &errors) < 0) {
		log_source_errors(src, errors);
		free(errors);
		return false;
	}
	return source_update(d, src, targets, count);
}

static void rebuild_merged(struct discovery *d)
{
	size_t n = 0;

	free(d->merged);
	for (size_t i = 0; i < d->source_count; i++)
		n += d->sources[i].probe_count;
	d->merged = xcalloc(n + 1, sizeof(*d->merged));
	d->merged_count = 0;
	for (size_t i = 0; i < d->source_count; i++) {
		for (size_t j = 0; j < d->sources[i].probe_count; j++)
			d->merged[d->merged_count++] = &d->sources[i].probes[j];
	}
}

static void refresh_all(struct discovery *d, bool force_notify)
{
	bool changed = force_notify;

	for (size_t i = 0; i < d->source_count; i++)
		changed = source_refresh(d, &d->sources[i]) || changed;
	if (changed) {
		rebuild_merged(d);
		d->changed(d->arg);
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct discovery *d = arg;

	(void)fd;
	(void)what;
	refresh_all(d, false);
}

struct discovery *discovery_new(struct event_base *base, discovery_changed_fn *changed, void *arg)
{
	struct discovery *d = xcalloc(1, sizeof(*d));

	d->base = base;
	d->changed = changed;
	d->arg = arg;
	d->timer = event_new(base, -1, EV_PERSIST, on_timer, d);
	return d;
}

static void clear_sources(struct discovery *d)
{
	for (size_t i = 0; i < d->source_count; i++) {
		discovery_dns_free(d->sources[i].dns);
		source_clear_probes(&d->sources[i]);
	}
	free(d->sources);
	d->sources = NULL;
	d->source_count = 0;
	free(d->merged);
	d->merged = NULL;
	d->merged_count = 0;
}

void discovery_set_config(struct discovery *d, const struct config *cfg)
{
	struct discovery_source *src;
	uint64_t refresh = 0;

	event_del(d->timer);
	clear_sources(d);
	d->cfg = cfg;
	for (size_t i = 0; i < cfg->probe_count; i++) {
		const struct config_probe *p = &cfg->probes[i];

		if (p->discovery == NULL)
			continue;
		d->sources = xrealloc(d->sources, (d->source_count + 1) * sizeof(*d->sources));
		src = &d->sources[d->source_count++];
		memset(src, 0, sizeof(*src));
		src->d = d;
		src->tmpl = p;
		throttle_init(&src->errors, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
		if (p->discovery->kind == CONFIG_DISCOVERY_DNS) {
			char *error = NULL;

			src->dns = discovery_dns_new(d->base, p->discovery, &error);
			if (src->dns == NULL) {
				log_source_errors(src, error);
				free(error);
			}
		}
		if (refresh == 0 || p->discovery->refresh_ms < refresh)
			refresh = p->discovery->refresh_ms;
	}
	/* NOTE: every template is read at the shortest refresh interval of them all. */
	if (refresh != 0) {
		struct timeval tv = {(time_t)(refresh / 1000),
				     (suseconds_t)(refresh % 1000) * 1000};

		event_add(d->timer, &tv);
	}
	refresh_all(d, true);
}

struct config_probe *const *discovery_probes(struct discovery *d, size_t *count)
{
	*count = d->merged_count;
	return d->merged;
}

struct config_probe *discovery_expand(const struct config *cfg, size_t *count, char **errors)
{
	struct config_probe *all = NULL;
	size_t n = 0;

	*errors = NULL;
	for (size_t i = 0; i < cfg->probe_count; i++) {
		const struct config_probe *tmpl = &cfg->probes[i];
		struct discovery_target *targets = NULL;
		struct config_probe *probes;
		size_t tcount = 0;
		int rc;
		char *e = NULL;

		if (tmpl->discovery == NULL)
			continue;
		if (tmpl->discovery->kind == CONFIG_DISCOVERY_DNS)
			rc = discovery_dns_resolve_now(tmpl->discovery, &targets, &tcount, &e);
		else
			rc = discovery_read_targets(tmpl->discovery, &targets, &tcount, &e);
		if (rc < 0 || instantiate_all(cfg, tmpl, targets, tcount, &probes, &e) < 0) {
			if (e == NULL)
				e = xstrdup("invalid targets");
			append_error(errors, e);
			free(e);
			if (targets != NULL)
				discovery_targets_free(targets, tcount);
			continue;
		}
		all = xrealloc(all, (n + tcount + 1) * sizeof(*all));
		memcpy(&all[n], probes, tcount * sizeof(*all));
		n += tcount;
		free(probes);
		discovery_targets_free(targets, tcount);
	}
	*count = n;
	return all;
}

void discovery_free(struct discovery *d)
{
	if (d == NULL)
		return;
	event_free(d->timer);
	clear_sources(d);
	free(d);
}
