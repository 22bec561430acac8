/*
 * The daemon's lifecycle: load the config, open the store, start the scheduler and the
 * HTTP server on one libevent loop, reload on SIGHUP, and stop cleanly on SIGTERM or
 * SIGINT (probes stopped, archives flushed, exit status 0).
 */
#ifndef TOCSIN_DAEMON_H
#define TOCSIN_DAEMON_H

#include <stdbool.h>

#include "collector/log.h"

struct daemon_options {
	const char *config_path; /* NULL: the embedded default config */
	const char *listen;      /* --listen override, or NULL */
	const char *data_dir;    /* --data-dir override, or NULL */
	const char *shard;       /* --shard override ("I/N"), or NULL */
	const char *user;        /* --user: the account to switch to when started as root */
	const char *pid_file;    /* --pid-file, or NULL */
	bool log_level_set;      /* --log-level given: it wins over the config */
	enum log_level log_level;
};

struct config;

/*
 * Loads the config named by opts and applies the command-line overrides. Returns NULL
 * and prints every error to stderr when the config is invalid.
 */
struct config *daemon_load_config(const struct daemon_options *opts, char **errors);

/*
 * Runs until SIGTERM/SIGINT. Returns the process exit status. Started as root with --user
 * or `user:`, switches to that user once the HTTP listener is bound (privdrop.h). Reports
 * readiness, reloads and the stop to systemd when $NOTIFY_SOCKET is set (sdnotify.h).
 */
int daemon_run(const struct daemon_options *opts);

/*
 * Applies one of the options that the command-line actions (--silence, --audit) share
 * with the daemon: getopt codes 'c' (--config), 'd' (--data-dir) and 'L' (--log-level).
 * Returns 1 when c was one of them, 0 when it was not, and -1 after printing an error for
 * an invalid log level.
 */
int daemon_options_apply(struct daemon_options *opts, int c, const char *arg);

#endif
