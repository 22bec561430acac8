/*
 * Unit tests of the scheduler with probe types defined here: timeouts, skipped turns,
 * labels added at commit, stale series, and reconciliation on reload.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "collector/config.h"
#include "collector/log.h"
#include "collector/scheduler.h"
#include "collector/series.h"
#include "probes/probe.h"

struct fake_state {
	int starts;
	int cancels;
	bool emit_extra; /* emit a second series on odd runs only */
};

static int fake_frees;

static const struct metric_desc fake_value = {"fake_value", "A test value.", METRIC_GAUGE};
static const struct metric_desc fake_extra = {"fake_extra", "Present on odd runs.", METRIC_GAUGE};

static void instant_start(struct probe_run *run, void *state)
{
	struct fake_state *st = state;
	struct label l[] = {{"site", "from-sample"}};

	st->starts++;
	probe_run_emit(run, &fake_value, l, 1, 42);
	if (st->emit_extra && st->starts % 2 == 1)
		probe_run_emit(run, &fake_extra, NULL, 0, 1);
	probe_run_finish(run, PROBE_STATUS_OK, "fine");
}

static void stuck_start(struct probe_run *run, void *state)
{
	struct fake_state *st = state;

	(void)run;
	st->starts++;
}

static void stuck_cancel(struct probe_run *run, void *state)
{
	struct fake_state *st = state;

	(void)run;
	st->cancels++;
}

static void fake_free(void *state)
{
	(void)state;
	fake_frees++;
}

/* Follows a script: '+' succeeds, '-' fails with a reason naming the run. */
struct scripted_state {
	const char *script;
	int runs;
};

static void scripted_start(struct probe_run *run, void *state)
{
	struct scripted_state *st = state;
	char c = st->script[st->runs % (int)strlen(st->script)];

	st->runs++;
	if (c == '+')
		probe_run_finish(run, PROBE_STATUS_OK, "fine");
	else
		probe_run_finish(run, PROBE_STATUS_REFUSED, "connect: refused (run %d)", st->runs);
}

static const char *scripted_target(const void *state)
{
	(void)state;
	return "127.0.0.1:1";
}

static const struct probe_type scripted_type = {
    .name = "scripted", .start = scripted_start, .free = fake_free, .target = scripted_target};

static const struct probe_type instant_type = {
    .name = "instant", .start = instant_start, .free = fake_free};
static const struct probe_type stuck_type = {
    .name = "stuck", .start = stuck_start, .cancel = stuck_cancel, .free = fake_free};

static void stop_loop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void run_loop(struct event_base *base, long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_once(base, -1, EV_TIMEOUT, stop_loop, base, &tv);
	event_base_dispatch(base);
}

static struct config_probe make_probe(const char *name, const struct probe_type *type, void *st,
				      uint64_t interval_ms, uint64_t timeout_ms)
{
	struct config_probe p = {0};

	p.name = (char *)name;
	p.type = type;
	p.state = st;
	p.interval_ms = interval_ms;
	p.timeout_ms = timeout_ms;
	p.heartbeat_s = 2;
	p.fingerprint = 1;
	return p;
}

static struct series *find(struct series_registry *reg, const char *metric, const char *probe)
{
	for (size_t i = 0; i < series_registry_family_count(reg); i++) {
		struct series_family *fam = series_registry_family(reg, i);

		if (strcmp(fam->name, metric) != 0)
			continue;
		for (size_t j = 0; j < fam->count; j++) {
			const char *p = series_label(fam->series[j], "probe");

			if (p != NULL && strcmp(p, probe) == 0)
				return fam->series[j];
		}
	}
	return NULL;
}

static void stuck_run_times_out_and_is_cancelled(void **state)
{
	struct event_base *base = event_base_new();
	struct series_registry *reg = series_registry_new();
	struct scheduler *sched = scheduler_new(base, reg, NULL);
	struct fake_state st = {0};
	struct config_probe probes[] = {make_probe("stuck", &stuck_type, &st, 100, 50)};
	struct config cfg = {.probes = probes, .probe_count = 1};
	struct series *fail;

	(void)state;
	scheduler_apply(sched, &cfg);
	assert_null(probes[0].state);
	run_loop(base, 560);

	assert_in_range(st.starts, 4, 6);
	/* The loop may stop with one run started and not yet cancelled. */
	assert_in_range(st.cancels, st.starts - 1, st.starts);
	fail = find(reg, "tocsin_probe_failures_total", "stuck");
	assert_non_null(fail);
	assert_true(fail->value >= 4);
	assert_true(find(reg, "tocsin_probe_success", "stuck")->value == 0);
	scheduler_free(sched);
	series_registry_free(reg);
	event_base_free(base);
}

