/*
 * GET /graph: parses and checks the query on the loop thread, selects the series and their
 * archive files from the registry, and replies from a short cache when it can. Everything
 * else happens on one worker thread, which builds the rrd_graph_v arguments and renders.
 *
 * Threads. librrd's graph code is not reentrant in every version: 1.4 parses options with
 * getopt's globals, and 1.7 keeps a process-wide font map and calls localtime(). So renders
 * run on one worker thread, one at a time, and never on the loop thread. A job belongs to
 * the loop thread until it is queued, to the worker until it is on the done list, then to
 * the loop again; only `req` is touched by the loop while the worker holds the job.
 *
 * Requests outlive the handler. When a client goes away, libevent detaches its request
 * from the connection (we then free it) or frees it with the connection (when the HTTP
 * server itself is freed); a close callback on the connection tells the two apart and
 * clears the job's pointer, so a finished render is never sent to a freed request.
 */
#include "web/graph.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <rrd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "collector/clock.h"
#include "collector/evaluator.h"
#include "collector/expr.h"
/* For the tree of a parsed selector: expr.h exports no accessor for a selector's matchers,
 * and reusing the rule parser keeps the selector syntax identical to the rules'. */
#include "collector/expr_impl.h"
#include "collector/log.h"
#include "collector/rrdcached.h"
#include "collector/rules.h"
#include "collector/series.h"
#include "collector/store.h"
#include "collector/utf8.h"
#include "collector/xalloc.h"
#include "web/http.h"

/* Series one graph draws at most: more lines make an unreadable legend. */
#define GRAPH_MAX_SERIES 20
/* Bounds of width and height, in pixels of the whole image. */
#define GRAPH_SIZE_MIN       100
#define GRAPH_SIZE_MAX       4000
#define GRAPH_WIDTH_DEFAULT  800
#define GRAPH_HEIGHT_DEFAULT 300
#define GRAPH_TITLE_MAX      200
#define GRAPH_LEGEND_MAX     120
/* Renders waiting for the worker; one more may be in progress. */
#define GRAPH_QUEUE_MAX 16
/* How long a rendered image is served again for the same normalised query. */
#define GRAPH_CACHE_SECONDS 10
#define GRAPH_CACHE_ENTRIES 64
#define GRAPH_CACHE_BYTES   (32 * 1024 * 1024)
/* Relative times and spans are capped at 50 years; absolute ones at the year 9999. */
#define GRAPH_SPAN_MAX_S (50LL * 366 * 86400)
#define GRAPH_TIME_MAX_S 253402300799LL
/* Threshold lines drawn at most, across every series of one graph. */
#define GRAPH_HRULE_MAX 8

#define GRAPH_TEXT_TYPE "text/plain; charset=utf-8"
#define GRAPH_PARAMS    "series, probe, start, end, width, height, format and title"

static const char *const graph_palette[] = {"1f77b4", "ff7f0e", "2ca02c", "9467bd", "8c564b",
					    "e377c2", "7f7f7f", "bcbd22", "17becf", "d62728"};

enum graph_format {
	GRAPH_FORMAT_PNG,
	GRAPH_FORMAT_SVG,
};

/* A time as given: seconds before now (relative) or Unix seconds. */
struct graph_time {
	bool relative;
	int64_t seconds;
};

struct graph_query {
	const char *selector; /* series=, NULL when probe= is given */
	const char *probe;
	const char *title; /* NULL: a title made from the selector or probe */
	struct graph_time start;
	struct graph_time end;
	int width;
	int height;
	enum graph_format format;
};

enum graph_line_kind {
	GRAPH_LINE_VALUE, /* a line of the series' average */
	GRAPH_LINE_DOWN,  /* shading where tocsin_probe_success's minimum is 0 */
};

struct graph_line {
	enum graph_line_kind kind;
	char *path; /* archive file, as librrd (or rrdcached) opens it */
	char *legend;
};

struct graph_hrule {
	double value;
	bool critical;
	char *legend;
};

struct graph_job {
	struct graph_job *next;
	struct evhttp_request *req; /* NULL once the client or the server went away */
	char *key;
	enum graph_format format;
	int64_t start_s;
	int64_t end_s;
	int width;
	int height;
	char *title;
	char *vertical_label; /* NULL when the series have no common unit */
	struct graph_line *lines;
	size_t line_count;
	struct graph_hrule hrules[GRAPH_HRULE_MAX];
	size_t hrule_count;

	/* Set by the worker. */
	int status; /* HTTP status of the reply */
	unsigned char *image;
	size_t image_size;
	char *error; /* the reply's text when status is not 200 */
};

struct graph_cache_entry {
	char *key;
	enum graph_format format;
	unsigned char *image;
	size_t image_size;
	double expires; /* monotonic seconds */
};

struct graph {
	struct series_registry *reg;
	const struct evaluator *ev;
	char *rrdcached; /* --daemon address, NULL for direct reads */
	bool daemon_tcp; /* rrdcached over TCP: paths relative to its base directory */
	int notify_fd;   /* eventfd the worker increments when a job is done */
	struct event *notify;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock; /* guards the queue, the done list and stopping */
	pthread_cond_t wake;
	struct graph_job *queue_head;
	struct graph_job *queue_tail;
	size_t queued;
	struct graph_job *done;
	bool stopping;

	/* Loop thread only. */
	struct graph_cache_entry cache[GRAPH_CACHE_ENTRIES];
	size_t cache_count;
	size_t cache_bytes;
};

static const char *format_content_type(enum graph_format format)
{
	return format == GRAPH_FORMAT_SVG ? "image/svg+xml" : "image/png";
}

/* ---- replies ---- */

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);

	evhttp_add_header(headers, "Content-Type", GRAPH_TEXT_TYPE);
	evhttp_add_header(headers, "Cache-Control", "no-store");
	evbuffer_add_printf(evhttp_request_get_output_buffer(req), "%s\n", text);
	http_send_reply(req, code, reason);
}

