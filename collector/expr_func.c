/*
 * Functions and aggregations of the expression language. Range functions follow
 * Prometheus 2.x: rate, increase and delta extrapolate towards the ends of the range
 * (never further than half an average sample interval past the data, and for counters
 * never below zero), rate and increase add back counter resets, and every function except
 * last_over_time drops the metric name.
 */
#include "collector/expr_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collector/hash.h"

/* ---- helpers ---- */

static struct expr_vector_elem *vec_alloc(struct expr_eval_ctx *ctx, struct expr_value *out,
					  size_t count)
{
	out->type = EXPR_TYPE_VECTOR;
	out->count = 0;
	out->vec = expr_arena_alloc(ctx->arena, (count + 1) * sizeof(*out->vec));
	return out->vec;
}

/* Applies `compute` to each series of a range vector; it returns false for "no value". */
static int over_ranges(struct expr_eval_ctx *ctx, const struct expr_value *m, bool keep_name,
		       double param, struct expr_value *out,
		       bool (*compute)(const struct expr_value *m,
				       const struct expr_range_series *r, double param, double *v))
{
	vec_alloc(ctx, out, m->range_count);
	for (size_t i = 0; i < m->range_count; i++) {
		const struct expr_range_series *r = &m->ranges[i];
		double v;

		if (!compute(m, r, param, &v))
			continue;
		out->vec[out->count].labels =
		    keep_name ? r->labels : expr_labels_drop_name(ctx, &r->labels);
		out->vec[out->count++].value = v;
	}
	return 0;
}

/* ---- rate, increase, delta, irate ---- */

/*
 * The increase over the range, extrapolated as Prometheus does: the sampled span is
 * stretched to each end of the range when the first or last sample lies within 1.1
 * average intervals of it, else by half an average interval; a counter is not
 * extrapolated below zero before its first sample.
 */
static bool extrapolated(const struct expr_value *m, const struct expr_range_series *r,
			 bool counter, bool per_second, double *out)
{
	const struct expr_sample *s = r->samples;
	size_t n = r->count;
	double result;
	double to_start;
	double to_end;
	double sampled;
	double average;
	double span;
	double factor;

	if (n < 2)
		return false;
	result = s[n - 1].value - s[0].value;
	if (counter) {
		for (size_t i = 1; i < n; i++)
			if (s[i].value < s[i - 1].value)
				result += s[i - 1].value; /* a reset: the counter restarted at 0 */
	}
	to_start = (double)(s[0].time_ms - m->range_start) / 1000.0;
	to_end = (double)(m->range_end - s[n - 1].time_ms) / 1000.0;
	sampled = (double)(s[n - 1].time_ms - s[0].time_ms) / 1000.0;
	average = sampled / (double)(n - 1);
	if (counter && result > 0 && s[0].value >= 0) {
		double to_zero = sampled * (s[0].value / result);

		if (to_zero < to_start)
			to_start = to_zero;
	}
	span = sampled;
	span += to_start < average * 1.1 ? to_start : average / 2;
	span += to_end < average * 1.1 ? to_end : average / 2;
	/* One factor, divided by the range first, rounds exactly as Prometheus 2.42 does. */
	factor = span / sampled;
	if (per_second)
		factor /= (double)(m->range_end - m->range_start) / 1000.0;
	*out = result * factor;
	return true;
}

static bool compute_rate(const struct expr_value *m, const struct expr_range_series *r,
			 double param, double *v)
{
	(void)param;
	return extrapolated(m, r, true, true, v);
}

static bool compute_increase(const struct expr_value *m, const struct expr_range_series *r,
			     double param, double *v)
{
	(void)param;
	return extrapolated(m, r, true, false, v);
}

static bool compute_delta(const struct expr_value *m, const struct expr_range_series *r,
			  double param, double *v)
{
	(void)param;
	return extrapolated(m, r, false, false, v);
}

static bool compute_irate(const struct expr_value *m, const struct expr_range_series *r,
			  double param, double *v)
{
	const struct expr_sample *last;
	const struct expr_sample *prev;
	double diff;

	(void)m;
	(void)param;
	if (r->count < 2)
		return false;
	last = &r->samples[r->count - 1];
	prev = &r->samples[r->count - 2];
	if (last->time_ms == prev->time_ms)
		return false;
	/* After a reset the counter counted up from 0 to its last value. */
	diff = last->value < prev->value ? last->value : last->value - prev->value;
	*v = diff / ((double)(last->time_ms - prev->time_ms) / 1000.0);
	return true;
}

/* ---- *_over_time ---- */

