/*
 * HTTP probe throughput, run by tests/bench/bench-probes.sh. Two modes:
 *
 *   bench_http probes URL N SECONDS
 *       N http probes on URL at a 1 s interval (so N runs per second are due), driven by
 *       the real config loader and scheduler without an archive store. After a 2 s warm-up
 *       it measures runs finished, CPU time of the process, loop lag (lateness of a 10 ms
 *       timer) and RSS.
 *   bench_http ceiling URL CONCURRENCY SECONDS
 *       a bare libcurl multi loop on the same driver (probes/curlev.c): CONCURRENCY
 *       transfers kept in flight, each on a new connection, as the upper bound.
 *
 * Prints one line of key=value pairs.
 */
#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "collector/config.h"
#include "collector/log.h"
#include "collector/scheduler.h"
#include "collector/series.h"
#include "collector/xalloc.h"
#include "probes/curlev.h"
#include "probes/probe.h"

#define WARMUP_S      2
#define LAG_PERIOD_US 10000
#define LAG_MAX       100000

struct lag {
	struct event *ev;
	uint64_t expected_us;
	uint64_t *samples;
	size_t count;
	bool measuring;
};

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	}
	if (f != NULL)
		fclose(f);
	return kib;
}

static void lag_tick(evutil_socket_t fd, short what, void *arg)
{
	struct lag *l = arg;
	uint64_t now = probe_now_us();
	struct timeval tv = {0, LAG_PERIOD_US};

	(void)fd;
	(void)what;
	if (l->measuring && l->count < LAG_MAX)
		l->samples[l->count++] = now > l->expected_us ? now - l->expected_us : 0;
	l->expected_us = now + LAG_PERIOD_US;
	evtimer_add(l->ev, &tv);
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double lag_p99_ms(struct lag *l)
{
	if (l->count == 0)
		return 0;
	qsort(l->samples, l->count, sizeof(*l->samples), compare_u64);
	return (double)l->samples[(l->count * 99) / 100] / 1000.0;
}

/* Sum of a counter family over every series, such as the runs of every probe. */
static double family_sum(struct series_registry *reg, const char *name)
{
	double sum = 0;

	for (size_t i = 0; i < series_registry_family_count(reg); i++) {
		struct series_family *f = series_registry_family(reg, i);

		if (strcmp(f->name, name) != 0)
			continue;
		for (size_t j = 0; j < f->count; j++)
			sum += f->series[j]->value;
	}
	return sum;
}

static void stop_loop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void run_for(struct event_base *base, int seconds)
{
	struct timeval tv = {seconds, 0};
	struct event *ev = evtimer_new(base, stop_loop, base);

	evtimer_add(ev, &tv);
	event_base_dispatch(base);
	event_free(ev);
}

static int bench_probes(const char *url, long count, int seconds)
{
	struct event_base *base = event_base_new();
	struct series_registry *reg = series_registry_new();
	struct scheduler *sched = scheduler_new(base, reg, NULL);
	struct lag lag = {0};
	size_t size = 64 + (size_t)count * (strlen(url) + 64);
	char *text = xmalloc(size);
	size_t used = 0;
	char *errors = NULL;
	struct config *cfg;
	double runs0, fails0, cpu0, runs, fails, cpu;
	uint64_t t0, t1;

	used += (size_t)snprintf(text + used, size - used, "interval: 1s\ntimeout: 1s\nprobes:\n");
	for (long i = 0; i < count; i++)
		used += (size_t)snprintf(text + used, size - used,
					 "  - {name: p%ld, type: http, url: \"%s\"}\n", i, url);
	cfg = config_load_string("bench", text, &errors);
	free(text);
	if (cfg == NULL) {
		fprintf(stderr, "config: %s\n", errors);
		return 1;
	}
	scheduler_apply(sched, cfg);

	lag.samples = xcalloc(LAG_MAX, sizeof(*lag.samples));
	lag.ev = evtimer_new(base, lag_tick, &lag);
	lag_tick(-1, 0, &lag);

	run_for(base, WARMUP_S);
	runs0 = family_sum(reg, "tocsin_probe_runs_total");
	fails0 = family_sum(reg, "tocsin_probe_failures_total");
	cpu0 = cpu_seconds();
	t0 = probe_now_us();
	lag.measuring = true;
	run_for(base, seconds);
	t1 = probe_now_us();
	cpu = cpu_seconds() - cpu0;
	runs = family_sum(reg, "tocsin_probe_runs_total") - runs0;
	fails = family_sum(reg, "tocsin_probe_failures_total") - fails0;

	printf("mode=probes probes=%ld probes_per_s=%.0f failed=%.0f cpu_ms_per_probe=%.4f "
	       "loop_lag_p99_ms=%.2f rss_mib=%.1f\n",
	       count, runs / ((double)(t1 - t0) / 1e6), fails, runs > 0 ? cpu * 1000 / runs : 0,
	       lag_p99_ms(&lag), (double)rss_kib() / 1024);

	event_free(lag.ev);
	free(lag.samples);
	scheduler_free(sched);
	config_free(cfg);
	series_registry_free(reg);
	event_base_free(base);
	return 0;
}

struct ceiling {
	struct event_base *base;
	uint64_t done;
	uint64_t failed;
};

static size_t discard(char *data, size_t size, size_t count, void *arg)
{
	(void)data;
	(void)arg;
	return size * count;
}

static void transfer_done(CURL *easy, CURLcode code, void *arg)
{
	struct ceiling *c = arg;

	c->done++;
	if (code != CURLE_OK)
		c->failed++;
	curlev_add(c->base, easy, transfer_done, c);
}

static int bench_ceiling(const char *url, long concurrency, int seconds)
{
	struct ceiling c = {.base = event_base_new()};
	CURL **easy = xcalloc((size_t)concurrency, sizeof(*easy));
	uint64_t done0, t0, t1;
	double cpu0, cpu;

	curlev_ref();
	for (long i = 0; i < concurrency; i++) {
		easy[i] = curl_easy_init();
		curl_easy_setopt(easy[i], CURLOPT_URL, url);
		curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(easy[i], CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(easy[i], CURLOPT_FORBID_REUSE, 1L);
		curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
		curlev_add(c.base, easy[i], transfer_done, &c);
	}
	run_for(c.base, WARMUP_S);
	done0 = c.done;
	cpu0 = cpu_seconds();
	t0 = probe_now_us();
	run_for(c.base, seconds);
	t1 = probe_now_us();
	cpu = cpu_seconds() - cpu0;
	printf("mode=ceiling concurrency=%ld probes_per_s=%.0f failed=%llu cpu_ms_per_probe=%.4f "
	       "rss_mib=%.1f\n",
	       concurrency, (double)(c.done - done0) / ((double)(t1 - t0) / 1e6),
	       (unsigned long long)c.failed,
	       c.done > done0 ? cpu * 1000 / (double)(c.done - done0) : 0,
	       (double)rss_kib() / 1024);

	for (long i = 0; i < concurrency; i++) {
		curlev_remove(easy[i]);
		curl_easy_cleanup(easy[i]);
	}
	free(easy);
	curlev_unref();
	event_base_free(c.base);
	return 0;
}

int main(int argc, char **argv)
{
	long n;
	int seconds;

	if (argc != 5 || (strcmp(argv[1], "probes") != 0 && strcmp(argv[1], "ceiling") != 0)) {
		fprintf(stderr, "usage: %s probes|ceiling URL N SECONDS\n", argv[0]);
		return 2;
	}
	n = strtol(argv[3], NULL, 10);
	seconds = (int)strtol(argv[4], NULL, 10);
	if (n <= 0 || seconds <= 0) {
		fprintf(stderr, "N and SECONDS must be positive\n");
		return 2;
	}
	log_set_level(LOG_LEVEL_WARN);
	if (strcmp(argv[1], "probes") == 0)
		return bench_probes(argv[2], n, seconds);
	return bench_ceiling(argv[2], n, seconds);
}
