/*
 * The `exec` probe: runs a command from an argv list (no shell) and reads its result as a
 * Nagios plugin's or as Prometheus text exposition (probes/exec_output.c).
 *
 * Each run starts the command with posix_spawn (so a large daemon does not copy its
 * memory) in a process group of its own, with the signal mask and dispositions reset.
 * stdout and stderr come back through non-blocking pipes read on the loop. Children are
 * reaped from one SIGCHLD event per process: each outstanding child is polled with
 * waitid(WNOWAIT), which leaves it a zombie until tocsin is done with its process group,
 * so the group id cannot be reused while tocsin may still signal it. A run ends when the
 * command exited and both pipes reached end of file; when a descendant keeps a pipe open
 * after the command exited, the run ends EXEC_DRAIN_MS later and the group is killed.
 * On timeout the group gets SIGTERM, then SIGKILL after kill_after.
 *
 * A descendant can leave the group (setsid, setpgid) and outlive its command. At the
 * first run tocsind makes itself a child subreaper, so such orphans become its children:
 * when a command's group is killed, every child of tocsind that is neither a command nor
 * in a running command's group is killed too, and every zombie that is not a command's
 * is reaped at once. At exit (also after --once) the commands still running get the rest
 * of their kill_after after SIGTERM, then everything is killed and reaped before tocsind
 * returns, so nothing is left to PID 1.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collector/cfg.h"
#include "collector/log.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"
#include "probes/exec_output.h"
#include "probes/probe.h"

extern char **environ;

/* How long the output pipes may stay open after the command exited. */
#define EXEC_DRAIN_MS 1000
/* stderr is only kept for a reason line. */
#define EXEC_STDERR_MAX                1024
#define EXEC_NAGIOS_OUTPUT_DEFAULT     (8u * 1024)
#define EXEC_PROMETHEUS_OUTPUT_DEFAULT (1024u * 1024)
#define EXEC_KILL_AFTER_DEFAULT_MS     2000u
/* At exit, how long a process may take to die after SIGKILL before tocsind gives up. */
#define EXEC_EXIT_REAP_MS 2000u

enum exec_mode {
	EXEC_MODE_NAGIOS,
	EXEC_MODE_PROMETHEUS,
};

struct exec_child;

struct exec_state {
	char **argv; /* NULL-terminated; argv[0] is an absolute path */
	char **envp; /* NULL-terminated: the daemon's environment with `env` applied */
	char *working_dir;
	enum exec_mode mode;
	size_t max_output;
	uint64_t kill_after_ms;
	struct exec_child *child; /* the command of the run in flight, NULL when none */
	struct exec_metric_cache cache;
	struct throttle spawn_throttle;
	struct throttle perfdata_throttle;
};

struct exec_pipe {
	int fd; /* -1 once closed */
	struct event *event;
	char *buf;
	size_t length;
	size_t max;
	uint64_t discarded;
};

/*
 * One started command. Attached to a run and its state until the run ends or is
 * cancelled; a cancelled child lives on, detached, until it has been reaped.
 */
struct exec_child {
	struct exec_child *prev;
	struct exec_child *next;
	pid_t pid; /* also its process group id */
	bool exited;
	int exit_code;
	int signal;
	struct exec_pipe out;
	struct exec_pipe err;
	struct event *drain_timer;
	struct event *kill_timer;
	struct probe_run *run;    /* NULL once detached */
	struct exec_state *state; /* NULL once detached */
	uint64_t kill_after_ms;
	uint64_t kill_at_ms; /* when SIGKILL follows the SIGTERM of a cancel; 0 before */
};

/* Every child not yet reaped, and the one SIGCHLD event of the process. */
static struct {
	struct event_base *base;
	struct event *sigchld;
	struct exec_child *children;
	bool atexit_registered;
	bool subreaper;            /* orphaned descendants of commands are reparented to tocsind */
	struct event *stray_timer; /* a pending strays_kill() */
} reaper;