static void reply_bad_request(struct evhttp_request *req, const char *text)
{
	reply_text(req, HTTP_BADREQUEST, "Bad Request", text);
}

static void reply_image(struct evhttp_request *req, enum graph_format format,
			const unsigned char *image, size_t size, int max_age, bool hit)
{
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	char cache_control[32];

	snprintf(cache_control, sizeof cache_control, "max-age=%d", max_age);
	evhttp_add_header(headers, "Content-Type", format_content_type(format));
	evhttp_add_header(headers, "Cache-Control", cache_control);
	evhttp_add_header(headers, "X-Tocsin-Cache", hit ? "hit" : "miss");
	evbuffer_add(evhttp_request_get_output_buffer(req), image, size);
	http_send_reply(req, HTTP_OK, "OK");
}

/* ---- query parsing ---- */

/* Strict whole-number parsing: digits only, no sign, no spaces, at most max. */
static bool parse_uint(const char *text, size_t length, int64_t max, int64_t *out)
{
	int64_t value = 0;

	if (length == 0)
		return false;
	for (size_t i = 0; i < length; i++) {
		if (text[i] < '0' || text[i] > '9')
			return false;
		if (value > (max - (text[i] - '0')) / 10)
			return false;
		value = value * 10 + (text[i] - '0');
	}
	*out = value;
	return true;
}

/* Seconds per unit of a relative time: s, m or min (minutes), h, d, w, y (365 days). */
static int64_t unit_seconds(const char *unit, size_t length)
{
	static const struct {
		const char *name;
		int64_t seconds;
	} units[] = {{"s", 1},     {"m", 60},        {"min", 60},       {"h", 3600},
		     {"d", 86400}, {"w", 7 * 86400}, {"y", 365 * 86400}};

	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strlen(units[i].name) == length && memcmp(units[i].name, unit, length) == 0)
			return units[i].seconds;
	}
	return 0;
}

/* Parses "-1d12h": one or more NUMBER UNIT pairs after the minus sign. */
static bool parse_relative(const char *text, int64_t *out)
{
	int64_t total = 0;
	const char *p = text;

	if (*p == '\0')
		return false;
	while (*p != '\0') {
		size_t digits = strspn(p, "0123456789");
		size_t letters = strspn(p + digits, "abcdefghijklmnopqrstuvwxyz");
		int64_t count;
		int64_t unit = unit_seconds(p + digits, letters);

		if (unit == 0 || !parse_uint(p, digits, GRAPH_SPAN_MAX_S, &count))
			return false;
		if (count > (GRAPH_SPAN_MAX_S - total) / unit)
			return false;
		total += count * unit;
		p += digits + letters;
	}
	*out = total;
	return true;
}

/* Accepts now, now-DURATION, -DURATION and Unix seconds. */
static bool parse_time(const char *text, struct graph_time *out)
{
	if (strcmp(text, "now") == 0) {
		*out = (struct graph_time){.relative = true, .seconds = 0};
		return true;
	}
	if (strncmp(text, "now-", 4) == 0)
		text += 3;
	if (text[0] == '-') {
		out->relative = true;
		return parse_relative(text + 1, &out->seconds);
	}
	out->relative = false;
	return parse_uint(text, strlen(text), GRAPH_TIME_MAX_S, &out->seconds);
}

static int64_t resolve_time(const struct graph_time *t, int64_t now)
{
	return t->relative ? now - t->seconds : t->seconds;
}

/* Renders a time in the normalised form of the cache key: "-SECONDS" or "@SECONDS". */
static void format_time_key(char *buf, size_t size, const struct graph_time *t)
{
	snprintf(buf, size, "%c%" PRId64, t->relative ? '-' : '@', t->seconds);
}

static bool title_is_valid(const char *title)
{
	if (strlen(title) > GRAPH_TITLE_MAX || !utf8_valid(title))
		return false;
	for (const unsigned char *p = (const unsigned char *)title; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
	}
	return true;
}

/*
 * Checks one parameter and stores it in *q. Returns NULL, or the message of a 400 reply
 * (static or in `buf`).
 */
static const char *parse_param(struct graph_query *q, const char *key, const char *value, char *buf,
			       size_t size)
{
	int64_t number;

	if (strcmp(key, "series") == 0) {
		q->selector = value;
	} else if (strcmp(key, "probe") == 0) {
		if (value[0] == '\0' || strlen(value) > 256)
			return "invalid parameter probe: expected a probe name of 1 to 256 bytes, "
			       "as in the config's probes list";
		q->probe = value;
	} else if (strcmp(key, "start") == 0 || strcmp(key, "end") == 0) {
		if (!parse_time(value, strcmp(key, "start") == 0 ? &q->start : &q->end)) {
			snprintf(buf, size,
				 "invalid parameter %s=\"%.64s\": expected now, a relative time "
				 "such as -1h, -7d or -1d12h (units s, m or min, h, d, w, y), or "
				 "Unix seconds",
				 key, value);
			return buf;
		}
	} else if (strcmp(key, "width") == 0 || strcmp(key, "height") == 0) {
		if (!parse_uint(value, strlen(value), GRAPH_SIZE_MAX, &number) ||
		    number < GRAPH_SIZE_MIN) {
			snprintf(buf, size,
				 "invalid parameter %s=\"%.64s\": expected a whole number of "
				 "pixels from %d to %d",
				 key, value, GRAPH_SIZE_MIN, GRAPH_SIZE_MAX);
			return buf;
		}
		*(strcmp(key, "width") == 0 ? &q->width : &q->height) = (int)number;
	} else if (strcmp(key, "format") == 0) {
		if (strcmp(value, "png") == 0)
			q->format = GRAPH_FORMAT_PNG;
		else if (strcmp(value, "svg") == 0)
			q->format = GRAPH_FORMAT_SVG;
		else
			return "invalid parameter format: expected png or svg";
	} else if (strcmp(key, "title") == 0) {
		if (!title_is_valid(value))
			return "invalid parameter title: expected UTF-8 text of at most 200 bytes "
			       "without control characters";
		q->title = value;
	} else {
		snprintf(buf, size, "unknown parameter \"%.64s\"; /graph accepts %s", key,
			 GRAPH_PARAMS);
		return buf;
	}
	return NULL;
}

