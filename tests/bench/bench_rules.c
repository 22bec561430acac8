/*
 * Rule evaluation benchmark on a virtual clock: SERIES gauge series (1,000 metric names
 * with 100 series each) and RULES rules (ten kinds per metric name: comparisons,
 * range functions, aggregations, recording rules, absent(), `and`, and threshold rules),
 * in groups of 100 evaluated every 10 s. Samples arrive every 10 s and the windows hold
 * 5 minutes of history before timing starts. Prints the median and worst evaluation time
 * per cycle (wall clock and the thread's CPU time) and the memory per series beyond its
 * sample ring, then the summary line
 *   bench-rules: series=N rules=N ms_per_cycle=X bytes_per_series=N
 * It also writes the rule file (--write-rules FILE) and an exposition of the same series
 * (--write-exposition FILE) so that Prometheus can evaluate the same rules side by side.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/evaluator.h"
#include "collector/log.h"
#include "collector/rules.h"
#include "collector/series.h"
#include "collector/window.h"

#define METRICS      1000
#define PER_METRIC   100
#define KINDS        10
#define STEP_MS      10000
#define WARMUP_STEPS 30

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 32);
}

/* One rule of kind k on metric m, in the rule-file format; tocsin_only: threshold. */
static void write_rule(FILE *f, int m, int k, int prometheus)
{
	const char *name = "bench_metric";

	switch (k) {
	case 0:
		fprintf(f, "      - alert: High%d\n        expr: %s_%04d > 97\n        for: 1m\n",
			m, name, m);
		break;
	case 1:
		fprintf(f, "      - alert: Low%d\n        expr: %s_%04d{job=\"j1\"} < 3\n", m, name,
			m);
		break;
	case 2:
		if (prometheus)
			fprintf(f,
				"      - alert: Thr%d\n        expr: %s_%04d{job=\"j2\"} > 80\n"
				"        labels: {severity: warning}\n",
				m, name, m);
		else
			fprintf(f,
				"      - alert: Thr%d\n        threshold:\n"
				"          expr: %s_%04d{job=\"j2\"}\n          warn: 80\n"
				"          crit: 90\n          clear_warn: 75\n",
				m, name, m);
		break;
	case 3:
		fprintf(f,
			"      - record: job:%s_%04d:avg\n        expr: avg by (job) (%s_%04d)\n",
			name, m, name, m);
		break;
	case 4:
		fprintf(
		    f,
		    "      - alert: AvgHigh%d\n        expr: avg_over_time(%s_%04d{job=\"j4\"}[5m])"
		    " > 60\n",
		    m, name, m);
		break;
	case 5:
		fprintf(
		    f,
		    "      - alert: MaxHigh%d\n        expr: max_over_time(%s_%04d{job=\"j5\"}[2m])"
		    " > 99\n",
		    m, name, m);
		break;
	case 6:
		fprintf(f, "      - record: %s_%04d:sum\n        expr: sum(%s_%04d)\n", name, m,
			name, m);
		break;
	case 7:
		fprintf(f, "      - alert: Absent%d\n        expr: absent(%s_%04d{job=\"j7\"})\n",
			m, name, m);
		break;
	case 8:
		fprintf(f,
			"      - alert: Band%d\n        expr: %s_%04d{job=\"j8\"} > 50 and "
			"%s_%04d{job=\"j8\"} < 52\n",
			m, name, m, name, m);
		break;
	default:
		fprintf(f,
			"      - alert: Delta%d\n        expr: abs(delta(%s_%04d{job=\"j9\"}[1m])) "
			"> 30\n",
			m, name, m);
		break;
	}
}

static char *rules_text(int metrics, int prometheus)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fprintf(f, "groups:\n");
	for (int m = 0; m < metrics; m++) {
		if (m % 10 == 0)
			fprintf(f, "  - name: bench%03d\n    interval: 10s\n    rules:\n", m / 10);
		for (int k = 0; k < KINDS; k++)
			write_rule(f, m, k, prometheus);
	}
	fclose(f);
	return buf;
}

