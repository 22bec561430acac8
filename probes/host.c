/*
 * The `host` probe: CPU, memory, load, filesystem, disk and network figures of the
 * machine tocsind runs on, read from /proc and named as node_exporter names them. Reading
 * /proc is fast, so a run finishes inside start(). The state keeps the previous /proc/stat
 * snapshot between runs to compute CPU usage ratios.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "collector/cfg.h"
#include "collector/posix_regex.h"
#include "collector/xalloc.h"
#include "probes/probe.h"
#include "collector/utf8.h"
#include "probes/procfs.h"

/*
 * Pseudo and read-only image filesystems whose sizes mean nothing for capacity alerts.
 * tmpfs stays in: a full /run or /dev/shm breaks a machine like a full disk does.
 */
static const char *const default_filesystems_exclude[] = {
    "autofs",     "binfmt_misc", "bpf",       "cgroup",   "cgroup2", "configfs",  "debugfs",
    "devpts",     "devtmpfs",    "efivarfs",  "erofs",    "fusectl", "hugetlbfs", "iso9660",
    "mqueue",     "nsfs",        "overlay",   "proc",     "procfs",  "pstore",    "ramfs",
    "rpc_pipefs", "securityfs",  "selinuxfs", "squashfs", "sysfs",   "tracefs",
};

/* Kernel interfaces and the per-container mounts that duplicate the host's filesystems. */
#define DEFAULT_MOUNT_POINTS_EXCLUDE                                                               \
	"/(dev|proc|sys|run/credentials/.+|var/lib/docker/.+|var/lib/containers/storage/.+)(/.*)?"

/* RAM disks, loop and floppy devices, and partitions, whose I/O their whole disk counts. */
#define DEFAULT_DEVICES_EXCLUDE                                                                    \
	"(z?ram|loop|fd|(h|s|v|xv)d[a-z]+|nvme[0-9]+n[0-9]+p|mmcblk[0-9]+p)[0-9]+"

/* Maximum meminfo fields with a metric (a Linux 6.18 kernel prints 54); others are skipped. */
#define MEMORY_FIELDS_MAX 256

/* A fully anchored POSIX extended regular expression, or none. */
struct host_pattern {
	bool compiled;
	regex_t regex;
};

/* A metric for one /proc/meminfo field, made when the field is first seen. */
struct host_memory_metric {
	char field[sizeof(((struct procfs_meminfo_field *)0)->name)];
	struct metric_desc desc; /* name and help are owned */
};

struct host_state {
	char *root; /* without trailing '/', except "/" itself */
	char **filesystems_exclude;
	size_t filesystems_exclude_count;
	struct host_pattern mount_points_exclude;
	struct host_pattern devices_exclude;
	struct host_pattern interfaces_exclude;
	host_statvfs_fn *statvfs; /* NULL: no filesystem metrics */
	long ticks_per_second;
	bool have_previous;
	struct procfs_stat previous;        /* the last run's /proc/stat, for usage ratios */
	struct host_memory_metric **memory; /* pointers stay valid while samples refer to them */
	size_t memory_count;
	size_t memory_capacity;
};

/* The first problem of a run and how many followed; the run still emits what it read. */
struct host_outcome {
	enum probe_status status;
	char reason[160];
	unsigned more;
};

static const struct metric_desc cpu_seconds = {
    "node_cpu_seconds_total", "Seconds the CPU spent in each mode.", METRIC_COUNTER};
static const struct metric_desc cpu_guest_seconds = {
    "node_cpu_guest_seconds_total",
    "Seconds the CPU spent running guests, also counted in mode user or nice.", METRIC_COUNTER};
static const struct metric_desc cpu_ratio = {
    "host_cpu_ratio", "Share of the last probe interval the CPU spent in each mode, from 0 to 1.",
    METRIC_GAUGE};
static const struct metric_desc cpu_busy_ratio = {
    "host_cpu_busy_ratio",
    "Share of the last probe interval the CPU was neither idle nor waiting for I/O.", METRIC_GAUGE};
static const struct metric_desc load1 = {"node_load1", "1-minute load average.", METRIC_GAUGE};
static const struct metric_desc load5 = {"node_load5", "5-minute load average.", METRIC_GAUGE};
static const struct metric_desc load15 = {"node_load15", "15-minute load average.", METRIC_GAUGE};

