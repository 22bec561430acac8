/*
 * A client of rrdcached's line protocol (rrdtool 1.7), written for the store's writer
 * thread: blocking I/O with poll() timeouts, one connection, no locking. Its main use is
 * BATCH mode, where many UPDATE lines travel in one write and the daemon sends back only
 * the list of failed lines, so that a failed line never costs the connection.
 *
 * Addresses: "unix:/path", "/path" (a unix socket), "host", "host:port", "[v6addr]:port"
 * (TCP, default port 42217).
 */
#ifndef TOCSIN_RRDCACHED_H
#define TOCSIN_RRDCACHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RRDCACHED_DEFAULT_PORT "42217"

/*
 * Maximum length of one command line that the client builds. rrdcached 1.7 reads
 * commands into a buffer of 8192 bytes (twice RRD_CMD_MAX) and drops the connection on
 * a longer line, so the store splits the values of one file over several UPDATE lines.
 */
#define RRDCACHED_LINE_MAX 4000

struct rrdcached;

/* Parses the address; does not connect. NULL when the address is invalid. */
struct rrdcached *rrdcached_new(const char *address);
void rrdcached_free(struct rrdcached *c);

const char *rrdcached_address(const struct rrdcached *c);
/* True for unix sockets: the daemon then shares this host's file system. */
bool rrdcached_is_unix(const struct rrdcached *c);
bool rrdcached_is_connected(const struct rrdcached *c);
/* Text of the last connection or I/O error, for log lines. */
const char *rrdcached_error(const struct rrdcached *c);

/* Connects (timeout 5 s). Returns 0, or -1 with rrdcached_error() set. */
int rrdcached_connect(struct rrdcached *c);
void rrdcached_disconnect(struct rrdcached *c);

/*
 * One reply. A negative status is an error, and a positive one is the number of lines
 * that follow the status line; `lines` holds those lines.
 */
struct rrdcached_reply {
	long status;
	char message[512];
	char **lines;
	size_t line_count;
};

void rrdcached_reply_free(struct rrdcached_reply *reply);

/*
 * Sends one command (`line` without the newline) and reads its reply into *reply (free
 * it with rrdcached_reply_free). After an error reply the client resynchronizes with a
 * PING, because some rrdcached error messages span two lines. Returns 0 when a reply
 * was read, whatever its status; -1 on an I/O error or timeout, after which the
 * connection is closed.
 */
int rrdcached_command(struct rrdcached *c, const char *line, struct rrdcached_reply *reply);

/* Commands collected for one BATCH exchange. */
struct rrdcached_batch {
	char *text;
	size_t length;
	size_t capacity;
	size_t commands;   /* complete command lines in text */
	size_t line_start; /* offset of the line being built */
};

void rrdcached_batch_init(struct rrdcached_batch *b);
void rrdcached_batch_clear(struct rrdcached_batch *b);
void rrdcached_batch_free(struct rrdcached_batch *b);

/*
 * Starts an "UPDATE path" line. The path is escaped (backslash before spaces and
 * backslashes); it must not contain a newline.
 */
void rrdcached_batch_begin_update(struct rrdcached_batch *b, const char *path);
/* Appends " TIME:VALUE" to the current line; NaN and infinities are sent as "U". */
void rrdcached_batch_append_value(struct rrdcached_batch *b, int64_t unix_s, double value);
/* Length of the line being built, to keep it under RRDCACHED_LINE_MAX. */
size_t rrdcached_batch_line_length(const struct rrdcached_batch *b);
/* Ends the current line; it becomes command number b->commands (counted from 1). */
void rrdcached_batch_end_command(struct rrdcached_batch *b);

/*
 * Called once for each command that rrdcached rejected: `command` counts from 1 in the
 * order of the batch, `message` is the daemon's text.
 */
typedef void rrdcached_batch_error_fn(size_t command, const char *message, void *arg);

/*
 * Runs one exchange: BATCH, every collected command, ".", then reads the error list and
 * calls on_error for each entry. Returns 0 when the exchange completed (commands that
 * failed were reported through on_error and the connection stays open); -1 on an I/O
 * error or timeout, after which the connection is closed and it is unknown which
 * commands were applied. The batch is left unchanged, so it can be sent again.
 */
int rrdcached_batch_send(struct rrdcached *c, const struct rrdcached_batch *b,
			 rrdcached_batch_error_fn *on_error, void *arg);

#endif
