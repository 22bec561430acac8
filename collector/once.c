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
