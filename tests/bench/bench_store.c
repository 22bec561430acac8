/*
 * Benchmark of the archive store: FILES series updated once per step for STEPS steps,
 * written through the store (directly or through rrdcached) or, for comparison, through
 * the stock librrd paths with one call per update: rrd_update_r() and rrdc_update().
 * Run by tests/bench/bench-store.sh, which starts rrdcached; prints one "RESULT" line.
 *
 * usage: bench_store -m store|rrd_update|rrdc_update -d DIR [-a unix:SOCKET]
 *                    [-n FILES] [-s STEPS]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rrd.h>
#include <rrd_client.h>

#include "collector/log.h"
#include "collector/rrdcached.h"
#include "collector/series.h"
#include "collector/store.h"

#define BENCH_T0     1700000000
#define BENCH_STEP   10
#define BENCH_GROUPS 100 /* metric names; files spread over this many directories */
/* Bounded wait for rrdcached to write everything after FLUSHALL. */
#define BENCH_FLUSH_WAIT_S 600

struct bench_series {
	struct series_family family;
	struct label label;
	struct series series;
	char metric[32];
	char instance[32];
	struct store_file *file;
};

struct bench {
	const char *mode;
	const char *dir;
	const char *address;
	long files;
	long steps;
	struct bench_series *series;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long parse_count(const char *text, const char *option)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0 || v > 100000000) {
		fprintf(stderr, "bench_store: invalid %s \"%s\": expected a positive integer\n",
			option, text);
		exit(2);
	}
	return v;
}

/* Reads one counter from rrdcached's STATS, or returns -1. */
static int64_t daemon_stat(struct rrdcached *c, const char *name)
{
	struct rrdcached_reply reply;
	size_t len = strlen(name);
	int64_t v = -1;

	if (rrdcached_command(c, "STATS", &reply) != 0) {
		return -1;
	}
	for (size_t i = 0; i < reply.line_count; i++) {
		if (strncmp(reply.lines[i], name, len) == 0 && reply.lines[i][len] == ':') {
			v = strtoll(reply.lines[i] + len + 1, NULL, 10);
		}
	}
	rrdcached_reply_free(&reply);
	return v;
}

/*
 * Sends FLUSHALL and polls STATS until DataSetsWritten has grown by `expected`.
 * Returns the seconds waited, or -1 when the wait timed out or the daemon failed.
 */
static double daemon_flush(const char *address, int64_t base, int64_t expected)
{
	struct rrdcached *c = rrdcached_new(address);
	struct rrdcached_reply reply;
	double start = now_s();
	double waited = -1;

	if (c == NULL || rrdcached_connect(c) != 0) {
		fprintf(stderr, "bench_store: cannot connect to %s\n", address);
		rrdcached_free(c);
		return -1;
	}
	if (rrdcached_command(c, "FLUSHALL", &reply) != 0 || reply.status < 0) {
		fprintf(stderr, "bench_store: FLUSHALL failed: %s\n", reply.message);
	}
	rrdcached_reply_free(&reply);
	while (now_s() - start < BENCH_FLUSH_WAIT_S) {
		int64_t written = daemon_stat(c, "DataSetsWritten");
		if (written < 0) {
			break;
		}
		if (written - base >= expected) {
			waited = now_s() - start;
			break;
		}
		usleep(20000);
	}
	rrdcached_free(c);
	return waited;
}

static int64_t daemon_written(const char *address)
{
	struct rrdcached *c = rrdcached_new(address);
	int64_t v = -1;

	if (c != NULL && rrdcached_connect(c) == 0) {
		v = daemon_stat(c, "DataSetsWritten");
	}
	rrdcached_free(c);
	return v;
}

