/*
 * The archive path of /query_range. For a plain selector whose range starts before the
 * in-memory windows reach, the values come from the series' RRD files (collector/store.h),
 * read with rrd_fetch_r, and from the window for the steps the window covers. The files
 * are read on the loop thread, so a request reads at most API_ARCHIVE_MAX_SERIES files
 * with one fetch each. Only gauges are read from the archive, because a counter's file
 * stores a per-second rate (DDERIVE), not the counter's value.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rrd.h>
#include <rrd_client.h>

#include "collector/config.h"
#include "collector/expr.h"
#include "collector/log.h"
#include "collector/rrdcached.h"
#include "collector/store.h"
#include "collector/window.h"
#include "collector/xalloc.h"
#include "web/api_impl.h"

/* A series that the window source lists. Its labels pointer is the registry's own, so the
 * pointer identifies the series. */
struct archive_window {
	const struct label *labels;
	const void *handle;
	int64_t oldest_ms; /* time of the window's oldest sample */
};

struct archive_windows {
	const struct expr_source *src;
	struct archive_window *v;
	size_t count;
};

static void collect_window(void *arg, const struct expr_series *s)
{
	struct archive_windows *w = arg;
	struct expr_sample_buffer buf = {0};

	w->src->read(w->src->ctx, s->handle, INT64_MIN, INT64_MAX, &buf);
	if (buf.count > 0) {
		w->v = xrealloc(w->v, (w->count + 1) * sizeof(*w->v));
		w->v[w->count++] = (struct archive_window){s->labels, s->handle, buf.v[0].time_ms};
	}
	free(buf.v);
}

static const struct archive_window *find_window(const struct archive_windows *w,
						const struct series *s)
{
	for (size_t i = 0; i < w->count; i++)
		if (w->v[i].labels == s->labels)
			return &w->v[i];
	return NULL;
}

static bool series_matches(const struct expr_selector *sel, const struct series *s)
{
	for (size_t i = 0; i < sel->count; i++) {
		const struct expr_matcher *m = &sel->matchers[i];
		const char *value =
		    strcmp(m->name, "__name__") == 0 ? s->family->name : series_label(s, m->name);

		if (!expr_matcher_matches(m, value))
			return false;
	}
	return true;
}

/* Rows of one archive fetch: row i is the average over (start + i*step, start + (i+1)*step]. */
struct archive_rows {
	time_t start;
	unsigned long step;
	size_t count;
	double *v;
};

/*
 * Fetches the AVERAGE rows of a series' file over [from_s, to_s] at the resolution that
 * librrd picks for step_s. Through rrdcached on a unix socket, the daemon first writes the
 * file's pending updates (FLUSH) and the file is read here. A TCP daemon may be on another
 * host, so it sends the rows (FETCH) for the path relative to its base directory. Returns
 * 0 (rows->count 0 when the file does not exist yet), or -1 with librrd's error in why.
 */
