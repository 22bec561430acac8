/*
 * --test-rules; see ruletest.h. A test file is read completely first, so that every error
 * in it is reported at once, then each test group runs on its own registry, window store
 * and evaluator with a virtual clock. The evaluator is driven only through its public
 * API: every rule group gets evaluation_interval as its interval, so that
 * evaluator_eval_at() evaluates all of them at every step, as promtool does.
 */
#include "collector/ruletest.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collector/cfg.h"
#include "collector/evaluator.h"
#include "collector/expr.h"
#include "collector/rules.h"
#include "collector/series.h"
#include "collector/series_notation.h"
#include "collector/units.h"
#include "collector/window.h"
#include "collector/xalloc.h"

#define RT_DEFAULT_INTERVAL_MS 60000
/* Nothing a test loads or records is dropped for age during a test. */
#define RT_HISTORY_MS  (INT64_MAX / 4)
#define RT_MAX_SAMPLES ((size_t)UINT32_MAX / 2)
/* Maximum eval_time: about 100 years, far from any overflow in time arithmetic. */
#define RT_MAX_TIME_MS (100LL * 365 * 24 * 3600 * 1000)
/*
 * Expected and actual values match when they differ by at most this share of the larger
 * one. promtool 2.42 compares exactly. The tolerance keeps a file that passes there from
 * failing here over a last-bit difference in floating-point rounding.
 */
#define RT_RELATIVE_TOLERANCE 1e-12

/* A label set with owned strings, sorted by name. */
struct rt_labels {
	struct label *v;
	size_t count;
};

struct rt_input {
	struct rt_labels labels;
	struct series_notation_item *items;
	size_t item_count;
};

/* An alert as expected or found: labels (alertname included) and annotations. */
struct rt_alert {
	struct rt_labels labels;
	struct rt_labels annotations;
};

struct rt_alert_test {
	char *where; /* "FILE:LINE:COLUMN: tests[0].alert_rule_test[1]" */
	int64_t eval_ms;
	char *alertname;
	struct rt_alert *exp;
	size_t exp_count;
};

struct rt_sample {
	struct rt_labels labels; /* "__name__" included */
	double value;
};

struct rt_expr_test {
	char *where;
	char *text;
	struct expr *expr;
	int64_t eval_ms;
	struct rt_sample *exp;
	size_t exp_count;
};

struct rt_group {
	char *where;
	char *name; /* NULL when the test has no name */
	int64_t interval_ms;
	struct rt_input *inputs;
	size_t input_count;
	struct rt_alert_test *alerts;
	size_t alert_count;
	struct rt_expr_test *exprs;
	size_t expr_count;
	struct rt_labels external;
};

struct rt_file {
	const char *path;
	char *dir; /* rule_files are relative to it; NULL: the working directory */
	struct cfg *cfg;
	char **rule_files;
	size_t rule_file_count;
	int64_t eval_interval_ms;
	char **order; /* group_eval_order */
	size_t order_count;
	struct cfg_seq order_seq; /* for errors found once the rules are loaded */
	struct rt_group *groups;
	size_t group_count;
};

/* The state of one file's report. */
struct rt_report {
	FILE *out;
	bool failed;
};

/* Marks input series as written by the test, so that no rule takes one over. */
static const char rt_input_owner[] = "input series";

/* ---- label sets -------------------------------------------------------------------------- */

static void rt_labels_free(struct rt_labels *l)
{
	series_notation_labels_free(l->v, l->count);
	l->v = NULL;
	l->count = 0;
}

