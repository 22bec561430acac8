/*
 * Tests of the alerter on a real libevent loop with a temporary state database and a fake
 * receiver type ("fake"). They cover grouping with Alertmanager's timings, repeats and
 * acknowledgements, silences and inhibition, and restarts that neither lose nor repeat a
 * notification. They also cover delivery retries, the circuit breaker, and a reload during
 * an attempt. Timings are in the 100 ms range, so the file runs in a few seconds.
 * Assertions on timing compare the notification's created_ms (when the group check wrote
 * it) with the transition times, so a slow machine delays the tests but does not fail them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/event.h>
#include <ftw.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>

#include "alerter/ack.h"
#include "alerter/alerter.h"
#include "alerter/alerting_config.h"
#include "alerter/notification.h"
#include "alerter/outbox.h"
#include "alerter/receiver.h"
#include "alerter/receiver_testing.h"
#include "alerter/silence.h"
#include "collector/cfg.h"
#include "collector/config.h"
#include "collector/log.h"
#include "collector/series.h"
#include "collector/statedb.h"

#define MAX_SENT        64
#define MAX_SENT_ALERTS 8
/* The maximum wait for something that should happen within a few hundred ms. */
#define WAIT_MAX_MS 3000
/* The interval of the polling loop. */
#define POLL_MS 10

/* ---- the fake receiver -------------------------------------------------------------- */

struct sent_alert {
	char alertname[32];
	char instance[32];
	bool firing;
};

/* One attempt the fake receiver was given. */
struct sent {
	char receiver[32];
	char key[192];
	char tag[16];       /* the integration's `tag` option, "" when not set */
	int64_t created_ms; /* when the group check wrote the notification */
	enum delivery_result result;
	size_t alert_count;
	struct sent_alert alerts[MAX_SENT_ALERTS];
};

/* What the fake receiver records and the outcomes it returns. Reset before each test. */
struct recorder {
	struct sent sent[MAX_SENT];
	size_t count;
	unsigned fail_next; /* attempts still to fail with DELIVERY_RETRY */
	bool hold;          /* start attempts but never end them */
	unsigned cancels;
	unsigned open_ops; /* attempts started and neither ended nor cancelled */
};

static struct recorder rec;

struct fake_state {
	char *tag;
};

struct fake_op {
	struct event *ev;
	receiver_done_fn *done;
	void *arg;
	struct delivery_outcome outcome;
};

static int fake_parse(struct cfg_map *options, void **state)
{
	struct fake_state *fs = calloc(1, sizeof(*fs));

	if (cfg_has(options, "tag") && cfg_get_string(options, "tag", &fs->tag) != 1) {
		free(fs);
		return -1;
	}
	*state = fs;
	return 0;
}

static void fake_free(void *state)
{
	struct fake_state *fs = state;

	free(fs->tag);
	free(fs);
}

static const char *label_value(const struct label *v, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(v[i].name, name) == 0)
			return v[i].value;
	return "";
}

/* Ends the attempt on a later turn of the loop, as a real receiver does. */
static void fake_end(evutil_socket_t fd, short what, void *arg)
{
	struct fake_op *op = arg;
	receiver_done_fn *done = op->done;
	void *done_arg = op->arg;
	struct delivery_outcome outcome = op->outcome;

	(void)fd;
	(void)what;
	event_free(op->ev);
	free(op);
	rec.open_ops--;
	done(done_arg, &outcome);
}

static struct receiver_op *fake_send(void *state, struct event_base *base,
				     const struct notification *n, int64_t timeout_ms,
				     receiver_done_fn *done, void *arg,
				     struct delivery_outcome *failed)
{
	const struct fake_state *fs = state;
	struct fake_op *op = calloc(1, sizeof(*op));
	struct sent *s;

	(void)timeout_ms;
	(void)failed;
	assert_true(rec.count < MAX_SENT);
	s = &rec.sent[rec.count++];
	snprintf(s->receiver, sizeof s->receiver, "%s", n->receiver);
	snprintf(s->key, sizeof s->key, "%s", n->idempotency_key);
	snprintf(s->tag, sizeof s->tag, "%s", fs->tag != NULL ? fs->tag : "");
	s->created_ms = n->created_ms;
	assert_true(n->alert_count <= MAX_SENT_ALERTS);
	s->alert_count = n->alert_count;
	for (size_t i = 0; i < n->alert_count; i++) {
		const struct notification_alert *na = &n->alerts[i];

		snprintf(s->alerts[i].alertname, sizeof s->alerts[i].alertname, "%s",
			 label_value(na->labels, na->label_count, "alertname"));
		snprintf(s->alerts[i].instance, sizeof s->alerts[i].instance, "%s",
			 label_value(na->labels, na->label_count, "instance"));
		s->alerts[i].firing = na->firing;
	}

