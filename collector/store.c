/*
 * The archive store: file naming, the bounded queue between the loop thread and the
 * writer thread, and the writer itself. The writer groups each drain of the queue by
 * file and writes it with one rrd_update_r() call per file or one rrdcached BATCH
 * exchange.
 *
 * Threads. The loop thread owns the file table (store_file_get) and only appends to
 * `pending` under `lock`. The writer thread owns everything in struct store_writer and
 * the writer fields of each struct store_file. A drain swaps `pending` with the writer's
 * own array, so the lock is never held across I/O.
 */
#include "collector/store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <rrd.h>

#include "collector/clock.h"
#include "collector/hash.h"
#include "collector/log.h"
#include "collector/rrdcached.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"

#define STORE_QUEUE_DEFAULT 1000000
/* Maximum length of the readable part of a name. The hash keeps names distinct. */
#define STORE_NAME_TEXT_MAX 128
/* The DS name; every file has this one data source. */
#define STORE_DS_NAME "value"
/* Rounds of re-sending values that rrdcached skipped after a rejected value. */
#define STORE_RETRY_ROUNDS     3
#define STORE_RECONNECT_MIN_MS 100
#define STORE_RECONNECT_MAX_MS 30000
/* How long a flush or shutdown waits for an unreachable rrdcached before dropping. */
#define STORE_GIVE_UP_MS 10000
/* DS and RRA definitions: one DS, three RRAs per tier. */
#define STORE_CREATE_ARGS_MAX (1 + 3 * RETENTION_MAX_TIERS)
#define STORE_CREATE_ARG_SIZE 64

struct store_file {
	char *path;              /* data_dir/METRIC/NAME.rrd, as librrd opens it */
	const char *daemon_path; /* path sent to rrdcached: path, or relative for TCP */
	size_t dir_length;       /* path[0, dir_length) is the metric directory */
	uint64_t key;            /* hash of the path, for the file table */
	enum metric_type type;
	uint32_t step_s;
	uint32_t heartbeat_s;

	/* Writer thread only. */
	bool opened;    /* `last` is known; the file exists */
	int64_t last;   /* time of the last update in the file (or in rrdcached) */
	uint64_t epoch; /* drain in which `group` is valid */
	size_t group;   /* index into store_writer.groups */
};

struct store_update {
	struct store_file *file;
	int64_t time;
	double value;
};

struct store_queue {
	struct store_update *items;
	size_t count;
	size_t capacity;
};

/* The updates of one file in one drain: grouped[start, start + count). */
struct store_group {
	struct store_file *file;
	size_t start;
	size_t count;
};

enum store_line_result {
	STORE_LINE_OK,
	STORE_LINE_NOT_NEWER,
	STORE_LINE_ERROR,
};

/* One UPDATE command of a BATCH exchange and what rrdcached replied to it. */
struct store_line {
	struct store_file *file;
	size_t start; /* into grouped */
	size_t count;
	enum store_line_result result;
	int64_t rejected_time; /* NOT_NEWER: the value rrdcached refused */
	int64_t daemon_last;   /* NOT_NEWER: rrdcached's last update time */
};

struct store_writer {
	struct store_queue drain;
	struct store_queue retry;
	struct store_update *grouped;
	size_t grouped_capacity;
	struct store_group *groups;
	size_t group_count;
	size_t group_capacity;
	uint64_t epoch;

	/* Direct writes: "TIME:VALUE" strings and the argv pointing into them. */
	char *text;
	size_t text_capacity;
	const char **argv;
	size_t argv_capacity;

	/* rrdcached */
	struct rrdcached_batch batch;
	struct store_line *lines;
	size_t line_count;
	size_t line_capacity;
	char line_error[256]; /* first generic error text of the current exchange */
	uint32_t reconnect_ms;
	uint64_t failing_since_ms;

	/* Counted during a drain, added to store.stats at its end. */
	uint64_t written;
	uint64_t dropped[STORE_DROP_REASON_COUNT];
	uint64_t errors[STORE_ERROR_KIND_COUNT];
	uint64_t created;
	bool drain_not_newer;
	bool drain_update_error;

	struct throttle not_newer_log;
	struct throttle update_error_log;
	struct throttle open_error_log;
	struct throttle connection_log;
};

struct store {
	char *data_dir;
	struct rrdcached *daemon;
	struct retention retention;
	size_t queue_max;

	/* Loop thread only: open-addressing table of files, sized a power of two. */
	struct store_file **table;
	size_t table_size;
	size_t file_count;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work; /* pending updates, a flush waiter or stopping */
	pthread_cond_t done; /* `processed` advanced */
	/* Guarded by lock. */
	struct store_queue pending;
	size_t in_flight; /* updates taken by the writer, not yet processed */
	uint64_t enqueued;
	uint64_t processed;
	unsigned flush_waiters;
	bool stopping;
	struct store_stats stats;
	struct throttle queue_full_log;

	struct store_writer writer;
};

const char *store_drop_reason_name(enum store_drop_reason reason)
{
	static const char *const names[STORE_DROP_REASON_COUNT] = {
	    [STORE_DROP_NOT_NEWER] = "not_newer",
	    [STORE_DROP_QUEUE_FULL] = "queue_full",
	    [STORE_DROP_ERROR] = "error",
	};

	if ((unsigned)reason >= STORE_DROP_REASON_COUNT) {
		return "unknown";
	}
	return names[reason];
}

const char *store_error_kind_name(enum store_error_kind kind)
{
	static const char *const names[STORE_ERROR_KIND_COUNT] = {
	    [STORE_ERROR_CONNECT] = "connect",
	    [STORE_ERROR_CREATE] = "create",
	    [STORE_ERROR_UPDATE] = "update",
	};

	if ((unsigned)kind >= STORE_ERROR_KIND_COUNT) {
		return "unknown";
	}
	return names[kind];
}

