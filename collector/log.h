/*
 * Logging: one logfmt line per event on stderr,
 *   ts=2026-12-04T20:00:00.123Z level=warn module=store probe=host msg="..."
 * The level is tested before anything is formatted, errno is preserved across every
 * call, and the *_errno variants append strerror(errno) to the message. `ids` is a
 * pre-rendered run of key=value pairs naming the object (may be NULL); render it with
 * log_ids() so that values are quoted the same way everywhere.
 * Thread-safe: each line is written with one write(2).
 *
 * log_set_target() sends the lines to syslog (facility LOG_DAEMON) or to the systemd
 * journal's native socket instead, without the ts= field, which both add themselves.
 * The journal receives PRIORITY, SYSLOG_IDENTIFIER, ERRNO, TOCSIN_MODULE and one
 * TOCSIN_<KEY> field per key of `ids` beside MESSAGE.
 */
#ifndef TOCSIN_LOG_H
#define TOCSIN_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_target {
	LOG_TARGET_STDERR,  /* the default */
	LOG_TARGET_SYSLOG,  /* syslog(3), facility LOG_DAEMON */
	LOG_TARGET_JOURNAL, /* the journal's native protocol */
};

/* The journal's socket. The environment variable TOCSIN_JOURNAL_SOCKET replaces it; it
 * exists for tests, which cannot bind the real path. */
#define LOG_JOURNAL_SOCKET "/run/systemd/journal/socket"

/* Parses "stderr", "syslog" or "journal"; returns -1 for anything else. */
int log_target_parse(const char *name, enum log_target *target);
/*
 * Sends every later line to `target`. Call it once at start-up, before other threads log.
 * For the journal, when its socket cannot be connected, logs a warning on stderr, keeps
 * stderr and returns -1; a line the journal does not accept later goes to stderr too.
 * Returns 0 otherwise.
 */
int log_set_target(enum log_target target);

/* Sets the most verbose level written. Default: LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
/* Parses "error", "warn", "notice", "info" or "debug"; returns -1 for anything else. */
int log_level_parse(const char *name, enum log_level *level);
const char *log_level_name(enum log_level level);
/* Redirects output to `fd` (default 2). For tests. */
void log_set_fd(int fd);

/*
 * Renders key=value pairs into `buf`: log_ids(buf, sizeof buf, "probe", name, "target",
 * url, NULL). Values are quoted and escaped when they contain spaces, quotes or '='.
 * Returns buf.
 */
char *log_ids(char *buf, size_t size, const char *key, ...) __attribute__((sentinel));

void log_write(enum log_level level, const char *module, const char *ids, int errnum,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Shorthands; each tests the level first. errnum 0 means "no errno text". */
void log_error(const char *module, const char *ids, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_warn(const char *module, const char *ids, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_notice(const char *module, const char *ids, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_info(const char *module, const char *ids, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_debug(const char *module, const char *ids, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_error_errno(const char *module, const char *ids, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_warn_errno(const char *module, const char *ids, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs at error level and exits with status 1. Only for start-up and broken invariants. */
void log_fatal(const char *module, const char *fmt, ...) __attribute__((format(printf, 2, 3)))
__attribute__((noreturn));

#endif
