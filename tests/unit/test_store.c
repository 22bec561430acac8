/*
 * Tests of the archive store against real RRD files in a temporary directory, written
 * directly with librrd and through a real rrdcached that the tests start on a unix
 * socket (those tests are skipped when rrdcached is not installed). `rrdtool` (from
 * $RRDTOOL) reads the results back, as an operator would.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <rrd.h>

#include "collector/log.h"
#include "collector/series.h"
#include "collector/store.h"

#define T0 1700000000

struct fixture {
	char dir[512];
	char data[PATH_MAX];
	char log_path[PATH_MAX];
	char socket_path[PATH_MAX];
	char address[PATH_MAX + 8];
	pid_t daemon_pid;
	int log_fd;
};

static const char *rrdtool_path(void)
{
	const char *p = getenv("RRDTOOL");
	return p != NULL && p[0] != '\0' ? p : "rrdtool";
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int fixture_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	const char *tmp = getenv("TMPDIR");

	assert_non_null(fx);
	snprintf(fx->dir, sizeof fx->dir, "%s/tocsin-store-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->data, sizeof fx->data, "%s/data", fx->dir);
	snprintf(fx->log_path, sizeof fx->log_path, "%s/tocsin.log", fx->dir);
	fx->log_fd = open(fx->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	assert_true(fx->log_fd >= 0);
	log_set_fd(fx->log_fd);
	*state = fx;
	return 0;
}

static void stop_daemon(struct fixture *fx)
{
	int status;

	if (fx->daemon_pid <= 0) {
		return;
	}
	kill(fx->daemon_pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(fx->daemon_pid, &status, WNOHANG) == fx->daemon_pid) {
			fx->daemon_pid = 0;
			return;
		}
		usleep(50000);
	}
	kill(fx->daemon_pid, SIGKILL);
	waitpid(fx->daemon_pid, &status, 0);
	fx->daemon_pid = 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *fx = *state;

	stop_daemon(fx);
	log_set_fd(2);
	close(fx->log_fd);
	nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* ---- rrdcached ---- */

static const char *find_rrdcached(void)
{
	static char found[PATH_MAX];
	const char *env = getenv("RRDCACHED");
	const char *path = getenv("PATH");
	char dirs[4096];

	if (env != NULL && access(env, X_OK) == 0) {
		return env;
	}
	snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/bin:/sbin", path != NULL ? path : "");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d != NULL;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(found, sizeof found, "%s/rrdcached", d);
		if (access(found, X_OK) == 0) {
			return found;
		}
	}
	return NULL;
}

static bool socket_accepts(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	bool ok;

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	if (fd >= 0) {
		close(fd);
	}
	return ok;
}

/* Starts rrdcached in the foreground on a unix socket in the fixture's directory. */
static void start_daemon(struct fixture *fx, const char *exe)
{
	char pid_file[PATH_MAX + 16];
	char listen[PATH_MAX + 16];
	char log[PATH_MAX + 16];
	pid_t pid;

	snprintf(fx->socket_path, sizeof fx->socket_path, "%s/rrdcached.sock", fx->dir);
	snprintf(fx->address, sizeof fx->address, "unix:%s", fx->socket_path);
	snprintf(pid_file, sizeof pid_file, "%s/rrdcached.pid", fx->dir);
	snprintf(listen, sizeof listen, "unix:%s", fx->socket_path);
	snprintf(log, sizeof log, "%s/rrdcached.log", fx->dir);
	unlink(fx->socket_path);
	unlink(pid_file);
	assert_int_equal(mkdir(fx->data, 0755) == 0 || errno == EEXIST, 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(exe, "rrdcached", "-g", "-l", listen, "-b", fx->data, "-B", "-p", pid_file,
		      "-F", "-w", "3600", "-f", "7200", (char *)NULL);
		_exit(127);
	}
	fx->daemon_pid = pid;
	for (int i = 0; i < 200 && !socket_accepts(fx->socket_path); i++) {
		usleep(25000);
	}
	assert_true(socket_accepts(fx->socket_path));
}

