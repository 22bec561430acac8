/*
 * Output interpretation for the exec probe; see exec_output.h. Performance data becomes
 * one series per label, with thresholds, minimum and maximum as separate families, all
 * converted to base units; see docs/probes/exec.md for the naming.
 */
#include "probes/exec_output.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/log.h"
#include "collector/xalloc.h"
#include "probes/perfdata.h"
#include "probes/probe.h"

static const struct metric_desc desc_status = {
    "tocsin_exec_status",
    "Exit code of the command's last run; 128 plus the signal number when a signal killed it.",
    METRIC_GAUGE};
static const struct metric_desc desc_discarded = {
    "tocsin_exec_output_discarded_bytes",
    "Bytes of standard output beyond max_output_size that the last run read and dropped.",
    METRIC_GAUGE};
static const struct metric_desc desc_perfdata_errors = {
    "tocsin_exec_perfdata_errors",
    "Performance data items of the last run that could not be parsed and were skipped.",
    METRIC_GAUGE};
static const struct metric_desc desc_value = {
    "tocsin_exec_perfdata", "Value of a performance data item, in base units; NaN for U.",
    METRIC_GAUGE};
static const struct metric_desc desc_counter = {
    "tocsin_exec_perfdata_total", "Value of a performance data item with unit c (a counter).",
    METRIC_COUNTER};
static const struct metric_desc desc_warning = {
    "tocsin_exec_perfdata_warning",
    "Bounds of a performance data item's warning range, in base units; bound says which.",
    METRIC_GAUGE};
static const struct metric_desc desc_critical = {
    "tocsin_exec_perfdata_critical",
    "Bounds of a performance data item's critical range, in base units; bound says which.",
    METRIC_GAUGE};
static const struct metric_desc desc_min = {
    "tocsin_exec_perfdata_min", "Minimum a performance data item can take, in base units.",
    METRIC_GAUGE};
static const struct metric_desc desc_max = {
    "tocsin_exec_perfdata_max", "Maximum a performance data item can take, in base units.",
    METRIC_GAUGE};

void exec_metric_cache_clear(struct exec_metric_cache *cache)
{
	exposition_doc_free(&cache->doc);
	free(cache->descs);
	cache->descs = NULL;
}