static int fetch_rows(const char *daemon, const struct series *s, time_t from_s, time_t to_s,
		      unsigned long step_s, struct archive_rows *rows, char *why, size_t size)
{
	const char *path = store_file_path(s->file);
	bool tcp = false;
	unsigned long ds_count = 0;
	char **ds_names = NULL;
	double *data = NULL;
	time_t start = from_s;
	time_t end = to_s;
	unsigned long step = step_s;
	struct stat sb;
	int rc;

	*rows = (struct archive_rows){0};
	if (daemon != NULL) {
		struct rrdcached *c = rrdcached_new(daemon);

		tcp = c != NULL && !rrdcached_is_unix(c);
		rrdcached_free(c);
	}
	if (!tcp && stat(path, &sb) != 0)
		return 0;
	/* NOTE: the fetch blocks the event loop, for as long as a small file read or one
	 * rrdcached round trip takes, which API_ARCHIVE_MAX_SERIES bounds per request. */
	rrd_clear_error();
	if (tcp) {
		/* The path is METRIC_DIR/FILE.rrd, relative to the daemon's base directory,
		 * as the store sends it. */
		const char *p = strrchr(path, '/');

		while (p != NULL && p > path && p[-1] != '/')
			p--;
		rc = rrdc_connect(daemon);
		if (rc == 0)
			rc = rrdc_fetch(p != NULL ? p : path, "AVERAGE", &start, &end, &step,
					&ds_count, &ds_names, &data);
	} else {
		rc = daemon != NULL ? rrdc_flush_if_daemon(daemon, path) : 0;
		if (rc == 0)
			rc = rrd_fetch_r(path, "AVERAGE", &start, &end, &step, &ds_count, &ds_names,
					 &data);
	}
	if (rc != 0) {
		snprintf(why, size, "%s: %s", path,
			 rrd_test_error() ? rrd_get_error() : "librrd returned an error");
		rrd_clear_error();
		return -1;
	}
	for (unsigned long i = 0; i < ds_count; i++)
		free(ds_names[i]);
	free(ds_names);
	/* The store creates files with one data source ("value"), so others are foreign. */
	if (ds_count != 1 || step == 0) {
		free(data);
		snprintf(why, size, "%s: expected one data source, found %lu", path, ds_count);
		return -1;
	}
	*rows = (struct archive_rows){start, step, (size_t)((end - start) / (time_t)step), data};
	return 0;
}

/* The latest archive row that ends at or before t_s, as an instant selector reads. */
static bool row_value(const struct archive_rows *rows, int64_t t_s, double *out)
{
	int64_t index;

	if (rows->count == 0 || t_s < rows->start + (int64_t)rows->step)
		return false;
	index = (t_s - rows->start) / (int64_t)rows->step - 1;
	if (index >= (int64_t)rows->count)
		return false;
	*out = rows->v[index];
	return !isnan(*out);
}

/* The latest window sample in (t - lookback, t], absent after a stale marker. */
static bool window_value(const struct expr_sample_buffer *buf, int64_t t_ms, double *out)
{
	for (size_t i = buf->count; i > 0; i--) {
		const struct expr_sample *sm = &buf->v[i - 1];

		if (sm->time_ms > t_ms)
			continue;
		if (sm->time_ms <= t_ms - EXPR_LOOKBACK_MS || expr_is_stale_marker(sm->value))
			return false;
		*out = sm->value;
		return true;
	}
	return false;
}

struct archive_range {
	const struct expr_selector *sel;
	const struct expr_source *src;
	const char *daemon;
	int64_t start_ms, end_ms, step_ms;
};

/* One series' values at every step. Returns its JSON entry, NULL when it has none, or
 * NULL with *failed set after replying 500. */
static json_t *series_values(struct api_request *r, const struct archive_range *q,
			     const struct series *s, const struct archive_window *w, bool *failed)
{
	int64_t offset = q->sel->offset_ms;
	struct archive_rows rows = {0};
	struct expr_sample_buffer buf = {0};
	json_t *values = json_array();
	json_t *metric;
	char why[512];

	if (w != NULL)
		q->src->read(q->src->ctx, w->handle, q->start_ms - offset - EXPR_LOOKBACK_MS,
			     q->end_ms - offset, &buf);
	if (s->file != NULL && (w == NULL || q->start_ms - offset < w->oldest_ms)) {
		unsigned long step_s = q->step_ms >= 1000 ? (unsigned long)(q->step_ms / 1000) : 1;
		time_t from_s = (time_t)((q->start_ms - offset) / 1000) - (time_t)step_s;
		time_t to_s = (time_t)((q->end_ms - offset) / 1000) + 1;

		if (fetch_rows(q->daemon, s, from_s, to_s, step_s, &rows, why, sizeof(why)) < 0) {
			log_warn("api", NULL, "query_range: reading the archive failed: %s", why);
			api_reply_error(r->req, 500, "archive read failed", "%s", why);
			json_decref(values);
			free(buf.v);
			*failed = true;
			return NULL;
		}
	}
	for (int64_t t = q->start_ms; t <= q->end_ms; t += q->step_ms) {
		int64_t at = t - offset;
		double v;
		char text[40];
		bool found = w != NULL && at >= w->oldest_ms
				 ? window_value(&buf, at, &v)
				 : row_value(&rows, at >= 0 ? at / 1000 : (at - 999) / 1000, &v);

		if (found)
			json_array_append_new(values,
					      json_pack("[f, s]", (double)t / 1000.0,
							api_format_value(v, text, sizeof(text))));
	}
	free(rows.v);
	free(buf.v);
	if (json_array_size(values) == 0) {
		json_decref(values);
		return NULL;
	}
	metric = api_json_labels(s->labels, s->label_count);
	json_object_set_new(metric, "__name__", json_string(s->family->name));
	return json_pack("{s:o, s:o}", "metric", metric, "values", values);
}

