/*
 * Drives one receiver without the dispatcher, for integration tests: parses the
 * receiver's options from a YAML file, reads a notification in its stored JSON form,
 * calls send() on a libevent loop and prints each outcome as one JSON line:
 *   {"result":"ok|retry|permanent","reason":"...","retry_after_ms":N,"detail":"..."}
 *
 * Usage: send_notification --type TYPE --options FILE.yml --notification FILE.json
 *          [--timeout-ms MS] [--repeat N] [--cancel-after-ms MS] [--log-level LEVEL]
 * --repeat sends the notification N times in a row on the same receiver state;
 * --cancel-after-ms cancels the first attempt after MS and prints {"result":"cancelled"}.
 * Exit status: 0 after the outcomes were printed, 1 for usage or input errors (config
 * errors go to stderr as FILE:LINE:COLUMN lines), 3 when done() was never called.
 */
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerter/notification.h"
#include "alerter/receiver.h"
#include "collector/cfg.h"
#include "collector/log.h"

/* Extra time past the attempt's timeout before the tool calls the receiver stuck. */
#define SEND_GRACE_MS 5000

struct attempt {
	struct event_base *base;
	struct delivery_outcome outcome;
	bool finished;
	bool cancelled;
	bool stuck;
	const struct receiver_type *type;
	struct receiver_op *op;
};

struct arguments {
	const char *type;
	const char *options;
	const char *notification;
	int64_t timeout_ms;
	long repeat;
	int64_t cancel_after_ms;
};

static void usage(void)
{
	fprintf(stderr, "usage: send_notification --type TYPE --options FILE.yml "
			"--notification FILE.json [--timeout-ms MS] [--repeat N] "
			"[--cancel-after-ms MS] [--log-level LEVEL]\n");
	exit(1);
}

static int64_t number_argument(const char *name, const char *text)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < 0) {
		fprintf(stderr, "%s: %s is not a non-negative integer\n", name, text);
		exit(1);
	}
	return v;
}

static void parse_arguments(int argc, char **argv, struct arguments *a)
{
	a->timeout_ms = 10000;
	a->repeat = 1;
	for (int i = 1; i < argc; i++) {
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		enum log_level level;

		if (value == NULL)
			usage();
		if (strcmp(argv[i], "--type") == 0)
			a->type = value;
		else if (strcmp(argv[i], "--options") == 0)
			a->options = value;
		else if (strcmp(argv[i], "--notification") == 0)
			a->notification = value;
		else if (strcmp(argv[i], "--timeout-ms") == 0)
			a->timeout_ms = number_argument(argv[i], value);
		else if (strcmp(argv[i], "--repeat") == 0)
			a->repeat = (long)number_argument(argv[i], value);
		else if (strcmp(argv[i], "--cancel-after-ms") == 0)
			a->cancel_after_ms = number_argument(argv[i], value);
		else if (strcmp(argv[i], "--log-level") == 0 && log_level_parse(value, &level) == 0)
			log_set_level(level);
		else
			usage();
		i++;
	}
	if (a->type == NULL || a->options == NULL || a->notification == NULL)
		usage();
}

static const char *result_name(enum delivery_result r)
{
	switch (r) {
	case DELIVERY_OK:
		return "ok";
	case DELIVERY_RETRY:
		return "retry";
	case DELIVERY_PERMANENT:
		return "permanent";
	}
	return "unknown";
}

static void print_outcome(const char *result, const struct delivery_outcome *o)
{
	json_t *line = json_object();
	char *text;

	json_object_set_new(line, "result", json_string(result));
	if (o != NULL) {
		json_object_set_new(line, "reason", json_string(o->reason));
		json_object_set_new(line, "retry_after_ms", json_integer(o->retry_after_ms));
		/* A detail may quote a server's non-UTF-8 bytes, which jansson rejects. */
		json_t *detail = json_string(o->detail);
		json_object_set_new(line, "detail", detail ? detail : json_string("(not UTF-8)"));
	}
	text = json_dumps(line, JSON_COMPACT);
	printf("%s\n", text);
	fflush(stdout);
	free(text);
	json_decref(line);
}

static void attempt_done(void *arg, const struct delivery_outcome *outcome)
{
	struct attempt *at = arg;

	at->outcome = *outcome;
	at->finished = true;
	at->op = NULL;
	event_base_loopbreak(at->base);
}