static void turn_skipped_while_run_in_flight(void **state)
{
	struct event_base *base = event_base_new();
	struct series_registry *reg = series_registry_new();
	struct scheduler *sched = scheduler_new(base, reg, NULL);
	struct fake_state st = {0};
	/* A timeout longer than the interval is rejected by the config loader; built by hand
	 * here to reach the skip path. */
	struct config_probe probes[] = {make_probe("slow", &stuck_type, &st, 50, 400)};
	struct config cfg = {.probes = probes, .probe_count = 1};
	struct series *skipped;

	(void)state;
	scheduler_apply(sched, &cfg);
	run_loop(base, 520);
	/* One run timed out after 400 ms; every turn before that was skipped. */
	assert_in_range(st.starts, 1, 2);
	skipped = find(reg, "tocsin_probe_skipped_total", "slow");
	assert_non_null(skipped);
	assert_true(skipped->value >= 5);
	scheduler_free(sched);
	series_registry_free(reg);
	event_base_free(base);
}

static void commit_adds_probe_and_user_labels(void **state)
{
	struct event_base *base = event_base_new();
	struct series_registry *reg = series_registry_new();
	struct scheduler *sched = scheduler_new(base, reg, NULL);
	struct fake_state st = {0};
	struct label user[] = {{"env", "prod"}, {"site", "user"}};
	struct config_probe probes[] = {make_probe("fast", &instant_type, &st, 50, 50)};
	struct config cfg = {.probes = probes, .probe_count = 1};
	struct series *s;

	(void)state;
	probes[0].labels = user;
	probes[0].label_count = 2;
	scheduler_apply(sched, &cfg);
	run_loop(base, 120);

	s = find(reg, "fake_value", "fast");
	assert_non_null(s);
	assert_true(s->value == 42);
	assert_false(s->stale);
	assert_string_equal(series_label(s, "env"), "prod");
	/* The sample's own label wins; the user label moves aside. */
	assert_string_equal(series_label(s, "site"), "from-sample");
	assert_string_equal(series_label(s, "exported_site"), "user");
	assert_true(find(reg, "tocsin_probe_success", "fast")->value == 1);
	assert_string_equal(series_label(find(reg, "tocsin_probe_runs_total", "fast"), "type"),
			    "instant");
	scheduler_free(sched);
	series_registry_free(reg);
	event_base_free(base);
}

static void series_missing_from_run_go_stale(void **state)
{
	struct event_base *base = event_base_new();
	struct series_registry *reg = series_registry_new();
	struct scheduler *sched = scheduler_new(base, reg, NULL);
	struct fake_state st = {.emit_extra = true};
	struct config_probe probes[] = {make_probe("flip", &instant_type, &st, 100, 100)};
	struct config cfg = {.probes = probes, .probe_count = 1};
	struct series *extra;
	struct series *runs;
	bool seen_fresh = false;
	bool seen_stale = false;

	(void)state;
	scheduler_apply(sched, &cfg);
	for (int i = 0; i < 8; i++) {
		run_loop(base, 50);
		extra = find(reg, "fake_extra", "flip");
		runs = find(reg, "tocsin_probe_runs_total", "flip");
		if (extra == NULL || runs == NULL)
			continue;
		/* The extra series is fresh after odd committed runs and stale after even ones. */
		assert_int_equal(extra->stale, (uint64_t)runs->value % 2 == 0);
		seen_fresh = seen_fresh || !extra->stale;
		seen_stale = seen_stale || extra->stale;
	}
	assert_true(seen_fresh);
	assert_true(seen_stale);
	scheduler_free(sched);
	series_registry_free(reg);
	event_base_free(base);
}

