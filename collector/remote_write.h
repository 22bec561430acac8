/*
 * The Prometheus remote-write 1.0 sender. Every sample that a probe run or a recording
 * rule commits is queued on disk for each configured endpoint (remote_write_queue.h) and
 * sent in order, in batches, through libcurl on the event loop (probes/curlev.h). A 2xx
 * response acknowledges a batch. A 5xx or 429 status, a timeout or a connection error
 * retries the same batch with full-jitter back-off, or after Retry-After when the response
 * has one. Any other status drops the batch and counts its samples as failed. Loop thread
 * only.
 */
#ifndef TOCSIN_REMOTE_WRITE_H
#define TOCSIN_REMOTE_WRITE_H

#include <stdint.h>

#include "collector/series.h"

struct event_base;
struct remote_write_config;

struct remote_write;

/*
 * Opens each endpoint's queue (queue_dir, by default DATA_DIR/remote-write/NAME) and
 * starts its flush timer. The endpoints' settings are copied, so `cfg` may be freed
 * afterwards. Returns NULL when cfg is NULL. An endpoint whose queue cannot be opened is
 * logged and left out.
 */
struct remote_write *remote_write_new(struct event_base *base,
				      const struct remote_write_config *cfg, const char *data_dir);

/* Queues one sample of `s` for every endpoint; NULL rw is accepted (no endpoints). */
void remote_write_append(struct remote_write *rw, const struct series *s, int64_t time_ms,
			 double value);

/* Brings the tocsin_remote_write_* metrics in `reg` up to date; NULL rw is accepted. */
void remote_write_refresh_metrics(struct remote_write *rw, struct series_registry *reg,
				  int64_t now_ms);

/*
 * Abandons a request in flight (its batch is sent again after a restart), writes and
 * fsyncs the queues and frees everything. NULL is accepted.
 */
void remote_write_free(struct remote_write *rw);

#endif
