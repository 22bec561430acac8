/*
 * Commands run from the event loop, for the `exec` probe and the `exec` receiver.
 *
 * Each run starts the command with posix_spawn (so a large daemon does not copy its
 * memory) in a process group of its own, with the signal mask and dispositions reset.
 * stdin is fed, and stdout and stderr come back, through non-blocking pipes on the loop.
 * Children are reaped from one SIGCHLD event per process: each outstanding child is polled
 * with waitid(WNOWAIT), which leaves it a zombie until tocsin is done with its process
 * group, so the group id cannot be reused while tocsin may still signal it. A run ends
 * when the command exited and both output pipes reached end of file; when a descendant
 * keeps a pipe open after the command exited, the run ends SPAWN_DRAIN_MS later and the
 * group is killed. A cancelled run's group gets SIGTERM, then SIGKILL after kill_after.
 *
 * A descendant can leave the group (setsid, setpgid) and outlive its command. At the
 * first run tocsind makes itself a child subreaper, so such orphans become its children:
 * when a command's group is killed, every child of tocsind that is neither a command nor
 * in a running command's group is killed too, and every zombie that is not a command's
 * is reaped at once. At exit (also after --once) the commands still running get the rest
 * of their kill_after after SIGTERM, then everything is killed and reaped before tocsind
 * returns, so nothing is left to PID 1.
 *
 * NOTE: glibc's posix_spawn starts the child with CLONE_VFORK, so the loop waits until the
 * child has been scheduled and called execve. That is microseconds on an idle machine and
 * about 1 ms per run, measured, with hundreds of runnable plugins on two cores. Spawning
 * from a helper thread would end that wait, but the reaping above would then have to
 * accept exits of children whose start the loop has not recorded yet.
 */
#include "probes/spawn.h"

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
#include "collector/clock.h"
#include "collector/log.h"
#include "collector/xalloc.h"

extern char **environ;

/* At exit, how long a process may take to die after SIGKILL before tocsind gives up. */
#define SPAWN_EXIT_REAP_MS 2000u

struct spawn_pipe {
	int fd; /* -1 once closed */
	struct event *event;
	char *buf;
	size_t length;
	size_t max;
	uint64_t discarded;
};

/*
 * One started command. Attached to its caller until it completes or is cancelled; a
 * cancelled child lives on, detached, until it has been reaped.
 */
struct spawn_child {
	struct spawn_child *prev;
	struct spawn_child *next;
	pid_t pid; /* also its process group id */
	bool exited;
	bool exit_seen; /* exited, and child_progress() not yet called for it */
	int exit_code;
	int signal;
	struct spawn_pipe out;
	struct spawn_pipe err;
	int in_fd; /* the write end of stdin, -1 once closed */
	struct event *in_event;
	char *input;
	size_t input_length;
	size_t input_written;
	struct event *drain_timer;
	struct event *kill_timer;
	spawn_done_fn *done; /* NULL once detached */
	void *arg;
	uint64_t kill_after_ms;
	uint64_t kill_at_ms; /* when SIGKILL follows the SIGTERM of a cancel; 0 before */
};

/* Every child not yet reaped, and the one SIGCHLD event of the process. */
static struct {
	struct event_base *base;
	struct event *sigchld;
	struct spawn_child *children;
	bool atexit_registered;
	bool subreaper;            /* orphaned descendants of commands are reparented to tocsind */
	struct event *stray_timer; /* a pending strays_kill() */
} reaper;

static void child_progress(struct spawn_child *child);
static void strays_kill(void);
static void strays_kill_soon(void);
static void strays_reap(void);

uint64_t spawn_now_ms(void)
{
	return clock_monotonic_ms();
}

static void pipe_close(struct spawn_pipe *p)
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

static void input_close(struct spawn_child *child)
{
	if (child->in_event != NULL) {
		event_free(child->in_event);
		child->in_event = NULL;
	}
	if (child->in_fd >= 0) {
		close(child->in_fd);
		child->in_fd = -1;
	}
}

static void child_free(struct spawn_child *child)
{
	pipe_close(&child->out);
	pipe_close(&child->err);
	input_close(child);
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
	free(child->input);
	free(child);
}

/* Kills what is left of the group and collects the zombie. */
static void child_reap(struct spawn_child *child)
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