static void apply_keeps_unchanged_and_drops_removed(void **state)
{
	struct event_base *base = event_base_new();
	struct series_registry *reg = series_registry_new();
	struct scheduler *sched = scheduler_new(base, reg, NULL);
	struct fake_state a = {0};
	struct fake_state b = {0};
	struct fake_state a2 = {0};
	struct config_probe first[] = {make_probe("a", &instant_type, &a, 50, 50),
				       make_probe("b", &instant_type, &b, 50, 50)};
	struct config cfg1 = {.probes = first, .probe_count = 2};
	struct config_probe second[] = {make_probe("a", &instant_type, &a2, 50, 50)};
	struct config cfg2 = {.probes = second, .probe_count = 1};
	int frees_before;

	(void)state;
	scheduler_apply(sched, &cfg1);
	run_loop(base, 120);
	assert_non_null(find(reg, "fake_value", "b"));

	frees_before = fake_frees;
	scheduler_apply(sched, &cfg2);
	/* "a" is unchanged: it keeps its old state, and the new one stays with the config. */
	assert_ptr_equal(second[0].state, &a2);
	/* "b" is gone, and so are its series (its state is freed once a pending commit ran). */
	assert_null(find(reg, "fake_value", "b"));
	assert_null(find(reg, "tocsin_probe_runs_total", "b"));
	run_loop(base, 120);
	assert_int_equal(fake_frees, frees_before + 1);
	assert_null(find(reg, "fake_value", "b"));
	assert_int_equal(a2.starts, 0);
	assert_true(a.starts >= 3);
	scheduler_free(sched);
	series_registry_free(reg);
	event_base_free(base);
}

static void count_report(const char *probe_name, const char *type_name, const struct probe_run *run,
			 const struct series *const *written, size_t written_count, void *arg)
{
	int *reports = arg;

	(void)type_name;
	/* Both runs write at least the scheduler's own series, with the probe label. */
	assert_true(written_count >= 5);
	assert_string_equal(series_label(written[0], "probe"), probe_name);
	if (strcmp(probe_name, "s") == 0)
		assert_int_equal(probe_run_status(run), PROBE_STATUS_TIMEOUT);
	else
		assert_int_equal(probe_run_status(run), PROBE_STATUS_OK);
	(*reports)++;
}

static void run_once_reports_each_probe(void **state)
{
	struct event_base *base = event_base_new();
	struct series_registry *reg = series_registry_new();
	struct scheduler *sched = scheduler_new(base, reg, NULL);
	struct fake_state a = {0};
	struct fake_state s = {0};
	struct config_probe probes[] = {make_probe("a", &instant_type, &a, 60000, 5000),
					make_probe("s", &stuck_type, &s, 60000, 100)};
	struct config cfg = {.probes = probes, .probe_count = 2};
	int reports = 0;

	(void)state;
	scheduler_apply(sched, &cfg);
	scheduler_run_once(sched, count_report, &reports);
	event_base_dispatch(base);
	assert_int_equal(reports, 2);
	/* Both ran once: "a" finished at once, "s" timed out after 100 ms. */
	assert_int_equal(a.starts, 1);
	assert_int_equal(s.starts, 1);
	assert_int_equal(s.cancels, 1);
	scheduler_free(sched);
	series_registry_free(reg);
	event_base_free(base);
}

static double value_of(struct series_registry *reg, const char *metric, const char *probe)
{
	struct series *s = find(reg, metric, probe);

	if (s == NULL)
		fail_msg("series %s{probe=\"%s\"} not found", metric, probe);
	return s->value;
}

/* Runs committed so far by the probe "flaky" or "logged" (0 before the first commit). */
static int value_of_runs(struct series_registry *reg)
{
	struct series *s = find(reg, "tocsin_probe_runs_total", "flaky");

	if (s == NULL)
		s = find(reg, "tocsin_probe_runs_total", "logged");
	return s != NULL ? (int)s->value : 0;
}

static size_t fresh_failure_infos(struct series_registry *reg, const char *probe,
				  const char **reason)
{
	size_t n = 0;

	for (size_t i = 0; i < series_registry_family_count(reg); i++) {
		struct series_family *fam = series_registry_family(reg, i);

		if (strcmp(fam->name, "tocsin_probe_last_failure_info") != 0)
			continue;
		for (size_t j = 0; j < fam->count; j++) {
			struct series *s = fam->series[j];

			if (s->stale || strcmp(series_label(s, "probe"), probe) != 0)
				continue;
			*reason = series_label(s, "reason");
			n++;
		}
	}
	return n;
}