static void child_progress(struct exec_child *child);
static void strays_kill(void);
static void strays_kill_soon(void);
static void strays_reap(void);

static void pipe_close(struct exec_pipe *p)
{
	if (p->event != NULL) {
		event_free(p->event);
		p->event = NULL;
	}
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
}

static void child_free(struct exec_child *child)
{
	pipe_close(&child->out);
	pipe_close(&child->err);
	if (child->drain_timer != NULL)
		event_free(child->drain_timer);
	if (child->kill_timer != NULL)
		event_free(child->kill_timer);
	if (child->prev != NULL)
		child->prev->next = child->next;
	else
		reaper.children = child->next;
	if (child->next != NULL)
		child->next->prev = child->prev;
	free(child->out.buf);
	free(child->err.buf);
	free(child);
}

/* Kills what is left of the group and collects the zombie. */
static void child_reap(struct exec_child *child)
{
	int status;

	/* The unreaped leader keeps the group id reserved, so this hits only its group. */
	kill(-child->pid, SIGKILL);
	/* Only called once the child is a zombie, so WNOHANG loses nothing. */
	while (waitpid(child->pid, &status, WNOHANG) < 0 && errno == EINTR)
		;
	child->pid = 0;
	strays_kill_soon();
	strays_reap();
}

static struct exec_child *child_find(pid_t pid)
{
	for (struct exec_child *c = reaper.children; c != NULL; c = c->next)
		if (c->pid == pid)
			return c;
	return NULL;
}

/*
 * Reaps the zombies that are not a command's: descendants that tocsind adopted as
 * subreaper. waitid(P_ALL, WNOWAIT) shows one zombie at a time. A command's zombie is
 * left for its own bookkeeping, so it hides the zombies after it until child_reap()
 * calls this again.
 */
static void strays_reap(void)
{
	for (int i = 0; i < 4096; i++) {
		siginfo_t info;

		memset(&info, 0, sizeof(info));
		if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 || info.si_pid == 0)
			return;
		if (child_find(info.si_pid) != NULL)
			return;
		while (waitpid(info.si_pid, NULL, WNOHANG) < 0 && errno == EINTR)
			;
	}
}

/* Reads the parent and process group of `pid` from /proc; -1 when it is gone. */
static int proc_parent_group(const char *pid, pid_t *ppid, pid_t *pgrp)
{
	char path[64];
	char stat[512];
	const char *close_paren;
	ssize_t n;
	int fd;
	char state;
	int parent;
	int group;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	stat[n] = '\0';
	/* The command name may contain spaces and parentheses: parse after the last ')'. */
	close_paren = strrchr(stat, ')');
	if (close_paren == NULL ||
	    sscanf(close_paren + 1, " %c %d %d", &state, &parent, &group) != 3)
		return -1;
	*ppid = (pid_t)parent;
	*pgrp = (pid_t)group;
	return 0;
}

/*
 * Kills every child of tocsind that is not a command and not in the group of a known
 * command: an orphan that left its command's group. Such a child is unreaped, so its pid
 * (and a group it leads) cannot have been reused. /proc is scanned because
 * /proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN, which kernels may lack.
 */
static void strays_kill(void)
{
	pid_t self = getpid();
	struct dirent *entry;
	DIR *dir;

	if (!reaper.subreaper)
		return;
	dir = opendir("/proc");
	if (dir == NULL)
		return;
	while ((entry = readdir(dir)) != NULL) {
		pid_t pid;
		pid_t ppid;
		pid_t pgrp;

		if (entry->d_name[0] < '1' || entry->d_name[0] > '9')
			continue;
		pid = (pid_t)strtol(entry->d_name, NULL, 10);
		if (proc_parent_group(entry->d_name, &ppid, &pgrp) < 0 || ppid != self ||
		    child_find(pid) != NULL || child_find(pgrp) != NULL)
			continue;
		kill(pgrp == pid ? -pid : pid, SIGKILL);
	}
	closedir(dir);
}

