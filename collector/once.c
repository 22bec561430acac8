/*
 * The --once runner; see once.h. It reuses the scheduler, so a probe behaves here exactly
 * as it does in the daemon, timeouts included.
 */
#include "collector/once.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "collector/config.h"
#include "collector/discovery.h"
#include "collector/scheduler.h"
#include "collector/series.h"
#include "collector/shard.h"
#include "probes/probe.h"
#include "web/exposition.h"
#include "collector/xalloc.h"

struct once_state {
	FILE *out;
	size_t failed;
};

static void print_series(FILE *out, const struct series *s)
{
	struct evbuffer *buf = evbuffer_new();
	char value[64];

	evbuffer_add_printf(buf, "  %s{", s->family->name);
	for (size_t i = 0; i < s->label_count; i++) {
		evbuffer_add_printf(buf, "%s%s=\"", i > 0 ? "," : "", s->labels[i].name);
		exposition_escape_label_value(buf, s->labels[i].value);
		evbuffer_add(buf, "\"", 1);
	}
	exposition_format_value(value, sizeof(value), s->value);
	evbuffer_add_printf(buf, "} %s\n", value);
	evbuffer_write(buf, fileno(out));
	evbuffer_free(buf);
}

static void report(const char *probe_name, const char *type_name, const struct probe_run *run,
		   const struct series *const *written, size_t written_count, void *arg)
{
	struct once_state *st = arg;
	const struct probe_status_info *info = probe_status_info(probe_run_status(run));
	double ms = probe_run_duration_seconds(run) * 1000.0;

	if (info->status_class != PROBE_CLASS_OK && info->status_class != PROBE_CLASS_WARNING)
		st->failed++;
	fflush(st->out);
	for (size_t i = 0; i < written_count; i++)
		print_series(st->out, written[i]);
	fprintf(st->out, "probe %s (type %s): %s in %.1f ms: %s\n", probe_name, type_name,
		info->name, ms, probe_run_reason(run));
	fflush(st->out);
}

/* Prints which shard each probe belongs to, the config's own probes first, so that an
 * operator can check a split before deploying it. */
static void print_assignment(const struct config *cfg, struct config_probe *const *found,
			     size_t found_count, FILE *out)
{
	size_t own = 0;
	size_t total = 0;

	for (size_t i = 0; i < cfg->probe_count + found_count; i++) {
		const struct config_probe *p =
		    i < cfg->probe_count ? &cfg->probes[i] : found[i - cfg->probe_count];

		if (p->discovery != NULL)
			continue;
		total++;
		if (shard_owns(cfg->shard_index, cfg->shard_count, p->name))
			own++;
	}
	fprintf(out, "shard %u/%u: runs %zu of %zu probes\n", cfg->shard_index, cfg->shard_count,
		own, total);
	for (size_t i = 0; i < cfg->probe_count + found_count; i++) {
		const struct config_probe *p =
		    i < cfg->probe_count ? &cfg->probes[i] : found[i - cfg->probe_count];

		if (p->discovery == NULL)
			fprintf(out, "  shard %u/%u: %s\n", shard_of(p->name, cfg->shard_count),
				cfg->shard_count, p->name);
	}
	fflush(out);
}

int once_run(struct config *cfg, FILE *out)
{
	struct once_state st = {.out = out};
	struct event_base *base = event_base_new();
	struct series_registry *reg = series_registry_new();
	struct scheduler *sched = scheduler_new(base, reg, NULL);
	char *errors = NULL;
	size_t found_count = 0;
	struct config_probe *found = discovery_expand(cfg, &found_count, &errors);
	struct config_probe **found_refs = xcalloc(found_count + 1, sizeof(*found_refs));
	size_t count;

	if (errors != NULL) {
		fprintf(stderr, "%s\n", errors);
		st.failed++;
		free(errors);
	}
	/* The config's own probes, then the discovered targets of its templates. */
	for (size_t i = 0; i < found_count; i++)
		found_refs[i] = &found[i];
	if (cfg->shard_count > 0)
		print_assignment(cfg, found_refs, found_count, out);
	scheduler_apply_with_discovered(sched, cfg, found_refs, found_count);
	count = scheduler_probe_count(sched);
	for (size_t i = 0; i < found_count; i++)
		config_probe_clear(&found[i]);
	free(found);
	free(found_refs);

	scheduler_run_once(sched, report, &st);
	event_base_dispatch(base);
	scheduler_free(sched);
	series_registry_free(reg);
	event_base_free(base);

	fprintf(out, "%zu probes, %zu succeeded, %zu failed\n", count,
		count > st.failed ? count - st.failed : 0, st.failed);
	return st.failed == 0 ? 0 : 1;
}