/* Starts rrdcached for the test, or skips the test when it is not installed. */
static void start_daemon_or_skip(struct fixture *fx)
{
	const char *exe = find_rrdcached();

	if (exe == NULL) {
		fprintf(stderr, "# rrdcached is not installed: skipping\n");
		skip();
	}
	start_daemon(fx, exe);
}

/* ---- helpers ---- */

struct test_series {
	struct series_family family;
	struct label labels[4];
	struct series series;
};

static void make_series(struct test_series *ts, const char *metric, enum metric_type type,
			const char *label_name, const char *label_value)
{
	memset(ts, 0, sizeof *ts);
	ts->family.name = (char *)metric;
	ts->family.type = type;
	ts->series.family = &ts->family;
	ts->series.labels = ts->labels;
	if (label_name != NULL) {
		ts->labels[0] = (struct label){.name = label_name, .value = label_value};
		ts->series.label_count = 1;
	}
}

static struct store *open_store(const struct fixture *fx, bool daemon)
{
	struct store_options opts = {
	    .data_dir = fx->data,
	    .rrdcached = daemon ? fx->address : NULL,
	    .retention = {.count = 2,
			  .tier = {{.step_s = 10, .keep_s = 3600},
				   {.step_s = 60, .keep_s = 86400}}},
	};
	struct store *st = store_new(&opts);

	assert_non_null(st);
	return st;
}

/* Runs `rrdtool lastupdate` (through the daemon when one runs, which flushes first). */
static void read_lastupdate(const struct fixture *fx, const char *path, char *out, size_t size)
{
	char cmd[3 * PATH_MAX];
	FILE *p;
	size_t n;

	if (fx->daemon_pid > 0) {
		snprintf(cmd, sizeof cmd, "'%s' lastupdate --daemon '%s' '%s' 2>&1", rrdtool_path(),
			 fx->address, path);
	} else {
		snprintf(cmd, sizeof cmd, "'%s' lastupdate '%s' 2>&1", rrdtool_path(), path);
	}
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	pclose(p);
}

static void assert_lastupdate(const struct fixture *fx, const char *path, const char *expected)
{
	char out[4096];

	read_lastupdate(fx, path, out, sizeof out);
	if (strstr(out, expected) == NULL) {
		fail_msg("rrdtool lastupdate %s: expected \"%s\", got: %s", path, expected, out);
	}
}

static size_t count_log_lines(const struct fixture *fx, const char *needle)
{
	char line[8192];
	size_t n = 0;
	FILE *f = fopen(fx->log_path, "r");

	assert_non_null(f);
	while (fgets(line, sizeof line, f) != NULL) {
		if (strstr(line, needle) != NULL) {
			n++;
		}
	}
	fclose(f);
	return n;
}

static bool only_safe_bytes(const char *s)
{
	for (; *s != '\0'; s++) {
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/",
			   *s) == NULL) {
			return false;
		}
	}
	return true;
}

/* ---- paths ---- */

static void test_path_hostile_labels_stay_inside(void **state)
{
	struct fixture *fx = *state;
	struct store *st = open_store(fx, false);
	const char *values[] = {
	    "../../etc/passwd",         "..",   ".", "a/b", "with space", "quote\"d'",
	    "caf\xc3\xa9 \xe2\x9c\x93", "/abs", ""};
	const char *paths[sizeof values / sizeof values[0]];
	size_t prefix = strlen(fx->data);

	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		struct test_series ts;
		struct store_file *f;
		const char *rel;

		make_series(&ts, "probe_success", METRIC_GAUGE, "instance", values[i]);
		f = store_file_get(st, &ts.series, 10, 20);
		assert_non_null(f);
		paths[i] = store_file_path(f);
		assert_memory_equal(paths[i], fx->data, prefix);
		rel = paths[i] + prefix;
		assert_memory_equal(rel, "/probe_success/", 15);
		assert_null(strchr(rel + 15, '/'));
		assert_null(strstr(rel, "/."));
		assert_true(only_safe_bytes(rel));
		assert_string_equal(rel + strlen(rel) - 4, ".rrd");
	}
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		for (size_t j = i + 1; j < sizeof values / sizeof values[0]; j++) {
			assert_string_not_equal(paths[i], paths[j]);
		}
	}
	store_free(st);
}

