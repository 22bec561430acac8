/*
 * logfmt lines on stderr. Each line is assembled in a stack buffer and written with one
 * write(2), so lines from the writer thread and the loop thread never interleave.
 */
#include "collector/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static _Atomic int log_level = LOG_LEVEL_INFO;
static _Atomic int log_fd = 2;

static const char *const log_level_names[] = {
    [LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_WARN] = "warn",   [LOG_LEVEL_NOTICE] = "notice",
    [LOG_LEVEL_INFO] = "info",   [LOG_LEVEL_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	log_level = level;
}

bool log_enabled(enum log_level level)
{
	return (int)level <= log_level;
}

int log_level_parse(const char *name, enum log_level *level)
{
	for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
		if (strcmp(name, log_level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	if ((size_t)level >= sizeof(log_level_names) / sizeof(log_level_names[0]))
		return "unknown";
	return log_level_names[level];
}

void log_set_fd(int fd)
{
	log_fd = fd;
}

/* Appends `s` to buf at *len, quoted and escaped when logfmt needs it. */
static void log_append_value(char *buf, size_t size, size_t *len, const char *s, bool force)
{
	bool quote = force || *s == '\0' || strpbrk(s, " \"=\\\t\n\r") != NULL;

	if (*len + 1 >= size)
		return;
	if (quote)
		buf[(*len)++] = '"';
	for (; *s != '\0' && *len + 3 < size; s++) {
		char c = *s;

		if (c == '"' || c == '\\') {
			buf[(*len)++] = '\\';
			buf[(*len)++] = c;
		} else if (c == '\n') {
			buf[(*len)++] = '\\';
			buf[(*len)++] = 'n';
		} else if (c == '\r' || c == '\t') {
			buf[(*len)++] = ' ';
		} else {
			buf[(*len)++] = c;
		}
	}
	if (quote && *len + 1 < size)
		buf[(*len)++] = '"';
	buf[*len] = '\0';
}

static void log_append(char *buf, size_t size, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + n >= size)
		n = size - *len - 1;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
}

char *log_ids(char *buf, size_t size, const char *key, ...)
{
	va_list ap;
	size_t len = 0;

	buf[0] = '\0';
	va_start(ap, key);
	for (const char *k = key; k != NULL; k = va_arg(ap, const char *)) {
		const char *v = va_arg(ap, const char *);

		if (len > 0)
			log_append(buf, size, &len, " ");
		log_append(buf, size, &len, k);
		log_append(buf, size, &len, "=");
		log_append_value(buf, size, &len, v != NULL ? v : "", false);
	}
	va_end(ap);
	return buf;
}

static void log_vwrite(enum log_level level, const char *module, const char *ids, int errnum,
		       const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	char msg[LOG_LINE_MAX];
	char stamp[40];
	struct timespec ts;
	struct tm tm;
	size_t len = 0;
	int saved = errno;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (errnum != 0) {
		size_t mlen = strlen(msg);

		snprintf(msg + mlen, sizeof(msg) - mlen, ": %s", strerror(errnum));
	}

	len = (size_t)snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s module=%s", stamp,
			       ts.tv_nsec / 1000000, log_level_name(level), module);
	if (ids != NULL && *ids != '\0') {
		log_append(line, sizeof(line), &len, " ");
		log_append(line, sizeof(line), &len, ids);
	}
	log_append(line, sizeof(line), &len, " msg=");
	log_append_value(line, sizeof(line) - 1, &len, msg, true);
	line[len++] = '\n';

	/* A short write to stderr cannot be reported anywhere: ignore it. */
	ssize_t unused = write(log_fd, line, len);
	(void)unused;
	errno = saved;
}

void log_write(enum log_level level, const char *module, const char *ids, int errnum,
	       const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vwrite(level, module, ids, errnum, fmt, ap);
	va_end(ap);
}

/* Defines one shorthand; a function, not a macro, so that the format attribute holds. */
#define LOG_SHORTHAND(fn, level, with_errno)                                                       \
	void fn(const char *module, const char *ids, const char *fmt, ...)                         \
	{                                                                                          \
		va_list ap;                                                                        \
		int errnum = (with_errno) ? errno : 0;                                             \
                                                                                                   \
		if (!log_enabled(level))                                                           \
			return;                                                                    \
		va_start(ap, fmt);                                                                 \
		log_vwrite(level, module, ids, errnum, fmt, ap);                                   \
		va_end(ap);                                                                        \
	}

LOG_SHORTHAND(log_error, LOG_LEVEL_ERROR, false)
LOG_SHORTHAND(log_warn, LOG_LEVEL_WARN, false)
LOG_SHORTHAND(log_notice, LOG_LEVEL_NOTICE, false)
LOG_SHORTHAND(log_info, LOG_LEVEL_INFO, false)
LOG_SHORTHAND(log_debug, LOG_LEVEL_DEBUG, false)
LOG_SHORTHAND(log_error_errno, LOG_LEVEL_ERROR, true)
LOG_SHORTHAND(log_warn_errno, LOG_LEVEL_WARN, true)

void log_fatal(const char *module, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, module, NULL, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