static int rt_label_compare(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

static struct rt_labels rt_labels_copy(const struct label *v, size_t count)
{
	struct rt_labels l = {xcalloc(count + 1, sizeof *l.v), count};

	for (size_t i = 0; i < count; i++)
		l.v[i] = (struct label){xstrdup(v[i].name), xstrdup(v[i].value)};
	qsort(l.v, count, sizeof *l.v, rt_label_compare);
	return l;
}

/* Sets `name` to `value`, replacing an existing label, and keeps the set sorted. */
static void rt_labels_set(struct rt_labels *l, const char *name, const char *value)
{
	for (size_t i = 0; i < l->count; i++) {
		if (strcmp(l->v[i].name, name) == 0) {
			free((char *)l->v[i].value);
			l->v[i].value = xstrdup(value);
			return;
		}
	}
	l->v = xrealloc(l->v, (l->count + 1) * sizeof *l->v);
	l->v[l->count++] = (struct label){xstrdup(name), xstrdup(value)};
	qsort(l->v, l->count, sizeof *l->v, rt_label_compare);
}

static int rt_labels_compare(const struct rt_labels *a, const struct rt_labels *b)
{
	for (size_t i = 0; i < a->count && i < b->count; i++) {
		int c = strcmp(a->v[i].name, b->v[i].name);

		if (c == 0)
			c = strcmp(a->v[i].value, b->v[i].value);
		if (c != 0)
			return c;
	}
	return (a->count > b->count) - (a->count < b->count);
}

/* Reads a mapping of strings (exp_labels, external_labels) into a sorted label set. */
static int rt_get_labels(struct cfg_map *m, const char *key, struct rt_labels *out)
{
	char **names = NULL;
	char **values = NULL;
	size_t count = 0;
	int rc = cfg_get_string_map(m, key, &names, &values, &count);

	if (rc != 1)
		return rc;
	*out = rt_labels_copy(NULL, 0);
	for (size_t i = 0; i < count; i++)
		rt_labels_set(out, names[i], values[i]);
	cfg_strv_free(names);
	cfg_strv_free(values);
	return 1;
}

/* ---- values and times -------------------------------------------------------------------- */

/* Parses an expected value: a decimal number, or Inf and NaN in PromQL's or YAML's spelling. */
static bool rt_parse_value(const char *text, double *out)
{
	const char *p = text;
	double sign = 1;
	char *end;

	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	if (strcasecmp(p, "inf") == 0 || strcasecmp(p, ".inf") == 0) {
		*out = sign * INFINITY;
		return true;
	}
	if (strcasecmp(p, "nan") == 0 || strcasecmp(p, ".nan") == 0) {
		*out = NAN;
		return true;
	}
	if (text[0] == '\0' || text[strspn(text, "0123456789+-.eE")] != '\0')
		return false;
	*out = strtod(text, &end);
	return end != text && *end == '\0';
}

/* Writes the shortest decimal form that reads back as `v`. */
static const char *rt_format_value(double v, char *buf, size_t size)
{
	if (isnan(v)) {
		snprintf(buf, size, "NaN");
		return buf;
	}
	if (isinf(v)) {
		snprintf(buf, size, "%sInf", v > 0 ? "+" : "-");
		return buf;
	}
	/* Whole numbers print in full, so that 10 does not read "1e+01". */
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(buf, size, "%.0f", v);
		return buf;
	}
	for (int precision = 1; precision <= 17; precision++) {
		snprintf(buf, size, "%.*g", precision, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

static const char *rt_format_time(int64_t ms, char *buf, size_t size)
{
	return units_format_duration((uint64_t)ms, buf, size);
}

static bool rt_values_match(double expected, double got)
{
	if (isnan(expected) || isnan(got))
		return isnan(expected) && isnan(got);
	if (expected == got)
		return true;
	if (isinf(expected) || isinf(got))
		return false;
	return fabs(expected - got) <= RT_RELATIVE_TOLERANCE * fmax(fabs(expected), fabs(got));
}

/* Reads a duration of at most RT_MAX_TIME_MS. Returns as a cfg getter: *out is set on 1 only. */
static int rt_get_time(struct cfg_map *m, const char *key, int64_t *out)
{
	uint64_t ms = 0;
	int rc = cfg_get_duration_ms(m, key, &ms);

	if (rc != 1)
		return rc;
	if (ms > (uint64_t)RT_MAX_TIME_MS) {
		cfg_error(m, key, "is longer than 100 years; a test evaluates every step up to it");
		return -1;
	}
	*out = (int64_t)ms;
	return 1;
}

/* "FILE:LINE:COLUMN: PATH" of a mapping, for reports. */
static char *rt_where(const struct cfg_map *m)
{
	char location[512];

	return xasprintf("%s: %s", cfg_location(m, NULL, location, sizeof location), m->path);
}

/* ---- reading a test file ----------------------------------------------------------------- */

static void rt_parse_input(struct cfg_map *m, struct rt_group *g)
{
	struct rt_input in = {0};
	char *series = NULL;
	char *values = NULL;
	char *error = NULL;

	if (cfg_get_string(m, "series", &series) == 0)
		cfg_error(m, NULL, "missing required key \"series\" (e.g. 'up{job=\"api\"}')");
	if (series != NULL &&
	    series_notation_parse_labels(series, &in.labels.v, &in.labels.count, &error) < 0) {
		cfg_error(m, "series", "%s", error);
		free(error);
		error = NULL;
	} else if (series != NULL) {
		bool named = false;

		for (size_t i = 0; i < in.labels.count; i++)
			named = named || strcmp(in.labels.v[i].name, "__name__") == 0;
		if (!named)
			cfg_error(m, "series",
				  "has no metric name; expected name{label=\"value\"}");
		for (size_t i = 0; named && i < g->input_count; i++)
			if (rt_labels_compare(&g->inputs[i].labels, &in.labels) == 0)
				cfg_error(m, "series",
					  "repeats input_series[%zu]; list a series once", i);
	}
	if (cfg_get_string(m, "values", &values) == 1 &&
	    series_notation_parse_values(values, &in.items, &in.item_count, &error) < 0) {
		cfg_error(m, "values", "%s", error);
		free(error);
	}
	cfg_map_finish(m);
	free(series);
	free(values);
	g->inputs = xrealloc(g->inputs, (g->input_count + 1) * sizeof *g->inputs);
	g->inputs[g->input_count++] = in;
}

static void rt_parse_exp_alert(struct cfg_map *m, const char *alertname, struct rt_alert *a)
{
	if (rt_get_labels(m, "exp_labels", &a->labels) != 1)
		a->labels = rt_labels_copy(NULL, 0);
	if (rt_get_labels(m, "exp_annotations", &a->annotations) != 1)
		a->annotations = rt_labels_copy(NULL, 0);
	/* The expected labels leave out alertname, which every alert carries. */
	if (alertname != NULL)
		rt_labels_set(&a->labels, "alertname", alertname);
	cfg_map_finish(m);
}

static void rt_parse_alert_test(struct cfg_map *m, struct rt_group *g)
{
	struct rt_alert_test t = {0};
	struct cfg_seq seq;

	t.where = rt_where(m);
	rt_get_time(m, "eval_time", &t.eval_ms);
	if (cfg_get_string(m, "alertname", &t.alertname) == 0)
		cfg_error(m, NULL,
			  "missing required key \"alertname\" (the name of an alerting rule)");
	if (cfg_get_seq(m, "exp_alerts", &seq) == 1) {
		t.exp = xcalloc(cfg_seq_count(&seq) + 1, sizeof *t.exp);
		for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
			struct cfg_map item;

			if (cfg_seq_map(&seq, i, &item) == 1)
				rt_parse_exp_alert(&item, t.alertname, &t.exp[t.exp_count++]);
			else
				cfg_map_finish(&item);
		}
	}
	cfg_map_finish(m);
	g->alerts = xrealloc(g->alerts, (g->alert_count + 1) * sizeof *g->alerts);
	g->alerts[g->alert_count++] = t;
}

static void rt_parse_exp_sample(struct cfg_map *m, struct rt_sample *s)
{
	char *labels = NULL;
	char *value = NULL;
	char *error = NULL;
	char quoted[CFG_QUOTE_SIZE];

	/* promtool reads a missing labels as {} and a missing value as 0. */
	s->labels = rt_labels_copy(NULL, 0);
	if (cfg_get_string(m, "labels", &labels) == 1) {
		rt_labels_free(&s->labels);
		if (series_notation_parse_labels(labels, &s->labels.v, &s->labels.count, &error) <
		    0) {
			cfg_error(m, "labels", "%s", error);
			free(error);
			s->labels = rt_labels_copy(NULL, 0);
		}
	}
	if (cfg_get_string(m, "value", &value) == 1 && !rt_parse_value(value, &s->value))
		cfg_error(m, "value", "%s is not a number (examples: 1, 0.5, -2.5e3, Inf, NaN)",
			  cfg_quote(value, quoted, sizeof quoted));
	cfg_map_finish(m);
	free(labels);
	free(value);
}

static void rt_parse_expr_test(struct cfg_map *m, struct rt_group *g)
{
	struct rt_expr_test t = {0};
	struct cfg_seq seq;
	char *error = NULL;

	t.where = rt_where(m);
	rt_get_time(m, "eval_time", &t.eval_ms);
	if (cfg_get_string(m, "expr", &t.text) == 0) {
		cfg_error(m, NULL, "missing required key \"expr\" (the expression to evaluate)");
	} else if (t.text != NULL) {
		t.expr = expr_parse(t.text, NULL, &error);
		if (t.expr == NULL) {
			cfg_error(m, "expr", "%s", error);
			free(error);
		} else if (expr_result_type(t.expr) != EXPR_TYPE_VECTOR &&
			   expr_result_type(t.expr) != EXPR_TYPE_SCALAR) {
			cfg_error(m, "expr", "returns a %s; expected an instant vector or a scalar",
				  expr_type_name(expr_result_type(t.expr)));
		}
	}
	if (cfg_get_seq(m, "exp_samples", &seq) == 1) {
		t.exp = xcalloc(cfg_seq_count(&seq) + 1, sizeof *t.exp);
		for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
			struct cfg_map item;

			if (cfg_seq_map(&seq, i, &item) == 1)
				rt_parse_exp_sample(&item, &t.exp[t.exp_count++]);
			else
				cfg_map_finish(&item);
		}
	}
	cfg_map_finish(m);
	g->exprs = xrealloc(g->exprs, (g->expr_count + 1) * sizeof *g->exprs);
	g->exprs[g->expr_count++] = t;
}

/* Calls parse for each mapping of the sequence `key` of m. */
static void rt_parse_list(struct cfg_map *m, const char *key, struct rt_group *g,
			  void (*parse)(struct cfg_map *item, struct rt_group *g))
{
	struct cfg_seq seq;

	if (cfg_get_seq(m, key, &seq) != 1)
		return;
	for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
		struct cfg_map item;

		if (cfg_seq_map(&seq, i, &item) == 1)
			parse(&item, g);
		else
			cfg_map_finish(&item);
	}
}

