/*
 * SLO accounting (see slo.h). Good and total events are kept per minute in a ring that
 * covers the SLO's period and its longest alert window. Counter readings turn cumulative
 * counters into events, and window sums over the ring give the SLI ratio, burn rates,
 * error budget and alert conditions.
 */
#include "collector/slo.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "collector/hash.h"
#include "collector/log.h"
#include "collector/statedb.h"
#include "collector/xalloc.h"

#define MINUTE_MS 60000LL

/*
 * A series that has been absent for longer than this loses its last reading, so the
 * readings of vanished series do not pile up. When it comes back, its next value is a
 * new reading and is not counted, as for any new series.
 */
#define SLO_READING_EXPIRY_MS (60 * MINUTE_MS)

/* The reading of a scalar result, which has no labels to hash. */
#define SLO_SCALAR_KEY 0

/* The last value of one series of a counter expression. */
struct slo_reading {
	uint64_t key; /* hash of the element's label set */
	double value;
	int64_t seen_ms; /* when the value was read */
};

/* The readings of one counter expression, sorted by key. */
struct slo_counter {
	struct slo_reading *v;
	size_t count;
};

enum slo_counter_index {
	SLO_COUNTER_GOOD,
	SLO_COUNTER_ERRORS,
	SLO_COUNTER_TOTAL,
	SLO_COUNTER_COUNT,
};

static const char *const counter_names[SLO_COUNTER_COUNT] = {
    [SLO_COUNTER_GOOD] = "good",
    [SLO_COUNTER_ERRORS] = "errors",
    [SLO_COUNTER_TOTAL] = "total",
};

struct slo_state {
	const struct slo_config *c;
	double budget; /* 1 - objective */

	/* Ring of minute buckets: minute m is at index m mod span_minutes, valid for the
	 * minutes (newest_minute - span_minutes, newest_minute]. */
	int64_t span_minutes;
	double *good;
	double *total;
	int64_t newest_minute;
	bool empty;

	/* Availability: the scheduler's run and failure counters of the probe. */
	struct expr *runs;
	struct expr *failures;

	struct slo_counter counters[SLO_COUNTER_COUNT];
	int64_t latency_after_ms; /* latency: samples after this time are new; 0 = none yet */
	char *readings_key;       /* key of the readings in the state database's kv table */
};

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static int64_t minute_of(int64_t time_ms)
{
	return floor_div(time_ms, MINUTE_MS);
}

static size_t ring_index(const struct slo_state *st, int64_t minute)
{
	int64_t i = minute % st->span_minutes;

	return (size_t)(i < 0 ? i + st->span_minutes : i);
}

static void free_alerts(struct slo_alert_window *alerts, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(alerts[i].severity);
	free(alerts);
}

void slo_config_free(struct slo_config *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c->location);
	free(c->probe);
	expr_free(c->good);
	expr_free(c->errors);
	expr_free(c->total);
	free_alerts(c->alerts, c->alert_count);
	free(c->exclusions);
	for (size_t i = 0; i < c->label_count; i++) {
		free((char *)c->labels[i].name);
		free((char *)c->labels[i].value);
	}
	free(c->labels);
	memset(c, 0, sizeof(*c));
}

size_t slo_default_alerts(struct slo_alert_window **out)
{
	static const struct {
		const char *severity;
		int64_t long_ms, short_ms;
		double factor;
	} defaults[] = {
	    {"page", 3600 * 1000LL, 5 * MINUTE_MS, 14.4},
	    {"page", 6 * 3600 * 1000LL, 30 * MINUTE_MS, 6},
	    {"ticket", 24 * 3600 * 1000LL, 2 * 3600 * 1000LL, 3},
	    {"ticket", 3 * 24 * 3600 * 1000LL, 6 * 3600 * 1000LL, 1},
	};
	size_t count = sizeof(defaults) / sizeof(defaults[0]);
	struct slo_alert_window *alerts = xcalloc(count, sizeof(*alerts));

	for (size_t i = 0; i < count; i++) {
		alerts[i].severity = xstrdup(defaults[i].severity);
		alerts[i].long_ms = defaults[i].long_ms;
		alerts[i].short_ms = defaults[i].short_ms;
		alerts[i].factor = defaults[i].factor;
	}
	*out = alerts;
	return count;
}

