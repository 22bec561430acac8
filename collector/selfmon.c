/*
 * tocsin's own metrics; see selfmon.h.
 */
#include "collector/selfmon.h"

#include <dirent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "collector/scheduler.h"
#include "collector/series.h"
#include "collector/store.h"
#include "collector/xalloc.h"
#include "autoconf.h"
#include "probes/probe.h"
#include "web/http.h"

#define LAG_TICK_MS 250
#define LAG_WINDOW  (60 * 1000 / LAG_TICK_MS)

struct selfmon {
	struct event_base *base;
	struct series_registry *reg;
	struct store *store;
	struct scheduler *sched;
	struct http_server *http;
	struct event *tick;
	uint64_t expected_us; /* monotonic time the lag timer should fire */
	double lag[LAG_WINDOW];
	size_t lag_count;
	size_t lag_next;
	double lag_last;
	int64_t start_wall_ms;
	bool reload_ok;
	int64_t reload_wall_ms;
	uint64_t reload_failures;
	uint64_t config_hash;
};

static const struct metric_desc d_build_info = {"tocsin_build_info", "tocsin version; always 1.",
						METRIC_GAUGE};
static const struct metric_desc d_series = {"tocsin_series", "Series in the registry.",
					    METRIC_GAUGE};
static const struct metric_desc d_samples = {"tocsin_samples_total",
					     "Samples committed by probe runs.", METRIC_COUNTER};
static const struct metric_desc d_probes = {"tocsin_probes", "Probes configured.", METRIC_GAUGE};
static const struct metric_desc d_store_written = {"tocsin_store_updates_total",
						   "Archive updates written.", METRIC_COUNTER};
static const struct metric_desc d_store_dropped = {
    "tocsin_store_updates_dropped_total", "Archive updates dropped, by reason.", METRIC_COUNTER};
static const struct metric_desc d_store_errors = {
    "tocsin_store_errors_total",
    "Failed archive operations by kind: connect (rrdcached), create, update.", METRIC_COUNTER};
static const struct metric_desc d_store_queue = {
    "tocsin_store_queue_depth", "Archive updates waiting for the writer thread.", METRIC_GAUGE};
static const struct metric_desc d_store_files = {"tocsin_store_files_created_total",
						 "Archive files created.", METRIC_COUNTER};
static const struct metric_desc d_store_batches = {
    "tocsin_store_batches_total", "Batches handed to librrd or rrdcached.", METRIC_COUNTER};
static const struct metric_desc d_lag = {"tocsin_loop_lag_seconds",
					 "Event loop lag: how late the last 250 ms timer fired.",
					 METRIC_GAUGE};
static const struct metric_desc d_lag_max = {
    "tocsin_loop_lag_max_seconds", "Largest event loop lag over the last minute.", METRIC_GAUGE};
static const struct metric_desc d_lag_p99 = {
    "tocsin_loop_lag_p99_seconds", "99th percentile of event loop lag over the last minute.",
    METRIC_GAUGE};
static const struct metric_desc d_http_requests = {"tocsin_http_requests_total",
						   "HTTP requests served.", METRIC_COUNTER};
static const struct metric_desc d_http_rejected = {
    "tocsin_http_rejected_total",
    "HTTP requests and connections rejected by a limit, authorization or a failed TLS handshake.",
    METRIC_COUNTER};
static const struct metric_desc d_scrape_seconds = {
    "tocsin_metrics_render_seconds", "Time spent rendering the previous /metrics response.",
    METRIC_GAUGE};
static const struct metric_desc d_reload_ok = {"tocsin_config_last_reload_successful",
					       "Whether the last config load succeeded.",
					       METRIC_GAUGE};
static const struct metric_desc d_reload_time = {
    "tocsin_config_last_reload_success_timestamp_seconds",
    "Time of the last successful config load.", METRIC_GAUGE};
static const struct metric_desc d_reload_failures = {"tocsin_config_reload_failures_total",
						     "Config reloads rejected because of errors.",
						     METRIC_COUNTER};
static const struct metric_desc d_rss = {"process_resident_memory_bytes",
					 "Resident memory size in bytes.", METRIC_GAUGE};
static const struct metric_desc d_vsz = {"process_virtual_memory_bytes",
					 "Virtual memory size in bytes.", METRIC_GAUGE};
static const struct metric_desc d_fds = {"process_open_fds", "Number of open file descriptors.",
					 METRIC_GAUGE};
static const struct metric_desc d_cpu = {"process_cpu_seconds_total",
					 "Total user and system CPU time spent in seconds.",
					 METRIC_COUNTER};
static const struct metric_desc d_start = {
    "process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.",
    METRIC_GAUGE};

static void lag_tick(evutil_socket_t fd, short what, void *arg)
{
	struct selfmon *mon = arg;
	uint64_t now = probe_now_us();
	struct timeval tv = {0, LAG_TICK_MS * 1000};

	(void)fd;
	(void)what;
	mon->lag_last = now > mon->expected_us ? (double)(now - mon->expected_us) / 1e6 : 0;
	mon->lag[mon->lag_next] = mon->lag_last;
	mon->lag_next = (mon->lag_next + 1) % LAG_WINDOW;
	if (mon->lag_count < LAG_WINDOW)
		mon->lag_count++;
	mon->expected_us = probe_now_us() + LAG_TICK_MS * 1000;
	evtimer_add(mon->tick, &tv);
}

struct selfmon *selfmon_new(struct event_base *base, struct series_registry *reg)
{
	struct selfmon *mon = xcalloc(1, sizeof(*mon));
	struct timeval tv = {0, LAG_TICK_MS * 1000};

