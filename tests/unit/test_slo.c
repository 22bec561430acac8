/*
 * Unit tests of SLO accounting on a virtual clock: window sums, burn rates, the error
 * budget and the multiwindow alert conditions, with every expected value computed by
 * hand in the comments. Counter SLIs read real series through the in-memory sample
 * windows, as in the daemon; persistence goes through a real state database.
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

#include <ftw.h>
#include <sys/stat.h>

#include "collector/slo.h"
#include "collector/statedb.h"
#include "collector/window.h"

#define MINUTE 60000LL
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)
/* A Unix minute in November 2023: bucket numbers look like the daemon's. */
#define BASE_MINUTE 28333333LL
#define BASE_MS     (BASE_MINUTE * MINUTE)
#define EPSILON     1e-9

/* Fails with both values and the caller's line when they differ by more than tolerance. */
#define assert_near(actual, expected, tolerance)                                                   \
	assert_near_at((actual), (expected), (tolerance), __FILE__, __LINE__)

static void assert_near_at(double actual, double expected, double tolerance, const char *file,
			   int line)
{
	if (!(fabs(actual - expected) <= tolerance))
		fail_msg("%s:%d: %.17g, expected %.17g within %g", file, line, actual, expected,
			 tolerance);
}

struct fixture {
	struct series_registry *reg;
	struct window_store *ws;
	struct expr_source src;
	struct slo_config cfg;
	struct slo_state *st;
	char dir[64];
	struct statedb *db;
};

static const struct metric_desc counter_desc = {NULL, "test counter", METRIC_COUNTER};

static struct expr *parse(const char *text)
{
	char *error = NULL;
	struct expr *e = expr_parse(text, NULL, &error);

	if (e == NULL)
		fail_msg("%s: %s", text, error);
	return e;
}

/*
 * An SLO named "api" with objective 99.9 % over 30 days and two alert pairs: page 14.4x
 * over 1h and 5m, page 6x over 6h and 30m.
 */