static void rt_parse_group(struct cfg_map *m, const struct rt_file *f, struct rt_group *g)
{
	char *url = NULL;

	g->where = rt_where(m);
	cfg_get_string(m, "name", &g->name);
	/* Newer promtool releases default the interval to evaluation_interval; 2.42 has no
	 * default at all (every sample lands at time 0), so files always set it there. */
	g->interval_ms = f->eval_interval_ms;
	if (rt_get_time(m, "interval", &g->interval_ms) == 1 && g->interval_ms == 0)
		g->interval_ms = f->eval_interval_ms;
	if (rt_get_labels(m, "external_labels", &g->external) != 1)
		g->external = rt_labels_copy(NULL, 0);
	/* NOTE: accepted for promtool's files only, because templates have no $externalURL. */
	cfg_get_string(m, "external_url", &url);
	free(url);
	rt_parse_list(m, "input_series", g, rt_parse_input);
	rt_parse_list(m, "alert_rule_test", g, rt_parse_alert_test);
	rt_parse_list(m, "promql_expr_test", g, rt_parse_expr_test);
	cfg_map_finish(m);
}

/* The directory of a path; NULL for a file in the working directory, so that the rule
 * files' names in messages stay as the test file writes them. */
static char *rt_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return NULL;
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* Reads the whole test file. Returns -1 when it has errors, which f->cfg records. */
static int rt_parse_file(struct rt_file *f)
{
	struct cfg_map root;
	struct cfg_seq tests;
	bool fuzzy;

	f->dir = rt_dir_of(f->path);
	f->cfg = cfg_parse_file(f->path);
	f->eval_interval_ms = RT_DEFAULT_INTERVAL_MS;
	if (cfg_error_count(f->cfg) > 0)
		return -1;
	if (cfg_root(f->cfg, &root) < 0) {
		cfg_map_discard(&root);
		return -1;
	}
	cfg_get_string_list(&root, "rule_files", &f->rule_files, &f->rule_file_count);
	if (rt_get_time(&root, "evaluation_interval", &f->eval_interval_ms) == 1 &&
	    f->eval_interval_ms == 0)
		f->eval_interval_ms = RT_DEFAULT_INTERVAL_MS;
	cfg_get_string_list(&root, "group_eval_order", &f->order, &f->order_count);
	if (f->order_count > 0)
		cfg_get_seq(&root, "group_eval_order", &f->order_seq);
	/* Accepted for newer promtool files; values always match within RT_RELATIVE_TOLERANCE. */
	cfg_get_bool(&root, "fuzzy_compare", &fuzzy);
	if (cfg_get_seq(&root, "tests", &tests) == 1) {
		f->groups = xcalloc(cfg_seq_count(&tests) + 1, sizeof *f->groups);
		for (size_t i = 0; i < cfg_seq_count(&tests); i++) {
			struct cfg_map item;

			if (cfg_seq_map(&tests, i, &item) == 1)
				rt_parse_group(&item, f, &f->groups[f->group_count++]);
			else
				cfg_map_finish(&item);
		}
	}
	cfg_map_finish(&root);
	return cfg_error_count(f->cfg) > 0 ? -1 : 0;
}