/* The first line of stderr, for a reason when stdout has nothing to say. */
static char *first_line(const char *text, size_t length)
{
	const char *end = memchr(text, '\n', length);
	size_t n = end != NULL ? (size_t)(end - text) : length;

	while (n > 0 && (text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	return xstrndup(text, n);
}

static void emit_status(struct probe_run *run, const struct exec_result *res)
{
	probe_run_emit(run, &desc_status, NULL, 0, res->exit_code);
	probe_run_emit(run, &desc_discarded, NULL, 0, (double)res->out_discarded);
}

/*
 * A range becomes up to two series. A plain range alerts outside start..end: its end is
 * bound="upper" and an explicitly written, finite start bound="lower". An "@" range alerts
 * inside start..end: bound="inside_lower" and bound="inside_upper", both when finite.
 */
static void emit_range(struct probe_run *run, const struct metric_desc *desc, struct label *labels,
		       const struct perfdata_range *r, const struct perfdata_unit *unit)
{
	if (!r->present)
		return;
	if (isfinite(r->start) && (r->start_explicit || r->inside)) {
		labels[2].value = r->inside ? "inside_lower" : "lower";
		probe_run_emit(run, desc, labels, 3, perfdata_unit_convert(unit, r->start));
	}
	if (isfinite(r->end)) {
		labels[2].value = r->inside ? "inside_upper" : "upper";
		probe_run_emit(run, desc, labels, 3, perfdata_unit_convert(unit, r->end));
	}
}

static void emit_item(struct probe_run *run, const struct perfdata_item *item)
{
	struct perfdata_unit unit = perfdata_unit_lookup(item->uom);
	struct label labels[3] = {{"label", item->label}, {"uom", unit.name}, {"bound", ""}};

	probe_run_emit(run, unit.counter ? &desc_counter : &desc_value, labels, 2,
		       perfdata_unit_convert(&unit, item->value));
	emit_range(run, &desc_warning, labels, &item->warn, &unit);
	emit_range(run, &desc_critical, labels, &item->crit, &unit);
	if (item->has_min)
		probe_run_emit(run, &desc_min, labels, 2, perfdata_unit_convert(&unit, item->min));
	if (item->has_max)
		probe_run_emit(run, &desc_max, labels, 2, perfdata_unit_convert(&unit, item->max));
}

/* Emits every item whose label was not used by an earlier item; returns the repeats. */
static size_t emit_perfdata(struct probe_run *run, const struct perfdata_list *list,
			    const char **repeated)
{
	size_t repeats = 0;

	for (size_t i = 0; i < list->count; i++) {
		bool seen = false;

		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(list->items[i].label, list->items[j].label) == 0;
		if (seen) {
			if (repeats++ == 0)
				*repeated = list->items[i].label;
			continue;
		}
		emit_item(run, &list->items[i]);
	}
	return repeats;
}

static enum probe_status nagios_status(const struct exec_result *res)
{
	if (res->signal != 0)
		return PROBE_STATUS_UNKNOWN;
	switch (res->exit_code) {
	case 0:
		return PROBE_STATUS_OK;
	case 1:
		return PROBE_STATUS_WARNING;
	case 2:
		return PROBE_STATUS_CRITICAL;
	default:
		return PROBE_STATUS_UNKNOWN;
	}
}

static void log_perfdata_errors(const struct exec_result *res, const struct perfdata_list *list,
				size_t repeats, const char *repeated, struct throttle *throttle)
{
	uint64_t suppressed = 0;
	size_t errors = list->errors + repeats;

	if (errors == 0) {
		uint64_t failures;

		if (throttle_ok(throttle, &failures))
			log_info("exec", res->ids,
				 "performance data valid again after %llu runs "
				 "with errors",
				 (unsigned long long)failures);
		return;
	}
	if (!throttle_fail(throttle, probe_now_ms(), &suppressed))
		return;
	if (list->errors > 0)
		log_warn("exec", res->ids,
			 "%zu invalid performance data items skipped, first: %s "
			 "(%llu similar messages suppressed)",
			 errors, list->first_error, (unsigned long long)suppressed);
	else
		log_warn("exec", res->ids,
			 "performance data label '%s' repeated; later items "
			 "skipped (%llu similar messages suppressed)",
			 repeated, (unsigned long long)suppressed);
}

void exec_output_nagios(struct probe_run *run, const struct exec_result *res,
			struct throttle *throttle)
{
	struct perfdata_output parts;
	struct perfdata_list list = {0};
	enum probe_status status = nagios_status(res);
	const char *repeated = NULL;
	size_t repeats;
	char *reason;

	perfdata_split_output(res->out, res->out_length, &parts);
	perfdata_parse(parts.perfdata, &list);
	emit_status(run, res);
	repeats = emit_perfdata(run, &list, &repeated);
	probe_run_emit(run, &desc_perfdata_errors, NULL, 0, (double)(list.errors + repeats));
	log_perfdata_errors(res, &list, repeats, repeated, throttle);

	/* The status text, else stderr's first line, else how the command ended. */
	reason = parts.summary[0] != '\0' ? xstrdup(parts.summary)
					  : first_line(res->err, res->err_length);
	if (res->signal != 0)
		probe_run_finish(run, status, "killed by signal %d%s%s", res->signal,
				 reason[0] != '\0' ? ": " : "", reason);
	else if (res->exit_code > 3)
		probe_run_finish(run, status, "exit status %d%s%s", res->exit_code,
				 reason[0] != '\0' ? ": " : "", reason);
	else if (reason[0] == '\0')
		probe_run_finish(run, status, "exit status %d, no output", res->exit_code);
	else
		probe_run_finish(run, status, "%s", reason);

	free(reason);
	perfdata_list_free(&list);
	perfdata_output_free(&parts);
}

/* Emits one parsed sample; a `probe` label would clash with the scheduler's own. */
static void emit_exposition_sample(struct probe_run *run, const struct metric_desc *desc,
				   const struct exposition_sample *smp)
{
	struct label stack_labels[16];
	struct label *labels =
	    smp->label_count <= 16 ? stack_labels : xcalloc(smp->label_count, sizeof(*labels));

	for (size_t i = 0; i < smp->label_count; i++) {
		labels[i] = smp->labels[i];
		if (strcmp(labels[i].name, "probe") == 0)
			labels[i].name = "exported_probe";
	}
	probe_run_emit(run, desc, labels, smp->label_count, smp->value);
	if (labels != stack_labels)
		free(labels);
}

void exec_output_prometheus(struct probe_run *run, const struct exec_result *res,
			    struct exec_metric_cache *cache)
{
	struct exposition_doc *doc = &cache->doc;
	char error[EXPOSITION_PARSE_ERROR_SIZE];
	char *line;

	emit_status(run, res);
	if (res->signal != 0 || res->exit_code != 0) {
		line = first_line(res->err, res->err_length);
		if (res->signal != 0)
			probe_run_finish(run, PROBE_STATUS_UNKNOWN, "killed by signal %d%s%s",
					 res->signal, line[0] != '\0' ? ": " : "", line);
		else
			probe_run_finish(run, PROBE_STATUS_UNKNOWN, "exit status %d%s%s",
					 res->exit_code, line[0] != '\0' ? ": " : "", line);
		free(line);
		return;
	}
	if (res->out_discarded > 0) {
		probe_run_finish(run, PROBE_STATUS_PARSE_ERROR,
				 "output longer than max_output_size (%zu bytes); nothing ingested",
				 res->out_length);
		return;
	}
	if (exposition_parse(res->out, res->out_length, doc, error, sizeof(error)) < 0) {
		probe_run_finish(run, PROBE_STATUS_PARSE_ERROR, "exposition %s; nothing ingested",
				 error);
		return;
	}

	cache->descs = xcalloc(doc->metric_count ? doc->metric_count : 1, sizeof(*cache->descs));
	for (size_t i = 0; i < doc->metric_count; i++) {
		cache->descs[i] = (struct metric_desc){doc->metrics[i].name, doc->metrics[i].help,
						       doc->metrics[i].type};
	}
	for (size_t i = 0; i < doc->sample_count; i++) {
		const struct exposition_sample *smp = &doc->samples[i];

		emit_exposition_sample(run, &cache->descs[smp->metric], smp);
	}
	probe_run_finish(run, PROBE_STATUS_OK, "%zu samples", doc->sample_count);
}
