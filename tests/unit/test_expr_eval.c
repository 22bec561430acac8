/*
 * Unit tests of expression evaluation on a virtual clock: synthetic series in a series
 * registry with sample windows (the same source the daemon uses), evaluated at chosen
 * times. Expected values of rate, increase, delta and irate are computed by hand in the
 * comments from Prometheus's extrapolation rules.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/expr.h"
#include "collector/expr_impl.h"
#include "collector/window.h"

struct store {
	struct series_registry *reg;
	struct window_store *ws;
	struct expr_source src;
};

static int setup(void **state)
{
	struct store *st = calloc(1, sizeof(*st));

	st->reg = series_registry_new();
	st->ws = window_store_new(24 * 3600 * 1000LL, WINDOW_DEFAULT_MAX_SAMPLES);
	window_source(st->ws, st->reg, &st->src);
	*state = st;
	return 0;
}

static int teardown(void **state)
{
	struct store *st = *state;

	window_store_free(st->ws);
	series_registry_free(st->reg);
	free(st);
	return 0;
}

/* Interns the series written as a selector with equality matchers: x{job="a"}. */
static struct series *series_of(struct store *st, const char *text)
{
	char *error = NULL;
	struct expr *e = expr_parse(text, NULL, &error);
	const struct expr_node *n;
	struct label labels[16];
	size_t count = 0;
	struct metric_desc desc = {NULL, "test series", METRIC_GAUGE};
	struct series *s;

	if (e == NULL)
		fail_msg("%s: %s", text, error);
	n = e->root;
	assert_int_equal(n->kind, EXPR_NODE_SELECTOR);
	desc.name = n->metric;
	for (size_t i = 1; i < n->matcher_count; i++)
		labels[count++] = (struct label){n->matchers[i].name, n->matchers[i].value};
	s = series_intern(st->reg, &desc, labels, count);
	assert_non_null(s);
	expr_free(e);
	return s;
}

/*
 * Loads samples every step_s seconds from t=0, in promtool's notation: numbers, NaN,
 * Inf, "_" (no sample), "stale" (a stale marker) and "A+BxN" / "A-BxN" (N+1 values
 * from A in steps of B).
 */
static void load(struct store *st, const char *series, int64_t step_s, const char *values)
{
	struct series *s = series_of(st, series);
	char *copy = strdup(values);
	char *save = NULL;
	int64_t t = 0;

	for (char *tok = strtok_r(copy, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		double a;
		double b;
		int n;
		char sign;

		if (strcmp(tok, "_") == 0) {
			t += step_s;
		} else if (strcmp(tok, "stale") == 0) {
			window_mark_stale(st->ws, s, t * 1000);
			t += step_s;
		} else if (sscanf(tok, "%lf%c%lfx%d", &a, &sign, &b, &n) == 4 &&
			   (sign == '+' || sign == '-')) {
			for (int i = 0; i <= n; i++, t += step_s)
				assert_int_equal(window_append(st->ws, s, t * 1000,
							       a + (sign == '+' ? b : -b) * i),
						 0);
		} else {
			assert_int_equal(window_append(st->ws, s, t * 1000, strtod(tok, NULL)), 0);
			t += step_s;
		}
	}
	free(copy);
}

/* Renders a result as "x{a="1"} 2; {b="3"} 4", "scalar 5" or "error: ...". */
static char *eval_at(struct store *st, const char *text, int64_t t_s)
{
	static char out[4096];
	char *error = NULL;
	struct expr *e = expr_parse(text, NULL, &error);
	struct expr_result r;
	size_t n = 0;

	if (e == NULL)
		fail_msg("%s: %s", text, error);
	if (expr_eval(e, &st->src, t_s * 1000, &r) < 0) {
		snprintf(out, sizeof(out), "error: %s", r.error);
	} else if (r.type == EXPR_TYPE_SCALAR) {
		snprintf(out, sizeof(out), "scalar %.10g", r.scalar);
	} else {
		out[0] = '\0';
		for (size_t i = 0; i < r.count; i++) {
			const struct expr_element *el = &r.elements[i];
			const char *name = "";
			bool first = true;

			for (size_t k = 0; k < el->label_count; k++)
				if (strcmp(el->labels[k].name, "__name__") == 0)
					name = el->labels[k].value;
			n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s{", i ? "; " : "",
					      name);
			for (size_t k = 0; k < el->label_count; k++) {
				if (strcmp(el->labels[k].name, "__name__") == 0)
					continue;
				n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s=\"%s\"",
						      first ? "" : ", ", el->labels[k].name,
						      el->labels[k].value);
				first = false;
			}
			n += (size_t)snprintf(out + n, sizeof(out) - n, "} %.10g", el->value);
		}
	}
	expr_result_free(&r);
	expr_free(e);
	return out;
}

