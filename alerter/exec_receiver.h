/*
 * The `exec` receiver: a remediation command run when an alert fires, with the
 * notification's JSON on its stdin. A per-alert rate limit and a restart-loop guard
 * (at most max_runs runs per alert within max_runs_window) keep a command that does not
 * fix the problem from running forever. Loop thread only.
 */
#ifndef TOCSIN_EXEC_RECEIVER_H
#define TOCSIN_EXEC_RECEIVER_H

#include "alerter/receiver.h"

/*
 * The `exec` receiver type, listed in alerter/receiver.c. An operation in flight points
 * into its receiver's state, so free() must come after every operation ended or was
 * cancelled. The rate limit and guard history lives in the state, so a config reload,
 * which parses a new state, starts it afresh.
 */
extern const struct receiver_type receiver_exec;

#define EXEC_RECEIVER_DEFAULT_TIMEOUT_MS    30000u
#define EXEC_RECEIVER_DEFAULT_RATE_LIMIT_MS (5u * 60 * 1000)
#define EXEC_RECEIVER_DEFAULT_MAX_RUNS      3
#define EXEC_RECEIVER_DEFAULT_WINDOW_MS     (10u * 60 * 1000)
/* Upper bound of max_runs: the guard keeps this many run times per alert. */
#define EXEC_RECEIVER_MAX_RUNS_LIMIT 1000

#endif
