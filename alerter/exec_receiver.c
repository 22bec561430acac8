/*
 * The `exec` receiver: runs a remediation command (argv, no shell) through
 * probes/spawn.c, with the notification's stored JSON on stdin and TOCSIN_* variables
 * naming it. Exit status 0 delivers. A non-zero exit, a signal or the timeout are retried
 * with the alerter's back-off, and a program that cannot be executed fails permanently.
 *
 * Two limits keep a command from running in a loop. rate_limit is the minimum time
 * between two runs for the same alert; a notification whose alerts all ran more recently
 * succeeds without running anything, except a retry of the notification that ran last
 * (same idempotency key), which would otherwise never be retried. The guard, like Monit's
 * restart-loop check, counts the runs per alert within max_runs_window: once an alert ran
 * max_runs times in it, the command is not run and the delivery fails permanently, until
 * the oldest of those runs leaves the window. An alert is tracked per fingerprint and
 * status, so that a resolved notification is not held back by the firing one.
 */
#include "alerter/exec_receiver.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerter/notification.h"
#include "collector/cfg.h"
#include "collector/log.h"
#include "collector/throttle.h"
#include "collector/units.h"
#include "collector/xalloc.h"
#include "probes/spawn.h"

/* stderr bytes kept; the detail quotes the first line of them. */
#define EXEC_RECEIVER_STDERR_MAX 1024
/* Bytes of the first stderr line quoted in an outcome's detail. */
#define EXEC_RECEIVER_DETAIL_LINE 300

/* The runs of one alert, for the rate limit and the guard. */
struct exec_history {
	uint64_t fingerprint;
	bool firing;
	uint64_t last_run_ms; /* monotonic */
	char *last_key;       /* idempotency key of the last run */
	uint64_t *runs;       /* ring of the last max_runs run times; NULL without a guard */
	size_t run_count;     /* filled slots, up to max_runs */
	size_t run_next;      /* the slot written next: the oldest once the ring is full */
	bool guard_logged;    /* the guard's error line was written since the last run */
};

struct exec_receiver_state {
	struct spawn_command command;
	uint64_t timeout_ms;
	bool send_resolved;
	uint64_t rate_limit_ms; /* 0: no rate limit */
	size_t max_runs;        /* 0: no guard */
	uint64_t window_ms;
	struct exec_history *history; /* sorted by fingerprint, then firing */
	size_t history_count;
	struct throttle failure_log;
};

/* One delivery in flight; handed out as the opaque struct receiver_op. */
struct exec_op {
	struct exec_receiver_state *st;
	struct spawn_child *child; /* NULL for an outcome decided without running */
	struct event *timer;       /* the timeout, or the deferred done() of a decided outcome */
	struct delivery_outcome outcome;
	uint64_t timeout_ms;
	receiver_done_fn *done;
	void *arg;
	char ids[512];
};