struct eval_case {
	const char *expr;
	int64_t t_s;
	const char *expected;
};

static void run_cases(struct store *st, const struct eval_case *cases, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const char *got = eval_at(st, cases[i].expr, cases[i].t_s);

		if (strcmp(got, cases[i].expected) != 0)
			fail_msg("%s at %llds:\n got      %s\n expected %s", cases[i].expr,
				 (long long)cases[i].t_s, got, cases[i].expected);
	}
}

#define RUN(st, cases) run_cases(st, cases, sizeof(cases) / sizeof(cases[0]))

static void lookback_finds_latest_sample(void **state)
{
	static const struct eval_case cases[] = {
	    {"x", 0, "x{} 1"},   {"x", 59, "x{} 1"},           {"x", 60, "x{} 2"},
	    {"x", 360, "x{} 2"}, /* the lookback includes t - 5m */
	    {"x", 361, ""},      {"x offset 1m", 60, "x{} 1"}, {"x offset 1m", 59, ""},
	};

	load(*state, "x", 60, "1 2");
	RUN(*state, cases);
}

static void stale_marker_ends_series(void **state)
{
	static const struct eval_case cases[] = {
	    {"x", 60, "x{} 2"},
	    {"x", 119, "x{} 2"},
	    {"x", 120, ""},
	    {"x", 179, ""},
	    {"x", 180, "x{} 4"},
	    {"count_over_time(x[5m])", 180, "{} 3"},
	    {"absent(x)", 150, "{} 1"},
	};

	load(*state, "x", 60, "1 2 stale 4");
	RUN(*state, cases);
}

static void gaps_within_lookback_bridged(void **state)
{
	static const struct eval_case cases[] = {
	    {"x", 240, "x{} 1"},
	    {"x", 300, "x{} 1"},
	    {"x", 360, "x{} 7"},
	    {"count_over_time(x[10m])", 360, "{} 2"},
	};

	load(*state, "x", 60, "1 _ _ _ _ _ 7");
	RUN(*state, cases);
}

static void nan_propagates_and_fails_comparisons(void **state)
{
	static const struct eval_case cases[] = {
	    {"x", 0, "x{job=\"a\"} nan; x{job=\"b\"} 1"},
	    {"x + 1", 0, "{job=\"a\"} nan; {job=\"b\"} 2"},
	    {"x > 0", 0, "x{job=\"b\"} 1"},
	    {"x == x", 0, "x{job=\"b\"} 1"},
	    {"x > bool 0", 0, "{job=\"a\"} 0; {job=\"b\"} 1"},
	    {"sum(x)", 0, "{} nan"},
	    {"min(x)", 0, "{} 1"},
	    {"max(x)", 0, "{} 1"},
	    {"count(x)", 0, "{} 2"},
	    {"clamp_min(x, 5)", 0, "{job=\"a\"} nan; {job=\"b\"} 5"},
	    {"topk(1, x)", 0, "x{job=\"b\"} 1"},
	    {"bottomk(1, x)", 0, "x{job=\"b\"} 1"},
	    {"avg_over_time(x[1m])", 0, "{job=\"a\"} nan; {job=\"b\"} 1"},
	};

	load(*state, "x{job=\"a\"}", 60, "NaN");
	load(*state, "x{job=\"b\"}", 60, "1");
	RUN(*state, cases);
}