static void test_path_distinct_label_sets(void **state)
{
	struct fixture *fx = *state;
	struct store *st = open_store(fx, false);
	struct test_series a, b, c, d, none;
	struct store_file *fa, *fb, *fc, *fd, *fnone;

	/* "a/b" and "a_b" read the same once cleaned; the hash keeps them apart. */
	make_series(&a, "up", METRIC_GAUGE, "job", "a/b");
	make_series(&b, "up", METRIC_GAUGE, "job", "a_b");
	fa = store_file_get(st, &a.series, 10, 0);
	fb = store_file_get(st, &b.series, 10, 0);
	assert_string_not_equal(store_file_path(fa), store_file_path(fb));

	/* Name and value boundaries are part of the hash. */
	make_series(&c, "up", METRIC_GAUGE, "ab", "c");
	make_series(&d, "up", METRIC_GAUGE, "a", "bc");
	fc = store_file_get(st, &c.series, 10, 0);
	fd = store_file_get(st, &d.series, 10, 0);
	assert_string_not_equal(store_file_path(fc), store_file_path(fd));

	/* The same series returns the same record. */
	assert_ptr_equal(store_file_get(st, &a.series, 10, 0), fa);

	make_series(&none, "up", METRIC_GAUGE, NULL, NULL);
	fnone = store_file_get(st, &none.series, 10, 0);
	assert_non_null(strstr(store_file_path(fnone), "/up/_.rrd"));
	store_free(st);
}

static void test_path_label_order_ignored(void **state)
{
	struct fixture *fx = *state;
	struct store *st = open_store(fx, false);
	struct test_series x, y;

	make_series(&x, "up", METRIC_GAUGE, NULL, NULL);
	x.labels[0] = (struct label){"instance", "h1"};
	x.labels[1] = (struct label){"job", "node"};
	x.series.label_count = 2;
	make_series(&y, "up", METRIC_GAUGE, NULL, NULL);
	y.labels[0] = (struct label){"job", "node"};
	y.labels[1] = (struct label){"instance", "h1"};
	y.series.label_count = 2;
	assert_ptr_equal(store_file_get(st, &x.series, 10, 0),
			 store_file_get(st, &y.series, 10, 0));
	assert_non_null(strstr(store_file_path(store_file_get(st, &x.series, 10, 0)),
			       "/up/instance-h1__job-node_"));
	store_free(st);
}

static void test_path_metric_names_cleaned(void **state)
{
	struct fixture *fx = *state;
	struct store *st = open_store(fx, false);
	struct test_series colon, underscore, dots;
	const char *p_colon, *p_underscore, *p_dots;

	make_series(&colon, "job:rate:5m", METRIC_GAUGE, NULL, NULL);
	make_series(&underscore, "job_rate_5m", METRIC_GAUGE, NULL, NULL);
	make_series(&dots, "..", METRIC_GAUGE, NULL, NULL);
	p_colon = store_file_path(store_file_get(st, &colon.series, 10, 0));
	p_underscore = store_file_path(store_file_get(st, &underscore.series, 10, 0));
	p_dots = store_file_path(store_file_get(st, &dots.series, 10, 0));
	assert_string_not_equal(p_colon, p_underscore);
	assert_null(strchr(p_colon + strlen(fx->data), ':'));
	assert_null(strstr(p_dots + strlen(fx->data), "/.."));
	assert_null(strstr(p_dots + strlen(fx->data), "/./"));
	store_free(st);
}

static void test_path_from_registry_series(void **state)
{
	struct fixture *fx = *state;
	struct store *st = open_store(fx, false);
	struct series_registry *reg = series_registry_new();
	static const struct metric_desc desc = {"node_load1", "1m load average", METRIC_GAUGE};
	const struct label labels[] = {{"instance", "10.0.0.1:9100"}};
	struct series *s = series_intern(reg, &desc, labels, 1);
	struct store_file *f;

	assert_non_null(s);
	f = store_file_get(st, s, 10, 20);
	assert_non_null(f);
	assert_non_null(strstr(store_file_path(f), "/node_load1/instance-10.0.0.1_9100_"));
	store_submit(st, f, T0 + 10, 0.5);
	store_flush(st);
	assert_lastupdate(fx, store_file_path(f), "1700000010: 0.5");
	store_free(st);
	series_registry_free(reg);
}