	op->done = done;
	op->arg = arg;
	if (rec.fail_next > 0) {
		rec.fail_next--;
		op->outcome.result = DELIVERY_RETRY;
		snprintf(op->outcome.reason, sizeof op->outcome.reason, "5xx");
		snprintf(op->outcome.detail, sizeof op->outcome.detail, "fake failure");
	} else {
		op->outcome.result = DELIVERY_OK;
		snprintf(op->outcome.reason, sizeof op->outcome.reason, "2xx");
	}
	s->result = op->outcome.result;
	op->ev = event_new(base, -1, 0, fake_end, op);
	rec.open_ops++;
	if (!rec.hold)
		event_active(op->ev, 0, 0);
	return (struct receiver_op *)op;
}

static void fake_cancel(struct receiver_op *rop)
{
	struct fake_op *op = (struct fake_op *)rop;

	rec.cancels++;
	rec.open_ops--;
	event_free(op->ev);
	free(op);
}

static const struct receiver_type fake_receiver = {
    .name = "fake",
    .parse = fake_parse,
    .free = fake_free,
    .send = fake_send,
    .cancel = fake_cancel,
};

/* The alert of a sent notification with this alertname and instance, or NULL. */
static const struct sent_alert *sent_alert(const struct sent *s, const char *alertname,
					   const char *instance)
{
	for (size_t i = 0; i < s->alert_count; i++)
		if (strcmp(s->alerts[i].alertname, alertname) == 0 &&
		    strcmp(s->alerts[i].instance, instance) == 0)
			return &s->alerts[i];
	return NULL;
}

/* The first attempt from index `from` on at `receiver` whose notification lists the alert,
 * or NULL. */
static const struct sent *find_sent_from(size_t from, const char *receiver, const char *alertname,
					 const char *instance)
{
	for (size_t i = from; i < rec.count; i++)
		if (strcmp(rec.sent[i].receiver, receiver) == 0 &&
		    sent_alert(&rec.sent[i], alertname, instance) != NULL)
			return &rec.sent[i];
	return NULL;
}

static const struct sent *find_sent(const char *receiver, const char *alertname,
				    const char *instance)
{
	return find_sent_from(0, receiver, alertname, instance);
}

static bool key_has_sequence(const struct sent *s, const char *suffix)
{
	size_t len = strlen(s->key);
	size_t slen = strlen(suffix);

	return len > slen && strcmp(s->key + len - slen, suffix) == 0;
}

/* The group part of an idempotency key: everything before the last '/'. */
static size_t key_group_len(const char *key)
{
	const char *slash = strrchr(key, '/');

	return slash != NULL ? (size_t)(slash - key) : strlen(key);
}

static void assert_same_group(const struct sent *x, const struct sent *y)
{
	size_t len = key_group_len(x->key);

	assert_int_equal(len, key_group_len(y->key));
	assert_memory_equal(x->key, y->key, len);
}

/* ---- the fixture -------------------------------------------------------------------- */

