/*
 * The archive store: one RRD file per series under data_dir. Writes never happen on the
 * loop thread: store_submit() only appends to a queue, and a writer thread either calls
 * rrd_update_r() (one call per file for every queued value of that file) or sends the
 * updates to rrdcached in BATCH mode. Files are created on first use with the series'
 * step, heartbeat and the configured retention, and reused across restarts.
 *
 * An update whose time is not newer than the last one written to its file is dropped
 * and counted (reason "not_newer"), with one throttled log line; other files go on.
 */
#ifndef TOCSIN_STORE_H
#define TOCSIN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "collector/series.h"
#include "collector/units.h"

struct store_options {
	const char *data_dir;  /* must exist or be creatable */
	const char *rrdcached; /* NULL: direct writes; else "unix:/path" or "host:port" */
	struct retention retention;
	size_t queue_max; /* 0: default (1,000,000 updates) */
};

enum store_drop_reason {
	STORE_DROP_NOT_NEWER,
	STORE_DROP_QUEUE_FULL,
	STORE_DROP_ERROR,
	STORE_DROP_REASON_COUNT,
};

struct store_stats {
	uint64_t submitted;
	uint64_t written;
	uint64_t dropped[STORE_DROP_REASON_COUNT];
	uint64_t files_created;
	uint64_t batches;
	uint64_t queue_depth;
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
 */
struct store_file *store_file_get(struct store *st, const struct series *s, uint32_t step_s,
				  uint32_t heartbeat_s);
const char *store_file_path(const struct store_file *f);

/* Queues one update. Never blocks; a full queue drops and counts. Loop thread only. */
void store_submit(struct store *st, struct store_file *f, int64_t unix_s, double value);

/* Blocks until every queued update has been written or dropped. */
void store_flush(struct store *st);

void store_get_stats(struct store *st, struct store_stats *out);
const char *store_drop_reason_name(enum store_drop_reason reason);

/* Flushes, stops the writer thread and frees everything. */
void store_free(struct store *st);

#endif