	mon->base = base;
	mon->reg = reg;
	mon->start_wall_ms = probe_wall_ms();
	mon->tick = evtimer_new(base, lag_tick, mon);
	mon->expected_us = probe_now_us() + LAG_TICK_MS * 1000;
	evtimer_add(mon->tick, &tv);
	return mon;
}

void selfmon_set_sources(struct selfmon *mon, struct store *store, struct scheduler *sched,
			 struct http_server *http)
{
	mon->store = store;
	mon->sched = sched;
	mon->http = http;
}

void selfmon_config_loaded(struct selfmon *mon, bool ok, uint64_t config_hash)
{
	mon->reload_ok = ok;
	if (ok) {
		mon->reload_wall_ms = probe_wall_ms();
		mon->config_hash = config_hash;
	} else {
		mon->reload_failures++;
	}
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return (x > y) - (x < y);
}

double selfmon_loop_lag_p99(const struct selfmon *mon)
{
	double sorted[LAG_WINDOW];
	size_t n = mon->lag_count;

	if (n == 0)
		return 0;
	memcpy(sorted, mon->lag, n * sizeof(double));
	qsort(sorted, n, sizeof(double), compare_double);
	return sorted[(n * 99 + 99) / 100 - 1];
}

static void set(struct selfmon *mon, const struct metric_desc *d, const struct label *labels,
		size_t n, double value)
{
	struct series *s = series_intern(mon->reg, d, labels, n);

	if (s != NULL)
		series_set(s, value, probe_wall_ms());
}

static void refresh_process(struct selfmon *mon)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned long vsz_pages = 0;
	unsigned long rss_pages = 0;
	struct rusage ru;
	FILE *f = fopen("/proc/self/statm", "r");
	DIR *dir;
	size_t fds = 0;

	if (f != NULL) {
		if (fscanf(f, "%lu %lu", &vsz_pages, &rss_pages) == 2) {
			set(mon, &d_rss, NULL, 0, (double)rss_pages * (double)page);
			set(mon, &d_vsz, NULL, 0, (double)vsz_pages * (double)page);
		}
		fclose(f);
	}

	dir = opendir("/proc/self/fd");
	if (dir != NULL) {
		struct dirent *e;

		while ((e = readdir(dir)) != NULL)
			fds += e->d_name[0] != '.';
		closedir(dir);
		set(mon, &d_fds, NULL, 0, (double)(fds - 1)); /* minus the directory's own fd */
	}

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;

		set(mon, &d_cpu, NULL, 0, cpu);
	}
	set(mon, &d_start, NULL, 0, (double)mon->start_wall_ms / 1000.0);
}

static void refresh_store(struct selfmon *mon)
{
	struct store_stats st;

	if (mon->store == NULL)
		return;
	store_get_stats(mon->store, &st);
	set(mon, &d_store_written, NULL, 0, (double)st.written);
	set(mon, &d_store_queue, NULL, 0, (double)st.queue_depth);
	set(mon, &d_store_files, NULL, 0, (double)st.files_created);
	set(mon, &d_store_batches, NULL, 0, (double)st.batches);
	for (int r = 0; r < STORE_DROP_REASON_COUNT; r++) {
		struct label l = {"reason", store_drop_reason_name((enum store_drop_reason)r)};

		set(mon, &d_store_dropped, &l, 1, (double)st.dropped[r]);
	}
	for (int k = 0; k < STORE_ERROR_KIND_COUNT; k++) {
		struct label l = {"kind", store_error_kind_name((enum store_error_kind)k)};

		set(mon, &d_store_errors, &l, 1, (double)st.errors[k]);
	}
}

void selfmon_refresh(struct selfmon *mon)
{
	struct label version = {"version", PACKAGE_VERSION};
	double lag_max = 0;

	set(mon, &d_build_info, &version, 1, 1);
	for (size_t i = 0; i < mon->lag_count; i++)
		lag_max = mon->lag[i] > lag_max ? mon->lag[i] : lag_max;
	set(mon, &d_lag, NULL, 0, mon->lag_last);
	set(mon, &d_lag_max, NULL, 0, lag_max);
	set(mon, &d_lag_p99, NULL, 0, selfmon_loop_lag_p99(mon));

	set(mon, &d_reload_ok, NULL, 0, mon->reload_ok ? 1 : 0);
	if (mon->reload_wall_ms != 0)
		set(mon, &d_reload_time, NULL, 0, (double)mon->reload_wall_ms / 1000.0);
	set(mon, &d_reload_failures, NULL, 0, (double)mon->reload_failures);

	if (mon->sched != NULL) {
		set(mon, &d_probes, NULL, 0, (double)scheduler_probe_count(mon->sched));
		set(mon, &d_samples, NULL, 0, (double)scheduler_samples_total(mon->sched));
	}
	if (mon->http != NULL) {
		struct http_stats hs;

		http_server_stats(mon->http, &hs);
		set(mon, &d_http_requests, NULL, 0, (double)hs.requests);
		for (size_t i = 0; i < HTTP_REJECT_COUNT; i++) {
			struct label reason = {"reason", http_reject_reason_name(i)};

			set(mon, &d_http_rejected, &reason, 1, (double)hs.rejected[i]);
		}
		set(mon, &d_scrape_seconds, NULL, 0, hs.last_scrape_seconds);
	}
	refresh_store(mon);
	refresh_process(mon);
	/* Last, so that it counts the gauges above. */
	set(mon, &d_series, NULL, 0, (double)series_registry_count(mon->reg) + 1);
}

void selfmon_free(struct selfmon *mon)
{
	if (mon == NULL)
		return;
	event_free(mon->tick);
	free(mon);
}