static void rt_alerts_free(struct rt_alert *v, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		rt_labels_free(&v[i].labels);
		rt_labels_free(&v[i].annotations);
	}
	free(v);
}

static void rt_samples_free(struct rt_sample *v, size_t count)
{
	for (size_t i = 0; i < count; i++)
		rt_labels_free(&v[i].labels);
	free(v);
}

static void rt_group_free(struct rt_group *g)
{
	for (size_t i = 0; i < g->input_count; i++) {
		rt_labels_free(&g->inputs[i].labels);
		free(g->inputs[i].items);
	}
	for (size_t i = 0; i < g->alert_count; i++) {
		free(g->alerts[i].where);
		free(g->alerts[i].alertname);
		rt_alerts_free(g->alerts[i].exp, g->alerts[i].exp_count);
	}
	for (size_t i = 0; i < g->expr_count; i++) {
		free(g->exprs[i].where);
		free(g->exprs[i].text);
		expr_free(g->exprs[i].expr);
		rt_samples_free(g->exprs[i].exp, g->exprs[i].exp_count);
	}
	rt_labels_free(&g->external);
	free(g->inputs);
	free(g->alerts);
	free(g->exprs);
	free(g->where);
	free(g->name);
}

static void rt_file_free(struct rt_file *f)
{
	for (size_t i = 0; i < f->group_count; i++)
		rt_group_free(&f->groups[i]);
	free(f->groups);
	cfg_strv_free(f->rule_files);
	cfg_strv_free(f->order);
	cfg_free(f->cfg);
	free(f->dir);
}