/* Parses the query string into *q. Returns NULL or the message of a 400 reply. */
static const char *parse_query(struct evhttp_request *req, struct evkeyvalq *params,
			       struct graph_query *q, char *buf, size_t size)
{
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyval *param;

	*q = (struct graph_query){
	    .start = {.relative = true, .seconds = 86400},
	    .end = {.relative = true, .seconds = 0},
	    .width = GRAPH_WIDTH_DEFAULT,
	    .height = GRAPH_HEIGHT_DEFAULT,
	};
	if (query == NULL || evhttp_parse_query_str(query, params) != 0)
		return "missing or malformed query: give series=SELECTOR or probe=NAME, for "
		       "example /graph?series=tocsin_probe_duration_seconds&start=-1h";
	TAILQ_FOREACH(param, params, next)
	{
		const char *message;

		if (evhttp_find_header(params, param->key) != param->value) {
			snprintf(buf, size, "parameter %.64s is given twice; give it once",
				 param->key);
			return buf;
		}
		message = parse_param(q, param->key, param->value, buf, size);
		if (message != NULL)
			return message;
	}
	if ((q->selector == NULL) == (q->probe == NULL))
		return "missing parameter series or probe: give exactly one of them, for example "
		       "series=tocsin_probe_duration_seconds{probe=\"web\"} or probe=web";
	return NULL;
}

/*
 * Parses series= as a selector of the rule language. Returns the parsed expression, or
 * NULL with the message of a 400 reply in buf.
 */
static struct expr *parse_selector(const char *text, char *buf, size_t size)
{
	char *error = NULL;
	struct expr *e = expr_parse(text, NULL, &error);

	if (e == NULL) {
		snprintf(buf, size, "invalid parameter series: %s", error);
		free(error);
		return NULL;
	}
	if (e->root->kind != EXPR_NODE_SELECTOR || e->root->range_ms != 0 ||
	    e->root->offset_ms != 0) {
		snprintf(buf, size,
			 "invalid parameter series: expected a metric name with optional label "
			 "matchers, such as tocsin_probe_duration_seconds{probe=\"web\"}; "
			 "functions, operators, ranges and offsets are not accepted");
		expr_free(e);
		return NULL;
	}
	return e;
}

static int compare_matchers(const void *a, const void *b)
{
	const struct expr_matcher *x = *(const struct expr_matcher *const *)a;
	const struct expr_matcher *y = *(const struct expr_matcher *const *)b;
	int c = strcmp(x->name, y->name);

	if (c == 0)
		c = (int)x->op - (int)y->op;
	return c != 0 ? c : strcmp(x->value, y->value);
}

/*
 * Renders the matchers in a normalised order for the cache key, so that node_load1 and
 * {__name__="node_load1"} share an entry. Values are length-prefixed, so no value can
 * imitate a separator. The caller frees the string.
 */
static char *selector_key(const struct expr_node *n)
{
	const struct expr_matcher **sorted = xcalloc(n->matcher_count + 1, sizeof(*sorted));
	struct evbuffer *out = evbuffer_new();
	char *key;

	for (size_t i = 0; i < n->matcher_count; i++)
		sorted[i] = &n->matchers[i];
	qsort(sorted, n->matcher_count, sizeof(*sorted), compare_matchers);
	evbuffer_add_printf(out, "series=");
	for (size_t i = 0; i < n->matcher_count; i++)
		evbuffer_add_printf(out, "%s/%d/%zu:%s;", sorted[i]->name, (int)sorted[i]->op,
				    strlen(sorted[i]->value), sorted[i]->value);
	evbuffer_add(out, "", 1);
	key = xstrdup((const char *)evbuffer_pullup(out, -1));
	evbuffer_free(out);
	free(sorted);
	return key;
}

/* ---- series selection ---- */

static bool matchers_match(const struct expr_matcher *matchers, size_t count,
			   const struct series *s)
{
	for (size_t i = 0; i < count; i++) {
		const char *value = strcmp(matchers[i].name, "__name__") == 0
					? s->family->name
					: series_label(s, matchers[i].name);

		if (!expr_matcher_matches(&matchers[i], value))
			return false;
	}
	return true;
}

struct graph_selection {
	struct series *v[GRAPH_MAX_SERIES];
	size_t count;
	size_t matched; /* archived series that matched, also past the limit */
};

/* Collects the archived series that pass every matcher. */
static void select_series(const struct series_registry *reg, const struct expr_matcher *matchers,
			  size_t count, struct graph_selection *sel)
{
	size_t family_count = series_registry_family_count(reg);

	for (size_t f = 0; f < family_count; f++) {
		const struct series_family *fam = series_registry_family(reg, f);

		for (size_t i = 0; i < fam->count; i++) {
			struct series *s = fam->series[i];

			if (s->file == NULL || !matchers_match(matchers, count, s))
				continue;
			if (sel->count < GRAPH_MAX_SERIES)
				sel->v[sel->count++] = s;
			sel->matched++;
		}
	}
}

/* The value of label `name` in s, "" when s has none, as matchers see a missing label. */
static const char *label_or_empty(const struct series *s, const char *name)
{
	const char *value = series_label(s, name);

	return value != NULL ? value : "";
}

