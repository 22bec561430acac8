/*
 * The `exec` probe: runs a command from an argv list (no shell) and reads its result as a
 * Nagios plugin's or as Prometheus text exposition (probes/exec_output.c).
 *
 * The command runs through probes/spawn.c: posix_spawn in a process group of its own,
 * output read on the loop, the child reaped from SIGCHLD, and nothing it started left
 * behind. When the scheduler cancels a run (its timeout), the group gets SIGTERM, then
 * SIGKILL after kill_after.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/cfg.h"
#include "collector/log.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"
#include "probes/exec_output.h"
#include "probes/probe.h"
#include "probes/spawn.h"

/* stderr is only kept for a reason line. */
#define EXEC_STDERR_MAX                1024
#define EXEC_NAGIOS_OUTPUT_DEFAULT     (8u * 1024)
#define EXEC_PROMETHEUS_OUTPUT_DEFAULT (1024u * 1024)
#define EXEC_KILL_AFTER_DEFAULT_MS     2000u

enum exec_mode {
	EXEC_MODE_NAGIOS,
	EXEC_MODE_PROMETHEUS,
};

struct exec_state {
	struct spawn_command command;
	enum exec_mode mode;
	size_t max_output;
	uint64_t kill_after_ms;
	struct spawn_child *child; /* the command of the run in flight, NULL when none */
	struct probe_run *run;     /* the run in flight, NULL when none */
	struct exec_metric_cache cache;
	struct throttle spawn_throttle;
	struct throttle perfdata_throttle;
};

/* Ends the run with what the command printed. */
static void exec_finished(void *arg, const struct spawn_result *r)
{
	struct exec_state *st = arg;
	struct probe_run *run = st->run;
	char ids[256];
	struct exec_result res = {
	    .exit_code = r->exit_code,
	    .signal = r->signal,
	    .out = r->out,
	    .out_length = r->out_length,
	    .out_discarded = r->out_discarded,
	    .err = r->err,
	    .err_length = r->err_length,
	    .ids = log_ids(ids, sizeof(ids), "probe", probe_run_probe_name(run), NULL),
	};

	if (r->output_held)
		log_debug("exec", ids,
			  "a process left by the command kept its output open %d ms after it "
			  "exited; killed its process group",
			  SPAWN_DRAIN_MS);
	st->child = NULL;
	st->run = NULL;
	if (st->mode == EXEC_MODE_NAGIOS)
		exec_output_nagios(run, &res, &st->perfdata_throttle);
	else
		exec_output_prometheus(run, &res, &st->cache);
}

static enum probe_status spawn_status(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return PROBE_STATUS_NOT_FOUND;
	case EACCES:
	case EPERM:
		return PROBE_STATUS_NOT_PERMITTED;
	default:
		return PROBE_STATUS_INTERNAL_ERROR;
	}
}

static void start_failed(struct probe_run *run, struct exec_state *st, int err)
{
	const char *path = st->command.argv[0];
	char ids[256];
	uint64_t suppressed = 0;

	log_ids(ids, sizeof(ids), "probe", probe_run_probe_name(run), NULL);
	if (throttle_fail(&st->spawn_throttle, probe_now_ms(), &suppressed))
		log_warn("exec", ids, "exec %s failed: %s (%llu similar messages suppressed)", path,
			 strerror(err), (unsigned long long)suppressed);
	probe_run_finish(run, spawn_status(err), "exec %s: %s", path, strerror(err));
}

static void exec_start(struct probe_run *run, void *state)
{
	struct exec_state *st = state;
	struct spawn_options o = {
	    .command = &st->command,
	    .max_output = st->max_output,
	    .max_error = EXEC_STDERR_MAX,
	    .kill_after_ms = st->kill_after_ms,
	};
	int rc;

	/* The previous run has been committed by now, so its descriptions are unused. */
	exec_metric_cache_clear(&st->cache);
	rc = spawn_start(probe_run_base(run), &o, exec_finished, st, &st->child);
	if (rc < 0) {
		st->child = NULL;
		start_failed(run, st, -rc);
		return;
	}
	throttle_ok(&st->spawn_throttle, NULL);
	st->run = run;
}

/* Detaches the child from its run; it is killed and reaped in the background. */
static void exec_cancel(struct probe_run *run, void *state)
{
	struct exec_state *st = state;

	(void)run;
	if (st->child == NULL)
		return;
	spawn_cancel(st->child);
	st->child = NULL;
	st->run = NULL;
}

static int parse_mode(struct cfg_map *options, struct exec_state *st)
{
	char *mode = NULL;
	char quoted[CFG_QUOTE_SIZE];
	int rc = cfg_get_string(options, "output", &mode);

	st->mode = EXEC_MODE_NAGIOS;
	if (rc <= 0)
		return rc;
	if (strcmp(mode, "prometheus") == 0) {
		st->mode = EXEC_MODE_PROMETHEUS;
	} else if (strcmp(mode, "nagios") != 0) {
		cfg_error(options, "output",
			  "%s is not an output format; expected nagios or "
			  "prometheus",
			  cfg_quote(mode, quoted, sizeof(quoted)));
		rc = -1;
	}
	free(mode);
	return rc;
}

static void exec_free(void *state);

static int exec_parse(struct cfg_map *options, void **state)
{
	struct exec_state *st = xcalloc(1, sizeof(*st));
	uint64_t size = 0;
	uint64_t ms = EXEC_KILL_AFTER_DEFAULT_MS;
	int failed = 0;
	int rc;

	throttle_init(&st->spawn_throttle, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	throttle_init(&st->perfdata_throttle, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	failed |= spawn_command_parse(options,
				      "[/usr/lib/nagios/plugins/check_load, -w, \"5,4,3\", -c, "
				      "\"10,8,6\"]",
				      NULL, &st->command) < 0;
	failed |= parse_mode(options, st) < 0;

	st->max_output = st->mode == EXEC_MODE_NAGIOS ? EXEC_NAGIOS_OUTPUT_DEFAULT
						      : EXEC_PROMETHEUS_OUTPUT_DEFAULT;
	rc = cfg_get_size(options, "max_output_size", &size);
	if (rc > 0 && (size < 1024 || size > 64u * 1024 * 1024)) {
		cfg_error(options, "max_output_size",
			  "%llu bytes is out of range; accepted: 1KiB "
			  "to 64MiB",
			  (unsigned long long)size);
		rc = -1;
	}
	if (rc > 0)
		st->max_output = (size_t)size;
	failed |= rc < 0;

	rc = cfg_get_duration_ms(options, "kill_after", &ms);
	if (rc > 0 && ms > 60000) {
		cfg_error(options, "kill_after", "%llu ms is out of range; accepted: 0s to 60s",
			  (unsigned long long)ms);
		rc = -1;
	}
	st->kill_after_ms = ms;
	failed |= rc < 0;

	if (failed) {
		exec_free(st);
		return -1;
	}
	*state = st;
	return 0;
}

static void exec_free(void *state)
{
	struct exec_state *st = state;

	if (st == NULL)
		return;
	/* The scheduler cancels a run before freeing its probe; this is a safety net. */
	exec_cancel(st->run, st);
	exec_metric_cache_clear(&st->cache);
	spawn_command_clear(&st->command);
	free(st);
}

const struct probe_type probe_type_exec = {
    .name = "exec",
    .parse = exec_parse,
    .start = exec_start,
    .cancel = exec_cancel,
    .free = exec_free,
};
