/*
 * Unit tests of the `exec` receiver with real commands: small shell scripts written to a
 * temporary directory and run on a libevent loop. They cover every outcome: exit 0, exit
 * 1, a signal, the timeout (whose background child must die too), and a missing or
 * non-executable program. They also check what the command receives (stdin, environment,
 * working directory), the per-alert rate limit, the restart-loop guard and its one log
 * line, send_resolved, cancel, and the option errors.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alerter/exec_receiver.h"
#include "alerter/notification.h"
#include "alerter/receiver.h"
#include "collector/cfg.h"
#include "collector/log.h"

/* Upper bound of one test's wait for an outcome or a process to disappear. */
#define WAIT_MS 10000

/* One loop for every test: the spawn module watches SIGCHLD on the first base it is given. */
static struct event_base *base;
static char dir[64];
static int log_fd = -1;
static char log_path[128];

struct attempt {
	struct delivery_outcome outcome;
	int calls;
};

static struct label labels_disk[] = {
    {"alertname", "DiskFull"},
    {"instance", "db1"},
};
static struct label labels_load[] = {
    {"alertname", "HighLoad"},
    {"instance", "web1"},
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Runs what is ready on the loop, then pauses a little: a bounded, polling wait step. */
static void loop_briefly(void)
{
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	sleep_ms(2);
}

static char *path_in_dir(const char *name)
{
	char *path = NULL;

	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	return path;
}

static void write_file(const char *name, const char *text, mode_t mode)
{
	char *path = path_in_dir(name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
	free(path);
}

/* The whole file, NUL-terminated, or NULL when it does not exist. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text;
	long size;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = calloc(1, (size_t)size + 1);
	assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	return text;
}

static char *read_in_dir(const char *name)
{
	char *path = path_in_dir(name);
	char *text = read_file(path);

	free(path);
	return text;
}

/* Lines of the runs file that the counting script appends to: one per run. */
static int runs_in_dir(void)
{
	char *text = read_in_dir("runs");
	int lines = 0;

	for (const char *p = text; p != NULL && *p != '\0'; p++)
		lines += *p == '\n';
	free(text);
	return lines;
}

static size_t count_substring(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; p != NULL && (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* Returns text with every "DIR" replaced by the temp dir. */
static char *expand_dir(const char *text)
{
	size_t length = strlen(text) + count_substring(text, "DIR") * strlen(dir) + 1;
	char *out = calloc(1, length);
	char *w = out;

	while (*text != '\0') {
		if (strncmp(text, "DIR", 3) == 0) {
			w = stpcpy(w, dir);
			text += 3;
		} else {
			*w++ = *text++;
		}
	}
	return out;
}

/* Parses `yaml` as the options of an exec receiver, DIR standing for the temp dir. */
static void *parse_options(const char *yaml)
{
	char *text = expand_dir(yaml);
	struct cfg *cfg;
	struct cfg_map root;
	void *state = NULL;

	cfg = cfg_parse_string("t.yml", text, strlen(text));
	assert_int_equal(cfg_root(cfg, &root), 0);
	assert_int_equal(receiver_exec.parse(&root, &state), 0);
	cfg_map_finish(&root);
	if (cfg_error_count(cfg) != 0)
		print_error("unexpected errors:\n%s\n", cfg_errors(cfg));
	assert_int_equal(cfg_error_count(cfg), 0);
	cfg_free(cfg);
	free(text);
	return state;
}

static void attempt_done(void *arg, const struct delivery_outcome *outcome)
{
	struct attempt *at = arg;

	at->outcome = *outcome;
	at->calls++;
}

/* Runs the loop until done() was called; fails after WAIT_MS. */
static void wait_done(struct attempt *at)
{
	uint64_t deadline = now_ms() + WAIT_MS;

	while (at->calls == 0 && now_ms() < deadline)
		loop_briefly();
	assert_int_equal(at->calls, 1);
}

/* Sends n and waits for its outcome; the outcome of a send() that returned NULL is
 * returned the same way. */
static struct delivery_outcome deliver(void *state, const struct notification *n,
				       int64_t timeout_ms)
{
	struct attempt at = {0};
	struct delivery_outcome failed = {0};
	struct receiver_op *op =
	    receiver_exec.send(state, base, n, timeout_ms, attempt_done, &at, &failed);

	if (op == NULL) {
		assert_int_equal(at.calls, 0);
		return failed;
	}
	/* done() never comes from inside send(). */
	assert_int_equal(at.calls, 0);
	wait_done(&at);
	return at.outcome;
}

static struct notification_alert make_alert(struct label *labels, uint64_t fingerprint, bool firing)
{
	return (struct notification_alert){
	    .labels = labels,
	    .label_count = 2,
	    .firing = firing,
	    .starts_at_ms = 1714558050000,
	    .ends_at_ms = firing ? 0 : 1714558110000,
	    .fingerprint = fingerprint,
	};
}

static struct notification make_notification(struct notification_alert *alerts, size_t count,
					     const char *key)
{
	struct notification n = {
	    .receiver = "ops",
	    .group_key = "{}:{alertname=\"DiskFull\"}",
	    .sequence = 1,
	    .idempotency_key = (char *)key,
	    .alerts = alerts,
	    .alert_count = count,
	    .created_ms = 1714558060000,
	};

	for (size_t i = 0; i < count; i++)
		n.firing |= alerts[i].firing;
	return n;
}

static int setup(void **state)
{
	(void)state;
	base = event_base_new();
	assert_non_null(base);
	snprintf(dir, sizeof(dir), "/tmp/tocsin-exec-receiver-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(log_path, sizeof(log_path), "%s/log", dir);
	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	assert_true(log_fd >= 0);
	log_set_fd(log_fd);
	/* Appends one line per run, for the rate limit and guard tests. */
	write_file("count.sh", "#!/bin/sh\necho run >> \"$1/runs\"\n", 0755);
	return 0;
}

static int teardown(void **state)
{
	char *command = NULL;

	(void)state;
	log_set_fd(2);
	close(log_fd);
	assert_true(asprintf(&command, "rm -rf '%s'", dir) > 0);
	assert_int_equal(system(command), 0);
	free(command);
	event_base_free(base);
	return 0;
}

/* Empties the runs file between tests. */
static int reset_runs(void **state)
{
	char *path = path_in_dir("runs");

	(void)state;
	unlink(path);
	free(path);
	return 0;
}

static void exit_zero_receives_input(void **unused)
{
	void *state;
	struct notification_alert alerts[2] = {
	    make_alert(labels_disk, 1, true),
	    make_alert(labels_load, 2, false),
	};
	struct notification n = make_notification(alerts, 2, "group/1");
	struct delivery_outcome o;
	char *json = notification_to_json(&n);
	char *text;

	(void)unused;
	write_file("capture.sh",
		   "#!/bin/sh\n"
		   "cat > \"$1/stdin.json\"\n"
		   "{ echo \"receiver=$TOCSIN_RECEIVER\"; echo \"group=$TOCSIN_GROUP_KEY\";\n"
		   "  echo \"key=$TOCSIN_IDEMPOTENCY_KEY\"; echo \"status=$TOCSIN_STATUS\";\n"
		   "  echo \"alertname=$TOCSIN_ALERTNAME\"; echo \"extra=$EXTRA\";\n"
		   "  echo \"args=$#:$2\"; echo \"pwd=$(pwd)\"; } > \"$1/env.txt\"\n"
		   "echo 'just a note' >&2\n",
		   0755);
	state = parse_options("command: [DIR/capture.sh, DIR, \"two words\"]\n"
			      "env: {EXTRA: from-config}\n"
			      "working_dir: /tmp\n");
	o = deliver(state, &n, 0);
	assert_int_equal(o.result, DELIVERY_OK);
	assert_string_equal(o.reason, "exit_0");
	assert_string_equal(o.detail, "exit status 0: just a note");

	text = read_in_dir("stdin.json");
	assert_non_null(text);
	assert_string_equal(text, json);
	free(text);
	text = read_in_dir("env.txt");
	assert_non_null(text);
	assert_string_equal(text, "receiver=ops\n"
				  "group={}:{alertname=\"DiskFull\"}\n"
				  "key=group/1\n"
				  "status=firing\n"
				  "alertname=DiskFull\n"
				  "extra=from-config\n"
				  "args=2:two words\n"
				  "pwd=/tmp\n");
	free(text);
	free(json);
	receiver_exec.free(state);
}

/* Input larger than a pipe buffer is written as the command reads it. */
static void large_input_complete(void **unused)
{
	size_t size = 300 * 1024;
	char *big = malloc(size + 1);
	struct label annotations[] = {{"description", big}};
	struct notification_alert alert = make_alert(labels_disk, 1, true);
	struct notification n = make_notification(&alert, 1, "group/1");
	struct delivery_outcome o;
	char *json;
	char *text;
	char expected[32];
	void *state;

	(void)unused;
	memset(big, 'x', size);
	big[size] = '\0';
	alert.annotations = annotations;
	alert.annotation_count = 1;
	json = notification_to_json(&n);
	snprintf(expected, sizeof(expected), "%zu\n", strlen(json));
	write_file("wc.sh", "#!/bin/sh\nsleep 0.2\nwc -c | tr -d ' ' > \"$1/size\"\n", 0755);
	state = parse_options("command: [DIR/wc.sh, DIR]\n");
	o = deliver(state, &n, 0);
	assert_int_equal(o.result, DELIVERY_OK);
	text = read_in_dir("size");
	assert_non_null(text);
	assert_string_equal(text, expected);
	free(text);
	receiver_exec.free(state);

	/* A command that exits without reading its input (EPIPE) still succeeds. */
	write_file("noread.sh", "#!/bin/sh\nexit 0\n", 0755);
	state = parse_options("command: [DIR/noread.sh]\n");
	o = deliver(state, &n, 0);
	assert_int_equal(o.result, DELIVERY_OK);
	assert_string_equal(o.reason, "exit_0");
	free(json);
	free(big);
	receiver_exec.free(state);
}

static void exit_one_retries(void **unused)
{
	struct notification_alert alert = make_alert(labels_disk, 1, true);
	struct notification n = make_notification(&alert, 1, "group/1");
	struct delivery_outcome o;
	void *state;
	char *log;

	(void)unused;
	write_file("fail.sh",
		   "#!/bin/sh\nprintf 'service\\tnginx failed to restart\\nsecond line\\n' >&2\n"
		   "exit 1\n",
		   0755);
	state = parse_options("command: [DIR/fail.sh]\n");
	o = deliver(state, &n, 0);
	assert_int_equal(o.result, DELIVERY_RETRY);
	assert_string_equal(o.reason, "exit_1");
	assert_string_equal(o.detail, "exit status 1: service nginx failed to restart");
	log = read_file(log_path);
	assert_non_null(strstr(log, "level=warn module=exec receiver=ops idempotency_key=group/1"));
	free(log);
	receiver_exec.free(state);
}

static void signal_retries(void **unused)
{
	struct notification_alert alert = make_alert(labels_disk, 1, true);
	struct notification n = make_notification(&alert, 1, "group/1");
	struct delivery_outcome o;
	void *state;

	(void)unused;
	write_file("selfkill.sh", "#!/bin/sh\nkill -TERM $$\nsleep 5\n", 0755);
	state = parse_options("command: [DIR/selfkill.sh]\n");
	o = deliver(state, &n, 0);
	assert_int_equal(o.result, DELIVERY_RETRY);
	assert_string_equal(o.reason, "signal");
	assert_non_null(strstr(o.detail, "killed by signal 15"));
	receiver_exec.free(state);
}

/* Runs the loop until pid no longer exists (killed and reaped); fails after WAIT_MS. */
static void wait_gone(pid_t pid)
{
	uint64_t deadline = now_ms() + WAIT_MS;

	while (kill(pid, 0) == 0 && now_ms() < deadline)
		loop_briefly();
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
}

/* Waits for the script to write its background child's pid. */
static pid_t read_pid(const char *name)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	char *text = NULL;
	pid_t pid;

	while ((text = read_in_dir(name)) == NULL || strchr(text, '\n') == NULL) {
		free(text);
		text = NULL;
		assert_true(now_ms() < deadline);
		sleep_ms(5);
	}
	pid = (pid_t)strtol(text, NULL, 10);
	free(text);
	assert_true(pid > 0);
	return pid;
}

static void timeout_kills_group(void **unused)
{
	struct notification_alert alert = make_alert(labels_disk, 1, true);
	struct notification n = make_notification(&alert, 1, "group/1");
	struct delivery_outcome o;
	uint64_t started;
	pid_t child;
	void *state;

	(void)unused;
	write_file("hang.sh", "#!/bin/sh\nsleep 60 &\necho $! > \"$1/hang.pid\"\nsleep 60\n", 0755);
	state = parse_options("command: [DIR/hang.sh, DIR]\ntimeout: 500ms\n");
	started = now_ms();
	o = deliver(state, &n, 0);
	assert_true(now_ms() - started < 3000);
	assert_int_equal(o.result, DELIVERY_RETRY);
	assert_string_equal(o.reason, "timeout");
	assert_string_equal(o.detail,
			    "the command did not finish within 500ms; killed its process group");
	child = read_pid("hang.pid");
	wait_gone(child);
	receiver_exec.free(state);
}

/* The attempt's own timeout wins when it is shorter than the option. */
static void attempt_timeout_shorter(void **unused)
{
	struct notification_alert alert = make_alert(labels_disk, 1, true);
	struct notification n = make_notification(&alert, 1, "group/1");
	struct delivery_outcome o;
	void *state;

	(void)unused;
	write_file("slow.sh", "#!/bin/sh\nsleep 60\n", 0755);
	state = parse_options("command: [DIR/slow.sh]\n");
	o = deliver(state, &n, 300);
	assert_string_equal(o.reason, "timeout");
	assert_non_null(strstr(o.detail, "within 300ms"));
	receiver_exec.free(state);
}

static void cancel_kills_command(void **unused)
{
	struct notification_alert alert = make_alert(labels_disk, 1, true);
	struct notification n = make_notification(&alert, 1, "group/cancel");
	struct attempt at = {0};
	struct delivery_outcome failed = {0};
	struct receiver_op *op;
	uint64_t until;
	pid_t child;
	void *state;

	(void)unused;
	write_file("hang2.sh", "#!/bin/sh\nsleep 60 &\necho $! > \"$1/hang2.pid\"\nsleep 60\n",
		   0755);
	state = parse_options("command: [DIR/hang2.sh, DIR]\n");
	op = receiver_exec.send(state, base, &n, 0, attempt_done, &at, &failed);
	assert_non_null(op);
	child = read_pid("hang2.pid");
	receiver_exec.cancel(op);
	wait_gone(child);
	until = now_ms() + 300;
	while (now_ms() < until)
		loop_briefly();
	assert_int_equal(at.calls, 0);
	receiver_exec.free(state);
}

static void unrunnable_program_permanent(void **unused)
{
	struct notification_alert alert = make_alert(labels_disk, 1, true);
	struct notification n = make_notification(&alert, 1, "group/1");
	struct delivery_outcome o;
	void *state;

	(void)unused;
	state = parse_options("command: [DIR/missing.sh]\n");
	o = deliver(state, &n, 0);
	assert_int_equal(o.result, DELIVERY_PERMANENT);
	assert_string_equal(o.reason, "spawn");
	assert_non_null(strstr(o.detail, "No such file or directory"));
	receiver_exec.free(state);

	/* root may read a mode 0644 file but not execute it. */
	write_file("plain.sh", "#!/bin/sh\nexit 0\n", 0644);
	state = parse_options("command: [DIR/plain.sh]\n");
	o = deliver(state, &n, 0);
	assert_int_equal(o.result, DELIVERY_PERMANENT);
	assert_string_equal(o.reason, "spawn");
	assert_non_null(strstr(o.detail, "Permission denied"));
	receiver_exec.free(state);
}

static void rate_limit_per_alert(void **unused)
{
	struct notification_alert disk = make_alert(labels_disk, 1, true);
	struct notification_alert load = make_alert(labels_load, 2, true);
	struct notification first = make_notification(&disk, 1, "g/1");
	struct notification second = make_notification(&disk, 1, "g/2");
	struct notification other = make_notification(&load, 1, "h/1");
	struct notification later = make_notification(&disk, 1, "g/3");
	struct delivery_outcome o;
	void *state;

	(void)unused;
	state = parse_options("command: [DIR/count.sh, DIR]\n"
			      "rate_limit: 1s\nmax_runs: 0\n");
	o = deliver(state, &first, 0);
	assert_string_equal(o.reason, "exit_0");
	assert_int_equal(runs_in_dir(), 1);

	o = deliver(state, &second, 0);
	assert_int_equal(o.result, DELIVERY_OK);
	assert_string_equal(o.reason, "rate_limited");
	assert_int_equal(runs_in_dir(), 1);

	/* A retry of the notification that ran is not held back. */
	o = deliver(state, &first, 0);
	assert_string_equal(o.reason, "exit_0");
	assert_int_equal(runs_in_dir(), 2);

	/* Another alert has its own limit. */
	o = deliver(state, &other, 0);
	assert_string_equal(o.reason, "exit_0");
	assert_int_equal(runs_in_dir(), 3);

	sleep_ms(1100);
	o = deliver(state, &later, 0);
	assert_string_equal(o.reason, "exit_0");
	assert_int_equal(runs_in_dir(), 4);
	receiver_exec.free(state);
}

static void guard_stops_loop(void **unused)
{
	struct notification_alert disk = make_alert(labels_disk, 1, true);
	struct notification n = make_notification(&disk, 1, "g/1");
	struct delivery_outcome o;
	uint64_t first_run;
	void *state;
	char *log;

	(void)unused;
	assert_int_equal(ftruncate(log_fd, 0), 0);
	state = parse_options("command: [DIR/count.sh, DIR]\n"
			      "rate_limit: 0s\nmax_runs: 2\nmax_runs_window: 1500ms\n");
	first_run = now_ms();
	for (int i = 0; i < 2; i++) {
		o = deliver(state, &n, 0);
		assert_string_equal(o.reason, "exit_0");
	}
	assert_int_equal(runs_in_dir(), 2);

	for (int i = 0; i < 3; i++) {
		o = deliver(state, &n, 0);
		assert_int_equal(o.result, DELIVERY_PERMANENT);
		assert_string_equal(o.reason, "guard");
	}
	assert_int_equal(runs_in_dir(), 2);
	log = read_file(log_path);
	assert_int_equal(count_substring(log, "level=error"), 1);
	assert_int_equal(count_substring(log, "level=warn"), 0);
	assert_non_null(strstr(log, "level=error module=exec receiver=ops alert=DiskFull "
				    "fingerprint=0000000000000001 msg=\"guard stopped the command: "
				    "it ran 2 times within 1s500ms for this firing alert"));
	free(log);

	/* Once the first run has left the window, the command runs again. */
	while (now_ms() - first_run < 1600)
		sleep_ms(20);
	o = deliver(state, &n, 0);
	assert_string_equal(o.reason, "exit_0");
	assert_int_equal(runs_in_dir(), 3);
	receiver_exec.free(state);
}

static void resolved_needs_send_resolved(void **unused)
{
	struct notification_alert disk = make_alert(labels_disk, 1, false);
	struct notification n = make_notification(&disk, 1, "g/2");
	struct delivery_outcome o;
	void *state;
	char *text;

	(void)unused;
	write_file("status.sh", "#!/bin/sh\necho \"$TOCSIN_STATUS\" > \"$1/status\"\n", 0755);
	state = parse_options("command: [DIR/status.sh, DIR]\n");
	o = deliver(state, &n, 0);
	assert_int_equal(o.result, DELIVERY_OK);
	assert_string_equal(o.reason, "not_firing");
	assert_null(read_in_dir("status"));
	receiver_exec.free(state);

	state = parse_options("command: [DIR/status.sh, DIR]\nsend_resolved: true\n");
	o = deliver(state, &n, 0);
	assert_string_equal(o.reason, "exit_0");
	text = read_in_dir("status");
	assert_non_null(text);
	assert_string_equal(text, "resolved\n");
	free(text);
	receiver_exec.free(state);
}

static void option_errors(void **unused)
{
	static const struct {
		const char *yaml;
		const char *expected;
	} cases[] = {
	    {"timeout: 1s\n",
	     "t.yml:1:1: command: missing; give the program and its arguments as a list, such as "
	     "[/usr/local/sbin/restart-service, nginx]"},
	    {"command: [restart.sh]\n",
	     "t.yml:1:10: command: \"restart.sh\" is not an absolute path; commands run without a "
	     "shell or PATH search"},
	    {"command: [/bin/true]\nenv: {TOCSIN_STATUS: x}\n",
	     "t.yml:2:6: env: variable \"TOCSIN_STATUS\" is reserved: tocsin sets the TOCSIN_* "
	     "variables for every run; remove it"},
	    {"command: [/bin/true]\ntimeout: 0s\n",
	     "t.yml:2:10: timeout: must be longer than 0s; the default is 30s"},
	    {"command: [/bin/true]\nmax_runs_window: 0s\n",
	     "t.yml:2:18: max_runs_window: must be longer than 0s; to turn the guard off, set "
	     "max_runs: 0"},
	    {"command: [/bin/true]\nworking_dir: tmp\n",
	     "t.yml:2:14: working_dir: \"tmp\" is not an absolute path"},
	};

	(void)unused;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg *cfg = cfg_parse_string("t.yml", cases[i].yaml, strlen(cases[i].yaml));
		struct cfg_map root;
		void *state = NULL;

		assert_int_equal(cfg_root(cfg, &root), 0);
		assert_int_equal(receiver_exec.parse(&root, &state), -1);
		assert_null(state);
		cfg_map_finish(&root);
		if (strcmp(cfg_errors(cfg), cases[i].expected) != 0)
			print_error("case %zu got:\n%s\n", i, cfg_errors(cfg));
		assert_string_equal(cfg_errors(cfg), cases[i].expected);
		cfg_free(cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(exit_zero_receives_input),
	    cmocka_unit_test(large_input_complete),
	    cmocka_unit_test(exit_one_retries),
	    cmocka_unit_test(signal_retries),
	    cmocka_unit_test(timeout_kills_group),
	    cmocka_unit_test(attempt_timeout_shorter),
	    cmocka_unit_test(cancel_kills_command),
	    cmocka_unit_test(unrunnable_program_permanent),
	    cmocka_unit_test_setup(rate_limit_per_alert, reset_runs),
	    cmocka_unit_test_setup(guard_stops_loop, reset_runs),
	    cmocka_unit_test(resolved_needs_send_resolved),
	    cmocka_unit_test(option_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