static struct spawn_child *child_find(pid_t pid)
{
	for (struct spawn_child *c = reaper.children; c != NULL; c = c->next)
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
static bool child_poll_exit(struct spawn_child *c)
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

	for (struct spawn_child *c = reaper.children; c != NULL; c = c->next)
		if (c->pid > 0 && !child_poll_exit(c) && c->kill_at_ms > deadline)
			deadline = c->kill_at_ms;
	while (waiting && spawn_now_ms() < deadline) {
		waiting = false;
		for (struct spawn_child *c = reaper.children; c != NULL; c = c->next)
			waiting |= c->pid > 0 && c->kill_at_ms != 0 && !child_poll_exit(c);
		if (waiting)
			pause_ms(10);
	}
	for (struct spawn_child *c = reaper.children; c != NULL; c = c->next)
		if (c->pid > 0)
			kill(-c->pid, SIGKILL);
	deadline = spawn_now_ms() + SPAWN_EXIT_REAP_MS;
	do {
		waiting = false;
		for (struct spawn_child *c = reaper.children; c != NULL; c = c->next) {
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
	} while (waiting && spawn_now_ms() < deadline);
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	bool again = true;

	(void)sig;
	(void)what;
	(void)arg;
	for (struct spawn_child *c = reaper.children; c != NULL; c = c->next) {
		siginfo_t info;

		if (c->exited)
			continue;
		memset(&info, 0, sizeof(info));
		if (waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
			if (errno != ECHILD)
				continue;
			/* Someone else reaped it: the exit status is lost. */
			c->exited = c->exit_seen = true;
			c->exit_code = 3;
			continue;
		}
		if (info.si_pid != c->pid)
			continue;
		c->exited = c->exit_seen = true;
		if (info.si_code == CLD_EXITED) {
			c->exit_code = info.si_status;
		} else {
			c->signal = info.si_status;
			c->exit_code = 128 + info.si_status;
		}
	}
	/*
	 * A done() callback may start or cancel other children, which changes the list, so
	 * the scan starts over after each one.
	 */
	while (again) {
		again = false;
		for (struct spawn_child *c = reaper.children; c != NULL; c = c->next) {
			if (c->exit_seen) {
				c->exit_seen = false;
				child_progress(c);
				again = true;
				break;
			}
		}
	}
	strays_reap();
}

static int reaper_attach(struct event_base *base)
{
	struct sigaction pipe_action;

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
	/* A command that exits before reading all its stdin must not kill the process. */
	if (sigaction(SIGPIPE, NULL, &pipe_action) == 0 && pipe_action.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
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

/* Hands what the command printed to done(), then frees the child. */
static void child_complete(struct spawn_child *child)
{
	struct spawn_result res = {
	    .exit_code = child->exit_code,
	    .signal = child->signal,
	    .out = child->out.buf != NULL ? child->out.buf : "",
	    .out_length = child->out.length,
	    .out_discarded = child->out.discarded,
	    .err = child->err.buf != NULL ? child->err.buf : "",
	    .err_length = child->err.length,
	    .output_held = child->out.fd >= 0 || child->err.fd >= 0,
	};
	spawn_done_fn *done = child->done;

	pipe_close(&child->out);
	pipe_close(&child->err);
	input_close(child);
	child_reap(child);
	child->done = NULL;
	done(child->arg, &res);
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
	struct spawn_child *child = arg;

	(void)fd;
	(void)what;
	kill(-child->pid, SIGKILL);
}

/* Moves a child on after an exit or an end of file; may free it. */
static void child_progress(struct spawn_child *child)
{
	if (!child->exited)
		return;
	if (child->done == NULL) {
		child_reap(child);
		child_free(child);
		return;
	}
	if (child->out.fd < 0 && child->err.fd < 0) {
		child_complete(child);
		return;
	}
	if (!evtimer_pending(child->drain_timer, NULL)) {
		struct timeval tv = {SPAWN_DRAIN_MS / 1000, (SPAWN_DRAIN_MS % 1000) * 1000};

		evtimer_add(child->drain_timer, &tv);
	}
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct spawn_child *child = arg;
	struct spawn_pipe *p = fd == child->out.fd ? &child->out : &child->err;
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

/* Feeds stdin. A command that exits or closes stdin early (EPIPE) just gets no more. */
static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct spawn_child *child = arg;

	(void)what;
	while (child->input_written < child->input_length) {
		ssize_t n = write(fd, child->input + child->input_written,
				  child->input_length - child->input_written);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0)
			break;
		child->input_written += (size_t)n;
	}
	input_close(child);
}

/* Opens a pipe whose end at_parent (0 read, 1 write) is non-blocking. */
static int pipe_open_nonblocking(int fds[2], int at_parent)
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	if (fcntl(fds[at_parent], F_SETFL, O_NONBLOCK) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	return 0;
}

static int pipe_open(struct spawn_pipe *p, int fds[2], size_t max)
{
	p->fd = -1;
	p->max = max;
	if (pipe_open_nonblocking(fds, 0) < 0)
		return -1;
	p->fd = fds[0];
	p->buf = xmalloc(max > 0 ? max : 1);
	return 0;
}

/* in_fd is -1 for /dev/null. Returns 0 or posix_spawn's error number. */
static int spawn_process(const struct spawn_command *cmd, int in_fd, int out_fd, int err_fd,
			 pid_t *pid)
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
	if (in_fd >= 0)
		posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
	else
		posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
	posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
	if (cmd->working_dir != NULL)
		posix_spawn_file_actions_addchdir_np(&actions, cmd->working_dir);
	/* Descriptors the daemon opened without O_CLOEXEC must not leak into commands. */
	posix_spawn_file_actions_addclosefrom_np(&actions, 3);

	rc = posix_spawn(pid, cmd->argv[0], &actions, &attr, cmd->argv, cmd->envp);
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	return rc;
}

static struct spawn_child *child_new(struct event_base *base, const struct spawn_options *o)
{
	struct spawn_child *child = xcalloc(1, sizeof(*child));