/* True when some series of the selection has another value of label `name` than v[0]. */
static bool label_differs(const struct graph_selection *sel, const char *name)
{
	for (size_t i = 1; i < sel->count; i++) {
		if (strcmp(label_or_empty(sel->v[i], name), label_or_empty(sel->v[0], name)) != 0)
			return true;
	}
	return false;
}

static bool label_seen_before(const struct graph_selection *sel, size_t index, size_t label)
{
	const char *name = sel->v[index]->labels[label].name;

	for (size_t i = 0; i < index; i++) {
		if (series_label(sel->v[i], name) != NULL)
			return true;
	}
	for (size_t j = 0; j < label; j++) {
		if (strcmp(sel->v[index]->labels[j].name, name) == 0)
			return true;
	}
	return false;
}

/*
 * Builds the legend of series `index`: the whole label set for a single series,
 * otherwise only the labels whose values differ between the series (and the metric name
 * when the names differ), so that each legend line distinguishes its series.
 */
static char *make_legend(const struct graph_selection *sel, size_t index)
{
	const struct series *s = sel->v[index];
	struct evbuffer *out = evbuffer_new();
	bool names_differ = false;
	const char *separator = "";
	char *text;

	for (size_t i = 1; i < sel->count; i++)
		names_differ |= strcmp(sel->v[i]->family->name, sel->v[0]->family->name) != 0;
	if (sel->count == 1 || names_differ) {
		evbuffer_add_printf(out, "%s", s->family->name);
		separator = " ";
	}
	/* Labels of every series count, so a label only some series carry still shows. */
	for (size_t i = 0; i < sel->count; i++) {
		for (size_t j = 0; j < sel->v[i]->label_count; j++) {
			const char *name = sel->v[i]->labels[j].name;

			if (label_seen_before(sel, i, j))
				continue;
			if (sel->count > 1 && !label_differs(sel, name))
				continue;
			evbuffer_add_printf(out, "%s%s=%s", separator, name,
					    label_or_empty(s, name));
			separator = ", ";
		}
	}
	evbuffer_add(out, "", 1);
	text = xstrndup((const char *)evbuffer_pullup(out, -1), GRAPH_LEGEND_MAX);
	evbuffer_free(out);
	return text;
}

/* ---- units and thresholds ---- */

static bool has_suffix(const char *text, const char *suffix)
{
	size_t length = strlen(text);
	size_t suffix_length = strlen(suffix);

	return length >= suffix_length && strcmp(text + length - suffix_length, suffix) == 0;
}

/*
 * Derives the vertical label from the metric name's unit suffix, as in Prometheus naming.
 * Counters are archived as rates (DDERIVE), so their unit is per second. NULL when the
 * name carries no known unit.
 */
static char *unit_label(const struct series_family *fam)
{
	static const struct {
		const char *suffix;
		const char *unit;
	} units[] = {{"_seconds", "seconds"},
		     {"_bytes", "bytes"},
		     {"_ratio", "ratio"},
		     {"_percent", "percent"},
		     {"_celsius", "degrees Celsius"},
		     {"_bits", "bits"}};
	bool counter = fam->type == METRIC_COUNTER;
	char *name = xstrdup(fam->name);
	const char *unit = NULL;

	if (counter && has_suffix(name, "_total"))
		name[strlen(name) - strlen("_total")] = '\0';
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (has_suffix(name, units[i].suffix)) {
			unit = units[i].unit;
			break;
		}
	}
	free(name);
	if (unit == NULL)
		return counter ? xstrdup("per second") : NULL;
	return counter ? xasprintf("%s per second", unit) : xstrdup(unit);
}

/* The vertical label when every selected series has the same unit, else NULL. */
static char *common_unit_label(struct series *const *v, size_t count)
{
	char *label = count > 0 ? unit_label(v[0]->family) : NULL;

	for (size_t i = 1; i < count && label != NULL; i++) {
		char *other = unit_label(v[i]->family);

		if (other == NULL || strcmp(other, label) != 0) {
			free(label);
			label = NULL;
		}
		free(other);
	}
	return label;
}

static void add_hrule(struct graph_job *job, const struct rule *r, bool critical, double value)
{
	struct graph_hrule *h;

	for (size_t i = 0; i < job->hrule_count; i++) {
		if (job->hrules[i].value == value && job->hrules[i].critical == critical)
			return;
	}
	if (job->hrule_count == GRAPH_HRULE_MAX)
		return;
	h = &job->hrules[job->hrule_count++];
	h->value = value;
	h->critical = critical;
	h->legend = xasprintf("%s %s %g (%s)", critical ? "critical" : "warning",
			      r->params.direction_above ? "above" : "below", value, r->name);
}

/*
 * Adds a line for each warn and crit value of every threshold rule whose expression is a
 * plain selector that matches one of the series. A rule that computes its value (a sum,
 * a rate, a product) is left out: its thresholds need not be in the series' unit.
 */
static void add_thresholds(struct graph_job *job, const struct evaluator *ev,
			   struct series *const *v, size_t count)
{
	const struct rule_set *set = ev != NULL ? evaluator_rules(ev) : NULL;

	for (size_t gi = 0; set != NULL && gi < set->group_count; gi++) {
		const struct rule_group *grp = &set->groups[gi];

		for (size_t ri = 0; ri < grp->rule_count; ri++) {
			const struct rule *r = &grp->rules[ri];
			const struct expr_node *n = r->expr != NULL ? r->expr->root : NULL;
			bool referenced = false;

			if (r->kind != RULE_THRESHOLD || n == NULL ||
			    n->kind != EXPR_NODE_SELECTOR || n->range_ms != 0 || n->offset_ms != 0)
				continue;
			for (size_t i = 0; i < count && !referenced; i++)
				referenced = matchers_match(n->matchers, n->matcher_count, v[i]);
			if (!referenced)
				continue;
			if (r->params.has_warn)
				add_hrule(job, r, false, r->params.warn);
			if (r->params.has_crit)
				add_hrule(job, r, true, r->params.crit);
		}
	}
}

