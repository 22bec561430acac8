/*
 * Parsers for the /proc files of the host probe, and the CPU usage computation. Each
 * parser works on a writable copy of the file's text, one line at a time, and skips a
 * line it cannot read instead of giving up on the file, so one odd line costs one entry.
 */
#include "probes/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "collector/xalloc.h"

static const char *const cpu_mode_names[PROCFS_CPU_MODE_COUNT] = {
    [PROCFS_CPU_USER] = "user",       [PROCFS_CPU_NICE] = "nice",
    [PROCFS_CPU_SYSTEM] = "system",   [PROCFS_CPU_IDLE] = "idle",
    [PROCFS_CPU_IOWAIT] = "iowait",   [PROCFS_CPU_IRQ] = "irq",
    [PROCFS_CPU_SOFTIRQ] = "softirq", [PROCFS_CPU_STEAL] = "steal",
    [PROCFS_CPU_GUEST] = "guest",     [PROCFS_CPU_GUEST_NICE] = "guest_nice",
};

const char *procfs_cpu_mode_name(enum procfs_cpu_mode mode)
{
	if ((unsigned)mode >= PROCFS_CPU_MODE_COUNT)
		return "unknown";
	return cpu_mode_names[mode];
}

/* Counts a skipped line; only the first one is described. */
static void __attribute__((format(printf, 3, 4)))
report_line(struct procfs_report *report, unsigned line, const char *fmt, ...)
{
	char detail[128];
	va_list ap;

	report->bad_lines++;
	if (report->bad_lines > 1)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	if (snprintf(report->text, sizeof report->text, "line %u: %s", line, detail) < 0)
		report->text[0] = '\0';
}

static int report_result(const struct procfs_report *report)
{
	return report->bad_lines > 0 ? PROCFS_PARSE_ERROR : PROCFS_OK;
}

/* Puts the file's name in front of a parser's "line N: ..." text. */
static void report_name_file(struct procfs_report *report, const char *relpath)
{
	char text[sizeof report->text];

	if (report->bad_lines == 0)
		return;
	if (snprintf(text, sizeof text, "/%s %s", relpath, report->text) < 0)
		return;
	memcpy(report->text, text, sizeof text);
}

/* A cursor over the lines of a writable text; each line is NUL-terminated in place. */
struct line_reader {
	char *next;
	unsigned number; /* 1-based number of the line last returned */
};

static char *next_line(struct line_reader *reader)
{
	char *line = reader->next;
	char *newline;

	if (*line == '\0')
		return NULL;
	newline = strchr(line, '\n');
	if (newline != NULL) {
		*newline = '\0';
		reader->next = newline + 1;
	} else {
		reader->next = line + strlen(line);
	}
	reader->number++;
	return line;
}

/*
 * Splits a line on spaces and tabs in place. Stores at most `max` fields but returns how
 * many there are, so that callers can reject lines with too many.
 */
static size_t split_fields(char *line, char **fields, size_t max)
{
	size_t count = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (count < max)
			fields[count] = p;
		count++;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
	return count;
}

/* Strict decimal: digits only, no sign, no overflow. */
static int parse_u64(const char *text, uint64_t *out)
{
	unsigned long long value;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = value;
	return 0;
}

int procfs_read_file(const char *root, const char *relpath, char **out, size_t *length,
		     struct procfs_report *report)
{
	/* One byte of room past the limit separates a file of exactly the limit from a larger one. */
	const size_t max_capacity = PROCFS_FILE_MAX + 2;
	size_t root_length = strlen(root);
	size_t capacity = 16384;
	size_t used = 0;
	char path[PATH_MAX];
	char *buf = NULL;
	struct stat st;
	int fd = -1;
	int n;

