/*
 * SQLSTATE and libpq message classification for the postgres probe: which status and
 * reason a failure gets. See pg_error.h for the sources of each kind of error.
 */
#include "probes/pg_error.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Exact codes first, then whole classes (a code ending in "000" names its class). */
static const struct {
	const char *sqlstate;
	struct pg_error_class cls;
} sqlstate_table[] = {
    {"28P01", {PROBE_STATUS_AUTH_FAILED, "authentication failed"}},
    {"28000", {PROBE_STATUS_AUTH_FAILED, "authentication failed"}},
    {"3D000", {PROBE_STATUS_NOT_FOUND, "database does not exist"}},
    {"53300", {PROBE_STATUS_LIMIT_REACHED, "connection limit reached"}},
    /* cannot_connect_now: starting up, shutting down, or in crash recovery. */
    {"57P03", {PROBE_STATUS_UNAVAILABLE, "server starting up"}},
    {"57P01", {PROBE_STATUS_UNAVAILABLE, "server shutting down"}},
    {"57P02", {PROBE_STATUS_UNAVAILABLE, "server crashed"}},
    {"57014", {PROBE_STATUS_TIMEOUT, "query timeout"}},
    {"42501", {PROBE_STATUS_NOT_PERMITTED, "permission denied"}},
    {"08P01", {PROBE_STATUS_PROTOCOL_ERROR, "protocol violation"}},
};

static const struct {
	const char *sqlstate_class;
	struct pg_error_class cls;
} class_table[] = {
    {"08", {PROBE_STATUS_CONNECTION_LOST, "connection lost"}},
    {"28", {PROBE_STATUS_AUTH_FAILED, "authentication failed"}},
    {"53", {PROBE_STATUS_UNAVAILABLE, "server out of resources"}},
    {"57", {PROBE_STATUS_UNAVAILABLE, "server unavailable"}},
};

/* On an established connection these codes end the session: the server hung up. */
static const char *const session_ending[] = {"57P01", "57P02"};

static bool sqlstate_valid(const char *s)
{
	if (s == NULL || strlen(s) != 5)
		return false;
	for (size_t i = 0; i < 5; i++) {
		if (!isdigit((unsigned char)s[i]) && !isupper((unsigned char)s[i]))
			return false;
	}
	return true;
}

bool pg_error_classify_sqlstate(const char *sqlstate, bool connecting, struct pg_error_class *out)
{
	*out = (struct pg_error_class){PROBE_STATUS_PROTOCOL_ERROR, "query failed"};
	if (!sqlstate_valid(sqlstate))
		return false;

	if (!connecting) {
		for (size_t i = 0; i < sizeof session_ending / sizeof session_ending[0]; i++) {
			if (strcmp(sqlstate, session_ending[i]) == 0) {
				*out = (struct pg_error_class){PROBE_STATUS_CONNECTION_LOST,
							       "connection lost"};
				return true;
			}
		}
	}
	for (size_t i = 0; i < sizeof sqlstate_table / sizeof sqlstate_table[0]; i++) {
		if (strcmp(sqlstate, sqlstate_table[i].sqlstate) == 0) {
			*out = sqlstate_table[i].cls;
			return true;
		}
	}
	for (size_t i = 0; i < sizeof class_table / sizeof class_table[0]; i++) {
		if (strncmp(sqlstate, class_table[i].sqlstate_class, 2) == 0) {
			*out = class_table[i].cls;
			return true;
		}
	}
	return false;
}

bool pg_error_sqlstate_in(const char *message, char out[6])
{
	/*
	 * libpq writes a server error as "SEVERITY:  CODE: text" in verbose mode; the
	 * severity word may be translated, but the two spaces, the code and ": " are not.
	 */
	for (const char *p = message != NULL ? strstr(message, ":  ") : NULL; p != NULL;
	     p = strstr(p + 1, ":  ")) {
		char code[6];

		memcpy(code, p + 3, 5);
		code[5] = '\0';
		if (strnlen(p + 3, 7) >= 7 && p[8] == ':' && p[9] == ' ' && sqlstate_valid(code)) {
			memcpy(out, code, 6);
			return true;
		}
	}
	return false;
}