/* ---- file creation ---- */

static rrd_info_t *info_find(rrd_info_t *info, const char *key)
{
	for (; info != NULL; info = info->next) {
		if (strcmp(info->key, key) == 0) {
			return info;
		}
	}
	fail_msg("rrd info has no key %s", key);
	return NULL;
}

static void check_created_file(const char *path, const char *ds_type, uint32_t heartbeat)
{
	static const char *const cfs[] = {"AVERAGE", "MIN", "MAX"};
	rrd_info_t *info;
	char key[64];

	rrd_clear_error();
	info = rrd_info_r(path);
	if (info == NULL) {
		fail_msg("rrd_info_r %s: %s", path, rrd_get_error());
	}
	assert_int_equal(info_find(info, "step")->value.u_cnt, 10);
	assert_string_equal(info_find(info, "ds[value].type")->value.u_str, ds_type);
	assert_int_equal(info_find(info, "ds[value].minimal_heartbeat")->value.u_cnt, heartbeat);
	if (strcmp(ds_type, "DDERIVE") == 0) {
		assert_true(info_find(info, "ds[value].min")->value.u_val == 0.0);
	} else {
		assert_true(isnan(info_find(info, "ds[value].min")->value.u_val));
	}
	for (int i = 0; i < 6; i++) {
		snprintf(key, sizeof key, "rra[%d].cf", i);
		assert_string_equal(info_find(info, key)->value.u_str, cfs[i % 3]);
		snprintf(key, sizeof key, "rra[%d].pdp_per_row", i);
		/* Tier 10s:1h is one step per row, 360 rows; tier 1m:1d is 6 steps, 1440 rows. */
		assert_int_equal(info_find(info, key)->value.u_cnt, i < 3 ? 1 : 6);
		snprintf(key, sizeof key, "rra[%d].rows", i);
		assert_int_equal(info_find(info, key)->value.u_cnt, i < 3 ? 360 : 1440);
		snprintf(key, sizeof key, "rra[%d].xff", i);
		assert_true(info_find(info, key)->value.u_val == 0.5);
	}
	for (rrd_info_t *p = info; p != NULL; p = p->next) {
		assert_null(strstr(p->key, "rra[6]"));
	}
	rrd_info_free(info);
}

/* Asks the daemon, when one runs, to write a file's cached values to disk. */
static void flush_daemon(const struct fixture *fx, const char *path)
{
	char cmd[3 * PATH_MAX];

	if (fx->daemon_pid <= 0) {
		return;
	}
	snprintf(cmd, sizeof cmd, "'%s' flushcached --daemon '%s' '%s'", rrdtool_path(),
		 fx->address, path);
	assert_int_equal(system(cmd), 0);
}

static void run_creation(struct fixture *fx, bool daemon)
{
	struct store *st = open_store(fx, daemon);
	struct test_series gauge, counter;
	struct store_file *fg, *fc;
	struct store_stats stats;

	make_series(&gauge, "probe_duration_seconds", METRIC_GAUGE, "target", "a");
	make_series(&counter, "node_network_receive_bytes_total", METRIC_COUNTER, "device", "eth0");
	fg = store_file_get(st, &gauge.series, 10, 25);
	fc = store_file_get(st, &counter.series, 10, 0);
	store_submit(st, fg, T0 + 10, 1.5);
	store_submit(st, fc, T0 + 10, 100);
	store_flush(st);
	store_get_stats(st, &stats);
	assert_int_equal(stats.files_created, 2);
	assert_int_equal(stats.written, 2);
	assert_int_equal(stats.dropped[STORE_DROP_ERROR], 0);
	check_created_file(store_file_path(fg), "GAUGE", 25);
	/* heartbeat 0 means twice the step */
	check_created_file(store_file_path(fc), "DDERIVE", 20);
	store_free(st);
}