/* Milliseconds between the end of a run and the /proc scan for its escaped processes:
 * one scan then serves every run that ended meanwhile, so hundreds of runs a second do
 * not each walk /proc. */
#define STRAY_SCAN_DELAY_MS 200

static void on_stray_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	strays_kill();
	strays_reap();
}

static void strays_kill_soon(void)
{
	struct timeval tv = {0, STRAY_SCAN_DELAY_MS * 1000};

	if (!reaper.subreaper || reaper.base == NULL)
		return;
	if (reaper.stray_timer == NULL)
		reaper.stray_timer = evtimer_new(reaper.base, on_stray_timer, NULL);
	if (reaper.stray_timer != NULL && !evtimer_pending(reaper.stray_timer, NULL))
		evtimer_add(reaper.stray_timer, &tv);
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Polls whether a command exited, without reaping it. */
static bool child_poll_exit(struct exec_child *c)
{
	siginfo_t info;

	if (c->exited)
		return true;
	memset(&info, 0, sizeof(info));
	if (waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
		c->exited = errno == ECHILD;
	else
		c->exited = info.si_pid == c->pid;
	return c->exited;
}

/*
 * At exit (the daemon's or --once's), so that no command outlives tocsind and no zombie
 * is left to PID 1: a command whose run was cancelled gets the rest of its kill_after to
 * end after SIGTERM; then every group left is killed, and every child reaped, each wait
 * bounded. The loop is gone by now, so this polls.
 */
static void reaper_exit(void)
{
	uint64_t deadline = 0;
	bool waiting = true;

	for (struct exec_child *c = reaper.children; c != NULL; c = c->next)
		if (c->pid > 0 && !child_poll_exit(c) && c->kill_at_ms > deadline)
			deadline = c->kill_at_ms;
	while (waiting && probe_now_ms() < deadline) {
		waiting = false;
		for (struct exec_child *c = reaper.children; c != NULL; c = c->next)
			waiting |= c->pid > 0 && c->kill_at_ms != 0 && !child_poll_exit(c);
		if (waiting)
			pause_ms(10);
	}
	for (struct exec_child *c = reaper.children; c != NULL; c = c->next)
		if (c->pid > 0)
			kill(-c->pid, SIGKILL);
	deadline = probe_now_ms() + EXEC_EXIT_REAP_MS;
	do {
		waiting = false;
		for (struct exec_child *c = reaper.children; c != NULL; c = c->next) {
			if (c->pid <= 0)
				continue;
			if (waitpid(c->pid, NULL, WNOHANG) == 0) {
				waiting = true;
				continue;
			}
			c->pid = 0;
		}
		strays_kill();
		strays_reap();
		if (!waiting && reaper.subreaper) {
			siginfo_t info;

			/* Any child left is a stray that strays_kill() just killed. */
			memset(&info, 0, sizeof(info));
			waiting = waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
		}
		if (waiting)
			pause_ms(5);
	} while (waiting && probe_now_ms() < deadline);
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct exec_child *next;

	(void)sig;
	(void)what;
	(void)arg;
	for (struct exec_child *c = reaper.children; c != NULL; c = next) {
		siginfo_t info;

		next = c->next;
		if (c->exited)
			continue;
		memset(&info, 0, sizeof(info));
		if (waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
			if (errno != ECHILD)
				continue;
			/* Someone else reaped it: the exit status is lost. */
			c->exited = true;
			c->exit_code = 3;
			child_progress(c);
			continue;
		}
		if (info.si_pid != c->pid)
			continue;
		c->exited = true;
		if (info.si_code == CLD_EXITED) {
			c->exit_code = info.si_status;
		} else {
			c->signal = info.si_status;
			c->exit_code = 128 + info.si_status;
		}
		child_progress(c);
	}
	strays_reap();
}

static int reaper_attach(struct event_base *base)
{
	if (reaper.base == base)
		return 0;
	/*
	 * NOTE: one event base per process is supported. Children of an earlier base are
	 * still polled by the new base's SIGCHLD event, but the old event stays allocated.
	 */
	reaper.sigchld = evsignal_new(base, SIGCHLD, on_sigchld, NULL);
	if (reaper.sigchld == NULL || evsignal_add(reaper.sigchld, NULL) < 0)
		return -1;
	reaper.base = base;
	if (!reaper.atexit_registered) {
		atexit(reaper_exit);
		reaper.atexit_registered = true;
		/* Once per process: descendants that leave their group are reparented here. */
		if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
			reaper.subreaper = true;
		else
			log_warn("exec", NULL,
				 "cannot become a child subreaper (%s): processes that leave a "
				 "command's process group outlive it",
				 strerror(errno));
	}
	return 0;
}

/* Ends the run with what the command printed, then frees the child. */
static void child_complete(struct exec_child *child)
{
	struct probe_run *run = child->run;
	struct exec_state *st = child->state;
	char ids[256];
	struct exec_result res = {
	    .exit_code = child->exit_code,
	    .signal = child->signal,
	    .out = child->out.buf != NULL ? child->out.buf : "",
	    .out_length = child->out.length,
	    .out_discarded = child->out.discarded,
	    .err = child->err.buf != NULL ? child->err.buf : "",
	    .err_length = child->err.length,
	    .ids = log_ids(ids, sizeof(ids), "probe", probe_run_probe_name(run), NULL),
	};

	if (child->out.fd >= 0 || child->err.fd >= 0)
		log_debug("exec", ids,
			  "a process left by the command kept its output open %d ms after it "
			  "exited; killed its process group",
			  EXEC_DRAIN_MS);
	pipe_close(&child->out);
	pipe_close(&child->err);
	child_reap(child);
	st->child = NULL;
	if (st->mode == EXEC_MODE_NAGIOS)
		exec_output_nagios(run, &res, &st->perfdata_throttle);
	else
		exec_output_prometheus(run, &res, &st->cache);
	child_free(child);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	child_complete(arg);
}

static void on_kill_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct exec_child *child = arg;

	(void)fd;
	(void)what;
	kill(-child->pid, SIGKILL);
}

/* Moves a child on after an exit or an end of file; may free it. */
static void child_progress(struct exec_child *child)
{
	if (!child->exited)
		return;
	if (child->run == NULL) {
		child_reap(child);
		child_free(child);
		return;
	}
	if (child->out.fd < 0 && child->err.fd < 0) {
		child_complete(child);
		return;
	}
	if (!evtimer_pending(child->drain_timer, NULL)) {
		struct timeval tv = {EXEC_DRAIN_MS / 1000, (EXEC_DRAIN_MS % 1000) * 1000};

		evtimer_add(child->drain_timer, &tv);
	}
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct exec_child *child = arg;
	struct exec_pipe *p = fd == child->out.fd ? &child->out : &child->err;
	char scratch[65536];

	(void)what;
	/* A bounded number of reads per wake-up, so one chatty command cannot hog the loop. */
	for (int i = 0; i < 16; i++) {
		size_t room = p->max - p->length;
		char *dst = room > 0 ? p->buf + p->length : scratch;
		size_t size = room > 0 ? room : sizeof(scratch);
		ssize_t n = read(fd, dst, size);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			pipe_close(p);
			child_progress(child);
			return;
		}
		if (room > 0)
			p->length += (size_t)n;
		else
			p->discarded += (uint64_t)n;
	}
}