/* ---- jobs ---- */

static void job_free(struct graph_job *job)
{
	if (job == NULL)
		return;
	for (size_t i = 0; i < job->line_count; i++) {
		free(job->lines[i].path);
		free(job->lines[i].legend);
	}
	for (size_t i = 0; i < job->hrule_count; i++)
		free(job->hrules[i].legend);
	free(job->lines);
	free(job->key);
	free(job->title);
	free(job->vertical_label);
	free(job->image);
	free(job->error);
	free(job);
}

/*
 * The path of an archive as the renderer opens it. rrdcached over TCP resolves paths
 * against its own base directory, which the store requires to be data_dir, so the path
 * becomes METRIC_DIR/FILE.rrd, as the store sends it.
 */
static char *render_path(const struct graph *g, const struct series *s)
{
	const char *path = store_file_path(s->file);
	const char *last = strrchr(path, '/');

	if (g->daemon_tcp && last != NULL) {
		const char *p = last;

		while (p > path && p[-1] != '/')
			p--;
		return xstrdup(p);
	}
	return xstrdup(path);
}

static void job_add_line(struct graph_job *job, enum graph_line_kind kind, char *path, char *legend)
{
	job->lines = xrealloc(job->lines, (job->line_count + 1) * sizeof(*job->lines));
	job->lines[job->line_count++] = (struct graph_line){kind, path, legend};
}

/* ---- cache ---- */

static void cache_remove(struct graph *g, size_t index)
{
	struct graph_cache_entry *e = &g->cache[index];

	g->cache_bytes -= e->image_size;
	free(e->key);
	free(e->image);
	g->cache[index] = g->cache[--g->cache_count];
}

static void cache_expire(struct graph *g, double now)
{
	for (size_t i = 0; i < g->cache_count;) {
		if (g->cache[i].expires <= now)
			cache_remove(g, i);
		else
			i++;
	}
}

static const struct graph_cache_entry *cache_find(struct graph *g, const char *key)
{
	cache_expire(g, clock_monotonic_seconds());
	for (size_t i = 0; i < g->cache_count; i++) {
		if (strcmp(g->cache[i].key, key) == 0)
			return &g->cache[i];
	}
	return NULL;
}

/* Stores a copy of the job's image, evicting the entries that expire first. */
static void cache_store(struct graph *g, const struct graph_job *job)
{
	double now = clock_monotonic_seconds();
	struct graph_cache_entry *e;

	if (job->image_size > GRAPH_CACHE_BYTES / 4)
		return;
	cache_expire(g, now);
	for (size_t i = 0; i < g->cache_count; i++) {
		if (strcmp(g->cache[i].key, job->key) == 0) {
			cache_remove(g, i);
			break;
		}
	}
	while (g->cache_count == GRAPH_CACHE_ENTRIES ||
	       (g->cache_count > 0 && g->cache_bytes + job->image_size > GRAPH_CACHE_BYTES)) {
		size_t oldest = 0;

		for (size_t i = 1; i < g->cache_count; i++) {
			if (g->cache[i].expires < g->cache[oldest].expires)
				oldest = i;
		}
		cache_remove(g, oldest);
	}
	e = &g->cache[g->cache_count++];
	e->key = xstrdup(job->key);
	e->format = job->format;
	e->image = xmalloc(job->image_size);
	memcpy(e->image, job->image, job->image_size);
	e->image_size = job->image_size;
	e->expires = now + GRAPH_CACHE_SECONDS;
	g->cache_bytes += job->image_size;
}

/* ---- the worker ---- */

struct graph_argv {
	char **v;
	size_t count;
	size_t capacity;
};

static void argv_add(struct graph_argv *a, char *arg)
{
	a->v = xreallocarray_grow(a->v, &a->capacity, a->count + 2, sizeof(*a->v));
	a->v[a->count++] = arg;
	a->v[a->count] = NULL;
}

static void argv_free(struct graph_argv *a)
{
	for (size_t i = 0; i < a->count; i++)
		free(a->v[i]);
	free(a->v);
}

/*
 * Escapes text for a field of a graph element: librrd splits elements at ':' unless it is
 * preceded by a backslash. A backslash itself would start an escape or a legend alignment
 * code (\l, \n, ...), so it becomes '/'.
 */
static char *escape_field(const char *text)
{
	char *out = xmalloc(2 * strlen(text) + 1);
	char *p = out;

	for (; *text != '\0'; text++) {
		if (*text == ':')
			*p++ = '\\';
		*p++ = *text == '\\' ? '/' : *text;
	}
	*p = '\0';
	return out;
}

static void add_options(const struct graph *g, const struct graph_job *job, struct graph_argv *a)
{
	argv_add(a, xstrdup("graph"));
	argv_add(a, xstrdup("-"));
	argv_add(a, xstrdup("--imgformat"));
	argv_add(a, xstrdup(job->format == GRAPH_FORMAT_SVG ? "SVG" : "PNG"));
	argv_add(a, xasprintf("--start=%" PRId64, job->start_s));
	argv_add(a, xasprintf("--end=%" PRId64, job->end_s));
	argv_add(a, xasprintf("--width=%d", job->width));
	argv_add(a, xasprintf("--height=%d", job->height));
	/* The requested size is the whole image's, legend and title included. */
	argv_add(a, xstrdup("--full-size-mode"));
	argv_add(a, xstrdup("--title"));
	argv_add(a, xstrdup(job->title));
	if (job->vertical_label != NULL) {
		argv_add(a, xstrdup("--vertical-label"));
		argv_add(a, xstrdup(job->vertical_label));
	}
	/* Through rrdcached, the daemon flushes a file's pending updates before it is read. */
	if (g->rrdcached != NULL) {
		argv_add(a, xstrdup("--daemon"));
		argv_add(a, xstrdup(g->rrdcached));
	}
}