/* Parses `metric{probe="NAME"}` with the probe name escaped as a string literal. */
static struct expr *probe_selector(const char *metric, const char *probe)
{
	size_t length = strlen(probe);
	char *escaped = xmalloc(2 * length + 1);
	char *p = escaped;
	char *text;
	char *error = NULL;
	struct expr *e;

	for (size_t i = 0; i < length; i++) {
		if (probe[i] == '\\' || probe[i] == '"') {
			*p++ = '\\';
			*p++ = probe[i];
		} else if (probe[i] == '\n') {
			*p++ = '\\';
			*p++ = 'n';
		} else {
			*p++ = probe[i];
		}
	}
	*p = '\0';
	text = xasprintf("%s{probe=\"%s\"}", metric, escaped);
	e = expr_parse(text, NULL, &error);
	if (e == NULL)
		log_fatal("slo", "the selector %s does not parse: %s", text, error);
	free(text);
	free(escaped);
	return e;
}

struct slo_state *slo_state_new(const struct slo_config *c)
{
	struct slo_state *st = xcalloc(1, sizeof(*st));
	int64_t span_ms = c->period_ms;

	/* The rule loader rejects objectives outside (0, 1) with the entry's location. */
	assert(c->objective > 0);
	assert(c->objective < 1);
	assert(c->period_ms > 0);
	st->c = c;
	st->budget = 1 - c->objective;
	for (size_t i = 0; i < c->alert_count; i++) {
		if (c->alerts[i].long_ms > span_ms)
			span_ms = c->alerts[i].long_ms;
		if (c->alerts[i].short_ms > span_ms)
			span_ms = c->alerts[i].short_ms;
	}
	st->span_minutes = (span_ms + MINUTE_MS - 1) / MINUTE_MS;
	st->good = xcalloc((size_t)st->span_minutes, sizeof(*st->good));
	st->total = xcalloc((size_t)st->span_minutes, sizeof(*st->total));
	st->empty = true;
	if (c->kind == SLO_SLI_AVAILABILITY) {
		st->runs = probe_selector("tocsin_probe_runs_total", c->probe);
		st->failures = probe_selector("tocsin_probe_failures_total", c->probe);
	}
	st->readings_key = xasprintf("slo/%s/readings", c->name);
	return st;
}

void slo_state_free(struct slo_state *st)
{
	if (st == NULL)
		return;
	free(st->good);
	free(st->total);
	expr_free(st->runs);
	expr_free(st->failures);
	for (size_t i = 0; i < SLO_COUNTER_COUNT; i++)
		free(st->counters[i].v);
	free(st->readings_key);
	free(st);
}

/* Moves the ring's newest minute forward to `minute`, clearing the minutes it passes. */
static void ring_advance(struct slo_state *st, int64_t minute)
{
	if (st->empty) {
		st->newest_minute = minute;
		st->empty = false;
		return;
	}
	if (minute <= st->newest_minute)
		return;
	if (minute - st->newest_minute >= st->span_minutes) {
		memset(st->good, 0, (size_t)st->span_minutes * sizeof(*st->good));
		memset(st->total, 0, (size_t)st->span_minutes * sizeof(*st->total));
	} else {
		for (int64_t m = st->newest_minute + 1; m <= minute; m++) {
			st->good[ring_index(st, m)] = 0;
			st->total[ring_index(st, m)] = 0;
		}
	}
	st->newest_minute = minute;
}

static void ring_clear(struct slo_state *st)
{
	memset(st->good, 0, (size_t)st->span_minutes * sizeof(*st->good));
	memset(st->total, 0, (size_t)st->span_minutes * sizeof(*st->total));
	st->empty = true;
}