static void rate_extrapolates_like_prometheus(void **state)
{
	static const struct eval_case cases[] = {
	    /* Samples 50..100 at 300..600 s cover [300, 600] exactly: 50 in 300 s. */
	    {"increase(c[5m])", 600, "{} 50"},
	    {"rate(c[5m])", 600, "{} 0.1666666667"},
	    /* [330, 630] holds 60..100 at 360..600: 40 over 240 s, stretched by 30 s at
	     * each end (less than 1.1 intervals): 40 * 300 / 240 = 50. */
	    {"increase(c[5m])", 630, "{} 50"},
	    /* [0, 300] holds 0..50: sampled over 300 s. */
	    {"increase(c[5m])", 300, "{} 50"},
	    /* [400, 700] holds 70..100 at 420..600: 30 over 180 s, +20 s at the start,
	     * +30 s (half an interval) at the end, since 100 s > 66 s: 30 * 230 / 180. */
	    {"increase(c[5m])", 700, "{} 38.33333333"},
	    {"rate(c[5m])", 700, "{} 0.1277777778"},
	    /* irate: the last two samples, 10 in 60 s. */
	    {"irate(c[5m])", 600, "{} 0.1666666667"},
	    /* One sample is not enough. */
	    {"rate(c[1m])", 630, ""},
	    {"rate(c[5m])", 0, ""},
	};

	load(*state, "c", 60, "0+10x10");
	RUN(*state, cases);
}

static void rate_handles_counter_reset(void **state)
{
	static const struct eval_case cases[] = {
	    /* 0 10 20 5 15: 15 - 0 plus 20 lost at the reset = 35. The range [-60, 240]
	     * starts 60 s before the first sample, but a counter is not extrapolated below
	     * zero, and the first sample is 0: no stretch at the start. */
	    {"increase(c[5m])", 240, "{} 35"},
	    {"rate(c[5m])", 240, "{} 0.1166666667"},
	    /* After the reset the counter counted 5 from 0 in 60 s. */
	    {"irate(c[5m])", 180, "{} 0.08333333333"},
	    {"irate(c[5m])", 240, "{} 0.1666666667"},
	    /* delta does not know counters: 15 - 0, stretched by the 60 s to the range
	     * start (within 1.1 intervals): 15 * 300 / 240. */
	    {"delta(c[5m])", 240, "{} 18.75"},
	};

	load(*state, "c", 60, "0 10 20 5 15");
	RUN(*state, cases);
}

static void rate_stops_extrapolation_at_zero(void **state)
{
	static const struct eval_case cases[] = {
	    /* 100 110 120 at 0..120 s, range [-180, 120]: 20 over 120 s; zero would be
	     * reached 600 s before the first sample, farther than 1.1 intervals, so half
	     * an interval is added: 20 * 150 / 120 = 25. */
	    {"increase(c[5m])", 120, "{} 25"},
	    /* 5 10 15: zero lies 60 s before the first sample, less than the 180 s to the
	     * range start and within 1.1 intervals: 10 * 180 / 120 = 15. */
	    {"increase(d[5m])", 120, "{} 15"},
	};

	load(*state, "c", 60, "100 110 120");
	load(*state, "d", 60, "5 10 15");
	RUN(*state, cases);
}

static void delta_extrapolates_gauges(void **state)
{
	static const struct eval_case cases[] = {
	    {"delta(g[2m])", 120, "{} 10"},
	    /* [-180, 120]: 180 s before the first sample, more than 1.1 intervals: +30 s. */
	    {"delta(g[5m])", 120, "{} 12.5"},
	    /* [-240, 60]: -5 over 60 s, +30 s at the start: -5 * 90 / 60. */
	    {"delta(g[5m])", 60, "{} -7.5"},
	};

	load(*state, "g", 60, "10 5 20");
	RUN(*state, cases);
}

static void over_time_functions(void **state)
{
	static const struct eval_case cases[] = {
	    {"avg_over_time(g[5m])", 120, "{} 3"},
	    {"min_over_time(g[5m])", 120, "{} 1"},
	    {"max_over_time(g[5m])", 120, "{} 5"},
	    {"sum_over_time(g[5m])", 120, "{} 9"},
	    {"count_over_time(g[5m])", 120, "{} 3"},
	    {"last_over_time(g[5m])", 120, "g{} 3"},
	    {"quantile_over_time(0.5, g[5m])", 120, "{} 3"},
	    {"quantile_over_time(0.9, g[5m])", 120, "{} 4.6"},
	    {"quantile_over_time(0, g[5m])", 120, "{} 1"},
	    {"quantile_over_time(2, g[5m])", 120, "{} inf"},
	    {"quantile_over_time(-1, g[5m])", 120, "{} -inf"},
	    {"max_over_time(g[1m])", 120, "{} 5"},
	    {"max_over_time(g[59s])", 120, "{} 3"},
	    {"absent_over_time(g[5m])", 120, ""},
	    {"absent_over_time(g[1m])", 1000, "{} 1"},
	    {"absent_over_time(nothing{job=\"a\"}[1m])", 0, "{job=\"a\"} 1"},
	};

	load(*state, "g", 60, "1 5 3");
	RUN(*state, cases);
}