/* Builds the arguments of rrd_graph_v; lines whose file is missing are left out. */
static size_t build_argv(const struct graph *g, const struct graph_job *job, struct graph_argv *a)
{
	size_t values = 0;
	bool down_legend = false;
	struct stat sb;

	add_options(g, job, a);
	for (size_t i = 0; i < job->line_count; i++) {
		const struct graph_line *l = &job->lines[i];
		char *path = escape_field(l->path);
		char *legend = escape_field(l->legend);

		/* rrdcached over TCP may run on another host, so there is nothing to stat. */
		if (!g->daemon_tcp && stat(l->path, &sb) != 0) {
			free(path);
			free(legend);
			continue;
		}
		if (l->kind == GRAPH_LINE_DOWN) {
			argv_add(a, xasprintf("DEF:s%zu=%s:value:MIN", i, path));
			argv_add(a, xasprintf("CDEF:down%zu=s%zu,0.5,LT,INF,UNKN,IF", i, i));
			argv_add(a, xasprintf("AREA:down%zu#f4c7c3%s", i,
					      down_legend ? "" : ":probe down"));
			down_legend = true;
		} else {
			argv_add(a, xasprintf("DEF:v%zu=%s:value:AVERAGE", i, path));
			argv_add(a, xasprintf("LINE1:v%zu#%s:%s", i,
					      graph_palette[values % (sizeof graph_palette /
								      sizeof graph_palette[0])],
					      legend));
			values++;
		}
		free(path);
		free(legend);
	}
	for (size_t i = 0; i < job->hrule_count; i++) {
		char *legend = escape_field(job->hrules[i].legend);

		argv_add(a, xasprintf("HRULE:%.17g#%s:%s:dashes", job->hrules[i].value,
				      job->hrules[i].critical ? "cc0000" : "e69f00", legend));
		free(legend);
	}
	return values;
}

/* Renders one job; sets its status and image or error. Worker thread only. */
static void job_render(const struct graph *g, struct graph_job *job)
{
	struct graph_argv a = {0};
	rrd_info_t *info;

	if (build_argv(g, job, &a) == 0) {
		job->status = HTTP_NOTFOUND;
		job->error = xstrdup("no archive file exists yet for the matched series; files are "
				     "created when the first sample is written, so retry after one "
				     "probe interval");
		argv_free(&a);
		return;
	}
	rrd_clear_error();
	/*
	 * NOTE: librrd 1.7.2's rrd_graph_v leaks about 130 bytes per call (a 32-byte block and
	 * a few info keys), measured with LeakSanitizer over 12 renders. The sanitizer build
	 * ignores what it allocates, so that the leak check still covers tocsin's own code.
	 */
#ifdef __SANITIZE_ADDRESS__
	__lsan_disable();
#endif
	info = rrd_graph_v((int)a.count, a.v);
#ifdef __SANITIZE_ADDRESS__
	__lsan_enable();
#endif
	for (const rrd_info_t *i = info; i != NULL; i = i->next) {
		if (i->type == RD_I_BLO && strcmp(i->key, "image") == 0 &&
		    i->value.u_blo.size > 0) {
			job->image_size = i->value.u_blo.size;
			job->image = xmalloc(job->image_size);
			memcpy(job->image, i->value.u_blo.ptr, job->image_size);
		}
	}
	if (job->image != NULL) {
		job->status = HTTP_OK;
	} else {
		const char *why = rrd_test_error() ? rrd_get_error() : "librrd returned no image";

		job->status = HTTP_INTERNAL;
		job->error = xasprintf("rendering the graph failed: %s", why);
	}
	rrd_info_free(info);
	rrd_clear_error();
	argv_free(&a);
}

static void *worker_main(void *arg)
{
	struct graph *g = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&g->lock);
	for (;;) {
		struct graph_job *job;

		while (!g->stopping && g->queue_head == NULL)
			pthread_cond_wait(&g->wake, &g->lock);
		if (g->stopping)
			break;
		job = g->queue_head;
		g->queue_head = job->next;
		if (g->queue_head == NULL)
			g->queue_tail = NULL;
		g->queued--;
		pthread_mutex_unlock(&g->lock);

		job_render(g, job);

		pthread_mutex_lock(&g->lock);
		job->next = g->done;
		g->done = job;
		if (write(g->notify_fd, &one, sizeof one) < 0 && errno != EAGAIN)
			log_warn_errno("graph", NULL, "cannot wake the loop thread");
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

/* ---- delivery on the loop thread ---- */

/*
 * Clears the job's request when the client's connection closes. When the client went
 * away, libevent has already detached the request, so we free it. Otherwise libevent
 * frees it with the connection right after this callback.
 */
static void on_connection_close(struct evhttp_connection *evcon, void *arg)
{
	struct graph_job *job = arg;

	(void)evcon;
	if (job->req != NULL && evhttp_request_get_connection(job->req) == NULL)
		evhttp_request_free(job->req);
	job->req = NULL;
}

/* Takes the request out of the job without replying (shutdown). */
static void job_drop_request(struct graph_job *job)
{
	struct evhttp_connection *evcon;

	if (job->req == NULL)
		return;
	evcon = evhttp_request_get_connection(job->req);
	if (evcon != NULL)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
	else
		evhttp_request_free(job->req);
	job->req = NULL;
}

static void job_deliver(struct graph *g, struct graph_job *job)
{
	struct evhttp_request *req = job->req;
	struct evhttp_connection *evcon;

	if (job->status == HTTP_OK)
		cache_store(g, job);
	if (req == NULL)
		return;
	job->req = NULL;
	evcon = evhttp_request_get_connection(req);
	if (evcon != NULL)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
	if (job->status == HTTP_OK)
		reply_image(req, job->format, job->image, job->image_size, GRAPH_CACHE_SECONDS,
			    false);
	else if (job->status == HTTP_NOTFOUND)
		reply_text(req, HTTP_NOTFOUND, "Not Found", job->error);
	else
		reply_text(req, HTTP_INTERNAL, "Internal Server Error", job->error);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct graph *g = arg;
	struct graph_job *done;
	uint64_t count;

	(void)what;
	if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN)
		log_warn_errno("graph", NULL, "cannot read the render worker's eventfd");
	pthread_mutex_lock(&g->lock);
	done = g->done;
	g->done = NULL;
	pthread_mutex_unlock(&g->lock);
	while (done != NULL) {
		struct graph_job *next = done->next;

		if (done->status != HTTP_OK)
			log_warn("graph", NULL, "%s: %s", done->key, done->error);
		job_deliver(g, done);
		job_free(done);
		done = next;
	}
}

