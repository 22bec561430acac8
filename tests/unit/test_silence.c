/*
 * Unit tests of silences and acknowledgements on real SQLite files in a temporary
 * directory, with a virtual clock. They cover the validation messages, each matcher
 * operator and missing labels, the pending, active and expired windows, expiry,
 * persistence across reopening, pruning, changes made by another connection, and
 * acknowledgements until the alert resolves and with an expiry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <sys/stat.h>

#include "alerter/ack.h"
#include "alerter/silence.h"
#include "collector/log.h"
#include "collector/statedb.h"

/* 2024-05-01T10:00:00Z: the virtual clock's start. */
#define T0     INT64_C(1714557600000)
#define MINUTE INT64_C(60000)
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)

struct fixture {
	char dir[64];
	struct statedb *db;
	struct silence_set *silences;
	struct ack_set *acks;
};

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Opens the database and both sets on f->dir. */
static int open_sets(struct fixture *f)
{
	char *error = NULL;

	f->db = statedb_open(f->dir, &error);
	if (f->db != NULL)
		f->silences = silence_set_open(f->db, &error);
	if (f->silences != NULL)
		f->acks = ack_set_open(f->db, &error);
	if (f->acks == NULL) {
		fprintf(stderr, "opening %s: %s\n", f->dir, error);
		free(error);
		return -1;
	}
	return 0;
}

static void close_sets(struct fixture *f)
{
	ack_set_free(f->acks);
	silence_set_free(f->silences);
	statedb_close(f->db);
	f->acks = NULL;
	f->silences = NULL;
	f->db = NULL;
}