/* ---- Paths ---- */

static bool is_safe_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

/* Appends s with unsafe bytes replaced; returns true when anything was replaced. */
static bool append_sanitized(char *buf, size_t *len, size_t max, const char *s)
{
	bool changed = false;

	for (; *s != '\0'; s++) {
		if (*len >= max) {
			return true;
		}
		if (is_safe_byte((unsigned char)*s)) {
			buf[(*len)++] = *s;
		} else {
			buf[(*len)++] = '_';
			changed = true;
		}
	}
	return changed;
}

/* A leading '.' could form "." or ".." and a leading '-' reads as an option. */
static bool fix_leading_byte(char *buf, size_t len)
{
	if (len > 0 && (buf[0] == '.' || buf[0] == '-')) {
		buf[0] = '_';
		return true;
	}
	return false;
}

static int compare_labels(const void *a, const void *b)
{
	const struct label *const *la = a;
	const struct label *const *lb = b;
	int c = strcmp((*la)->name, (*lb)->name);

	return c != 0 ? c : strcmp((*la)->value, (*lb)->value);
}

/*
 * Writes "METRIC_DIR/FILE.rrd" into buf (at least PATH_MAX bytes). Labels are sorted
 * here as well, so that a hand-built series with unsorted labels maps to the same file.
 */
static void build_relative_path(const struct series *s, char *buf, size_t size)
{
	const char *metric = s->family->name != NULL ? s->family->name : "";
	char name[STORE_NAME_TEXT_MAX + 32];
	size_t len = 0;
	bool changed;

	changed = append_sanitized(name, &len, STORE_NAME_TEXT_MAX, metric);
	changed |= fix_leading_byte(name, len);
	if (changed || len == 0) {
		len += (size_t)snprintf(name + len, sizeof name - len, "_%016" PRIx64,
					hash_string(HASH_FNV_OFFSET, metric));
	}
	name[len] = '\0';

	if (s->label_count == 0) {
		snprintf(buf, size, "%s/_.rrd", name);
		return;
	}

	const struct label **sorted = xcalloc(s->label_count, sizeof *sorted);
	uint64_t h = HASH_FNV_OFFSET;
	char text[STORE_NAME_TEXT_MAX + 1];
	size_t text_len = 0;

	for (size_t i = 0; i < s->label_count; i++) {
		sorted[i] = &s->labels[i];
	}
	qsort(sorted, s->label_count, sizeof *sorted, compare_labels);
	for (size_t i = 0; i < s->label_count; i++) {
		/* The terminating NULs separate names from values in the hashed bytes. */
		h = hash_bytes(h, sorted[i]->name, strlen(sorted[i]->name) + 1);
		h = hash_bytes(h, sorted[i]->value, strlen(sorted[i]->value) + 1);
		if (i > 0) {
			append_sanitized(text, &text_len, STORE_NAME_TEXT_MAX, "__");
		}
		append_sanitized(text, &text_len, STORE_NAME_TEXT_MAX, sorted[i]->name);
		append_sanitized(text, &text_len, STORE_NAME_TEXT_MAX, "-");
		append_sanitized(text, &text_len, STORE_NAME_TEXT_MAX, sorted[i]->value);
	}
	free(sorted);
	fix_leading_byte(text, text_len);
	text[text_len] = '\0';
	snprintf(buf, size, "%s/%s_%016" PRIx64 ".rrd", name, text, h);
}

/* ---- File table (loop thread) ---- */

static struct store_file **table_slot(struct store *st, uint64_t key, const char *path)
{
	size_t mask = st->table_size - 1;

	for (size_t i = (size_t)key & mask;; i = (i + 1) & mask) {
		struct store_file *f = st->table[i];
		if (f == NULL || (f->key == key && strcmp(f->path, path) == 0)) {
			return &st->table[i];
		}
	}
}

static void table_grow(struct store *st)
{
	struct store_file **old = st->table;
	size_t old_size = st->table_size;

	st->table_size = old_size == 0 ? 64 : old_size * 2;
	st->table = xcalloc(st->table_size, sizeof *st->table);
	for (size_t i = 0; i < old_size; i++) {
		if (old[i] != NULL) {
			*table_slot(st, old[i]->key, old[i]->path) = old[i];
		}
	}
	free(old);
}

struct store_file *store_file_get(struct store *st, const struct series *s, uint32_t step_s,
				  uint32_t heartbeat_s)
{
	char relative[PATH_MAX];
	char *path;
	struct store_file **slot;
	struct store_file *f;
	uint64_t key;

	if (s == NULL || s->family == NULL) {
		log_error("store", NULL, "cannot archive a series without a metric family");
		return NULL;
	}
	if (step_s == 0) {
		log_error("store", NULL, "cannot archive metric %s: step is 0 s, expected >= 1 s",
			  s->family->name);
		return NULL;
	}
	build_relative_path(s, relative, sizeof relative);
	path = xasprintf("%s/%s", st->data_dir, relative);
	key = hash_string(HASH_FNV_OFFSET, path);
	if ((st->file_count + 1) * 2 > st->table_size) {
		table_grow(st);
	}
	slot = table_slot(st, key, path);
	if (*slot != NULL) {
		free(path);
		return *slot;
	}

	f = xcalloc(1, sizeof *f);
	f->path = path;
	f->dir_length = strlen(st->data_dir) + 1 + (size_t)(strchr(relative, '/') - relative);
	/* For TCP the daemon resolves paths against its own base directory. */
	if (st->daemon != NULL && !rrdcached_is_unix(st->daemon)) {
		f->daemon_path = path + strlen(st->data_dir) + 1;
	} else {
		f->daemon_path = path;
	}
	f->key = key;
	f->type = s->family->type;
	f->step_s = step_s;
	f->heartbeat_s = heartbeat_s != 0 ? heartbeat_s : 2 * step_s;
	*slot = f;
	st->file_count++;
	return f;
}

