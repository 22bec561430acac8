/*
 * The API's read-only views of the daemon: /status, /status/buildinfo, /probes, /series
 * and the label listings, all built from the scheduler, the series registry and the
 * in-memory sample windows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerter/alerter.h"
#include "alerter/silence.h"
#include "autoconf.h"
#include "collector/config.h"
#include "collector/evaluator.h"
#include "collector/expr.h"
#include "collector/health.h"
#include "collector/rules.h"
#include "collector/scheduler.h"
#include "collector/series.h"
#include "collector/series_notation.h"
#include "collector/window.h"
#include "collector/xalloc.h"
#include "web/api_impl.h"

void api_handle_status(struct api_request *r)
{
	const struct api_sources *src = &r->api->src;
	const struct config *cfg = *src->cfg;
	char hash[17];
	size_t alerts = 0;
	size_t silences = 0;
	json_t *counts;

	if (src->al != NULL) {
		struct alerter_stats st;

		alerter_get_stats(src->al, &st);
		alerts = st.alerts;
		silences = silence_count(alerter_silences(src->al));
	}
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)cfg->hash);
	counts = json_pack("{s:I, s:I, s:I, s:I, s:I}", "probes",
			   (json_int_t)scheduler_probe_count(src->sched), "series",
			   (json_int_t)series_registry_count(src->reg), "rules",
			   (json_int_t)rules_count(evaluator_rules(src->ev)), "alerts",
			   (json_int_t)alerts, "silences", (json_int_t)silences);
	api_reply_data(r->req,
		       json_pack("{s:s, s:o, s:f, s:s, s:s, s:b, s:o}", "version", PACKAGE_VERSION,
				 "startTime", api_json_time(r->api->start_ms), "uptimeSeconds",
				 (double)(r->now_ms - r->api->start_ms) / 1000.0, "configHash",
				 hash, "configSource", cfg->source, "alerting", src->al != NULL,
				 "counts", counts));
}

/* Grafana's Prometheus data source reads the version here to pick its query features. */
void api_handle_buildinfo(struct api_request *r)
{
	api_reply_data(r->req, json_pack("{s:s, s:s, s:s}", "version", "2.40.0", "tocsinVersion",
					 PACKAGE_VERSION, "revision", ""));
}

static json_t *probe_json(const struct scheduler_probe_info *p)
{
	json_t *last = json_null();

	if (p->last_status != NULL)
		last = json_pack("{s:o, s:s, s:s, s:f}", "time", api_json_time(p->last_run_ms),
				 "status", p->last_status, "reason", p->last_reason,
				 "durationSeconds", p->last_duration_s);
	return json_pack(
	    "{s:s, s:s, s:s?, s:f, s:f, s:o, s:s, s:o, s:o, s:I, s:I}", "name", p->name, "type",
	    p->type, "target", p->target, "intervalSeconds", (double)p->interval_ms / 1000.0,
	    "timeoutSeconds", (double)p->timeout_ms / 1000.0, "labels",
	    api_json_labels(p->labels, p->label_count), "health", health_state_name(p->state),
	    "lastRun", last, "lastStateChange", api_json_time(p->last_change_ms), "runs",
	    (json_int_t)p->runs, "failures", (json_int_t)p->failures);
}

void api_handle_probes(struct api_request *r, const char *name)
{
	const struct scheduler *sched = r->api->src.sched;
	struct scheduler_probe_info info;
	json_t *list = json_array();

	for (size_t i = 0; scheduler_probe_info(sched, i, &info); i++) {
		if (name == NULL) {
			json_array_append_new(list, probe_json(&info));
		} else if (strcmp(info.name, name) == 0) {
			json_decref(list);
			api_reply_data(r->req, probe_json(&info));
			return;
		}
	}
	if (name != NULL) {
		json_decref(list);
		api_reply_error(r->req, 404, "probe not found",
				"no running probe is named \"%s\"; GET /api/v1/probes lists them",
				name);
		return;
	}
	api_reply_data(r->req, list);
}

/* ---- series and labels ------------------------------------------------------------------ */

struct series_listing {
	struct window_store *ws;
	const struct expr_source *src;
	int64_t start_ms, end_ms; /* only series with a sample in [start, end] */
	json_t *seen;             /* label text -> label object, in first-seen order */
};

static void list_one(void *arg, const struct expr_series *s)
{
	struct series_listing *l = arg;
	struct expr_sample_buffer buf = {0};
	struct label *all;
	json_t *labels;
	char *key;

	l->src->read(l->src->ctx, s->handle, l->start_ms, l->end_ms, &buf);
	free(buf.v);
	if (buf.count == 0)
		return;
	all = xcalloc(s->label_count + 1, sizeof(*all));
	all[0].name = "__name__";
	all[0].value = s->name;
	memcpy(all + 1, s->labels, s->label_count * sizeof(*all));
	key = series_notation_format_labels(all, s->label_count + 1);
	if (json_object_get(l->seen, key) == NULL) {
		labels = api_json_labels(all, s->label_count + 1);
		json_object_set_new(l->seen, key, labels);
	}
	free(key);
	free(all);
}

