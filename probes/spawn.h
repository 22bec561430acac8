/*
 * Running external commands from the event loop without blocking it, for the `exec` probe
 * and the `exec` receiver. A command starts with posix_spawn in a process group of its own;
 * its stdin is fed and its stdout and stderr are read through non-blocking pipes on the
 * loop; one SIGCHLD event reaps every command of the process, and nothing a command
 * started outlives tocsind (see probes/spawn.c). Also the `command`, `env` and
 * `working_dir` options that both users read the same way. Loop thread only.
 */
#ifndef TOCSIN_SPAWN_H
#define TOCSIN_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg_map;
struct event_base;

/* What to run: every array NULL-terminated and owned. */
struct spawn_command {
	char **argv;       /* argv[0] is an absolute path; no shell, no PATH search */
	char **envp;       /* the daemon's environment with the `env` option applied */
	char *working_dir; /* absolute; NULL keeps the daemon's */
};

/*
 * Reads `command` (required), `env` and `working_dir` from options, recording each error
 * with its position. example is a sample command list quoted in the message for a missing
 * `command`. An `env` name starting with reserved_prefix (unless it is NULL) is rejected,
 * for variables that the caller sets itself. Returns 0, or -1 when any was invalid;
 * spawn_command_clear() is needed in both cases.
 */
int spawn_command_parse(struct cfg_map *options, const char *example, const char *reserved_prefix,
			struct spawn_command *cmd);
void spawn_command_clear(struct spawn_command *cmd);

/*
 * Returns a copy of envp (NULL-terminated) in which each of the count variables names[i]
 * is set to values[i], replacing any earlier definition. Free it with cfg_strv_free().
 */
char **spawn_env_set(char *const *envp, const char *const *names, const char *const *values,
		     size_t count);

/* How one run goes. The pointers are used only during spawn_start(). */
struct spawn_options {
	const struct spawn_command *command;
	const char *input; /* written to stdin, which is then closed; NULL: /dev/null */
	size_t input_length;
	size_t max_output;      /* stdout bytes kept; more are read and dropped */
	size_t max_error;       /* stderr bytes kept; more are read and dropped */
	uint64_t kill_after_ms; /* after spawn_cancel()'s SIGTERM, when SIGKILL follows */
};

/* How a command ended and what it printed (the buffers are not NUL-terminated). */
struct spawn_result {
	int exit_code; /* 0..255, or 128 + signal number when killed by a signal */
	int signal;    /* the signal that killed the command, 0 when it exited */
	const char *out;
	size_t out_length;
	uint64_t out_discarded; /* stdout bytes read past max_output and dropped */
	const char *err;
	size_t err_length;
	/* A process left by the command kept stdout or stderr open SPAWN_DRAIN_MS after the
	 * command exited, so the group was killed without waiting for end of file. */
	bool output_held;
};

/* How long the output pipes may stay open after the command exited. */
#define SPAWN_DRAIN_MS 1000

/*
 * Called once, on the loop, when the command exited and its output is read. The result's
 * buffers are freed after it returns. The child is already reaped and its process group
 * killed, and the spawn_child handle is no longer valid.
 */
typedef void spawn_done_fn(void *arg, const struct spawn_result *result);

struct spawn_child;

/*
 * Starts o->command on base, stdin, stdout and stderr connected as o says. Returns 0 and
 * sets *child, or a negative errno (ENOENT and EACCES when the program cannot be
 * executed, EMFILE for pipes, ...) when nothing was started; done() is then never called.
 * The first call makes the process a child subreaper, watches SIGCHLD on base, ignores
 * SIGPIPE unless a handler is set (a command may exit without reading its stdin), and
 * registers an exit handler that kills and reaps every command left.
 */
int spawn_start(struct event_base *base, const struct spawn_options *o, spawn_done_fn *done,
		void *arg, struct spawn_child **child);

/*
 * Detaches a running child: done() is not called, its group gets SIGTERM and, after
 * kill_after_ms, SIGKILL, and it is reaped in the background. Not from inside done().
 */
void spawn_cancel(struct spawn_child *child);

/* Monotonic milliseconds, the clock of every deadline here. */
uint64_t spawn_now_ms(void);

#endif