const char *store_file_path(const struct store_file *f)
{
	return f->path;
}

/* ---- Queue (loop thread side) ---- */

static void queue_push(struct store_queue *q, struct store_file *f, int64_t t, double v)
{
	if (q->count == q->capacity) {
		q->items =
		    xreallocarray_grow(q->items, &q->capacity, q->count + 1, sizeof *q->items);
	}
	q->items[q->count++] = (struct store_update){.file = f, .time = t, .value = v};
}

void store_submit(struct store *st, struct store_file *f, int64_t unix_s, double value)
{
	bool log_drop = false;
	uint64_t suppressed = 0;

	pthread_mutex_lock(&st->lock);
	st->stats.submitted++;
	if (st->pending.count + st->in_flight >= st->queue_max) {
		st->stats.dropped[STORE_DROP_QUEUE_FULL]++;
		log_drop = throttle_fail(&st->queue_full_log, clock_monotonic_ms(), &suppressed);
	} else {
		throttle_ok(&st->queue_full_log, NULL);
		queue_push(&st->pending, f, unix_s, value);
		st->enqueued++;
		if (st->pending.count == 1) {
			pthread_cond_signal(&st->work);
		}
	}
	pthread_mutex_unlock(&st->lock);
	if (log_drop) {
		log_warn("store", NULL,
			 "update queue is full (%zu updates); dropping updates (%" PRIu64
			 " more dropped since the last report)",
			 st->queue_max, suppressed);
	}
}

void store_flush(struct store *st)
{
	uint64_t target;

	pthread_mutex_lock(&st->lock);
	target = st->enqueued;
	st->flush_waiters++;
	pthread_cond_signal(&st->work);
	while (st->processed < target) {
		pthread_cond_wait(&st->done, &st->lock);
	}
	st->flush_waiters--;
	pthread_mutex_unlock(&st->lock);
}

int store_flush_timeout(struct store *st, uint64_t timeout_ms)
{
	struct timespec deadline;
	uint64_t target;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)(timeout_ms / 1000);
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}

	pthread_mutex_lock(&st->lock);
	target = st->enqueued;
	st->flush_waiters++;
	pthread_cond_signal(&st->work);
	while (st->processed < target && rc == 0) {
		if (pthread_cond_timedwait(&st->done, &st->lock, &deadline) == ETIMEDOUT)
			rc = st->processed < target ? -1 : 0;
	}
	st->flush_waiters--;
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void store_get_stats(struct store *st, struct store_stats *out)
{
	pthread_mutex_lock(&st->lock);
	*out = st->stats;
	out->queue_depth = st->pending.count + st->in_flight;
	pthread_mutex_unlock(&st->lock);
}

/* ---- Writer: shared steps ---- */

static void count_drop(struct store *st, enum store_drop_reason reason, uint64_t n)
{
	st->writer.dropped[reason] += n;
}

static void log_not_newer(struct store *st, const struct store_file *f, int64_t t, int64_t last)
{
	struct store_writer *w = &st->writer;
	uint64_t suppressed = 0;
	char ids[PATH_MAX + 16];

	w->drain_not_newer = true;
	if (!throttle_fail(&w->not_newer_log, clock_monotonic_ms(), &suppressed)) {
		return;
	}
	log_warn("store", log_ids(ids, sizeof ids, "file", f->path, NULL),
		 "update at %" PRId64 " is not newer than the last update at %" PRId64
		 "; dropped (%" PRIu64 " more such drops since the last report)",
		 t, last, suppressed);
}

static void log_update_error(struct store *st, const struct store_file *f, uint64_t values,
			     const char *error)
{
	struct store_writer *w = &st->writer;
	uint64_t suppressed = 0;
	char ids[PATH_MAX + 16];

	w->drain_update_error = true;
	w->errors[STORE_ERROR_UPDATE]++;
	if (!throttle_fail(&w->update_error_log, clock_monotonic_ms(), &suppressed)) {
		return;
	}
	log_error("store", log_ids(ids, sizeof ids, "file", f->path, NULL),
		  "update failed, %" PRIu64 " values dropped (%" PRIu64
		  " more failed updates since the last report): %s",
		  values, suppressed, error);
}

static void log_open_error(struct store *st, const struct store_file *f, const char *what,
			   const char *error)
{
	uint64_t suppressed = 0;
	char ids[PATH_MAX + 16];

	st->writer.errors[STORE_ERROR_CREATE]++;
	if (!throttle_fail(&st->writer.open_error_log, clock_monotonic_ms(), &suppressed)) {
		return;
	}
	log_error("store", log_ids(ids, sizeof ids, "file", f->path, NULL),
		  "%s failed (%" PRIu64 " more such failures since the last report): %s", what,
		  suppressed, error);
}

/* The last multiple of the step before `first`: the first update is then accepted. */
static int64_t create_start(const struct store_file *f, int64_t first)
{
	int64_t step = f->step_s;

	return ((first - 1) / step) * step;
}