static double clock_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void append_all(struct window_store *ws, struct series **series, double *values,
		       size_t count, int64_t t)
{
	for (size_t i = 0; i < count; i++) {
		double v = values[i] + (double)(rng() % 11) - 5.0;

		values[i] = v < 0 ? 0 : v > 100 ? 100 : v;
		series_set(series[i], values[i], t);
		window_append(ws, series[i], t, values[i]);
	}
}

/* As in the daemon: a series removed from the registry takes its sample window along. */
static void forget_window(void *arg, struct series *s)
{
	window_forget(arg, s);
}

/*
 * Heap bytes in use, counting the chunks malloc serves with mmap too: the registry's and
 * the store's hash tables outgrow the mmap threshold at 100,000 series.
 */
static size_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}

static int write_exposition(const char *path, int metrics)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		return -1;
	}
	for (int m = 0; m < metrics; m++) {
		fprintf(f, "# TYPE bench_metric_%04d gauge\n", m);
		for (int i = 0; i < PER_METRIC; i++)
			fprintf(f, "bench_metric_%04d{job=\"j%d\",instance=\"i%03d\"} %u\n", m,
				i % 10, i, rng() % 101);
	}
	return fclose(f);
}

int main(int argc, char **argv)
{
	int metrics = METRICS;
	int cycles = 30;
	struct series_registry *reg;
	struct window_store *ws;
	struct evaluator *ev;
	struct rule_set *set;
	struct series **series;
	double *values, *times, *cpu_times;
	char *text, *errors = NULL;
	size_t count, before, after_series, after_all, rings;
	int64_t t = 0;
	int status = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--metrics") == 0 && i + 1 < argc)
			metrics = atoi(argv[++i]);
		else if (strcmp(argv[i], "--cycles") == 0 && i + 1 < argc)
			cycles = atoi(argv[++i]);
		else if (strcmp(argv[i], "--write-rules") == 0 && i + 1 < argc) {
			text = rules_text(metrics, 1);
			if (write_file(argv[++i], text) < 0)
				return 1;
			free(text);
			return 0;
		} else if (strcmp(argv[i], "--write-exposition") == 0 && i + 1 < argc)
			return write_exposition(argv[++i], metrics) < 0 ? 1 : 0;
		else {
			fprintf(stderr,
				"usage: %s [--metrics N] [--cycles N] [--write-rules FILE] "
				"[--write-exposition FILE]\n",
				argv[0]);
			return 2;
		}
	}
	if (metrics < 1 || cycles < 1) {
		fprintf(stderr, "--metrics and --cycles must be at least 1\n");
		return 2;
	}
	log_set_level(LOG_LEVEL_ERROR);
	count = (size_t)metrics * PER_METRIC;

	/* The benchmark's own arrays are allocated before the first reading of the heap. */
	series = calloc(count, sizeof(*series));
	values = calloc(count, sizeof(*values));
	times = calloc((size_t)cycles, sizeof(*times));
	cpu_times = calloc((size_t)cycles, sizeof(*cpu_times));
	before = heap_bytes();
	reg = series_registry_new();
	for (int m = 0; m < metrics; m++) {
		char name[64];
		struct metric_desc d = {name, "benchmark gauge", METRIC_GAUGE};

		snprintf(name, sizeof(name), "bench_metric_%04d", m);
		for (int i = 0; i < PER_METRIC; i++) {
			/* Room for any int, so that -Wformat-truncation passes at every -O level. */
			char job[16], inst[16];
			struct label l[2] = {{"instance", inst}, {"job", job}};
			size_t k = (size_t)m * PER_METRIC + (size_t)i;

			snprintf(job, sizeof(job), "j%d", i % 10);
			snprintf(inst, sizeof(inst), "i%03d", i);
			series[k] = series_intern(reg, &d, l, 2);
			values[k] = (double)(rng() % 101);
		}
	}

	text = rules_text(metrics, 0);
	set = rules_load_string("bench-rules.yml", text, STEP_MS, &errors);
	free(text);
	if (set == NULL) {
		fprintf(stderr, "bench-rules: %s\n", errors);
		return 1;
	}
	ws = window_store_new(set->history_ms, WINDOW_DEFAULT_MAX_SAMPLES);
	series_registry_on_remove(reg, forget_window, ws);
	for (int s = 0; s < WARMUP_STEPS; s++, t += STEP_MS)
		append_all(ws, series, values, count, t);
	after_series = heap_bytes();

	ev = evaluator_new(NULL, reg, NULL, ws, NULL);
	evaluator_apply(ev, set, t);
	for (int c = 0; c < cycles; c++, t += STEP_MS) {
		double start, cpu_start;

		append_all(ws, series, values, count, t);
		start = clock_ms(CLOCK_MONOTONIC);
		cpu_start = clock_ms(CLOCK_THREAD_CPUTIME_ID);
		evaluator_eval_at(ev, t);
		cpu_times[c] = clock_ms(CLOCK_THREAD_CPUTIME_ID) - cpu_start;
		times[c] = clock_ms(CLOCK_MONOTONIC) - start;
	}
	after_all = heap_bytes();
	rings = window_memory_bytes(ws) - window_series_count(ws) * window_series_overhead();

	/*
	 * Every window belongs to a series of the registry: more windows than series means
	 * that removed series (resolved alerts, vanished recording rule outputs) left their
	 * windows behind, and the memory figures would count them.
	 */
	if (window_series_count(ws) > series_registry_count(reg)) {
		fprintf(stderr,
			"bench-rules: %zu windows for %zu series: windows of removed series were "
			"not freed; check series_registry_on_remove()\n",
			window_series_count(ws), series_registry_count(reg));
		status = 1;
	}

	qsort(times, (size_t)cycles, sizeof(*times), cmp_double);
	qsort(cpu_times, (size_t)cycles, sizeof(*cpu_times), cmp_double);
	printf("series: %zu input, %zu in all (rule outputs included), %zu windows; rules: %zu "
	       "in %zu groups; cycles: %d\n",
	       count, series_registry_count(reg), window_series_count(ws),
	       rules_count(evaluator_rules(ev)), evaluator_rules(ev)->group_count, cycles);
	printf("evaluation per cycle: median %.1f ms, worst %.1f ms\n", times[cycles / 2],
	       times[cycles - 1]);
	printf("evaluation CPU time per cycle: median %.1f ms, worst %.1f ms\n",
	       cpu_times[cycles / 2], cpu_times[cycles - 1]);
	/* A sanitizer's malloc leaves mallinfo2() at zero, so there is nothing to report. */
	if (after_series < before || after_all < after_series || after_all - before < rings) {
		printf("memory: not measured, mallinfo2() does not see this malloc (a sanitizer "
		       "build?)\n");
		printf("bench-rules: series=%zu rules=%zu ms_per_cycle=%.1f "
		       "bytes_per_series=unknown\n",
		       count, rules_count(evaluator_rules(ev)), times[cycles / 2]);
	} else {
		printf("memory: %zu bytes for series, windows and the parsed rules (%zu in sample "
		       "rings), %zu bytes more after the rules ran\n",
		       after_series - before, rings, after_all - after_series);
		printf("bench-rules: series=%zu rules=%zu ms_per_cycle=%.1f bytes_per_series=%zu\n",
		       count, rules_count(evaluator_rules(ev)), times[cycles / 2],
		       (after_all - before - rings) / window_series_count(ws));
	}

	evaluator_free(ev);
	series_registry_free(reg);
	window_store_free(ws);
	free(series);
	free(values);
	free(times);
	free(cpu_times);
	return status;
}