static int pipe_open(struct exec_pipe *p, int fds[2], size_t max)
{
	p->fd = -1;
	p->max = max;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	p->fd = fds[0];
	p->buf = xmalloc(max);
	return 0;
}

static int spawn(const struct exec_state *st, int out_fd, int err_fd, pid_t *pid)
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t empty;
	sigset_t all;
	int rc;

	sigemptyset(&empty);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					    POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &empty);
	/* Also undoes the daemon's SIG_IGN of SIGPIPE, which exec would otherwise keep. */
	posix_spawnattr_setsigdefault(&attr, &all);

	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
	posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
	if (st->working_dir != NULL)
		posix_spawn_file_actions_addchdir_np(&actions, st->working_dir);
	/* Descriptors the daemon opened without O_CLOEXEC must not leak into plugins. */
	posix_spawn_file_actions_addclosefrom_np(&actions, 3);

	rc = posix_spawn(pid, st->argv[0], &actions, &attr, st->argv, st->envp);
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	return rc;
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

static void start_failed(struct probe_run *run, struct exec_state *st, int err, const char *what)
{
	char ids[256];
	uint64_t suppressed = 0;

	log_ids(ids, sizeof(ids), "probe", probe_run_probe_name(run), NULL);
	if (throttle_fail(&st->spawn_throttle, probe_now_ms(), &suppressed))
		log_warn("exec", ids, "%s %s failed: %s (%llu similar messages suppressed)", what,
			 st->argv[0], strerror(err), (unsigned long long)suppressed);
	probe_run_finish(run, spawn_status(err), "%s %s: %s", what, st->argv[0], strerror(err));
}

