/*
 * Unit tests of the outbox on real SQLite files in a temporary directory and a virtual
 * clock: idempotent enqueue, the order of due entries, retries after Retry-After and
 * back-off, dead letters, recovery of attempts a crash interrupted, counts, listing,
 * pruning and reopening.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alerter/outbox.h"
#include "collector/log.h"
#include "collector/statedb.h"

/* A realistic Unix time in ms, so no computation depends on times near 0. */
#define T0 1700000000000

static const struct backoff_policy policy = {
    .initial_ms = 1000,
    .max_ms = 60000,
    .max_age_ms = 3600000,
};

struct fixture {
	char dir[64];
	struct statedb *db;
	struct outbox *ob;
	uint64_t draw; /* what the random source returns */
	FILE *log;     /* captured log lines, when capture_log() was called */
};

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static uint64_t fixed_random(void *arg)
{
	const struct fixture *f = arg;

	return f->draw;
}

/* Opens the state database and the outbox of f->dir, failing the test on an error. */
static void open_outbox(struct fixture *f)
{
	char *error = NULL;

	f->db = statedb_open(f->dir, &error);
	if (f->db == NULL)
		fail_msg("statedb_open: %s", error);
	f->ob = outbox_open(f->db, &error);
	if (f->ob == NULL)
		fail_msg("outbox_open: %s", error);
	/* The largest draw makes every back-off delay its cap, so times are exact. */
	f->draw = UINT64_MAX;
	outbox_set_random(f->ob, fixed_random, f);
}

