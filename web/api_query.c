/*
 * /query and /query_range: expressions of the rule language evaluated over the in-memory
 * sample windows, answered in the shape of Prometheus's HTTP API so that Grafana's
 * Prometheus data source can read them. The window holds the rules' longest range, at most
 * WINDOW_DEFAULT_MAX_SAMPLES samples per series, and nothing from before the daemon started.
 * A range query of a plain selector that starts earlier reads the RRD archive
 * (web/api_archive.c); any other expression over such a range gets 422.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/expr.h"
#include "collector/series_notation.h"
#include "collector/window.h"
#include "collector/xalloc.h"
#include "web/api_impl.h"

/* [1714557600.123, "42"]: Prometheus's sample pair, time in seconds. */
static json_t *sample_pair(int64_t time_ms, double value)
{
	char text[40];

	return json_pack("[f, s]", (double)time_ms / 1000.0,
			 api_format_value(value, text, sizeof(text)));
}

/* Parses the `query` parameter. Returns the expression, or NULL after replying 400. */
static struct expr *parse_query(struct api_request *r)
{
	const char *text = api_param(r, "query");
	char *error = NULL;
	struct expr *e;

	if (text == NULL || text[0] == '\0') {
		api_reply_bad_param(r->req, "query", "missing; give an expression, as in query=up");
		return NULL;
	}
	e = expr_parse(text, NULL, &error);
	if (e == NULL) {
		api_reply_bad_param(r->req, "query", "%s", error);
		free(error);
	}
	return e;
}

static int time_param(struct api_request *r, const char *name, int64_t *out_ms)
{
	const char *text = api_param(r, name);

	if (text == NULL) {
		api_reply_bad_param(r->req, name, "missing; give RFC 3339 or Unix seconds");
		return -1;
	}
	if (api_parse_time(text, out_ms) < 0) {
		api_reply_bad_param(r->req, name,
				    "%s is not RFC 3339 or Unix seconds (example: "
				    "2024-05-01T10:00:00Z or 1714557600)",
				    text);
		return -1;
	}
	return 0;
}

struct matrix_reading {
	const struct expr_source *src;
	int64_t from_ms, to_ms;
	json_t *result;
};

/* One series of a range selector: its samples in the range, stale markers left out. */
static void read_range(void *arg, const struct expr_series *s)
{
	struct matrix_reading *m = arg;
	struct expr_sample_buffer buf = {0};
	json_t *values = json_array();
	json_t *metric;

	m->src->read(m->src->ctx, s->handle, m->from_ms, m->to_ms, &buf);
	for (size_t i = 0; i < buf.count; i++) {
		if (!expr_is_stale_marker(buf.v[i].value))
			json_array_append_new(values,
					      sample_pair(buf.v[i].time_ms, buf.v[i].value));
	}
	free(buf.v);
	if (json_array_size(values) == 0) {
		json_decref(values);
		return;
	}
	metric = api_json_labels(s->labels, s->label_count);
	json_object_set_new(metric, "__name__", json_string(s->name));
	json_array_append_new(m->result,
			      json_pack("{s:o, s:o}", "metric", metric, "values", values));
}

/* An instant query of a range selector ("up[5m]") returns its raw samples, as in PromQL. */
static void query_matrix(struct api_request *r, const struct expr *e, int64_t time_ms)
{
	struct expr_selector sel;
	struct expr_source src;
	struct matrix_reading m = {.src = &src};

	if (!expr_as_selector(e, &sel)) {
		api_reply_bad_param(r->req, "query",
				    "a range vector is only returned for a plain range selector "
				    "such as up[5m]; wrap other range vectors in a function such "
				    "as rate()");
		return;
	}
	window_source(r->api->src.ws, r->api->src.reg, &src);
	m.to_ms = time_ms - sel.offset_ms;
	m.from_ms = m.to_ms - sel.range_ms;
	m.result = json_array();
	src.select(src.ctx, sel.matchers, sel.count, read_range, &m);
	api_reply_data(r->req, json_pack("{s:s, s:o}", "resultType", "matrix", "result", m.result));
}

static json_t *vector_json(const struct expr_result *res, int64_t time_ms)
{
	json_t *list = json_array();

	for (size_t i = 0; i < res->count; i++) {
		const struct expr_element *el = &res->elements[i];

		json_array_append_new(list, json_pack("{s:o, s:o}", "metric",
						      api_json_labels(el->labels, el->label_count),
						      "value", sample_pair(time_ms, el->value)));
	}
	return list;
}

/* Evaluates e at time_ms. Returns 0, or -1 after replying 422 with the evaluation error. */
static int evaluate(struct api_request *r, const struct expr *e, int64_t time_ms,
		    struct expr_result *res)
{
	struct expr_source src;

	window_source(r->api->src.ws, r->api->src.reg, &src);
	if (expr_eval(e, &src, time_ms, res) == 0)
		return 0;
	api_reply_error(r->req, 422, "evaluation failed", "%s",
			res->error != NULL ? res->error : "unknown error");
	expr_result_free(res);
	return -1;
}