static void test_create_direct_rras(void **state)
{
	run_creation(*state, false);
}

static void test_create_rrdcached_rras(void **state)
{
	start_daemon_or_skip(*state);
	run_creation(*state, true);
}

/* ---- time order ---- */

/*
 * A clock that repeats a second and then steps back 700 s: only newer updates reach the
 * file, one log line reports the drops, and a second file is not affected.
 */
static void run_not_newer(struct fixture *fx, bool daemon, bool flush_each)
{
	struct store *st = open_store(fx, daemon);
	struct test_series a, b;
	struct store_file *fa, *fb;
	struct store_stats stats;
	const struct {
		int which;
		int64_t t;
		double v;
	} seq[] = {
	    {0, T0 + 10, 1}, {1, T0 + 10, 5}, {0, T0 + 10, 2}, {0, T0 - 680, 3},
	    {1, T0 + 20, 6}, {0, T0 + 20, 4}, {1, T0 + 30, 7},
	};

	make_series(&a, "t", METRIC_GAUGE, "file", "t");
	make_series(&b, "t", METRIC_GAUGE, "file", "other");
	fa = store_file_get(st, &a.series, 10, 20);
	fb = store_file_get(st, &b.series, 10, 20);
	for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
		store_submit(st, seq[i].which == 0 ? fa : fb, seq[i].t, seq[i].v);
		if (flush_each) {
			store_flush(st);
		}
	}
	store_flush(st);
	store_get_stats(st, &stats);
	assert_int_equal(stats.submitted, 7);
	assert_int_equal(stats.written, 5);
	assert_int_equal(stats.dropped[STORE_DROP_NOT_NEWER], 2);
	assert_int_equal(stats.dropped[STORE_DROP_ERROR], 0);
	assert_lastupdate(fx, store_file_path(fa), "1700000020: 4");
	assert_lastupdate(fx, store_file_path(fb), "1700000030: 7");
	assert_int_equal(count_log_lines(fx, "not newer than"), 1);
	/* The connection to rrdcached was never lost. */
	assert_int_equal(count_log_lines(fx, "unreachable"), 0);
	store_free(st);
}

static void test_not_newer_one_drain_direct(void **state)
{
	run_not_newer(*state, false, false);
}

static void test_not_newer_each_drain_direct(void **state)
{
	run_not_newer(*state, false, true);
	assert_int_equal(count_log_lines(*state, "were dropped as not newer"), 1);
}

static void test_not_newer_rrdcached(void **state)
{
	start_daemon_or_skip(*state);
	run_not_newer(*state, true, true);
}

/* A new store (a restart) reads the last update time of files that exist. */
static void run_reuse(struct fixture *fx, bool daemon)
{
	struct test_series a;
	struct store_stats stats;
	struct store *st = open_store(fx, daemon);
	struct store_file *f;
	char *path;

	make_series(&a, "up", METRIC_GAUGE, "job", "node");
	f = store_file_get(st, &a.series, 10, 20);
	store_submit(st, f, T0 + 10, 1);
	store_submit(st, f, T0 + 20, 2);
	store_free(st);

	st = open_store(fx, daemon);
	f = store_file_get(st, &a.series, 10, 20);
	path = strdup(store_file_path(f));
	store_submit(st, f, T0 + 15, 9);
	store_submit(st, f, T0 + 30, 3);
	store_flush(st);
	store_get_stats(st, &stats);
	assert_int_equal(stats.files_created, 0);
	assert_int_equal(stats.written, 1);
	assert_int_equal(stats.dropped[STORE_DROP_NOT_NEWER], 1);
	store_free(st);
	assert_lastupdate(fx, path, "1700000030: 3");
	free(path);
}

static void test_restart_drops_older_direct(void **state)
{
	run_reuse(*state, false);
}

static void test_restart_drops_older_rrdcached(void **state)
{
	start_daemon_or_skip(*state);
	run_reuse(*state, true);
}