/* Queues the job. Returns false, leaving it to the caller, when the queue is full. */
static bool job_submit(struct graph *g, struct graph_job *job)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(job->req);

	pthread_mutex_lock(&g->lock);
	if (g->queued >= GRAPH_QUEUE_MAX) {
		pthread_mutex_unlock(&g->lock);
		return false;
	}
	if (g->queue_tail != NULL)
		g->queue_tail->next = job;
	else
		g->queue_head = job;
	g->queue_tail = job;
	g->queued++;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	if (evcon != NULL)
		evhttp_connection_set_closecb(evcon, on_connection_close, job);
	return true;
}

/* ---- the handler ---- */

/* Sends the cached image when the key is cached. Returns whether it did. */
static bool reply_from_cache(struct graph *g, struct evhttp_request *req, const char *key)
{
	const struct graph_cache_entry *hit = cache_find(g, key);
	int max_age;

	if (hit == NULL)
		return false;
	max_age = (int)ceil(hit->expires - clock_monotonic_seconds());
	reply_image(req, hit->format, hit->image, hit->image_size, max_age > 0 ? max_age : 1, true);
	return true;
}

static char *make_key(const struct graph_query *q, const char *what)
{
	char start[32];
	char end[32];

	format_time_key(start, sizeof start, &q->start);
	format_time_key(end, sizeof end, &q->end);
	return xasprintf("%s %dx%d %s..%s title=%s %s",
			 q->format == GRAPH_FORMAT_SVG ? "svg" : "png", q->width, q->height, start,
			 end, q->title != NULL ? q->title : "", what);
}

/* Adds the lines of series= to the job. Returns 0, or the HTTP status of a reply sent. */
static int job_add_selector(struct graph *g, struct graph_job *job, struct evhttp_request *req,
			    const struct expr *e, const char *canonical)
{
	struct graph_selection sel = {0};
	char message[512];

	select_series(g->reg, e->root->matchers, e->root->matcher_count, &sel);
	if (sel.matched == 0) {
		snprintf(message, sizeof message,
			 "no archived series matches series=%.200s; check the metric name and "
			 "labels on /metrics",
			 canonical);
		reply_text(req, HTTP_NOTFOUND, "Not Found", message);
		return HTTP_NOTFOUND;
	}
	if (sel.matched > GRAPH_MAX_SERIES) {
		snprintf(message, sizeof message,
			 "invalid parameter series: %.200s matches %zu archived series, more than "
			 "the %d one graph draws; add label matchers to narrow it, such as "
			 "{probe=\"NAME\"}",
			 canonical, sel.matched, GRAPH_MAX_SERIES);
		reply_bad_request(req, message);
		return HTTP_BADREQUEST;
	}
	for (size_t i = 0; i < sel.count; i++)
		job_add_line(job, GRAPH_LINE_VALUE, render_path(g, sel.v[i]), make_legend(&sel, i));
	job->vertical_label = common_unit_label(sel.v, sel.count);
	add_thresholds(job, g->ev, sel.v, sel.count);
	job->title = xstrndup(canonical, GRAPH_TITLE_MAX);
	return 0;
}

/* Matchers of one metric of one probe: __name__="METRIC", probe="NAME". */
static void probe_selection(const struct graph *g, const char *metric, const char *probe,
			    struct graph_selection *sel)
{
	struct expr_matcher matchers[] = {
	    {EXPR_MATCH_EQUAL, "__name__", metric, NULL},
	    {EXPR_MATCH_EQUAL, "probe", probe, NULL},
	};

	select_series(g->reg, matchers, 2, sel);
}

/*
 * Adds a probe's standard set: its run durations as lines and shading where its runs
 * failed. Returns 0, or the HTTP status of a reply sent.
 */
static int job_add_probe(struct graph *g, struct graph_job *job, struct evhttp_request *req,
			 const char *probe)
{
	struct graph_selection duration = {0};
	struct graph_selection success = {0};
	char message[512];

	probe_selection(g, "tocsin_probe_duration_seconds", probe, &duration);
	probe_selection(g, "tocsin_probe_success", probe, &success);
	if (duration.count == 0) {
		snprintf(message, sizeof message,
			 "no archived series of probe \"%.200s\"; check the probe name in the "
			 "probe label of tocsin_probe_success on /metrics",
			 probe);
		reply_text(req, HTTP_NOTFOUND, "Not Found", message);
		return HTTP_NOTFOUND;
	}
	for (size_t i = 0; i < success.count; i++)
		job_add_line(job, GRAPH_LINE_DOWN, render_path(g, success.v[i]), xstrdup(""));
	for (size_t i = 0; i < duration.count; i++) {
		char *legend = make_legend(&duration, i);

		/* One target: the metric name says more than the probe label, which the title has. */
		if (duration.count == 1) {
			free(legend);
			legend = xstrdup("run duration");
		}
		job_add_line(job, GRAPH_LINE_VALUE, render_path(g, duration.v[i]), legend);
	}
	job->vertical_label = xstrdup("seconds");
	add_thresholds(job, g->ev, duration.v, duration.count);
	job->title = xasprintf("probe %.*s", GRAPH_TITLE_MAX - 6, probe);
	return 0;
}