/* The single-number lines of /proc/stat. */
static const struct {
	struct metric_desc desc;
	unsigned bit;
	size_t offset;
} stat_metrics[] = {
    {{"node_intr_total", "Interrupts serviced since boot.", METRIC_COUNTER},
     PROCFS_STAT_INTR,
     offsetof(struct procfs_stat, intr)},
    {{"node_context_switches_total", "Context switches since boot.", METRIC_COUNTER},
     PROCFS_STAT_CTXT,
     offsetof(struct procfs_stat, ctxt)},
    {{"node_boot_time_seconds", "Boot time, in seconds since the Unix epoch.", METRIC_GAUGE},
     PROCFS_STAT_BTIME,
     offsetof(struct procfs_stat, btime)},
    {{"node_forks_total", "Processes and threads created since boot.", METRIC_COUNTER},
     PROCFS_STAT_PROCESSES,
     offsetof(struct procfs_stat, processes)},
    {{"node_procs_running", "Threads in runnable state.", METRIC_GAUGE},
     PROCFS_STAT_PROCS_RUNNING,
     offsetof(struct procfs_stat, procs_running)},
    {{"node_procs_blocked", "Threads blocked waiting for I/O.", METRIC_GAUGE},
     PROCFS_STAT_PROCS_BLOCKED,
     offsetof(struct procfs_stat, procs_blocked)},
};

static const struct metric_desc fs_size = {"node_filesystem_size_bytes",
					   "Filesystem size in bytes.", METRIC_GAUGE};
static const struct metric_desc fs_free = {
    "node_filesystem_free_bytes", "Free bytes, including those reserved for root.", METRIC_GAUGE};
static const struct metric_desc fs_avail = {"node_filesystem_avail_bytes",
					    "Bytes available to unprivileged users.", METRIC_GAUGE};
static const struct metric_desc fs_files = {"node_filesystem_files", "Inodes in total.",
					    METRIC_GAUGE};
static const struct metric_desc fs_files_free = {"node_filesystem_files_free", "Free inodes.",
						 METRIC_GAUGE};
static const struct metric_desc fs_readonly = {
    "node_filesystem_readonly", "1 when the filesystem is mounted read-only.", METRIC_GAUGE};
static const struct metric_desc fs_device_error = {
    "node_filesystem_device_error", "1 when statvfs failed on the mount point.", METRIC_GAUGE};

/* /proc/diskstats fields: times come in milliseconds and sizes in 512-byte sectors. */
static const struct {
	struct metric_desc desc;
	enum procfs_disk_stat stat;
	double scale;
} disk_metrics[] = {
    {{"node_disk_reads_completed_total", "Reads completed.", METRIC_COUNTER},
     PROCFS_DISK_READS_COMPLETED,
     1},
    {{"node_disk_reads_merged_total", "Adjacent reads merged into one.", METRIC_COUNTER},
     PROCFS_DISK_READS_MERGED,
     1},
    {{"node_disk_read_bytes_total", "Bytes read.", METRIC_COUNTER},
     PROCFS_DISK_SECTORS_READ,
     PROCFS_DISK_SECTOR_BYTES},
    {{"node_disk_read_time_seconds_total", "Seconds spent on reads.", METRIC_COUNTER},
     PROCFS_DISK_READ_TIME_MS,
     0.001},
    {{"node_disk_writes_completed_total", "Writes completed.", METRIC_COUNTER},
     PROCFS_DISK_WRITES_COMPLETED,
     1},
    {{"node_disk_writes_merged_total", "Adjacent writes merged into one.", METRIC_COUNTER},
     PROCFS_DISK_WRITES_MERGED,
     1},
    {{"node_disk_written_bytes_total", "Bytes written.", METRIC_COUNTER},
     PROCFS_DISK_SECTORS_WRITTEN,
     PROCFS_DISK_SECTOR_BYTES},
    {{"node_disk_write_time_seconds_total", "Seconds spent on writes.", METRIC_COUNTER},
     PROCFS_DISK_WRITE_TIME_MS,
     0.001},
    {{"node_disk_io_now", "I/O requests in progress.", METRIC_GAUGE}, PROCFS_DISK_IO_NOW, 1},
    {{"node_disk_io_time_seconds_total", "Seconds the device had I/O in progress.", METRIC_COUNTER},
     PROCFS_DISK_IO_TIME_MS,
     0.001},
    {{"node_disk_io_time_weighted_seconds_total",
      "Seconds spent on I/O, weighted by the requests in progress.", METRIC_COUNTER},
     PROCFS_DISK_IO_WEIGHTED_TIME_MS,
     0.001},
    {{"node_disk_discards_completed_total", "Discards completed.", METRIC_COUNTER},
     PROCFS_DISK_DISCARDS_COMPLETED,
     1},
    {{"node_disk_discards_merged_total", "Adjacent discards merged into one.", METRIC_COUNTER},
     PROCFS_DISK_DISCARDS_MERGED,
     1},
    {{"node_disk_discarded_sectors_total", "512-byte sectors discarded.", METRIC_COUNTER},
     PROCFS_DISK_SECTORS_DISCARDED,
     1},
    {{"node_disk_discard_time_seconds_total", "Seconds spent on discards.", METRIC_COUNTER},
     PROCFS_DISK_DISCARD_TIME_MS,
     0.001},
    {{"node_disk_flush_requests_total", "Flush requests completed.", METRIC_COUNTER},
     PROCFS_DISK_FLUSHES_COMPLETED,
     1},
    {{"node_disk_flush_requests_time_seconds_total", "Seconds spent on flush requests.",
      METRIC_COUNTER},
     PROCFS_DISK_FLUSH_TIME_MS,
     0.001},
};