static void close_outbox(struct fixture *f)
{
	outbox_close(f->ob);
	statedb_close(f->db);
	f->ob = NULL;
	f->db = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof f->dir, "/tmp/test_outbox.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	open_outbox(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	log_set_fd(2);
	if (f->log != NULL)
		fclose(f->log);
	close_outbox(f);
	nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void capture_log(struct fixture *f)
{
	f->log = tmpfile();
	assert_non_null(f->log);
	log_set_fd(fileno(f->log));
}

/* The log lines written since capture_log(), in buf. */
static const char *captured_log(struct fixture *f, char *buf, size_t size)
{
	size_t n;

	rewind(f->log);
	n = fread(buf, 1, size - 1, f->log);
	buf[n] = '\0';
	return buf;
}

static struct delivery_outcome outcome(enum delivery_result result, int64_t retry_after_ms,
				       const char *reason, const char *detail)
{
	struct delivery_outcome o = {.result = result, .retry_after_ms = retry_after_ms};

	snprintf(o.reason, sizeof o.reason, "%s", reason);
	snprintf(o.detail, sizeof o.detail, "%s", detail);
	return o;
}

/* One attempt: marks id sending at now_ms, then records o; returns the new state. */
static int attempt(struct fixture *f, int64_t id, int64_t now_ms, struct delivery_outcome o)
{
	assert_int_equal(outbox_mark_sending(f->ob, id, now_ms), 0);
	return outbox_mark_result(f->ob, id, &o, now_ms, &policy);
}

static int64_t enqueue(struct fixture *f, const char *key, int64_t now_ms)
{
	int64_t id = outbox_enqueue(f->ob, "team", 0, key, "{\"k\":1}", now_ms - 10, now_ms);

	assert_true(id > 0);
	return id;
}

struct listed {
	size_t count;
	int64_t ids[16];
	char keys[16][32];
};

static void collect(void *arg, const struct outbox_entry *e)
{
	struct listed *l = arg;

	assert_true(l->count < 16);
	l->ids[l->count] = e->id;
	snprintf(l->keys[l->count], sizeof l->keys[0], "%s", e->idempotency_key);
	l->count++;
}

/* The entries due at now_ms, of every receiver. */
static struct listed due(struct fixture *f, int64_t now_ms)
{
	struct listed l = {0};
	int passed = outbox_next_due(f->ob, now_ms, NULL, -1, 16, collect, &l);

	assert_int_equal(passed, (int)l.count);
	return l;
}

static void enqueue_idempotent(void **state)
{
	struct fixture *f = *state;
	struct outbox_counts counts;
	struct outbox_entry *e;
	int64_t id;

	id = outbox_enqueue(f->ob, "team", 0, "grp/1", "{\"first\":true}", T0 - 50, T0);
	assert_true(id > 0);
	/* The same key again, even with another payload, returns the stored row. */
	assert_int_equal(outbox_enqueue(f->ob, "team", 0, "grp/1", "{\"second\":true}", T0, T0 + 9),
			 id);
	assert_int_equal(outbox_counts(f->ob, NULL, &counts), 0);
	assert_int_equal(counts.state[OUTBOX_QUEUED], 1);

	e = outbox_get(f->ob, id);
	assert_non_null(e);
	assert_string_equal(e->payload, "{\"first\":true}");
	assert_string_equal(e->idempotency_key, "grp/1");
	assert_string_equal(e->receiver, "team");
	assert_int_equal(e->integration, 0);
	assert_int_equal(e->state, OUTBOX_QUEUED);
	assert_int_equal(e->attempts, 0);
	assert_int_equal(e->created_ms, T0);
	assert_int_equal(e->next_attempt_ms, T0);
	assert_int_equal(e->condition_ms, T0 - 50);
	assert_int_equal(e->delivered_ms, 0);
	assert_string_equal(e->last_reason, "");
	outbox_entry_free(e);

	/* A delivered entry is not queued again by a replay of its key. */
	assert_int_equal(attempt(f, id, T0 + 100, outcome(DELIVERY_OK, 0, "2xx", "200 OK")),
			 OUTBOX_DELIVERED);
	assert_int_equal(outbox_enqueue(f->ob, "team", 0, "grp/1", "{}", T0, T0 + 200), id);
	assert_int_equal(due(f, T0 + 200).count, 0);
}

/* The second webhook of a receiver, or another receiver, gets its own row for one key. */
static void key_unique_per_integration(void **state)
{
	struct fixture *f = *state;
	int64_t first = outbox_enqueue(f->ob, "team", 0, "grp/7", "{}", T0, T0);
	int64_t second = outbox_enqueue(f->ob, "team", 1, "grp/7", "{}", T0, T0);
	int64_t other = outbox_enqueue(f->ob, "ops", 0, "grp/7", "{}", T0, T0);
	struct listed l = {0};

	assert_true(first > 0);
	assert_true(second > 0);
	assert_true(other > 0);
	assert_int_not_equal(first, second);
	assert_int_not_equal(first, other);
	assert_int_not_equal(second, other);
	assert_int_equal(outbox_enqueue(f->ob, "team", 1, "grp/7", "{}", T0, T0), second);
	assert_int_equal(outbox_next_due(f->ob, T0, "team", 1, 16, collect, &l), 1);
	assert_int_equal(l.ids[0], second);
}

static void due_in_attempt_order(void **state)
{
	struct fixture *f = *state;
	int64_t a = enqueue(f, "a/1", T0 + 1000);
	int64_t b = enqueue(f, "b/1", T0 + 2000);
	int64_t c = enqueue(f, "c/1", T0 + 3000);
	struct listed l;

	l = due(f, T0 + 999);
	assert_int_equal(l.count, 0);
	l = due(f, T0 + 2500);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.ids[0], a);
	assert_int_equal(l.ids[1], b);

	/* a waits 5 s: b and c come first now, and a after them once due again. */
	assert_int_equal(attempt(f, a, T0 + 3000, outcome(DELIVERY_RETRY, 5000, "429", "")),
			 OUTBOX_RETRYING);
	l = due(f, T0 + 7999);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.ids[0], b);
	assert_int_equal(l.ids[1], c);
	l = due(f, T0 + 8000);
	assert_int_equal(l.count, 3);
	assert_int_equal(l.ids[0], b);
	assert_int_equal(l.ids[1], c);
	assert_int_equal(l.ids[2], a);

	/* The limit keeps the earliest; an entry in flight is not due. */
	l = (struct listed){0};
	assert_int_equal(outbox_next_due(f->ob, T0 + 8000, NULL, -1, 1, collect, &l), 1);
	assert_int_equal(l.ids[0], b);
	assert_int_equal(outbox_mark_sending(f->ob, b, T0 + 8000), 0);
	l = due(f, T0 + 8000);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.ids[0], c);
}