static void config_init(struct slo_config *c, enum slo_sli_kind kind)
{
	memset(c, 0, sizeof(*c));
	c->name = strdup("api");
	c->location = strdup("slo.yml:1:3");
	c->objective = 0.999;
	c->period_ms = 30 * DAY;
	c->kind = kind;
	c->alert_count = 2;
	c->alerts = calloc(2, sizeof(*c->alerts));
	c->alerts[0] = (struct slo_alert_window){strdup("page"), HOUR, 5 * MINUTE, 14.4};
	c->alerts[1] = (struct slo_alert_window){strdup("page"), 6 * HOUR, 30 * MINUTE, 6};
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->reg = series_registry_new();
	f->ws = window_store_new(10 * MINUTE, 2000);
	window_source(f->ws, f->reg, &f->src);
	*state = f;
	return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	slo_state_free(f->st);
	slo_config_free(&f->cfg);
	window_store_free(f->ws);
	series_registry_free(f->reg);
	statedb_close(f->db);
	if (f->dir[0] != '\0')
		nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void open_db(struct fixture *f)
{
	char *error = NULL;

	if (f->dir[0] == '\0') {
		snprintf(f->dir, sizeof f->dir, "/tmp/test_slo.XXXXXX");
		assert_non_null(mkdtemp(f->dir));
	}
	f->db = statedb_open(f->dir, &error);
	if (f->db == NULL)
		fail_msg("statedb_open: %s", error);
}

static struct series *counter(struct fixture *f, const char *name, const char *label,
			      const char *value)
{
	struct metric_desc desc = counter_desc;
	struct label l = {label, value};
	struct series *s;

	desc.name = name;
	s = series_intern(f->reg, &desc, label != NULL ? &l : NULL, label != NULL ? 1 : 0);
	assert_non_null(s);
	return s;
}

static void append(struct fixture *f, struct series *s, int64_t time_ms, double value)
{
	assert_int_equal(window_append(f->ws, s, time_ms, value), 0);
}

static void observe(struct fixture *f, int64_t now_ms)
{
	char *error = NULL;

	if (slo_observe(f->st, &f->src, now_ms, f->db, &error) < 0)
		fail_msg("slo_observe: %s", error);
	assert_null(error);
}

/* Good and total events of the single minute `minute` (relative to BASE_MINUTE). */
static void minute_events(const struct fixture *f, int64_t minute, double *good, double *total)
{
	slo_window_events(f->st, BASE_MS + minute * MINUTE, MINUTE, good, total);
}

static void default_alerts_workbook(void **state)
{
	struct slo_alert_window *alerts = NULL;
	size_t count = slo_default_alerts(&alerts);

	(void)state;
	assert_int_equal(count, 4);
	assert_string_equal(alerts[0].severity, "page");
	assert_int_equal(alerts[0].long_ms, HOUR);
	assert_int_equal(alerts[0].short_ms, 5 * MINUTE);
	assert_true(alerts[0].factor == 14.4);
	assert_string_equal(alerts[1].severity, "page");
	assert_int_equal(alerts[1].long_ms, 6 * HOUR);
	assert_int_equal(alerts[1].short_ms, 30 * MINUTE);
	assert_true(alerts[1].factor == 6);
	assert_string_equal(alerts[2].severity, "ticket");
	assert_int_equal(alerts[2].long_ms, DAY);
	assert_int_equal(alerts[2].short_ms, 2 * HOUR);
	assert_true(alerts[2].factor == 3);
	assert_string_equal(alerts[3].severity, "ticket");
	assert_int_equal(alerts[3].long_ms, 3 * DAY);
	assert_int_equal(alerts[3].short_ms, 6 * HOUR);
	assert_true(alerts[3].factor == 1);
	for (size_t i = 0; i < count; i++)
		free(alerts[i].severity);
	free(alerts);
}

/*
 * Objective 99.9 % (budget 0.001), period 30 days. In the hour ending now: 3600 requests
 * and 18 errors, all in its first 50 minutes; the last 10 minutes have no traffic. In
 * the period so far: 1,000,000 requests and 400 errors.
 */
static void workbook_case_idle_minutes(void **state)
{
	struct fixture *f = *state;
	const int64_t now = BASE_MS + 30 * 1000; /* inside minute BASE_MINUTE */
	double good;
	double total;
	double value;

	config_init(&f->cfg, SLO_SLI_GOOD_TOTAL);
	f->st = slo_state_new(&f->cfg);
	/* The hour (now - 1h, now] is minutes BASE-59 .. BASE. Traffic in BASE-59 .. BASE-10:
	 * 50 minutes of 72 requests, one error in each of the first 18. */
	for (int64_t i = 0; i < 50; i++)
		slo_add_events(f->st, BASE_MINUTE - 59 + i, i < 18 ? 71 : 72, 72);
	/* The rest of the period: 996,400 requests with 382 errors, 14 days ago. */
	slo_add_events(f->st, BASE_MINUTE - 14 * 24 * 60, 996400 - 382, 996400);

	slo_window_events(f->st, now, HOUR, &good, &total);
	assert_true(total == 3600);
	assert_true(good == 3582);
	/* Ratio 3582/3600 = 0.995; burn (18/3600)/0.001 = 5.0. */
	assert_true(slo_sli_ratio(f->st, now, HOUR, &value));
	assert_near(value, 0.995, EPSILON);
	assert_true(slo_burn_rate(f->st, now, HOUR, &value));
	assert_near(value, 5.0, EPSILON);

	/* The 5 minutes are idle: no data, never 0, NaN or Inf. */
	slo_window_events(f->st, now, 5 * MINUTE, &good, &total);
	assert_true(total == 0);
	value = -1;
	assert_false(slo_burn_rate(f->st, now, 5 * MINUTE, &value));
	assert_false(slo_sli_ratio(f->st, now, 5 * MINUTE, &value));
	assert_true(value == -1);

	/* So the 14.4x pair is unknown: a firing alert keeps firing. */
	assert_int_equal(slo_alert_condition(f->st, &f->cfg.alerts[0], now), SLO_CONDITION_UNKNOWN);
	/* 6h burn 5 and 30m burn 0 (20 minutes of traffic, no error): below 6x. */
	assert_true(slo_burn_rate(f->st, now, 30 * MINUTE, &value));
	assert_near(value, 0, EPSILON);
	assert_true(slo_burn_rate(f->st, now, 6 * HOUR, &value));
	assert_near(value, 5.0, EPSILON);
	assert_int_equal(slo_alert_condition(f->st, &f->cfg.alerts[1], now), SLO_CONDITION_FALSE);

	/* Budget: 1 - 400 / (1,000,000 * 0.001) = 0.6, the same as before the idle minutes. */
	assert_true(slo_budget_remaining(f->st, now, &value));
	assert_true(isfinite(value));
	assert_near(value, 0.6, EPSILON);
	assert_true(slo_budget_remaining(f->st, now - 10 * MINUTE, &value));
	assert_near(value, 0.6, EPSILON);
}

/* Counters at 1 request/s: req_total(t) = t; errors for the requests of seconds
 * 3600 .. 4199 (minutes 60 to 69): err_total(t) = clamp(t - 3599, 0, 600). */
static double outage_errors(int64_t second)
{
	if (second < 3600)
		return 0;
	if (second > 4199)
		return 600;
	return (double)(second - 3599);
}

/*
 * Observations every minute at t = 60k s put the requests of seconds 60(k-1)+1 .. 60k in
 * bucket k. Errors per bucket: 60 -> 1 (second 3600), 61..69 -> 60, 70 -> 59, others 0.
 * The 14.4x pair needs more than 0.0144 errors per request in both windows:
 *   1h window (buckets k-59..k, 3600 requests): more than 51.84 errors;
 *   5m window (buckets k-4..k, 300 requests): more than 4.32 errors.
 * k = 60: 1 error in each: false. k = 61: 61 in each: true (burn 61/3.6 = 16.94 and
 * 61/0.3 = 203.3). It stays true while the 5m window contains an error bucket: up to
 * k = 74 (buckets 70..74 contain 59 errors). k = 75: the 5m window is clean: false.
 * The 1h burn stays above 14.4 until k = 129 (bucket 70's 59 errors) and is 0 at 130.
 */
static void outage_pages_minute_61_to_74(void **state)
{
	struct fixture *f = *state;
	struct series *req = counter(f, "req_total", "job", "api");
	struct series *err = counter(f, "err_total", "job", "api");
	double value;
	double good;
	double total;

	config_init(&f->cfg, SLO_SLI_ERRORS_TOTAL);
	f->cfg.errors = parse("err_total");
	f->cfg.total = parse("req_total");
	f->st = slo_state_new(&f->cfg);

	for (int64_t k = 0; k <= 140; k++) {
		int64_t now = BASE_MS + k * MINUTE;
		enum slo_condition expected = SLO_CONDITION_FALSE;

		for (int64_t s = k == 0 ? 0 : 60 * (k - 1) + 1; s <= 60 * k; s++) {
			append(f, req, BASE_MS + s * 1000, (double)s);
			append(f, err, BASE_MS + s * 1000, outage_errors(s));
		}
		observe(f, now);

		if (k == 0)
			expected = SLO_CONDITION_UNKNOWN; /* the first observation adds nothing */
		else if (k >= 61 && k <= 74)
			expected = SLO_CONDITION_TRUE;
		if (slo_alert_condition(f->st, &f->cfg.alerts[0], now) != expected)
			fail_msg("minute %lld: condition %d, expected %d", (long long)k,
				 slo_alert_condition(f->st, &f->cfg.alerts[0], now), expected);

		if (k >= 1) {
			assert_true(slo_burn_rate(f->st, now, HOUR, &value));
			if ((k >= 61 && k <= 129) != (value > 14.4))
				fail_msg("minute %lld: 1h burn rate %g", (long long)k, value);
		}
		if (k == 61) {
			assert_near(value, 61 / 3.6, 1e-6);
			assert_true(slo_burn_rate(f->st, now, 5 * MINUTE, &value));
			assert_near(value, 61 / 0.3, 1e-6);
		}
		if (k == 130)
			assert_near(value, 0, EPSILON);
	}

	minute_events(f, 60, &good, &total);
	assert_true(total == 60 && good == 59);
	minute_events(f, 65, &good, &total);
	assert_true(total == 60 && good == 0);
	minute_events(f, 70, &good, &total);
	assert_true(total == 60 && good == 1);
	/* Budget after 140 minutes: 1 - 600 / (8400 * 0.001) = 1 - 71.43 = -70.43. */
	assert_true(slo_budget_remaining(f->st, BASE_MS + 140 * MINUTE, &value));
	assert_near(value, 1 - 600 / 8.4, 1e-6);
}

/*
 * The three slower pairs of the workbook's defaults, on an SLO with objective 99.9 %
 * (budget 0.001) and a steady 1000 requests in every minute. A window of W minutes then
 * contains 1000 W requests, and its burn rate exceeds a factor f exactly when it contains
 * more than f * W errors (errors / (1000 W) / 0.001 > f).
 *
 *   pair            long window          short window
 *   page 14.4x      1h:  > 864 errors     5m:  > 72 errors
 *   page 6x         6h:  > 2160 errors    30m: > 180 errors
 *   ticket 3x       1d:  > 4320 errors    2h:  > 360 errors
 *   ticket 1x       3d:  > 4320 errors    6h:  > 360 errors
 *
 * The outage: 11 errors in each of minutes 1 .. 400 (1.1 % of requests, burn 11). An
 * earlier incident, 11 errors in each of minutes -2000 .. -1901 (1100 errors), lies inside
 * every 3d window below but outside every 1d window. No window count equals a threshold,
 * so rounding in the burn rate cannot move a transition.
 *
 * With n error minutes of the outage in a window, minute k fires and clears as follows:
 *   14.4x: the 5m window contains at most 5 * 11 = 55 errors, never above 72: never fires.
 *   6x:    fires when 11 n > 2160 in 6h (n >= 197) with 11 n > 180 in 30m (n >= 17):
 *          the 6h window contains n = k error minutes, so it fires at k = 197.
 *          After minute 400 the 30m window contains n = 400 - k + 30, and 11 n > 180
 *          up to k = 413 (n = 17), so it clears at k = 414, while the 6h window still contains
 *          11 * 346 = 3806 errors.
 *   3x:    fires when 11 n > 4320 in 1d (n >= 393), the 2h window being full: k = 393.
 *          The 2h window contains n = 400 - k + 120 after minute 400; 11 n > 360 needs
 *          n >= 33, up to k = 487: it clears at k = 488.
 *   1x:    the 3d window contains 1100 + 11 k errors; 1100 + 11 k > 4320 needs k >= 293, and
 *          the 6h window contains k >= 33 error minutes: fires at k = 293, a hundred minutes
 *          before the 3x pair because the 3d window still counts the earlier incident.
 *          The 6h window contains n = 400 - k + 360 after minute 400, n >= 33 up to k = 727:
 *          it clears at k = 728, while the 3d window contains 1100 + 4400 = 5500 errors.
 */
static void slower_pairs_fire_and_clear(void **state)
{
	static const struct {
		int64_t fires, clears; /* minutes; -1: never */
	} expected[4] = {{-1, -1}, {197, 414}, {393, 488}, {293, 728}};
	struct fixture *f = *state;
	int64_t fired[4] = {-1, -1, -1, -1};
	int64_t cleared[4] = {-1, -1, -1, -1};

	config_init(&f->cfg, SLO_SLI_GOOD_TOTAL);
	for (size_t i = 0; i < f->cfg.alert_count; i++)
		free(f->cfg.alerts[i].severity);
	free(f->cfg.alerts);
	f->cfg.alert_count = slo_default_alerts(&f->cfg.alerts);
	assert_int_equal(f->cfg.alert_count, 4);
	f->st = slo_state_new(&f->cfg);

	/* Three days of steady traffic before the outage, with the earlier incident. */
	for (int64_t m = -3 * 24 * 60; m <= 0; m++)
		slo_add_events(f->st, BASE_MINUTE + m, m >= -2000 && m <= -1901 ? 989 : 1000, 1000);

	for (int64_t k = 0; k <= 800; k++) {
		int64_t now = BASE_MS + k * MINUTE;

		if (k > 0)
			slo_add_events(f->st, BASE_MINUTE + k, k <= 400 ? 989 : 1000, 1000);
		for (size_t p = 0; p < 4; p++) {
			enum slo_condition c = slo_alert_condition(f->st, &f->cfg.alerts[p], now);

			assert_int_not_equal(c, SLO_CONDITION_UNKNOWN);
			if (c == SLO_CONDITION_TRUE && fired[p] < 0)
				fired[p] = k;
			if (c == SLO_CONDITION_FALSE && fired[p] >= 0 && cleared[p] < 0)
				cleared[p] = k;
			/* Each pair fires once and stays clear afterwards. */
			if (c == SLO_CONDITION_TRUE && cleared[p] >= 0)
				fail_msg("pair %zu fires again at minute %lld", p, (long long)k);
		}
	}
	for (size_t p = 0; p < 4; p++) {
		if (fired[p] != expected[p].fires || cleared[p] != expected[p].clears)
			fail_msg(
			    "pair %zu (%gx over %lld/%lld min): fired at minute %lld, cleared at "
			    "%lld; expected %lld and %lld",
			    p, f->cfg.alerts[p].factor,
			    (long long)(f->cfg.alerts[p].long_ms / MINUTE),
			    (long long)(f->cfg.alerts[p].short_ms / MINUTE), (long long)fired[p],
			    (long long)cleared[p], (long long)expected[p].fires,
			    (long long)expected[p].clears);
	}
}

/* Ten minutes of traffic, then twenty with the counters standing still. */
static void zero_traffic_is_no_data(void **state)
{
	struct fixture *f = *state;
	struct series *req = counter(f, "req_total", NULL, NULL);
	int64_t now = BASE_MS + 30 * MINUTE;
	double value;
	double budget;

	config_init(&f->cfg, SLO_SLI_ERRORS_TOTAL);
	f->cfg.errors = parse("err_total"); /* never present: no error yet */
	f->cfg.total = parse("sum(req_total)");
	f->st = slo_state_new(&f->cfg);

	/* Before any event every value is "no data". */
	assert_false(slo_budget_remaining(f->st, BASE_MS, &value));
	assert_int_equal(slo_alert_condition(f->st, &f->cfg.alerts[0], BASE_MS),
			 SLO_CONDITION_UNKNOWN);

	for (int64_t k = 0; k <= 30; k++) {
		append(f, req, BASE_MS + k * MINUTE, k <= 10 ? 60.0 * k : 600);
		observe(f, BASE_MS + k * MINUTE);
		if (k == 10)
			assert_true(slo_budget_remaining(f->st, BASE_MS + k * MINUTE, &budget));
	}
	assert_false(slo_burn_rate(f->st, now, 5 * MINUTE, &value));
	assert_false(slo_burn_rate(f->st, now, 15 * MINUTE, &value));
	assert_int_equal(slo_alert_condition(f->st, &f->cfg.alerts[0], now), SLO_CONDITION_UNKNOWN);
	/* The hour still contains the 600 good requests of minutes 1..10. */
	assert_true(slo_sli_ratio(f->st, now, HOUR, &value));
	assert_near(value, 1, EPSILON);
	assert_true(slo_burn_rate(f->st, now, HOUR, &value));
	assert_near(value, 0, EPSILON);
	assert_near(budget, 1, EPSILON);
	assert_true(slo_budget_remaining(f->st, now, &value));
	assert_near(value, budget, EPSILON);
}

/* A counter that drops restarted: its new value is the increase. */
static void counter_reset_counts_new_value(void **state)
{
	struct fixture *f = *state;
	struct series *req = counter(f, "req_total", NULL, NULL);
	struct series *ok = counter(f, "good_total", NULL, NULL);
	const double totals[] = {100, 160, 10, 30};
	const double goods[] = {90, 140, 9, 29};
	double good;
	double total;

	config_init(&f->cfg, SLO_SLI_GOOD_TOTAL);
	f->cfg.good = parse("sum(good_total)");
	f->cfg.total = parse("sum(req_total)");
	f->st = slo_state_new(&f->cfg);
	for (int64_t k = 0; k < 4; k++) {
		append(f, req, BASE_MS + (k + 1) * MINUTE, totals[k]);
		append(f, ok, BASE_MS + (k + 1) * MINUTE, goods[k]);
		observe(f, BASE_MS + (k + 1) * MINUTE);
	}
	/* Minute 1 records; minute 2 +60/+50; minute 3 (reset) +10/+9; minute 4 +20/+20. */
	minute_events(f, 1, &good, &total);
	assert_true(total == 0);
	minute_events(f, 2, &good, &total);
	assert_true(total == 60 && good == 50);
	minute_events(f, 3, &good, &total);
	assert_true(total == 10 && good == 9);
	minute_events(f, 4, &good, &total);
	assert_true(total == 20 && good == 20);
	slo_window_events(f->st, BASE_MS + 4 * MINUTE, HOUR, &good, &total);
	assert_true(total == 90 && good == 79);
}

/* A series that vanishes from a summed vector is not a reset of the sum. */
static void vanished_series_is_no_reset(void **state)
{
	struct fixture *f = *state;
	struct series *a = counter(f, "req_total", "instance", "a");
	struct series *b = counter(f, "req_total", "instance", "b");
	double good;
	double total;

	config_init(&f->cfg, SLO_SLI_ERRORS_TOTAL);
	f->cfg.errors = parse("err_total");
	f->cfg.total = parse("req_total");
	f->st = slo_state_new(&f->cfg);

	append(f, a, BASE_MS + 1 * MINUTE, 100);
	append(f, b, BASE_MS + 1 * MINUTE, 1000);
	observe(f, BASE_MS + 1 * MINUTE);
	append(f, a, BASE_MS + 2 * MINUTE, 110);
	append(f, b, BASE_MS + 2 * MINUTE, 1010);
	observe(f, BASE_MS + 2 * MINUTE); /* +20 */
	append(f, a, BASE_MS + 3 * MINUTE, 120);
	window_mark_stale(f->ws, b, BASE_MS + 3 * MINUTE - 1000);
	observe(f, BASE_MS + 3 * MINUTE); /* +10: the sum fell from 1120 to 120 */
	append(f, a, BASE_MS + 4 * MINUTE, 130);
	append(f, b, BASE_MS + 4 * MINUTE, 1030);
	observe(f, BASE_MS + 4 * MINUTE); /* +10 from a, +20 from b's kept reading */

	minute_events(f, 2, &good, &total);
	assert_true(total == 20);
	minute_events(f, 3, &good, &total);
	assert_true(total == 10);
	minute_events(f, 4, &good, &total);
	assert_true(total == 30);
	assert_true(good == 30); /* no error series: every request was good */
}

/* Observe, free, restore from the database: the same numbers, and counting goes on. */
static void restart_restores_buckets_and_readings(void **state)
{
	struct fixture *f = *state;
	struct series *req = counter(f, "req_total", NULL, NULL);
	struct series *err = counter(f, "err_total", NULL, NULL);
	int64_t now = BASE_MS + 5 * MINUTE;
	double good;
	double total;
	double budget;
	double restored;
	char *text;

	open_db(f);
	config_init(&f->cfg, SLO_SLI_ERRORS_TOTAL);
	f->cfg.errors = parse("err_total");
	f->cfg.total = parse("req_total");
	f->st = slo_state_new(&f->cfg);
	for (int64_t k = 0; k <= 5; k++) {
		append(f, req, BASE_MS + k * MINUTE, 100.0 * k);
		append(f, err, BASE_MS + k * MINUTE, (double)k);
		observe(f, BASE_MS + k * MINUTE);
	}
	/* Minutes 1..5: 100 requests and 1 error each. */
	slo_window_events(f->st, now, HOUR, &good, &total);
	assert_true(total == 500 && good == 495);
	assert_true(slo_budget_remaining(f->st, now, &budget));
	assert_near(budget, 1 - 5 / 0.5, EPSILON);
	text = statedb_kv_get(f->db, "slo/api/readings");
	assert_non_null(text);
	free(text);

	slo_state_free(f->st);
	statedb_close(f->db);
	open_db(f);
	f->st = slo_state_new(&f->cfg);
	assert_int_equal(slo_state_restore(f->st, f->db, now), 0);
	slo_window_events(f->st, now, HOUR, &good, &total);
	assert_true(total == 500 && good == 495);
	minute_events(f, 3, &good, &total);
	assert_true(total == 100 && good == 99);
	assert_true(slo_budget_remaining(f->st, now, &restored));
	assert_near(restored, budget, EPSILON);

	/* The restored readings make the next observation count, not only record. */
	append(f, req, BASE_MS + 6 * MINUTE, 600);
	append(f, err, BASE_MS + 6 * MINUTE, 6);
	observe(f, BASE_MS + 6 * MINUTE);
	minute_events(f, 6, &good, &total);
	assert_true(total == 100 && good == 99);

	/* A second restore reads what the database has now, without doubling it. */
	assert_int_equal(slo_state_restore(f->st, f->db, BASE_MS + 6 * MINUTE), 0);
	slo_window_events(f->st, BASE_MS + 6 * MINUTE, HOUR, &good, &total);
	assert_true(total == 600 && good == 594);
}

/* A counter that resets while tocsind is down: the restored reading detects the drop. */
static void restart_after_counter_reset(void **state)
{
	struct fixture *f = *state;
	struct series *req = counter(f, "req_total", NULL, NULL);
	double good;
	double total;

	open_db(f);
	config_init(&f->cfg, SLO_SLI_ERRORS_TOTAL);
	f->cfg.errors = parse("err_total");
	f->cfg.total = parse("req_total");
	f->st = slo_state_new(&f->cfg);
	append(f, req, BASE_MS + 1 * MINUTE, 1000);
	observe(f, BASE_MS + 1 * MINUTE);
	slo_state_free(f->st);

	f->st = slo_state_new(&f->cfg);
	assert_int_equal(slo_state_restore(f->st, f->db, BASE_MS + 2 * MINUTE), 0);
	append(f, req, BASE_MS + 2 * MINUTE, 40);
	observe(f, BASE_MS + 2 * MINUTE);
	minute_events(f, 2, &good, &total);
	assert_true(total == 40 && good == 40);
}

/* Minutes touched by an exclusion leave every sum. */
static void exclusion_minutes_left_out(void **state)
{
	struct fixture *f = *state;
	int64_t now = BASE_MS + 12 * MINUTE;
	double good;
	double total;
	double value;

	config_init(&f->cfg, SLO_SLI_GOOD_TOTAL);
	f->cfg.exclusion_count = 1;
	f->cfg.exclusions = calloc(1, sizeof(*f->cfg.exclusions));
	/* [minute 10 + 30 s, minute 12): minutes 10 and 11. */
	f->cfg.exclusions[0].start_ms = BASE_MS + 10 * MINUTE + 30000;
	f->cfg.exclusions[0].end_ms = BASE_MS + 12 * MINUTE;
	f->st = slo_state_new(&f->cfg);
	for (int64_t m = 9; m <= 12; m++)
		slo_add_events(f->st, BASE_MINUTE + m, 5, 10);
	slo_add_events(f->st, BASE_MINUTE + 11, 0, 1000); /* the maintenance's errors */

	slo_window_events(f->st, now, HOUR, &good, &total);
	assert_true(total == 20 && good == 10);
	assert_true(slo_burn_rate(f->st, now, HOUR, &value));
	assert_near(value, 0.5 / 0.001, 1e-6);
	assert_true(slo_budget_remaining(f->st, now, &value));
	assert_near(value, 1 - 10 / (20 * 0.001), 1e-6);
	/* Only excluded minutes in the window: no data. */
	assert_false(slo_burn_rate(f->st, BASE_MS + 11 * MINUTE, 2 * MINUTE, &value));
	minute_events(f, 12, &good, &total);
	assert_true(total == 10);
}

static void min_events_gates_condition(void **state)
{
	struct fixture *f = *state;
	int64_t now = BASE_MS + 5 * MINUTE;

	config_init(&f->cfg, SLO_SLI_GOOD_TOTAL);
	f->cfg.min_events = 20;
	f->st = slo_state_new(&f->cfg);
	slo_add_events(f->st, BASE_MINUTE + 5, 0, 10); /* burn 1000 in both windows */
	assert_int_equal(slo_alert_condition(f->st, &f->cfg.alerts[0], now), SLO_CONDITION_FALSE);
	f->cfg.min_events = 10;
	assert_int_equal(slo_alert_condition(f->st, &f->cfg.alerts[0], now), SLO_CONDITION_TRUE);
}

static void burn_equal_to_factor_is_false(void **state)
{
	struct fixture *f = *state;
	int64_t now = BASE_MS + 5 * MINUTE;
	double value;

	config_init(&f->cfg, SLO_SLI_GOOD_TOTAL);
	f->cfg.objective = 0.5; /* budget 0.5: exact in binary */
	f->cfg.alerts[0].factor = 1.5;
	f->st = slo_state_new(&f->cfg);
	/* 3 errors in 4 requests: ratio 0.75, burn 0.75 / 0.5 = 1.5 exactly. */
	slo_add_events(f->st, BASE_MINUTE + 5, 1, 4);
	assert_true(slo_burn_rate(f->st, now, HOUR, &value));
	assert_true(value == 1.5);
	assert_int_equal(slo_alert_condition(f->st, &f->cfg.alerts[0], now), SLO_CONDITION_FALSE);
	/* Budget overspent 1.5 times: 1 - 3 / (4 * 0.5) = -0.5, reported as it is. */
	assert_true(slo_budget_remaining(f->st, now, &value));
	assert_true(value == -0.5);
}

/* Availability reads the scheduler's run and failure counters of one probe. */
static void availability_counts_probe_runs(void **state)
{
	struct fixture *f = *state;
	const char *probe = "we\"b\\1";
	struct series *runs = counter(f, "tocsin_probe_runs_total", "probe", probe);
	struct series *fails = counter(f, "tocsin_probe_failures_total", "probe", probe);
	struct series *other = counter(f, "tocsin_probe_runs_total", "probe", "other");
	double good;
	double total;

	config_init(&f->cfg, SLO_SLI_AVAILABILITY);
	f->cfg.probe = strdup(probe);
	f->st = slo_state_new(&f->cfg);
	append(f, runs, BASE_MS + 1 * MINUTE, 10);
	append(f, fails, BASE_MS + 1 * MINUTE, 1);
	append(f, other, BASE_MS + 1 * MINUTE, 1000);
	observe(f, BASE_MS + 1 * MINUTE);
	append(f, runs, BASE_MS + 2 * MINUTE, 20);
	append(f, fails, BASE_MS + 2 * MINUTE, 4);
	append(f, other, BASE_MS + 2 * MINUTE, 5000);
	observe(f, BASE_MS + 2 * MINUTE);
	minute_events(f, 2, &good, &total);
	assert_true(total == 10);
	assert_true(good == 7);
}

/* Latency counts each run duration after the last observation; NaN is no event. */
static void latency_counts_each_run(void **state)
{
	struct fixture *f = *state;
	struct metric_desc desc = {"tocsin_probe_duration_seconds", "run time", METRIC_GAUGE};
	struct label l = {"probe", "web"};
	struct series *d = series_intern(f->reg, &desc, &l, 1);
	const double seconds[] = {0.1, 0.3, 0.25, NAN, 0.2, 1.0};
	double good;
	double total;

	config_init(&f->cfg, SLO_SLI_LATENCY);
	f->cfg.probe = strdup("web");
	f->cfg.latency_threshold_s = 0.25;
	f->st = slo_state_new(&f->cfg);
	append(f, d, BASE_MS, 9); /* before the first observation: never counted */
	observe(f, BASE_MS + 5000);
	for (int i = 0; i < 6; i++)
		append(f, d, BASE_MS + (i + 1) * 10000, seconds[i]);
	observe(f, BASE_MS + 60000); /* samples at 10 .. 60 s */
	minute_events(f, 1, &good, &total);
	assert_true(total == 5);
	assert_true(good == 3); /* 0.1, 0.25 and 0.2 */

	window_mark_stale(f->ws, d, BASE_MS + 65000);
	append(f, d, BASE_MS + 70000, 0.1);
	observe(f, BASE_MS + 75000);
	observe(f, BASE_MS + 75000); /* nothing new */
	minute_events(f, 1, &good, &total);
	assert_true(total == 6 && good == 4);
}

static void eval_error_keeps_readings(void **state)
{
	struct fixture *f = *state;
	struct series *a = counter(f, "req_total", "instance", "a");
	struct series *b = counter(f, "req_total", "instance", "b");
	struct series *err = counter(f, "err_total", NULL, NULL);
	char *error = NULL;
	double good;
	double total;

	config_init(&f->cfg, SLO_SLI_ERRORS_TOTAL);
	f->cfg.total = parse("sum(req_total)");
	/* One-to-one matching with two series on the right: an error while b exists. */
	f->cfg.errors = parse("err_total + on() req_total");
	f->st = slo_state_new(&f->cfg);
	append(f, a, BASE_MS + 1 * MINUTE, 100);
	append(f, b, BASE_MS + 1 * MINUTE, 100);
	append(f, err, BASE_MS + 1 * MINUTE, 0);
	assert_int_equal(slo_observe(f->st, &f->src, BASE_MS + 1 * MINUTE, NULL, &error), -1);
	assert_non_null(error);
	assert_non_null(strstr(error, "slo api: evaluating the errors expression failed: "));
	free(error);

	/* Nothing was recorded, so the next good observation only records too. */
	window_mark_stale(f->ws, b, BASE_MS + 2 * MINUTE - 1000);
	append(f, a, BASE_MS + 2 * MINUTE, 200);
	append(f, err, BASE_MS + 2 * MINUTE, 0);
	observe(f, BASE_MS + 2 * MINUTE);
	minute_events(f, 2, &good, &total);
	assert_true(total == 0);
}

/* Buckets older than the longest span leave memory and the database. */
static void prune_drops_old_buckets(void **state)
{
	struct fixture *f = *state;
	int64_t now = BASE_MS + 31 * DAY;
	double good;
	double total;

	open_db(f);
	config_init(&f->cfg, SLO_SLI_GOOD_TOTAL);
	f->st = slo_state_new(&f->cfg);
	assert_int_equal(statedb_slo_bucket_add(f->db, "api", BASE_MINUTE, 1, 1), 0);
	assert_int_equal(statedb_slo_bucket_add(f->db, "api", BASE_MINUTE + 2 * 24 * 60, 1, 2), 0);
	assert_int_equal(slo_state_restore(f->st, f->db, BASE_MS + 2 * DAY), 0);
	slo_window_events(f->st, BASE_MS + 2 * DAY, 30 * DAY, &good, &total);
	assert_true(total == 3);

	slo_prune(f->st, f->db, now);
	slo_window_events(f->st, now, 30 * DAY, &good, &total);
	assert_true(total == 2); /* the bucket of day 2 is 29 days old */
	slo_state_free(f->st);
	f->st = slo_state_new(&f->cfg);
	assert_int_equal(slo_state_restore(f->st, f->db, BASE_MS), 0);
	slo_window_events(f->st, now, 30 * DAY, &good, &total);
	assert_true(total == 2);
	slo_window_events(f->st, BASE_MS, HOUR, &good, &total);
	assert_true(total == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(default_alerts_workbook),
	    cmocka_unit_test_setup_teardown(workbook_case_idle_minutes, setup, teardown),
	    cmocka_unit_test_setup_teardown(outage_pages_minute_61_to_74, setup, teardown),
	    cmocka_unit_test_setup_teardown(slower_pairs_fire_and_clear, setup, teardown),
	    cmocka_unit_test_setup_teardown(zero_traffic_is_no_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(counter_reset_counts_new_value, setup, teardown),
	    cmocka_unit_test_setup_teardown(vanished_series_is_no_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(restart_restores_buckets_and_readings, setup, teardown),
	    cmocka_unit_test_setup_teardown(restart_after_counter_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(exclusion_minutes_left_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(min_events_gates_condition, setup, teardown),
	    cmocka_unit_test_setup_teardown(burn_equal_to_factor_is_false, setup, teardown),
	    cmocka_unit_test_setup_teardown(availability_counts_probe_runs, setup, teardown),
	    cmocka_unit_test_setup_teardown(latency_counts_each_run, setup, teardown),
	    cmocka_unit_test_setup_teardown(eval_error_keeps_readings, setup, teardown),
	    cmocka_unit_test_setup_teardown(prune_drops_old_buckets, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