/* /proc/net/dev counters, in the file's column order. */
static const struct metric_desc network_metrics[PROCFS_NETDEV_COUNTERS] = {
    {"node_network_receive_bytes_total", "Bytes received.", METRIC_COUNTER},
    {"node_network_receive_packets_total", "Packets received.", METRIC_COUNTER},
    {"node_network_receive_errs_total", "Receive errors.", METRIC_COUNTER},
    {"node_network_receive_drop_total", "Received packets dropped.", METRIC_COUNTER},
    {"node_network_receive_fifo_total", "Receive FIFO buffer errors.", METRIC_COUNTER},
    {"node_network_receive_frame_total", "Receive framing errors.", METRIC_COUNTER},
    {"node_network_receive_compressed_total", "Compressed packets received.", METRIC_COUNTER},
    {"node_network_receive_multicast_total", "Multicast frames received.", METRIC_COUNTER},
    {"node_network_transmit_bytes_total", "Bytes transmitted.", METRIC_COUNTER},
    {"node_network_transmit_packets_total", "Packets transmitted.", METRIC_COUNTER},
    {"node_network_transmit_errs_total", "Transmit errors.", METRIC_COUNTER},
    {"node_network_transmit_drop_total", "Transmitted packets dropped.", METRIC_COUNTER},
    {"node_network_transmit_fifo_total", "Transmit FIFO buffer errors.", METRIC_COUNTER},
    {"node_network_transmit_colls_total", "Collisions detected.", METRIC_COUNTER},
    {"node_network_transmit_carrier_total", "Carrier losses.", METRIC_COUNTER},
    {"node_network_transmit_compressed_total", "Compressed packets transmitted.", METRIC_COUNTER},
};

/* Options */

static void pattern_free(struct host_pattern *pattern)
{
	if (pattern->compiled)
		regfree(&pattern->regex);
	pattern->compiled = false;
}

static bool pattern_matches(const struct host_pattern *pattern, const char *text)
{
	return pattern->compiled && regexec(&pattern->regex, text, 0, NULL, 0) == 0;
}

/*
 * Reads the regular expression option `key`, or takes `fallback` (may be NULL: no
 * pattern). The expression must match the whole name, as label matchers do.
 */
static int pattern_parse(struct cfg_map *options, const char *key, const char *fallback,
			 struct host_pattern *pattern)
{
	char *configured = NULL;
	const char *source = fallback;
	char *anchored = NULL;
	char message[128];
	int got;
	int err;

	got = cfg_get_string(options, key, &configured);
	if (got < 0)
		return -1;
	if (got > 0)
		source = configured;
	if (source == NULL)
		return 0;