	child->kill_after_ms = o->kill_after_ms;
	child->out.fd = -1;
	child->err.fd = -1;
	child->in_fd = -1;
	child->drain_timer = evtimer_new(base, on_drain_timeout, child);
	child->kill_timer = evtimer_new(base, on_kill_timeout, child);
	child->next = reaper.children;
	if (reaper.children != NULL)
		reaper.children->prev = child;
	reaper.children = child;
	return child;
}

/* Opens the three pipes; returns 0 or a negative errno, closing what it opened. */
static int child_open_pipes(struct spawn_child *child, const struct spawn_options *o,
			    int out_fds[2], int err_fds[2], int in_fds[2])
{
	int rc;

	in_fds[0] = in_fds[1] = -1;
	if (pipe_open(&child->out, out_fds, o->max_output) < 0)
		return -errno;
	if (pipe_open(&child->err, err_fds, o->max_error) < 0) {
		rc = -errno;
		close(out_fds[1]);
		return rc;
	}
	if (o->input != NULL && pipe_open_nonblocking(in_fds, 1) < 0) {
		rc = -errno;
		close(out_fds[1]);
		close(err_fds[1]);
		return rc;
	}
	return 0;
}

int spawn_start(struct event_base *base, const struct spawn_options *o, spawn_done_fn *done,
		void *arg, struct spawn_child **out)
{
	struct spawn_child *child;
	int out_fds[2];
	int err_fds[2];
	int in_fds[2];
	int rc;

	if (reaper_attach(base) < 0)
		return -EAGAIN;
	child = child_new(base, o);
	rc = child_open_pipes(child, o, out_fds, err_fds, in_fds);
	if (rc < 0) {
		child_free(child);
		return rc;
	}
	rc = spawn_process(o->command, in_fds[0], out_fds[1], err_fds[1], &child->pid);
	close(out_fds[1]);
	close(err_fds[1]);
	if (in_fds[0] >= 0)
		close(in_fds[0]);
	child->in_fd = in_fds[1];
	if (rc != 0) {
		child_free(child);
		return -rc;
	}
	child->done = done;
	child->arg = arg;
	child->out.event = event_new(base, child->out.fd, EV_READ | EV_PERSIST, on_readable, child);
	child->err.event = event_new(base, child->err.fd, EV_READ | EV_PERSIST, on_readable, child);
	event_add(child->out.event, NULL);
	event_add(child->err.event, NULL);
	if (child->in_fd >= 0) {
		child->input = xmalloc(o->input_length > 0 ? o->input_length : 1);
		memcpy(child->input, o->input, o->input_length);
		child->input_length = o->input_length;
		child->in_event =
		    event_new(base, child->in_fd, EV_WRITE | EV_PERSIST, on_writable, child);
		event_add(child->in_event, NULL);
	}
	*out = child;
	return 0;
}

void spawn_cancel(struct spawn_child *child)
{
	struct timeval tv;

	if (child == NULL)
		return;
	child->done = NULL;
	child->arg = NULL;
	pipe_close(&child->out);
	pipe_close(&child->err);
	input_close(child);
	evtimer_del(child->drain_timer);
	if (child->exited) {
		child_reap(child);
		child_free(child);
		return;
	}
	kill(-child->pid, SIGTERM);
	child->kill_at_ms = spawn_now_ms() + child->kill_after_ms;
	tv.tv_sec = (time_t)(child->kill_after_ms / 1000);
	tv.tv_usec = (suseconds_t)(child->kill_after_ms % 1000) * 1000;
	evtimer_add(child->kill_timer, &tv);
}

/* ---- options ---- */

char **spawn_env_set(char *const *envp, const char *const *names, const char *const *values,
		     size_t count)
{
	size_t n = 0;
	size_t inherited = 0;
	char **result;

	while (envp != NULL && envp[inherited] != NULL)
		inherited++;
	result = xcalloc(inherited + count + 1, sizeof(*result));
	for (size_t i = 0; i < inherited; i++) {
		bool replaced = false;

		for (size_t j = 0; j < count && !replaced; j++) {
			size_t len = strlen(names[j]);

			replaced = strncmp(envp[i], names[j], len) == 0 && envp[i][len] == '=';
		}
		if (!replaced)
			result[n++] = xstrdup(envp[i]);
	}
	for (size_t j = 0; j < count; j++)
		result[n++] = xasprintf("%s=%s", names[j], values[j]);
	return result;
}

static int parse_env(struct cfg_map *options, const char *reserved_prefix,
		     struct spawn_command *cmd)
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
		} else if (reserved_prefix != NULL &&
			   strncmp(names[i], reserved_prefix, strlen(reserved_prefix)) == 0) {
			cfg_error(options, "env",
				  "variable %s is reserved: tocsin sets the %s* variables for "
				  "every run; remove it",
				  cfg_quote(names[i], quoted, sizeof(quoted)), reserved_prefix);
			rc = -1;
		}
	}
	if (rc >= 0)
		cmd->envp = spawn_env_set(environ, (const char *const *)names,
					  (const char *const *)values, count);
	cfg_strv_free(names);
	cfg_strv_free(values);
	return rc < 0 ? -1 : 0;
}

