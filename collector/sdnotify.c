/*
 * sd_notify over a plain AF_UNIX datagram socket; see sdnotify.h. The protocol is
 * documented in systemd's sd_notify(3): one datagram of newline-separated assignments,
 * sent to the path in $NOTIFY_SOCKET, or to the abstract name after its leading '@'.
 */
#include "collector/sdnotify.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "collector/clock.h"
#include "collector/log.h"

static int notify_fd = -1;
static uint64_t watchdog_usec;
static struct event *watchdog_timer;

/* Parses a decimal without sign or trailing text; returns -1 for anything else. */
static int parse_u64(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (text == NULL || *text < '0' || *text > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static void read_watchdog(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	uint64_t value;
	uint64_t owner;

	watchdog_usec = 0;
	if (usec == NULL)
		return;
	if (parse_u64(usec, &value) < 0 || value == 0) {
		log_warn("sdnotify", NULL,
			 "WATCHDOG_USEC=\"%s\" is not a positive number of microseconds; no "
			 "watchdog pings are sent",
			 usec);
		return;
	}
	/* Another process of the service may own the watchdog. */
	if (pid != NULL && (parse_u64(pid, &owner) < 0 || owner != (uint64_t)getpid()))
		return;
	watchdog_usec = value;
}

int sdnotify_open(void)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t length;
	socklen_t addr_length;

	read_watchdog();
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (name == NULL || name[0] == '\0') {
		unsetenv("NOTIFY_SOCKET");
		watchdog_usec = 0;
		return 0;
	}
	length = strlen(name);
	if ((name[0] != '/' && name[0] != '@') || length >= sizeof(addr.sun_path)) {
		log_error("sdnotify", NULL,
			  "NOTIFY_SOCKET=\"%s\" is neither an absolute socket path nor an "
			  "@abstract name shorter than %zu bytes; readiness is not reported",
			  name, sizeof(addr.sun_path));
		unsetenv("NOTIFY_SOCKET");
		watchdog_usec = 0;
		return -1;
	}
	memcpy(addr.sun_path, name, length);
	if (name[0] == '@')
		addr.sun_path[0] = '\0'; /* abstract: the name without a terminating NUL */
	addr_length =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length + (name[0] == '@' ? 0 : 1));
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (notify_fd < 0 || connect(notify_fd, (struct sockaddr *)&addr, addr_length) < 0) {
		log_error_errno("sdnotify", NULL,
				"cannot connect to NOTIFY_SOCKET=\"%s\"; readiness is not reported",
				name);
		if (notify_fd >= 0)
			close(notify_fd);
		notify_fd = -1;
		unsetenv("NOTIFY_SOCKET");
		watchdog_usec = 0;
		return -1;
	}
	unsetenv("NOTIFY_SOCKET");
	return 0;
}

void sdnotify_send(const char *state)
{
	if (notify_fd < 0)
		return;
	if (send(notify_fd, state, strlen(state), MSG_NOSIGNAL) < 0)
		log_debug("sdnotify", NULL, "cannot send \"%s\" to the service manager: %s", state,
			  strerror(errno));
}

void sdnotify_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (notify_fd < 0)
		return;
	n = snprintf(buf, sizeof buf, "STATUS=");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	/* A newline would start another assignment. */
	for (char *p = buf; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	sdnotify_send(buf);
}

void sdnotify_reloading(void)
{
	char buf[64];

	if (notify_fd < 0)
		return;
	snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, clock_monotonic_us());
	sdnotify_send(buf);
}

uint64_t sdnotify_watchdog_usec(void)
{
	return notify_fd >= 0 ? watchdog_usec : 0;
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sdnotify_send("WATCHDOG=1");
}

int sdnotify_watchdog_start(struct event_base *base)
{
	uint64_t half = sdnotify_watchdog_usec() / 2;
	struct timeval tv = {.tv_sec = (time_t)(half / 1000000u),
			     .tv_usec = (suseconds_t)(half % 1000000u)};

	if (half == 0 || watchdog_timer != NULL)
		return 0;
	watchdog_timer = event_new(base, -1, EV_PERSIST, on_watchdog, NULL);
	if (watchdog_timer == NULL || event_add(watchdog_timer, &tv) < 0) {
		log_error("sdnotify", NULL, "cannot start the watchdog timer");
		return -1;
	}
	/* The first ping now: the start may have taken a good part of the interval. */
	sdnotify_send("WATCHDOG=1");
	log_info("sdnotify", NULL, "sending watchdog pings every %" PRIu64 " ms", half / 1000u);
	return 0;
}

void sdnotify_close(void)
{
	if (watchdog_timer != NULL) {
		event_free(watchdog_timer);
		watchdog_timer = NULL;
	}
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
}