/* Fills args with the DS and RRA definitions; returns their number. */
static size_t build_create_args(const struct store *st, const struct store_file *f,
				char args[][STORE_CREATE_ARG_SIZE])
{
	static const char *const cfs[] = {"AVERAGE", "MIN", "MAX"};
	uint64_t rows[RETENTION_MAX_TIERS];
	uint64_t pdps[RETENTION_MAX_TIERS];
	size_t tiers = 0;
	size_t n = 0;

	/* DDERIVE, not DERIVE: counters such as CPU seconds are fractional, and DERIVE
	 * rejects any value that is not an integer. Minimum 0 turns a reset into unknown. */
	if (f->type == METRIC_COUNTER || f->type == METRIC_HISTOGRAM) {
		snprintf(args[n++], STORE_CREATE_ARG_SIZE, "DS:%s:DDERIVE:%" PRIu32 ":0:U",
			 STORE_DS_NAME, f->heartbeat_s);
	} else {
		snprintf(args[n++], STORE_CREATE_ARG_SIZE, "DS:%s:GAUGE:%" PRIu32 ":U:U",
			 STORE_DS_NAME, f->heartbeat_s);
	}
	/* Tiers finer than the series step collapse to one row per step; merge them. */
	for (size_t i = 0; i < st->retention.count; i++) {
		const struct retention_tier *t = &st->retention.tier[i];
		uint64_t pdp = t->step_s / f->step_s;
		uint64_t r;
		size_t j;

		if (pdp == 0) {
			pdp = 1;
		}
		r = t->keep_s / (pdp * f->step_s);
		if (r == 0) {
			r = 1;
		}
		for (j = 0; j < tiers && pdps[j] != pdp; j++) {
		}
		if (j < tiers) {
			rows[j] = r > rows[j] ? r : rows[j];
			continue;
		}
		pdps[tiers] = pdp;
		rows[tiers] = r;
		tiers++;
	}
	for (size_t i = 0; i < tiers; i++) {
		for (size_t c = 0; c < 3; c++) {
			snprintf(args[n++], STORE_CREATE_ARG_SIZE,
				 "RRA:%s:0.5:%" PRIu64 ":%" PRIu64, cfs[c], pdps[i], rows[i]);
		}
	}
	return n;
}

/* Creates the metric directory; an existing one is fine. */
static int make_metric_dir(const struct store_file *f)
{
	char dir[PATH_MAX];

	if (f->dir_length >= sizeof dir) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, f->path, f->dir_length);
	dir[f->dir_length] = '\0';
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		return -1;
	}
	return 0;
}

/*
 * Keeps, in place, the values newer than the file's last update and than each other,
 * in submission order, and counts the rest as not_newer. Returns how many remain.
 */
static size_t filter_not_newer(struct store *st, struct store_file *f, struct store_update *v,
			       size_t count)
{
	int64_t last = f->last;
	size_t kept = 0;

	for (size_t i = 0; i < count; i++) {
		if (v[i].time <= last) {
			count_drop(st, STORE_DROP_NOT_NEWER, 1);
			log_not_newer(st, f, v[i].time, last);
			continue;
		}
		last = v[i].time;
		v[kept++] = v[i];
	}
	return kept;
}

/*
 * Groups the drained updates by file into w->grouped, keeping submission order within
 * each file, with a counting pass so that no sort is needed.
 */
static void group_updates(struct store_writer *w, const struct store_update *items, size_t n)
{
	w->epoch++;
	w->group_count = 0;
	for (size_t i = 0; i < n; i++) {
		struct store_file *f = items[i].file;
		if (f->epoch != w->epoch) {
			if (w->group_count == w->group_capacity) {
				w->groups =
				    xreallocarray_grow(w->groups, &w->group_capacity,
						       w->group_count + 1, sizeof *w->groups);
			}
			f->epoch = w->epoch;
			f->group = w->group_count;
			w->groups[w->group_count++] = (struct store_group){.file = f};
		}
		w->groups[f->group].count++;
	}
	for (size_t g = 0, start = 0; g < w->group_count; g++) {
		w->groups[g].start = start;
		start += w->groups[g].count;
		w->groups[g].count = 0;
	}
	if (n > w->grouped_capacity) {
		w->grouped =
		    xreallocarray_grow(w->grouped, &w->grouped_capacity, n, sizeof *w->grouped);
	}
	for (size_t i = 0; i < n; i++) {
		struct store_group *g = &w->groups[items[i].file->group];
		w->grouped[g->start + g->count++] = items[i];
	}
}

/* ---- Writer: direct librrd writes ---- */

static int open_local(struct store *st, struct store_file *f, int64_t first)
{
	char args[STORE_CREATE_ARGS_MAX][STORE_CREATE_ARG_SIZE];
	const char *argv[STORE_CREATE_ARGS_MAX];
	struct stat sb;
	int64_t start;
	size_t argc;
	time_t last;

	if (stat(f->path, &sb) != 0) {
		if (errno != ENOENT) {
			log_open_error(st, f, "stat", strerror(errno));
			return -1;
		}
		if (make_metric_dir(f) != 0) {
			log_open_error(st, f, "creating the metric directory", strerror(errno));
			return -1;
		}
		argc = build_create_args(st, f, args);
		for (size_t i = 0; i < argc; i++) {
			argv[i] = args[i];
		}
		start = create_start(f, first);
		rrd_clear_error();
		if (rrd_create_r2(f->path, f->step_s, (time_t)start, 1, NULL, NULL, (int)argc,
				  argv) == 0) {
			st->writer.created++;
			f->opened = true;
			f->last = start;
			return 0;
		}
		/* Another process may have created it meanwhile: then read it below. */
		if (stat(f->path, &sb) != 0) {
			/* librrd 1.7 leaves its error text empty when writing the file fails,
			 * as on a full file system, and errno is its cleanup's by then. */
			log_open_error(st, f, "rrd_create",
				       rrd_get_error()[0] != '\0'
					   ? rrd_get_error()
					   : "librrd gave no reason; check the free space and the "
					     "permissions of data_dir");
			rrd_clear_error();
			return -1;
		}
	}
	rrd_clear_error();
	last = rrd_last_r(f->path);
	if (last < 0) {
		log_open_error(st, f, "reading the last update time", rrd_get_error());
		rrd_clear_error();
		return -1;
	}
	f->opened = true;
	f->last = last;
	return 0;
}