/*
 * rrdcached's LAST rounds down to the step, so 1700000015 reads as 1700000010. The new
 * store then sends 1700000012, and the daemon rejects it and skips the rest of its line.
 * The store counts 12 as not newer and sends 18 again.
 */
static void test_rrdcached_rounded_last_resent(void **state)
{
	struct fixture *fx = *state;
	struct test_series a;
	struct store_stats stats;
	struct store *st;
	struct store_file *f;

	start_daemon_or_skip(fx);
	st = open_store(fx, true);
	make_series(&a, "up", METRIC_GAUGE, "job", "rounded");
	f = store_file_get(st, &a.series, 10, 20);
	store_submit(st, f, T0 + 15, 1);
	store_free(st);

	st = open_store(fx, true);
	f = store_file_get(st, &a.series, 10, 20);
	store_submit(st, f, T0 + 12, 2);
	store_submit(st, f, T0 + 18, 3);
	store_flush(st);
	store_get_stats(st, &stats);
	assert_int_equal(stats.written, 1);
	assert_int_equal(stats.dropped[STORE_DROP_NOT_NEWER], 1);
	assert_int_equal(stats.dropped[STORE_DROP_ERROR], 0);
	assert_lastupdate(fx, store_file_path(f), "1700000018: 3");
	store_free(st);
}

/* ---- what RRD stores ---- */

/* Returns the value of the row that ends at `t` in the fetched range. */
static double fetch_at(const char *path, const char *cf, time_t start, time_t end,
		       unsigned long want_step, time_t t)
{
	unsigned long step = want_step, ds_count = 0;
	char **names = NULL;
	rrd_value_t *data = NULL;
	double v;

	rrd_clear_error();
	if (rrd_fetch_r(path, cf, &start, &end, &step, &ds_count, &names, &data) != 0) {
		fail_msg("rrd_fetch_r %s: %s", path, rrd_get_error());
	}
	assert_int_equal(step, want_step);
	assert_int_equal(ds_count, 1);
	assert_true(t > start && t <= end);
	v = data[(t - start) / (time_t)step - 1];
	rrd_freemem(names[0]);
	rrd_freemem(names);
	rrd_freemem(data);
	return v;
}

/* A counter that goes backwards (a reset) gives an unknown rate, never a negative one;
 * fractional counter values (CPU seconds) are accepted. */
static void run_counter_reset(struct fixture *fx, bool daemon)
{
	struct store *st = open_store(fx, daemon);
	struct test_series c;
	struct store_file *f;
	struct store_stats stats;
	const char *path;

	make_series(&c, "requests_total", METRIC_COUNTER, "job", "api");
	f = store_file_get(st, &c.series, 10, 20);
	path = store_file_path(f);
	store_submit(st, f, T0 + 10, 100.5);
	store_submit(st, f, T0 + 20, 200.5);
	store_submit(st, f, T0 + 30, 50.25);
	store_submit(st, f, T0 + 40, 150.25);
	store_flush(st);
	store_get_stats(st, &stats);
	assert_int_equal(stats.dropped[STORE_DROP_ERROR], 0);
	flush_daemon(fx, path);
	assert_true(isnan(fetch_at(path, "AVERAGE", T0, T0 + 40, 10, T0 + 10)));
	assert_true(fetch_at(path, "AVERAGE", T0, T0 + 40, 10, T0 + 20) == 10.0);
	assert_true(isnan(fetch_at(path, "AVERAGE", T0, T0 + 40, 10, T0 + 30)));
	assert_true(fetch_at(path, "AVERAGE", T0, T0 + 40, 10, T0 + 40) == 10.0);
	store_free(st);
}

static void test_counter_reset_unknown_direct(void **state)
{
	run_counter_reset(*state, false);
}

static void test_counter_reset_unknown_rrdcached(void **state)
{
	start_daemon_or_skip(*state);
	run_counter_reset(*state, true);
}

/*
 * Step 1 s, heartbeat 2 s, a value every 3 s. Every gap is longer than the heartbeat, so
 * RRD stores unknown for each interval after the first value. This is rrdtool's
 * semantics, and readers must show a gap, not zero.
 */