/* ---- rules ------------------------------------------------------------------------------- */

/*
 * Puts the groups named in group_eval_order first, in that order, and the others after
 * them in file order. A name that is unknown or repeated is an error.
 */
static int rt_order_groups(struct rt_file *f, struct rule_set *set)
{
	struct rule_group *ordered = xcalloc(set->group_count + 1, sizeof *ordered);
	bool *listed = xcalloc(set->group_count + 1, sizeof *listed);
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < f->order_count; i++) {
		size_t k = 0;

		while (k < set->group_count && strcmp(set->groups[k].name, f->order[i]) != 0)
			k++;
		if (k == set->group_count) {
			cfg_seq_error(&f->order_seq, i, "no rule group named %s in rule_files",
				      f->order[i]);
			rc = -1;
		} else if (listed[k]) {
			cfg_seq_error(&f->order_seq, i, "group %s is listed twice", f->order[i]);
			rc = -1;
		} else {
			listed[k] = true;
			ordered[n++] = set->groups[k];
		}
	}
	for (size_t k = 0; k < set->group_count; k++)
		if (!listed[k])
			ordered[n++] = set->groups[k];
	free(set->groups);
	set->groups = ordered;
	free(listed);
	return rc;
}

/* Loads rule_files for one test group. On failure prints the errors to err, returns NULL. */
static struct rule_set *rt_load_rules(struct rt_file *f, FILE *err)
{
	char *errors = NULL;
	struct rule_set *set;

	set = rules_load(f->rule_files, f->rule_file_count, f->dir, f->eval_interval_ms, &errors);
	if (set == NULL) {
		fprintf(err, "%s\n", errors != NULL ? errors : "rule files failed to load");
		free(errors);
		return NULL;
	}
	if (rt_order_groups(f, set) < 0) {
		fprintf(err, "%s\n", cfg_errors(f->cfg));
		rules_free(set);
		return NULL;
	}
	/* Every group runs at every step, whatever its own interval, as in promtool. */
	for (size_t k = 0; k < set->group_count; k++)
		set->groups[k].interval_ms = f->eval_interval_ms;
	return set;
}

/* ---- reports ----------------------------------------------------------------------------- */

static void rt_fail(struct rt_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Starts one failure entry: "  FAILED:" before the first one, then the indented line. */
static void rt_fail(struct rt_report *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->failed)
		fprintf(r->out, "  FAILED:\n");
	r->failed = true;
	fprintf(r->out, "    ");
	va_start(ap, fmt);
	vfprintf(r->out, fmt, ap);
	va_end(ap);
	fprintf(r->out, "\n");
}

/* " (test NAME)" or "", to follow a location in reports. */
static const char *rt_test_name(const struct rt_group *g, char *buf, size_t size)
{
	if (g->name == NULL)
		return "";
	snprintf(buf, size, " (test %s)", g->name);
	return buf;
}