	/* Compile the expression alone first, so that "a)|(b" cannot pass once wrapped. */
	err = posix_regex_compile(&pattern->regex, source, REG_EXTENDED | REG_NOSUB, message,
				  sizeof message);
	if (err == 0) {
		regfree(&pattern->regex);
		anchored = xasprintf("^(%s)$", source);
		err = posix_regex_compile(&pattern->regex, anchored, REG_EXTENDED | REG_NOSUB,
					  message, sizeof message);
	}
	if (err != 0) {
		char quoted[CFG_QUOTE_SIZE];

		cfg_error(options, key,
			  "invalid regular expression %s: %s (POSIX extended syntax expected)",
			  cfg_quote(source, quoted, sizeof quoted), message);
	}
	pattern->compiled = err == 0;
	free(anchored);
	free(configured);
	return err == 0 ? 0 : -1;
}

static int root_parse(struct cfg_map *options, struct host_state *st)
{
	size_t length;
	int got;

	got = cfg_get_string(options, "root", &st->root);
	if (got <= 0) {
		st->root = xstrdup("/");
		return got;
	}
	if (st->root[0] != '/') {
		cfg_error(options, "root",
			  "invalid root '%s': expected an absolute path such as /host", st->root);
		return -1;
	}
	length = strlen(st->root);
	while (length > 1 && st->root[length - 1] == '/')
		st->root[--length] = '\0';
	return 0;
}

static int filesystems_parse(struct cfg_map *options, struct host_state *st)
{
	size_t count = sizeof default_filesystems_exclude / sizeof default_filesystems_exclude[0];
	int got;

	got = cfg_get_string_list(options, "filesystems_exclude", &st->filesystems_exclude,
				  &st->filesystems_exclude_count);
	if (got != 0)
		return got < 0 ? -1 : 0;
	st->filesystems_exclude = xcalloc(count + 1, sizeof *st->filesystems_exclude);
	for (size_t i = 0; i < count; i++)
		st->filesystems_exclude[i] = xstrdup(default_filesystems_exclude[i]);
	st->filesystems_exclude_count = count;
	return 0;
}

static void host_free(void *state)
{
	struct host_state *st = state;

	if (st == NULL)
		return;
	free(st->root);
	cfg_strv_free(st->filesystems_exclude);
	pattern_free(&st->mount_points_exclude);
	pattern_free(&st->devices_exclude);
	pattern_free(&st->interfaces_exclude);
	procfs_stat_free(&st->previous);
	for (size_t i = 0; i < st->memory_count; i++) {
		free((char *)st->memory[i]->desc.name);
		free((char *)st->memory[i]->desc.help);
		free(st->memory[i]);
	}
	free(st->memory);
	free(st);
}

static int host_parse(struct cfg_map *options, void **state)
{
	struct host_state *st = xcalloc(1, sizeof *st);
	int rc = 0;

	/* Ask for every option even after an error, so that one load reports them all. */
	if (root_parse(options, st) < 0)
		rc = -1;
	if (filesystems_parse(options, st) < 0)
		rc = -1;
	if (pattern_parse(options, "mount_points_exclude", DEFAULT_MOUNT_POINTS_EXCLUDE,
			  &st->mount_points_exclude) < 0)
		rc = -1;
	if (pattern_parse(options, "devices_exclude", DEFAULT_DEVICES_EXCLUDE,
			  &st->devices_exclude) < 0)
		rc = -1;
	if (pattern_parse(options, "interfaces_exclude", NULL, &st->interfaces_exclude) < 0)
		rc = -1;
	if (rc < 0) {
		host_free(st);
		return -1;
	}

	/* Mount points in ROOT/proc/mounts are paths of that other system's namespace. */
	st->statvfs = strcmp(st->root, "/") == 0 ? statvfs : NULL;
	st->ticks_per_second = sysconf(_SC_CLK_TCK);
	if (st->ticks_per_second <= 0)
		st->ticks_per_second = 100;
	*state = st;
	return 0;
}

void host_set_statvfs(void *state, host_statvfs_fn *fn)
{
	struct host_state *st = state;

	st->statvfs = fn;
}

/* Run */