static bool compute_avg(const struct expr_value *m, const struct expr_range_series *r, double param,
			double *v)
{
	double mean = 0;
	double compensation = 0;

	(void)m;
	(void)param;
	/* An incremental mean, so that a sum of large values cannot overflow, with
	 * Kahan-Neumaier compensation for the rounding of each step. */
	for (size_t i = 0; i < r->count; i++) {
		double x = r->samples[i].value;
		double count = (double)(i + 1);
		double step;
		double sum;

		if (isinf(mean)) {
			if (isinf(x) && (mean > 0) == (x > 0))
				continue;
			if (!isinf(x) && !isnan(x))
				continue;
		}
		step = x / count - mean / count;
		sum = mean + step;
		if (fabs(mean) >= fabs(step))
			compensation += (mean - sum) + step;
		else
			compensation += (step - sum) + mean;
		mean = sum;
	}
	*v = isinf(mean) ? mean : mean + compensation;
	return true;
}

static bool compute_min(const struct expr_value *m, const struct expr_range_series *r, double param,
			double *v)
{
	double min = r->samples[0].value;

	(void)m;
	(void)param;
	for (size_t i = 1; i < r->count; i++)
		if (r->samples[i].value < min || isnan(min))
			min = r->samples[i].value;
	*v = min;
	return true;
}

static bool compute_max(const struct expr_value *m, const struct expr_range_series *r, double param,
			double *v)
{
	double max = r->samples[0].value;

	(void)m;
	(void)param;
	for (size_t i = 1; i < r->count; i++)
		if (r->samples[i].value > max || isnan(max))
			max = r->samples[i].value;
	*v = max;
	return true;
}

static bool compute_sum(const struct expr_value *m, const struct expr_range_series *r, double param,
			double *v)
{
	double sum = 0;

	(void)m;
	(void)param;
	for (size_t i = 0; i < r->count; i++)
		sum += r->samples[i].value;
	*v = sum;
	return true;
}

static bool compute_count(const struct expr_value *m, const struct expr_range_series *r,
			  double param, double *v)
{
	(void)m;
	(void)param;
	*v = (double)r->count;
	return true;
}

static bool compute_last(const struct expr_value *m, const struct expr_range_series *r,
			 double param, double *v)
{
	(void)m;
	(void)param;
	*v = r->samples[r->count - 1].value;
	return true;
}

static int double_compare(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	/* NaN sorts first, so that it never lands between numbers. */
	if (isnan(x) || isnan(y))
		return isnan(x) && isnan(y) ? 0 : isnan(x) ? -1 : 1;
	return x < y ? -1 : x > y ? 1 : 0;
}

static bool compute_quantile(const struct expr_value *m, const struct expr_range_series *r,
			     double q, double *v)
{
	double *values;
	double rank;
	size_t lower;
	size_t upper;
	double weight;

	(void)m;
	if (isnan(q)) {
		*v = NAN;
		return true;
	}
	if (q < 0 || q > 1) {
		*v = q < 0 ? -INFINITY : INFINITY;
		return true;
	}
	values = malloc(r->count * sizeof(*values));
	if (values == NULL)
		abort();
	for (size_t i = 0; i < r->count; i++)
		values[i] = r->samples[i].value;
	qsort(values, r->count, sizeof(*values), double_compare);
	/* Linear interpolation between the two closest ranks (rank q * (n - 1)). */
	rank = q * (double)(r->count - 1);
	lower = (size_t)floor(rank);
	upper = lower + 1 < r->count ? lower + 1 : lower;
	weight = rank - floor(rank);
	*v = values[lower] * (1 - weight) + values[upper] * weight;
	free(values);
	return true;
}

static int call_rate(struct expr_eval_ctx *ctx, const struct expr_node *n, struct expr_value *args,
		     struct expr_value *out)
{
	(void)n;
	return over_ranges(ctx, &args[0], false, 0, out, compute_rate);
}

static int call_increase(struct expr_eval_ctx *ctx, const struct expr_node *n,
			 struct expr_value *args, struct expr_value *out)
{
	(void)n;
	return over_ranges(ctx, &args[0], false, 0, out, compute_increase);
}

static int call_delta(struct expr_eval_ctx *ctx, const struct expr_node *n, struct expr_value *args,
		      struct expr_value *out)
{
	(void)n;
	return over_ranges(ctx, &args[0], false, 0, out, compute_delta);
}

static int call_irate(struct expr_eval_ctx *ctx, const struct expr_node *n, struct expr_value *args,
		      struct expr_value *out)
{
	(void)n;
	return over_ranges(ctx, &args[0], false, 0, out, compute_irate);
}