static void reopen(struct fixture *f)
{
	close_sets(f);
	assert_int_equal(open_sets(f), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	log_set_level(LOG_LEVEL_WARN);
	snprintf(f->dir, sizeof f->dir, "/tmp/test_silence.XXXXXX");
	if (mkdtemp(f->dir) == NULL || open_sets(f) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close_sets(f);
	nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Creates a silence from matcher strings; fails the test on any error. */
static void create(struct fixture *f, const char *const *texts, size_t count, int64_t starts,
		   int64_t ends, int64_t now, char id[SILENCE_ID_SIZE])
{
	struct silence_matcher matchers[8];
	struct silence_spec spec = {
	    .matchers = matchers,
	    .matcher_count = count,
	    .starts_at_ms = starts,
	    .ends_at_ms = ends,
	    .created_by = "alice",
	    .comment = "disk replacement",
	};
	char *error = NULL;

	assert_true(count <= 8);
	for (size_t i = 0; i < count; i++) {
		if (silence_matcher_parse(texts[i], &matchers[i], &error) < 0)
			fail_msg("matcher %s: %s", texts[i], error);
	}
	if (silence_create(f->silences, &spec, now, id, &error) < 0)
		fail_msg("silence_create: %s", error);
	for (size_t i = 0; i < count; i++)
		silence_matcher_clear(&matchers[i]);
}

static void create_one(struct fixture *f, const char *text, int64_t starts, int64_t ends,
		       int64_t now, char id[SILENCE_ID_SIZE])
{
	create(f, &text, 1, starts, ends, now, id);
}

/* ---- validation ---- */

static void create_rejects_invalid_specs(void **state)
{
	struct fixture *f = *state;
	const struct silence_matcher job = {"job", EXPR_MATCH_EQUAL, "api"};
	const struct silence_matcher bad_name = {"1x", EXPR_MATCH_EQUAL, "a"};
	const struct silence_matcher bad_op = {"job", (enum expr_match_op)9, "a"};
	const struct silence_matcher empty_ok[] = {{"env", EXPR_MATCH_REGEX, ".*"},
						   {"team", EXPR_MATCH_NOT_EQUAL, "ops"},
						   {"zone", EXPR_MATCH_EQUAL, ""}};
	const struct silence_matcher bad_utf8 = {"job", EXPR_MATCH_EQUAL, "a\xff"};
	const struct {
		const struct silence_matcher *matchers;
		size_t count;
		int64_t starts;
		int64_t ends;
		const char *created_by;
		const char *comment;
		const char *error;
	} cases[] = {
	    {NULL, 0, 0, T0 + HOUR, "a", "c",
	     "matchers: at least one matcher is required, such as alertname=\"X\""},
	    {&bad_name, 1, 0, T0 + HOUR, "a", "c",
	     "matchers[0].name: invalid label name \"1x\"; use letters, digits and "
	     "underscores, not starting with a digit"},
	    {&bad_op, 1, 0, T0 + HOUR, "a", "c",
	     "matchers[0].op: unknown operator 9; use = != =~ or !~"},
	    {empty_ok, 3, 0, T0 + HOUR, "a", "c",
	     "matchers: every matcher matches the empty string, so the silence would mute "
	     "every alert; add one that does not, such as alertname=\"X\""},
	    {&bad_utf8, 1, 0, T0 + HOUR, "a", "c", "matchers[0].value: invalid UTF-8"},
	    {&job, 1, 0, 0, "a", "c", "ends_at: missing; give the time the silence ends"},
	    {&job, 1, 0, T0, "a", "c",
	     "ends_at: 2024-05-01T10:00:00Z is not in the future; give a later end"},
	    {&job, 1, T0 + 2 * HOUR, T0 + HOUR, "a", "c",
	     "ends_at: 2024-05-01T11:00:00Z is not after starts_at 2024-05-01T12:00:00Z; give "
	     "a later end"},
	    {&job, 1, T0 + HOUR, T0 + HOUR, "a", "c",
	     "ends_at: 2024-05-01T11:00:00Z is not after starts_at 2024-05-01T11:00:00Z; give "
	     "a later end"},
	    {&job, 1, 0, T0 + HOUR, NULL, "c", "created_by: missing; give who creates the silence"},
	    {&job, 1, 0, T0 + HOUR, " \t", "c",
	     "created_by: missing; give who creates the silence"},
	    {&job, 1, 0, T0 + HOUR, "a", "", "comment: missing; give the reason for the silence"},
	    {&job, 1, 0, T0 + HOUR, "a", "bad \xc3", "comment: invalid UTF-8"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct silence_spec spec = {
		    .matchers = cases[i].matchers,
		    .matcher_count = cases[i].count,
		    .starts_at_ms = cases[i].starts,
		    .ends_at_ms = cases[i].ends,
		    .created_by = cases[i].created_by,
		    .comment = cases[i].comment,
		};
		char id[SILENCE_ID_SIZE] = "";
		char *error = NULL;
		int rc = silence_create(f->silences, &spec, T0, id, &error);

		if (rc != -1 || error == NULL || strcmp(error, cases[i].error) != 0) {
			fail_msg("case %zu: expected error: %s\n  got: %s", i, cases[i].error,
				 error != NULL ? error : "(none)");
		}
		free(error);
	}
	assert_int_equal(silence_count(f->silences), 0);
}

static void create_rejects_invalid_regex(void **state)
{
	struct fixture *f = *state;
	const struct silence_matcher matchers[] = {{"alertname", EXPR_MATCH_EQUAL, "A"},
						   {"job", EXPR_MATCH_REGEX, "a(b"}};
	const struct silence_spec spec = {
	    .matchers = matchers,
	    .matcher_count = 2,
	    .ends_at_ms = T0 + HOUR,
	    .created_by = "a",
	    .comment = "c",
	};
	static const char prefix[] = "matchers[1].value: invalid regex \"a(b\" for label job (";
	static const char suffix[] = "); expected a POSIX extended regular expression (plus "
				     "(?i), (?:...) and \\d)";
	char id[SILENCE_ID_SIZE];
	char *error = NULL;

	assert_int_equal(silence_create(f->silences, &spec, T0, id, &error), -1);
	assert_non_null(error);
	/* Between the two parts is the C library's regerror() text. */
	assert_int_equal(strncmp(error, prefix, strlen(prefix)), 0);
	assert_true(strlen(error) > strlen(prefix) + strlen(suffix));
	assert_string_equal(error + strlen(error) - strlen(suffix), suffix);
	free(error);
}

static void silence_ids_are_uuid_v4(void **state)
{
	struct fixture *f = *state;
	char first[SILENCE_ID_SIZE];
	char second[SILENCE_ID_SIZE];

	create_one(f, "job=\"a\"", 0, T0 + HOUR, T0, first);
	create_one(f, "job=\"a\"", 0, T0 + HOUR, T0, second);
	assert_string_not_equal(first, second);
	assert_int_equal(strlen(first), 36);
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(first[i], '-');
		else
			assert_non_null(strchr("0123456789abcdef", first[i]));
	}
	assert_int_equal(first[14], '4');
	assert_non_null(strchr("89ab", first[19]));
}

/* ---- matchers ---- */

static void matcher_parse_forms(void **state)
{
	const struct {
		const char *text;
		const char *name;
		enum expr_match_op op;
		const char *value;
	} cases[] = {
	    {"alertname=\"DiskFull\"", "alertname", EXPR_MATCH_EQUAL, "DiskFull"},
	    {" job != 'api' ", "job", EXPR_MATCH_NOT_EQUAL, "api"},
	    {"path=~`/var/.*\\d`", "path", EXPR_MATCH_REGEX, "/var/.*\\d"},
	    {"env!~\"te\\\"st\\\\\"", "env", EXPR_MATCH_NOT_REGEX, "te\"st\\"},
	    {"msg=\"caf\\u00e9\\n\"", "msg", EXPR_MATCH_EQUAL, "caf\xc3\xa9\n"},
	    {"alertname=DiskFull", "alertname", EXPR_MATCH_EQUAL, "DiskFull"},
	    {"summary=disk is full  ", "summary", EXPR_MATCH_EQUAL, "disk is full"},
	    {"zone=", "zone", EXPR_MATCH_EQUAL, ""},
	    {"inf=\"x\"", "inf", EXPR_MATCH_EQUAL, "x"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct silence_matcher m;
		char *error = NULL;

		if (silence_matcher_parse(cases[i].text, &m, &error) < 0)
			fail_msg("case %zu: %s: %s", i, cases[i].text, error);
		assert_string_equal(m.name, cases[i].name);
		assert_int_equal(m.op, cases[i].op);
		assert_string_equal(m.value, cases[i].value);
		silence_matcher_clear(&m);
	}
}

static void matcher_parse_errors(void **state)
{
	const struct {
		const char *text;
		const char *error;
	} cases[] = {
	    {"", "invalid matcher \"\": missing label name; write NAME=\"VALUE\" with one of the "
		 "operators = != =~ !~"},
	    {"1x=\"a\"", "invalid matcher \"1x=\"a\"\": missing label name; write NAME=\"VALUE\" "
			 "with one of the operators = != =~ !~"},
	    {"job", "invalid matcher \"job\": missing operator after \"job\"; write "
		    "NAME=\"VALUE\" with one of the operators = != =~ !~"},
	    {"job==\"a\"", "invalid matcher \"job==\"a\"\": missing operator after \"job\"; write "
			   "NAME=\"VALUE\" with one of the operators = != =~ !~"},
	    {"job=\"a", "invalid matcher \"job=\"a\": unterminated string; write NAME=\"VALUE\" "
			"with one of the operators = != =~ !~"},
	    {"job=\"a\" x", "invalid matcher \"job=\"a\" x\": unexpected text after the quoted "
			    "value; write NAME=\"VALUE\" with one of the operators = != =~ !~"},
	    {"job=\"\\q\"", "invalid matcher \"job=\"\\q\"\": unknown escape sequence \"\\q\" in "
			    "string; write NAME=\"VALUE\" with one of the operators = != =~ !~"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct silence_matcher m;
		char *error = NULL;

		if (silence_matcher_parse(cases[i].text, &m, &error) != -1 || error == NULL ||
		    strcmp(error, cases[i].error) != 0) {
			fail_msg("case %zu: expected error: %s\n  got: %s", i, cases[i].error,
				 error != NULL ? error : "(none)");
		}
		assert_null(m.name);
		free(error);
	}
}

static void matcher_format_round_trip(void **state)
{
	const struct silence_matcher m = {"msg", EXPR_MATCH_NOT_REGEX, "a\"b\\c\nd\x01 \xc3\xa9"};
	struct silence_matcher back;
	char *error = NULL;
	char *text = silence_matcher_format(&m);

	(void)state;
	assert_string_equal(text, "msg!~\"a\\\"b\\\\c\\nd\\x01 \xc3\xa9\"");
	assert_int_equal(silence_matcher_parse(text, &back, &error), 0);
	assert_string_equal(back.name, m.name);
	assert_int_equal(back.op, m.op);
	assert_string_equal(back.value, m.value);
	silence_matcher_clear(&back);
	free(text);
}

static void matching_each_operator(void **state)
{
	struct fixture *f = *state;
	const struct label api[] = {{"alertname", "HighLatency"}, {"env", "prod"}, {"job", "api"}};
	const struct label web[] = {{"alertname", "HighLatency"}, {"job", "web-2"}};
	const struct label other[] = {{"alertname", "DiskFull"}, {"env", "Test"}};
	const struct {
		const char *matchers[3];
		size_t count;
		bool api, web, other;
	} cases[] = {
	    {{"alertname=\"HighLatency\""}, 1, true, true, false},
	    {{"job=\"api\""}, 1, true, false, false},
	    /* A missing label matches as the empty string. */
	    {{"alertname=~\".+\"", "env=\"\""}, 2, false, true, false},
	    {{"alertname=~\".+\"", "env!=\"prod\""}, 2, false, true, true},
	    {{"alertname=~\".+\"", "job!=\"api\""}, 2, false, true, true},
	    /* Regexes are anchored at both ends. */
	    {{"job=~\"ap\""}, 1, false, false, false},
	    {{"job=~\"a.*\""}, 1, true, false, false},
	    {{"job=~\"web-\\\\d\""}, 1, false, true, false},
	    {{"job=~\"api|web-2\""}, 1, true, true, false},
	    {{"env=~\"(?i)test\""}, 1, false, false, true},
	    {{"alertname=\"HighLatency\"", "job!~\"web.*\""}, 2, true, false, false},
	    {{"alertname!~\"High.*\"", "env=~\"T.*\""}, 2, false, false, true},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char id[SILENCE_ID_SIZE];
		const char *hit;
		char *error = NULL;

		create(f, cases[i].matchers, cases[i].count, 0, T0 + HOUR, T0, id);
		hit = silence_matches(f->silences, api, 3, T0);
		if ((hit != NULL) != cases[i].api)
			fail_msg("case %zu: api labels: expected %d", i, cases[i].api);
		hit = silence_matches(f->silences, web, 2, T0);
		if ((hit != NULL) != cases[i].web)
			fail_msg("case %zu: web labels: expected %d", i, cases[i].web);
		hit = silence_matches(f->silences, other, 2, T0);
		if ((hit != NULL) != cases[i].other)
			fail_msg("case %zu: other labels: expected %d", i, cases[i].other);
		if (hit != NULL)
			assert_string_equal(hit, id);
		/* Expired at once, so the next case starts with no active silence. */
		assert_int_equal(silence_expire(f->silences, id, T0, &error), 0);
	}
}

static void matching_returns_oldest(void **state)
{
	struct fixture *f = *state;
	const struct label labels[] = {{"job", "api"}};
	char first[SILENCE_ID_SIZE];
	char second[SILENCE_ID_SIZE];

	create_one(f, "job=\"api\"", 0, T0 + HOUR, T0, first);
	create_one(f, "job=~\"a.*\"", 0, T0 + 2 * HOUR, T0 + MINUTE, second);
	assert_string_equal(silence_matches(f->silences, labels, 1, T0 + MINUTE), first);
	/* After the first ends, the second still mutes. */
	assert_string_equal(silence_matches(f->silences, labels, 1, T0 + HOUR), second);
	assert_null(silence_matches(f->silences, labels, 1, T0 + 2 * HOUR));
}

/* ---- windows ---- */

struct listed {
	size_t count;
	char ids[8][SILENCE_ID_SIZE];
};

static void collect(void *arg, const struct silence *s)
{
	struct listed *l = arg;

	assert_true(l->count < 8);
	memcpy(l->ids[l->count++], s->id, SILENCE_ID_SIZE);
}

static size_t count_listed(struct fixture *f, enum silence_filter filter, int64_t now)
{
	struct listed l = {0};

	silence_list(f->silences, filter, now, collect, &l);
	return l.count;
}

static void windows_on_virtual_clock(void **state)
{
	struct fixture *f = *state;
	const struct label labels[] = {{"alertname", "A"}};
	const struct silence *s;
	char id[SILENCE_ID_SIZE];

	/* Starts in one hour, ends in two. */
	create_one(f, "alertname=\"A\"", T0 + HOUR, T0 + 2 * HOUR, T0, id);
	s = silence_get(f->silences, id);
	assert_non_null(s);
	assert_true(s->starts_at_ms == T0 + HOUR);
	assert_true(s->created_at_ms == T0);

	assert_int_equal(silence_state(s, T0), SILENCE_PENDING);
	assert_null(silence_matches(f->silences, labels, 1, T0));
	assert_int_equal(count_listed(f, SILENCE_FILTER_PENDING, T0), 1);
	assert_int_equal(count_listed(f, SILENCE_FILTER_ACTIVE, T0), 0);

	assert_int_equal(silence_state(s, T0 + HOUR - 1), SILENCE_PENDING);
	assert_int_equal(silence_state(s, T0 + HOUR), SILENCE_ACTIVE);
	assert_string_equal(silence_matches(f->silences, labels, 1, T0 + HOUR), id);
	assert_int_equal(count_listed(f, SILENCE_FILTER_ACTIVE, T0 + HOUR), 1);

	assert_int_equal(silence_state(s, T0 + 2 * HOUR - 1), SILENCE_ACTIVE);
	assert_int_equal(silence_state(s, T0 + 2 * HOUR), SILENCE_EXPIRED);
	assert_null(silence_matches(f->silences, labels, 1, T0 + 2 * HOUR));
	assert_int_equal(count_listed(f, SILENCE_FILTER_EXPIRED, T0 + 2 * HOUR), 1);
	assert_int_equal(count_listed(f, SILENCE_FILTER_ALL, T0 + 2 * HOUR), 1);
	assert_string_equal(silence_state_name(SILENCE_PENDING), "pending");
	assert_string_equal(silence_state_name(SILENCE_ACTIVE), "active");
	assert_string_equal(silence_state_name(SILENCE_EXPIRED), "expired");
}

static void start_in_past_becomes_now(void **state)
{
	struct fixture *f = *state;
	char id[SILENCE_ID_SIZE];

	create_one(f, "job=\"a\"", T0 - DAY, T0 + HOUR, T0, id);
	assert_true(silence_get(f->silences, id)->starts_at_ms == T0);
}

static void expire_ends_silence(void **state)
{
	struct fixture *f = *state;
	const struct label labels[] = {{"job", "a"}};
	char active[SILENCE_ID_SIZE];
	char pending[SILENCE_ID_SIZE];
	const struct silence *s;
	char *error = NULL;

	create_one(f, "job=\"a\"", 0, T0 + HOUR, T0, active);
	create_one(f, "job=\"b\"", T0 + HOUR, T0 + 2 * HOUR, T0, pending);
	assert_non_null(silence_matches(f->silences, labels, 1, T0 + MINUTE));

	assert_int_equal(silence_expire(f->silences, active, T0 + MINUTE, &error), 0);
	assert_null(error);
	s = silence_get(f->silences, active);
	assert_true(s->ends_at_ms == T0 + MINUTE);
	assert_true(s->updated_at_ms == T0 + MINUTE);
	assert_int_equal(silence_state(s, T0 + MINUTE), SILENCE_EXPIRED);
	assert_null(silence_matches(f->silences, labels, 1, T0 + MINUTE));

	assert_int_equal(silence_expire(f->silences, active, T0 + 2 * MINUTE, &error), -1);
	assert_non_null(error);
	assert_true(strstr(error, "is already expired") != NULL);
	assert_true(strncmp(error, "silence ", 8) == 0);
	free(error);

	/* A pending silence ends before it starts: both times become now. */
	assert_int_equal(silence_expire(f->silences, pending, T0 + MINUTE, &error), 0);
	s = silence_get(f->silences, pending);
	assert_true(s->starts_at_ms == T0 + MINUTE);
	assert_true(s->ends_at_ms == T0 + MINUTE);

	assert_int_equal(silence_expire(f->silences, "no-such-id", T0, &error), -1);
	assert_string_equal(error,
			    "silence no-such-id not found; list the ids with --silence list");
	free(error);
}

/* ---- persistence ---- */

static void silences_survive_reopen(void **state)
{
	struct fixture *f = *state;
	const char *const texts[] = {"alertname=\"Disk\\\"Full\"", "mount=~\"/var/.*\"",
				     "env!=\"test\"", "team!~\"(?i)OPS\""};
	const struct label labels[] = {{"alertname", "Disk\"Full"}, {"mount", "/var/lib"}};
	const struct label ops[] = {
	    {"alertname", "Disk\"Full"}, {"mount", "/var/lib"}, {"team", "ops"}};
	char id[SILENCE_ID_SIZE];
	char expired[SILENCE_ID_SIZE];
	const struct silence *s;
	char *error = NULL;

	create(f, texts, 4, 0, T0 + HOUR, T0, id);
	create_one(f, "job=\"x\"", 0, T0 + HOUR, T0, expired);
	assert_int_equal(silence_expire(f->silences, expired, T0 + MINUTE, &error), 0);
	reopen(f);

	assert_int_equal(silence_count(f->silences), 2);
	s = silence_get(f->silences, id);
	assert_non_null(s);
	assert_int_equal(s->matcher_count, 4);
	assert_string_equal(s->matchers[0].value, "Disk\"Full");
	assert_int_equal(s->matchers[3].op, EXPR_MATCH_NOT_REGEX);
	assert_string_equal(s->matchers[3].value, "(?i)OPS");
	assert_true(s->starts_at_ms == T0);
	assert_true(s->ends_at_ms == T0 + HOUR);
	assert_string_equal(s->created_by, "alice");
	assert_string_equal(s->comment, "disk replacement");
	assert_true(s->created_at_ms == T0);
	assert_true(s->updated_at_ms == T0);
	/* The regexes were compiled again at load. */
	assert_string_equal(silence_matches(f->silences, labels, 2, T0), id);
	assert_null(silence_matches(f->silences, ops, 3, T0));

	s = silence_get(f->silences, expired);
	assert_non_null(s);
	assert_true(s->ends_at_ms == T0 + MINUTE);
	assert_int_equal(silence_state(s, T0 + MINUTE), SILENCE_EXPIRED);
}

static void prune_keeps_retention(void **state)
{
	struct fixture *f = *state;
	char old[SILENCE_ID_SIZE];
	char recent[SILENCE_ID_SIZE];
	char active[SILENCE_ID_SIZE];
	int64_t now = T0 + SILENCE_RETENTION_DEFAULT_MS + HOUR;

	assert_true(SILENCE_RETENTION_DEFAULT_MS == 5 * DAY);
	create_one(f, "job=\"a\"", 0, T0 + HOUR - 1, T0, old); /* ended 1 ms too long ago */
	create_one(f, "job=\"b\"", 0, T0 + HOUR, T0, recent);  /* ended exactly 5 days ago */
	create_one(f, "job=\"c\"", 0, now + HOUR, T0, active);

	assert_int_equal(silence_prune(f->silences, now, SILENCE_RETENTION_DEFAULT_MS), 1);
	assert_null(silence_get(f->silences, old));
	assert_non_null(silence_get(f->silences, recent));
	assert_non_null(silence_get(f->silences, active));
	assert_int_equal(silence_prune(f->silences, now, SILENCE_RETENTION_DEFAULT_MS), 0);

	reopen(f);
	assert_int_equal(silence_count(f->silences), 2);
	assert_null(silence_get(f->silences, old));
	assert_int_equal(silence_prune(f->silences, now + 1, SILENCE_RETENTION_DEFAULT_MS), 1);
	assert_null(silence_get(f->silences, recent));
}

static void refresh_sees_other_connection(void **state)
{
	struct fixture *f = *state;
	const struct label labels[] = {{"job", "batch"}};
	struct statedb *other_db;
	struct silence_set *other;
	char id[SILENCE_ID_SIZE];
	char *error = NULL;
	struct silence_matcher m = {"job", EXPR_MATCH_EQUAL, "batch"};
	struct silence_spec spec = {
	    .matchers = &m,
	    .matcher_count = 1,
	    .ends_at_ms = T0 + HOUR,
	    .created_by = "cli",
	    .comment = "maintenance",
	};

	assert_int_equal(silence_set_refresh(f->silences), 0);
	/* A second connection, as `tocsind --silence add` opens while the daemon runs. */
	other_db = statedb_open(f->dir, &error);
	assert_non_null(other_db);
	other = silence_set_open(other_db, &error);
	assert_non_null(other);
	assert_int_equal(silence_create(other, &spec, T0, id, &error), 0);

	assert_null(silence_matches(f->silences, labels, 1, T0));
	assert_int_equal(silence_set_refresh(f->silences), 1);
	assert_string_equal(silence_matches(f->silences, labels, 1, T0), id);
	assert_int_equal(silence_set_refresh(f->silences), 0);

	assert_int_equal(silence_expire(other, id, T0 + MINUTE, &error), 0);
	assert_int_equal(silence_set_refresh(f->silences), 1);
	assert_null(silence_matches(f->silences, labels, 1, T0 + MINUTE));
	silence_set_free(other);
	statedb_close(other_db);
}

/* ---- acknowledgements ---- */

static void ack_until_resolved(void **state)
{
	struct fixture *f = *state;
	const uint64_t fingerprint = UINT64_C(0xfedcba9876543210);
	const struct ack *a;
	char *error = NULL;

	assert_null(ack_get(f->acks, "disk", fingerprint));
	assert_int_equal(
	    ack_create(f->acks, "disk", fingerprint, "bob", "replacing it", 0, T0, &error), 0);
	a = ack_active(f->acks, "disk", fingerprint, T0 + 365 * DAY);
	assert_non_null(a);
	assert_string_equal(a->created_by, "bob");
	assert_string_equal(a->comment, "replacing it");
	assert_true(a->created_at_ms == T0);
	assert_true(a->expires_at_ms == 0);
	/* Another rule's alert with the same labels is not acknowledged. */
	assert_null(ack_active(f->acks, "disk2", fingerprint, T0));
	assert_null(ack_active(f->acks, "disk", fingerprint + 1, T0));

	reopen(f);
	a = ack_active(f->acks, "disk", fingerprint, T0);
	assert_non_null(a);
	assert_true(a->fingerprint == fingerprint);

	assert_int_equal(ack_clear_on_resolve(f->acks, "disk", fingerprint), 1);
	assert_null(ack_get(f->acks, "disk", fingerprint));
	assert_int_equal(ack_clear_on_resolve(f->acks, "disk", fingerprint), 0);
	reopen(f);
	assert_null(ack_get(f->acks, "disk", fingerprint));
	assert_int_equal(ack_count(f->acks), 0);
}

static void ack_with_expiry(void **state)
{
	struct fixture *f = *state;
	char *error = NULL;

	assert_int_equal(ack_create(f->acks, "cpu", 7, "bob", "", T0 + HOUR, T0, &error), 0);
	assert_non_null(ack_active(f->acks, "cpu", 7, T0 + HOUR - 1));
	assert_null(ack_active(f->acks, "cpu", 7, T0 + HOUR));
	/* Expired but kept until pruned or cleared. */
	assert_non_null(ack_get(f->acks, "cpu", 7));

	/* Acknowledging again replaces the earlier acknowledgement. */
	assert_int_equal(
	    ack_create(f->acks, "cpu", 7, "carol", "still on it", 0, T0 + 2 * HOUR, &error), 0);
	assert_int_equal(ack_count(f->acks), 1);
	assert_string_equal(ack_active(f->acks, "cpu", 7, T0 + DAY)->created_by, "carol");

	assert_int_equal(ack_create(f->acks, "mem", 8, "bob", "x", T0 + HOUR, T0, &error), 0);
	assert_int_equal(ack_prune(f->acks, T0 + HOUR - 1), 0);
	assert_int_equal(ack_prune(f->acks, T0 + HOUR), 1);
	assert_null(ack_get(f->acks, "mem", 8));
	assert_non_null(ack_get(f->acks, "cpu", 7));
	reopen(f);
	assert_int_equal(ack_count(f->acks), 1);
	assert_null(ack_get(f->acks, "mem", 8));
}

static void ack_rejects_invalid(void **state)
{
	struct fixture *f = *state;
	const struct {
		const char *rule;
		const char *by;
		const char *comment;
		int64_t expires;
		const char *error;
	} cases[] = {
	    {NULL, "bob", "", 0, "rule: missing"},
	    {"", "bob", "", 0, "rule: missing"},
	    {"disk", " ", "", 0, "created_by: missing"},
	    {"disk", "bob", "\xff", 0, "comment: invalid UTF-8"},
	    {"disk", "bob", "", T0,
	     "expires_at: 2024-05-01T10:00:00Z is not in the future; give a later time, or 0 to "
	     "keep the acknowledgement until the alert resolves"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *error = NULL;
		int rc = ack_create(f->acks, cases[i].rule, 1, cases[i].by, cases[i].comment,
				    cases[i].expires, T0, &error);

		if (rc != -1 || error == NULL || strcmp(error, cases[i].error) != 0) {
			fail_msg("case %zu: expected error: %s\n  got: %s", i, cases[i].error,
				 error != NULL ? error : "(none)");
		}
		free(error);
	}
	assert_int_equal(ack_count(f->acks), 0);
}

struct ack_listed {
	size_t count;
	uint64_t fingerprints[8];
	char rules[8][16];
};

static void collect_ack(void *arg, const struct ack *a)
{
	struct ack_listed *l = arg;

	assert_true(l->count < 8);
	l->fingerprints[l->count] = a->fingerprint;
	snprintf(l->rules[l->count++], sizeof l->rules[0], "%s", a->rule);
}

static void ack_list_sorted(void **state)
{
	struct fixture *f = *state;
	struct ack_listed l = {0};
	char *error = NULL;

	assert_int_equal(ack_create(f->acks, "b", 2, "x", "", 0, T0, &error), 0);
	assert_int_equal(ack_create(f->acks, "a", UINT64_MAX, "x", "", 0, T0, &error), 0);
	assert_int_equal(ack_create(f->acks, "a", 2, "x", "", 0, T0, &error), 0);
	assert_int_equal(ack_create(f->acks, "c", 1, "x", "", 0, T0, &error), 0);
	reopen(f);
	ack_list(f->acks, collect_ack, &l);
	assert_int_equal(l.count, 4);
	assert_true(l.fingerprints[0] == 1);
	assert_string_equal(l.rules[1], "a");
	assert_true(l.fingerprints[1] == 2);
	assert_string_equal(l.rules[2], "b");
	assert_true(l.fingerprints[3] == UINT64_MAX);
	assert_non_null(ack_active(f->acks, "a", UINT64_MAX, T0));
}

static void ack_refresh_sees_other_connection(void **state)
{
	struct fixture *f = *state;
	struct statedb *other_db;
	struct ack_set *other;
	char *error = NULL;

	assert_int_equal(ack_set_refresh(f->acks), 0);
	other_db = statedb_open(f->dir, &error);
	assert_non_null(other_db);
	other = ack_set_open(other_db, &error);
	assert_non_null(other);
	assert_int_equal(ack_create(other, "disk", 5, "web", "on it", 0, T0, &error), 0);
	assert_null(ack_get(f->acks, "disk", 5));
	assert_int_equal(ack_set_refresh(f->acks), 1);
	assert_non_null(ack_active(f->acks, "disk", 5, T0));
	ack_set_free(other);
	statedb_close(other_db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(create_rejects_invalid_specs, setup, teardown),
	    cmocka_unit_test_setup_teardown(create_rejects_invalid_regex, setup, teardown),
	    cmocka_unit_test_setup_teardown(silence_ids_are_uuid_v4, setup, teardown),
	    cmocka_unit_test(matcher_parse_forms),
	    cmocka_unit_test(matcher_parse_errors),
	    cmocka_unit_test(matcher_format_round_trip),
	    cmocka_unit_test_setup_teardown(matching_each_operator, setup, teardown),
	    cmocka_unit_test_setup_teardown(matching_returns_oldest, setup, teardown),
	    cmocka_unit_test_setup_teardown(windows_on_virtual_clock, setup, teardown),
	    cmocka_unit_test_setup_teardown(start_in_past_becomes_now, setup, teardown),
	    cmocka_unit_test_setup_teardown(expire_ends_silence, setup, teardown),
	    cmocka_unit_test_setup_teardown(silences_survive_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(prune_keeps_retention, setup, teardown),
	    cmocka_unit_test_setup_teardown(refresh_sees_other_connection, setup, teardown),
	    cmocka_unit_test_setup_teardown(ack_until_resolved, setup, teardown),
	    cmocka_unit_test_setup_teardown(ack_with_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(ack_rejects_invalid, setup, teardown),
	    cmocka_unit_test_setup_teardown(ack_list_sorted, setup, teardown),
	    cmocka_unit_test_setup_teardown(ack_refresh_sees_other_connection, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
