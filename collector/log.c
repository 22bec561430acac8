/*
 * logfmt lines on stderr, syslog or the journal. Each line is assembled in a stack buffer
 * and written with one write(2), syslog(3) call or datagram, so lines from the writer
 * thread and the loop thread never interleave.
 */
#include "collector/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
/* A journal entry: the line plus its fields, each at most as long as the line. */
#define LOG_ENTRY_MAX (3 * LOG_LINE_MAX)

static _Atomic int log_level = LOG_LEVEL_INFO;
static _Atomic int log_fd = 2;
static _Atomic int log_target = LOG_TARGET_STDERR;
static _Atomic int log_journal_fd = -1;

static const char *const log_target_names[] = {
    [LOG_TARGET_STDERR] = "stderr",
    [LOG_TARGET_SYSLOG] = "syslog",
    [LOG_TARGET_JOURNAL] = "journal",
};

/* syslog(3) and journal priorities of the levels. */
static const int log_priorities[] = {
    [LOG_LEVEL_ERROR] = LOG_ERR, [LOG_LEVEL_WARN] = LOG_WARNING, [LOG_LEVEL_NOTICE] = LOG_NOTICE,
    [LOG_LEVEL_INFO] = LOG_INFO, [LOG_LEVEL_DEBUG] = LOG_DEBUG,
};

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

int log_target_parse(const char *name, enum log_target *target)
{
	for (size_t i = 0; i < sizeof(log_target_names) / sizeof(log_target_names[0]); i++) {
		if (strcmp(name, log_target_names[i]) == 0) {
			*target = (enum log_target)i;
			return 0;
		}
	}
	return -1;
}

/* Connects a datagram socket to the journal; the fd, or -1 with errno set. */
static int log_journal_connect(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int log_set_target(enum log_target target)
{
	const char *path;
	int fd;

	if (target == LOG_TARGET_SYSLOG)
		openlog(program_invocation_short_name, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	if (target != LOG_TARGET_JOURNAL) {
		log_target = target;
		return 0;
	}
	path = getenv("TOCSIN_JOURNAL_SOCKET");
	if (path == NULL || path[0] == '\0')
		path = LOG_JOURNAL_SOCKET;
	fd = log_journal_connect(path);
	if (fd < 0) {
		log_warn_errno("log", NULL,
			       "cannot connect to the journal at %s; logging to stderr instead",
			       path);
		return -1;
	}
	log_journal_fd = fd;
	log_target = LOG_TARGET_JOURNAL;
	return 0;
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

/* Appends "NAME=VALUE\n" to a journal entry; a field that does not fit is left out. */
static void log_entry_field(char *entry, size_t *len, const char *name, const char *value,
			    size_t value_len)
{
	size_t name_len = strlen(name);

	if (*len + name_len + value_len + 2 > LOG_ENTRY_MAX)
		return;
	memcpy(entry + *len, name, name_len);
	*len += name_len;
	entry[(*len)++] = '=';
	memcpy(entry + *len, value, value_len);
	*len += value_len;
	entry[(*len)++] = '\n';
}

/*
 * Appends one TOCSIN_<KEY> field per key=value pair of a log_ids() rendering. Quoted
 * values lose their quotes and the backslashes before '"' and '\'; an escaped newline
 * stays the two characters "\n", because the text format of the journal protocol ends a
 * field at a newline.
 */
static void log_entry_ids(char *entry, size_t *len, const char *ids)
{
	const char *p = ids;

	while (*p != '\0') {
		char name[72] = "TOCSIN_";
		size_t name_len = strlen(name);
		char value[LOG_LINE_MAX];
		size_t value_len = 0;

		while (*p == ' ')
			p++;
		for (; *p != '\0' && *p != '=' && *p != ' '; p++) {
			char c = *p;

			if (name_len + 1 >= sizeof name)
				continue;
			if (c >= 'a' && c <= 'z')
				c = (char)(c - 'a' + 'A');
			else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
				c = '_';
			name[name_len++] = c;
		}
		name[name_len] = '\0';
		if (*p != '=')
			continue;
		p++;
		if (*p == '"') {
			for (p++; *p != '\0' && *p != '"'; p++) {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				if (value_len + 1 < sizeof value)
					value[value_len++] = *p;
			}
			if (*p == '"')
				p++;
		} else {
			for (; *p != '\0' && *p != ' '; p++)
				if (value_len + 1 < sizeof value)
					value[value_len++] = *p;
		}
		log_entry_field(entry, len, name, value, value_len);
	}
}

/* Sends one entry to the journal; 0, or -1 when the journal did not take it. */
static int log_send_journal(enum log_level level, const char *module, const char *ids, int errnum,
			    const char *message, size_t message_len)
{
	char entry[LOG_ENTRY_MAX];
	char number[16];
	size_t len = 0;

	snprintf(number, sizeof number, "%d", log_priorities[level]);
	log_entry_field(entry, &len, "PRIORITY", number, strlen(number));
	log_entry_field(entry, &len, "SYSLOG_IDENTIFIER", program_invocation_short_name,
			strlen(program_invocation_short_name));
	log_entry_field(entry, &len, "TOCSIN_MODULE", module, strlen(module));
	if (errnum != 0) {
		snprintf(number, sizeof number, "%d", errnum);
		log_entry_field(entry, &len, "ERRNO", number, strlen(number));
	}
	if (ids != NULL)
		log_entry_ids(entry, &len, ids);
	log_entry_field(entry, &len, "MESSAGE", message, message_len);
	return send(log_journal_fd, entry, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
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
	size_t body; /* where the line starts after ts=, which syslog and the journal add */
	int saved = errno;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (errnum != 0) {
		size_t mlen = strlen(msg);

		snprintf(msg + mlen, sizeof(msg) - mlen, ": %s", strerror(errnum));
	}

	body = (size_t)snprintf(line, sizeof(line), "ts=%s.%03ldZ ", stamp, ts.tv_nsec / 1000000);
	len = body + (size_t)snprintf(line + body, sizeof(line) - body, "level=%s module=%s",
				      log_level_name(level), module);
	if (ids != NULL && *ids != '\0') {
		log_append(line, sizeof(line), &len, " ");
		log_append(line, sizeof(line), &len, ids);
	}
	log_append(line, sizeof(line), &len, " msg=");
	log_append_value(line, sizeof(line) - 1, &len, msg, true);

	switch ((enum log_target)atomic_load(&log_target)) {
	case LOG_TARGET_SYSLOG:
		syslog(log_priorities[level], "%s", line + body);
		break;
	case LOG_TARGET_JOURNAL:
		if (log_send_journal(level, module, ids, errnum, line + body, len - body) == 0)
			break;
		/* The journal is gone or full: keep the line on stderr. */
		/* fall through */
	default:
		line[len++] = '\n';
		/* A short write to stderr cannot be reported anywhere: ignore it. */
		ssize_t unused = write(log_fd, line, len);
		(void)unused;
		break;
	}
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