static void due_filters_receiver_integration(void **state)
{
	struct fixture *f = *state;
	int64_t team0 = outbox_enqueue(f->ob, "team", 0, "k/1", "{}", T0, T0);
	int64_t team1 = outbox_enqueue(f->ob, "team", 1, "k/1", "{}", T0, T0);
	int64_t ops0 = outbox_enqueue(f->ob, "ops", 0, "k/1", "{}", T0, T0);
	struct listed l = {0};

	assert_int_equal(outbox_next_due(f->ob, T0, "team", -1, 16, collect, &l), 2);
	assert_int_equal(l.ids[0], team0);
	assert_int_equal(l.ids[1], team1);
	l = (struct listed){0};
	assert_int_equal(outbox_next_due(f->ob, T0, NULL, 0, 16, collect, &l), 2);
	assert_int_equal(l.ids[0], team0);
	assert_int_equal(l.ids[1], ops0);
	l = (struct listed){0};
	assert_int_equal(outbox_next_due(f->ob, T0, "nobody", -1, 16, collect, &l), 0);
}

static void next_attempt_for_timer(void **state)
{
	struct fixture *f = *state;
	int64_t next = 0;
	int64_t a;

	assert_int_equal(outbox_next_attempt(f->ob, NULL, -1, &next), 0);
	a = enqueue(f, "a/1", T0);
	enqueue(f, "b/1", T0 + 500);
	assert_int_equal(outbox_next_attempt(f->ob, NULL, -1, &next), 1);
	assert_int_equal(next, T0);
	assert_int_equal(attempt(f, a, T0, outcome(DELIVERY_RETRY, 3000, "429", "")),
			 OUTBOX_RETRYING);
	assert_int_equal(outbox_next_attempt(f->ob, NULL, -1, &next), 1);
	assert_int_equal(next, T0 + 500);
	assert_int_equal(outbox_next_attempt(f->ob, "other", -1, &next), 0);
}

/*
 * The three notifications of the retry case, on one virtual clock:
 *  - one gets 429 with Retry-After 2 s, then 503, then 200: delivered once, after three
 *    attempts, the second 2 s after the first, the third after the back-off;
 *  - one gets 400: one attempt, dead, logged as a permanent error;
 *  - one gets 429 with Retry-After one day: its retry waits max_ms only, and entries
 *    enqueued meanwhile are due at once.
 */