	memset(report, 0, sizeof *report);
	while (root_length > 0 && root[root_length - 1] == '/')
		root_length--;
	n = snprintf(path, sizeof path, "%.*s/%s", (int)root_length, root, relpath);
	if (n < 0 || (size_t)n >= sizeof path) {
		errno = ENAMETOOLONG;
		goto bad;
	}
	/* O_NONBLOCK and the regular-file check keep a FIFO or device planted under the
	 * root from blocking the event loop: /proc files are regular files. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		goto bad;
	if (fstat(fd, &st) < 0)
		goto bad;
	if (!S_ISREG(st.st_mode)) {
		snprintf(report->text, sizeof report->text, "/%s: not a regular file", relpath);
		close(fd);
		return PROCFS_IO_ERROR;
	}

	buf = xmalloc(capacity);
	for (;;) {
		ssize_t got;

		if (used + 1 >= capacity) {
			if (capacity >= max_capacity) {
				errno = EFBIG;
				goto bad;
			}
			capacity = capacity * 2 < max_capacity ? capacity * 2 : max_capacity;
			buf = xrealloc(buf, capacity);
		}
		got = read(fd, buf + used, capacity - 1 - used);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			goto bad;
		if (got == 0)
			break;
		used += (size_t)got;
	}
	if (used > PROCFS_FILE_MAX) {
		errno = EFBIG;
		goto bad;
	}
	close(fd);
	buf[used] = '\0';
	*out = buf;
	*length = used;
	return PROCFS_OK;

bad:
	snprintf(report->text, sizeof report->text, "/%s: %s", relpath, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(buf);
	return PROCFS_IO_ERROR;
}

/* Reads ROOT/RELPATH and hands its text to `parse`, naming the file in the report. */
static int read_and_parse(const char *root, const char *relpath,
			  int (*parse)(const char *text, void *out, struct procfs_report *report),
			  void *out, struct procfs_report *report)
{
	size_t length;
	char *text;
	int rc;

	rc = procfs_read_file(root, relpath, &text, &length, report);
	if (rc != PROCFS_OK)
		return rc;
	rc = parse(text, out, report);
	report_name_file(report, relpath);
	free(text);
	return rc;
}

/* stat */

/* "cpu" alone is the aggregate line; "cpuN" one CPU. */
static bool is_cpu_name(const char *name)
{
	if (strncmp(name, "cpu", 3) != 0)
		return false;
	for (name += 3; *name != '\0'; name++) {
		if (*name < '0' || *name > '9')
			return false;
	}
	return true;
}

static int parse_cpu_line(char **fields, size_t count, struct procfs_cpu *cpu,
			  struct procfs_report *report, unsigned line)
{
	size_t columns = count - 1;

	memset(cpu, 0, sizeof *cpu);
	if (strlen(fields[0]) >= sizeof cpu->name) {
		report_line(report, line, "CPU name too long");
		return -1;
	}
	/* user, nice, system and idle exist on every kernel; later columns were added over time. */
	if (columns < PROCFS_CPU_IDLE + 1) {
		report_line(report, line, "expected at least 4 CPU columns, found %zu", columns);
		return -1;
	}
	if (columns > PROCFS_CPU_MODE_COUNT)
		columns = PROCFS_CPU_MODE_COUNT;
	for (size_t i = 0; i < columns; i++) {
		if (parse_u64(fields[i + 1], &cpu->ticks[i]) < 0) {
			report_line(report, line, "invalid %s ticks '%s'", cpu_mode_names[i],
				    fields[i + 1]);
			return -1;
		}
	}
	strcpy(cpu->name, fields[0]);
	return 0;
}

/* Single-number lines of /proc/stat and where they go. */
static const struct {
	const char *key;
	unsigned bit;
	size_t offset;
} stat_scalars[] = {
    {"intr", PROCFS_STAT_INTR, offsetof(struct procfs_stat, intr)},
    {"ctxt", PROCFS_STAT_CTXT, offsetof(struct procfs_stat, ctxt)},
    {"btime", PROCFS_STAT_BTIME, offsetof(struct procfs_stat, btime)},
    {"processes", PROCFS_STAT_PROCESSES, offsetof(struct procfs_stat, processes)},
    {"procs_running", PROCFS_STAT_PROCS_RUNNING, offsetof(struct procfs_stat, procs_running)},
    {"procs_blocked", PROCFS_STAT_PROCS_BLOCKED, offsetof(struct procfs_stat, procs_blocked)},
};

static void parse_stat_scalar(char **fields, size_t count, struct procfs_stat *st,
			      struct procfs_report *report, unsigned line)
{
	for (size_t i = 0; i < sizeof stat_scalars / sizeof stat_scalars[0]; i++) {
		uint64_t value;

		if (strcmp(fields[0], stat_scalars[i].key) != 0)
			continue;
		/* intr is followed by one count per interrupt line; only the total is used. */
		if (count < 2 || parse_u64(fields[1], &value) < 0) {
			report_line(report, line, "invalid %s value", stat_scalars[i].key);
			return;
		}
		memcpy((char *)st + stat_scalars[i].offset, &value, sizeof value);
		st->present |= stat_scalars[i].bit;
		return;
	}
}

int procfs_parse_stat(const char *text, struct procfs_stat *out, struct procfs_report *report)
{
	char *copy = xstrdup(text);
	struct line_reader reader = {copy, 0};
	size_t capacity = 0;
	char *line;

	memset(out, 0, sizeof *out);
	memset(report, 0, sizeof *report);
	while ((line = next_line(&reader)) != NULL) {
		char *fields[PROCFS_CPU_MODE_COUNT + 1];
		size_t count = split_fields(line, fields, PROCFS_CPU_MODE_COUNT + 1);
		struct procfs_cpu cpu;

		if (count == 0)
			continue;
		if (!is_cpu_name(fields[0])) {
			parse_stat_scalar(fields, count, out, report, reader.number);
			continue;
		}
		if (parse_cpu_line(fields, count, &cpu, report, reader.number) < 0)
			continue;
		if (strcmp(cpu.name, "cpu") == 0) {
			out->total = cpu;
			out->has_total = true;
			continue;
		}
		out->cpus =
		    xreallocarray_grow(out->cpus, &capacity, out->cpu_count + 1, sizeof *out->cpus);
		out->cpus[out->cpu_count++] = cpu;
	}
	free(copy);
	return report_result(report);
}

static int parse_stat_any(const char *text, void *out, struct procfs_report *report)
{
	return procfs_parse_stat(text, out, report);
}

int procfs_read_stat(const char *root, struct procfs_stat *out, struct procfs_report *report)
{
	memset(out, 0, sizeof *out);
	return read_and_parse(root, "proc/stat", parse_stat_any, out, report);
}

void procfs_stat_free(struct procfs_stat *st)
{
	free(st->cpus);
	memset(st, 0, sizeof *st);
}

/* CPU usage */

int64_t procfs_counter_delta(uint64_t prev, uint64_t cur)
{
	uint64_t distance;

	if (cur >= prev) {
		distance = cur - prev;
		return distance > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)distance;
	}
	distance = prev - cur;
	return distance > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)distance;
}