/*
 * Fills the job from the query, or replies from the cache. Returns 0 when the job needs a
 * render, otherwise the HTTP status of the reply already sent.
 */
static int job_fill(struct graph *g, struct graph_job *job, struct evhttp_request *req,
		    const struct graph_query *q)
{
	char message[1024];
	int status;

	if (q->probe != NULL) {
		char *what = xasprintf("probe=%s", q->probe);

		job->key = make_key(q, what);
		free(what);
		if (reply_from_cache(g, req, job->key))
			return HTTP_OK;
		status = job_add_probe(g, job, req, q->probe);
	} else {
		struct expr *e = parse_selector(q->selector, message, sizeof message);
		char *canonical;
		char *what;

		if (e == NULL) {
			reply_bad_request(req, message);
			return HTTP_BADREQUEST;
		}
		canonical = expr_format(e);
		what = selector_key(e->root);
		job->key = make_key(q, what);
		free(what);
		if (reply_from_cache(g, req, job->key))
			status = HTTP_OK;
		else
			status = job_add_selector(g, job, req, e, canonical);
		free(canonical);
		expr_free(e);
	}
	if (status == 0 && q->title != NULL) {
		free(job->title);
		job->title = xstrdup(q->title);
	}
	return status;
}

/* Resolves start and end against now. Returns false after a 400 reply. */
static bool job_set_times(struct graph_job *job, struct evhttp_request *req,
			  const struct graph_query *q)
{
	int64_t now = (int64_t)time(NULL);
	char message[256];

	job->start_s = resolve_time(&q->start, now);
	job->end_s = resolve_time(&q->end, now);
	if (job->start_s >= job->end_s || job->start_s < 0) {
		snprintf(message, sizeof message,
			 "invalid parameters start and end: start (%" PRId64 ") must be before "
			 "end (%" PRId64 ") and not before 1970; for example start=-1d&end=now",
			 job->start_s, job->end_s);
		reply_bad_request(req, message);
		return false;
	}
	return true;
}

static bool accept_read_method(struct evhttp_request *req)
{
	enum evhttp_cmd_type method = evhttp_request_get_command(req);

	if (method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD)
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
	reply_text(req, 405, "Method Not Allowed", "method not allowed: use GET or HEAD");
	return false;
}

static void handle_graph(struct evhttp_request *req, void *arg)
{
	struct graph *g = arg;
	struct evkeyvalq params = {0};
	struct graph_query q;
	struct graph_job *job = NULL;
	char message[512];
	const char *problem;

	TAILQ_INIT(&params);
	if (!accept_read_method(req))
		goto out;
	problem = parse_query(req, &params, &q, message, sizeof message);
	if (problem != NULL) {
		reply_bad_request(req, problem);
		goto out;
	}
	job = xcalloc(1, sizeof(*job));
	job->format = q.format;
	job->width = q.width;
	job->height = q.height;
	if (!job_set_times(job, req, &q) || job_fill(g, job, req, &q) != 0)
		goto out;
	job->req = req;
	if (!job_submit(g, job)) {
		job->req = NULL;
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
		reply_text(req, HTTP_SERVUNAVAIL, "Service Unavailable",
			   "the graph render queue is full; retry in a second, or load fewer "
			   "graphs at once");
		goto out;
	}
	job = NULL;
out:
	job_free(job);
	evhttp_clear_headers(&params);
}

/* ---- lifecycle ---- */

static bool daemon_is_tcp(const char *address)
{
	struct rrdcached *c = rrdcached_new(address);
	bool tcp = c != NULL && !rrdcached_is_unix(c);

	rrdcached_free(c);
	return tcp;
}

struct graph *graph_new(struct event_base *base, const struct graph_options *opts)
{
	struct graph *g = xcalloc(1, sizeof(*g));
	int err;

	g->reg = opts->reg;
	g->ev = opts->ev;
	if (opts->rrdcached != NULL) {
		g->rrdcached = xstrdup(opts->rrdcached);
		g->daemon_tcp = daemon_is_tcp(opts->rrdcached);
	}
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->wake, NULL);
	g->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g->notify_fd < 0) {
		log_error_errno("graph", NULL, "cannot create the render worker's eventfd");
		goto fail;
	}
	g->notify = event_new(base, g->notify_fd, EV_READ | EV_PERSIST, on_notify, g);
	if (g->notify == NULL || event_add(g->notify, NULL) < 0) {
		log_error("graph", NULL, "cannot register the render worker's eventfd");
		goto fail;
	}
	err = pthread_create(&g->thread, NULL, worker_main, g);
	if (err != 0) {
		log_error("graph", NULL, "cannot start the render worker: %s", strerror(err));
		goto fail;
	}
	g->thread_started = true;
	return g;
fail:
	graph_free(g);
	return NULL;
}

void graph_route(struct graph *g, struct http_server *srv)
{
	if (g == NULL)
		return;
	http_server_route(srv, "/graph", handle_graph, g);
}

static void drop_jobs(struct graph_job *list)
{
	while (list != NULL) {
		struct graph_job *next = list->next;

		job_drop_request(list);
		job_free(list);
		list = next;
	}
}

void graph_free(struct graph *g)
{
	if (g == NULL)
		return;
	if (g->thread_started) {
		pthread_mutex_lock(&g->lock);
		g->stopping = true;
		pthread_cond_signal(&g->wake);
		pthread_mutex_unlock(&g->lock);
		pthread_join(g->thread, NULL);
	}
	drop_jobs(g->queue_head);
	drop_jobs(g->done);
	if (g->notify != NULL)
		event_free(g->notify);
	if (g->notify_fd >= 0)
		close(g->notify_fd);
	while (g->cache_count > 0)
		cache_remove(g, g->cache_count - 1);
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g->rrdcached);
	free(g);
}