static void retry_case_three_notifications(void **state)
{
	struct fixture *f = *state;
	struct outbox_counts counts;
	struct outbox_entry *e;
	struct listed l;
	char log[8192];
	int64_t flaky;
	int64_t rejected;
	int64_t throttled;
	int64_t later;

	capture_log(f);
	flaky = enqueue(f, "flaky/1", T0);
	rejected = enqueue(f, "rejected/1", T0);
	throttled = enqueue(f, "throttled/1", T0);
	l = due(f, T0);
	assert_int_equal(l.count, 3);

	/* Attempt 1 of each. */
	assert_int_equal(attempt(f, flaky, T0, outcome(DELIVERY_RETRY, 2000, "429", "HTTP 429")),
			 OUTBOX_RETRYING);
	assert_int_equal(
	    attempt(f, rejected, T0, outcome(DELIVERY_PERMANENT, 0, "4xx", "HTTP 400 Bad Request")),
	    OUTBOX_DEAD);
	assert_int_equal(
	    attempt(f, throttled, T0, outcome(DELIVERY_RETRY, 86400000, "429", "HTTP 429")),
	    OUTBOX_RETRYING);
	e = outbox_get(f->ob, throttled);
	assert_non_null(e);
	assert_int_equal(e->next_attempt_ms, T0 + policy.max_ms);
	outbox_entry_free(e);

	/* Nothing is due before Retry-After has passed, but a new entry is due at once. */
	assert_int_equal(due(f, T0 + 1999).count, 0);
	later = enqueue(f, "later/1", T0 + 1000);
	l = due(f, T0 + 1000);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.ids[0], later);
	assert_int_equal(attempt(f, later, T0 + 1000, outcome(DELIVERY_OK, 0, "2xx", "")),
			 OUTBOX_DELIVERED);

	/* Attempt 2 of flaky, 2 s after attempt 1; then the back-off of retry 1: 2 s. */
	l = due(f, T0 + 2000);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.ids[0], flaky);
	assert_int_equal(
	    attempt(f, flaky, T0 + 2000, outcome(DELIVERY_RETRY, 0, "5xx", "HTTP 503")),
	    OUTBOX_RETRYING);
	e = outbox_get(f->ob, flaky);
	assert_non_null(e);
	assert_int_equal(e->last_attempt_ms, T0 + 2000);
	assert_int_equal(e->next_attempt_ms, T0 + 2000 + 2 * policy.initial_ms);
	assert_string_equal(e->last_reason, "5xx");
	outbox_entry_free(e);
	assert_int_equal(due(f, T0 + 3999).count, 0);

	/* Attempt 3 succeeds. */
	l = due(f, T0 + 4000);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.ids[0], flaky);
	assert_int_equal(attempt(f, flaky, T0 + 4000, outcome(DELIVERY_OK, 0, "2xx", "HTTP 200")),
			 OUTBOX_DELIVERED);
	e = outbox_get(f->ob, flaky);
	assert_non_null(e);
	assert_int_equal(e->state, OUTBOX_DELIVERED);
	assert_int_equal(e->attempts, 3);
	assert_int_equal(e->delivered_ms, T0 + 4000);
	outbox_entry_free(e);

	/* Delivered once: it is never due again and takes no further attempt. */
	assert_int_equal(outbox_mark_sending(f->ob, flaky, T0 + 5000), -1);
	l = due(f, T0 + policy.max_ms);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.ids[0], throttled);

	e = outbox_get(f->ob, rejected);
	assert_non_null(e);
	assert_int_equal(e->state, OUTBOX_DEAD);
	assert_int_equal(e->attempts, 1);
	assert_string_equal(e->last_reason, "4xx");
	assert_string_equal(e->last_detail, "HTTP 400 Bad Request");
	outbox_entry_free(e);

	assert_int_equal(outbox_counts(f->ob, NULL, &counts), 0);
	assert_int_equal(counts.state[OUTBOX_DELIVERED], 2);
	assert_int_equal(counts.state[OUTBOX_DEAD], 1);
	assert_int_equal(counts.state[OUTBOX_RETRYING], 1);
	assert_int_equal(counts.state[OUTBOX_QUEUED], 0);
	assert_int_equal(counts.state[OUTBOX_SENDING], 0);
	assert_int_equal(outbox_dead_total(f->ob), 1);

	captured_log(f, log, sizeof log);
	assert_non_null(strstr(log, "level=error module=outbox receiver=team integration=0 "
				    "key=rejected/1"));
	assert_non_null(strstr(log, "permanent error 4xx (attempts: 1): HTTP 400 Bad Request"));
	assert_null(strstr(log, "key=flaky/1"));
	assert_null(strstr(log, "key=throttled/1"));
}

/* An entry that fails until max_age has passed turns dead, with its last attempt then. */
static void max_age_turns_dead(void **state)
{
	struct fixture *f = *state;
	struct backoff_policy short_age = {
	    .initial_ms = 1000, .max_ms = 60000, .max_age_ms = 10000};
	struct delivery_outcome timeout = outcome(DELIVERY_RETRY, 0, "timeout", "no reply in 5 s");
	struct outbox_entry *e;
	char log[8192];
	int64_t id = enqueue(f, "old/1", T0);

	capture_log(f);
	assert_int_equal(outbox_mark_sending(f->ob, id, T0 + 9500), 0);
	assert_int_equal(outbox_mark_result(f->ob, id, &timeout, T0 + 9500, &short_age),
			 OUTBOX_RETRYING);
	/* The back-off (1 s) would pass the deadline: the last attempt is at the deadline. */
	e = outbox_get(f->ob, id);
	assert_non_null(e);
	assert_int_equal(e->next_attempt_ms, T0 + 10000);
	outbox_entry_free(e);

	assert_int_equal(outbox_mark_sending(f->ob, id, T0 + 10000), 0);
	assert_int_equal(outbox_mark_result(f->ob, id, &timeout, T0 + 10000, &short_age),
			 OUTBOX_DEAD);
	assert_int_equal(outbox_dead_total(f->ob), 1);
	assert_int_equal(due(f, T0 + 100000).count, 0);
	captured_log(f, log, sizeof log);
	assert_non_null(strstr(log, "key=old/1"));
	assert_non_null(strstr(log, "retries given up after 10 s (max_age 10 s, attempts: 2)"));
	assert_non_null(strstr(log, "last error timeout: no reply in 5 s"));
}