static void operators_and_names(void **state)
{
	static const struct eval_case cases[] = {
	    {"a", 0, "a{job=\"x\"} 10; a{job=\"y\"} 20"},
	    {"a * 2", 0, "{job=\"x\"} 20; {job=\"y\"} 40"},
	    {"2 - a", 0, "{job=\"x\"} -8; {job=\"y\"} -18"},
	    {"a % 3", 0, "{job=\"x\"} 1; {job=\"y\"} 2"},
	    {"a ^ 2", 0, "{job=\"x\"} 100; {job=\"y\"} 400"},
	    {"a / 0", 0, "{job=\"x\"} inf; {job=\"y\"} inf"},
	    {"-a", 0, "{job=\"x\"} -10; {job=\"y\"} -20"},
	    {"a > 15", 0, "a{job=\"y\"} 20"},
	    {"25 > a", 0, "a{job=\"x\"} 10; a{job=\"y\"} 20"},
	    {"a > bool 15", 0, "{job=\"x\"} 0; {job=\"y\"} 1"},
	    {"a == 10", 0, "a{job=\"x\"} 10"},
	    {"a != 10", 0, "a{job=\"y\"} 20"},
	    {"a <= 10", 0, "a{job=\"x\"} 10"},
	    {"a >= 20", 0, "a{job=\"y\"} 20"},
	    {"a < 20", 0, "a{job=\"x\"} 10"},
	    {"1 < bool 2", 0, "scalar 1"},
	    {"2 ^ 3 ^ 2", 0, "scalar 512"},
	    {"-2 ^ 2", 0, "scalar -4"},
	    {"time()", 100, "scalar 100"},
	    {"time() - a", 30, "{job=\"x\"} 20; {job=\"y\"} 10"},
	    {"abs(a - 15)", 0, "{job=\"x\"} 5; {job=\"y\"} 5"},
	    {"clamp_max(a, 15)", 0, "{job=\"x\"} 10; {job=\"y\"} 15"},
	    {"clamp_min(a, 15)", 0, "{job=\"x\"} 15; {job=\"y\"} 20"},
	    {"{__name__=~\"a|b\", job=\"x\"}", 0, "a{job=\"x\"} 10; b{job=\"x\"} 1"},
	    {"a{job!=\"x\"}", 0, "a{job=\"y\"} 20"},
	    {"a{job=~\"x|z\"}", 0, "a{job=\"x\"} 10"},
	    {"a{job!~\"x\"}", 0, "a{job=\"y\"} 20"},
	    {"a{missing=\"\"}", 0, "a{job=\"x\"} 10; a{job=\"y\"} 20"},
	    {"a{missing!=\"\"}", 0, ""},
	    {"abs({__name__=~\"a|b\", job=\"x\"})", 0,
	     "error: the result has more than one series with labels {job=\"x\"}, because the "
	     "metric name was dropped from series that differed only by it"},
	};

	load(*state, "a{job=\"x\"}", 60, "10");
	load(*state, "a{job=\"y\"}", 60, "20");
	load(*state, "b{job=\"x\"}", 60, "1");
	RUN(*state, cases);
}

