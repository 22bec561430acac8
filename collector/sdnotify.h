/*
 * systemd's readiness protocol (sd_notify) without libsystemd: state lines sent as one
 * datagram each to the AF_UNIX socket named by $NOTIFY_SOCKET, and watchdog pings at half
 * of $WATCHDOG_USEC from a timer on the event loop, so that a stuck loop stops them and
 * systemd restarts the service. Every call is a no-op when $NOTIFY_SOCKET is unset.
 * Loop thread only.
 */
#ifndef TOCSIN_SDNOTIFY_H
#define TOCSIN_SDNOTIFY_H

#include <stdint.h>

struct event_base;

/*
 * Reads $NOTIFY_SOCKET ("/path" or "@abstract"), $WATCHDOG_USEC and $WATCHDOG_PID, opens and
 * connects the socket, and removes the three variables from the environment so that exec
 * probes and command receivers do not inherit them. Connecting now lets the messages reach
 * the socket after a privilege drop. Returns 0, also when the variable is unset, or -1
 * after logging why the socket cannot be used (the daemon then runs without it).
 */
int sdnotify_open(void);

/* Sends one or more newline-separated KEY=VALUE assignments; failures are logged at debug. */
void sdnotify_send(const char *state);

/* Sends STATUS=<text>. */
void sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sends RELOADING=1 with MONOTONIC_USEC, which systemd 253 and later expect with it. */
void sdnotify_reloading(void);

/*
 * The watchdog interval systemd asked for in microseconds, 0 when it asked for none or
 * $WATCHDOG_PID names another process.
 */
uint64_t sdnotify_watchdog_usec(void);

/* Starts WATCHDOG=1 pings every half interval on `base`; no-op without a watchdog. */
int sdnotify_watchdog_start(struct event_base *base);

/* Stops the pings and closes the socket. */
void sdnotify_close(void);

#endif
