/*
 * The archive store: one RRD file per series under data_dir. Writes never happen on the
 * loop thread: store_submit() only appends to a queue, and a writer thread either calls
 * rrd_update_r() (one call per file for every queued value of that file) or sends the
 * updates to rrdcached in BATCH mode. Files are created on first use with the series'
 * step, heartbeat and the configured retention, and reused across restarts.
 *
 * An update whose time is not newer than the last one written to its file is dropped
 * and counted (reason "not_newer"), with one throttled log line; other files go on.
 *
 * File layout. A series of metric M with labels becomes
 *   data_dir/M/NAME1-VALUE1__NAME2-VALUE2_HHHHHHHHHHHHHHHH.rrd
 * where every byte outside [A-Za-z0-9_.-] is replaced by '_', the readable part is cut
 * at 128 bytes, and H is the 64-bit FNV-1a hash (hex) of the full sorted label set, so
 * that distinct label sets get distinct files even when their readable parts match. A
 * series without labels is data_dir/M/_.rrd. When M itself needs replacing, is cut, or
 * starts with '.' or '-', the directory becomes the cleaned name plus "_" and the hash
 * of M. No label value or metric name can produce '/', "." or ".." as a path component.
 *
 * File contents. One data source named "value": GAUGE for gauges, DDERIVE (DERIVE that
 * accepts fractional values) with minimum 0 for counters (a counter reset gives an
 * unknown rate, never a negative one). For each
 * retention tier, RRAs AVERAGE, MIN and MAX with xff 0.5, max(1, tier step / series
 * step) steps per row, and keep / (steps per row * series step) rows (at least 1). A new
 * file starts at the last multiple of the series step before its first update. An
 * existing file keeps its own step, heartbeat and RRAs: configuration changes are not
 * applied to files already on disk.
 *
 * Gaps. When two updates are further apart than the heartbeat, RRD stores unknown (NaN)
 * for the whole interval between them; this is rrdtool's semantics, so a heartbeat
 * shorter than the sampling interval yields a file of NaN rows.
 *
 * rrdcached. Files are created through the daemon's CREATE command and the last update
 * time of an existing file is read with LAST, so a daemon on another host works. With a
 * unix socket the daemon shares this file system: paths are sent absolute and the store
 * creates the metric directories itself. With a TCP address, paths are sent relative to
 * data_dir, so the daemon's base directory (-b) must be the archive directory and it
 * needs -B -R to create the metric directories. Updates accepted by the daemon count as
 * written; the daemon writes them to disk on its own schedule. While the daemon cannot
 * be reached the writer reconnects with a doubling delay (0.1 s to 30 s) and keeps the
 * queue, which stays bounded by queue_max.
 */
#ifndef TOCSIN_STORE_H
#define TOCSIN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "collector/series.h"
#include "collector/units.h"

struct store_options {
	const char *data_dir;       /* must exist or be creatable */
	const char *rrdcached;      /* NULL: direct writes; else "unix:/path" or "host:port" */
	struct retention retention; /* count 0: 10s:2d, 1m:30d, 1h:400d */
	size_t queue_max;           /* 0: default (1,000,000 updates) */
};

enum store_drop_reason {
	STORE_DROP_NOT_NEWER,
	STORE_DROP_QUEUE_FULL,
	STORE_DROP_ERROR,
	STORE_DROP_REASON_COUNT,
};

/* Failed archive operations, counted whether or not the throttled log reported them. */
enum store_error_kind {
	STORE_ERROR_CONNECT, /* a connection attempt to rrdcached failed */
	STORE_ERROR_CREATE,  /* creating or opening a file failed (ENOSPC, EACCES, ...) */
	STORE_ERROR_UPDATE,  /* an update of a file failed; its values were dropped */
	STORE_ERROR_KIND_COUNT,
};

struct store_stats {
	uint64_t submitted; /* every store_submit() call, dropped or not */
	uint64_t written;   /* written by librrd, or accepted by rrdcached */
	uint64_t dropped[STORE_DROP_REASON_COUNT];
	uint64_t errors[STORE_ERROR_KIND_COUNT];
	uint64_t files_created;
	uint64_t batches;     /* drains of the queue by the writer thread */
	uint64_t queue_depth; /* queued or being written now */
};

struct store;
struct store_file;

/* Starts the writer thread. NULL (error logged) when data_dir cannot be created. */
struct store *store_new(const struct store_options *opts);

/*
 * Returns the archive file of a series, creating the in-memory record (not the file) on
 * first use. The path is data_dir/METRIC/SANITIZED-LABELS_HASH.rrd: label values never
 * become a raw path component. step_s is the series' sampling interval, heartbeat_s the
 * gap after which RRD stores unknown. Loop thread only.
 *
 * step_s must be at least 1 (NULL and an error logged otherwise); heartbeat_s 0 means
 * twice step_s. Later calls for the same series return the same record with the step
 * and heartbeat of the first call. The caller keeps the pointer (series.file); it is
 * valid until store_free().
 */
struct store_file *store_file_get(struct store *st, const struct series *s, uint32_t step_s,
				  uint32_t heartbeat_s);
const char *store_file_path(const struct store_file *f);

/*
 * Queues one update. Never blocks; a full queue drops and counts. Loop thread only.
 * A NaN or infinite value is stored as unknown.
 */
void store_submit(struct store *st, struct store_file *f, int64_t unix_s, double value);

/*
 * Blocks until every queued update has been written or dropped. While rrdcached cannot
 * be reached, the writer keeps trying for 10 s after the first failure, then drops the
 * updates it has taken (reason "error") so that this call returns.
 */
void store_flush(struct store *st);

/*
 * Like store_flush but gives up after timeout_ms: returns 0 when everything queued was
 * written or dropped, -1 when updates are still pending (the writer goes on).
 */
int store_flush_timeout(struct store *st, uint64_t timeout_ms);

void store_get_stats(struct store *st, struct store_stats *out);
const char *store_drop_reason_name(enum store_drop_reason reason);
/* The label value of an error kind: "connect", "create" or "update". */
const char *store_error_kind_name(enum store_error_kind kind);

/* Flushes, stops the writer thread and frees everything. */
void store_free(struct store *st);

#endif