void api_handle_query(struct api_request *r)
{
	struct expr *e = parse_query(r);
	int64_t time_ms = r->now_ms;
	struct expr_result res;
	json_t *data;

	if (e == NULL)
		return;
	if (api_param(r, "time") != NULL && time_param(r, "time", &time_ms) < 0)
		goto out;
	if (expr_result_type(e) == EXPR_TYPE_MATRIX) {
		query_matrix(r, e, time_ms);
		goto out;
	}
	if (evaluate(r, e, time_ms, &res) < 0)
		goto out;
	switch (res.type) {
	case EXPR_TYPE_SCALAR:
		data = json_pack("{s:s, s:o}", "resultType", "scalar", "result",
				 sample_pair(time_ms, res.scalar));
		break;
	case EXPR_TYPE_STRING:
		data = json_pack("{s:s, s:[f, s]}", "resultType", "string", "result",
				 (double)time_ms / 1000.0, res.string != NULL ? res.string : "");
		break;
	default:
		data = json_pack("{s:s, s:o}", "resultType", "vector", "result",
				 vector_json(&res, time_ms));
		break;
	}
	expr_result_free(&res);
	api_reply_data(r->req, data);
out:
	expr_free(e);
}

/* Range parameters: start, end and step, checked as Prometheus checks them. */
static int range_params(struct api_request *r, int64_t *start, int64_t *end, int64_t *step)
{
	const char *text;

	if (time_param(r, "start", start) < 0 || time_param(r, "end", end) < 0)
		return -1;
	if (*end < *start) {
		api_reply_bad_param(r->req, "end", "end is before start");
		return -1;
	}
	text = api_param(r, "step");
	if (text == NULL) {
		api_reply_bad_param(r->req, "step", "missing; give a duration such as 15s or 60");
		return -1;
	}
	if (api_parse_duration(text, step) < 0 || *step <= 0) {
		api_reply_bad_param(r->req, "step",
				    "%s is not a positive duration (examples: 15s, 1m, 60)", text);
		return -1;
	}
	if ((*end - *start) / *step + 1 > API_MAX_RANGE_POINTS) {
		api_reply_bad_param(r->req, "step",
				    "the range has more than %d points per series; use a larger "
				    "step or a shorter range",
				    API_MAX_RANGE_POINTS);
		return -1;
	}
	return 0;
}

/* Adds one step's result to the series keyed by their label text. */
static void add_step(json_t *by_key, const struct expr_result *res, int64_t time_ms)
{
	if (res->type == EXPR_TYPE_SCALAR) {
		json_t *entry = json_object_get(by_key, "{}");

		if (entry == NULL) {
			entry = json_pack("{s:{}, s:[]}", "metric", "values");
			json_object_set_new(by_key, "{}", entry);
		}
		json_array_append_new(json_object_get(entry, "values"),
				      sample_pair(time_ms, res->scalar));
		return;
	}
	for (size_t i = 0; i < res->count; i++) {
		const struct expr_element *el = &res->elements[i];
		char *key = series_notation_format_labels(el->labels, el->label_count);
		json_t *entry = json_object_get(by_key, key);

		if (entry == NULL) {
			entry = json_pack("{s:o, s:[]}", "metric",
					  api_json_labels(el->labels, el->label_count), "values");
			json_object_set_new(by_key, key, entry);
		}
		json_array_append_new(json_object_get(entry, "values"),
				      sample_pair(time_ms, el->value));
		free(key);
	}
}

void api_handle_query_range(struct api_request *r)
{
	struct expr *e = parse_query(r);
	int64_t start, end, step;
	struct expr_selector sel;
	char since[32];
	json_t *by_key;
	json_t *result;
	const char *key;
	json_t *entry;

	if (e == NULL)
		return;
	if (range_params(r, &start, &end, &step) < 0)
		goto out;
	if (expr_result_type(e) != EXPR_TYPE_SCALAR && expr_result_type(e) != EXPR_TYPE_VECTOR) {
		api_reply_bad_param(r->req, "query",
				    "the expression is a %s; a range query needs a scalar or an "
				    "instant vector",
				    expr_type_name(expr_result_type(e)));
		goto out;
	}
	if (expr_as_selector(e, &sel)) {
		if (api_archive_query_range(r, &sel, start, end, step) != 0)
			goto out;
	} else if (expr_history_ms(e) > 0 && start < r->api->start_ms) {
		/* NOTE: the window may reach less far back than the daemon's start when the
		 * rules' history is shorter than its uptime, and then the result misses points. */
		api_reply_error(
		    r->req, 422, "range starts before the in-memory window",
		    "the in-memory window reaches back to %s (the daemon's start); older "
		    "data is read from the archive only for plain selectors such as "
		    "metric{label=\"value\"}, so query the selector or start the range "
		    "later",
		    api_format_time(r->api->start_ms, since, sizeof(since)));
		goto out;
	}
	by_key = json_object();
	for (int64_t t = start; t <= end; t += step) {
		struct expr_result res;

		if (evaluate(r, e, t, &res) < 0) {
			json_decref(by_key);
			goto out;
		}
		add_step(by_key, &res, t);
		expr_result_free(&res);
	}
	result = json_array();
	json_object_foreach(by_key, key, entry)
	{
		json_array_append(result, entry);
	}
	json_decref(by_key);
	api_reply_data(r->req, json_pack("{s:s, s:o}", "resultType", "matrix", "result", result));
out:
	expr_free(e);
}