static void rt_print_alerts(FILE *out, const char *tag, const struct rt_alert *v, size_t count)
{
	if (count == 0)
		fprintf(out, "        %s (no firing alerts)\n", tag);
	for (size_t i = 0; i < count; i++) {
		char *labels = series_notation_format_labels(v[i].labels.v, v[i].labels.count);
		char *annotations =
		    series_notation_format_labels(v[i].annotations.v, v[i].annotations.count);

		fprintf(out, "        %s %s annotations %s\n", i == 0 ? tag : "    ", labels,
			annotations);
		free(labels);
		free(annotations);
	}
}

static void rt_print_samples(FILE *out, const char *tag, const struct rt_sample *v, size_t count)
{
	char value[64];

	if (count == 0)
		fprintf(out, "        %s (no samples)\n", tag);
	for (size_t i = 0; i < count; i++) {
		char *labels = series_notation_format_labels(v[i].labels.v, v[i].labels.count);

		fprintf(out, "        %s %s %s\n", i == 0 ? tag : "    ", labels,
			rt_format_value(v[i].value, value, sizeof value));
		free(labels);
	}
}

/* ---- checks ------------------------------------------------------------------------------ */

/* qsort() for arrays that may be NULL when empty, which qsort() does not accept. */
static void rt_sort(void *base, size_t count, size_t size,
		    int (*compare)(const void *, const void *))
{
	if (count > 1)
		qsort(base, count, size, compare);
}

static int rt_alert_compare(const void *a, const void *b)
{
	const struct rt_alert *x = a;
	const struct rt_alert *y = b;
	int c = rt_labels_compare(&x->labels, &y->labels);

	return c != 0 ? c : rt_labels_compare(&x->annotations, &y->annotations);
}

static int rt_sample_compare(const void *a, const void *b)
{
	return rt_labels_compare(&((const struct rt_sample *)a)->labels,
				 &((const struct rt_sample *)b)->labels);
}

struct rt_alert_collect {
	const char *alertname;
	struct rt_alert *v;
	size_t count;
};

/*
 * Keeps the firing alerts of one name. A threshold alert whose data stopped keeps its
 * level (state stale, no_data keep or alert) and counts as firing while that level is
 * above ok.
 */
static void rt_collect_alert(void *arg, const struct evaluator_alert *a)
{
	struct rt_alert_collect *c = arg;
	bool firing = a->inst->state == ALERT_FIRING ||
		      (a->inst->state == ALERT_STALE && a->inst->level != ALERT_LEVEL_OK);

	if (!firing || strcmp(a->alertname, c->alertname) != 0)
		return;
	c->v = xrealloc(c->v, (c->count + 1) * sizeof *c->v);
	c->v[c->count].labels = rt_labels_copy(a->labels, a->label_count);
	c->v[c->count].annotations = rt_labels_copy(a->annotations, a->annotation_count);
	c->count++;
}

static void rt_check_alerts(struct rt_report *r, const struct rt_group *g, struct rt_alert_test *t,
			    const struct evaluator *ev)
{
	struct rt_alert_collect got = {t->alertname, NULL, 0};
	bool equal;
	char name[256];
	char time[64];

	evaluator_alerts(ev, rt_collect_alert, &got);
	rt_sort(got.v, got.count, sizeof *got.v, rt_alert_compare);
	rt_sort(t->exp, t->exp_count, sizeof *t->exp, rt_alert_compare);
	equal = got.count == t->exp_count;
	for (size_t i = 0; equal && i < got.count; i++)
		equal = rt_alert_compare(&got.v[i], &t->exp[i]) == 0;
	if (!equal) {
		rt_fail(r, "%s%s, time %s, alertname: %s", t->where,
			rt_test_name(g, name, sizeof name),
			rt_format_time(t->eval_ms, time, sizeof time), t->alertname);
		rt_print_alerts(r->out, "exp:", t->exp, t->exp_count);
		rt_print_alerts(r->out, "got:", got.v, got.count);
	}
	rt_alerts_free(got.v, got.count);
}

/* Copies the result of an instant query as samples. A scalar is one sample without labels. */
static size_t rt_result_samples(const struct expr_result *res, struct rt_sample **out)
{
	struct rt_sample *v;

	if (res->type == EXPR_TYPE_SCALAR) {
		v = xcalloc(1, sizeof *v);
		v[0].labels = rt_labels_copy(NULL, 0);
		v[0].value = res->scalar;
		*out = v;
		return 1;
	}
	v = xcalloc(res->count + 1, sizeof *v);
	for (size_t i = 0; i < res->count; i++) {
		v[i].labels = rt_labels_copy(res->elements[i].labels, res->elements[i].label_count);
		v[i].value = res->elements[i].value;
	}
	*out = v;
	return res->count;
}

