/*
 * Tests of the /proc parsers on fixture trees and on hand-written malformed text, and of the
 * CPU usage arithmetic as tables. The host probe runs as a whole against fixture roots with a
 * stand-in statvfs, across runs for the usage ratios, and once against the real /proc.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/cfg.h"
#include "collector/xalloc.h"
#include "probes/probe.h"
#include "collector/utf8.h"
#include "probes/procfs.h"

/* Fixture trees live in tests/fixtures; `make check` passes their path in TOCSIN_FIXTURES. */
static char *fixture_root(const char *name)
{
	const char *dir = getenv("TOCSIN_FIXTURES");
	char *relative;
	char *source;
	char *slash;
	char *root;

	if (dir != NULL && dir[0] != '\0')
		return xasprintf("%s/proc/%s", dir, name);
	/* Run by hand from the build directory: this file's path names the source tree. */
	source = xstrdup(__FILE__);
	slash = strrchr(source, '/');
	if (slash != NULL)
		*slash = '\0';
	relative = xasprintf("%s/../fixtures/proc/%s", slash != NULL ? source : ".", name);
	/* The probe accepts only an absolute root. */
	root = realpath(relative, NULL);
	free(relative);
	free(source);
	return root != NULL ? root : xstrdup("/nonexistent-fixtures");
}

/* `what` names the table case in the failure message; NULL outside tables. */
static void assert_near_in(const char *what, double actual, double expected, double tolerance)
{
	if (fabs(actual - expected) > tolerance) {
		print_error("%s%s%.9g is not within %g of %.9g\n", what != NULL ? what : "",
			    what != NULL ? ": " : "", actual, tolerance, expected);
		fail();
	}
}

static void assert_near(double actual, double expected, double tolerance)
{
	assert_near_in(NULL, actual, expected, tolerance);
}

static void assert_contains(const char *text, const char *part)
{
	if (strstr(text, part) == NULL) {
		print_error("'%s' not found in:\n%s\n", part, text);
		fail();
	}
}

/* stat */

static void test_read_file_missing(void **state)
{
	struct procfs_report report;
	size_t length;
	char *text = NULL;

	assert_int_equal(
	    procfs_read_file("/nonexistent-root", "proc/stat", &text, &length, &report),
	    PROCFS_IO_ERROR);
	assert_null(text);
	assert_string_equal(report.text, "/proc/stat: No such file or directory");
}

/* A FIFO planted where a /proc file should be must not block the event loop. */
static void test_read_file_rejects_fifo(void **state)
{
	char dir[] = "/tmp/tocsin-procfs-XXXXXX";
	char path[PATH_MAX];
	struct procfs_report report;
	size_t length;
	char *text = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/proc", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/proc/stat", dir);
	assert_int_equal(mkfifo(path, 0600), 0);

	assert_int_equal(procfs_read_file(dir, "proc/stat", &text, &length, &report),
			 PROCFS_IO_ERROR);
	assert_null(text);
	assert_string_equal(report.text, "/proc/stat: not a regular file");

	unlink(path);
	snprintf(path, sizeof path, "%s/proc", dir);
	rmdir(path);
	rmdir(dir);
}

static void test_stat_fixture(void **state)
{
	char *root = fixture_root("basic");
	struct procfs_report report;
	struct procfs_stat st;

	assert_int_equal(procfs_read_stat(root, &st, &report), PROCFS_OK);
	assert_int_equal(report.bad_lines, 0);
	assert_true(st.has_total);
	assert_string_equal(st.total.name, "cpu");
	assert_int_equal(st.total.ticks[PROCFS_CPU_USER], 1466797);
	assert_int_equal(st.total.ticks[PROCFS_CPU_IDLE], 6221847);
	assert_int_equal(st.total.ticks[PROCFS_CPU_STEAL], 120);
	assert_int_equal(st.total.ticks[PROCFS_CPU_GUEST_NICE], 2);
	assert_int_equal(st.cpu_count, 2);
	assert_string_equal(st.cpus[0].name, "cpu0");
	assert_string_equal(st.cpus[1].name, "cpu1");
	assert_int_equal(st.cpus[1].ticks[PROCFS_CPU_SOFTIRQ], 4095);
	assert_int_equal(st.present, PROCFS_STAT_INTR | PROCFS_STAT_CTXT | PROCFS_STAT_BTIME |
					 PROCFS_STAT_PROCESSES | PROCFS_STAT_PROCS_RUNNING |
					 PROCFS_STAT_PROCS_BLOCKED);
	assert_int_equal(st.intr, 123456789);
	assert_int_equal(st.ctxt, 987654321);
	assert_int_equal(st.btime, 1700000000);
	assert_int_equal(st.processes, 424242);
	assert_int_equal(st.procs_running, 3);
	assert_int_equal(st.procs_blocked, 1);
	procfs_stat_free(&st);
	free(root);
}

static void test_stat_missing_columns_are_zero(void **state)
{
	struct procfs_report report;
	struct procfs_stat st;

	/* A 2.6-era kernel: no steal, guest or guest_nice; a 2.4-era line: only four. */
	assert_int_equal(procfs_parse_stat("cpu  10 20 30 40 50 60 70\n"
					   "cpu0 1 2 3 4\n",
					   &st, &report),
			 PROCFS_OK);
	assert_int_equal(st.total.ticks[PROCFS_CPU_SOFTIRQ], 70);
	assert_int_equal(st.total.ticks[PROCFS_CPU_STEAL], 0);
	assert_int_equal(st.total.ticks[PROCFS_CPU_GUEST], 0);
	assert_int_equal(st.total.ticks[PROCFS_CPU_GUEST_NICE], 0);
	assert_int_equal(st.cpu_count, 1);
	assert_int_equal(st.cpus[0].ticks[PROCFS_CPU_IDLE], 4);
	assert_int_equal(st.cpus[0].ticks[PROCFS_CPU_IOWAIT], 0);
	assert_int_equal(st.present, 0);
	procfs_stat_free(&st);
}