static void vector_matching_one_to_one(void **state)
{
	static const struct eval_case cases[] = {
	    {"errors / requests", 0, "{job=\"a\", path=\"/\"} 0.1; {job=\"b\", path=\"/\"} 0.5"},
	    {"errors > requests * 0.2", 0, "errors{job=\"b\", path=\"/\"} 5"},
	    {"errors > bool requests * 0.2", 0,
	     "{job=\"a\", path=\"/\"} 0; {job=\"b\", path=\"/\"} 1"},
	    {"errors / on(job) requests", 0, "{job=\"a\"} 0.1; {job=\"b\"} 0.5"},
	    {"errors / ignoring(path) requests", 0, "{job=\"a\"} 0.1; {job=\"b\"} 0.5"},
	    {"errors + on(job) sum by (job) (up)", 0, "{job=\"a\"} 3; {job=\"b\"} 6"},
	    {"errors + up", 0, ""},
	    {"up + on(job) errors", 0,
	     "error: left side of \"+\" has more than one series matching {job=\"a\"}; "
	     "many-to-one matching (group_left/group_right) is not supported: narrow the match "
	     "with on(...) or ignoring(...), or aggregate that side"},
	    {"errors + on(job) up", 0,
	     "error: right side of \"+\" has more than one series matching {job=\"a\"} "
	     "(up{instance=\"1\", job=\"a\"} and up{instance=\"2\", job=\"a\"}); one-to-one "
	     "matching needs unique series on each side: narrow the match with on(...) or "
	     "ignoring(...), or aggregate that side"},
	    /* A comparison that filters the extra left series leaves a one-to-one match. */
	    {"up > on(job) errors", 0, ""},
	    {"up and on(job) errors", 0,
	     "up{instance=\"1\", job=\"a\"} 1; up{instance=\"1\", job=\"b\"} 1; "
	     "up{instance=\"2\", job=\"a\"} 1"},
	    {"up unless on(job) errors{job=\"a\"}", 0, "up{instance=\"1\", job=\"b\"} 1"},
	    {"up and errors", 0, ""},
	    {"errors or requests", 0,
	     "errors{job=\"a\", path=\"/\"} 1; errors{job=\"b\", path=\"/\"} 5"},
	    {"errors{job=\"a\"} or ignoring(path) requests", 0,
	     "errors{job=\"a\", path=\"/\"} 1; requests{job=\"b\", path=\"/\"} 10"},
	    {"errors unless requests", 0, ""},
	    {"errors unless on() nothing", 0,
	     "errors{job=\"a\", path=\"/\"} 1; errors{job=\"b\", path=\"/\"} 5"},
	};

	load(*state, "errors{job=\"a\", path=\"/\"}", 60, "1");
	load(*state, "errors{job=\"b\", path=\"/\"}", 60, "5");
	load(*state, "requests{job=\"a\", path=\"/\"}", 60, "10");
	load(*state, "requests{job=\"b\", path=\"/\"}", 60, "10");
	load(*state, "up{job=\"a\", instance=\"1\"}", 60, "1");
	load(*state, "up{job=\"a\", instance=\"2\"}", 60, "1");
	load(*state, "up{job=\"b\", instance=\"1\"}", 60, "1");
	RUN(*state, cases);
}

static void aggregation_grouping(void **state)
{
	static const struct eval_case cases[] = {
	    {"sum(cpu)", 0, "{} 21"},
	    {"sum by (job) (cpu)", 0, "{job=\"a\"} 6; {job=\"b\"} 15"},
	    {"sum(cpu) by (job)", 0, "{job=\"a\"} 6; {job=\"b\"} 15"},
	    {"sum by (__name__) (cpu)", 0, "cpu{} 21"},
	    {"sum without (mode) (cpu)", 0,
	     "{instance=\"1\", job=\"a\"} 3; {instance=\"1\", job=\"b\"} 15; "
	     "{instance=\"2\", job=\"a\"} 3"},
	    {"avg by (job) (cpu)", 0, "{job=\"a\"} 2; {job=\"b\"} 5"},
	    {"min by (job) (cpu)", 0, "{job=\"a\"} 1; {job=\"b\"} 4"},
	    {"max by (job) (cpu)", 0, "{job=\"a\"} 3; {job=\"b\"} 6"},
	    {"count by (job) (cpu)", 0, "{job=\"a\"} 3; {job=\"b\"} 3"},
	    {"count by (nothing) (cpu)", 0, "{} 6"},
	    {"sum by (job) (cpu) > 10", 0, "{job=\"b\"} 15"},
	    {"sum(nothing)", 0, ""},
	    {"topk(2, cpu)", 0,
	     "cpu{instance=\"1\", job=\"b\", mode=\"system\"} 5; "
	     "cpu{instance=\"1\", job=\"b\", mode=\"user\"} 6"},
	    {"topk by (job) (1, cpu)", 0,
	     "cpu{instance=\"1\", job=\"b\", mode=\"user\"} 6; "
	     "cpu{instance=\"2\", job=\"a\", mode=\"user\"} 3"},
	    {"bottomk(1, cpu)", 0, "cpu{instance=\"1\", job=\"a\", mode=\"system\"} 1"},
	    {"topk(0, cpu)", 0, ""},
	    {"topk(100, cpu{job=\"a\"})", 0,
	     "cpu{instance=\"1\", job=\"a\", mode=\"system\"} 1; "
	     "cpu{instance=\"1\", job=\"a\", mode=\"user\"} 2; "
	     "cpu{instance=\"2\", job=\"a\", mode=\"user\"} 3"},
	    {"topk(NaN, cpu)", 0, "error: k of topk() is NaN; it must be a number"},
	};

	load(*state, "cpu{job=\"a\", instance=\"1\", mode=\"system\"}", 60, "1");
	load(*state, "cpu{job=\"a\", instance=\"1\", mode=\"user\"}", 60, "2");
	load(*state, "cpu{job=\"a\", instance=\"2\", mode=\"user\"}", 60, "3");
	load(*state, "cpu{job=\"b\", instance=\"1\", mode=\"idle\"}", 60, "4");
	load(*state, "cpu{job=\"b\", instance=\"1\", mode=\"system\"}", 60, "5");
	load(*state, "cpu{job=\"b\", instance=\"1\", mode=\"user\"}", 60, "6");
	RUN(*state, cases);
}