static void outcome_note(struct host_outcome *outcome, int rc, const struct procfs_report *report)
{
	if (rc == PROCFS_OK)
		return;
	if (outcome->status != PROBE_STATUS_OK) {
		outcome->more++;
		return;
	}
	outcome->status = rc == PROCFS_IO_ERROR ? PROBE_STATUS_IO_ERROR : PROBE_STATUS_PARSE_ERROR;
	snprintf(outcome->reason, sizeof outcome->reason, "%s", report->text);
}

static void emit_one(struct probe_run *run, const struct metric_desc *desc, const char *name,
		     const char *value, double sample)
{
	struct label label = {name, value};

	probe_run_emit(run, desc, &label, name != NULL ? 1 : 0, sample);
}

static void emit_cpu_usage(struct probe_run *run, const struct host_state *st, const char *cpu,
			   const struct procfs_cpu *previous, const struct procfs_cpu *current)
{
	struct procfs_cpu_usage usage;
	struct label labels[2] = {{"cpu", cpu}, {"mode", NULL}};

	if (procfs_cpu_usage(previous->ticks, current->ticks, st->ticks_per_second, &usage) !=
	    PROCFS_CPU_USAGE_OK)
		return;
	for (int mode = 0; mode < PROCFS_CPU_TIME_MODES; mode++) {
		labels[1].value = procfs_cpu_mode_name(mode);
		probe_run_emit(run, &cpu_ratio, labels, 2, usage.ratio[mode]);
	}
	emit_one(run, &cpu_busy_ratio, "cpu", cpu, usage.busy);
}

static const struct procfs_cpu *find_cpu(const struct procfs_stat *st, const char *name)
{
	for (size_t i = 0; i < st->cpu_count; i++) {
		if (strcmp(st->cpus[i].name, name) == 0)
			return &st->cpus[i];
	}
	return NULL;
}

static void emit_cpu_seconds(struct probe_run *run, const struct host_state *st,
			     const struct procfs_cpu *cpu)
{
	const char *number = cpu->name + 3; /* "cpu3" -> "3" */
	struct label labels[2] = {{"cpu", number}, {"mode", NULL}};
	double tps = (double)st->ticks_per_second;

	for (int mode = 0; mode < PROCFS_CPU_TIME_MODES; mode++) {
		labels[1].value = procfs_cpu_mode_name(mode);
		probe_run_emit(run, &cpu_seconds, labels, 2, (double)cpu->ticks[mode] / tps);
	}
	labels[1].value = "user";
	probe_run_emit(run, &cpu_guest_seconds, labels, 2,
		       (double)cpu->ticks[PROCFS_CPU_GUEST] / tps);
	labels[1].value = "nice";
	probe_run_emit(run, &cpu_guest_seconds, labels, 2,
		       (double)cpu->ticks[PROCFS_CPU_GUEST_NICE] / tps);
}

static void collect_stat(struct probe_run *run, struct host_state *st, struct host_outcome *outcome)
{
	struct procfs_report report;
	struct procfs_stat current;
	int rc;

	rc = procfs_read_stat(st->root, &current, &report);
	outcome_note(outcome, rc, &report);
	if (rc == PROCFS_IO_ERROR)
		return;

	for (size_t i = 0; i < current.cpu_count; i++)
		emit_cpu_seconds(run, st, &current.cpus[i]);
	for (size_t i = 0; i < sizeof stat_metrics / sizeof stat_metrics[0]; i++) {
		uint64_t value;

		if ((current.present & stat_metrics[i].bit) == 0)
			continue;
		memcpy(&value, (const char *)&current + stat_metrics[i].offset, sizeof value);
		emit_one(run, &stat_metrics[i].desc, NULL, NULL, (double)value);
	}

	if (st->have_previous && st->previous.has_total && current.has_total)
		emit_cpu_usage(run, st, "all", &st->previous.total, &current.total);
	for (size_t i = 0; st->have_previous && i < current.cpu_count; i++) {
		const struct procfs_cpu *previous = find_cpu(&st->previous, current.cpus[i].name);

		if (previous != NULL)
			emit_cpu_usage(run, st, current.cpus[i].name + 3, previous,
				       &current.cpus[i]);
	}

	/* Every outcome re-baselines: after a reset the next interval starts from here. */
	procfs_stat_free(&st->previous);
	st->previous = current;
	st->have_previous = true;
}

static void collect_loadavg(struct probe_run *run, const struct host_state *st,
			    struct host_outcome *outcome)
{
	struct procfs_report report;
	struct procfs_loadavg load;
	int rc;