/* A notification delivered after max_age, on its last attempt, is delivered. */
static void success_after_deadline_delivers(void **state)
{
	struct fixture *f = *state;
	struct backoff_policy short_age = {
	    .initial_ms = 1000, .max_ms = 60000, .max_age_ms = 10000};
	struct delivery_outcome ok = outcome(DELIVERY_OK, 0, "2xx", "");
	int64_t id = enqueue(f, "slow/1", T0);

	assert_int_equal(outbox_mark_sending(f->ob, id, T0 + 20000), 0);
	assert_int_equal(outbox_mark_result(f->ob, id, &ok, T0 + 20000, &short_age),
			 OUTBOX_DELIVERED);
	assert_int_equal(outbox_dead_total(f->ob), 0);
}

/* Transitions from the wrong state are rejected and change nothing. */
static void wrong_state_rejected(void **state)
{
	struct fixture *f = *state;
	struct delivery_outcome ok = outcome(DELIVERY_OK, 0, "2xx", "");
	struct outbox_entry *e;
	char log[8192];
	int64_t id = enqueue(f, "a/1", T0);

	capture_log(f);
	assert_int_equal(outbox_mark_result(f->ob, id, &ok, T0, &policy), -1);
	assert_int_equal(outbox_mark_sending(f->ob, id, T0), 0);
	assert_int_equal(outbox_mark_sending(f->ob, id, T0), -1);
	assert_int_equal(outbox_mark_sending(f->ob, 9999, T0), -1);
	assert_int_equal(outbox_mark_result(f->ob, 9999, &ok, T0, &policy), -1);
	e = outbox_get(f->ob, id);
	assert_non_null(e);
	assert_int_equal(e->state, OUTBOX_SENDING);
	assert_int_equal(e->attempts, 1);
	outbox_entry_free(e);
	assert_null(outbox_get(f->ob, 9999));
	captured_log(f, log, sizeof log);
	assert_non_null(strstr(log, "entry=1 msg=\"an outcome was recorded for an entry in state "
				    "queued, not sending"));
}

/*
 * A process that dies during an attempt leaves the entry in `sending`. The next open
 * makes it due again at once and counts the interrupted attempt.
 */
static void crash_during_sending_resumes(void **state)
{
	struct fixture *f = *state;
	struct outbox_entry *e;
	char log[8192];
	int status;
	pid_t pid;

	enqueue(f, "done/1", T0);
	close_outbox(f);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *error = NULL;
		struct statedb *db = statedb_open(f->dir, &error);
		struct outbox *ob = db != NULL ? outbox_open(db, &error) : NULL;
		int64_t id;

		if (ob == NULL)
			_exit(2);
		id = outbox_enqueue(ob, "team", 0, "crash/1", "{\"crash\":1}", T0, T0 + 100);
		if (id != 2 || outbox_mark_sending(ob, id, T0 + 200) < 0)
			_exit(3);
		_exit(0); /* no close: the attempt is in flight when the process ends */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	capture_log(f);
	open_outbox(f);
	e = outbox_get(f->ob, 2);
	assert_non_null(e);
	assert_int_equal(e->state, OUTBOX_RETRYING);
	assert_int_equal(e->attempts, 1);
	assert_int_equal(e->next_attempt_ms, T0 + 200);
	assert_string_equal(e->last_reason, "interrupted");
	assert_string_equal(e->payload, "{\"crash\":1}");
	outbox_entry_free(e);
	captured_log(f, log, sizeof log);
	assert_non_null(strstr(log, "1 notifications were being sent when tocsind stopped"));

	/* Due again at once, in order after the entry that never started. */
	{
		struct listed l = due(f, T0 + 200);

		assert_int_equal(l.count, 2);
		assert_int_equal(l.ids[0], 1);
		assert_int_equal(l.ids[1], 2);
	}
	assert_int_equal(attempt(f, 2, T0 + 300, outcome(DELIVERY_OK, 0, "2xx", "")),
			 OUTBOX_DELIVERED);
	e = outbox_get(f->ob, 2);
	assert_non_null(e);
	assert_int_equal(e->attempts, 2);
	outbox_entry_free(e);
}