static int call_avg_over_time(struct expr_eval_ctx *ctx, const struct expr_node *n,
			      struct expr_value *args, struct expr_value *out)
{
	(void)n;
	return over_ranges(ctx, &args[0], false, 0, out, compute_avg);
}

static int call_min_over_time(struct expr_eval_ctx *ctx, const struct expr_node *n,
			      struct expr_value *args, struct expr_value *out)
{
	(void)n;
	return over_ranges(ctx, &args[0], false, 0, out, compute_min);
}

static int call_max_over_time(struct expr_eval_ctx *ctx, const struct expr_node *n,
			      struct expr_value *args, struct expr_value *out)
{
	(void)n;
	return over_ranges(ctx, &args[0], false, 0, out, compute_max);
}

static int call_sum_over_time(struct expr_eval_ctx *ctx, const struct expr_node *n,
			      struct expr_value *args, struct expr_value *out)
{
	(void)n;
	return over_ranges(ctx, &args[0], false, 0, out, compute_sum);
}

static int call_count_over_time(struct expr_eval_ctx *ctx, const struct expr_node *n,
				struct expr_value *args, struct expr_value *out)
{
	(void)n;
	return over_ranges(ctx, &args[0], false, 0, out, compute_count);
}

static int call_last_over_time(struct expr_eval_ctx *ctx, const struct expr_node *n,
			       struct expr_value *args, struct expr_value *out)
{
	(void)n;
	return over_ranges(ctx, &args[0], true, 0, out, compute_last);
}

static int call_quantile_over_time(struct expr_eval_ctx *ctx, const struct expr_node *n,
				   struct expr_value *args, struct expr_value *out)
{
	(void)n;
	return over_ranges(ctx, &args[1], false, args[0].scalar, out, compute_quantile);
}

/* ---- absent ---- */

/*
 * One series of value 1 when the argument is empty. Its labels come from the equality
 * matchers of the selector (other than the metric name) when the argument is a
 * selector; a label matched for equality twice is left out.
 */
static int absent_result(struct expr_eval_ctx *ctx, const struct expr_node *arg, bool empty,
			 struct expr_value *out)
{
	struct expr_labels l = {0};

	vec_alloc(ctx, out, 1);
	if (!empty)
		return 0;
	if (arg->kind == EXPR_NODE_SELECTOR) {
		l.v = expr_arena_alloc(ctx->arena, (arg->matcher_count + 1) * sizeof(*l.v));
		for (size_t i = 0; i < arg->matcher_count; i++) {
			const struct expr_matcher *m = &arg->matchers[i];
			size_t seen = 0;

			if (m->op != EXPR_MATCH_EQUAL || strcmp(m->name, "__name__") == 0)
				continue;
			for (size_t j = 0; j < arg->matcher_count; j++)
				if (strcmp(arg->matchers[j].name, m->name) == 0 &&
				    arg->matchers[j].op == EXPR_MATCH_EQUAL)
					seen++;
			if (seen == 1)
				l.v[l.count++] = (struct label){m->name, m->value};
		}
		for (size_t i = 1; i < l.count; i++) {
			/* insertion sort by name: matchers come in the order written */
			struct label key = l.v[i];
			size_t j = i;

			while (j > 0 && strcmp(l.v[j - 1].name, key.name) > 0) {
				l.v[j] = l.v[j - 1];
				j--;
			}
			l.v[j] = key;
		}
	}
	out->vec[0] = (struct expr_vector_elem){l, 1};
	out->count = 1;
	return 0;
}

static int call_absent(struct expr_eval_ctx *ctx, const struct expr_node *n,
		       struct expr_value *args, struct expr_value *out)
{
	return absent_result(ctx, n->args[0], args[0].count == 0, out);
}

static int call_absent_over_time(struct expr_eval_ctx *ctx, const struct expr_node *n,
				 struct expr_value *args, struct expr_value *out)
{
	return absent_result(ctx, n->args[0], args[0].range_count == 0, out);
}

/* ---- instant functions ---- */

static int map_values(struct expr_eval_ctx *ctx, const struct expr_value *in, double param,
		      struct expr_value *out, double (*fn)(double x, double param))
{
	vec_alloc(ctx, out, in->count);
	for (size_t i = 0; i < in->count; i++) {
		out->vec[i].labels = expr_labels_drop_name(ctx, &in->vec[i].labels);
		out->vec[i].value = fn(in->vec[i].value, param);
	}
	out->count = in->count;
	return 0;
}

static double value_abs(double x, double param)
{
	(void)param;
	return fabs(x);
}