static void test_stat_malformed_lines_skipped(void **state)
{
	struct procfs_report report;
	struct procfs_stat st;

	assert_int_equal(procfs_parse_stat("cpu  1 2 3 4 5 6 7 8 9 10\n"
					   "cpu0 1 2 3\n"
					   "cpu1 1 x 3 4\n"
					   "cpu2 5 6 7 8\n"
					   "ctxt -5\n"
					   "btime 42\n",
					   &st, &report),
			 PROCFS_PARSE_ERROR);
	assert_int_equal(report.bad_lines, 3);
	assert_string_equal(report.text, "line 2: expected at least 4 CPU columns, found 3");
	assert_true(st.has_total);
	assert_int_equal(st.cpu_count, 1);
	assert_string_equal(st.cpus[0].name, "cpu2");
	assert_int_equal(st.present, PROCFS_STAT_BTIME);
	assert_int_equal(st.btime, 42);
	procfs_stat_free(&st);
}

/* CPU usage */

static void test_counter_delta_table(void **state)
{
	static const struct {
		uint64_t prev;
		uint64_t cur;
		int64_t delta;
	} cases[] = {
	    {0, 0, 0},
	    {100, 150, 50},
	    {500, 497, -3},
	    {6221847, 5873386, -348461},
	    {0, UINT64_MAX, INT64_MAX},
	    {UINT64_MAX, 0, INT64_MIN},
	    {0, (uint64_t)INT64_MAX, INT64_MAX},
	    {(uint64_t)INT64_MAX, 0, -INT64_MAX},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_int_equal(procfs_counter_delta(cases[i].prev, cases[i].cur), cases[i].delta);
}

/* Ticks in /proc/stat column order: user nice system idle iowait irq softirq steal guest gn. */
struct usage_case {
	const char *what;
	uint64_t prev[PROCFS_CPU_MODE_COUNT];
	uint64_t cur[PROCFS_CPU_MODE_COUNT];
	long ticks_per_second;
	enum procfs_cpu_usage_result result;
	double ratio[PROCFS_CPU_TIME_MODES];
	double busy;
};

static const struct usage_case usage_cases[] = {
    {"idle dropped by 348461 ticks after resume: reset",
     {1466797, 6445, 708626, 6221847, 7998, 0, 8095, 0, 0, 0},
     {1466867, 6445, 708691, 5873386, 7624, 0, 8095, 0, 0, 0},
     100,
     PROCFS_CPU_USAGE_RESET,
     {0},
     0},
    {"iowait went back by 3 ticks: clamped to 0",
     {100, 0, 50, 10000, 500, 0, 0, 0, 0, 0},
     {110, 0, 55, 10090, 497, 0, 0, 0, 0, 0},
     100,
     PROCFS_CPU_USAGE_OK,
     {10.0 / 105, 0, 5.0 / 105, 90.0 / 105, 0, 0, 0, 0},
     15.0 / 105},
    {"idle went back by 299 ticks at 100 Hz: clamped, not a reset",
     {100, 0, 0, 1000, 0, 0, 0, 0, 0, 0},
     {200, 0, 0, 701, 0, 0, 0, 0, 0, 0},
     100,
     PROCFS_CPU_USAGE_OK,
     {1, 0, 0, 0, 0, 0, 0, 0},
     1},
    {"idle went back by exactly 300 ticks at 100 Hz: reset",
     {100, 0, 0, 1000, 0, 0, 0, 0, 0, 0},
     {200, 0, 0, 700, 0, 0, 0, 0, 0, 0},
     100,
     PROCFS_CPU_USAGE_RESET,
     {0},
     0},
    {"idle went back by 2999 ticks at 1000 Hz: clamped, not a reset",
     {0, 0, 0, 10000, 0, 0, 0, 0, 0, 0},
     {50, 0, 0, 7001, 50, 0, 0, 0, 0, 0},
     1000,
     PROCFS_CPU_USAGE_OK,
     {0.5, 0, 0, 0, 0.5, 0, 0, 0},
     0.5},
    {"idle went back by 3000 ticks at 1000 Hz: reset",
     {0, 0, 0, 10000, 0, 0, 0, 0, 0, 0},
     {50, 0, 0, 7000, 50, 0, 0, 0, 0, 0},
     1000,
     PROCFS_CPU_USAGE_RESET,
     {0},
     0},
    {"no tick elapsed: nothing to report",
     {1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
     {1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
     100,
     PROCFS_CPU_USAGE_EMPTY,
     {0},
     0},
    {"every delta negative but small: nothing to report",
     {10, 10, 10, 10, 10, 10, 10, 10, 0, 0},
     {9, 9, 9, 9, 9, 9, 9, 9, 0, 0},
     100,
     PROCFS_CPU_USAGE_EMPTY,
     {0},
     0},
    {"all eight modes busy; guest counted inside user only once",
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
     {10, 10, 10, 10, 10, 10, 10, 10, 10, 10},
     100,
     PROCFS_CPU_USAGE_OK,
     {0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125},
     0.75},
    {"columns missing on an old kernel stay 0",
     {100, 0, 100, 800, 0, 0, 0, 0, 0, 0},
     {150, 0, 150, 900, 0, 0, 0, 0, 0, 0},
     100,
     PROCFS_CPU_USAGE_OK,
     {0.25, 0, 0.25, 0.5, 0, 0, 0, 0},
     0.5},
    {"counters near the top of uint64 do not wrap",
     {UINT64_MAX - 100, 0, 0, UINT64_MAX - 300, 0, 0, 0, 0, 0, 0},
     {UINT64_MAX, 0, 0, UINT64_MAX, 0, 0, 0, 0, 0, 0},
     100,
     PROCFS_CPU_USAGE_OK,
     {0.25, 0, 0, 0.75, 0, 0, 0, 0},
     0.25},
    {"a sum past uint64 is garbage: reset",
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
     {UINT64_MAX, UINT64_MAX, UINT64_MAX, 0, 0, 0, 0, 0, 0, 0},
     100,
     PROCFS_CPU_USAGE_RESET,
     {0},
     0},
};

static void test_cpu_usage_table(void **state)
{
	for (size_t i = 0; i < sizeof usage_cases / sizeof usage_cases[0]; i++) {
		const struct usage_case *c = &usage_cases[i];
		enum procfs_cpu_usage_result result;
		struct procfs_cpu_usage usage;
		double sum = 0;

		result = procfs_cpu_usage(c->prev, c->cur, c->ticks_per_second, &usage);
		if (result != c->result)
			print_error("%s: result %d, expected %d\n", c->what, result, c->result);
		assert_int_equal(result, c->result);
		if (c->result != PROCFS_CPU_USAGE_OK)
			continue;
		for (int mode = 0; mode < PROCFS_CPU_TIME_MODES; mode++) {
			assert_true(usage.ratio[mode] >= 0 && usage.ratio[mode] <= 1);
			assert_near_in(c->what, usage.ratio[mode], c->ratio[mode], 1e-9);
			sum += usage.ratio[mode];
		}
		assert_near_in(c->what, sum, 1, 1e-9);
		assert_true(usage.busy >= 0 && usage.busy <= 1);
		assert_near_in(c->what, usage.busy, c->busy, 1e-9);
	}
}

static void test_cpu_usage_percentages_of_small_regression(void **state)
{
	const uint64_t prev[PROCFS_CPU_MODE_COUNT] = {100, 0, 50, 10000, 500, 0, 0, 0, 0, 0};
	const uint64_t cur[PROCFS_CPU_MODE_COUNT] = {110, 0, 55, 10090, 497, 0, 0, 0, 0, 0};
	struct procfs_cpu_usage usage;

	assert_int_equal(procfs_cpu_usage(prev, cur, 100, &usage), PROCFS_CPU_USAGE_OK);
	assert_near(100 * usage.ratio[PROCFS_CPU_USER], 9.52, 0.005);
	assert_near(100 * usage.ratio[PROCFS_CPU_SYSTEM], 4.76, 0.005);
	assert_near(100 * usage.ratio[PROCFS_CPU_IDLE], 85.71, 0.005);
	assert_near(100 * usage.ratio[PROCFS_CPU_IOWAIT], 0, 0);
}

/* meminfo and loadavg */

static const struct procfs_meminfo_field *find_field(const struct procfs_meminfo *mi,
						     const char *name)
{
	for (size_t i = 0; i < mi->count; i++) {
		if (strcmp(mi->fields[i].name, name) == 0)
			return &mi->fields[i];
	}
	print_error("no meminfo field %s\n", name);
	fail();
	return NULL;
}

static void test_meminfo_fixture(void **state)
{
	char *root = fixture_root("basic");
	const struct procfs_meminfo_field *field;
	struct procfs_report report;
	struct procfs_meminfo mi;

	assert_int_equal(procfs_read_meminfo(root, &mi, &report), PROCFS_OK);
	assert_int_equal(mi.count, 18);
	field = find_field(&mi, "MemTotal");
	assert_true(field->in_bytes);
	assert_int_equal(field->value, 16318208ull * 1024);
	field = find_field(&mi, "Active_anon");
	assert_int_equal(field->value, 2345678ull * 1024);
	field = find_field(&mi, "Inactive_file");
	assert_int_equal(field->value, 3333333ull * 1024);
	field = find_field(&mi, "SwapFree");
	assert_int_equal(field->value, 2097000ull * 1024);
	field = find_field(&mi, "HugePages_Total");
	assert_false(field->in_bytes);
	assert_int_equal(field->value, 0);
	procfs_meminfo_free(&mi);
	free(root);
}

static void test_meminfo_malformed_lines_skipped(void **state)
{
	struct procfs_report report;
	struct procfs_meminfo mi;

	assert_int_equal(procfs_parse_meminfo("MemTotal: 100 kB\n"
					      "NoColon 5 kB\n"
					      "Odd: 5 MB\n"
					      "Huge: 18446744073709551615 kB\n"
					      "Bad: -1 kB\n"
					      "\n"
					      "Plain: 7\n",
					      &mi, &report),
			 PROCFS_PARSE_ERROR);
	assert_int_equal(report.bad_lines, 4);
	assert_string_equal(report.text, "line 2: missing ':' after the name");
	assert_int_equal(mi.count, 2);
	assert_string_equal(mi.fields[0].name, "MemTotal");
	assert_int_equal(mi.fields[0].value, 102400);
	assert_string_equal(mi.fields[1].name, "Plain");
	assert_int_equal(mi.fields[1].value, 7);
	procfs_meminfo_free(&mi);
}

static void test_loadavg_fixture(void **state)
{
	char *root = fixture_root("basic");
	struct procfs_report report;
	struct procfs_loadavg load;

	assert_int_equal(procfs_read_loadavg(root, &load, &report), PROCFS_OK);
	assert_near(load.load1, 0.52, 1e-12);
	assert_near(load.load5, 1.25, 1e-12);
	assert_near(load.load15, 2.50, 1e-12);
	free(root);
}

static void test_loadavg_malformed(void **state)
{
	static const char *const inputs[] = {"", "0.5 0.4\n", "0.5 x 0.3 1/2 3\n",
					     "-1 0 0 1/2 3\n"};
	struct procfs_report report;
	struct procfs_loadavg load;

	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		assert_int_equal(procfs_parse_loadavg(inputs[i], &load, &report),
				 PROCFS_PARSE_ERROR);
		assert_int_equal(report.bad_lines, 1);
	}
}

/* mounts */

static void test_mount_field_decoding(void **state)
{
	static const struct {
		const char *escaped;
		const char *decoded;
	} cases[] = {
	    {"/var/lib/kubelet/plugins/vsphere-volume/mounts/[ds1]\\040abc/pvc-1.vmdk",
	     "/var/lib/kubelet/plugins/vsphere-volume/mounts/[ds1] abc/pvc-1.vmdk"},
	    {"/srv/test/aaa\\134b\\011c\\012d#e", "/srv/test/aaa\\b\tc\nd#e"},
	    {"/run/media/user/HDD\\0403", "/run/media/user/HDD 3"},
	    {"/run/media/user/Windows\\040Drive", "/run/media/user/Windows Drive"},
	    {"rpool\\0401", "rpool 1"},
	    {"plain", "plain"},
	    {"", ""},
	    {"trailing\\", "trailing\\"},
	    {"short\\04", "short\\04"},
	    {"not octal\\089", "not octal\\089"},
	    {"nul\\000kept", "nul\\000kept"},
	    {"too big\\400", "too big\\400"},
	    {"\\134\\134", "\\\\"},
	    {"\\303\\237", "\xc3\x9f"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *field = xstrdup(cases[i].escaped);

		assert_int_equal(procfs_decode_mount_field(field), strlen(cases[i].decoded));
		assert_string_equal(field, cases[i].decoded);
		free(field);
	}
}

static void test_mounts_fixture(void **state)
{
	char *root = fixture_root("basic");
	struct procfs_report report;
	struct procfs_mounts m;

	assert_int_equal(procfs_read_mounts(root, &m, &report), PROCFS_OK);
	assert_int_equal(m.count, 13);
	assert_string_equal(m.entries[4].device, "/dev/sda1");
	assert_string_equal(m.entries[4].mount_point, "/");
	assert_string_equal(m.entries[4].fstype, "ext4");
	/* errors=remount-ro is not the ro option. */
	assert_false(m.entries[4].read_only);
	assert_string_equal(m.entries[7].device, "/dev/sda");
	assert_string_equal(m.entries[7].mount_point,
			    "/var/lib/kubelet/plugins/vsphere-volume/mounts/[ds1] abc/pvc-1.vmdk");
	assert_string_equal(m.entries[7].options, "rw,relatime");
	assert_string_equal(m.entries[8].mount_point, "/srv/test/aaa\\b\tc\nd#e");
	assert_string_equal(m.entries[8].fstype, "ext4");
	assert_string_equal(m.entries[9].mount_point, "/run/media/user/HDD 3");
	assert_string_equal(m.entries[9].fstype, "fuseblk");
	assert_true(m.entries[9].read_only);
	assert_string_equal(m.entries[10].mount_point, "/run/media/user/Windows Drive");
	assert_true(m.entries[10].read_only);
	procfs_mounts_free(&m);
	free(root);
}

static void test_mounts_malformed_line_skipped(void **state)
{
	struct procfs_report report;
	struct procfs_mounts m;

	assert_int_equal(procfs_parse_mounts("/dev/sda1 / ext4 rw 0 0\n"
					     "/dev/sdb1 /broken ext4\n"
					     "/dev/sdc1 /old ext2 ro\n",
					     &m, &report),
			 PROCFS_PARSE_ERROR);
	assert_int_equal(report.bad_lines, 1);
	assert_string_equal(report.text, "line 2: expected at least 4 fields, found 3");
	assert_int_equal(m.count, 2);
	assert_string_equal(m.entries[1].mount_point, "/old");
	assert_true(m.entries[1].read_only);
	procfs_mounts_free(&m);
}

/* diskstats */

static void test_diskstats_fixture(void **state)
{
	char *root = fixture_root("basic");
	struct procfs_report report;
	struct procfs_diskstats d;

	assert_int_equal(procfs_read_diskstats(root, &d, &report), PROCFS_OK);
	assert_int_equal(d.count, 6);
	assert_string_equal(d.disks[0].name, "sda");
	assert_int_equal(d.disks[0].stat_count, PROCFS_DISK_STAT_COUNT);
	assert_int_equal(d.disks[0].stats[PROCFS_DISK_SECTORS_READ], 20000);
	assert_int_equal(d.disks[0].stats[PROCFS_DISK_IO_NOW], 2);
	assert_int_equal(d.disks[0].stats[PROCFS_DISK_FLUSH_TIME_MS], 40);
	assert_string_equal(d.disks[3].name, "nvme0n1");
	assert_int_equal(d.disks[3].stat_count, PROCFS_DISK_STAT_MIN);
	assert_int_equal(d.disks[3].stats[PROCFS_DISK_READS_COMPLETED], 123456789012ull);
	assert_int_equal(d.disks[3].stats[PROCFS_DISK_IO_WEIGHTED_TIME_MS], 3000);
	assert_string_equal(d.disks[5].name, "dm-0");
	assert_int_equal(d.disks[5].stat_count, PROCFS_DISK_DISCARD_TIME_MS + 1);
	procfs_diskstats_free(&d);
	free(root);
}

static void test_diskstats_malformed_lines_skipped(void **state)
{
	struct procfs_report report;
	struct procfs_diskstats d;

	assert_int_equal(procfs_parse_diskstats("8 0 sda 1 2 3 4 5 6 7 8 9 10\n"
						"8 16 sdb 1 2 3 4 5 6 7 8 9 10 11\n"
						"x 0 sdc 1 2 3 4 5 6 7 8 9 10 11\n"
						"8 48 sdd 1 2 3 4 5 6 7 8 9 10 z\n",
						&d, &report),
			 PROCFS_PARSE_ERROR);
	assert_int_equal(report.bad_lines, 3);
	assert_string_equal(report.text, "line 1: expected at least 14 fields, found 13");
	assert_int_equal(d.count, 1);
	assert_string_equal(d.disks[0].name, "sdb");
	assert_int_equal(d.disks[0].stats[PROCFS_DISK_IO_WEIGHTED_TIME_MS], 11);
	procfs_diskstats_free(&d);
}

/* net/dev */

static const struct procfs_netdev *find_netdev(const struct procfs_netdevs *n, const char *name)
{
	for (size_t i = 0; i < n->count; i++) {
		if (strcmp(n->devices[i].name, name) == 0)
			return &n->devices[i];
	}
	print_error("no interface %s\n", name);
	fail();
	return NULL;
}

static void test_netdev_colon_forms(void **state)
{
	char *root = fixture_root("basic");
	const struct procfs_netdev *dev;
	struct procfs_report report;
	struct procfs_netdevs n;

	assert_int_equal(procfs_read_netdev(root, &n, &report), PROCFS_OK);
	assert_int_equal(n.count, 4);
	dev = find_netdev(&n, "lo");
	assert_int_equal(dev->counters[PROCFS_NET_RX_BYTES], 181005683161ull);
	assert_int_equal(dev->counters[PROCFS_NET_RX_PACKETS], 224490607);
	assert_int_equal(dev->counters[PROCFS_NET_TX_BYTES], 181005683161ull);
	dev = find_netdev(&n, "eth0");
	assert_int_equal(dev->counters[PROCFS_NET_RX_BYTES], 68210035552ull);
	assert_int_equal(dev->counters[PROCFS_NET_TX_BYTES], 9315587528ull);
	assert_int_equal(dev->counters[PROCFS_NET_TX_PACKETS], 43451486);
	for (int k = 0; k < PROCFS_NETDEV_COUNTERS; k++) {
		assert_int_equal(find_netdev(&n, "eth1")->counters[k], 0);
		assert_int_equal(find_netdev(&n, "tun10001:1")->counters[k], 0);
	}
	procfs_netdevs_free(&n);
	free(root);
}

static void test_netdev_malformed_lines_skipped(void **state)
{
	struct procfs_report report;
	struct procfs_netdevs n;

	assert_int_equal(
	    procfs_parse_netdev("Inter-|   Receive |  Transmit\n"
				" face |bytes packets|bytes packets\n"
				"  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n"
				"  eth1: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n"
				"  eth2 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
				"  eth3: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -16\n"
				"  eth4: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 99999999999999999999\n"
				"     : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
				"  eth5: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
				&n, &report),
	    PROCFS_PARSE_ERROR);
	assert_int_equal(report.bad_lines, 6);
	assert_string_equal(report.text, "line 3: eth0: expected 16 counters, found 15");
	assert_int_equal(n.count, 1);
	assert_string_equal(n.devices[0].name, "eth5");
	assert_int_equal(n.devices[0].counters[PROCFS_NET_TX_COMPRESSED], 16);
	procfs_netdevs_free(&n);
}

static void test_utf8_repair_table(void **state)
{
	static const struct {
		const char *input;
		const char *output;
		size_t replaced;
	} cases[] = {
	    {"", "", 0},
	    {"/mnt/plain", "/mnt/plain", 0},
	    {"Gr\xc3\xb6\xc3\x9f"
	     "e",
	     "Gr\xc3\xb6\xc3\x9f"
	     "e",
	     0},
	    {"\xe2\x82\xac \xf0\x9f\x92\xbe", "\xe2\x82\xac \xf0\x9f\x92\xbe", 0},
	    {"latin1 \xe9t\xe9", "latin1 ?t?", 2},
	    {"\xff\xfe", "??", 2},
	    {"overlong \xc0\xaf", "overlong ??", 2},
	    {"overlong \xe0\x80\xaf", "overlong ???", 3},
	    {"surrogate \xed\xa0\x80", "surrogate ???", 3},
	    {"past U+10FFFF \xf4\x90\x80\x80", "past U+10FFFF ????", 4},
	    {"cut \xe2\x82", "cut ??", 2},
	    {"lone \x80 continuation", "lone ? continuation", 1},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = xstrdup(cases[i].input);

		assert_int_equal(utf8_repair(text), cases[i].replaced);
		assert_string_equal(text, cases[i].output);
		free(text);
	}
}

/* statvfs */

static void test_fs_stats_from_statvfs(void **state)
{
	struct procfs_fs_stats fs;
	struct statvfs vfs;

	memset(&vfs, 0, sizeof vfs);
	vfs.f_bsize = 65536;
	vfs.f_frsize = 4096;
	vfs.f_blocks = 1000;
	vfs.f_bfree = 500;
	vfs.f_bavail = 400;
	vfs.f_files = 100;
	vfs.f_ffree = 50;
	vfs.f_flag = ST_RDONLY;
	procfs_fs_stats_from_statvfs(&vfs, &fs);
	assert_int_equal(fs.size_bytes, 4096000);
	assert_int_equal(fs.free_bytes, 2048000);
	assert_int_equal(fs.avail_bytes, 1638400);
	assert_int_equal(fs.files, 100);
	assert_int_equal(fs.files_free, 50);
	assert_true(fs.read_only);

	vfs.f_frsize = 0;
	vfs.f_flag = 0;
	procfs_fs_stats_from_statvfs(&vfs, &fs);
	assert_int_equal(fs.size_bytes, 65536000);
	assert_false(fs.read_only);
}

/* The probe as a whole */

/* Parses `yaml` (a mapping of host options) and returns the state, or NULL with *errors. */
static void *host_state_from_yaml(const char *yaml, char **errors)
{
	struct cfg *cfg = cfg_parse_string("test.yml", yaml, strlen(yaml));
	struct cfg_map map;
	void *st = NULL;

	assert_int_equal(cfg_root(cfg, &map), 0);
	if (probe_type_host.parse(&map, &st) < 0)
		st = NULL;
	cfg_map_finish(&map);
	*errors = xstrdup(cfg_errors(cfg));
	cfg_free(cfg);
	return st;
}

/* The sample named `name` whose labels include every NAME, VALUE pair given; NULL if none. */
static const struct probe_sample *find_sample(const struct probe_run *run, const char *name, ...)
{
	for (size_t i = 0; i < probe_run_sample_count(run); i++) {
		const struct probe_sample *s = probe_run_sample(run, i);
		bool match = strcmp(s->desc->name, name) == 0;
		const char *label;
		va_list ap;

		va_start(ap, name);
		while (match && (label = va_arg(ap, const char *)) != NULL) {
			const char *value = va_arg(ap, const char *);
			bool found = false;

			for (size_t j = 0; j < s->label_count; j++) {
				if (strcmp(s->labels[j].name, label) == 0 &&
				    strcmp(s->labels[j].value, value) == 0)
					found = true;
			}
			match = found;
		}
		va_end(ap);
		if (match)
			return s;
	}
	return NULL;
}

static size_t count_samples(const struct probe_run *run, const char *name)
{
	size_t count = 0;

	for (size_t i = 0; i < probe_run_sample_count(run); i++) {
		if (strcmp(probe_run_sample(run, i)->desc->name, name) == 0)
			count++;
	}
	return count;
}

static double sample_value(const struct probe_sample *s)
{
	assert_non_null(s);
	return s->value;
}

/* Stands in for statvfs(3): fixed figures, and a failure for /run. */
static int fake_statvfs(const char *path, struct statvfs *out)
{
	memset(out, 0, sizeof *out);
	if (strcmp(path, "/run") == 0) {
		errno = EACCES;
		return -1;
	}
	out->f_frsize = 4096;
	out->f_blocks = strcmp(path, "/run/media/user/HDD 3") == 0 ? 2000 : 1000;
	out->f_bfree = 500;
	out->f_bavail = 400;
	out->f_files = 100;
	out->f_ffree = 50;
	return 0;
}

static struct probe_run *run_host(void *st)
{
	struct probe_run *run = probe_run_new(NULL, "host", NULL, NULL);

	probe_type_host.start(run, st);
	assert_true(probe_run_finished(run));
	return run;
}

static void test_host_probe_fixture_run(void **state)
{
	char *root = fixture_root("basic");
	char *yaml = xasprintf("root: '%s'\n", root);
	char *errors;
	void *st = host_state_from_yaml(yaml, &errors);
	struct probe_run *run;

	assert_string_equal(errors, "");
	assert_non_null(st);
	host_set_statvfs(st, fake_statvfs);
	run = run_host(st);
	assert_int_equal(probe_run_status(run), PROBE_STATUS_OK);
	assert_string_equal(probe_run_reason(run), "succeeded");

	/* stat: per-CPU seconds at the test machine's tick rate; no ratios on a first run. */
	assert_near(sample_value(find_sample(run, "node_cpu_seconds_total", "cpu", "1", "mode",
					     "softirq", NULL)),
		    4095.0 / (double)sysconf(_SC_CLK_TCK), 1e-9);
	assert_null(find_sample(run, "node_cpu_seconds_total", "cpu", "all", NULL));
	assert_int_equal(count_samples(run, "node_cpu_seconds_total"), 16);
	assert_int_equal(count_samples(run, "node_cpu_guest_seconds_total"), 4);
	assert_int_equal(count_samples(run, "host_cpu_ratio"), 0);
	assert_near(sample_value(find_sample(run, "node_context_switches_total", NULL)), 987654321,
		    0);
	assert_near(sample_value(find_sample(run, "node_forks_total", NULL)), 424242, 0);
	assert_near(sample_value(find_sample(run, "node_intr_total", NULL)), 123456789, 0);
	assert_near(sample_value(find_sample(run, "node_boot_time_seconds", NULL)), 1700000000, 0);
	assert_near(sample_value(find_sample(run, "node_procs_running", NULL)), 3, 0);
	assert_near(sample_value(find_sample(run, "node_procs_blocked", NULL)), 1, 0);

	/* loadavg and meminfo */
	assert_near(sample_value(find_sample(run, "node_load1", NULL)), 0.52, 1e-12);
	assert_near(sample_value(find_sample(run, "node_load15", NULL)), 2.5, 1e-12);
	assert_near(sample_value(find_sample(run, "node_memory_MemTotal_bytes", NULL)),
		    16318208.0 * 1024, 0);
	assert_near(sample_value(find_sample(run, "node_memory_Active_anon_bytes", NULL)),
		    2345678.0 * 1024, 0);
	assert_near(sample_value(find_sample(run, "node_memory_HugePages_Total", NULL)), 0, 0);
	assert_int_equal(count_samples(run, "node_memory_MemTotal_bytes"), 1);

	/* filesystems: pseudo types, /dev, /sys, /proc and docker layers are excluded. */
	assert_int_equal(count_samples(run, "node_filesystem_device_error"), 7);
	assert_near(sample_value(find_sample(run, "node_filesystem_size_bytes", "mountpoint",
					     "/run/media/user/HDD 3", "device", "/dev/sdc3",
					     "fstype", "fuseblk", NULL)),
		    2000.0 * 4096, 0);
	assert_near(sample_value(find_sample(run, "node_filesystem_readonly", "mountpoint",
					     "/run/media/user/HDD 3", NULL)),
		    1, 0);
	assert_near(sample_value(find_sample(run, "node_filesystem_avail_bytes", "mountpoint",
					     "/srv/test/aaa\\b\tc\nd#e", NULL)),
		    400.0 * 4096, 0);
	assert_near(
	    sample_value(find_sample(run, "node_filesystem_readonly", "mountpoint", "/", NULL)), 0,
	    0);
	assert_near(sample_value(find_sample(run, "node_filesystem_files_free", "mountpoint",
					     "/var/lib/kubelet/plugins/vsphere-volume/mounts/"
					     "[ds1] abc/pvc-1.vmdk",
					     NULL)),
		    50, 0);
	assert_near(sample_value(find_sample(run, "node_filesystem_device_error", "mountpoint",
					     "/run", "fstype", "tmpfs", NULL)),
		    1, 0);
	assert_null(find_sample(run, "node_filesystem_size_bytes", "mountpoint", "/run", NULL));
	assert_null(find_sample(run, "node_filesystem_size_bytes", "mountpoint", "/dev/shm", NULL));
	assert_null(find_sample(run, "node_filesystem_size_bytes", "fstype", "overlay", NULL));
	/* /data is mounted twice: only the later, visible mount is reported. */
	assert_int_equal(count_samples(run, "node_filesystem_size_bytes"), 6);
	assert_null(find_sample(run, "node_filesystem_size_bytes", "device", "/dev/sdd1", NULL));
	assert_non_null(
	    find_sample(run, "node_filesystem_size_bytes", "device", "/dev/sde1", NULL));

	/* disks: partitions, loop devices excluded; fields a kernel lacks are not made up. */
	assert_near(
	    sample_value(find_sample(run, "node_disk_read_bytes_total", "device", "sda", NULL)),
	    20000.0 * 512, 0);
	assert_near(
	    sample_value(find_sample(run, "node_disk_written_bytes_total", "device", "sda", NULL)),
	    40000.0 * 512, 0);
	assert_near(sample_value(find_sample(run, "node_disk_read_time_seconds_total", "device",
					     "sda", NULL)),
		    0.5, 1e-12);
	assert_near(sample_value(find_sample(run, "node_disk_write_time_seconds_total", "device",
					     "sda", NULL)),
		    1.5, 1e-12);
	assert_near(sample_value(
			find_sample(run, "node_disk_io_time_seconds_total", "device", "sda", NULL)),
		    3, 1e-12);
	assert_near(sample_value(find_sample(run, "node_disk_io_now", "device", "sda", NULL)), 2,
		    0);
	assert_near(sample_value(find_sample(run, "node_disk_reads_completed_total", "device",
					     "nvme0n1", NULL)),
		    123456789012.0, 0);
	assert_near(sample_value(find_sample(run, "node_disk_writes_completed_total", "device",
					     "dm-0", NULL)),
		    400, 0);
	assert_null(find_sample(run, "node_disk_flush_requests_total", "device", "nvme0n1", NULL));
	assert_null(find_sample(run, "node_disk_reads_completed_total", "device", "sda1", NULL));
	assert_null(find_sample(run, "node_disk_reads_completed_total", "device", "loop0", NULL));
	assert_null(
	    find_sample(run, "node_disk_reads_completed_total", "device", "nvme0n1p1", NULL));
	assert_int_equal(count_samples(run, "node_disk_reads_completed_total"), 3);

	/* network */
	assert_near(sample_value(
			find_sample(run, "node_network_receive_bytes_total", "device", "lo", NULL)),
		    181005683161.0, 0);
	assert_near(sample_value(find_sample(run, "node_network_transmit_packets_total", "device",
					     "eth0", NULL)),
		    43451486, 0);
	assert_near(sample_value(find_sample(run, "node_network_receive_drop_total", "device",
					     "tun10001:1", NULL)),
		    0, 0);
	assert_int_equal(count_samples(run, "node_network_transmit_carrier_total"), 4);

	/* The scheduler adds the probe label, never the probe itself. */
	assert_null(find_sample(run, "node_load1", "probe", "host", NULL));

	probe_run_free(run);
	probe_type_host.free(st);
	free(errors);
	free(yaml);
	free(root);
}

static void test_host_probe_parse_error_keeps_other_files(void **state)
{
	char *root = fixture_root("malformed");
	char *yaml = xasprintf("root: '%s'\n", root);
	char *errors;
	void *st = host_state_from_yaml(yaml, &errors);
	struct probe_run *run;

	assert_non_null(st);
	run = run_host(st);
	assert_int_equal(probe_run_status(run), PROBE_STATUS_PARSE_ERROR);
	assert_string_equal(probe_run_reason(run),
			    "/proc/meminfo line 3: Bogus: expected a number and an optional unit "
			    "(and 1 more)");
	assert_non_null(find_sample(run, "node_memory_MemTotal_bytes", NULL));
	assert_non_null(find_sample(run, "node_memory_SwapTotal_bytes", NULL));
	assert_null(find_sample(run, "node_memory_Bogus_bytes", NULL));
	assert_non_null(find_sample(run, "node_load5", NULL));
	assert_non_null(find_sample(run, "node_cpu_seconds_total", "cpu", "0", NULL));
	assert_non_null(find_sample(run, "node_disk_io_now", "device", "sda", NULL));
	assert_near(sample_value(find_sample(run, "node_network_receive_bytes_total", "device",
					     "eth0", NULL)),
		    1000, 0);
	assert_non_null(find_sample(run, "node_network_receive_bytes_total", "device", "lo", NULL));
	assert_null(find_sample(run, "node_network_receive_bytes_total", "device", "eth2", NULL));
	/* Another root than / has no filesystem sizes unless a test supplies statvfs. */
	assert_int_equal(count_samples(run, "node_filesystem_size_bytes"), 0);

	probe_run_free(run);
	probe_type_host.free(st);
	free(errors);
	free(yaml);
	free(root);
}

static void write_text(const char *dir, const char *relpath, const char *text)
{
	char *path = xasprintf("%s/%s", dir, relpath);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	free(path);
}

static void test_host_probe_cpu_ratios_across_runs(void **state)
{
	char dir[] = "/tmp/tocsin-procfs-XXXXXX";
	char *stat_path;
	char *proc;
	char *yaml;
	char *errors;
	void *st;
	struct probe_run *run;

	assert_non_null(mkdtemp(dir));
	proc = xasprintf("%s/proc", dir);
	assert_int_equal(mkdir(proc, 0700), 0);
	yaml = xasprintf("root: %s/\n", dir);
	st = host_state_from_yaml(yaml, &errors);
	assert_non_null(st);

	write_text(proc, "stat",
		   "cpu  1466797 6445 708626 6221847 7998 0 8095 0 0 0\n"
		   "cpu1 100 0 50 10000 500 0 0 0 0 0\n"
		   "cpu2 100 0 50 10000 500 0 0 0\n"
		   "cpu3 5 5 5 5 5 5 5 5 0 0\n");
	run = run_host(st);
	/* Only stat exists: the other files fail, and the first missing one is named. */
	assert_int_equal(probe_run_status(run), PROBE_STATUS_IO_ERROR);
	assert_string_equal(probe_run_reason(run),
			    "/proc/loadavg: No such file or directory (and 4 more)");
	assert_int_equal(count_samples(run, "host_cpu_ratio"), 0);
	assert_int_equal(count_samples(run, "host_cpu_busy_ratio"), 0);
	probe_run_free(run);

	/*
	 * The aggregate idle went back after a resume. cpu1 and cpu2 have a small iowait
	 * regression, and cpu2 comes from a kernel without guest columns. cpu3 did not move,
	 * and cpu4 is new.
	 */
	write_text(proc, "stat",
		   "cpu  1466867 6445 708691 5873386 7624 0 8095 0 0 0\n"
		   "cpu1 110 0 55 10090 497 0 0 0 0 0\n"
		   "cpu2 110 0 55 10090 497 0 0 0\n"
		   "cpu3 5 5 5 5 5 5 5 5 0 0\n"
		   "cpu4 1 1 1 1 1 1 1 1 0 0\n");
	run = run_host(st);
	assert_null(find_sample(run, "host_cpu_ratio", "cpu", "all", NULL));
	assert_null(find_sample(run, "host_cpu_busy_ratio", "cpu", "all", NULL));
	assert_near(
	    sample_value(find_sample(run, "host_cpu_ratio", "cpu", "1", "mode", "user", NULL)),
	    10.0 / 105, 1e-12);
	assert_near(
	    sample_value(find_sample(run, "host_cpu_ratio", "cpu", "1", "mode", "idle", NULL)),
	    90.0 / 105, 1e-12);
	assert_near(
	    sample_value(find_sample(run, "host_cpu_ratio", "cpu", "1", "mode", "iowait", NULL)), 0,
	    0);
	assert_near(sample_value(find_sample(run, "host_cpu_busy_ratio", "cpu", "1", NULL)),
		    15.0 / 105, 1e-12);
	assert_near(
	    sample_value(find_sample(run, "host_cpu_ratio", "cpu", "2", "mode", "system", NULL)),
	    5.0 / 105, 1e-12);
	assert_null(find_sample(run, "host_cpu_ratio", "cpu", "3", NULL));
	assert_null(find_sample(run, "host_cpu_ratio", "cpu", "4", NULL));
	assert_int_equal(count_samples(run, "host_cpu_ratio"), 2 * PROCFS_CPU_TIME_MODES);
	assert_int_equal(count_samples(run, "host_cpu_busy_ratio"), 2);
	probe_run_free(run);

	/* After the reset the aggregate was re-baselined, so the next interval counts again. */
	write_text(proc, "stat", "cpu  1466967 6445 708691 5873686 7624 0 8095 0 0 0\n");
	run = run_host(st);
	assert_near(sample_value(find_sample(run, "host_cpu_busy_ratio", "cpu", "all", NULL)), 0.25,
		    1e-12);
	assert_near(
	    sample_value(find_sample(run, "host_cpu_ratio", "cpu", "all", "mode", "idle", NULL)),
	    0.75, 1e-12);
	probe_run_free(run);

	probe_type_host.free(st);
	stat_path = xasprintf("%s/stat", proc);
	assert_int_equal(unlink(stat_path), 0);
	assert_int_equal(rmdir(proc), 0);
	assert_int_equal(rmdir(dir), 0);
	free(stat_path);
	free(errors);
	free(yaml);
	free(proc);
}

static void test_host_options_invalid(void **state)
{
	char *errors;
	void *st;

	st = host_state_from_yaml("root: relative/dir\n"
				  "mount_points_exclude: '(unclosed'\n"
				  "devices_exclude: 'a)|(b'\n"
				  "interfaces_exclude: '[z-a]'\n"
				  "filesystems_exclude: 5\n",
				  &errors);
	assert_null(st);
	assert_contains(errors, "test.yml:1:7: root: invalid root 'relative/dir'");
	assert_contains(errors, "mount_points_exclude: invalid regular expression \"(unclosed\"");
	assert_contains(errors, "devices_exclude: invalid regular expression \"a)|(b\"");
	assert_contains(errors, "interfaces_exclude: invalid regular expression \"[z-a]\"");
	assert_contains(errors, "filesystems_exclude: expected a sequence");
	free(errors);
}

static void test_host_options_replace_defaults(void **state)
{
	char *root = fixture_root("basic");
	char *yaml = xasprintf("root: '%s'\n"
			       "filesystems_exclude: [ext4]\n"
			       "mount_points_exclude: ''\n"
			       "devices_exclude: 'sd.*'\n"
			       "interfaces_exclude: 'eth[0-9]+|lo'\n",
			       root);
	char *errors;
	void *st = host_state_from_yaml(yaml, &errors);
	struct probe_run *run;

	assert_string_equal(errors, "");
	assert_non_null(st);
	host_set_statvfs(st, fake_statvfs);
	run = run_host(st);
	/* ext4 is now excluded, while proc, sysfs and overlay are not. */
	assert_null(find_sample(run, "node_filesystem_size_bytes", "fstype", "ext4", NULL));
	assert_non_null(
	    find_sample(run, "node_filesystem_size_bytes", "mountpoint", "/proc", NULL));
	assert_non_null(find_sample(run, "node_filesystem_size_bytes", "fstype", "overlay", NULL));
	/* The expression must match the whole name: "sd.*" leaves dm-0 and loop0. */
	assert_null(find_sample(run, "node_disk_io_now", "device", "sda", NULL));
	assert_null(find_sample(run, "node_disk_io_now", "device", "sda1", NULL));
	assert_non_null(find_sample(run, "node_disk_io_now", "device", "loop0", NULL));
	assert_non_null(find_sample(run, "node_disk_io_now", "device", "dm-0", NULL));
	assert_null(find_sample(run, "node_network_receive_bytes_total", "device", "eth0", NULL));
	assert_null(find_sample(run, "node_network_receive_bytes_total", "device", "lo", NULL));
	assert_non_null(
	    find_sample(run, "node_network_receive_bytes_total", "device", "tun10001:1", NULL));
	probe_run_free(run);
	probe_type_host.free(st);
	free(errors);
	free(yaml);
	free(root);
}

static void test_host_probe_real_root(void **state)
{
	char *errors;
	void *st = host_state_from_yaml("{}\n", &errors);
	struct probe_run *run;

	assert_non_null(st);
	run = run_host(st);
	/* Containers may hide a /proc file (an I/O error), but what exists must parse. */
	if (probe_run_status(run) == PROBE_STATUS_PARSE_ERROR)
		print_error("%s\n", probe_run_reason(run));
	assert_int_not_equal(probe_run_status(run), PROBE_STATUS_PARSE_ERROR);
	assert_non_null(find_sample(run, "node_load1", NULL));
	assert_true(sample_value(find_sample(run, "node_memory_MemTotal_bytes", NULL)) > 0);
	probe_run_free(run);

	/* A second run may see no tick elapse on an idle CPU, but every ratio it emits is valid. */
	usleep(50 * 1000);
	run = run_host(st);
	for (size_t i = 0; i < probe_run_sample_count(run); i++) {
		const struct probe_sample *s = probe_run_sample(run, i);

		if (strcmp(s->desc->name, "host_cpu_ratio") != 0 &&
		    strcmp(s->desc->name, "host_cpu_busy_ratio") != 0)
			continue;
		assert_true(s->value >= 0);
		assert_true(s->value <= 1);
	}
	probe_run_free(run);
	probe_type_host.free(st);
	free(errors);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_file_missing),
	    cmocka_unit_test(test_read_file_rejects_fifo),
	    cmocka_unit_test(test_stat_fixture),
	    cmocka_unit_test(test_stat_missing_columns_are_zero),
	    cmocka_unit_test(test_stat_malformed_lines_skipped),
	    cmocka_unit_test(test_counter_delta_table),
	    cmocka_unit_test(test_cpu_usage_table),
	    cmocka_unit_test(test_cpu_usage_percentages_of_small_regression),
	    cmocka_unit_test(test_meminfo_fixture),
	    cmocka_unit_test(test_meminfo_malformed_lines_skipped),
	    cmocka_unit_test(test_loadavg_fixture),
	    cmocka_unit_test(test_loadavg_malformed),
	    cmocka_unit_test(test_mount_field_decoding),
	    cmocka_unit_test(test_mounts_fixture),
	    cmocka_unit_test(test_mounts_malformed_line_skipped),
	    cmocka_unit_test(test_diskstats_fixture),
	    cmocka_unit_test(test_diskstats_malformed_lines_skipped),
	    cmocka_unit_test(test_netdev_colon_forms),
	    cmocka_unit_test(test_netdev_malformed_lines_skipped),
	    cmocka_unit_test(test_utf8_repair_table),
	    cmocka_unit_test(test_fs_stats_from_statvfs),
	    cmocka_unit_test(test_host_probe_fixture_run),
	    cmocka_unit_test(test_host_probe_parse_error_keeps_other_files),
	    cmocka_unit_test(test_host_probe_cpu_ratios_across_runs),
	    cmocka_unit_test(test_host_options_invalid),
	    cmocka_unit_test(test_host_options_replace_defaults),
	    cmocka_unit_test(test_host_probe_real_root),
	};

	return cmocka_run_group_tests_name("procfs", tests, NULL, NULL);
}