	rc = procfs_read_loadavg(st->root, &load, &report);
	outcome_note(outcome, rc, &report);
	if (rc != PROCFS_OK)
		return;
	emit_one(run, &load1, NULL, NULL, load.load1);
	emit_one(run, &load5, NULL, NULL, load.load5);
	emit_one(run, &load15, NULL, NULL, load.load15);
}

/* The metric for a meminfo field, made on first sight; NULL past MEMORY_FIELDS_MAX. */
static const struct metric_desc *memory_metric(struct host_state *st,
					       const struct procfs_meminfo_field *field)
{
	struct host_memory_metric *metric;

	for (size_t i = 0; i < st->memory_count; i++) {
		if (strcmp(st->memory[i]->field, field->name) == 0)
			return &st->memory[i]->desc;
	}
	if (st->memory_count >= MEMORY_FIELDS_MAX)
		return NULL;

	metric = xcalloc(1, sizeof *metric);
	snprintf(metric->field, sizeof metric->field, "%s", field->name);
	metric->desc.name =
	    xasprintf("node_memory_%s%s", field->name, field->in_bytes ? "_bytes" : "");
	metric->desc.help = xasprintf("Field %s of /proc/meminfo%s.", field->name,
				      field->in_bytes ? ", in bytes" : "");
	metric->desc.type = METRIC_GAUGE;
	st->memory = xreallocarray_grow(st->memory, &st->memory_capacity, st->memory_count + 1,
					sizeof *st->memory);
	st->memory[st->memory_count++] = metric;
	return &metric->desc;
}

static void collect_meminfo(struct probe_run *run, struct host_state *st,
			    struct host_outcome *outcome)
{
	struct procfs_report report;
	struct procfs_meminfo info;
	int rc;

	rc = procfs_read_meminfo(st->root, &info, &report);
	outcome_note(outcome, rc, &report);
	for (size_t i = 0; i < info.count; i++) {
		const struct metric_desc *desc = memory_metric(st, &info.fields[i]);

		if (desc != NULL)
			emit_one(run, desc, NULL, NULL, (double)info.fields[i].value);
	}
	procfs_meminfo_free(&info);
}

static bool filesystem_excluded(const struct host_state *st, const struct procfs_mount *m)
{
	for (size_t i = 0; i < st->filesystems_exclude_count; i++) {
		if (strcmp(st->filesystems_exclude[i], m->fstype) == 0)
			return true;
	}
	return pattern_matches(&st->mount_points_exclude, m->mount_point);
}

/* A later mount on the same point hides this one, and statvfs reports the later one. */
static bool mount_hidden(const struct procfs_mounts *mounts, size_t index)
{
	for (size_t j = index + 1; j < mounts->count; j++) {
		if (strcmp(mounts->entries[j].mount_point, mounts->entries[index].mount_point) == 0)
			return true;
	}
	return false;
}

/* A label value from kernel bytes: a copy with invalid UTF-8 replaced (caller frees). */
static char *label_value(const char *name)
{
	char *value = xstrdup(name);

	utf8_repair(value);
	return value;
}

/* Emits one filesystem's metrics; `labels` are device, fstype and mountpoint. */
static void emit_filesystem(struct probe_run *run, const struct host_state *st,
			    const struct procfs_mount *m, const struct label labels[3])
{
	struct procfs_fs_stats fs;
	struct statvfs vfs;

	/*
	 * NOTE: statvfs blocks the loop while a hard-mounted network filesystem is down.
	 * Exclude such filesystems (filesystems_exclude: nfs, nfs4, cifs) where that can happen.
	 */
	if (st->statvfs(m->mount_point, &vfs) < 0) {
		probe_run_emit(run, &fs_device_error, labels, 3, 1);
		probe_run_emit(run, &fs_readonly, labels, 3, m->read_only ? 1 : 0);
		return;
	}
	procfs_fs_stats_from_statvfs(&vfs, &fs);
	probe_run_emit(run, &fs_device_error, labels, 3, 0);
	probe_run_emit(run, &fs_size, labels, 3, (double)fs.size_bytes);
	probe_run_emit(run, &fs_free, labels, 3, (double)fs.free_bytes);
	probe_run_emit(run, &fs_avail, labels, 3, (double)fs.avail_bytes);
	probe_run_emit(run, &fs_files, labels, 3, (double)fs.files);
	probe_run_emit(run, &fs_files_free, labels, 3, (double)fs.files_free);
	probe_run_emit(run, &fs_readonly, labels, 3, m->read_only || fs.read_only ? 1 : 0);
}