static int parse_argv(struct cfg_map *options, const char *example, struct spawn_command *cmd)
{
	size_t count = 0;
	char quoted[CFG_QUOTE_SIZE];
	int rc = cfg_get_string_list(options, "command", &cmd->argv, &count);

	if (rc == 0) {
		cfg_error(options, NULL,
			  "command: missing; give the program and its arguments "
			  "as a list, such as %s",
			  example);
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
	if (cmd->argv[0][0] != '/') {
		cfg_error(options, "command",
			  "%s is not an absolute path; commands run without "
			  "a shell or PATH search",
			  cfg_quote(cmd->argv[0], quoted, sizeof(quoted)));
		return -1;
	}
	return 0;
}

int spawn_command_parse(struct cfg_map *options, const char *example, const char *reserved_prefix,
			struct spawn_command *cmd)
{
	int failed = 0;
	int rc;

	failed |= parse_argv(options, example, cmd) < 0;
	failed |= parse_env(options, reserved_prefix, cmd) < 0;
	rc = cfg_get_string(options, "working_dir", &cmd->working_dir);
	if (rc > 0 && cmd->working_dir[0] != '/') {
		char quoted[CFG_QUOTE_SIZE];

		cfg_error(options, "working_dir", "%s is not an absolute path",
			  cfg_quote(cmd->working_dir, quoted, sizeof(quoted)));
		rc = -1;
	}
	failed |= rc < 0;
	return failed ? -1 : 0;
}

void spawn_command_clear(struct spawn_command *cmd)
{
	cfg_strv_free(cmd->argv);
	cfg_strv_free(cmd->envp);
	free(cmd->working_dir);
	memset(cmd, 0, sizeof(*cmd));
}