void slo_add_events(struct slo_state *st, int64_t minute, double good, double total)
{
	size_t i;

	ring_advance(st, minute);
	if (minute <= st->newest_minute - st->span_minutes)
		return; /* older than anything a window or the period can read */
	i = ring_index(st, minute);
	st->good[i] += good;
	st->total[i] += total;
}

/* True when any part of the minute lies inside an exclusion. */
static bool minute_excluded(const struct slo_config *c, int64_t minute)
{
	int64_t start = minute * MINUTE_MS;
	int64_t end = start + MINUTE_MS;

	for (size_t i = 0; i < c->exclusion_count; i++) {
		if (start < c->exclusions[i].end_ms && end > c->exclusions[i].start_ms)
			return true;
	}
	return false;
}

/*
 * The window (now - window, now] covers whole minutes: from the minute after the one
 * that contains now - window up to the one that contains now, the current minute included.
 */
void slo_window_events(const struct slo_state *st, int64_t now_ms, int64_t window_ms, double *good,
		       double *total)
{
	int64_t first = minute_of(now_ms - window_ms) + 1;
	int64_t last = minute_of(now_ms);

	*good = 0;
	*total = 0;
	if (st->empty || window_ms <= 0)
		return;
	if (first <= st->newest_minute - st->span_minutes)
		first = st->newest_minute - st->span_minutes + 1;
	if (last > st->newest_minute)
		last = st->newest_minute;
	for (int64_t m = first; m <= last; m++) {
		size_t i = ring_index(st, m);

		if (st->total[i] == 0 && st->good[i] == 0)
			continue;
		if (minute_excluded(st->c, m))
			continue;
		*good += st->good[i];
		*total += st->total[i];
	}
}

bool slo_sli_ratio(const struct slo_state *st, int64_t now_ms, int64_t window_ms, double *out)
{
	double good;
	double total;

	slo_window_events(st, now_ms, window_ms, &good, &total);
	if (total <= 0)
		return false;
	*out = good / total;
	return true;
}

bool slo_burn_rate(const struct slo_state *st, int64_t now_ms, int64_t window_ms, double *out)
{
	double good;
	double total;

	slo_window_events(st, now_ms, window_ms, &good, &total);
	if (total <= 0)
		return false;
	*out = ((total - good) / total) / st->budget;
	return true;
}

bool slo_budget_remaining(const struct slo_state *st, int64_t now_ms, double *out)
{
	double good;
	double total;

	slo_window_events(st, now_ms, st->c->period_ms, &good, &total);
	if (total <= 0)
		return false;
	*out = 1 - (total - good) / (total * st->budget);
	return true;
}

enum slo_condition slo_alert_condition(const struct slo_state *st, const struct slo_alert_window *w,
				       int64_t now_ms)
{
	double long_good;
	double long_total;
	double short_good;
	double short_total;
	double long_burn;
	double short_burn;

	slo_window_events(st, now_ms, w->long_ms, &long_good, &long_total);
	slo_window_events(st, now_ms, w->short_ms, &short_good, &short_total);
	if (long_total <= 0 || short_total <= 0)
		return SLO_CONDITION_UNKNOWN;
	long_burn = ((long_total - long_good) / long_total) / st->budget;
	short_burn = ((short_total - short_good) / short_total) / st->budget;
	if (long_burn > w->factor && short_burn > w->factor && long_total >= st->c->min_events)
		return SLO_CONDITION_TRUE;
	return SLO_CONDITION_FALSE;
}

void slo_prune(struct slo_state *st, struct statedb *db, int64_t now_ms)
{
	int64_t minute = minute_of(now_ms);

	if (!st->empty)
		ring_advance(st, minute);
	if (db != NULL)
		statedb_slo_buckets_prune(db, st->c->name, minute - st->span_minutes + 1);
}

static uint64_t labels_key(const struct label *labels, size_t count)
{
	return label_set_hash(HASH_FNV_OFFSET, labels, count);
}