/* NaN stays NaN: fmax/fmin would return the other operand. */
static double value_clamp_min(double x, double min)
{
	return isnan(x) || isnan(min) ? NAN : x < min ? min : x;
}

static double value_clamp_max(double x, double max)
{
	return isnan(x) || isnan(max) ? NAN : x > max ? max : x;
}

static int call_abs(struct expr_eval_ctx *ctx, const struct expr_node *n, struct expr_value *args,
		    struct expr_value *out)
{
	(void)n;
	return map_values(ctx, &args[0], 0, out, value_abs);
}

static int call_clamp_min(struct expr_eval_ctx *ctx, const struct expr_node *n,
			  struct expr_value *args, struct expr_value *out)
{
	(void)n;
	return map_values(ctx, &args[0], args[1].scalar, out, value_clamp_min);
}

static int call_clamp_max(struct expr_eval_ctx *ctx, const struct expr_node *n,
			  struct expr_value *args, struct expr_value *out)
{
	(void)n;
	return map_values(ctx, &args[0], args[1].scalar, out, value_clamp_max);
}

static int call_time(struct expr_eval_ctx *ctx, const struct expr_node *n, struct expr_value *args,
		     struct expr_value *out)
{
	(void)n;
	(void)args;
	out->type = EXPR_TYPE_SCALAR;
	out->scalar = (double)ctx->time_ms / 1000.0;
	return 0;
}

#define M EXPR_TYPE_MATRIX
#define V EXPR_TYPE_VECTOR
#define S EXPR_TYPE_SCALAR

static const struct expr_func functions[] = {
    {"abs", {V}, 1, 1, V, call_abs},
    {"absent", {V}, 1, 1, V, call_absent},
    {"absent_over_time", {M}, 1, 1, V, call_absent_over_time},
    {"avg_over_time", {M}, 1, 1, V, call_avg_over_time},
    {"clamp_max", {V, S}, 2, 2, V, call_clamp_max},
    {"clamp_min", {V, S}, 2, 2, V, call_clamp_min},
    {"count_over_time", {M}, 1, 1, V, call_count_over_time},
    {"delta", {M}, 1, 1, V, call_delta},
    {"increase", {M}, 1, 1, V, call_increase},
    {"irate", {M}, 1, 1, V, call_irate},
    {"last_over_time", {M}, 1, 1, V, call_last_over_time},
    {"max_over_time", {M}, 1, 1, V, call_max_over_time},
    {"min_over_time", {M}, 1, 1, V, call_min_over_time},
    {"quantile_over_time", {S, M}, 2, 2, V, call_quantile_over_time},
    {"rate", {M}, 1, 1, V, call_rate},
    {"sum_over_time", {M}, 1, 1, V, call_sum_over_time},
    {"time", {S}, 0, 0, S, call_time},
};

#undef M
#undef V
#undef S

const struct expr_func *expr_func_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
		if (strcmp(functions[i].name, name) == 0)
			return &functions[i];
	return NULL;
}

const char *expr_func_names(void)
{
	return "one of abs, absent, absent_over_time, avg_over_time, clamp_max, clamp_min, "
	       "count_over_time, delta, increase, irate, last_over_time, max_over_time, "
	       "min_over_time, quantile_over_time, rate, sum_over_time, time";
}

/* ---- aggregations ---- */

static const char *const agg_names[] = {
    [EXPR_AGG_SUM] = "sum",         [EXPR_AGG_AVG] = "avg",     [EXPR_AGG_MIN] = "min",
    [EXPR_AGG_MAX] = "max",         [EXPR_AGG_COUNT] = "count", [EXPR_AGG_TOPK] = "topk",
    [EXPR_AGG_BOTTOMK] = "bottomk",
};

bool expr_agg_lookup(const char *name, enum expr_agg_op *op)
{
	for (size_t i = 0; i < sizeof agg_names / sizeof agg_names[0]; i++) {
		if (strcmp(agg_names[i], name) == 0) {
			*op = (enum expr_agg_op)i;
			return true;
		}
	}
	return false;
}

const char *expr_agg_name(enum expr_agg_op op)
{
	return agg_names[op];
}

struct group {
	struct expr_labels labels;
	uint64_t hash;
	double value;
	double count;
	size_t *members; /* topk/bottomk: indexes into the argument */
	size_t member_count;
};

static struct expr_labels group_labels(struct expr_eval_ctx *ctx, const struct expr_node *n,
				       const struct expr_labels *l)
{
	struct expr_labels g;

	if (!n->has_grouping)
		return (struct expr_labels){NULL, 0};
	if (!n->without)
		return expr_labels_filter(ctx, l, n->labels, n->label_count, true);
	g = expr_labels_drop_name(ctx, l);
	return expr_labels_filter(ctx, &g, n->labels, n->label_count, false);
}