/* Formats "TIME:VALUE" strings for values[0, n) into w->text and w->argv. */
static void format_direct_args(struct store_writer *w, const struct store_update *v, size_t n)
{
	size_t need = n * 48;
	size_t used = 0;

	if (need > w->text_capacity) {
		w->text = xreallocarray_grow(w->text, &w->text_capacity, need, 1);
	}
	if (n > w->argv_capacity) {
		w->argv = xreallocarray_grow(w->argv, &w->argv_capacity, n, sizeof *w->argv);
	}
	for (size_t i = 0; i < n; i++) {
		char *s = w->text + used;
		int len;
		if (isfinite(v[i].value)) {
			len = snprintf(s, 48, "%" PRId64 ":%.17g", v[i].time, v[i].value);
		} else {
			len = snprintf(s, 48, "%" PRId64 ":U", v[i].time);
		}
		w->argv[i] = s;
		used += (size_t)len + 1;
	}
}

static void write_group_direct(struct store *st, struct store_group *g)
{
	struct store_writer *w = &st->writer;
	struct store_file *f = g->file;
	struct store_update *v = w->grouped + g->start;
	size_t n;

	if (!f->opened && open_local(st, f, v[0].time) != 0) {
		count_drop(st, STORE_DROP_ERROR, g->count);
		return;
	}
	n = filter_not_newer(st, f, v, g->count);
	if (n == 0) {
		return;
	}
	format_direct_args(w, v, n);
	rrd_clear_error();
	if (rrd_update_r(f->path, STORE_DS_NAME, (int)n, w->argv) != 0) {
		count_drop(st, STORE_DROP_ERROR, n);
		log_update_error(st, f, n, rrd_get_error());
		rrd_clear_error();
		/* Read the file again next time: part of the values may have been written. */
		f->opened = false;
		return;
	}
	w->written += n;
	f->last = v[n - 1].time;
}

/* ---- Writer: rrdcached ---- */

/*
 * Waits before the next connection attempt. Returns false when the writer should drop
 * the updates it has taken, because a flush or shutdown is waiting and the daemon has
 * been unreachable for STORE_GIVE_UP_MS.
 */
static bool wait_reconnect(struct store *st)
{
	struct store_writer *w = &st->writer;
	uint64_t now = clock_monotonic_ms();
	uint64_t suppressed = 0;
	struct timespec until;
	bool give_up;

	if (w->failing_since_ms == 0) {
		w->failing_since_ms = now;
	}
	if (throttle_fail(&w->connection_log, now, &suppressed)) {
		log_error("store", NULL,
			  "rrdcached at %s is unreachable, retrying (%" PRIu64
			  " more failures since the last report): %s",
			  rrdcached_address(st->daemon), suppressed, rrdcached_error(st->daemon));
	}
	pthread_mutex_lock(&st->lock);
	/* Counted at once, not at the end of the drain: the drain waits for the daemon. */
	st->stats.errors[STORE_ERROR_CONNECT]++;
	give_up = (st->stopping || st->flush_waiters > 0) &&
		  now - w->failing_since_ms >= STORE_GIVE_UP_MS;
	if (!give_up) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += w->reconnect_ms / 1000;
		until.tv_nsec += (long)(w->reconnect_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		/* A flush or shutdown wakes this wait, so the give-up check runs again. */
		pthread_cond_timedwait(&st->work, &st->lock, &until);
	}
	pthread_mutex_unlock(&st->lock);
	w->reconnect_ms = w->reconnect_ms * 2 > STORE_RECONNECT_MAX_MS ? STORE_RECONNECT_MAX_MS
								       : w->reconnect_ms * 2;
	return !give_up;
}

/* Connects when needed. Returns false when the writer gave up (see wait_reconnect). */
static bool ensure_connected(struct store *st)
{
	struct store_writer *w = &st->writer;
	uint64_t failures = 0;

	while (!rrdcached_is_connected(st->daemon)) {
		if (rrdcached_connect(st->daemon) == 0) {
			break;
		}
		if (!wait_reconnect(st)) {
			return false;
		}
	}
	if (throttle_ok(&w->connection_log, &failures)) {
		log_notice("store", NULL,
			   "rrdcached at %s is reachable again after %" PRIu64 " failed attempts",
			   rrdcached_address(st->daemon), failures);
	}
	w->failing_since_ms = 0;
	w->reconnect_ms = STORE_RECONNECT_MIN_MS;
	return true;
}

static bool reply_reports_missing_file(const struct rrdcached_reply *reply)
{
	return strstr(reply->message, "No such file") != NULL;
}

/* Appends a path to a command line with rrdcached's escaping. */
static void append_escaped(char *line, size_t size, size_t *len, const char *path)
{
	for (const char *p = path; *p != '\0' && *len + 2 < size; p++) {
		if (*p == ' ' || *p == '\\') {
			line[(*len)++] = '\\';
		}
		line[(*len)++] = *p;
	}
	line[*len] = '\0';
}

/* Reads the last update time with LAST. Returns 1 when the file is missing. */
static int daemon_last(struct store *st, struct store_file *f, int64_t *last)
{
	struct rrdcached_reply reply;
	char line[RRDCACHED_LINE_MAX];
	size_t len = (size_t)snprintf(line, sizeof line, "LAST ");
	char *end;
	int rc = -1;

	append_escaped(line, sizeof line, &len, f->daemon_path);
	if (rrdcached_command(st->daemon, line, &reply) != 0) {
		return -2;
	}
	if (reply.status == 0) {
		errno = 0;
		*last = strtoll(reply.message, &end, 10);
		if (end != reply.message && errno == 0) {
			rc = 0;
		}
	} else if (reply_reports_missing_file(&reply)) {
		rc = 1;
	}
	if (rc == -1) {
		log_open_error(st, f, "rrdcached LAST", reply.message);
	}
	rrdcached_reply_free(&reply);
	return rc;
}