static void outcome_set(struct delivery_outcome *o, enum delivery_result result, const char *reason,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void outcome_set(struct delivery_outcome *o, enum delivery_result result, const char *reason,
			const char *fmt, ...)
{
	va_list ap;

	o->result = result;
	o->retry_after_ms = 0;
	snprintf(o->reason, sizeof(o->reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(o->detail, sizeof(o->detail), fmt, ap);
	va_end(ap);
}

static const char *label_value(const struct label *labels, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(labels[i].name, name) == 0)
			return labels[i].value;
	return "";
}

static const char *alert_name(const struct notification_alert *a)
{
	return label_value(a->labels, a->label_count, "alertname");
}

/* ---- the run history: rate limit and guard ---- */

static int history_compare(uint64_t fingerprint, bool firing, const struct exec_history *h)
{
	if (fingerprint != h->fingerprint)
		return fingerprint < h->fingerprint ? -1 : 1;
	if (firing != h->firing)
		return firing ? 1 : -1;
	return 0;
}

/* Returns the index of the entry, or where it would be inserted with *found false. */
static size_t history_search(const struct exec_receiver_state *st, uint64_t fingerprint,
			     bool firing, bool *found)
{
	size_t low = 0;
	size_t high = st->history_count;

	while (low < high) {
		size_t mid = low + (high - low) / 2;
		int c = history_compare(fingerprint, firing, &st->history[mid]);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			high = mid;
		else
			low = mid + 1;
	}
	*found = false;
	return low;
}

static struct exec_history *history_find(struct exec_receiver_state *st, uint64_t fingerprint,
					 bool firing)
{
	bool found;
	size_t i = history_search(st, fingerprint, firing, &found);

	return found ? &st->history[i] : NULL;
}

static struct exec_history *history_get(struct exec_receiver_state *st, uint64_t fingerprint,
					bool firing)
{
	bool found;
	size_t i = history_search(st, fingerprint, firing, &found);
	struct exec_history *h;

	if (found)
		return &st->history[i];
	st->history = xrealloc(st->history, (st->history_count + 1) * sizeof(*st->history));
	memmove(&st->history[i + 1], &st->history[i],
		(st->history_count - i) * sizeof(*st->history));
	st->history_count++;
	h = &st->history[i];
	memset(h, 0, sizeof(*h));
	h->fingerprint = fingerprint;
	h->firing = firing;
	if (st->max_runs > 0)
		h->runs = xcalloc(st->max_runs, sizeof(*h->runs));
	return h;
}

/* Drops the entries that neither the rate limit nor the guard can use any more. */
static void history_prune(struct exec_receiver_state *st, uint64_t now_ms)
{
	uint64_t keep_ms = st->rate_limit_ms;
	size_t kept = 0;

	if (st->max_runs > 0 && st->window_ms > keep_ms)
		keep_ms = st->window_ms;
	for (size_t i = 0; i < st->history_count; i++) {
		struct exec_history *h = &st->history[i];

		if (now_ms - h->last_run_ms < keep_ms) {
			st->history[kept++] = *h;
			continue;
		}
		free(h->last_key);
		free(h->runs);
	}
	st->history_count = kept;
}

static bool history_rate_limited(const struct exec_receiver_state *st, const struct exec_history *h,
				 const char *key, uint64_t now_ms)
{
	if (h == NULL || st->rate_limit_ms == 0 || now_ms - h->last_run_ms >= st->rate_limit_ms)
		return false;
	/* A retry of the notification that ran last is not a new run of the alert. */
	return h->last_key == NULL || strcmp(h->last_key, key) != 0;
}

/* Returns the ms until the guard lets the alert run again, 0 when it may run now. */
static uint64_t history_guard_wait(const struct exec_receiver_state *st,
				   const struct exec_history *h, uint64_t now_ms)
{
	uint64_t oldest;

	if (h == NULL || st->max_runs == 0 || h->run_count < st->max_runs)
		return 0;
	oldest = h->runs[h->run_next];
	return now_ms - oldest < st->window_ms ? oldest + st->window_ms - now_ms : 0;
}

static void history_record(struct exec_receiver_state *st, uint64_t fingerprint, bool firing,
			   const char *key, uint64_t now_ms)
{
	struct exec_history *h = history_get(st, fingerprint, firing);

	h->last_run_ms = now_ms;
	free(h->last_key);
	h->last_key = xstrdup(key);
	h->guard_logged = false;
	if (st->max_runs == 0)
		return;
	h->runs[h->run_next] = now_ms;
	h->run_next = (h->run_next + 1) % st->max_runs;
	if (h->run_count < st->max_runs)
		h->run_count++;
}

/* The alerts that can run the command: the firing ones, and with send_resolved the
 * resolved ones too. */
static bool alert_considered(const struct exec_receiver_state *st,
			     const struct notification_alert *a)
{
	return a->firing || st->send_resolved;
}

static void log_guard(const struct exec_receiver_state *st, const struct notification *n,
		      const struct notification_alert *a, uint64_t wait_ms)
{
	char ids[512];
	char fingerprint[17];
	char window[32];
	char wait[32];

	snprintf(fingerprint, sizeof(fingerprint), "%016llx", (unsigned long long)a->fingerprint);
	log_ids(ids, sizeof(ids), "receiver", n->receiver != NULL ? n->receiver : "", "alert",
		alert_name(a), "fingerprint", fingerprint, NULL);
	log_error("exec", ids,
		  "guard stopped the command: it ran %zu times within %s for this %s alert; it is "
		  "not run again for it until the window has passed, in %s",
		  st->max_runs, units_format_duration(st->window_ms, window, sizeof(window)),
		  a->firing ? "firing" : "resolved",
		  units_format_duration(wait_ms, wait, sizeof(wait)));
}

/*
 * Decides whether n runs the command: returns true to run it, or false with the outcome
 * in *o. The caller records the run with exec_record() once the command started.
 */
static bool exec_admit(struct exec_receiver_state *st, const struct notification *n,
		       uint64_t now_ms, struct delivery_outcome *o)
{
	const char *key = n->idempotency_key != NULL ? n->idempotency_key : "";
	size_t due = 0;
	size_t guarded = 0;
	uint64_t guard_wait = 0;

	if (!n->firing && !st->send_resolved) {
		outcome_set(o, DELIVERY_OK, "not_firing",
			    "no alert is firing and send_resolved is false; nothing was run");
		return false;
	}
	history_prune(st, now_ms);
	for (size_t i = 0; i < n->alert_count; i++) {
		const struct notification_alert *a = &n->alerts[i];
		struct exec_history *h;
		uint64_t wait;

		if (!alert_considered(st, a))
			continue;
		h = history_find(st, a->fingerprint, a->firing);
		if (history_rate_limited(st, h, key, now_ms))
			continue;
		due++;
		wait = history_guard_wait(st, h, now_ms);
		if (wait == 0)
			continue;
		guarded++;
		if (wait > guard_wait)
			guard_wait = wait;
		if (!h->guard_logged)
			log_guard(st, n, a, wait);
		h->guard_logged = true;
	}
	if (guarded > 0) {
		char window[32];
		char wait[32];

		outcome_set(o, DELIVERY_PERMANENT, "guard",
			    "guard: %zu alert(s) already ran the command %zu times within %s; "
			    "not run, the next run is possible in %s",
			    guarded, st->max_runs,
			    units_format_duration(st->window_ms, window, sizeof(window)),
			    units_format_duration(guard_wait, wait, sizeof(wait)));
		return false;
	}
	if (due == 0) {
		char limit[32];

		outcome_set(o, DELIVERY_OK, "rate_limited",
			    "every alert ran the command less than rate_limit %s ago; nothing was "
			    "run",
			    units_format_duration(st->rate_limit_ms, limit, sizeof(limit)));
		return false;
	}
	return true;
}

/* Records a run for each alert of n that exec_admit() found due. */
static void exec_record(struct exec_receiver_state *st, const struct notification *n,
			uint64_t now_ms)
{
	const char *key = n->idempotency_key != NULL ? n->idempotency_key : "";

	for (size_t i = 0; i < n->alert_count; i++) {
		const struct notification_alert *a = &n->alerts[i];

		if (alert_considered(st, a) &&
		    !history_rate_limited(st, history_find(st, a->fingerprint, a->firing), key,
					  now_ms))
			history_record(st, a->fingerprint, a->firing, key, now_ms);
	}
}

/* ---- running the command ---- */

static void log_result(struct exec_op *op, const struct delivery_outcome *o)
{
	uint64_t suppressed = 0;
	uint64_t failures = 0;

	if (o->result == DELIVERY_OK) {
		if (throttle_ok(&op->st->failure_log, &failures))
			log_info("exec", op->ids, "command succeeded again after %llu failures",
				 (unsigned long long)failures);
		log_info("exec", op->ids, "command %s succeeded (%s)", op->st->command.argv[0],
			 o->detail);
		return;
	}
	if (throttle_fail(&op->st->failure_log, spawn_now_ms(), &suppressed))
		log_warn("exec", op->ids, "command %s failed: %s (%s; %llu similar suppressed)",
			 op->st->command.argv[0], o->reason, o->detail,
			 (unsigned long long)suppressed);
}

/* Appends ": " and the first line of text, control characters as spaces, cut on a UTF-8
 * sequence boundary. */
static void detail_add_line(char *detail, size_t size, const char *text, size_t length)
{
	size_t used = strlen(detail);
	size_t n = 0;

	while (n < length && text[n] != '\n' && text[n] != '\r')
		n++;
	if (n > EXEC_RECEIVER_DETAIL_LINE) {
		n = EXEC_RECEIVER_DETAIL_LINE;
		while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
			n--;
	}
	if (n == 0 || used + 3 >= size)
		return;
	memcpy(detail + used, ": ", 2);
	used += 2;
	for (size_t i = 0; i < n && used + 1 < size; i++) {
		unsigned char c = (unsigned char)text[i];

		detail[used++] = c < 0x20 || c == 0x7F ? ' ' : (char)c;
	}
	detail[used] = '\0';
}

static void op_free(struct exec_op *op)
{
	if (op->timer != NULL)
		event_free(op->timer);
	free(op);
}

static void op_finish(struct exec_op *op, const struct delivery_outcome *o)
{
	op->done(op->arg, o);
	op_free(op);
}

static void exec_finished(void *arg, const struct spawn_result *r)
{
	struct exec_op *op = arg;
	struct delivery_outcome o;

	op->child = NULL;
	if (r->signal != 0) {
		outcome_set(&o, DELIVERY_RETRY, "signal", "killed by signal %d (%s)", r->signal,
			    strsignal(r->signal));
	} else if (r->exit_code == 0) {
		outcome_set(&o, DELIVERY_OK, "exit_0", "exit status 0");
	} else {
		char reason[16];

		snprintf(reason, sizeof(reason), "exit_%d", r->exit_code);
		outcome_set(&o, DELIVERY_RETRY, reason, "exit status %d", r->exit_code);
	}
	detail_add_line(o.detail, sizeof(o.detail), r->err, r->err_length);
	log_result(op, &o);
	if (r->output_held)
		log_debug("exec", op->ids,
			  "a process left by the command kept its output open %d ms after it "
			  "exited; killed its process group",
			  SPAWN_DRAIN_MS);
	op_finish(op, &o);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct exec_op *op = arg;
	char limit[32];

	(void)fd;
	(void)what;
	if (op->child != NULL) {
		/* kill_after_ms is 0: SIGKILL follows the SIGTERM at once. */
		spawn_cancel(op->child);
		op->child = NULL;
		outcome_set(&op->outcome, DELIVERY_RETRY, "timeout",
			    "the command did not finish within %s; killed its process group",
			    units_format_duration(op->timeout_ms, limit, sizeof(limit)));
		log_result(op, &op->outcome);
	} else if (op->outcome.result == DELIVERY_OK) {
		/* The guard logs its own error line; rate_limited and not_firing are routine. */
		log_debug("exec", op->ids, "command not run: %s", op->outcome.detail);
	}
	op_finish(op, &op->outcome);
}

static int arm_timer(struct exec_op *op, struct event_base *base, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	op->timer = evtimer_new(base, on_timer, op);
	if (op->timer == NULL || evtimer_add(op->timer, &tv) < 0)
		return -1;
	return 0;
}

/* The spawn errors that retrying cannot fix: the program is missing or not executable. */
static bool spawn_error_permanent(int err)
{
	return err == ENOENT || err == ENOTDIR || err == EACCES || err == EPERM || err == ENOEXEC ||
	       err == ELOOP || err == ENAMETOOLONG;
}

/* Starts the command for n; returns 0, or -1 with the outcome in *failed. */
static int exec_spawn(struct exec_op *op, struct event_base *base, const struct notification *n,
		      struct delivery_outcome *failed)
{
	const char *names[] = {"TOCSIN_RECEIVER", "TOCSIN_GROUP_KEY", "TOCSIN_IDEMPOTENCY_KEY",
			       "TOCSIN_STATUS", "TOCSIN_ALERTNAME"};
	const char *values[] = {
	    n->receiver != NULL ? n->receiver : "",
	    n->group_key != NULL ? n->group_key : "",
	    n->idempotency_key != NULL ? n->idempotency_key : "",
	    n->firing ? "firing" : "resolved",
	    n->alert_count > 0 ? alert_name(&n->alerts[0]) : "",
	};
	char **envp = spawn_env_set(op->st->command.envp, names, values, 5);
	char *json = notification_to_json(n);
	struct spawn_command command = op->st->command;
	struct spawn_options o = {
	    .command = &command,
	    .input = json,
	    .input_length = strlen(json),
	    .max_output = 0, /* stdout is read and dropped */
	    .max_error = EXEC_RECEIVER_STDERR_MAX,
	    .kill_after_ms = 0,
	};
	int rc;

	command.envp = envp;
	rc = spawn_start(base, &o, exec_finished, op, &op->child);
	free(json);
	cfg_strv_free(envp);
	if (rc < 0) {
		op->child = NULL;
		outcome_set(
		    failed, spawn_error_permanent(-rc) ? DELIVERY_PERMANENT : DELIVERY_RETRY,
		    "spawn", "cannot execute %s: %s", op->st->command.argv[0], strerror(-rc));
		return -1;
	}
	return 0;
}

static struct receiver_op *exec_send(void *state, struct event_base *base,
				     const struct notification *n, int64_t timeout_ms,
				     receiver_done_fn *done, void *arg,
				     struct delivery_outcome *failed)
{
	struct exec_receiver_state *st = state;
	struct exec_op *op = xcalloc(1, sizeof(*op));
	uint64_t now_ms;

	op->st = st;
	op->done = done;
	op->arg = arg;
	op->timeout_ms = st->timeout_ms;
	if (timeout_ms > 0 && (uint64_t)timeout_ms < op->timeout_ms)
		op->timeout_ms = (uint64_t)timeout_ms;
	log_ids(op->ids, sizeof(op->ids), "receiver", n->receiver != NULL ? n->receiver : "",
		"idempotency_key", n->idempotency_key != NULL ? n->idempotency_key : "", NULL);

	/* An outcome decided without running still reaches done() from the loop, not from
	 * inside send(). */
	now_ms = spawn_now_ms();
	if (!exec_admit(st, n, now_ms, &op->outcome)) {
		if (arm_timer(op, base, 0) < 0)
			goto internal;
		return (struct receiver_op *)op;
	}
	if (exec_spawn(op, base, n, failed) < 0) {
		log_result(op, failed);
		op_free(op);
		return NULL;
	}
	exec_record(st, n, now_ms);
	if (arm_timer(op, base, op->timeout_ms) < 0) {
		spawn_cancel(op->child);
		goto internal;
	}
	return (struct receiver_op *)op;

internal:
	outcome_set(failed, DELIVERY_RETRY, "internal", "cannot add a timer to the event loop");
	op_free(op);
	return NULL;
}

static void exec_cancel(struct receiver_op *handle)
{
	struct exec_op *op = (struct exec_op *)handle;

	if (op == NULL)
		return;
	if (op->child != NULL)
		spawn_cancel(op->child);
	op_free(op);
}

/* ---- options ---- */

static void exec_free(void *state)
{
	struct exec_receiver_state *st = state;

	if (st == NULL)
		return;
	spawn_command_clear(&st->command);
	for (size_t i = 0; i < st->history_count; i++) {
		free(st->history[i].last_key);
		free(st->history[i].runs);
	}
	free(st->history);
	free(st);
}

static int parse_limits(struct cfg_map *m, struct exec_receiver_state *st)
{
	int64_t max_runs = EXEC_RECEIVER_DEFAULT_MAX_RUNS;
	int failed = 0;
	int rc;

	if (cfg_get_duration_ms(m, "rate_limit", &st->rate_limit_ms) < 0)
		failed = -1;
	if (cfg_get_int(m, "max_runs", 0, EXEC_RECEIVER_MAX_RUNS_LIMIT, &max_runs) < 0)
		failed = -1;
	st->max_runs = (size_t)max_runs;
	rc = cfg_get_duration_ms(m, "max_runs_window", &st->window_ms);
	if (rc < 0) {
		failed = -1;
	} else if (rc == 1 && st->window_ms == 0) {
		cfg_error(m, "max_runs_window",
			  "must be longer than 0s; to turn the guard off, set max_runs: 0");
		failed = -1;
	}
	return failed;
}

static int exec_parse(struct cfg_map *m, void **state)
{
	struct exec_receiver_state *st = xcalloc(1, sizeof(*st));
	int failed = 0;
	int rc;

	st->timeout_ms = EXEC_RECEIVER_DEFAULT_TIMEOUT_MS;
	st->rate_limit_ms = EXEC_RECEIVER_DEFAULT_RATE_LIMIT_MS;
	st->window_ms = EXEC_RECEIVER_DEFAULT_WINDOW_MS;
	throttle_init(&st->failure_log, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	if (spawn_command_parse(m, "[/usr/local/sbin/restart-service, nginx]", "TOCSIN_",
				&st->command) < 0)
		failed = -1;
	rc = cfg_get_duration_ms(m, "timeout", &st->timeout_ms);
	if (rc < 0) {
		failed = -1;
	} else if (rc == 1 && st->timeout_ms == 0) {
		cfg_error(m, "timeout", "must be longer than 0s; the default is 30s");
		failed = -1;
	}
	if (cfg_get_bool(m, "send_resolved", &st->send_resolved) < 0)
		failed = -1;
	if (parse_limits(m, st) < 0)
		failed = -1;
	if (failed < 0) {
		exec_free(st);
		return -1;
	}
	*state = st;
	return 0;
}

const struct receiver_type receiver_exec = {
    .name = "exec",
    .parse = exec_parse,
    .free = exec_free,
    .send = exec_send,
    .cancel = exec_cancel,
};