/*
 * Reads the repeated match[] parameters and the optional start and end, and calls the
 * source's select for each selector. Returns the series as an object keyed by their label
 * text, or NULL after replying 400. required: whether at least one match[] must be given.
 */
static json_t *select_series(struct api_request *r, bool required)
{
	struct expr_source src;
	struct series_listing l = {.ws = r->api->src.ws, .src = &src, .end_ms = r->now_ms};
	const char *start = api_param(r, "start");
	const char *end = api_param(r, "end");
	struct evkeyval *kv;
	size_t selectors = 0;

	l.start_ms = r->now_ms - EXPR_LOOKBACK_MS;
	if (start != NULL && api_parse_time(start, &l.start_ms) < 0) {
		api_reply_bad_param(r->req, "start",
				    "%s is not RFC 3339 or Unix seconds (example: "
				    "2024-05-01T10:00:00Z or 1714557600)",
				    start);
		return NULL;
	}
	if (end != NULL && api_parse_time(end, &l.end_ms) < 0) {
		api_reply_bad_param(r->req, "end",
				    "%s is not RFC 3339 or Unix seconds (example: "
				    "2024-05-01T10:00:00Z or 1714557600)",
				    end);
		return NULL;
	}
	if (start == NULL)
		l.start_ms = l.end_ms - EXPR_LOOKBACK_MS;
	if (l.end_ms < l.start_ms) {
		api_reply_bad_param(r->req, "end", "end is before start");
		return NULL;
	}
	window_source(r->api->src.ws, r->api->src.reg, &src);
	l.seen = json_object();
	TAILQ_FOREACH(kv, &r->params, next)
	{
		struct expr_selector sel;
		char *error = NULL;
		struct expr *e;

		if (strcmp(kv->key, "match[]") != 0)
			continue;
		selectors++;
		e = expr_parse(kv->value, NULL, &error);
		if (e == NULL || !expr_as_selector(e, &sel) || sel.range_ms != 0) {
			api_reply_bad_param(r->req, "match[]",
					    "%s: %s; expected a series selector such as "
					    "up{job=\"api\"}",
					    kv->value, e == NULL ? error : "not a plain selector");
			free(error);
			expr_free(e);
			json_decref(l.seen);
			return NULL;
		}
		src.select(src.ctx, sel.matchers, sel.count, list_one, &l);
		expr_free(e);
	}
	if (required && selectors == 0) {
		json_decref(l.seen);
		api_reply_bad_param(r->req, "match[]",
				    "missing; give at least one selector, as in "
				    "match[]=up{job=\"api\"}");
		return NULL;
	}
	return l.seen;
}

void api_handle_series(struct api_request *r)
{
	json_t *seen = select_series(r, true);
	json_t *list;
	const char *key;
	json_t *value;

	if (seen == NULL)
		return;
	list = json_array();
	json_object_foreach(seen, key, value)
	{
		json_array_append(list, value);
	}
	json_decref(seen);
	api_reply_data(r->req, list);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted keys of a JSON object, as a JSON array of strings. */
static json_t *sorted_keys(json_t *set)
{
	size_t n = json_object_size(set);
	const char **keys = xcalloc(n + 1, sizeof(*keys));
	json_t *list = json_array();
	const char *key;
	json_t *value;
	size_t i = 0;

	json_object_foreach(set, key, value)
	{
		keys[i++] = key;
	}
	qsort(keys, n, sizeof(*keys), compare_strings);
	for (i = 0; i < n; i++)
		json_array_append_new(list, json_string(keys[i]));
	free(keys);
	return list;
}

/*
 * /labels lists label names and /label/NAME/values one label's values, over the series
 * that match[] selects or, without match[], over every series of the registry with a
 * sample in the window.
 */
void api_handle_labels(struct api_request *r, const char *name)
{
	bool any = api_param(r, "match[]") != NULL;
	json_t *seen = NULL;
	json_t *names = json_object();
	const char *key;
	json_t *labels;

	if (any) {
		seen = select_series(r, true);
		if (seen == NULL) {
			json_decref(names);
			return;
		}
	} else {
		const struct series_registry *reg = r->api->src.reg;

		seen = json_object();
		for (size_t f = 0; f < series_registry_family_count(reg); f++) {
			const struct series_family *fam = series_registry_family(reg, f);

			for (size_t i = 0; i < fam->count; i++) {
				const struct series *s = fam->series[i];
				char id[32];
				json_t *o;

				if (window_sample_count(r->api->src.ws, s) == 0)
					continue;
				o = api_json_labels(s->labels, s->label_count);
				json_object_set_new(o, "__name__", json_string(fam->name));
				/* One entry per series: the id keeps them apart. */
				snprintf(id, sizeof(id), "#%llu", (unsigned long long)s->id);
				json_object_set_new(seen, id, o);
			}
		}
	}
	json_object_foreach(seen, key, labels)
	{
		const char *label;
		json_t *value;

		json_object_foreach(labels, label, value)
		{
			if (name == NULL)
				json_object_set_new(names, label, json_true());
			else if (strcmp(label, name) == 0)
				json_object_set_new(names, json_string_value(value), json_true());
		}
	}
	json_decref(seen);
	api_reply_data(r->req, sorted_keys(names));
	json_decref(names);
}