static void rt_check_expr(struct rt_report *r, const struct rt_group *g, struct rt_expr_test *t,
			  const struct expr_source *src)
{
	struct expr_result res;
	struct rt_sample *got = NULL;
	size_t got_count = 0;
	bool equal;
	char name[256];
	char time[64];

	rt_format_time(t->eval_ms, time, sizeof time);
	if (expr_eval(t->expr, src, t->eval_ms, &res) < 0) {
		rt_fail(r, "%s%s, time %s, expr: %s", t->where, rt_test_name(g, name, sizeof name),
			time, t->text);
		fprintf(r->out, "        evaluation failed: %s\n",
			res.error != NULL ? res.error : "unknown error");
		expr_result_free(&res);
		return;
	}
	got_count = rt_result_samples(&res, &got);
	expr_result_free(&res);

	rt_sort(got, got_count, sizeof *got, rt_sample_compare);
	rt_sort(t->exp, t->exp_count, sizeof *t->exp, rt_sample_compare);
	equal = got_count == t->exp_count;
	for (size_t i = 0; equal && i < got_count; i++)
		equal = rt_labels_compare(&got[i].labels, &t->exp[i].labels) == 0 &&
			rt_values_match(t->exp[i].value, got[i].value);
	if (!equal) {
		rt_fail(r, "%s%s, time %s, expr: %s", t->where, rt_test_name(g, name, sizeof name),
			time, t->text);
		rt_print_samples(r->out, "exp:", t->exp, t->exp_count);
		rt_print_samples(r->out, "got:", got, got_count);
	}
	rt_samples_free(got, got_count);
}

/* ---- running a test group ---------------------------------------------------------------- */

static void rt_forget_window(void *arg, struct series *s)
{
	window_forget(arg, s);
}

static void rt_load_inputs(const struct rt_group *g, struct series_registry *reg,
			   struct window_store *ws, int64_t end_ms)
{
	for (size_t i = 0; i < g->input_count; i++) {
		const struct rt_input *in = &g->inputs[i];
		char *error = NULL;
		struct series *s =
		    series_notation_intern(reg, in->labels.v, in->labels.count, &error);

		if (s == NULL) {
			/* Names were checked when the file was read; the registry logs the rest. */
			free(error);
			continue;
		}
		s->owner = rt_input_owner;
		series_notation_load(ws, s, in->items, in->item_count, g->interval_ms, end_ms);
	}
}

static int rt_compare_alert_time(const void *a, const void *b)
{
	const struct rt_alert_test *x = *(struct rt_alert_test *const *)a;
	const struct rt_alert_test *y = *(struct rt_alert_test *const *)b;

	if (x->eval_ms != y->eval_ms)
		return x->eval_ms < y->eval_ms ? -1 : 1;
	return x < y ? -1 : x > y; /* file order for one time */
}