static void collect_filesystems(struct probe_run *run, const struct host_state *st,
				struct host_outcome *outcome)
{
	struct procfs_report report;
	struct procfs_mounts mounts;
	int rc;

	rc = procfs_read_mounts(st->root, &mounts, &report);
	outcome_note(outcome, rc, &report);
	for (size_t i = 0; st->statvfs != NULL && i < mounts.count; i++) {
		const struct procfs_mount *m = &mounts.entries[i];

		struct label labels[3];

		if (filesystem_excluded(st, m) || mount_hidden(&mounts, i))
			continue;
		labels[0] = (struct label){"device", label_value(m->device)};
		labels[1] = (struct label){"fstype", label_value(m->fstype)};
		labels[2] = (struct label){"mountpoint", label_value(m->mount_point)};
		/* statvfs gets the raw path: only the label is repaired. */
		emit_filesystem(run, st, m, labels);
		for (size_t k = 0; k < 3; k++)
			free((char *)labels[k].value);
	}
	procfs_mounts_free(&mounts);
}

static void collect_disks(struct probe_run *run, const struct host_state *st,
			  struct host_outcome *outcome)
{
	struct procfs_diskstats stats;
	struct procfs_report report;
	int rc;

	rc = procfs_read_diskstats(st->root, &stats, &report);
	outcome_note(outcome, rc, &report);
	for (size_t i = 0; i < stats.count; i++) {
		const struct procfs_disk *disk = &stats.disks[i];
		char *device;

		if (pattern_matches(&st->devices_exclude, disk->name))
			continue;
		device = label_value(disk->name);
		for (size_t k = 0; k < sizeof disk_metrics / sizeof disk_metrics[0]; k++) {
			enum procfs_disk_stat stat = disk_metrics[k].stat;

			if ((unsigned)stat >= disk->stat_count)
				continue;
			emit_one(run, &disk_metrics[k].desc, "device", device,
				 (double)disk->stats[stat] * disk_metrics[k].scale);
		}
		free(device);
	}
	procfs_diskstats_free(&stats);
}

static void collect_network(struct probe_run *run, const struct host_state *st,
			    struct host_outcome *outcome)
{
	struct procfs_netdevs devices;
	struct procfs_report report;
	int rc;

	rc = procfs_read_netdev(st->root, &devices, &report);
	outcome_note(outcome, rc, &report);
	for (size_t i = 0; i < devices.count; i++) {
		const struct procfs_netdev *dev = &devices.devices[i];
		char *device;

		if (pattern_matches(&st->interfaces_exclude, dev->name))
			continue;
		device = label_value(dev->name);
		for (int k = 0; k < PROCFS_NETDEV_COUNTERS; k++)
			emit_one(run, &network_metrics[k], "device", device,
				 (double)dev->counters[k]);
		free(device);
	}
	procfs_netdevs_free(&devices);
}

static void host_start(struct probe_run *run, void *state)
{
	struct host_state *st = state;
	struct host_outcome outcome = {PROBE_STATUS_OK, "", 0};

	/* Each file is independent: a failure in one still lets the others report. */
	collect_stat(run, st, &outcome);
	collect_loadavg(run, st, &outcome);
	collect_meminfo(run, st, &outcome);
	collect_filesystems(run, st, &outcome);
	collect_disks(run, st, &outcome);
	collect_network(run, st, &outcome);

	if (outcome.status == PROBE_STATUS_OK)
		probe_run_finish(run, PROBE_STATUS_OK, "%s", "");
	else if (outcome.more > 0)
		probe_run_finish(run, outcome.status, "%s (and %u more)", outcome.reason,
				 outcome.more);
	else
		probe_run_finish(run, outcome.status, "%s", outcome.reason);
}

const struct probe_type probe_type_host = {
    .name = "host",
    .parse = host_parse,
    .start = host_start,
    .cancel = NULL,
    .free = host_free,
};
