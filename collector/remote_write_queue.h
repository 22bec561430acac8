/*
 * The on-disk queue of one remote-write endpoint. Samples are appended to segment files
 * in the queue directory before they are sent. A checkpoint file records how far the
 * receiver acknowledged them, so that a receiver outage or a restart loses nothing. The
 * queue is bounded in bytes: when it is full, the oldest segments are deleted and their
 * unsent samples counted as dropped. Loop thread only.
 *
 * Files. NNNNNNNNNNNNNNNN.seg (16 hex digits, increasing) start with the 8-byte magic
 * "TOCSRWQ1" followed by records: u32 payload length, u32 checksum (low half of the
 * FNV-1a hash of the payload), then the payload: i64 time in ms, the value's IEEE 754
 * bits as u64, u16 label count, and per label u16 name length, name, NUL, u16 value
 * length, value, NUL; integers little-endian. `checkpoint` is a text file ("segment S",
 * "offset O" lines) replaced by rename. A torn record at the end of a segment (a crash
 * during a write) is cut off when the queue is opened.
 *
 * Durability: records are written to the segment with write(2) on
 * remote_write_queue_flush(), on every read, and when 64 KiB are buffered; a segment is
 * fsync'ed when it is closed (full, or at remote_write_queue_close()) and the checkpoint
 * before its rename. A crash of the host can lose the records written since the last
 * segment close; a crash of the process loses only the records still buffered.
 */
#ifndef TOCSIN_REMOTE_WRITE_QUEUE_H
#define TOCSIN_REMOTE_WRITE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "collector/series.h"

/* One sample with its full label set (__name__ included, sorted by name). */
struct remote_write_sample {
	int64_t time_ms;
	double value;
	const struct label *labels;
	size_t label_count;
};

/*
 * Samples read from the queue. The labels point into the batch's own storage, valid until
 * the next read into the same batch or remote_write_batch_free(). A batch starts zeroed.
 */
struct remote_write_batch {
	struct remote_write_sample *samples;
	size_t count;
	size_t capacity;
	struct label *labels;
	size_t label_capacity;
	unsigned char *data; /* the records' payloads */
	size_t data_len;
	size_t data_capacity;
	uint64_t end_segment; /* position after the last sample, for the acknowledgement */
	uint64_t end_offset;
	uint64_t end_index;
};

struct remote_write_queue_stats {
	uint64_t bytes;            /* of the segment files, buffered records included */
	uint64_t samples;          /* not yet acknowledged */
	uint64_t dropped_samples;  /* deleted unsent because the queue was full */
	uint64_t dropped_segments; /* segment files deleted because the queue was full */
};

struct remote_write_queue;

/*
 * Opens the queue in `dir` (created with its parents, mode 0700, when missing), keeping the
 * segments and checkpoint found there. max_bytes (at least 64 KiB) bounds the segment
 * files. Returns NULL with *error set (caller frees) when the directory cannot be created
 * or read.
 */
struct remote_write_queue *remote_write_queue_open(const char *dir, uint64_t max_bytes,
						   char **error);

/*
 * Appends one sample without any network I/O. Deletes the oldest segments when the queue
 * would grow past its limit. Returns 0, or -1 (logged) when the sample cannot be
 * stored: too large for a record, or the segment file cannot be written.
 */
int remote_write_queue_append(struct remote_write_queue *q, const struct remote_write_sample *s);

/* Writes the buffered records to the current segment (without fsync). 0 or -1 (logged). */
int remote_write_queue_flush(struct remote_write_queue *q);

/*
 * Reads up to `max` samples starting at the acknowledged position into `b`, in the order
 * they were appended. Returns the number read (0 when nothing is pending). Reading again
 * without an acknowledgement returns the same samples.
 */
size_t remote_write_queue_read(struct remote_write_queue *q, size_t max,
			       struct remote_write_batch *b);

/*
 * Marks every sample of `b` acknowledged: deletes the segments it finished and writes the
 * checkpoint. Returns 0, or -1 (logged) when the checkpoint cannot be written; the
 * position then still advances in memory.
 */
int remote_write_queue_ack(struct remote_write_queue *q, const struct remote_write_batch *b);

void remote_write_queue_get_stats(const struct remote_write_queue *q,
				  struct remote_write_queue_stats *out);

/* Writes and fsyncs the buffered records and closes the queue; NULL is accepted. */
void remote_write_queue_close(struct remote_write_queue *q);

void remote_write_batch_free(struct remote_write_batch *b);

#endif