static void run_heartbeat_gap(struct fixture *fx, bool daemon)
{
	const time_t t0 = 1369748048;
	struct store_options opts = {
	    .data_dir = fx->data,
	    .rrdcached = daemon ? fx->address : NULL,
	    .retention = {.count = 1, .tier = {{.step_s = 1, .keep_s = 30}}},
	};
	struct store *st = store_new(&opts);
	struct test_series h;
	struct store_file *f;
	const char *path;

	assert_non_null(st);
	make_series(&h, "probe_success", METRIC_GAUGE, "probe", "h1");
	f = store_file_get(st, &h.series, 1, 2);
	path = store_file_path(f);
	store_submit(st, f, t0 + 1, 1.0);
	store_submit(st, f, t0 + 4, 2.0);
	store_submit(st, f, t0 + 7, 3.0);
	store_flush(st);
	flush_daemon(fx, path);
	assert_true(fetch_at(path, "MIN", t0, t0 + 7, 1, t0 + 1) == 1.0);
	for (time_t t = t0 + 2; t <= t0 + 7; t++) {
		double v = fetch_at(path, "MIN", t0, t0 + 7, 1, t);
		if (!isnan(v)) {
			fail_msg("row %ld: expected NaN, got %g", (long)t, v);
		}
	}
	store_free(st);
}

static void test_heartbeat_gap_nan_rows_direct(void **state)
{
	run_heartbeat_gap(*state, false);
}

static void test_heartbeat_gap_nan_rows_rrdcached(void **state)
{
	start_daemon_or_skip(*state);
	run_heartbeat_gap(*state, true);
}

/* ---- failures ---- */

/* A file that is not an RRD is counted as an error; the other file is written. */
static void run_corrupt_file(struct fixture *fx, bool daemon)
{
	struct store *st = open_store(fx, daemon);
	struct test_series bad, good;
	struct store_file *fbad, *fgood;
	struct store_stats stats;
	char dir[PATH_MAX + 16];
	FILE *out;

	make_series(&bad, "corrupt", METRIC_GAUGE, "job", "bad");
	make_series(&good, "corrupt", METRIC_GAUGE, "job", "good");
	fbad = store_file_get(st, &bad.series, 10, 20);
	fgood = store_file_get(st, &good.series, 10, 20);
	snprintf(dir, sizeof dir, "%s/corrupt", fx->data);
	assert_int_equal(mkdir(dir, 0755), 0);
	out = fopen(store_file_path(fbad), "w");
	assert_non_null(out);
	fputs("not an rrd file\n", out);
	fclose(out);

	store_submit(st, fbad, T0 + 10, 1);
	store_submit(st, fgood, T0 + 10, 2);
	store_submit(st, fbad, T0 + 20, 3);
	store_submit(st, fgood, T0 + 20, 4);
	store_flush(st);
	store_get_stats(st, &stats);
	assert_int_equal(stats.dropped[STORE_DROP_ERROR], 2);
	assert_int_equal(stats.written, 2);
	assert_lastupdate(fx, store_file_path(fgood), "1700000020: 4");
	assert_true(count_log_lines(fx, "failed") >= 1);
	store_free(st);
}

static void test_corrupt_file_counted_direct(void **state)
{
	run_corrupt_file(*state, false);
}

static void test_corrupt_file_counted_rrdcached(void **state)
{
	start_daemon_or_skip(*state);
	run_corrupt_file(*state, true);
}

/* The writer keeps its updates while rrdcached restarts, then sends them. */
static void test_rrdcached_restart_keeps_queue(void **state)
{
	struct fixture *fx = *state;
	const char *exe = find_rrdcached();
	struct test_series a;
	struct store_stats stats;
	struct store *st;
	struct store_file *f;

	if (exe == NULL) {
		skip();
	}
	start_daemon(fx, exe);
	st = open_store(fx, true);
	make_series(&a, "up", METRIC_GAUGE, "job", "restart");
	f = store_file_get(st, &a.series, 10, 20);
	store_submit(st, f, T0 + 10, 1);
	store_flush(st);

	stop_daemon(fx);
	store_submit(st, f, T0 + 20, 2);
	usleep(300000);
	store_get_stats(st, &stats);
	assert_int_equal(stats.queue_depth, 1);
	start_daemon(fx, exe);
	store_flush(st);
	store_get_stats(st, &stats);
	assert_int_equal(stats.written, 2);
	assert_int_equal(stats.dropped[STORE_DROP_ERROR], 0);
	assert_lastupdate(fx, store_file_path(f), "1700000020: 2");
	assert_true(count_log_lines(fx, "unreachable") >= 1);
	assert_int_equal(count_log_lines(fx, "reachable again"), 1);
	store_free(st);
}

