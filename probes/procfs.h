/*
 * Parsers for the Linux /proc files the host probe reads: stat, meminfo, loadavg, mounts,
 * diskstats and net/dev. They do no I/O beyond reading ROOT/proc/..., so tests point them
 * at fixture trees. A parser skips a malformed line and keeps every good one. It describes
 * the first problem in a struct procfs_report, and the caller decides what that means.
 * Also here: the pure CPU usage computation between two /proc/stat snapshots.
 */
#ifndef TOCSIN_PROCFS_H
#define TOCSIN_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct probe_type;
struct statvfs;

/* Maximum size of a /proc file read: about 25,000 lines of /proc/mounts at 160 bytes each. */
#define PROCFS_FILE_MAX ((size_t)4 << 20)

enum procfs_result {
	PROCFS_OK = 0,
	PROCFS_IO_ERROR = -1,    /* the file could not be read: nothing parsed */
	PROCFS_PARSE_ERROR = -2, /* one or more lines skipped: the other lines were parsed */
};

/* The first problem found in one file, and how many lines were skipped. */
struct procfs_report {
	unsigned bad_lines;
	char text[160]; /* "/proc/net/dev line 5: expected 16 counters, found 9"; "" when clean */
};

/*
 * Reads ROOT/RELPATH completely into a NUL-terminated buffer (caller frees) and sets
 * *length. Returns PROCFS_OK, or PROCFS_IO_ERROR with report->text naming "/RELPATH" and the
 * errno text; files larger than PROCFS_FILE_MAX fail with EFBIG.
 */
int procfs_read_file(const char *root, const char *relpath, char **out, size_t *length,
		     struct procfs_report *report);

/* /proc/stat. Columns of a cpu line, in the kernel's order. */
enum procfs_cpu_mode {
	PROCFS_CPU_USER,
	PROCFS_CPU_NICE,
	PROCFS_CPU_SYSTEM,
	PROCFS_CPU_IDLE,
	PROCFS_CPU_IOWAIT,
	PROCFS_CPU_IRQ,
	PROCFS_CPU_SOFTIRQ,
	PROCFS_CPU_STEAL,
	PROCFS_CPU_GUEST,      /* already counted in user by the kernel */
	PROCFS_CPU_GUEST_NICE, /* already counted in nice by the kernel */
	PROCFS_CPU_MODE_COUNT,
};

/* The modes that partition a CPU's time: every mode before guest. */
#define PROCFS_CPU_TIME_MODES PROCFS_CPU_GUEST

/* Lower-case mode name as node_exporter's `mode` label spells it: "user", "iowait". */
const char *procfs_cpu_mode_name(enum procfs_cpu_mode mode);

struct procfs_cpu {
	char name[16];                         /* "cpu" for the aggregate line, "cpu3" */
	uint64_t ticks[PROCFS_CPU_MODE_COUNT]; /* in USER_HZ ticks; absent columns are 0 */
};

/* Bits of procfs_stat.present. */
#define PROCFS_STAT_INTR          (1u << 0)
#define PROCFS_STAT_CTXT          (1u << 1)
#define PROCFS_STAT_BTIME         (1u << 2)
#define PROCFS_STAT_PROCESSES     (1u << 3)
#define PROCFS_STAT_PROCS_RUNNING (1u << 4)
#define PROCFS_STAT_PROCS_BLOCKED (1u << 5)

struct procfs_stat {
	bool has_total;
	struct procfs_cpu total; /* the "cpu" line */
	struct procfs_cpu *cpus; /* "cpuN" lines in file order */
	size_t cpu_count;
	unsigned present; /* PROCFS_STAT_* bits for the fields below */
	uint64_t intr;    /* first number of the intr line: all interrupts since boot */
	uint64_t ctxt;
	uint64_t btime; /* boot time, seconds since the epoch */
	uint64_t processes;
	uint64_t procs_running;
	uint64_t procs_blocked;
};

/*
 * Parses /proc/stat text into *out (zeroed first; free with procfs_stat_free). A cpu line
 * needs at least the four columns user, nice, system and idle: older kernels print fewer
 * than ten, and the missing ones are 0. Unknown lines are ignored.
 */
int procfs_parse_stat(const char *text, struct procfs_stat *out, struct procfs_report *report);
int procfs_read_stat(const char *root, struct procfs_stat *out, struct procfs_report *report);
void procfs_stat_free(struct procfs_stat *st);