enum procfs_cpu_usage_result procfs_cpu_usage(const uint64_t prev[PROCFS_CPU_MODE_COUNT],
					      const uint64_t cur[PROCFS_CPU_MODE_COUNT],
					      long ticks_per_second, struct procfs_cpu_usage *out)
{
	uint64_t delta[PROCFS_CPU_TIME_MODES];
	uint64_t total = 0;
	int64_t reset_ticks;

	if (ticks_per_second <= 0)
		ticks_per_second = 100;
	/*
	 * Idle only goes back by a few ticks through NO_HZ accounting noise. A larger drop
	 * means the counters restarted, and any delta across it is meaningless.
	 */
	reset_ticks = 3 * (int64_t)ticks_per_second;
	if (procfs_counter_delta(prev[PROCFS_CPU_IDLE], cur[PROCFS_CPU_IDLE]) <= -reset_ticks)
		return PROCFS_CPU_USAGE_RESET;

	for (int mode = 0; mode < PROCFS_CPU_TIME_MODES; mode++) {
		int64_t d = procfs_counter_delta(prev[mode], cur[mode]);

		delta[mode] = d > 0 ? (uint64_t)d : 0;
		/* Only garbage counters can overflow the sum; treat them as a restart. */
		if (delta[mode] > UINT64_MAX - total)
			return PROCFS_CPU_USAGE_RESET;
		total += delta[mode];
	}
	if (total == 0)
		return PROCFS_CPU_USAGE_EMPTY;

	/* Every delta is at most the total, so each quotient lies in [0, 1] after rounding. */
	for (int mode = 0; mode < PROCFS_CPU_TIME_MODES; mode++)
		out->ratio[mode] = (double)delta[mode] / (double)total;
	out->busy =
	    (double)(total - delta[PROCFS_CPU_IDLE] - delta[PROCFS_CPU_IOWAIT]) / (double)total;
	return PROCFS_CPU_USAGE_OK;
}

/* meminfo */