static struct exec_child *child_new(struct event_base *base, struct probe_run *run,
				    struct exec_state *st)
{
	struct exec_child *child = xcalloc(1, sizeof(*child));

	child->run = run;
	child->state = st;
	child->kill_after_ms = st->kill_after_ms;
	child->out.fd = -1;
	child->err.fd = -1;
	child->drain_timer = evtimer_new(base, on_drain_timeout, child);
	child->kill_timer = evtimer_new(base, on_kill_timeout, child);
	child->next = reaper.children;
	if (reaper.children != NULL)
		reaper.children->prev = child;
	reaper.children = child;
	return child;
}

static void exec_start(struct probe_run *run, void *state)
{
	struct exec_state *st = state;
	struct event_base *base = probe_run_base(run);
	struct exec_child *child;
	int out_fds[2];
	int err_fds[2];
	int rc;

	/* The previous run has been committed by now, so its descriptions are unused. */
	exec_metric_cache_clear(&st->cache);
	if (reaper_attach(base) < 0) {
		probe_run_finish(run, PROBE_STATUS_INTERNAL_ERROR, "cannot watch SIGCHLD");
		return;
	}
	child = child_new(base, run, st);
	if (pipe_open(&child->out, out_fds, st->max_output) < 0) {
		rc = errno;
		child_free(child);
		start_failed(run, st, rc, "pipe for");
		return;
	}
	if (pipe_open(&child->err, err_fds, EXEC_STDERR_MAX) < 0) {
		rc = errno;
		close(out_fds[1]);
		child_free(child);
		start_failed(run, st, rc, "pipe for");
		return;
	}
	rc = spawn(st, out_fds[1], err_fds[1], &child->pid);
	close(out_fds[1]);
	close(err_fds[1]);
	if (rc != 0) {
		child_free(child);
		start_failed(run, st, rc, "exec");
		return;
	}
	throttle_ok(&st->spawn_throttle, NULL);
	child->out.event = event_new(base, child->out.fd, EV_READ | EV_PERSIST, on_readable, child);
	child->err.event = event_new(base, child->err.fd, EV_READ | EV_PERSIST, on_readable, child);
	event_add(child->out.event, NULL);
	event_add(child->err.event, NULL);
	st->child = child;
}

/* Detaches the child from its run; it is killed and reaped in the background. */
static void exec_cancel(struct probe_run *run, void *state)
{
	struct exec_state *st = state;
	struct exec_child *child = st->child;
	struct timeval tv;

	(void)run;
	if (child == NULL)
		return;
	st->child = NULL;
	child->run = NULL;
	child->state = NULL;
	pipe_close(&child->out);
	pipe_close(&child->err);
	evtimer_del(child->drain_timer);
	if (child->exited) {
		child_reap(child);
		child_free(child);
		return;
	}
	kill(-child->pid, SIGTERM);
	child->kill_at_ms = probe_now_ms() + child->kill_after_ms;
	tv.tv_sec = (time_t)(child->kill_after_ms / 1000);
	tv.tv_usec = (suseconds_t)(child->kill_after_ms % 1000) * 1000;
	evtimer_add(child->kill_timer, &tv);
}