/*
 * CPU usage over one interval, from two snapshots of the same CPU's ticks. Per mode, the
 * delta is taken in signed 64 bits and clamped to 0 when negative, because NO_HZ kernels let
 * iowait go back a little. The interval is the sum of the clamped deltas over the
 * PROCFS_CPU_TIME_MODES modes. When idle went back by 3 seconds' worth of ticks or more, the
 * counters restarted (suspend and resume, CPU hotplug) and the interval has no usage.
 */
enum procfs_cpu_usage_result {
	PROCFS_CPU_USAGE_OK,
	PROCFS_CPU_USAGE_RESET, /* idle went back by >= 3 s: report nothing, re-baseline */
	PROCFS_CPU_USAGE_EMPTY, /* no tick elapsed: nothing to report */
};

struct procfs_cpu_usage {
	double ratio[PROCFS_CPU_TIME_MODES]; /* share of the interval per mode, in [0, 1] */
	double busy;                         /* 1 - share of idle and iowait, in [0, 1] */
};

/* The clamped signed difference cur - prev, saturating at INT64_MIN and INT64_MAX. */
int64_t procfs_counter_delta(uint64_t prev, uint64_t cur);

/* `ticks_per_second` is sysconf(_SC_CLK_TCK); *out is set only for PROCFS_CPU_USAGE_OK. */
enum procfs_cpu_usage_result procfs_cpu_usage(const uint64_t prev[PROCFS_CPU_MODE_COUNT],
					      const uint64_t cur[PROCFS_CPU_MODE_COUNT],
					      long ticks_per_second, struct procfs_cpu_usage *out);

/* /proc/meminfo. */
struct procfs_meminfo_field {
	char name[64];  /* metric-safe: "Active(anon)" becomes "Active_anon" */
	bool in_bytes;  /* the file gave kB, and value was converted to bytes */
	uint64_t value; /* bytes when in_bytes, else the raw count (HugePages_Total) */
};

struct procfs_meminfo {
	struct procfs_meminfo_field *fields; /* in file order */
	size_t count;
};

int procfs_parse_meminfo(const char *text, struct procfs_meminfo *out,
			 struct procfs_report *report);
int procfs_read_meminfo(const char *root, struct procfs_meminfo *out, struct procfs_report *report);
void procfs_meminfo_free(struct procfs_meminfo *mi);

/* /proc/loadavg. */
struct procfs_loadavg {
	double load1;
	double load5;
	double load15;
};

int procfs_parse_loadavg(const char *text, struct procfs_loadavg *out,
			 struct procfs_report *report);
int procfs_read_loadavg(const char *root, struct procfs_loadavg *out, struct procfs_report *report);

/* /proc/mounts; every text field has its octal escapes decoded. */
struct procfs_mount {
	char *device;
	char *mount_point;
	char *fstype;
	char *options;
	bool read_only; /* "ro" among the options */
};

struct procfs_mounts {
	struct procfs_mount *entries; /* in file order */
	size_t count;
};

/*
 * Decodes, in place, the kernel's escapes in one field of /proc/mounts or mountinfo:
 * a backslash followed by exactly three octal digits is one byte ("\040" is a space, so
 * "HDD\0403" is "HDD 3"). Any other backslash, and the escapes of the bytes 0 and above
 * 255, stay as written. Returns the new length.
 */
size_t procfs_decode_mount_field(char *field);

int procfs_parse_mounts(const char *text, struct procfs_mounts *out, struct procfs_report *report);
int procfs_read_mounts(const char *root, struct procfs_mounts *out, struct procfs_report *report);
void procfs_mounts_free(struct procfs_mounts *m);

/* /proc/diskstats: the numbers after the device name, in the kernel's order. */
enum procfs_disk_stat {
	PROCFS_DISK_READS_COMPLETED,
	PROCFS_DISK_READS_MERGED,
	PROCFS_DISK_SECTORS_READ,
	PROCFS_DISK_READ_TIME_MS,
	PROCFS_DISK_WRITES_COMPLETED,
	PROCFS_DISK_WRITES_MERGED,
	PROCFS_DISK_SECTORS_WRITTEN,
	PROCFS_DISK_WRITE_TIME_MS,
	PROCFS_DISK_IO_NOW,
	PROCFS_DISK_IO_TIME_MS,
	PROCFS_DISK_IO_WEIGHTED_TIME_MS,
	PROCFS_DISK_DISCARDS_COMPLETED, /* Linux 4.18 and later */
	PROCFS_DISK_DISCARDS_MERGED,
	PROCFS_DISK_SECTORS_DISCARDED,
	PROCFS_DISK_DISCARD_TIME_MS,
	PROCFS_DISK_FLUSHES_COMPLETED, /* Linux 5.5 and later */
	PROCFS_DISK_FLUSH_TIME_MS,
	PROCFS_DISK_STAT_COUNT,
};