/* Creates the file with CREATE -O. Returns 1 when it exists already. */
static int daemon_create(struct store *st, struct store_file *f, int64_t start)
{
	char args[STORE_CREATE_ARGS_MAX][STORE_CREATE_ARG_SIZE];
	struct rrdcached_reply reply;
	char line[RRDCACHED_LINE_MAX];
	size_t argc = build_create_args(st, f, args);
	size_t len = (size_t)snprintf(line, sizeof line, "CREATE ");
	int rc = -1;

	if (rrdcached_is_unix(st->daemon) && make_metric_dir(f) != 0) {
		log_open_error(st, f, "creating the metric directory", strerror(errno));
	}
	append_escaped(line, sizeof line, &len, f->daemon_path);
	len += (size_t)snprintf(line + len, sizeof line - len, " -b %" PRId64 " -s %" PRIu32 " -O",
				start, f->step_s);
	for (size_t i = 0; i < argc && len < sizeof line; i++) {
		len += (size_t)snprintf(line + len, sizeof line - len, " %s", args[i]);
	}
	if (rrdcached_command(st->daemon, line, &reply) != 0) {
		return -2;
	}
	if (reply.status == 0) {
		rc = 0;
	} else if (strstr(reply.message, "File exists") != NULL) {
		rc = 1;
	} else {
		log_open_error(st, f, "rrdcached CREATE", reply.message);
	}
	rrdcached_reply_free(&reply);
	return rc;
}

/*
 * Learns the last update time of a file through rrdcached, creating the file when it is
 * missing. Returns 0, -1 when the file cannot be used, -2 on a connection failure.
 *
 * NOTE: rrdcached 1.7's LAST rounds the time down to a multiple of the step. The store
 * may then send a value that the daemon rejects; the reply names the real last time,
 * and apply_line_results() re-sends what the daemon skipped.
 */
static int open_daemon(struct store *st, struct store_file *f, int64_t first)
{
	int64_t start = create_start(f, first);
	int64_t last = 0;
	int rc;

	for (int attempt = 0; attempt < 2; attempt++) {
		rc = daemon_last(st, f, &last);
		if (rc == 0) {
			f->opened = true;
			f->last = last;
			return 0;
		}
		if (rc != 1) {
			return rc;
		}
		rc = daemon_create(st, f, start);
		if (rc == 0) {
			st->writer.created++;
			f->opened = true;
			f->last = start;
			return 0;
		}
		if (rc != 1) {
			return rc;
		}
		/* Created by someone else between LAST and CREATE: read it again. */
	}
	return -1;
}

/* Records rrdcached's error for one command of the exchange. */
static void on_line_error(size_t command, const char *message, void *arg)
{
	struct store *st = arg;
	struct store_writer *w = &st->writer;
	struct store_line *line;
	double rejected, daemon_last_time;

	if (command == 0 || command > w->line_count) {
		return;
	}
	line = &w->lines[command - 1];
	if (sscanf(message, "illegal attempt to update using time %lf when last update time is %lf",
		   &rejected, &daemon_last_time) == 2) {
		line->result = STORE_LINE_NOT_NEWER;
		line->rejected_time = (int64_t)rejected;
		line->daemon_last = (int64_t)daemon_last_time;
		return;
	}
	line->result = STORE_LINE_ERROR;
	if (w->line_error[0] == '\0') {
		snprintf(w->line_error, sizeof w->line_error, "%s", message);
	}
}

/* Builds one UPDATE line per file (more when a line would pass RRDCACHED_LINE_MAX). */
static void build_batch(struct store_writer *w)
{
	rrdcached_batch_clear(&w->batch);
	w->line_count = 0;
	for (size_t g = 0; g < w->group_count; g++) {
		struct store_group *grp = &w->groups[g];
		for (size_t i = 0; i < grp->count; i++) {
			struct store_update *v = &w->grouped[grp->start + i];
			/* The lines of one file are contiguous, so only i == 0 starts one. */
			bool line_open = i > 0;
			if (line_open &&
			    rrdcached_batch_line_length(&w->batch) + 48 > RRDCACHED_LINE_MAX) {
				rrdcached_batch_end_command(&w->batch);
				line_open = false;
			}
			if (!line_open) {
				if (w->line_count == w->line_capacity) {
					w->lines =
					    xreallocarray_grow(w->lines, &w->line_capacity,
							       w->line_count + 1, sizeof *w->lines);
				}
				w->lines[w->line_count++] =
				    (struct store_line){.file = grp->file, .start = grp->start + i};
				rrdcached_batch_begin_update(&w->batch, grp->file->daemon_path);
			}
			rrdcached_batch_append_value(&w->batch, v->time, v->value);
			w->lines[w->line_count - 1].count++;
			if (i + 1 == grp->count) {
				rrdcached_batch_end_command(&w->batch);
			}
		}
	}
}

/* Applies a rejected-as-not-newer line: values after the rejected one are re-sent. */
static void apply_not_newer_line(struct store *st, struct store_line *line)
{
	struct store_writer *w = &st->writer;
	struct store_update *v = w->grouped + line->start;
	size_t k = 0;

	/* rrdcached kept the values before the rejected one and skipped the rest. */
	while (k < line->count && v[k].time != line->rejected_time) {
		k++;
	}
	if (k == line->count) {
		k = 0;
	}
	w->written += k;
	for (size_t i = k; i < line->count; i++) {
		if (v[i].time <= line->daemon_last) {
			count_drop(st, STORE_DROP_NOT_NEWER, 1);
			log_not_newer(st, line->file, v[i].time, line->daemon_last);
		} else {
			queue_push(&w->retry, v[i].file, v[i].time, v[i].value);
		}
	}
	if (line->daemon_last > line->file->last) {
		line->file->last = line->daemon_last;
	}
}

