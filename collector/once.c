/*
 * The --once runner; see once.h. It reuses the scheduler, so a probe behaves here exactly
 * as it does in the daemon, timeouts included.
 */
#include "collector/once.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdbool.h>
#include <string.h>

#include "collector/config.h"
#include "collector/scheduler.h"
#include "collector/series.h"
#include "probes/probe.h"
#include "web/exposition.h"

struct once_state {
	FILE *out;
	size_t failed;
};

static void print_sample(FILE *out, const char *probe_name, const struct probe_sample *smp)
{
	struct evbuffer *buf = evbuffer_new();
	char value[64];

	evbuffer_add_printf(buf, "  %s{", smp->desc->name);
	for (size_t i = 0; i < smp->label_count; i++) {
		evbuffer_add_printf(buf, "%s=\"", smp->labels[i].name);
		exposition_escape_label_value(buf, smp->labels[i].value);
		evbuffer_add(buf, "\",", 2);
	}
	evbuffer_add(buf, "probe=\"", 7);
	exposition_escape_label_value(buf, probe_name);
	exposition_format_value(value, sizeof(value), smp->value);
	evbuffer_add_printf(buf, "\"} %s\n", value);
	evbuffer_write(buf, fileno(out));
	evbuffer_free(buf);
}

static void report(const char *probe_name, const char *type_name, const struct probe_run *run,
		   void *arg)
{
	struct once_state *st = arg;
	const struct probe_status_info *info = probe_status_info(probe_run_status(run));
	double ms = probe_run_duration_seconds(run) * 1000.0;

	if (probe_run_status(run) != PROBE_STATUS_OK)
		st->failed++;
	fflush(st->out);
	for (size_t i = 0; i < probe_run_sample_count(run); i++)
		print_sample(st->out, probe_name, probe_run_sample(run, i));
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
	size_t count = cfg->probe_count;

	scheduler_apply(sched, cfg);
	scheduler_run_once(sched, report, &st);
	event_base_dispatch(base);
	scheduler_free(sched);
	series_registry_free(reg);
	event_base_free(base);

	fprintf(out, "%zu probes, %zu succeeded, %zu failed\n", count, count - st.failed,
		st.failed);
	return st.failed == 0 ? 0 : 1;
}