static uint64_t group_hash(const struct expr_labels *l)
{
	return label_set_hash(HASH_FNV_OFFSET, l->v, l->count);
}

static void group_add(enum expr_agg_op op, struct group *g, double v, size_t index)
{
	g->count++;
	switch (op) {
	case EXPR_AGG_SUM:
	case EXPR_AGG_AVG:
		g->value += v;
		break;
	case EXPR_AGG_MIN:
		/* A NaN is replaced by any number, as in Prometheus. */
		if (g->count == 1 || v < g->value || isnan(g->value))
			g->value = v;
		break;
	case EXPR_AGG_MAX:
		if (g->count == 1 || v > g->value || isnan(g->value))
			g->value = v;
		break;
	case EXPR_AGG_COUNT:
		break;
	case EXPR_AGG_TOPK:
	case EXPR_AGG_BOTTOMK:
		g->members[g->member_count++] = index;
		break;
	}
}

/* Context for sorting the members of a topk/bottomk group. */
struct rank_ctx {
	const struct expr_value *arg;
	bool top;
};

/* Larger first for topk, smaller first for bottomk; NaN last; ties by labels. */
static int rank_compare(const void *a, const void *b, void *arg)
{
	const struct rank_ctx *rank = arg;
	const struct expr_vector_elem *x = &rank->arg->vec[*(const size_t *)a];
	const struct expr_vector_elem *y = &rank->arg->vec[*(const size_t *)b];

	if (isnan(x->value) != isnan(y->value))
		return isnan(x->value) ? 1 : -1;
	if (x->value != y->value && !isnan(x->value))
		return (x->value > y->value) == rank->top ? -1 : 1;
	return expr_labels_compare(&x->labels, &y->labels);
}

static void emit_ranked(struct group *g, const struct expr_value *arg, double k, bool top,
			struct expr_value *out)
{
	struct rank_ctx rc = {arg, top};

	qsort_r(g->members, g->member_count, sizeof(*g->members), rank_compare, &rc);
	for (size_t i = 0; i < g->member_count && (double)i < k; i++)
		out->vec[out->count++] = arg->vec[g->members[i]];
}

int expr_aggregate(struct expr_eval_ctx *ctx, const struct expr_node *n,
		   const struct expr_value *arg, double k, struct expr_value *out)
{
	bool ranked = n->agg == EXPR_AGG_TOPK || n->agg == EXPR_AGG_BOTTOMK;
	struct group *groups = expr_arena_alloc(ctx->arena, (arg->count + 1) * sizeof(*groups));
	size_t group_count = 0;
	size_t size = 16;
	size_t *slots;

	if (ranked && isnan(k))
		return expr_eval_fail(ctx, "k of %s() is NaN; it must be a number",
				      expr_agg_name(n->agg));
	while (size < arg->count * 2)
		size *= 2;
	slots = expr_arena_alloc(ctx->arena, size * sizeof(*slots));
	memset(slots, 0, size * sizeof(*slots));
	for (size_t i = 0; i < arg->count; i++) {
		struct expr_labels l = group_labels(ctx, n, &arg->vec[i].labels);
		uint64_t h = group_hash(&l);
		size_t s = (size_t)h & (size - 1);
		struct group *g = NULL;

		while (slots[s] != 0) {
			struct group *c = &groups[slots[s] - 1];

			if (c->hash == h && expr_labels_compare(&c->labels, &l) == 0) {
				g = c;
				break;
			}
			s = (s + 1) & (size - 1);
		}
		if (g == NULL) {
			g = &groups[group_count++];
			memset(g, 0, sizeof(*g));
			g->labels = l;
			g->hash = h;
			if (ranked)
				g->members =
				    expr_arena_alloc(ctx->arena, arg->count * sizeof(*g->members));
			slots[s] = group_count;
		}
		group_add(n->agg, g, arg->vec[i].value, i);
	}
	vec_alloc(ctx, out, arg->count);
	for (size_t i = 0; i < group_count; i++) {
		struct group *g = &groups[i];

		if (ranked) {
			emit_ranked(g, arg, k, n->agg == EXPR_AGG_TOPK, out);
			continue;
		}
		out->vec[out->count].labels = g->labels;
		if (n->agg == EXPR_AGG_AVG)
			out->vec[out->count].value = g->value / g->count;
		else if (n->agg == EXPR_AGG_COUNT)
			out->vec[out->count].value = g->count;
		else
			out->vec[out->count].value = g->value;
		out->count++;
	}
	return 0;
}