static int compare_readings(const void *a, const void *b)
{
	const struct slo_reading *x = a;
	const struct slo_reading *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/* The result's finite values as readings at now_ms, sorted by key, equal keys summed. */
static size_t result_readings(const struct expr_result *r, int64_t now_ms, struct slo_reading **out)
{
	struct slo_reading *v;
	size_t n = 0;

	if (r->type == EXPR_TYPE_SCALAR) {
		*out = NULL;
		if (!isfinite(r->scalar))
			return 0;
		v = xmalloc(sizeof(*v));
		v[0] = (struct slo_reading){SLO_SCALAR_KEY, r->scalar, now_ms};
		*out = v;
		return 1;
	}
	v = xcalloc(r->count > 0 ? r->count : 1, sizeof(*v));
	for (size_t i = 0; i < r->count; i++) {
		const struct expr_element *el = &r->elements[i];

		if (!isfinite(el->value))
			continue;
		v[n++] = (struct slo_reading){labels_key(el->labels, el->label_count), el->value,
					      now_ms};
	}
	qsort(v, n, sizeof(*v), compare_readings);
	if (n > 1) {
		size_t kept = 1;

		for (size_t i = 1; i < n; i++) {
			if (v[i].key == v[kept - 1].key)
				v[kept - 1].value += v[i].value;
			else
				v[kept++] = v[i];
		}
		n = kept;
	}
	*out = v;
	return n;
}

/*
 * Replaces the counter's readings with `fresh` (sorted) and returns the sum of the
 * increases of the series read both times. A value below the previous one is a counter
 * reset, so the new value is the increase. Series read for the first time add nothing;
 * series not read this time keep their reading until it expires.
 */
static double counter_update(struct slo_counter *c, struct slo_reading *fresh, size_t count,
			     int64_t now_ms)
{
	struct slo_reading *merged = xcalloc(c->count + count + 1, sizeof(*merged));
	size_t i = 0;
	size_t k = 0;
	size_t n = 0;
	double increase = 0;

	while (i < c->count || k < count) {
		if (k == count || (i < c->count && c->v[i].key < fresh[k].key)) {
			if (c->v[i].seen_ms >= now_ms - SLO_READING_EXPIRY_MS)
				merged[n++] = c->v[i];
			i++;
			continue;
		}
		if (i < c->count && c->v[i].key == fresh[k].key) {
			double old = c->v[i].value;

			increase += fresh[k].value >= old ? fresh[k].value - old : fresh[k].value;
			i++;
		}
		merged[n++] = fresh[k++];
	}
	free(c->v);
	c->v = merged;
	c->count = n;
	return increase;
}

/* Evaluates a counter expression into readings at now_ms (sorted); -1 on error. */
static int counter_evaluate(const struct slo_state *st, enum slo_counter_index which,
			    const struct expr *e, const struct expr_source *src, int64_t now_ms,
			    struct slo_reading **fresh, size_t *count, char **error)
{
	struct expr_result r;

	*fresh = NULL;
	*count = 0;
	if (expr_eval(e, src, now_ms, &r) < 0) {
		*error =
		    xasprintf("slo %s: evaluating the %s expression failed: %s", st->c->name,
			      counter_names[which], r.error != NULL ? r.error : "unknown error");
		expr_result_free(&r);
		return -1;
	}
	if (r.type != EXPR_TYPE_SCALAR && r.type != EXPR_TYPE_VECTOR) {
		*error = xasprintf("slo %s: the %s expression returned a %s, expected a counter "
				   "as a scalar or an instant vector",
				   st->c->name, counter_names[which], expr_type_name(r.type));
		expr_result_free(&r);
		return -1;
	}
	*count = result_readings(&r, now_ms, fresh);
	expr_result_free(&r);
	return 0;
}

struct series_list {
	const void **handles;
	size_t count;
	size_t capacity;
};

static void collect_series(void *arg, const struct expr_series *series)
{
	struct series_list *list = arg;

	list->handles = xreallocarray_grow(list->handles, &list->capacity, list->count + 1,
					   sizeof(*list->handles));
	list->handles[list->count++] = series->handle;
}

/* Counts the probe's run durations in (latency_after_ms, now_ms] as events. */
static void latency_observe(struct slo_state *st, const struct expr_source *src, int64_t now_ms,
			    double *good, double *total)
{
	const struct expr_matcher matchers[] = {
	    {EXPR_MATCH_EQUAL, "__name__", "tocsin_probe_duration_seconds", NULL},
	    {EXPR_MATCH_EQUAL, "probe", st->c->probe, NULL},
	};
	struct series_list list = {0};
	struct expr_sample_buffer buf = {0};

	*good = 0;
	*total = 0;
	if (st->latency_after_ms == 0) {
		/* The first observation only marks where counting starts. */
		st->latency_after_ms = now_ms;
		return;
	}
	if (now_ms <= st->latency_after_ms)
		return; /* the clock went back: wait until it passes the last observation */
	src->select(src->ctx, matchers, 2, collect_series, &list);
	for (size_t i = 0; i < list.count; i++) {
		buf.count = 0;
		src->read(src->ctx, list.handles[i], st->latency_after_ms + 1, now_ms, &buf);
		for (size_t k = 0; k < buf.count; k++) {
			double seconds = buf.v[k].value;

			if (isnan(seconds))
				continue; /* stale markers and failed measurements */
			*total += 1;
			if (seconds <= st->c->latency_threshold_s)
				*good += 1;
		}
	}
	free(buf.v);
	free(list.handles);
	st->latency_after_ms = now_ms;
}

/* The readings as JSON text for the kv table:
 *   {"good": [["KEY_HEX", VALUE, SEEN_MS], ...], "errors": [...], "total": [...],
 *    "latency_after_ms": MS} */
static char *readings_render(const struct slo_state *st)
{
	json_t *root = json_object();
	char *text;

	for (size_t c = 0; c < SLO_COUNTER_COUNT; c++) {
		json_t *array = json_array();

		for (size_t i = 0; i < st->counters[c].count; i++) {
			const struct slo_reading *r = &st->counters[c].v[i];
			char key[17];

			snprintf(key, sizeof key, "%016" PRIx64, r->key);
			json_array_append_new(
			    array, json_pack("[s f I]", key, r->value, (json_int_t)r->seen_ms));
		}
		json_object_set_new(root, counter_names[c], array);
	}
	json_object_set_new(root, "latency_after_ms", json_integer(st->latency_after_ms));
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text == NULL)
		log_fatal("slo", "out of memory rendering the readings of slo %s", st->c->name);
	return text;
}