static void cancel_fired(evutil_socket_t fd, short what, void *arg)
{
	struct attempt *at = arg;

	(void)fd;
	(void)what;
	if (at->op != NULL)
		at->type->cancel(at->op);
	at->op = NULL;
	at->cancelled = true;
	event_base_loopbreak(at->base);
}

static void deadline_fired(evutil_socket_t fd, short what, void *arg)
{
	struct attempt *at = arg;

	(void)fd;
	(void)what;
	at->stuck = true;
	event_base_loopbreak(at->base);
}

static void arm(struct event *ev, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	event_add(ev, &tv);
}

/* Runs one send() to its end; returns false when done() never came. */
static bool run_attempt(const struct arguments *a, struct attempt *at, void *state,
			const struct notification *n, bool cancel)
{
	struct event *deadline = evtimer_new(at->base, deadline_fired, at);
	struct event *canceller = evtimer_new(at->base, cancel_fired, at);
	bool ok = true;

	at->finished = at->cancelled = at->stuck = false;
	at->op = at->type->send(state, at->base, n, a->timeout_ms, attempt_done, at, &at->outcome);
	if (at->op == NULL) {
		print_outcome(result_name(at->outcome.result), &at->outcome);
		goto out;
	}
	arm(deadline, a->timeout_ms + SEND_GRACE_MS);
	if (cancel)
		arm(canceller, a->cancel_after_ms);
	while (!at->finished && !at->cancelled && !at->stuck)
		event_base_dispatch(at->base);
	if (at->finished) {
		print_outcome(result_name(at->outcome.result), &at->outcome);
	} else if (at->cancelled) {
		print_outcome("cancelled", NULL);
	} else {
		fprintf(stderr, "send_notification: done() was not called within %lld ms\n",
			(long long)(a->timeout_ms + SEND_GRACE_MS));
		at->type->cancel(at->op);
		ok = false;
	}
out:
	event_free(deadline);
	event_free(canceller);
	return ok;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t length = 0;
	size_t capacity = 0;
	size_t n;
	char chunk[4096];

	if (f == NULL) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (length + n + 1 > capacity) {
			capacity = (length + n + 1) * 2;
			text = realloc(text, capacity);
			if (text == NULL)
				abort();
		}
		memcpy(text + length, chunk, n);
		length += n;
	}
	fclose(f);
	if (text == NULL)
		text = calloc(1, 1);
	else
		text[length] = '\0';
	return text;
}

/* Parses the options file with the type's parse(); exits with the errors on failure. */
static void *parse_options(const struct receiver_type *type, const char *path)
{
	struct cfg *cfg = cfg_parse_file(path);
	struct cfg_map root;
	void *state = NULL;
	int rc = -1;

	if (cfg_error_count(cfg) == 0 && cfg_root(cfg, &root) == 0) {
		rc = type->parse(&root, &state);
		cfg_map_finish(&root);
	}
	if (rc < 0 || cfg_error_count(cfg) > 0) {
		fprintf(stderr, "%s", cfg_errors(cfg));
		if (state != NULL)
			type->free(state);
		cfg_free(cfg);
		exit(1);
	}
	cfg_free(cfg);
	return state;
}

int main(int argc, char **argv)
{
	struct arguments a = {0};
	struct attempt at = {0};
	struct notification *n;
	char *json;
	char *error = NULL;
	void *state;
	int status = 0;

	parse_arguments(argc, argv, &a);
	at.type = receiver_type_find(a.type);
	if (at.type == NULL) {
		fprintf(stderr, "unknown receiver type %s\n", a.type);
		return 1;
	}
	json = read_file(a.notification);
	n = notification_from_json(json, &error);
	free(json);
	if (n == NULL) {
		fprintf(stderr, "invalid notification %s: %s\n", a.notification, error);
		free(error);
		return 1;
	}
	state = parse_options(at.type, a.options);
	at.base = event_base_new();
	for (long i = 0; i < a.repeat; i++) {
		if (!run_attempt(&a, &at, state, n, i == 0 && a.cancel_after_ms > 0)) {
			status = 3;
			break;
		}
	}
	/* The receiver's free() releases the curl multi handle, so it runs before the base
	 * is freed. */
	at.type->free(state);
	event_base_free(at.base);
	notification_free(n);
	return status;
}