static void counts_per_receiver(void **state)
{
	struct fixture *f = *state;
	struct outbox_counts counts;
	int64_t a = outbox_enqueue(f->ob, "team", 0, "a/1", "{}", T0, T0);
	int64_t b = outbox_enqueue(f->ob, "team", 0, "b/1", "{}", T0, T0);

	outbox_enqueue(f->ob, "ops", 0, "c/1", "{}", T0, T0);
	assert_int_equal(attempt(f, a, T0, outcome(DELIVERY_OK, 0, "2xx", "")), OUTBOX_DELIVERED);
	assert_int_equal(outbox_mark_sending(f->ob, b, T0), 0);

	assert_int_equal(outbox_counts(f->ob, "team", &counts), 0);
	assert_int_equal(counts.state[OUTBOX_DELIVERED], 1);
	assert_int_equal(counts.state[OUTBOX_SENDING], 1);
	assert_int_equal(counts.state[OUTBOX_QUEUED], 0);
	assert_int_equal(outbox_counts(f->ob, "ops", &counts), 0);
	assert_int_equal(counts.state[OUTBOX_QUEUED], 1);
	assert_int_equal(counts.state[OUTBOX_DELIVERED], 0);
	assert_int_equal(outbox_counts(f->ob, NULL, &counts), 0);
	assert_int_equal(counts.state[OUTBOX_QUEUED], 1);
	assert_int_equal(counts.state[OUTBOX_SENDING], 1);
	assert_int_equal(counts.state[OUTBOX_DELIVERED], 1);
}

/* Dead letters listed newest first, page by page. */
static void list_dead_letters(void **state)
{
	struct fixture *f = *state;
	struct delivery_outcome rejected = outcome(DELIVERY_PERMANENT, 0, "4xx", "HTTP 400");
	char key[16];
	int64_t ids[5];
	struct listed l = {0};

	capture_log(f);
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof key, "g/%d", i);
		ids[i] = enqueue(f, key, T0 + i);
		if (i != 2)
			assert_int_equal(attempt(f, ids[i], T0 + 10, rejected), OUTBOX_DEAD);
	}
	assert_int_equal(outbox_list(f->ob, OUTBOX_DEAD, 2, 0, collect, &l), 2);
	assert_int_equal(l.ids[0], ids[4]);
	assert_int_equal(l.ids[1], ids[3]);
	l = (struct listed){0};
	assert_int_equal(outbox_list(f->ob, OUTBOX_DEAD, 2, 2, collect, &l), 2);
	assert_int_equal(l.ids[0], ids[1]);
	assert_int_equal(l.ids[1], ids[0]);
	assert_string_equal(l.keys[1], "g/0");
	l = (struct listed){0};
	assert_int_equal(outbox_list(f->ob, OUTBOX_DEAD, 2, 4, collect, &l), 0);
	assert_int_equal(outbox_list(f->ob, OUTBOX_STATE_ANY, 10, 0, collect, &l), 5);
	assert_int_equal(l.ids[2], ids[2]);
	assert_int_equal(outbox_list(f->ob, 17, 10, 0, collect, &l), -1);
}

static void prune_removes_old_delivered(void **state)
{
	struct fixture *f = *state;
	struct outbox_counts counts;
	int64_t old = enqueue(f, "old/1", T0);
	int64_t recent = enqueue(f, "recent/1", T0);
	int64_t dead = enqueue(f, "dead/1", T0);

	enqueue(f, "queued/1", T0);
	capture_log(f);
	assert_int_equal(attempt(f, old, T0 + 1000, outcome(DELIVERY_OK, 0, "2xx", "")),
			 OUTBOX_DELIVERED);
	assert_int_equal(attempt(f, recent, T0 + 5000, outcome(DELIVERY_OK, 0, "2xx", "")),
			 OUTBOX_DELIVERED);
	assert_int_equal(attempt(f, dead, T0 + 1000, outcome(DELIVERY_PERMANENT, 0, "4xx", "")),
			 OUTBOX_DEAD);

	assert_int_equal(outbox_prune(f->ob, T0 + 3000), 1);
	assert_null(outbox_get(f->ob, old));
	assert_int_equal(outbox_counts(f->ob, NULL, &counts), 0);
	assert_int_equal(counts.state[OUTBOX_DELIVERED], 1);
	assert_int_equal(counts.state[OUTBOX_DEAD], 1);
	assert_int_equal(counts.state[OUTBOX_QUEUED], 1);
	assert_int_equal(outbox_prune(f->ob, T0 + 3000), 0);
	/* Pruned ids are not reused. */
	assert_true(enqueue(f, "new/1", T0 + 6000) > dead + 1);
}