/* Reads one counter's readings from the kv JSON; -1 when they are malformed. */
static int readings_parse_counter(json_t *array, struct slo_counter *c)
{
	size_t index;
	json_t *item;

	if (array == NULL)
		return 0;
	if (!json_is_array(array))
		return -1;
	c->v = xcalloc(json_array_size(array) + 1, sizeof(*c->v));
	c->count = 0;
	json_array_foreach(array, index, item)
	{
		const char *key = NULL;
		double value = 0;
		json_int_t seen_ms = 0;
		char *end;

		if (json_unpack(item, "[s F I]", &key, &value, &seen_ms) < 0)
			return -1;
		c->v[c->count].key = strtoull(key, &end, 16);
		if (*end != '\0' || end == key)
			return -1;
		c->v[c->count].value = value;
		c->v[c->count].seen_ms = seen_ms;
		c->count++;
	}
	qsort(c->v, c->count, sizeof(*c->v), compare_readings);
	return 0;
}

static int readings_parse(struct slo_state *st, const char *text)
{
	json_t *root = json_loads(text, 0, NULL);
	json_t *after;
	int rc = 0;

	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	for (size_t c = 0; c < SLO_COUNTER_COUNT && rc == 0; c++)
		rc = readings_parse_counter(json_object_get(root, counter_names[c]),
					    &st->counters[c]);
	after = json_object_get(root, "latency_after_ms");
	if (rc == 0 && after != NULL) {
		if (json_is_integer(after))
			st->latency_after_ms = json_integer_value(after);
		else
			rc = -1;
	}
	json_decref(root);
	return rc;
}