/* Makes a field name metric-safe: "Active(anon)" -> "Active_anon". False if unusable. */
static bool meminfo_name(const char *field, char *out, size_t size)
{
	size_t n = 0;

	for (const char *p = field; *p != '\0'; p++) {
		char c = *p;

		if (c == ')')
			continue;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			c = '_';
		if (n + 1 >= size)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return n > 0;
}

int procfs_parse_meminfo(const char *text, struct procfs_meminfo *out, struct procfs_report *report)
{
	char *copy = xstrdup(text);
	struct line_reader reader = {copy, 0};
	size_t capacity = 0;
	char *line;

	memset(out, 0, sizeof *out);
	memset(report, 0, sizeof *report);
	while ((line = next_line(&reader)) != NULL) {
		struct procfs_meminfo_field field = {0};
		char *colon = strchr(line, ':');
		char *fields[3];
		size_t count;

		if (colon == NULL) {
			if (split_fields(line, fields, 1) > 0)
				report_line(report, reader.number, "missing ':' after the name");
			continue;
		}
		*colon = '\0';
		count = split_fields(line, fields, 1);
		if (count != 1 || !meminfo_name(fields[0], field.name, sizeof field.name)) {
			report_line(report, reader.number, "invalid field name");
			continue;
		}
		count = split_fields(colon + 1, fields, 3);
		if (count < 1 || count > 2 || parse_u64(fields[0], &field.value) < 0) {
			report_line(report, reader.number,
				    "%s: expected a number and an optional unit", field.name);
			continue;
		}
		if (count == 2) {
			if (strcmp(fields[1], "kB") != 0 || field.value > UINT64_MAX / 1024) {
				report_line(report, reader.number, "%s: invalid value in %s",
					    field.name, fields[1]);
				continue;
			}
			/* The kernel's "kB" means KiB. */
			field.value *= 1024;
			field.in_bytes = true;
		}
		out->fields =
		    xreallocarray_grow(out->fields, &capacity, out->count + 1, sizeof *out->fields);
		out->fields[out->count++] = field;
	}
	free(copy);
	return report_result(report);
}

static int parse_meminfo_any(const char *text, void *out, struct procfs_report *report)
{
	return procfs_parse_meminfo(text, out, report);
}

int procfs_read_meminfo(const char *root, struct procfs_meminfo *out, struct procfs_report *report)
{
	memset(out, 0, sizeof *out);
	return read_and_parse(root, "proc/meminfo", parse_meminfo_any, out, report);
}

void procfs_meminfo_free(struct procfs_meminfo *mi)
{
	free(mi->fields);
	memset(mi, 0, sizeof *mi);
}

/* loadavg */

static int parse_load(const char *text, double *out)
{
	char *end;
	double value;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	value = strtod(text, &end);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = value;
	return 0;
}

int procfs_parse_loadavg(const char *text, struct procfs_loadavg *out, struct procfs_report *report)
{
	char *copy = xstrdup(text);
	struct line_reader reader = {copy, 0};
	struct procfs_loadavg load;
	char *fields[3];
	char *line;

	memset(out, 0, sizeof *out);
	memset(report, 0, sizeof *report);
	line = next_line(&reader);
	/* "0.20 0.18 0.12 1/80 11206": the first three are the load averages. */
	if (line == NULL || split_fields(line, fields, 3) < 3)
		report_line(report, 1, "expected three load averages");
	else if (parse_load(fields[0], &load.load1) < 0 || parse_load(fields[1], &load.load5) < 0 ||
		 parse_load(fields[2], &load.load15) < 0)
		report_line(report, 1, "invalid load average");
	else
		*out = load;
	free(copy);
	return report_result(report);
}

static int parse_loadavg_any(const char *text, void *out, struct procfs_report *report)
{
	return procfs_parse_loadavg(text, out, report);
}

int procfs_read_loadavg(const char *root, struct procfs_loadavg *out, struct procfs_report *report)
{
	memset(out, 0, sizeof *out);
	return read_and_parse(root, "proc/loadavg", parse_loadavg_any, out, report);
}

/* mounts */

static bool is_octal(char c)
{
	return c >= '0' && c <= '7';
}

size_t procfs_decode_mount_field(char *field)
{
	char *in = field;
	char *out = field;

	while (*in != '\0') {
		/* is_octal('\0') is false, so the look-ahead stops at the end of the string. */
		if (in[0] == '\\' && is_octal(in[1]) && is_octal(in[2]) && is_octal(in[3])) {
			unsigned value = (unsigned)(in[1] - '0') * 64 +
					 (unsigned)(in[2] - '0') * 8 + (unsigned)(in[3] - '0');

			if (value != 0 && value <= 255) {
				*out++ = (char)value;
				in += 4;
				continue;
			}
		}
		*out++ = *in++;
	}
	*out = '\0';
	return (size_t)(out - field);
}

static bool has_option(const char *options, const char *name)
{
	size_t length = strlen(name);

	for (const char *p = options; p != NULL; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (strncmp(p, name, length) == 0 && (p[length] == ',' || p[length] == '\0'))
			return true;
	}
	return false;
}

int procfs_parse_mounts(const char *text, struct procfs_mounts *out, struct procfs_report *report)
{
	char *copy = xstrdup(text);
	struct line_reader reader = {copy, 0};
	size_t capacity = 0;
	char *line;

	memset(out, 0, sizeof *out);
	memset(report, 0, sizeof *report);
	while ((line = next_line(&reader)) != NULL) {
		/* device, mount point, type, options, dump, pass */
		char *fields[6];
		size_t count = split_fields(line, fields, 6);
		struct procfs_mount *m;

		if (count == 0)
			continue;
		if (count < 4) {
			report_line(report, reader.number, "expected at least 4 fields, found %zu",
				    count);
			continue;
		}
		/* Fields were split first: a decoded space must not split them again. */
		for (size_t i = 0; i < 4; i++)
			procfs_decode_mount_field(fields[i]);
		out->entries = xreallocarray_grow(out->entries, &capacity, out->count + 1,
						  sizeof *out->entries);
		m = &out->entries[out->count++];
		m->device = xstrdup(fields[0]);
		m->mount_point = xstrdup(fields[1]);
		m->fstype = xstrdup(fields[2]);
		m->options = xstrdup(fields[3]);
		m->read_only = has_option(m->options, "ro");
	}
	free(copy);
	return report_result(report);
}

static int parse_mounts_any(const char *text, void *out, struct procfs_report *report)
{
	return procfs_parse_mounts(text, out, report);
}

int procfs_read_mounts(const char *root, struct procfs_mounts *out, struct procfs_report *report)
{
	memset(out, 0, sizeof *out);
	return read_and_parse(root, "proc/mounts", parse_mounts_any, out, report);
}

void procfs_mounts_free(struct procfs_mounts *m)
{
	for (size_t i = 0; i < m->count; i++) {
		free(m->entries[i].device);
		free(m->entries[i].mount_point);
		free(m->entries[i].fstype);
		free(m->entries[i].options);
	}
	free(m->entries);
	memset(m, 0, sizeof *m);
}

/* diskstats */

int procfs_parse_diskstats(const char *text, struct procfs_diskstats *out,
			   struct procfs_report *report)
{
	char *copy = xstrdup(text);
	struct line_reader reader = {copy, 0};
	size_t capacity = 0;
	char *line;

	memset(out, 0, sizeof *out);
	memset(report, 0, sizeof *report);
	while ((line = next_line(&reader)) != NULL) {
		/* major, minor, name, then the statistics */
		char *fields[3 + PROCFS_DISK_STAT_COUNT];
		size_t count = split_fields(line, fields, 3 + PROCFS_DISK_STAT_COUNT);
		struct procfs_disk disk = {0};
		uint64_t number;
		bool ok = true;

		if (count == 0)
			continue;
		if (count < 3 + PROCFS_DISK_STAT_MIN) {
			report_line(report, reader.number, "expected at least %d fields, found %zu",
				    3 + PROCFS_DISK_STAT_MIN, count);
			continue;
		}
		if (parse_u64(fields[0], &number) < 0 || parse_u64(fields[1], &number) < 0 ||
		    strlen(fields[2]) >= sizeof disk.name) {
			report_line(report, reader.number, "invalid device numbers or name");
			continue;
		}
		strcpy(disk.name, fields[2]);
		disk.stat_count =
		    (unsigned)(count - 3 < PROCFS_DISK_STAT_COUNT ? count - 3
								  : PROCFS_DISK_STAT_COUNT);
		for (unsigned i = 0; i < disk.stat_count && ok; i++) {
			if (parse_u64(fields[3 + i], &disk.stats[i]) < 0) {
				report_line(report, reader.number, "%s: invalid number '%s'",
					    disk.name, fields[3 + i]);
				ok = false;
			}
		}
		if (!ok)
			continue;
		out->disks =
		    xreallocarray_grow(out->disks, &capacity, out->count + 1, sizeof *out->disks);
		out->disks[out->count++] = disk;
	}
	free(copy);
	return report_result(report);
}

static int parse_diskstats_any(const char *text, void *out, struct procfs_report *report)
{
	return procfs_parse_diskstats(text, out, report);
}

int procfs_read_diskstats(const char *root, struct procfs_diskstats *out,
			  struct procfs_report *report)
{
	memset(out, 0, sizeof *out);
	return read_and_parse(root, "proc/diskstats", parse_diskstats_any, out, report);
}

void procfs_diskstats_free(struct procfs_diskstats *d)
{
	free(d->disks);
	memset(d, 0, sizeof *d);
}

/* net/dev */

static int parse_netdev_line(char *line, struct procfs_netdev *dev, struct procfs_report *report,
			     unsigned number)
{
	char *fields[PROCFS_NETDEV_COUNTERS];
	char *colon = strrchr(line, ':');
	char *name = line;
	size_t name_length;
	size_t count;

	memset(dev, 0, sizeof *dev);
	if (colon == NULL) {
		report_line(report, number, "missing ':' after the interface name");
		return -1;
	}
	*colon = '\0';
	while (*name == ' ' || *name == '\t')
		name++;
	name_length = strlen(name);
	while (name_length > 0 && (name[name_length - 1] == ' ' || name[name_length - 1] == '\t'))
		name_length--;
	if (name_length == 0 || name_length >= sizeof dev->name) {
		report_line(report, number, "invalid interface name");
		return -1;
	}
	memcpy(dev->name, name, name_length);
	dev->name[name_length] = '\0';

	count = split_fields(colon + 1, fields, PROCFS_NETDEV_COUNTERS);
	if (count != PROCFS_NETDEV_COUNTERS) {
		report_line(report, number, "%s: expected %d counters, found %zu", dev->name,
			    PROCFS_NETDEV_COUNTERS, count);
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		if (parse_u64(fields[i], &dev->counters[i]) < 0) {
			report_line(report, number, "%s: invalid counter '%s'", dev->name,
				    fields[i]);
			return -1;
		}
	}
	return 0;
}

int procfs_parse_netdev(const char *text, struct procfs_netdevs *out, struct procfs_report *report)
{
	char *copy = xstrdup(text);
	struct line_reader reader = {copy, 0};
	size_t capacity = 0;
	char *line;

	memset(out, 0, sizeof *out);
	memset(report, 0, sizeof *report);
	while ((line = next_line(&reader)) != NULL) {
		struct procfs_netdev dev;

		/* The kernel always starts with two header lines ("Inter-|", " face |"). */
		if (reader.number <= 2 || line[strspn(line, " \t")] == '\0')
			continue;
		if (parse_netdev_line(line, &dev, report, reader.number) < 0)
			continue;
		out->devices = xreallocarray_grow(out->devices, &capacity, out->count + 1,
						  sizeof *out->devices);
		out->devices[out->count++] = dev;
	}
	free(copy);
	return report_result(report);
}

static int parse_netdev_any(const char *text, void *out, struct procfs_report *report)
{
	return procfs_parse_netdev(text, out, report);
}

int procfs_read_netdev(const char *root, struct procfs_netdevs *out, struct procfs_report *report)
{
	memset(out, 0, sizeof *out);
	return read_and_parse(root, "proc/net/dev", parse_netdev_any, out, report);
}

void procfs_netdevs_free(struct procfs_netdevs *n)
{
	free(n->devices);
	memset(n, 0, sizeof *n);
}

/* statvfs */

static uint64_t multiply_saturating(uint64_t a, uint64_t b)
{
	if (a != 0 && b > UINT64_MAX / a)
		return UINT64_MAX;
	return a * b;
}

void procfs_fs_stats_from_statvfs(const struct statvfs *vfs, struct procfs_fs_stats *out)
{
	/* Block counts are in f_frsize units; some old filesystems leave it 0. */
	uint64_t unit = vfs->f_frsize != 0 ? vfs->f_frsize : vfs->f_bsize;

	out->size_bytes = multiply_saturating(vfs->f_blocks, unit);
	out->free_bytes = multiply_saturating(vfs->f_bfree, unit);
	out->avail_bytes = multiply_saturating(vfs->f_bavail, unit);
	out->files = vfs->f_files;
	out->files_free = vfs->f_ffree;
	out->read_only = (vfs->f_flag & ST_RDONLY) != 0;
}