struct fixture {
	char dir[64];
	struct event_base *base;
	struct statedb *db;
	struct series_registry *reg;
	struct config *cfg;
	struct alerter *a;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int register_fake_receiver(void **state)
{
	(void)state;
	receiver_register_for_tests(&fake_receiver);
	/* Delivery failures that tests cause on purpose log at warn level. */
	log_set_level(LOG_LEVEL_ERROR);
	return 0;
}

static void open_db(struct fixture *f)
{
	char *error = NULL;

	f->db = statedb_open(f->dir, &error);
	if (f->db == NULL)
		fail_msg("statedb_open %s: %s", f->dir, error);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	memset(&rec, 0, sizeof rec);
	snprintf(f->dir, sizeof f->dir, "/tmp/test_alerter.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->base = event_base_new();
	f->reg = series_registry_new();
	open_db(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	alerter_free(f->a);
	config_free(f->cfg);
	statedb_close(f->db);
	series_registry_free(f->reg);
	event_base_free(f->base);
	nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct config *load_config(const char *text)
{
	char *errors = NULL;
	struct config *cfg = config_load_string("t.yml", text, &errors);

	if (cfg == NULL)
		fail_msg("config errors:\n%s", errors != NULL ? errors : "(none)");
	assert_non_null(cfg->alerting);
	return cfg;
}

/* Creates the alerter on f's database and gives it f->cfg. */
static void start_alerter(struct fixture *f)
{
	char *error = NULL;

	f->a = alerter_new(f->base, f->db, f->reg, NULL, &error);
	if (f->a == NULL)
		fail_msg("alerter_new: %s", error);
	alerter_apply(f->a, f->cfg->alerting);
}

static void start(struct fixture *f, const char *config_text)
{
	f->cfg = load_config(config_text);
	start_alerter(f);
}

/* Frees the alerter and closes the database, as a stop of tocsind does. */
static void stop(struct fixture *f)
{
	alerter_free(f->a);
	f->a = NULL;
	statedb_close(f->db);
	f->db = NULL;
}

static void run_for(struct fixture *f, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	event_base_loopexit(f->base, &tv);
	event_base_loop(f->base, 0);
}

typedef bool condition_fn(struct fixture *f, size_t n);

static bool sent_at_least(struct fixture *f, size_t n)
{
	(void)f;
	return rec.count >= n;
}

static bool delivered_at_least(struct fixture *f, size_t n)
{
	struct alerter_stats st;

	alerter_get_stats(f->a, &st);
	return st.delivered >= n;
}

/* Runs the loop until cond(f, n) holds, at most WAIT_MAX_MS; fails the test after that. */
static void run_until(struct fixture *f, condition_fn *cond, size_t n)
{
	int64_t deadline = now_ms() + WAIT_MAX_MS;

	while (!cond(f, n)) {
		if (now_ms() > deadline)
			fail_msg("condition not reached after %d ms (%zu attempts recorded)",
				 WAIT_MAX_MS, rec.count);
		run_for(f, POLL_MS);
	}
}

/* ---- transitions -------------------------------------------------------------------- */

/* An alert as the tests write it: alertname and up to three labels (NULL: absent). */
struct alert_spec {
	const char *alertname;
	const char *instance;
	const char *severity;
	const char *team;
};

static void rule_key(const struct alert_spec *s, char *buf, size_t size)
{
	snprintf(buf, size, "rules.yml/test/%s", s->alertname);
}

/* The evaluator's fingerprint (without severity), the key of acknowledgements. */
static uint64_t ident_fingerprint(const struct alert_spec *s)
{
	const char *parts[3] = {s->alertname, s->instance, s->team};
	uint64_t h = UINT64_C(14695981039346656037);

	for (size_t i = 0; i < 3; i++)
		for (const char *p = parts[i] != NULL ? parts[i] : "";; p++) {
			h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
			if (*p == '\0')
				break;
		}
	return h;
}

/*
 * Appends a transition to the log as the evaluator does (labels sorted, alertname
 * included) and calls the alerter's hook when an alerter runs. Returns the time of the
 * transition.
 */
static int64_t transition(struct fixture *f, struct alert_spec s, bool firing)
{
	struct label labels[4];
	size_t count = 0;
	struct label annotation = {"summary", "test alert"};
	char rule[64];
	struct statedb_transition t = {0};

	/* alertname < instance < severity < team: already sorted. */
	labels[count++] = (struct label){"alertname", s.alertname};
	if (s.instance != NULL)
		labels[count++] = (struct label){"instance", s.instance};
	if (s.severity != NULL)
		labels[count++] = (struct label){"severity", s.severity};
	if (s.team != NULL)
		labels[count++] = (struct label){"team", s.team};
	rule_key(&s, rule, sizeof rule);

	t.time_ms = now_ms();
	t.group = "test";
	t.rule = rule;
	t.alertname = s.alertname;
	t.fingerprint = ident_fingerprint(&s);
	t.labels = labels;
	t.label_count = count;
	t.annotations = &annotation;
	t.annotation_count = 1;
	t.value = 1;
	if (firing) {
		t.change = (struct alert_change){.from_state = ALERT_PENDING,
						 .to_state = ALERT_FIRING,
						 .from_level = ALERT_LEVEL_OK,
						 .to_level = ALERT_LEVEL_WARNING,
						 .notify = true};
	} else {
		t.change = (struct alert_change){.from_state = ALERT_FIRING,
						 .to_state = ALERT_INACTIVE,
						 .from_level = ALERT_LEVEL_WARNING,
						 .to_level = ALERT_LEVEL_OK,
						 .notify = true,
						 .resolved = true};
	}
	t.id = statedb_transition_add(f->db, &t);
	assert_true(t.id > 0);
	if (f->a != NULL)
		alerter_on_transition(f->a, &t);
	return t.time_ms;
}

static int64_t fire(struct fixture *f, struct alert_spec s)
{
	return transition(f, s, true);
}

static int64_t resolve(struct fixture *f, struct alert_spec s)
{
	return transition(f, s, false);
}

/* ---- alerter_list_alerts ------------------------------------------------------------ */

struct alert_row {
	char alertname[32];
	char instance[32];
	uint64_t fingerprint;
	bool firing;
	char silenced_by[SILENCE_ID_SIZE];
	bool inhibited;
	uint64_t inhibited_by;
	bool acked;
};

struct alert_rows {
	struct alert_row v[16];
	size_t count;
};

static void collect_alert(void *arg, const struct alerter_alert_view *view)
{
	struct alert_rows *rows = arg;
	struct alert_row *r;

	assert_true(rows->count < 16);
	r = &rows->v[rows->count++];
	snprintf(r->alertname, sizeof r->alertname, "%s",
		 label_value(view->labels, view->label_count, "alertname"));
	snprintf(r->instance, sizeof r->instance, "%s",
		 label_value(view->labels, view->label_count, "instance"));
	r->fingerprint = view->fingerprint;
	r->firing = view->firing;
	snprintf(r->silenced_by, sizeof r->silenced_by, "%s",
		 view->silenced_by != NULL ? view->silenced_by : "");
	r->inhibited = view->inhibited;
	r->inhibited_by = view->inhibited_by;
	r->acked = view->ack != NULL;
}

static const struct alert_row *find_row(const struct alert_rows *rows, const char *alertname,
					const char *instance)
{
	for (size_t i = 0; i < rows->count; i++)
		if (strcmp(rows->v[i].alertname, alertname) == 0 &&
		    strcmp(rows->v[i].instance, instance) == 0)
			return &rows->v[i];
	fail_msg("alert %s{instance=%s} not in the store", alertname, instance);
	return NULL;
}

/* ---- the tests ---------------------------------------------------------------------- */

/* Two receivers; the db team's alerts go to both (continue: true on the first route). */
static const char grouping_config[] = "alerting:\n"
				      "  receivers:\n"
				      "    - name: ops\n"
				      "      fake: {}\n"
				      "    - name: audit\n"
				      "      fake: {}\n"
				      "  route:\n"
				      "    receiver: ops\n"
				      "    group_by: [team]\n"
				      "    group_wait: 100ms\n"
				      "    group_interval: 200ms\n"
				      "    repeat_interval: 1h\n"
				      "    routes:\n"
				      "      - matchers: ['team=\"db\"']\n"
				      "        receiver: audit\n"
				      "        continue: true\n"
				      "      - matchers: ['team=\"db\"']\n"
				      "        receiver: ops\n";

static void group_wait_batches_alerts(void **state)
{
	struct fixture *f = *state;
	struct alert_spec web_a = {"Down", "a", NULL, "web"};
	struct alert_spec web_b = {"Down", "b", NULL, "web"};
	struct alert_spec db_c = {"Down", "c", NULL, "db"};
	const struct sent *web;
	const struct sent *db_ops;
	const struct sent *db_audit;
	struct alerter_stats st;
	int64_t first;

	start(f, grouping_config);
	first = fire(f, web_a);
	fire(f, db_c);
	run_for(f, 50);
	fire(f, web_b);
	run_until(f, sent_at_least, 3);
	/* One group_interval more: nothing changed, so nothing more is sent. */
	run_for(f, 250);
	assert_int_equal(rec.count, 3);

	/* group_wait: both web alerts in one notification, written 100 ms after the first. */
	web = find_sent("ops", "Down", "a");
	assert_non_null(web);
	assert_int_equal(web->alert_count, 2);
	assert_true(sent_alert(web, "Down", "a")->firing);
	assert_non_null(sent_alert(web, "Down", "b"));
	assert_true(sent_alert(web, "Down", "b")->firing);
	assert_true(web->created_ms >= first + 100);
	assert_true(key_has_sequence(web, "/1"));

	/* group_by: the db alert is in groups of its own, at both receivers. */
	assert_null(sent_alert(web, "Down", "c"));
	db_ops = find_sent("ops", "Down", "c");
	assert_non_null(db_ops);
	assert_int_equal(db_ops->alert_count, 1);
	assert_ptr_not_equal(db_ops, web);
	db_audit = find_sent("audit", "Down", "c");
	assert_non_null(db_audit);
	assert_int_equal(db_audit->alert_count, 1);
	assert_string_not_equal(db_audit->key, db_ops->key);

	alerter_get_stats(f->a, &st);
	assert_int_equal(st.groups, 3);
	assert_int_equal(st.notifications, 3);
	assert_int_equal(st.alerts, 3);
}

static const char timing_config[] = "alerting:\n"
				    "  receivers:\n"
				    "    - name: ops\n"
				    "      fake: {}\n"
				    "  route:\n"
				    "    receiver: ops\n"
				    "    group_by: [team]\n"
				    "    group_wait: 100ms\n"
				    "    group_interval: 200ms\n"
				    "    repeat_interval: 1h\n";

static void group_interval_delays_changes(void **state)
{
	struct fixture *f = *state;
	struct alert_spec a = {"Down", "a", NULL, "web"};
	struct alert_spec b = {"Down", "b", NULL, "web"};
	const struct sent *s;
	struct alerter_stats st;
	int64_t joined;

	start(f, timing_config);
	fire(f, a);
	run_until(f, sent_at_least, 1);
	assert_int_equal(rec.sent[0].alert_count, 1);

	/* b joins a group that has notified, so it waits for the next group_interval tick
	 * rather than being sent at once or after group_wait. */
	joined = fire(f, b);
	run_until(f, sent_at_least, 2);
	s = &rec.sent[1];
	assert_true(s->created_ms >= rec.sent[0].created_ms + 200);
	assert_true(s->created_ms >= joined + 100);
	assert_true(key_has_sequence(s, "/2"));
	assert_same_group(s, &rec.sent[0]);
	assert_int_equal(s->alert_count, 2);
	assert_true(sent_alert(s, "Down", "a")->firing);
	assert_true(sent_alert(s, "Down", "b")->firing);

	/* a resolves: sent once, with b still firing. */
	resolve(f, a);
	run_until(f, sent_at_least, 3);
	s = &rec.sent[2];
	assert_true(s->created_ms >= rec.sent[1].created_ms + 200);
	assert_true(key_has_sequence(s, "/3"));
	assert_int_equal(s->alert_count, 2);
	assert_false(sent_alert(s, "Down", "a")->firing);
	assert_true(sent_alert(s, "Down", "b")->firing);

	/* b resolves: the last notification lists b only, then the group is removed. */
	resolve(f, b);
	run_until(f, sent_at_least, 4);
	s = &rec.sent[3];
	assert_true(key_has_sequence(s, "/4"));
	assert_int_equal(s->alert_count, 1);
	assert_false(sent_alert(s, "Down", "b")->firing);

	run_for(f, 450);
	assert_int_equal(rec.count, 4);
	alerter_get_stats(f->a, &st);
	assert_int_equal(st.groups, 0);
	assert_int_equal(st.alerts, 0);
	assert_int_equal(st.delivered, 4);
}

static const char repeat_config[] = "alerting:\n"
				    "  receivers:\n"
				    "    - name: ops\n"
				    "      fake: {}\n"
				    "  route:\n"
				    "    receiver: ops\n"
				    "    group_by: [team]\n"
				    "    group_wait: 0s\n"
				    "    group_interval: 200ms\n"
				    "    repeat_interval: 500ms\n";

static void repeat_interval_and_ack(void **state)
{
	struct fixture *f = *state;
	struct alert_spec a = {"Down", "a", NULL, "web"};
	struct alert_rows rows = {0};
	char rule[64];
	char *error = NULL;
	const struct sent *s;
	uint64_t fingerprint;

	start(f, repeat_config);
	fire(f, a);
	run_until(f, sent_at_least, 1);

	/* An unchanged firing group repeats after repeat_interval. */
	run_until(f, sent_at_least, 2);
	s = &rec.sent[1];
	assert_true(s->created_ms >= rec.sent[0].created_ms + 500);
	assert_true(key_has_sequence(s, "/2"));
	assert_same_group(s, &rec.sent[0]);
	assert_int_equal(s->alert_count, 1);
	assert_true(sent_alert(s, "Down", "a")->firing);

	/* An acknowledgement of the alert's (rule, fingerprint), as the alert list reports
	 * them, stops the repeats. */
	rule_key(&a, rule, sizeof rule);
	alerter_list_alerts(f->a, now_ms(), collect_alert, &rows);
	fingerprint = find_row(&rows, "Down", "a")->fingerprint;
	assert_true(alerter_alert_firing(f->a, rule, fingerprint));
	if (ack_create(alerter_acks(f->a), rule, fingerprint, "tester", "looking at it", 0,
		       now_ms(), &error) < 0)
		fail_msg("ack_create: %s", error);
	rows.count = 0;
	alerter_list_alerts(f->a, now_ms(), collect_alert, &rows);
	assert_true(find_row(&rows, "Down", "a")->acked);
	/* The next repeat would be written at the first group check 500 ms after the last. */
	run_for(f, 750);
	assert_int_equal(rec.count, 2);

	/* The resolution is still sent, and it clears the acknowledgement. */
	resolve(f, a);
	run_until(f, sent_at_least, 3);
	s = &rec.sent[2];
	assert_true(key_has_sequence(s, "/3"));
	assert_false(sent_alert(s, "Down", "a")->firing);
	assert_null(ack_get(alerter_acks(f->a), rule, fingerprint));
}

static void silence_keeps_alert_out(void **state)
{
	struct fixture *f = *state;
	struct alert_spec a = {"Down", "a", NULL, "web"};
	struct alert_spec b = {"Down", "b", NULL, "web"};
	struct silence_matcher m = {"instance", EXPR_MATCH_EQUAL, "a"};
	struct silence_spec spec = {
	    .matchers = &m,
	    .matcher_count = 1,
	    .ends_at_ms = now_ms() + 3600 * 1000,
	    .created_by = "tester",
	    .comment = "maintenance of a",
	};
	struct alert_rows rows = {0};
	char id[SILENCE_ID_SIZE];
	char *error = NULL;
	const struct sent *s;

	start(f, timing_config);
	if (silence_create(alerter_silences(f->a), &spec, now_ms(), id, &error) < 0)
		fail_msg("silence_create: %s", error);
	fire(f, a);
	fire(f, b);
	run_until(f, sent_at_least, 1);
	run_for(f, 250);
	assert_int_equal(rec.count, 1);
	s = &rec.sent[0];
	assert_int_equal(s->alert_count, 1);
	assert_non_null(sent_alert(s, "Down", "b"));

	alerter_list_alerts(f->a, now_ms(), collect_alert, &rows);
	assert_int_equal(rows.count, 2);
	assert_string_equal(find_row(&rows, "Down", "a")->silenced_by, id);
	assert_string_equal(find_row(&rows, "Down", "b")->silenced_by, "");

	/* Once the silence expires, a is notified at the group's next check. */
	if (silence_expire(alerter_silences(f->a), id, now_ms(), &error) < 0)
		fail_msg("silence_expire: %s", error);
	run_until(f, sent_at_least, 2);
	s = &rec.sent[1];
	assert_int_equal(s->alert_count, 2);
	assert_true(sent_alert(s, "Down", "a")->firing);
	assert_true(sent_alert(s, "Down", "b")->firing);
}

static void inhibit_rule_holds_target(void **state)
{
	struct fixture *f = *state;
	struct alert_spec source = {"HostDown", "c", "critical", NULL};
	struct alert_spec target = {"Slow", "c", "warning", NULL};
	struct alert_spec other = {"Slow", "d", "warning", NULL};
	struct alert_rows rows = {0};
	const struct sent *s;

	start(f, "alerting:\n"
		 "  receivers:\n"
		 "    - name: ops\n"
		 "      fake: {}\n"
		 "  route:\n"
		 "    receiver: ops\n"
		 "    group_by: [alertname]\n"
		 "    group_wait: 100ms\n"
		 "    group_interval: 200ms\n"
		 "    repeat_interval: 1h\n"
		 "  inhibit_rules:\n"
		 "    - source_matchers: [severity=critical]\n"
		 "      target_matchers: [severity=warning]\n"
		 "      equal: [instance]\n");
	fire(f, source);
	fire(f, target);
	fire(f, other);
	run_until(f, sent_at_least, 2);
	run_for(f, 250);
	assert_int_equal(rec.count, 2);

	s = find_sent("ops", "Slow", "d");
	assert_non_null(s);
	assert_int_equal(s->alert_count, 1);
	assert_null(find_sent("ops", "Slow", "c"));
	assert_non_null(find_sent("ops", "HostDown", "c"));

	alerter_list_alerts(f->a, now_ms(), collect_alert, &rows);
	assert_int_equal(rows.count, 3);
	assert_true(find_row(&rows, "Slow", "c")->inhibited);
	assert_int_equal(find_row(&rows, "Slow", "c")->inhibited_by,
			 find_row(&rows, "HostDown", "c")->fingerprint);
	assert_false(find_row(&rows, "Slow", "d")->inhibited);
	assert_false(find_row(&rows, "HostDown", "c")->inhibited);

	/* The source resolves: the target is no longer inhibited and is notified. */
	resolve(f, source);
	run_until(f, sent_at_least, 4);
	s = find_sent_from(2, "ops", "HostDown", "c");
	assert_non_null(s);
	assert_false(sent_alert(s, "HostDown", "c")->firing);
	s = find_sent_from(2, "ops", "Slow", "c");
	assert_non_null(s);
	assert_int_equal(s->alert_count, 2);
	assert_true(sent_alert(s, "Slow", "c")->firing);
	assert_true(sent_alert(s, "Slow", "d")->firing);
}

static void restart_sends_nothing_twice(void **state)
{
	struct fixture *f = *state;
	struct alert_spec a = {"Down", "a", NULL, "web"};
	struct alerter_stats st;
	const struct sent *s;

	start(f, timing_config);
	fire(f, a);
	run_until(f, delivered_at_least, 1);
	assert_int_equal(rec.count, 1);
	assert_true(key_has_sequence(&rec.sent[0], "/1"));

	stop(f);
	open_db(f);
	start_alerter(f);
	alerter_get_stats(f->a, &st);
	assert_int_equal(st.alerts, 1);
	/* Longer than group_wait and group_interval: a group that lost its log sends again. */
	run_for(f, 350);
	assert_int_equal(rec.count, 1);

	/* The resolution after the restart continues the group's sequence. */
	resolve(f, a);
	run_until(f, sent_at_least, 2);
	s = &rec.sent[1];
	assert_true(key_has_sequence(s, "/2"));
	assert_same_group(s, &rec.sent[0]);
	assert_int_equal(s->alert_count, 1);
	assert_false(sent_alert(s, "Down", "a")->firing);
}

static void transitions_read_after_restart(void **state)
{
	struct fixture *f = *state;
	struct alert_spec a = {"Down", "a", NULL, "web"};
	struct alert_spec b = {"Down", "b", NULL, "web"};
	struct alerter_stats st;
	const struct sent *s;

	start(f, timing_config);
	fire(f, a);
	run_until(f, delivered_at_least, 1);

	/* b fires while no alerter runs: the evaluator only writes the log. */
	stop(f);
	open_db(f);
	fire(f, b);
	start_alerter(f);
	run_until(f, sent_at_least, 2);
	alerter_get_stats(f->a, &st);
	assert_int_equal(st.transitions, 1);
	s = &rec.sent[1];
	assert_true(key_has_sequence(s, "/2"));
	assert_same_group(s, &rec.sent[0]);
	assert_int_equal(s->alert_count, 2);
	assert_true(sent_alert(s, "Down", "a")->firing);
	assert_true(sent_alert(s, "Down", "b")->firing);
}

struct outbox_rows {
	int64_t id[4];
	enum outbox_state state[4];
	int attempts[4];
	char key[4][192];
	size_t count;
};

static void collect_outbox(void *arg, const struct outbox_entry *e)
{
	struct outbox_rows *rows = arg;

	assert_true(rows->count < 4);
	rows->id[rows->count] = e->id;
	rows->state[rows->count] = e->state;
	rows->attempts[rows->count] = e->attempts;
	snprintf(rows->key[rows->count], sizeof rows->key[0], "%s", e->idempotency_key);
	rows->count++;
}

static void retry_keeps_idempotency_key(void **state)
{
	struct fixture *f = *state;
	struct alert_spec a = {"Down", "a", NULL, "web"};
	struct outbox_rows rows = {0};
	struct outbox_counts oc;
	struct outbox_entry *e;
	struct alerter_stats st;

	start(f, "alerting:\n"
		 "  retry: {initial: 10ms, max: 40ms, max_age: 1h}\n"
		 "  receivers:\n"
		 "    - name: ops\n"
		 "      fake: {}\n"
		 "  route:\n"
		 "    receiver: ops\n"
		 "    group_wait: 0s\n"
		 "    group_interval: 200ms\n"
		 "    repeat_interval: 1h\n");
	rec.fail_next = 2;
	fire(f, a);
	run_until(f, delivered_at_least, 1);

	assert_int_equal(rec.count, 3);
	assert_int_equal(rec.sent[0].result, DELIVERY_RETRY);
	assert_int_equal(rec.sent[1].result, DELIVERY_RETRY);
	assert_int_equal(rec.sent[2].result, DELIVERY_OK);
	assert_string_equal(rec.sent[1].key, rec.sent[0].key);
	assert_string_equal(rec.sent[2].key, rec.sent[0].key);
	alerter_get_stats(f->a, &st);
	assert_int_equal(st.failed, 2);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(st.notifications, 1);

	assert_int_equal(
	    outbox_list(alerter_outbox(f->a), OUTBOX_STATE_ANY, 4, 0, collect_outbox, &rows), 1);
	assert_string_equal(rows.key[0], rec.sent[0].key);
	e = outbox_get(alerter_outbox(f->a), rows.id[0]);
	assert_non_null(e);
	assert_int_equal(e->state, OUTBOX_DELIVERED);
	assert_int_equal(e->attempts, 3);
	assert_true(e->delivered_ms > 0);
	outbox_entry_free(e);
	assert_int_equal(outbox_counts(alerter_outbox(f->a), "ops", &oc), 0);
	assert_int_equal(oc.state[OUTBOX_DELIVERED], 1);
	assert_int_equal(oc.state[OUTBOX_QUEUED], 0);
	assert_int_equal(oc.state[OUTBOX_SENDING], 0);
	assert_int_equal(oc.state[OUTBOX_RETRYING], 0);
	assert_int_equal(oc.state[OUTBOX_DEAD], 0);
}

/* The value of the series of `name` whose labels receiver and state have these values. */
static double metric_value(struct fixture *f, const char *name, const char *receiver,
			   const char *state_value)
{
	for (size_t i = 0; i < series_registry_family_count(f->reg); i++) {
		const struct series_family *fam = series_registry_family(f->reg, i);

		if (strcmp(fam->name, name) != 0)
			continue;
		for (size_t k = 0; k < fam->count; k++) {
			const struct series *s = fam->series[k];
			const char *r = series_label(s, "receiver");
			const char *st = series_label(s, "state");

			if (r != NULL && strcmp(r, receiver) == 0 &&
			    (state_value == NULL || (st != NULL && strcmp(st, state_value) == 0)))
				return s->value;
		}
	}
	fail_msg("no series %s{receiver=\"%s\",state=\"%s\"}", name, receiver,
		 state_value != NULL ? state_value : "");
	return NAN;
}

static void circuit_breaker_opens(void **state)
{
	struct fixture *f = *state;
	struct alert_spec a = {"Down", "a", NULL, "web"};
	struct outbox_counts oc;
	struct alerter_stats st;

	start(f, "alerting:\n"
		 "  retry: {initial: 10ms, max: 20ms, max_age: 1h}\n"
		 "  circuit_breaker: {failures: 2, cooldown: 1h}\n"
		 "  receivers:\n"
		 "    - name: ops\n"
		 "      fake: {}\n"
		 "  route:\n"
		 "    receiver: ops\n"
		 "    group_wait: 0s\n"
		 "    group_interval: 200ms\n"
		 "    repeat_interval: 1h\n");
	rec.fail_next = 100;
	fire(f, a);
	run_until(f, sent_at_least, 2);
	/* Without the breaker a retry would start within 20 ms. While it is open, none starts. */
	run_for(f, 200);
	assert_int_equal(rec.count, 2);
	alerter_get_stats(f->a, &st);
	assert_int_equal(st.failed, 2);
	assert_int_equal(st.in_flight, 0);

	alerter_refresh_metrics(f->a);
	assert_true(metric_value(f, "tocsin_receiver_circuit_breaker_state", "ops", "open") == 1);
	assert_true(metric_value(f, "tocsin_receiver_circuit_breaker_state", "ops", "closed") == 0);
	assert_true(metric_value(f, "tocsin_receiver_circuit_breaker_opened_total", "ops", NULL) ==
		    1);
	assert_int_equal(outbox_counts(alerter_outbox(f->a), "ops", &oc), 0);
	assert_int_equal(oc.state[OUTBOX_RETRYING], 1);
}

static void reload_moves_attempt_to_new_receiver(void **state)
{
	struct fixture *f = *state;
	struct alert_spec a = {"Down", "a", NULL, "web"};
	struct config *second;
	struct alerter_stats st;

	start(f, "alerting:\n"
		 "  receivers:\n"
		 "    - name: ops\n"
		 "      fake: {tag: first}\n"
		 "  route:\n"
		 "    receiver: ops\n"
		 "    group_by: [team]\n"
		 "    group_wait: 0s\n"
		 "    group_interval: 200ms\n"
		 "    repeat_interval: 1h\n");
	rec.hold = true;
	fire(f, a);
	run_until(f, sent_at_least, 1);
	assert_string_equal(rec.sent[0].tag, "first");
	alerter_get_stats(f->a, &st);
	assert_int_equal(st.in_flight, 1);

	/* The second config adds a route that this alert does not match, so its group and
	 * notification log stay the same. */
	rec.hold = false;
	second = load_config("alerting:\n"
			     "  receivers:\n"
			     "    - name: ops\n"
			     "      fake: {tag: second}\n"
			     "    - name: audit\n"
			     "      fake: {tag: second}\n"
			     "  route:\n"
			     "    receiver: ops\n"
			     "    group_by: [team]\n"
			     "    group_wait: 0s\n"
			     "    group_interval: 200ms\n"
			     "    repeat_interval: 1h\n"
			     "    routes:\n"
			     "      - matchers: ['team=\"db\"']\n"
			     "        receiver: audit\n");
	alerter_apply(f->a, second->alerting);
	config_free(f->cfg);
	f->cfg = second;
	assert_int_equal(rec.cancels, 1);
	assert_int_equal(rec.open_ops, 0);

	run_until(f, delivered_at_least, 1);
	run_for(f, 250);
	assert_int_equal(rec.count, 2);
	assert_string_equal(rec.sent[1].receiver, "ops");
	assert_string_equal(rec.sent[1].tag, "second");
	assert_string_equal(rec.sent[1].key, rec.sent[0].key);
	assert_int_equal(rec.sent[1].result, DELIVERY_OK);
	alerter_get_stats(f->a, &st);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.notifications, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(group_wait_batches_alerts, setup, teardown),
	    cmocka_unit_test_setup_teardown(group_interval_delays_changes, setup, teardown),
	    cmocka_unit_test_setup_teardown(repeat_interval_and_ack, setup, teardown),
	    cmocka_unit_test_setup_teardown(silence_keeps_alert_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(inhibit_rule_holds_target, setup, teardown),
	    cmocka_unit_test_setup_teardown(restart_sends_nothing_twice, setup, teardown),
	    cmocka_unit_test_setup_teardown(transitions_read_after_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(retry_keeps_idempotency_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(circuit_breaker_opens, setup, teardown),
	    cmocka_unit_test_setup_teardown(reload_moves_attempt_to_new_receiver, setup, teardown),
	};

	return cmocka_run_group_tests(tests, register_fake_receiver, NULL);
}