static void health_follows_rise_and_fall(void **state)
{
	struct event_base *base = event_base_new();
	struct series_registry *reg = series_registry_new();
	struct scheduler *sched = scheduler_new(base, reg, NULL);
	/* Down after 2 failures, up after 2 successes. */
	struct scripted_state st = {.script = "--++-+"};
	struct config_probe probes[] = {make_probe("flaky", &scripted_type, &st, 100, 100)};
	struct config cfg = {.probes = probes, .probe_count = 1};
	const char *reason = NULL;
	double up[6];

	(void)state;
	probes[0].rise = 2;
	probes[0].fall = 2;
	scheduler_apply(sched, &cfg);
	/* One run per step, so that each step sees exactly one result. */
	for (int i = 0; i < 6; i++) {
		scheduler_run_once(sched, NULL, NULL);
		event_base_dispatch(base);
		up[i] = find(reg, "tocsin_probe_up", "flaky")
			    ? value_of(reg, "tocsin_probe_up", "flaky")
			    : -1;
	}
	/* unknown, down, down, up, up (one failure is not enough), up */
	assert_true(up[0] == -1);
	assert_true(up[1] == 0);
	assert_true(up[2] == 0);
	assert_true(up[3] == 1);
	assert_true(up[4] == 1);
	assert_true(up[5] == 1);
	/* unknown -> down is a decision, not a change; down -> up is one. */
	assert_true(value_of(reg, "tocsin_probe_state_changes_total", "flaky") == 1);
	/* Exactly one last-failure series, with the latest failure's reason. */
	assert_int_equal(fresh_failure_infos(reg, "flaky", &reason), 1);
	assert_string_equal(reason, "connect: refused (run 5)");
	scheduler_free(sched);
	series_registry_free(reg);
	event_base_free(base);
}

static void fast_interval_while_failing(void **state)
{
	struct event_base *base = event_base_new();
	struct series_registry *reg = series_registry_new();
	struct scheduler *sched = scheduler_new(base, reg, NULL);
	struct scripted_state failing = {.script = "-"};
	struct scripted_state healthy = {.script = "+"};
	struct config_probe probes[] = {make_probe("failing", &scripted_type, &failing, 2000, 50),
					make_probe("healthy", &scripted_type, &healthy, 2000, 50)};
	struct config cfg = {.probes = probes, .probe_count = 2};

	(void)state;
	probes[0].fast_interval_ms = 100;
	probes[1].fast_interval_ms = 100;
	scheduler_apply(sched, &cfg);
	run_loop(base, 2600);
	/* The failing probe is re-checked every 100 ms after its first run; the healthy one
	 * keeps its 2 s interval. */
	assert_true(failing.runs >= 6);
	assert_in_range(healthy.runs, 1, 2);
	scheduler_free(sched);
	series_registry_free(reg);
	event_base_free(base);
}

static void state_change_logged_once(void **state)
{
	struct event_base *base = event_base_new();
	struct series_registry *reg = series_registry_new();
	struct scheduler *sched = scheduler_new(base, reg, NULL);
	struct scripted_state st = {.script = "---+"};
	struct config_probe probes[] = {make_probe("logged", &scripted_type, &st, 50, 50)};
	struct config cfg = {.probes = probes, .probe_count = 1};
	char out[16384];
	int fds[2];
	ssize_t n;
	const char *first;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	log_set_level(LOG_LEVEL_NOTICE);
	log_set_fd(fds[1]);
	scheduler_apply(sched, &cfg);
	while (st.runs < 4 || value_of_runs(reg) < 4)
		run_loop(base, 20);
	log_set_fd(2);
	log_set_level(LOG_LEVEL_ERROR);
	close(fds[1]);
	n = read(fds[0], out, sizeof(out) - 1);
	close(fds[0]);
	out[n > 0 ? n : 0] = '\0';

	first = strstr(out, "probe=logged type=scripted target=127.0.0.1:1 msg=\"state unknown "
			    "-> down after ");
	assert_non_null(first);
	assert_non_null(strstr(first, "status=refused reason=\\\"connect: refused (run 1)\\\" "
				      "(fall 1/1)\""));
	/* Failures 2 and 3 change nothing; the success is the next line. */
	assert_non_null(strstr(first + 1, "msg=\"state down -> up after "));
	assert_null(strstr(out, "(run 2)"));
	scheduler_free(sched);
	series_registry_free(reg);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(stuck_run_times_out_and_is_cancelled),
	    cmocka_unit_test(turn_skipped_while_run_in_flight),
	    cmocka_unit_test(commit_adds_probe_and_user_labels),
	    cmocka_unit_test(series_missing_from_run_go_stale),
	    cmocka_unit_test(apply_keeps_unchanged_and_drops_removed),
	    cmocka_unit_test(run_once_reports_each_probe),
	    cmocka_unit_test(health_follows_rise_and_fall),
	    cmocka_unit_test(fast_interval_while_failing),
	    cmocka_unit_test(state_change_logged_once),
	};

	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