static void make_series(struct bench *b)
{
	b->series = calloc((size_t)b->files, sizeof *b->series);
	if (b->series == NULL) {
		perror("bench_store: calloc");
		exit(1);
	}
	for (long i = 0; i < b->files; i++) {
		struct bench_series *s = &b->series[i];
		snprintf(s->metric, sizeof s->metric, "bench_metric_%02ld", i % BENCH_GROUPS);
		snprintf(s->instance, sizeof s->instance, "host-%05ld", i);
		s->family.name = s->metric;
		s->family.type = METRIC_GAUGE;
		s->label = (struct label){.name = "instance", .value = s->instance};
		s->series.family = &s->family;
		s->series.labels = &s->label;
		s->series.label_count = 1;
	}
}

static struct store *open_store(const struct bench *b, const char *address)
{
	struct store_options opts = {
	    .data_dir = b->dir,
	    .rrdcached = address,
	    .retention = {.count = 2,
			  .tier = {{.step_s = 10, .keep_s = 3600},
				   {.step_s = 300, .keep_s = 86400}}},
	};
	struct store *st = store_new(&opts);

	if (st == NULL) {
		fprintf(stderr, "bench_store: cannot open the store in %s\n", b->dir);
		exit(1);
	}
	for (long i = 0; i < b->files; i++) {
		b->series[i].file = store_file_get(st, &b->series[i].series, BENCH_STEP, 0);
	}
	return st;
}

/* Creates every file through the store with its first value; returns the seconds. */
static double create_files(const struct bench *b, struct store *st)
{
	double start = now_s();
	struct store_stats stats;

	for (long i = 0; i < b->files; i++) {
		store_submit(st, b->series[i].file, BENCH_T0 + BENCH_STEP, 0);
	}
	store_flush(st);
	store_get_stats(st, &stats);
	if (stats.files_created != (uint64_t)b->files) {
		fprintf(stderr, "bench_store: created %" PRIu64 " of %ld files\n",
			stats.files_created, b->files);
		exit(1);
	}
	return now_s() - start;
}

static int64_t step_time(long step)
{
	return BENCH_T0 + BENCH_STEP * (step + 1);
}

/*
 * Seconds from the first update call:
 *   submit_s  until the last store_submit() or stock call returned,
 *   accept_s  until store_flush() returned (written by librrd, or accepted by rrdcached),
 *   total_s   until the values are in the files.
 */
struct result {
	double create_s;
	double submit_s;
	double accept_s;
	double total_s;
	double max_call_us;
	uint64_t updates;
	uint64_t errors;
};

static void run_store(const struct bench *b, struct result *r)
{
	struct store *st = open_store(b, b->address);
	struct store_stats stats;
	int64_t base = 0;
	double start, t;

	r->create_s = create_files(b, st);
	if (b->address != NULL) {
		base = daemon_written(b->address);
		if (daemon_flush(b->address, base, b->files) < 0) {
			fprintf(stderr, "bench_store: rrdcached did not write the created files\n");
		}
		base = daemon_written(b->address);
	}
	start = now_s();
	for (long s = 1; s <= b->steps; s++) {
		for (long i = 0; i < b->files; i++) {
			double before = now_s();
			store_submit(st, b->series[i].file, step_time(s), (double)(s * i % 1000));
			t = (now_s() - before) * 1e6;
			if (t > r->max_call_us) {
				r->max_call_us = t;
			}
		}
	}
	r->submit_s = now_s() - start;
	store_flush(st);
	r->accept_s = now_s() - start;
	store_get_stats(st, &stats);
	r->updates = stats.written - (uint64_t)b->files;
	r->errors = stats.submitted - stats.written;
	if (b->address != NULL && daemon_flush(b->address, base, (int64_t)r->updates) < 0) {
		fprintf(stderr, "bench_store: rrdcached did not write every update in time\n");
		r->errors++;
	}
	r->total_s = now_s() - start;
	store_free(st);
}