static void apply_line_results(struct store *st)
{
	struct store_writer *w = &st->writer;

	for (size_t l = 0; l < w->line_count; l++) {
		struct store_line *line = &w->lines[l];
		int64_t newest = w->grouped[line->start + line->count - 1].time;

		switch (line->result) {
		case STORE_LINE_OK:
			w->written += line->count;
			if (newest > line->file->last) {
				line->file->last = newest;
			}
			break;
		case STORE_LINE_NOT_NEWER:
			apply_not_newer_line(st, line);
			break;
		case STORE_LINE_ERROR:
			count_drop(st, STORE_DROP_ERROR, line->count);
			log_update_error(st, line->file, line->count, w->line_error);
			/* Ask the daemon again next time: the file may be gone. */
			line->file->opened = false;
			break;
		}
	}
}

/* Sends the built batch until it completes. Returns false when the writer gave up. */
static bool send_batch(struct store *st)
{
	struct store_writer *w = &st->writer;

	for (;;) {
		if (!ensure_connected(st)) {
			return false;
		}
		for (size_t l = 0; l < w->line_count; l++) {
			w->lines[l].result = STORE_LINE_OK;
		}
		w->line_error[0] = '\0';
		if (rrdcached_batch_send(st->daemon, &w->batch, on_line_error, st) == 0) {
			return true;
		}
		/*
		 * NOTE: which commands the daemon applied before the connection broke is
		 * unknown. Re-sending all of them makes the daemon reject the applied ones,
		 * which are then counted as not_newer although they were written.
		 */
	}
}

/* Opens the files of this round. Returns false when the writer gave up. */
static bool open_daemon_files(struct store *st)
{
	struct store_writer *w = &st->writer;

	for (size_t g = 0; g < w->group_count; g++) {
		struct store_group *grp = &w->groups[g];
		while (!grp->file->opened && grp->count > 0) {
			int rc;
			if (!ensure_connected(st)) {
				return false;
			}
			rc = open_daemon(st, grp->file, w->grouped[grp->start].time);
			if (rc == -1) {
				count_drop(st, STORE_DROP_ERROR, grp->count);
				grp->count = 0;
			}
		}
	}
	return true;
}

static void drop_round(struct store *st, const char *reason)
{
	struct store_writer *w = &st->writer;
	uint64_t n = 0;

	for (size_t g = 0; g < w->group_count; g++) {
		n += w->groups[g].count;
	}
	if (n == 0) {
		return;
	}
	count_drop(st, STORE_DROP_ERROR, n);
	log_error("store", NULL, "%" PRIu64 " updates dropped: %s", n, reason);
}

static void write_round_daemon(struct store *st)
{
	struct store_writer *w = &st->writer;

	if (!open_daemon_files(st)) {
		drop_round(st, "rrdcached stayed unreachable while a flush or shutdown waited");
		return;
	}
	for (size_t g = 0; g < w->group_count; g++) {
		struct store_group *grp = &w->groups[g];
		grp->count = filter_not_newer(st, grp->file, w->grouped + grp->start, grp->count);
	}
	build_batch(w);
	if (w->line_count == 0) {
		return;
	}
	if (!send_batch(st)) {
		drop_round(st, "rrdcached stayed unreachable while a flush or shutdown waited");
		return;
	}
	apply_line_results(st);
}

static void write_drain_daemon(struct store *st, const struct store_update *items, size_t n)
{
	struct store_writer *w = &st->writer;

	w->retry.count = 0;
	group_updates(w, items, n);
	write_round_daemon(st);
	for (int round = 1; round <= STORE_RETRY_ROUNDS && w->retry.count > 0; round++) {
		/* group_updates copies the retried values, so the retry queue can be reused. */
		struct store_queue again = w->retry;
		w->retry = (struct store_queue){0};
		group_updates(w, again.items, again.count);
		free(again.items);
		write_round_daemon(st);
	}
	if (w->retry.count > 0) {
		count_drop(st, STORE_DROP_ERROR, w->retry.count);
		log_error("store", NULL, "%zu updates dropped: rrdcached kept rejecting them",
			  w->retry.count);
		w->retry.count = 0;
	}
}

/* ---- Writer thread ---- */

static void write_drain(struct store *st, const struct store_update *items, size_t n)
{
	struct store_writer *w = &st->writer;
	uint64_t failures = 0;

	w->drain_not_newer = false;
	w->drain_update_error = false;
	if (st->daemon != NULL) {
		write_drain_daemon(st, items, n);
	} else {
		group_updates(w, items, n);
		for (size_t g = 0; g < w->group_count; g++) {
			write_group_direct(st, &w->groups[g]);
		}
	}
	if (!w->drain_not_newer && throttle_ok(&w->not_newer_log, &failures)) {
		log_notice("store", NULL,
			   "updates are newer than their files' last updates again; %" PRIu64
			   " were dropped as not newer",
			   failures);
	}
	if (!w->drain_update_error && throttle_ok(&w->update_error_log, &failures)) {
		log_notice("store", NULL, "updates succeed again after %" PRIu64 " failed ones",
			   failures);
	}
}

static void *writer_main(void *arg)
{
	struct store *st = arg;
	struct store_writer *w = &st->writer;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		while (st->pending.count == 0 && !st->stopping) {
			pthread_cond_wait(&st->work, &st->lock);
		}
		if (st->pending.count == 0) {
			break;
		}
		/* Take everything pending at once; the loop thread refills the other array. */
		struct store_queue taken = st->pending;
		st->pending = w->drain;
		st->pending.count = 0;
		w->drain = taken;
		st->in_flight = taken.count;
		pthread_mutex_unlock(&st->lock);

		write_drain(st, taken.items, taken.count);

		pthread_mutex_lock(&st->lock);
		st->stats.written += w->written;
		for (int r = 0; r < STORE_DROP_REASON_COUNT; r++) {
			st->stats.dropped[r] += w->dropped[r];
			w->dropped[r] = 0;
		}
		for (int k = 0; k < STORE_ERROR_KIND_COUNT; k++) {
			st->stats.errors[k] += w->errors[k];
			w->errors[k] = 0;
		}
		st->stats.files_created += w->created;
		st->stats.batches++;
		w->written = 0;
		w->created = 0;
		st->processed += taken.count;
		st->in_flight = 0;
		pthread_cond_broadcast(&st->done);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

/* Creates dir and its missing parents. */
static int make_dirs(const char *dir)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof buf) {
		errno = len == 0 ? ENOENT : ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/') {
			continue;
		}
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
			return -1;
		}
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
		return -1;
	}
	return 0;
}

