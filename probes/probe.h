/*
 * The probe interface. Each file in probes/ defines one `const struct probe_type` and
 * keeps everything else static; probes/registry.c lists them.
 *
 * Life of a probe instance: the config loader calls parse() once per configured probe
 * with the probe's YAML mapping (common keys such as name, interval and labels already
 * read) and keeps the returned state. The scheduler then calls start() on every turn
 * with a fresh run handle. start() must not block: it either finishes at once or
 * registers its I/O on probe_run_base(run) and finishes from a callback later. A run
 * reports samples with probe_run_emit() and ends with exactly one probe_run_finish().
 * When the deadline passes first, the scheduler calls cancel(), which must release the
 * run's I/O and must not call probe_run_finish(). The run is then recorded as a timeout.
 */
#ifndef TOCSIN_PROBE_H
#define TOCSIN_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/series.h"

struct cfg_map;
struct event_base;
struct probe_run;

/* Outcome of a run. probe_status_table in probe.c has one entry per member. */
enum probe_status {
	PROBE_STATUS_OK,
	PROBE_STATUS_TIMEOUT,
	PROBE_STATUS_CANCELLED,
	PROBE_STATUS_IO_ERROR,
	PROBE_STATUS_PARSE_ERROR,
	PROBE_STATUS_NOT_PERMITTED,
	PROBE_STATUS_RESOLVE_ERROR,
	PROBE_STATUS_REFUSED,
	PROBE_STATUS_UNREACHABLE,
	PROBE_STATUS_CONNECTION_LOST,
	PROBE_STATUS_TLS_ERROR,
	PROBE_STATUS_TLS_EXPIRED,
	PROBE_STATUS_PROTOCOL_ERROR,
	PROBE_STATUS_STATUS_MISMATCH,
	PROBE_STATUS_CONTENT_MISMATCH,
	PROBE_STATUS_INTERNAL_ERROR,
	PROBE_STATUS_AUTH_FAILED,
	PROBE_STATUS_NOT_FOUND,
	PROBE_STATUS_LIMIT_REACHED,
	PROBE_STATUS_UNAVAILABLE,
	PROBE_STATUS_DNS_RCODE,
	PROBE_STATUS_WARNING,
	PROBE_STATUS_CRITICAL,
	PROBE_STATUS_UNKNOWN,
	PROBE_STATUS_COUNT,
};

/* Broad class of a status, for alerting and the dashboard. */
enum probe_status_class {
	PROBE_CLASS_OK,
	PROBE_CLASS_WARNING, /* the target works but reports a degraded state */
	PROBE_CLASS_DOWN,    /* the target replied wrongly or not at all */
	PROBE_CLASS_ERROR,   /* tocsin could not run the check (config, permission, bug) */
};

struct probe_status_info {
	const char *name; /* short code for labels and logs: "timeout", "refused" */
	enum probe_status_class status_class;
	const char *text; /* human text: "timed out" */
};

const struct probe_status_info *probe_status_info(enum probe_status status);

struct probe_type {
	const char *name;
	/* Reads the type's options from `options`; 0 and *state set, or -1 with errors recorded. */
	int (*parse)(struct cfg_map *options, void **state);
	/* Starts one run; see the file comment. */
	void (*start)(struct probe_run *run, void *state);
	/* Aborts an unfinished run; may be NULL for types that always finish inside start(). */
	void (*cancel)(struct probe_run *run, void *state);
	void (*free)(void *state);
	/* Optional: what the probe checks ("https://api.example/health"), for log lines. */
	const char *(*target)(const void *state);
};

/* Looks a type up by its config name; NULL when unknown. */
const struct probe_type *probe_type_find(const char *name);
/* Comma-separated names of every type, for error messages. */
const char *probe_type_names(void);

/* A sample emitted by a run: the label array and strings are owned by the run. */
struct probe_sample {
	const struct metric_desc *desc;
	struct label *labels;
	size_t label_count;
	double value;
};

/* Called once when the run ends (finish or timeout). The owner frees the run afterwards. */
typedef void probe_run_done_fn(struct probe_run *run, void *arg);

/*
 * Creates a run for the probe `probe_name` (used in logs and as the `probe` label).
 * Owned by the scheduler (or the --once runner), which calls probe_run_free() once done.
 */
struct probe_run *probe_run_new(struct event_base *base, const char *probe_name,
				probe_run_done_fn *done, void *arg);
void probe_run_free(struct probe_run *run);

struct event_base *probe_run_base(const struct probe_run *run);
const char *probe_run_probe_name(const struct probe_run *run);

/*
 * Records one sample. `labels` and their strings are copied. Ignored after the run has
 * finished (a late callback of a cancelled run). Sample time is the run's finish time.
 */
void probe_run_emit(struct probe_run *run, const struct metric_desc *desc,
		    const struct label *labels, size_t label_count, double value);

/* Like probe_run_emit but also after the run finished: for the run's owner only. */
void probe_run_add_sample(struct probe_run *run, const struct metric_desc *desc,
			  const struct label *labels, size_t label_count, double value);

/*
 * Ends the run with `status` and a short reason ("connect: refused"). The first call
 * counts; later calls are ignored. Calls the done callback before it returns.
 */
void probe_run_finish(struct probe_run *run, enum probe_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Names the step the run is in ("connect", "tls", "processing"), so that a timeout
 * reason says where the time went: "timeout after 5s in phase tls". `phase` must be a
 * string literal (it is not copied). A probe may set it as it goes or from cancel().
 */
void probe_run_set_phase(struct probe_run *run, const char *phase);
const char *probe_run_phase(const struct probe_run *run);

/* Marks the run timed out (scheduler only): same as finish with PROBE_STATUS_TIMEOUT. */
void probe_run_timeout(struct probe_run *run, const char *reason);

bool probe_run_finished(const struct probe_run *run);
enum probe_status probe_run_status(const struct probe_run *run);
const char *probe_run_reason(const struct probe_run *run);
size_t probe_run_sample_count(const struct probe_run *run);
const struct probe_sample *probe_run_sample(const struct probe_run *run, size_t index);
/* Seconds from the run's start to its finish (0 while unfinished), microsecond precision. */
double probe_run_duration_seconds(const struct probe_run *run);

/* Monotonic time in milliseconds and microseconds, and wall-clock time in milliseconds. */
uint64_t probe_now_ms(void);
uint64_t probe_now_us(void);
int64_t probe_wall_ms(void);

#endif