static int rt_compare_expr_time(const void *a, const void *b)
{
	const struct rt_expr_test *x = *(struct rt_expr_test *const *)a;
	const struct rt_expr_test *y = *(struct rt_expr_test *const *)b;

	if (x->eval_ms != y->eval_ms)
		return x->eval_ms < y->eval_ms ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int64_t rt_max_eval_ms(const struct rt_group *g)
{
	int64_t max = 0;

	for (size_t i = 0; i < g->alert_count; i++)
		if (g->alerts[i].eval_ms > max)
			max = g->alerts[i].eval_ms;
	for (size_t i = 0; i < g->expr_count; i++)
		if (g->exprs[i].eval_ms > max)
			max = g->exprs[i].eval_ms;
	return max;
}

/*
 * Evaluates the rules at 0, interval, 2 * interval, ... up to end_ms. After the last
 * evaluation at or before a test's eval_time it checks the alerts of each alert test and
 * runs each expression test. promtool runs the expressions after the last step, but the
 * evaluator removes an ALERTS series, samples included, when its labels change (pending
 * to firing, resolved), and a recorded series a few evaluations after it stopped. Right
 * after the step those samples are still there, and a query at eval_time reads no sample
 * recorded later.
 * NOTE: a range that reaches back past such a removal still sees fewer samples than in
 * promtool.
 * Returns -1 when a rule failed to evaluate, which ends the test group as in promtool.
 */
static int rt_run_steps(struct rt_report *r, const struct rt_file *f, const struct rt_group *g,
			struct evaluator *ev, const struct expr_source *src, int64_t end_ms)
{
	struct rt_alert_test **alerts = xcalloc(g->alert_count + 1, sizeof *alerts);
	struct rt_expr_test **exprs = xcalloc(g->expr_count + 1, sizeof *exprs);
	size_t next_alert = 0;
	size_t next_expr = 0;
	int rc = 0;

	for (size_t i = 0; i < g->alert_count; i++)
		alerts[i] = &g->alerts[i];
	qsort(alerts, g->alert_count, sizeof *alerts, rt_compare_alert_time);
	for (size_t i = 0; i < g->expr_count; i++)
		exprs[i] = &g->exprs[i];
	qsort(exprs, g->expr_count, sizeof *exprs, rt_compare_expr_time);

	for (int64_t ts = 0; ts <= end_ms; ts += f->eval_interval_ms) {
		int64_t next_ts = ts + f->eval_interval_ms;
		uint64_t failures = evaluator_failures_total(ev);
		char name[256];
		char time[64];

		evaluator_eval_at(ev, ts);
		if (evaluator_failures_total(ev) != failures) {
			rt_fail(r,
				"%s%s, time %s: a rule failed to evaluate (the warning logged "
				"above names the rule and the error); the test's other checks "
				"were skipped",
				g->where, rt_test_name(g, name, sizeof name),
				rt_format_time(ts, time, sizeof time));
			rc = -1;
			break;
		}
		while (next_alert < g->alert_count && alerts[next_alert]->eval_ms < next_ts)
			rt_check_alerts(r, g, alerts[next_alert++], ev);
		while (next_expr < g->expr_count && exprs[next_expr]->eval_ms < next_ts)
			rt_check_expr(r, g, exprs[next_expr++], src);
	}
	free(alerts);
	free(exprs);
	return rc;
}

static int rt_run_group(struct rt_report *r, struct rt_file *f, const struct rt_group *g, FILE *err)
{
	struct rule_set *set = NULL;
	struct series_registry *reg;
	struct window_store *ws;
	struct evaluator *ev;
	struct expr_source src;
	int64_t end_ms = rt_max_eval_ms(g);

	if (f->rule_file_count > 0) {
		set = rt_load_rules(f, err);
		if (set == NULL)
			return -1;
	}
	reg = series_registry_new();
	ws = window_store_new(RT_HISTORY_MS, RT_MAX_SAMPLES);
	series_registry_on_remove(reg, rt_forget_window, ws);
	/* promtool loads samples only up to the last evaluation, so later ones never count. */
	rt_load_inputs(g, reg, ws, end_ms);

	ev = evaluator_new(NULL, reg, NULL, ws, NULL);
	if (g->external.count > 0)
		evaluator_set_external_labels(ev, g->external.v, g->external.count);
	evaluator_apply(ev, set, 0);
	/* apply sized the history for the rules, but expression tests may read further back. */
	window_store_set_history(ws, RT_HISTORY_MS);

	window_source(ws, reg, &src);
	rt_run_steps(r, f, g, ev, &src, end_ms);
	evaluator_free(ev);
	window_store_free(ws);
	series_registry_free(reg);
	return 0;
}

/* Runs one file. Returns 0 when every check passed. */
static int rt_run_file(const char *path, FILE *out, FILE *err)
{
	struct rt_file f = {.path = path};
	struct rt_report r = {.out = out};
	int rc = 0;

	fprintf(out, "Unit testing: %s\n", path);
	fflush(out);
	if (rt_parse_file(&f) < 0) {
		fprintf(err, "%s\n", cfg_errors(f.cfg));
		fflush(err);
		fprintf(out, "  FAILED: the test file has errors\n\n");
		rt_file_free(&f);
		return -1;
	}
	for (size_t i = 0; i < f.group_count && rc == 0; i++) {
		rc = rt_run_group(&r, &f, &f.groups[i], err);
		fflush(err);
	}
	if (rc < 0)
		fprintf(out, "  FAILED: the rule files have errors\n");
	else if (!r.failed)
		fprintf(out, "  SUCCESS\n");
	fprintf(out, "\n");
	fflush(out);
	rt_file_free(&f);
	return rc < 0 || r.failed ? -1 : 0;
}

int ruletest_run(char *const *paths, size_t count, FILE *out, FILE *err)
{
	int status = 0;

	for (size_t i = 0; i < count; i++)
		if (rt_run_file(paths[i], out, err) < 0)
			status = 1;
	return status;
}