/*
 * With rrdcached down the queue stays bounded (queue_full drops), and a flush returns
 * after the give-up delay (about 10 s) with the held updates dropped as errors.
 */
static void test_rrdcached_down_queue_bounded(void **state)
{
	struct fixture *fx = *state;
	struct store_options opts = {.data_dir = fx->data, .queue_max = 3};
	struct test_series a;
	struct store_stats stats;
	struct store *st;
	struct store_file *f;

	snprintf(fx->address, sizeof fx->address, "unix:%s/nobody-listens.sock", fx->dir);
	opts.rrdcached = fx->address;
	st = store_new(&opts);
	assert_non_null(st);
	make_series(&a, "up", METRIC_GAUGE, "job", "down");
	f = store_file_get(st, &a.series, 10, 20);
	for (int i = 1; i <= 5; i++) {
		store_submit(st, f, T0 + 10 * i, i);
	}
	store_get_stats(st, &stats);
	assert_int_equal(stats.submitted, 5);
	assert_int_equal(stats.dropped[STORE_DROP_QUEUE_FULL], 2);
	assert_int_equal(stats.queue_depth, 3);
	store_flush(st);
	store_get_stats(st, &stats);
	assert_int_equal(stats.dropped[STORE_DROP_ERROR], 3);
	assert_int_equal(stats.queue_depth, 0);
	assert_int_equal(stats.written, 0);
	store_free(st);
}

static void test_new_rejects_bad_address(void **state)
{
	struct fixture *fx = *state;
	struct store_options opts = {.data_dir = fx->data, .rrdcached = "host:"};

	assert_null(store_new(&opts));
}

static void test_drop_reason_names(void **state)
{
	(void)state;
	assert_string_equal(store_drop_reason_name(STORE_DROP_NOT_NEWER), "not_newer");
	assert_string_equal(store_drop_reason_name(STORE_DROP_QUEUE_FULL), "queue_full");
	assert_string_equal(store_drop_reason_name(STORE_DROP_ERROR), "error");
}

#define STORE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    STORE_TEST(test_path_hostile_labels_stay_inside),
	    STORE_TEST(test_path_distinct_label_sets),
	    STORE_TEST(test_path_label_order_ignored),
	    STORE_TEST(test_path_metric_names_cleaned),
	    STORE_TEST(test_path_from_registry_series),
	    STORE_TEST(test_create_direct_rras),
	    STORE_TEST(test_create_rrdcached_rras),
	    STORE_TEST(test_not_newer_one_drain_direct),
	    STORE_TEST(test_not_newer_each_drain_direct),
	    STORE_TEST(test_not_newer_rrdcached),
	    STORE_TEST(test_restart_drops_older_direct),
	    STORE_TEST(test_restart_drops_older_rrdcached),
	    STORE_TEST(test_rrdcached_rounded_last_resent),
	    STORE_TEST(test_counter_reset_unknown_direct),
	    STORE_TEST(test_counter_reset_unknown_rrdcached),
	    STORE_TEST(test_heartbeat_gap_nan_rows_direct),
	    STORE_TEST(test_heartbeat_gap_nan_rows_rrdcached),
	    STORE_TEST(test_corrupt_file_counted_direct),
	    STORE_TEST(test_corrupt_file_counted_rrdcached),
	    STORE_TEST(test_rrdcached_restart_keeps_queue),
	    STORE_TEST(test_rrdcached_down_queue_bounded),
	    STORE_TEST(test_new_rejects_bad_address),
	    STORE_TEST(test_drop_reason_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