/* Builds the child's environment: the daemon's, with the names in `names` replaced. */
static char **build_env(char **names, char **values, size_t count)
{
	size_t n = 0;
	size_t inherited = 0;
	char **envp;

	while (environ != NULL && environ[inherited] != NULL)
		inherited++;
	envp = xcalloc(inherited + count + 1, sizeof(*envp));
	for (size_t i = 0; i < inherited; i++) {
		bool replaced = false;

		for (size_t j = 0; j < count && !replaced; j++) {
			size_t len = strlen(names[j]);

			replaced =
			    strncmp(environ[i], names[j], len) == 0 && environ[i][len] == '=';
		}
		if (!replaced)
			envp[n++] = xstrdup(environ[i]);
	}
	for (size_t j = 0; j < count; j++)
		envp[n++] = xasprintf("%s=%s", names[j], values[j]);
	return envp;
}

static int parse_env(struct cfg_map *options, struct exec_state *st)
{
	char **names = NULL;
	char **values = NULL;
	size_t count = 0;
	int rc = cfg_get_string_map(options, "env", &names, &values, &count);

	if (rc < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		char quoted[CFG_QUOTE_SIZE];

		if (names[i][0] == '\0' || strchr(names[i], '=') != NULL) {
			cfg_error(options, "env",
				  "variable name %s is invalid; names are non-empty "
				  "and have no '='",
				  cfg_quote(names[i], quoted, sizeof(quoted)));
			rc = -1;
		}
	}
	if (rc >= 0)
		st->envp = build_env(names, values, count);
	cfg_strv_free(names);
	cfg_strv_free(values);
	return rc < 0 ? -1 : 0;
}

static int parse_command(struct cfg_map *options, struct exec_state *st)
{
	size_t count = 0;
	char quoted[CFG_QUOTE_SIZE];
	int rc = cfg_get_string_list(options, "command", &st->argv, &count);

	if (rc == 0) {
		cfg_error(options, NULL,
			  "command: missing; give the program and its arguments "
			  "as a list, such as [/usr/lib/nagios/plugins/check_load, "
			  "-w, \"5,4,3\", -c, \"10,8,6\"]");
		return -1;
	}
	if (rc < 0)
		return -1;
	if (count == 0) {
		cfg_error(options, "command",
			  "the list is empty; give the program's absolute path "
			  "first");
		return -1;
	}
	/* No search of PATH: the program that runs must not depend on the environment. */
	if (st->argv[0][0] != '/') {
		cfg_error(options, "command",
			  "%s is not an absolute path; commands run without "
			  "a shell or PATH search",
			  cfg_quote(st->argv[0], quoted, sizeof(quoted)));
		return -1;
	}
	return 0;
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
	failed |= parse_command(options, st) < 0;
	failed |= parse_env(options, st) < 0;
	failed |= parse_mode(options, st) < 0;

	rc = cfg_get_string(options, "working_dir", &st->working_dir);
	if (rc > 0 && st->working_dir[0] != '/') {
		char quoted[CFG_QUOTE_SIZE];

		cfg_error(options, "working_dir", "%s is not an absolute path",
			  cfg_quote(st->working_dir, quoted, sizeof(quoted)));
		rc = -1;
	}
	failed |= rc < 0;

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
	if (st->child != NULL)
		exec_cancel(st->child->run, st);
	exec_metric_cache_clear(&st->cache);
	cfg_strv_free(st->argv);
	cfg_strv_free(st->envp);
	free(st->working_dir);
	free(st);
}

const struct probe_type probe_type_exec = {
    .name = "exec",
    .parse = exec_parse,
    .start = exec_start,
    .cancel = exec_cancel,
    .free = exec_free,
};