static void set_default_retention(struct retention *r)
{
	static const struct retention_tier tiers[] = {
	    {.step_s = 10, .keep_s = 2 * 86400},
	    {.step_s = 60, .keep_s = 30 * 86400},
	    {.step_s = 3600, .keep_s = 400 * 86400},
	};

	r->count = sizeof tiers / sizeof tiers[0];
	memcpy(r->tier, tiers, sizeof tiers);
}

static void store_destroy(struct store *st)
{
	struct store_writer *w = &st->writer;

	for (size_t i = 0; i < st->table_size; i++) {
		if (st->table[i] != NULL) {
			free(st->table[i]->path);
			free(st->table[i]);
		}
	}
	free(st->table);
	rrdcached_free(st->daemon);
	free(st->pending.items);
	free(w->drain.items);
	free(w->retry.items);
	free(w->grouped);
	free(w->groups);
	free(w->text);
	free(w->argv);
	free(w->lines);
	rrdcached_batch_free(&w->batch);
	free(st->data_dir);
	free(st);
}

struct store *store_new(const struct store_options *opts)
{
	struct store *st;
	struct stat sb;
	char ids[PATH_MAX + 16];
	int rc;

	if (opts->data_dir == NULL || opts->data_dir[0] == '\0') {
		log_error("store", NULL,
			  "data_dir is empty; set data_dir in the config or pass --data-dir DIR");
		return NULL;
	}
	log_ids(ids, sizeof ids, "data_dir", opts->data_dir, NULL);
	if (stat(opts->data_dir, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
		log_error("store", ids,
			  "data_dir exists but is not a directory; remove it or choose another "
			  "data_dir");
		return NULL;
	}
	if (make_dirs(opts->data_dir) != 0 || stat(opts->data_dir, &sb) != 0) {
		log_error_errno("store", ids, "cannot create the data directory");
		return NULL;
	}
	st = xcalloc(1, sizeof *st);
	if (opts->rrdcached != NULL) {
		st->daemon = rrdcached_new(opts->rrdcached);
		if (st->daemon == NULL) {
			log_error("store", NULL,
				  "invalid rrdcached address \"%s\"; expected unix:/path, host or "
				  "host:port",
				  opts->rrdcached);
			store_destroy(st);
			return NULL;
		}
	}
	if (st->daemon != NULL && rrdcached_is_unix(st->daemon)) {
		/* The daemon runs in another directory: give it absolute paths. */
		st->data_dir = realpath(opts->data_dir, NULL);
		if (st->data_dir == NULL) {
			log_error_errno("store", ids, "cannot resolve the data directory");
			store_destroy(st);
			return NULL;
		}
	} else {
		st->data_dir = xstrdup(opts->data_dir);
	}
	if (st->daemon != NULL && strpbrk(st->data_dir, "\r\n") != NULL) {
		log_error("store", ids,
			  "data_dir contains a line break, which rrdcached's "
			  "line protocol cannot carry");
		store_destroy(st);
		return NULL;
	}
	/* Strip trailing slashes so that paths have no "//". */
	for (size_t len = strlen(st->data_dir); len > 1 && st->data_dir[len - 1] == '/'; len--) {
		st->data_dir[len - 1] = '\0';
	}
	st->retention = opts->retention;
	if (st->retention.count == 0 || st->retention.count > RETENTION_MAX_TIERS) {
		set_default_retention(&st->retention);
	}
	st->queue_max = opts->queue_max != 0 ? opts->queue_max : STORE_QUEUE_DEFAULT;
	throttle_init(&st->queue_full_log, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	throttle_init(&st->writer.not_newer_log, THROTTLE_DEFAULT_INITIAL_MS,
		      THROTTLE_DEFAULT_MAX_MS);
	throttle_init(&st->writer.update_error_log, THROTTLE_DEFAULT_INITIAL_MS,
		      THROTTLE_DEFAULT_MAX_MS);
	throttle_init(&st->writer.open_error_log, THROTTLE_DEFAULT_INITIAL_MS,
		      THROTTLE_DEFAULT_MAX_MS);
	throttle_init(&st->writer.connection_log, THROTTLE_DEFAULT_INITIAL_MS,
		      THROTTLE_DEFAULT_MAX_MS);
	st->writer.reconnect_ms = STORE_RECONNECT_MIN_MS;
	rrdcached_batch_init(&st->writer.batch);
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->work, NULL);
	pthread_cond_init(&st->done, NULL);
	rc = pthread_create(&st->thread, NULL, writer_main, st);
	if (rc != 0) {
		errno = rc;
		log_error_errno("store", NULL, "cannot start the writer thread");
		pthread_cond_destroy(&st->done);
		pthread_cond_destroy(&st->work);
		pthread_mutex_destroy(&st->lock);
		store_destroy(st);
		return NULL;
	}
	return st;
}

void store_free(struct store *st)
{
	if (st == NULL) {
		return;
	}
	store_flush(st);
	pthread_mutex_lock(&st->lock);
	st->stopping = true;
	pthread_cond_signal(&st->work);
	pthread_mutex_unlock(&st->lock);
	pthread_join(st->thread, NULL);
	pthread_cond_destroy(&st->done);
	pthread_cond_destroy(&st->work);
	pthread_mutex_destroy(&st->lock);
	store_destroy(st);
}