static void readings_clear(struct slo_state *st)
{
	for (size_t c = 0; c < SLO_COUNTER_COUNT; c++) {
		free(st->counters[c].v);
		st->counters[c].v = NULL;
		st->counters[c].count = 0;
	}
	st->latency_after_ms = 0;
}

static void restore_bucket(void *arg, int64_t minute, double good, double total)
{
	slo_add_events(arg, minute, good, total);
}

int slo_state_restore(struct slo_state *st, struct statedb *db, int64_t now_ms)
{
	char *text;
	char ids[256];

	if (db == NULL)
		return 0;
	ring_clear(st);
	readings_clear(st);
	if (statedb_slo_buckets_load(db, st->c->name, minute_of(now_ms) - st->span_minutes + 1,
				     restore_bucket, st) < 0)
		return -1;
	text = statedb_kv_get(db, st->readings_key);
	if (text == NULL)
		return 0; /* never observed, or the read failed and was logged */
	if (readings_parse(st, text) < 0) {
		/* Starting without readings loses only the events until the next observation. */
		log_warn(
		    "slo", log_ids(ids, sizeof ids, "slo", st->c->name, NULL),
		    "the stored counter readings under key %s are invalid and were dropped: %s",
		    st->readings_key, text);
		readings_clear(st);
	}
	free(text);
	return 0;
}

/*
 * The increases of the SLI's counters since the previous observation, as events. Both
 * expressions are evaluated before any reading changes, so a failed evaluation leaves
 * the readings as they were.
 */
static int counters_observe(struct slo_state *st, const struct expr_source *src, int64_t now_ms,
			    double *good, double *total, char **error)
{
	const struct slo_config *c = st->c;
	enum slo_counter_index other = SLO_COUNTER_ERRORS;
	const struct expr *total_expr = c->total;
	const struct expr *other_expr = c->errors;
	struct slo_reading *total_fresh = NULL;
	struct slo_reading *other_fresh = NULL;
	size_t total_count = 0;
	size_t other_count = 0;
	double total_increase;
	double other_increase;

	if (c->kind == SLO_SLI_AVAILABILITY) {
		total_expr = st->runs;
		other_expr = st->failures;
	} else if (c->kind == SLO_SLI_GOOD_TOTAL) {
		other = SLO_COUNTER_GOOD;
		other_expr = c->good;
	}
	if (counter_evaluate(st, SLO_COUNTER_TOTAL, total_expr, src, now_ms, &total_fresh,
			     &total_count, error) < 0)
		return -1;
	if (counter_evaluate(st, other, other_expr, src, now_ms, &other_fresh, &other_count,
			     error) < 0) {
		free(total_fresh);
		return -1;
	}
	total_increase =
	    counter_update(&st->counters[SLO_COUNTER_TOTAL], total_fresh, total_count, now_ms);
	other_increase = counter_update(&st->counters[other], other_fresh, other_count, now_ms);
	free(total_fresh);
	free(other_fresh);

	/* Counters read a moment apart, or reset separately, can disagree for a while. */
	if (other_increase > total_increase)
		other_increase = total_increase;
	*total = total_increase;
	*good = other == SLO_COUNTER_GOOD ? other_increase : total_increase - other_increase;
	return 0;
}

int slo_observe(struct slo_state *st, const struct expr_source *src, int64_t now_ms,
		struct statedb *db, char **error)
{
	const struct slo_config *c = st->c;
	double good = 0;
	double total = 0;
	char *readings;

	*error = NULL;
	if (c->kind == SLO_SLI_LATENCY) {
		latency_observe(st, src, now_ms, &good, &total);
	} else if (counters_observe(st, src, now_ms, &good, &total, error) < 0) {
		return -1;
	}

	if (total > 0) {
		slo_add_events(st, minute_of(now_ms), good, total);
		if (db != NULL)
			statedb_slo_bucket_add(db, c->name, minute_of(now_ms), good, total);
	}
	if (db != NULL) {
		readings = readings_render(st);
		statedb_kv_put(db, st->readings_key, readings);
		free(readings);
	}
	return 0;
}