/* The fields every kernel since 2.6 prints. */
#define PROCFS_DISK_STAT_MIN (PROCFS_DISK_IO_WEIGHTED_TIME_MS + 1)

/* diskstats counts sectors of 512 bytes whatever the device's real sector size. */
#define PROCFS_DISK_SECTOR_BYTES 512u

struct procfs_disk {
	char name[64];
	unsigned stat_count; /* fields present, PROCFS_DISK_STAT_MIN or more */
	uint64_t stats[PROCFS_DISK_STAT_COUNT];
};

struct procfs_diskstats {
	struct procfs_disk *disks;
	size_t count;
};

int procfs_parse_diskstats(const char *text, struct procfs_diskstats *out,
			   struct procfs_report *report);
int procfs_read_diskstats(const char *root, struct procfs_diskstats *out,
			  struct procfs_report *report);
void procfs_diskstats_free(struct procfs_diskstats *d);

/* /proc/net/dev: eight receive counters, then eight transmit counters. */
#define PROCFS_NETDEV_COUNTERS 16

enum procfs_netdev_counter {
	PROCFS_NET_RX_BYTES,
	PROCFS_NET_RX_PACKETS,
	PROCFS_NET_RX_ERRS,
	PROCFS_NET_RX_DROP,
	PROCFS_NET_RX_FIFO,
	PROCFS_NET_RX_FRAME,
	PROCFS_NET_RX_COMPRESSED,
	PROCFS_NET_RX_MULTICAST,
	PROCFS_NET_TX_BYTES,
	PROCFS_NET_TX_PACKETS,
	PROCFS_NET_TX_ERRS,
	PROCFS_NET_TX_DROP,
	PROCFS_NET_TX_FIFO,
	PROCFS_NET_TX_COLLS,
	PROCFS_NET_TX_CARRIER,
	PROCFS_NET_TX_COMPRESSED,
};

struct procfs_netdev {
	char name[64]; /* text before the last ':' of the line, trimmed: "eth0", "tun10001:1" */
	uint64_t counters[PROCFS_NETDEV_COUNTERS];
};

struct procfs_netdevs {
	struct procfs_netdev *devices;
	size_t count;
};

/*
 * Parses /proc/net/dev text. The two header lines are skipped. Large counters may touch
 * the colon ("eth0:68210035552") and alias names contain one ("tun10001:1:"), so the name
 * ends at the last colon. A line without exactly 16 unsigned counters is skipped.
 */
int procfs_parse_netdev(const char *text, struct procfs_netdevs *out, struct procfs_report *report);
int procfs_read_netdev(const char *root, struct procfs_netdevs *out, struct procfs_report *report);
void procfs_netdevs_free(struct procfs_netdevs *n);

/* Filesystem figures for one mount point, from statvfs(3). */
struct procfs_fs_stats {
	uint64_t size_bytes;
	uint64_t free_bytes;  /* including blocks reserved for root */
	uint64_t avail_bytes; /* available to unprivileged users */
	uint64_t files;
	uint64_t files_free;
	bool read_only;
};

/* Converts a statvfs result; byte counts saturate at UINT64_MAX. */
void procfs_fs_stats_from_statvfs(const struct statvfs *vfs, struct procfs_fs_stats *out);

/*
 * The host probe (probes/host.c). Options: root, filesystems_exclude, mount_points_exclude,
 * devices_exclude, interfaces_exclude; see docs/configuration.md.
 */
extern const struct probe_type probe_type_host;

/* The statvfs(3) signature, so that tests can stand in for the real call. */
typedef int host_statvfs_fn(const char *path, struct statvfs *out);

/*
 * Replaces the statvfs call of a parsed host probe state. By default the probe calls
 * statvfs(3) when root is "/" and skips filesystem sizes for any other root. For tests.
 */
void host_set_statvfs(void *state, host_statvfs_fn *fn);

#endif
