/*
 * Turning what an exec probe's command printed into samples and a run status: Nagios
 * plugin output (exit code, status text, performance data) or Prometheus text exposition.
 * Used by probes/exec.c once the command has exited and its output is read.
 */
#ifndef TOCSIN_EXEC_OUTPUT_H
#define TOCSIN_EXEC_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "collector/series.h"
#include "collector/throttle.h"
#include "probes/exposition_parse.h"

struct probe_run;

/* How the command ended and what it printed (output buffers are not NUL-terminated). */
struct exec_result {
	int exit_code; /* 0..255, or 128 + signal number when killed by a signal */
	int signal;    /* the signal that killed the command, 0 when it exited */
	const char *out;
	size_t out_length;
	uint64_t out_discarded; /* stdout bytes read past the cap and dropped */
	const char *err;
	size_t err_length;
	const char *ids; /* log_ids() of the probe, for log lines */
};

/*
 * Metric descriptions for samples of the last prometheus-mode run. Samples keep pointers
 * to them until the scheduler commits the run, which happens before the next run starts;
 * so the cache is emptied at the start of each run and when the probe is freed.
 */
struct exec_metric_cache {
	struct exposition_doc doc;
	struct metric_desc *descs; /* one per doc.metrics entry */
};

void exec_metric_cache_clear(struct exec_metric_cache *cache);

/*
 * Emits tocsin_exec_status and the performance data, and finishes the run with the status
 * the exit code maps to (0 OK, 1 WARNING, 2 CRITICAL, anything else UNKNOWN) and the
 * first line's text as reason. Invalid perfdata items are counted and logged through
 * `throttle`, and do not change the status.
 */
void exec_output_nagios(struct probe_run *run, const struct exec_result *res,
			struct throttle *throttle);

/*
 * Emits tocsin_exec_status and, when the command exited with 0 and its whole output parses,
 * every sample it printed; finishes the run OK. A non-zero exit finishes it UNKNOWN, and
 * output cut at the cap or a parse error finish it PARSE_ERROR with nothing ingested.
 */
void exec_output_prometheus(struct probe_run *run, const struct exec_result *res,
			    struct exec_metric_cache *cache);

#endif