/* Stock paths: files created by the store (same layout), then one call per update. */
static void run_stock(const struct bench *b, bool daemon, struct result *r)
{
	struct store *st = open_store(b, NULL);
	char value[64];
	const char *argv[] = {value};
	int64_t base = 0;
	double start, t;

	r->create_s = create_files(b, st);
	if (daemon) {
		base = daemon_written(b->address);
		if (rrdc_connect(b->address) != 0) {
			fprintf(stderr, "bench_store: rrdc_connect %s: %s\n", b->address,
				rrd_get_error());
			exit(1);
		}
	}
	start = now_s();
	for (long s = 1; s <= b->steps; s++) {
		for (long i = 0; i < b->files; i++) {
			const char *path = store_file_path(b->series[i].file);
			double before = now_s();
			int rc;
			snprintf(value, sizeof value, "%" PRId64 ":%ld", step_time(s),
				 s * i % 1000);
			rrd_clear_error();
			rc =
			    daemon ? rrdc_update(path, 1, argv) : rrd_update_r(path, NULL, 1, argv);
			t = (now_s() - before) * 1e6;
			if (t > r->max_call_us) {
				r->max_call_us = t;
			}
			if (rc != 0) {
				if (r->errors++ < 5) {
					fprintf(stderr, "bench_store: update %s: %s\n", path,
						rrd_get_error());
				}
			} else {
				r->updates++;
			}
		}
	}
	r->submit_s = now_s() - start;
	r->accept_s = r->submit_s;
	if (daemon) {
		rrdc_disconnect();
		if (daemon_flush(b->address, base, (int64_t)r->updates) < 0) {
			fprintf(stderr,
				"bench_store: rrdcached did not write every update in time\n");
			r->errors++;
		}
	}
	r->total_s = now_s() - start;
	store_free(st);
}

int main(int argc, char **argv)
{
	struct bench b = {.files = 10000, .steps = 30};
	struct result r = {0};
	int opt;

	while ((opt = getopt(argc, argv, "m:d:a:n:s:")) != -1) {
		switch (opt) {
		case 'm':
			b.mode = optarg;
			break;
		case 'd':
			b.dir = optarg;
			break;
		case 'a':
			b.address = optarg;
			break;
		case 'n':
			b.files = parse_count(optarg, "-n");
			break;
		case 's':
			b.steps = parse_count(optarg, "-s");
			break;
		default:
			fprintf(stderr, "usage: bench_store -m store|rrd_update|rrdc_update -d DIR "
					"[-a unix:SOCKET] [-n FILES] [-s STEPS]\n");
			return 2;
		}
	}
	if (b.mode == NULL || b.dir == NULL) {
		fprintf(stderr, "bench_store: -m and -d are required\n");
		return 2;
	}
	if (strcmp(b.mode, "rrdc_update") == 0 && b.address == NULL) {
		fprintf(stderr, "bench_store: mode rrdc_update needs -a unix:SOCKET\n");
		return 2;
	}
	log_set_level(LOG_LEVEL_WARN);
	make_series(&b);
	if (strcmp(b.mode, "store") == 0) {
		run_store(&b, &r);
	} else if (strcmp(b.mode, "rrd_update") == 0) {
		b.address = NULL;
		run_stock(&b, false, &r);
	} else if (strcmp(b.mode, "rrdc_update") == 0) {
		run_stock(&b, true, &r);
	} else {
		fprintf(stderr, "bench_store: unknown mode %s\n", b.mode);
		return 2;
	}
	printf("RESULT mode=%s%s files=%ld steps=%ld create_s=%.3f files_per_s=%.0f "
	       "updates=%" PRIu64 " errors=%" PRIu64 " submit_s=%.3f max_call_us=%.0f "
	       "accept_s=%.3f accepted_per_s=%.0f total_s=%.3f updates_per_s=%.0f\n",
	       b.mode, strcmp(b.mode, "store") == 0 && b.address != NULL ? "+rrdcached" : "",
	       b.files, b.steps, r.create_s, (double)b.files / r.create_s, r.updates, r.errors,
	       r.submit_s, r.max_call_us, r.accept_s, (double)r.updates / r.accept_s, r.total_s,
	       (double)r.updates / r.total_s);
	free(b.series);
	return r.errors == 0 ? 0 : 1;
}