/* Collects the registry's series that pass the selector; -1 after replying 422. */
static int select_series(struct api_request *r, const struct expr_selector *sel,
			 const struct series **out, size_t *count)
{
	const struct series_registry *reg = r->api->src.reg;
	size_t matched = 0;

	for (size_t f = 0; f < series_registry_family_count(reg); f++) {
		const struct series_family *fam = series_registry_family(reg, f);

		for (size_t i = 0; i < fam->count; i++) {
			const struct series *s = fam->series[i];

			if (!series_matches(sel, s))
				continue;
			if (s->file != NULL && fam->type != METRIC_GAUGE) {
				api_reply_error(
				    r->req, 422, "archive supports gauges only",
				    "%s is a %s, and its archive stores a per-second rate, not its "
				    "value; query gauges over the archive, or start the range "
				    "within the in-memory window",
				    fam->name, series_type_name(fam->type));
				return -1;
			}
			if (matched < API_ARCHIVE_MAX_SERIES)
				out[matched] = s;
			matched++;
		}
	}
	if (matched > API_ARCHIVE_MAX_SERIES) {
		api_reply_error(r->req, 422, "too many series for the archive",
				"the selector matches %zu series; a range that starts before the "
				"in-memory window reads at most %d series from the archive, so "
				"add label matchers",
				matched, API_ARCHIVE_MAX_SERIES);
		return -1;
	}
	*count = matched;
	return 0;
}

int api_archive_query_range(struct api_request *r, const struct expr_selector *sel,
			    int64_t start_ms, int64_t end_ms, int64_t step_ms)
{
	struct expr_source src;
	struct archive_windows windows = {.src = &src};
	const struct series *selected[API_ARCHIVE_MAX_SERIES];
	size_t count = 0;
	int64_t reach = INT64_MAX;
	json_t *result;
	bool failed = false;

	window_source(r->api->src.ws, r->api->src.reg, &src);
	src.select(src.ctx, sel->matchers, sel->count, collect_window, &windows);
	for (size_t i = 0; i < windows.count; i++)
		if (windows.v[i].oldest_ms < reach)
			reach = windows.v[i].oldest_ms;
	if (windows.count > 0 && start_ms - sel->offset_ms >= reach) {
		free(windows.v);
		return 0;
	}
	if (select_series(r, sel, selected, &count) < 0) {
		free(windows.v);
		return 1;
	}

	struct archive_range q = {sel,      &src,   (*r->api->src.cfg)->rrdcached,
				  start_ms, end_ms, step_ms};

	result = json_array();
	for (size_t i = 0; i < count && !failed; i++) {
		json_t *entry =
		    series_values(r, &q, selected[i], find_window(&windows, selected[i]), &failed);

		if (entry != NULL)
			json_array_append_new(result, entry);
	}
	free(windows.v);
	if (failed) {
		json_decref(result);
		return 1;
	}
	api_reply_data(r->req, json_pack("{s:s, s:o}", "resultType", "matrix", "result", result));
	return 1;
}