static void reopen_keeps_entries(void **state)
{
	struct fixture *f = *state;
	const char *payload = "{\"summary\":\"disk \\\"/\\\" at 95 %\",\"who\":\"caf\xc3\xa9\"}";
	struct outbox_entry *e;
	int64_t id = outbox_enqueue(f->ob, "team", 3, "grp/42", payload, T0 - 7, T0);

	assert_true(id > 0);
	assert_int_equal(
	    attempt(f, id, T0 + 10, outcome(DELIVERY_RETRY, 0, "refused", "connection refused")),
	    OUTBOX_RETRYING);
	close_outbox(f);
	open_outbox(f);

	e = outbox_get(f->ob, id);
	assert_non_null(e);
	assert_string_equal(e->payload, payload);
	assert_string_equal(e->receiver, "team");
	assert_int_equal(e->integration, 3);
	assert_string_equal(e->idempotency_key, "grp/42");
	assert_int_equal(e->state, OUTBOX_RETRYING);
	assert_int_equal(e->attempts, 1);
	assert_int_equal(e->created_ms, T0);
	assert_int_equal(e->condition_ms, T0 - 7);
	assert_int_equal(e->last_attempt_ms, T0 + 10);
	assert_int_equal(e->next_attempt_ms, T0 + 10 + policy.initial_ms);
	assert_string_equal(e->last_reason, "refused");
	assert_string_equal(e->last_detail, "connection refused");
	outbox_entry_free(e);
	/* Still idempotent after the reopen. */
	assert_int_equal(outbox_enqueue(f->ob, "team", 3, "grp/42", "{}", T0, T0 + 20), id);
}

static void database_uses_wal_and_full_sync(void **state)
{
	struct fixture *f = *state;
	sqlite3_stmt *stmt = NULL;

	assert_int_equal(
	    sqlite3_prepare_v2(statedb_sqlite(f->db), "PRAGMA journal_mode", -1, &stmt, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	assert_int_equal(
	    sqlite3_prepare_v2(statedb_sqlite(f->db), "PRAGMA synchronous", -1, &stmt, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 2); /* FULL */
	sqlite3_finalize(stmt);
}

static void newer_schema_fails_open(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;

	assert_int_equal(statedb_kv_put(f->db, "outbox_schema_version", "9"), 0);
	outbox_close(f->ob);
	f->ob = outbox_open(f->db, &error);
	assert_null(f->ob);
	assert_non_null(error);
	assert_non_null(strstr(error, "outbox schema version \"9\""));
	assert_non_null(strstr(error, statedb_path(f->db)));
	free(error);
}

static void state_names_round_trip(void **state)
{
	enum outbox_state parsed;

	(void)state;
	for (int s = 0; s < OUTBOX_STATE_COUNT; s++) {
		assert_int_equal(
		    outbox_state_parse(outbox_state_name((enum outbox_state)s), &parsed), 0);
		assert_int_equal(parsed, s);
	}
	assert_string_equal(outbox_state_name(OUTBOX_RETRYING), "retrying");
	assert_int_equal(outbox_state_parse("lost", &parsed), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(enqueue_idempotent, setup, teardown),
	    cmocka_unit_test_setup_teardown(key_unique_per_integration, setup, teardown),
	    cmocka_unit_test_setup_teardown(due_in_attempt_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(due_filters_receiver_integration, setup, teardown),
	    cmocka_unit_test_setup_teardown(next_attempt_for_timer, setup, teardown),
	    cmocka_unit_test_setup_teardown(retry_case_three_notifications, setup, teardown),
	    cmocka_unit_test_setup_teardown(max_age_turns_dead, setup, teardown),
	    cmocka_unit_test_setup_teardown(success_after_deadline_delivers, setup, teardown),
	    cmocka_unit_test_setup_teardown(wrong_state_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(crash_during_sending_resumes, setup, teardown),
	    cmocka_unit_test_setup_teardown(counts_per_receiver, setup, teardown),
	    cmocka_unit_test_setup_teardown(list_dead_letters, setup, teardown),
	    cmocka_unit_test_setup_teardown(prune_removes_old_delivered, setup, teardown),
	    cmocka_unit_test_setup_teardown(reopen_keeps_entries, setup, teardown),
	    cmocka_unit_test_setup_teardown(database_uses_wal_and_full_sync, setup, teardown),
	    cmocka_unit_test_setup_teardown(newer_schema_fails_open, setup, teardown),
	    cmocka_unit_test(state_names_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