/* libpq 15's client-side messages (fe-connect.c, fe-misc.c, fe-secure*.c), C locale. */
static const struct {
	const char *text;
	struct pg_error_class cls;
} message_table[] = {
    {"could not translate host name", {PROBE_STATUS_RESOLVE_ERROR, "name not resolved"}},
    {"Connection refused", {PROBE_STATUS_REFUSED, "refused"}},
    /* A unix socket path with no server behind it. */
    {"No such file or directory", {PROBE_STATUS_REFUSED, "refused"}},
    {"No route to host", {PROBE_STATUS_UNREACHABLE, "host unreachable"}},
    {"Network is unreachable", {PROBE_STATUS_UNREACHABLE, "network unreachable"}},
    {"timeout expired", {PROBE_STATUS_TIMEOUT, "connect timeout"}},
    {"Connection timed out", {PROBE_STATUS_TIMEOUT, "connect timeout"}},
    {"no password supplied", {PROBE_STATUS_AUTH_FAILED, "authentication failed"}},
    {"server closed the connection unexpectedly",
     {PROBE_STATUS_CONNECTION_LOST, "connection lost"}},
    {"Connection reset by peer", {PROBE_STATUS_CONNECTION_LOST, "connection lost"}},
    {"Broken pipe", {PROBE_STATUS_CONNECTION_LOST, "connection lost"}},
    {"no connection to the server", {PROBE_STATUS_CONNECTION_LOST, "connection lost"}},
    {"could not receive data from server", {PROBE_STATUS_CONNECTION_LOST, "connection lost"}},
    {"could not send data to server", {PROBE_STATUS_CONNECTION_LOST, "connection lost"}},
    {"SSL", {PROBE_STATUS_TLS_ERROR, "TLS error"}},
    {"certificate", {PROBE_STATUS_TLS_ERROR, "TLS error"}},
};

void pg_error_classify_message(const char *message, struct pg_error_class *out)
{
	*out = (struct pg_error_class){PROBE_STATUS_PROTOCOL_ERROR, "connection failed"};
	if (message == NULL)
		return;
	for (size_t i = 0; i < sizeof message_table / sizeof message_table[0]; i++) {
		if (strstr(message, message_table[i].text) != NULL) {
			*out = message_table[i].cls;
			return;
		}
	}
}

void pg_error_classify_connect(const char *message, struct pg_error_class *out)
{
	char sqlstate[6];

	if (pg_error_sqlstate_in(message, sqlstate) &&
	    pg_error_classify_sqlstate(sqlstate, true, out))
		return;
	pg_error_classify_message(message, out);
}

const char *pg_error_first_line(const char *message, char *buf, size_t size)
{
	const char *start = message != NULL ? message : "";
	const char *failed = strstr(start, " failed: ");
	size_t length;

	/* libpq 15 prefixes each attempt with "connection to server at ... failed: ". */
	if (strncmp(start, "connection to server ", 21) == 0 && failed != NULL)
		start = failed + 9;
	length = strcspn(start, "\n");
	while (length > 0 && isspace((unsigned char)start[length - 1]))
		length--;
	snprintf(buf, size, "%.*s", (int)length, start);
	return buf;
}

void pg_status_throttle_init(struct pg_status_throttle *t)
{
	memset(t, 0, sizeof(*t));
	throttle_init(&t->throttle, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
}

bool pg_status_throttle_fail(struct pg_status_throttle *t, enum probe_status status,
			     uint64_t now_ms, uint64_t *suppressed)
{
	t->failures++;
	if (t->throttle.failing && status != t->status)
		throttle_init(&t->throttle, t->throttle.initial_ms, t->throttle.max_ms);
	t->status = status;
	return throttle_fail(&t->throttle, now_ms, suppressed);
}

bool pg_status_throttle_ok(struct pg_status_throttle *t, uint64_t *failures)
{
	uint64_t count = t->failures;

	t->failures = 0;
	if (!throttle_ok(&t->throttle, NULL))
		return false;
	if (failures != NULL)
		*failures = count;
	return true;
}