static void topk_ties_break_by_labels(void **state)
{
	static const struct eval_case cases[] = {
	    {"topk(2, t)", 0, "t{i=\"a\"} 5; t{i=\"b\"} 5"},
	    {"topk(1, t)", 0, "t{i=\"a\"} 5"},
	    {"bottomk(1, t)", 0, "t{i=\"d\"} 1"},
	    {"bottomk(2, t)", 0, "t{i=\"a\"} 5; t{i=\"d\"} 1"},
	};

	load(*state, "t{i=\"c\"}", 60, "5");
	load(*state, "t{i=\"a\"}", 60, "5");
	load(*state, "t{i=\"b\"}", 60, "5");
	load(*state, "t{i=\"d\"}", 60, "1");
	RUN(*state, cases);
}

static void absent_takes_equality_labels(void **state)
{
	static const struct eval_case cases[] = {
	    {"absent(up)", 0, ""},
	    {"absent(up{job=\"b\"})", 0, "{job=\"b\"} 1"},
	    {"absent(nothing)", 0, "{} 1"},
	    {"absent(nothing{job=\"a\", env=~\"p.*\", zone=\"z\", x!=\"y\"})", 0,
	     "{job=\"a\", zone=\"z\"} 1"},
	    {"absent(nothing{job=\"a\", job=\"b\"})", 0, "{} 1"},
	    {"absent(sum(nothing))", 0, "{} 1"},
	    {"absent(up)", 1000, "{} 1"},
	};

	load(*state, "up{job=\"a\"}", 60, "1");
	RUN(*state, cases);
}

static void results_sorted_by_labels(void **state)
{
	static const struct eval_case cases[] = {
	    {"s", 0, "s{k=\"a\"} 3; s{k=\"b\"} 2; s{k=\"c\"} 1"},
	    {"s * 1", 0, "{k=\"a\"} 3; {k=\"b\"} 2; {k=\"c\"} 1"},
	};

	load(*state, "s{k=\"c\"}", 60, "1");
	load(*state, "s{k=\"b\"}", 60, "2");
	load(*state, "s{k=\"a\"}", 60, "3");
	RUN(*state, cases);
}

static void range_result_rejected_at_evaluation(void **state)
{
	static const struct eval_case cases[] = {
	    {"s[5m]", 0,
	     "error: the expression is a range vector; a rule needs a scalar or an instant "
	     "vector, so apply a function such as rate() to it"},
	};

	load(*state, "s", 60, "1");
	RUN(*state, cases);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST(lookback_finds_latest_sample),
	    TEST(stale_marker_ends_series),
	    TEST(gaps_within_lookback_bridged),
	    TEST(nan_propagates_and_fails_comparisons),
	    TEST(rate_extrapolates_like_prometheus),
	    TEST(rate_handles_counter_reset),
	    TEST(rate_stops_extrapolation_at_zero),
	    TEST(delta_extrapolates_gauges),
	    TEST(over_time_functions),
	    TEST(operators_and_names),
	    TEST(vector_matching_one_to_one),
	    TEST(aggregation_grouping),
	    TEST(topk_ties_break_by_labels),
	    TEST(absent_takes_equality_labels),
	    TEST(results_sorted_by_labels),
	    TEST(range_result_rejected_at_evaluation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
