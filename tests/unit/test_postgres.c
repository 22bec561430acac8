/*
 * Tests of the postgres probe's pure parts: option parsing and its error messages, the
 * SQLSTATE and libpq message classification tables, and the mapping of user query
 * columns to labels and values on results built with PQmakeEmptyPGresult.
 */
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/cfg.h"
#include "collector/xalloc.h"
#include "probes/pg_error.h"
#include "probes/pg_options.h"
#include "probes/pg_queries.h"
#include "probes/probe.h"

/* Options */

/* Parses `yaml` (the probe's option mapping) and returns the recorded errors (owned). */
static char *parse_options(const char *yaml, struct pg_options *opt, int *rc)
{
	struct cfg *cfg = cfg_parse_string("test.yml", yaml, strlen(yaml));
	struct cfg_map root;
	char *errors;

	assert_int_equal(cfg_error_count(cfg), 0);
	assert_int_equal(cfg_root(cfg, &root), 0);
	*rc = pg_options_parse(&root, opt);
	cfg_map_finish(&root);
	errors = xstrdup(cfg_errors(cfg));
	cfg_free(cfg);
	return errors;
}

static void options_defaults(void **unused)
{
	struct pg_options opt;
	int rc;
	char *errors = parse_options("host: 127.0.0.1\n", &opt, &rc);

	(void)unused;
	assert_int_equal(rc, 0);
	assert_string_equal(errors, "");
	assert_string_equal(opt.host, "127.0.0.1");
	/* An IP address is passed as hostaddr too, so libpq does not resolve it. */
	assert_string_equal(opt.hostaddr, "127.0.0.1");
	assert_string_equal(opt.port, "5432");
	assert_string_equal(opt.dbname, "postgres");
	assert_string_equal(opt.application_name, "tocsin");
	assert_null(opt.user);
	assert_null(opt.password);
	assert_int_equal(opt.connect_timeout_ms, 5000);
	assert_int_equal(opt.statement_timeout_ms, 5000);
	assert_int_equal(opt.top_statements, 10);
	assert_int_equal(opt.collect, PG_COLLECT_ALL);
	assert_int_equal(opt.query_count, 0);
	free(errors);
	pg_options_free(&opt);
}

static void options_host_name_not_hostaddr(void **unused)
{
	struct pg_options opt;
	int rc;
	char *errors = parse_options("host: db.example\n", &opt, &rc);

	(void)unused;
	assert_int_equal(rc, 0);
	assert_null(opt.hostaddr);
	free(errors);
	pg_options_free(&opt);
	errors = parse_options("host: /run/postgresql\n", &opt, &rc);
	assert_null(opt.hostaddr);
	free(errors);
	pg_options_free(&opt);
	errors = parse_options("host: '::1'\n", &opt, &rc);
	assert_string_equal(opt.hostaddr, "::1");
	free(errors);
	pg_options_free(&opt);
}

/* Which hosts the probe resolves itself before handing libpq the address as hostaddr. */
static void options_host_is_name_cases(void **unused)
{
	static const struct {
		const char *yaml;
		bool name;
	} cases[] = {
	    {"host: db.example\n", true},
	    {"host: localhost\n", true},
	    {"host: 10.0.0.5\n", false},
	    {"host: '::1'\n", false},
	    {"host: /run/postgresql\n", false},
	    {"host: '@pg'\n", false},
	    {"port: 5433\n", false},
	};

	(void)unused;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct pg_options opt;
		int rc;
		char *errors = parse_options(cases[i].yaml, &opt, &rc);

		assert_int_equal(rc, 0);
		if (pg_options_host_is_name(&opt) != cases[i].name)
			fail_msg("case %zu (%s): expected %s", i, cases[i].yaml,
				 cases[i].name ? "a name" : "not a name");
		free(errors);
		pg_options_free(&opt);
	}
}

static void options_dns_server_forms(void **unused)
{
	struct pg_options opt;
	int rc;
	char *errors = parse_options("host: db.example\ndns_server: 127.0.0.1\n", &opt, &rc);

	(void)unused;
	assert_int_equal(rc, 0);
	assert_string_equal(opt.dns_server, "127.0.0.1:53");
	free(errors);
	pg_options_free(&opt);
	errors = parse_options("dns_server: '[::1]:5353'\n", &opt, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(opt.dns_server, "[::1]:5353");
	free(errors);
	pg_options_free(&opt);
	errors = parse_options("host: db.example\n", &opt, &rc);
	assert_null(opt.dns_server);
	free(errors);
	pg_options_free(&opt);
}

/* Each invalid option and the part of the message that names the value and the fix. */
static const struct {
	const char *yaml;
	const char *message;
} option_errors[] = {
    {"port: 70000\n", "test.yml:1:7: port:"},
    {"sslmode: strict\n", "invalid sslmode \"strict\": expected disable, allow, prefer"},
    {"sslrootcert: /nonexistent/ca.pem\n", "cannot read '/nonexistent/ca.pem'"},
    {"connect_timeout: 0s\n", "connect_timeout: must be greater than 0"},
    {"host: a.example,b.example\n",
     "invalid host \"a.example,b.example\": a list of hosts is not supported"},
    {"dns_server: ns.example\n", "invalid dns_server \"ns.example\": expected an IP address"},
    {"dns_server: 127.0.0.1:0\n", "invalid dns_server \"127.0.0.1:0\""},
    {"top_statements: 101\n", "top_statements:"},
    {"collect: [activity, bloat]\n", "unknown query group \"bloat\": expected activity"},
    {"password_file: /nonexistent/pw\n", "cannot open '/nonexistent/pw'"},
    {"queries:\n  - sql: SELECT 1 AS n\n    values: [n]\n", "name: missing"},
    {"queries:\n  - name: q\n    values: [n]\n", "sql: missing"},
    {"queries:\n  - name: 9q\n    sql: SELECT 1\n    values: [n]\n", "invalid query name \"9q\""},
    {"queries:\n  - name: q\n    sql: SELECT 1\n", "values: missing"},
    {"queries:\n  - name: q\n    sql: SELECT 1 AS n, 'x' AS probe\n    labels: [probe]\n"
     "    values: [n]\n",
     "invalid label column \"probe\""},
    {"queries:\n  - name: q\n    sql: SELECT 1 AS n\n    values:\n      n: {metric: bad-name}\n",
     "invalid metric name \"bad-name\" for column 'n'"},
    {"queries:\n  - name: q\n    sql: SELECT 1 AS n\n    values:\n      n: {type: histogram}\n",
     "invalid metric type \"histogram\": expected gauge or counter"},
    {"queries:\n  - name: q\n    sql: SELECT 1 AS n\n    values: [n]\n"
     "  - name: q\n    sql: SELECT 2 AS n\n    values: [n]\n",
     "duplicate query name 'q'"},
};

static void options_errors_name_value(void **unused)
{
	(void)unused;
	for (size_t i = 0; i < sizeof option_errors / sizeof option_errors[0]; i++) {
		struct pg_options opt;
		int rc;
		char *errors = parse_options(option_errors[i].yaml, &opt, &rc);

		if (strstr(errors, option_errors[i].message) == NULL)
			fail_msg("case %zu: expected \"%s\" in \"%s\"", i, option_errors[i].message,
				 errors);
		assert_int_equal(rc, -1);
		free(errors);
		pg_options_free(&opt);
	}
}

static char *write_password_file(mode_t mode, const char *text)
{
	char *path = xstrdup("/tmp/tocsin-test-pw-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void options_password_file(void **unused)
{
	char *path = write_password_file(0600, "s3cret pass\n");
	char *yaml = xasprintf("password_file: %s\n", path);
	struct pg_options opt;
	int rc;
	char *errors = parse_options(yaml, &opt, &rc);

	(void)unused;
	assert_int_equal(rc, 0);
	/* The trailing newline is not part of the password. */
	assert_string_equal(opt.password, "s3cret pass");
	free(errors);
	pg_options_free(&opt);

	/* Readable by others: rejected, and the message never shows the content. */
	assert_int_equal(chmod(path, 0644), 0);
	errors = parse_options(yaml, &opt, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(errors, "is accessible by others (mode 0644)"));
	assert_null(strstr(errors, "s3cret"));
	assert_null(opt.password);
	free(errors);
	pg_options_free(&opt);
	unlink(path);
	free(path);
	free(yaml);

	path = write_password_file(0600, "\n");
	yaml = xasprintf("password_file: %s\n", path);
	errors = parse_options(yaml, &opt, &rc);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(errors, "must hold the password on one line"));
	free(errors);
	pg_options_free(&opt);
	unlink(path);
	free(path);
	free(yaml);
}

static void options_keywords_carry_settings(void **unused)
{
	const char *keywords[PG_OPTIONS_KEYWORDS_MAX];
	const char *values[PG_OPTIONS_KEYWORDS_MAX];
	char buf[128];
	struct pg_options opt;
	bool saw_options = false;
	int rc;
	char *errors = parse_options("host: 10.0.0.5\nuser: mon\nstatement_timeout: 1500ms\n"
				     "sslmode: verify-full\n",
				     &opt, &rc);

	(void)unused;
	assert_int_equal(rc, 0);
	pg_options_keywords(&opt, NULL, keywords, values, buf, sizeof buf);
	for (size_t i = 0; keywords[i] != NULL; i++) {
		assert_true(i < PG_OPTIONS_KEYWORDS_MAX - 1);
		assert_non_null(values[i]);
		if (strcmp(keywords[i], "options") == 0) {
			saw_options = true;
			assert_string_equal(values[i], "-c statement_timeout=1500 "
						       "-c default_transaction_read_only=on");
		}
	}
	assert_true(saw_options);
	free(errors);
	pg_options_free(&opt);
}

/* Returns the value of `keyword` in NULL-terminated keyword/value arrays, or NULL. */
static const char *keyword_value(const char *const *keywords, const char *const *values,
				 const char *keyword)
{
	for (size_t i = 0; keywords[i] != NULL; i++) {
		if (strcmp(keywords[i], keyword) == 0)
			return values[i];
	}
	return NULL;
}

static void options_keywords_resolved_hostaddr(void **unused)
{
	const char *keywords[PG_OPTIONS_KEYWORDS_MAX];
	const char *values[PG_OPTIONS_KEYWORDS_MAX];
	char buf[128];
	struct pg_options opt;
	int rc;
	char *errors = parse_options("host: db.example\nsslmode: verify-full\n", &opt, &rc);

	(void)unused;
	assert_int_equal(rc, 0);
	/* The name stays the host (for verify-full and the server), the address is hostaddr. */
	pg_options_keywords(&opt, "192.0.2.7", keywords, values, buf, sizeof buf);
	assert_string_equal(keyword_value(keywords, values, "host"), "db.example");
	assert_string_equal(keyword_value(keywords, values, "hostaddr"), "192.0.2.7");
	pg_options_keywords(&opt, NULL, keywords, values, buf, sizeof buf);
	assert_string_equal(keyword_value(keywords, values, "host"), "db.example");
	assert_null(keyword_value(keywords, values, "hostaddr"));
	free(errors);
	pg_options_free(&opt);
}

static void options_user_query_forms(void **unused)
{
	struct pg_options opt;
	int rc;
	char *errors = parse_options(
	    "queries:\n"
	    "  - name: backup\n    sql: SELECT 1\n    labels: [kind]\n    values: [age, size]\n"
	    "  - name: jobs\n    sql: SELECT 1\n    required: true\n    values:\n"
	    "      done: jobs_done_total\n"
	    "      late: {metric: jobs_late, type: counter, help: Late jobs.}\n",
	    &opt, &rc);

	(void)unused;
	assert_string_equal(errors, "");
	assert_int_equal(rc, 0);
	assert_int_equal(opt.query_count, 2);
	assert_false(opt.queries[0].required);
	assert_int_equal(opt.queries[0].label_count, 1);
	assert_string_equal(opt.queries[0].values[0].desc.name, "backup_age");
	assert_string_equal(opt.queries[0].values[1].desc.name, "backup_size");
	assert_int_equal(opt.queries[0].values[1].desc.type, METRIC_GAUGE);
	assert_true(opt.queries[1].required);
	assert_string_equal(opt.queries[1].values[0].column, "done");
	assert_string_equal(opt.queries[1].values[0].desc.name, "jobs_done_total");
	assert_string_equal(opt.queries[1].values[1].desc.name, "jobs_late");
	assert_int_equal(opt.queries[1].values[1].desc.type, METRIC_COUNTER);
	assert_string_equal(opt.queries[1].values[1].desc.help, "Late jobs.");
	free(errors);
	pg_options_free(&opt);
}

/* Classification */

static const struct {
	const char *sqlstate;
	bool connecting;
	enum probe_status status;
	const char *reason;
} sqlstate_cases[] = {
    {"28P01", true, PROBE_STATUS_AUTH_FAILED, "authentication failed"},
    {"28000", true, PROBE_STATUS_AUTH_FAILED, "authentication failed"},
    {"3D000", true, PROBE_STATUS_NOT_FOUND, "database does not exist"},
    {"53300", true, PROBE_STATUS_LIMIT_REACHED, "connection limit reached"},
    {"57P03", true, PROBE_STATUS_UNAVAILABLE, "server starting up"},
    {"57P01", true, PROBE_STATUS_UNAVAILABLE, "server shutting down"},
    /* On an established connection an admin shutdown ends the session. */
    {"57P01", false, PROBE_STATUS_CONNECTION_LOST, "connection lost"},
    {"57P02", false, PROBE_STATUS_CONNECTION_LOST, "connection lost"},
    {"57014", false, PROBE_STATUS_TIMEOUT, "query timeout"},
    {"08006", false, PROBE_STATUS_CONNECTION_LOST, "connection lost"},
    {"42501", false, PROBE_STATUS_NOT_PERMITTED, "permission denied"},
    {"53200", false, PROBE_STATUS_UNAVAILABLE, "server out of resources"},
    {"42P01", false, PROBE_STATUS_PROTOCOL_ERROR, "query failed"},
    {"bogus", false, PROBE_STATUS_PROTOCOL_ERROR, "query failed"},
};

static void sqlstate_classes(void **unused)
{
	(void)unused;
	for (size_t i = 0; i < sizeof sqlstate_cases / sizeof sqlstate_cases[0]; i++) {
		struct pg_error_class cls;

		pg_error_classify_sqlstate(sqlstate_cases[i].sqlstate, sqlstate_cases[i].connecting,
					   &cls);
		if (cls.status != sqlstate_cases[i].status ||
		    strcmp(cls.reason, sqlstate_cases[i].reason) != 0)
			fail_msg("%s: got %s \"%s\"", sqlstate_cases[i].sqlstate,
				 probe_status_info(cls.status)->name, cls.reason);
	}
	struct pg_error_class cls;

	assert_false(pg_error_classify_sqlstate(NULL, false, &cls));
}

/* Connection failure texts as libpq 15 writes them with verbose errors, C locale. */
static const struct {
	const char *message;
	enum probe_status status;
} connect_cases[] = {
    {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  28P01: password "
     "authentication failed for user \"mon\"\nLOCATION:  auth_failed, auth.c:326\n",
     PROBE_STATUS_AUTH_FAILED},
    /* A translated severity word does not hide the code. */
    {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  3D000: la base de "
     "donnees \"x\" n'existe pas\n",
     PROBE_STATUS_NOT_FOUND},
    {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  53300: too many "
     "connections for role \"mon\"\n",
     PROBE_STATUS_LIMIT_REACHED},
    {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  57P03: the database "
     "system is starting up\n",
     PROBE_STATUS_UNAVAILABLE},
    {"connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the "
     "server running on that host and accepting TCP/IP connections?\n",
     PROBE_STATUS_REFUSED},
    {"could not translate host name \"nowhere.invalid\" to address: Name or service not "
     "known\n",
     PROBE_STATUS_RESOLVE_ERROR},
    {"connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: No such file or "
     "directory\n",
     PROBE_STATUS_REFUSED},
    {"connection to server at \"10.1.1.1\", port 5432 failed: No route to host\n",
     PROBE_STATUS_UNREACHABLE},
    {"server closed the connection unexpectedly\n\tThis probably means the server terminated "
     "abnormally\n",
     PROBE_STATUS_CONNECTION_LOST},
    {"connection to server at \"127.0.0.1\", port 5432 failed: fe_sendauth: no password "
     "supplied\n",
     PROBE_STATUS_AUTH_FAILED},
    {"connection to server at \"127.0.0.1\", port 5432 failed: SSL error: certificate verify "
     "failed\n",
     PROBE_STATUS_TLS_ERROR},
    {"timeout expired\n", PROBE_STATUS_TIMEOUT},
    {"something new\n", PROBE_STATUS_PROTOCOL_ERROR},
};

static void connect_message_classes(void **unused)
{
	(void)unused;
	for (size_t i = 0; i < sizeof connect_cases / sizeof connect_cases[0]; i++) {
		struct pg_error_class cls;

		pg_error_classify_connect(connect_cases[i].message, &cls);
		if (cls.status != connect_cases[i].status)
			fail_msg("case %zu: got %s for %s", i, probe_status_info(cls.status)->name,
				 connect_cases[i].message);
	}
}

static void sqlstate_found_in_message(void **unused)
{
	char code[6];
	char line[128];

	(void)unused;
	assert_true(pg_error_sqlstate_in("x failed: ERREUR:  57014: annulation", code));
	assert_string_equal(code, "57014");
	assert_false(pg_error_sqlstate_in("failed: FATAL:  password authentication", code));
	assert_false(pg_error_sqlstate_in("FATAL:  5701", code));
	assert_false(pg_error_sqlstate_in(NULL, code));
	pg_error_first_line("connection to server at \"h\", port 1 failed: FATAL:  28P01: no\n"
			    "LOCATION: x\n",
			    line, sizeof line);
	assert_string_equal(line, "FATAL:  28P01: no");
}

/* Connection failure log throttle */

static void status_throttle_new_reason_logged_at_once(void **unused)
{
	/* One connection failure per second: what is logged, with how many hidden before. */
	static const struct {
		enum probe_status status;
		bool logged;
		uint64_t suppressed;
	} steps[] = {
	    {PROBE_STATUS_LIMIT_REACHED, true, 0},  {PROBE_STATUS_LIMIT_REACHED, false, 0},
	    {PROBE_STATUS_LIMIT_REACHED, false, 0}, {PROBE_STATUS_AUTH_FAILED, true, 0},
	    {PROBE_STATUS_AUTH_FAILED, false, 0},   {PROBE_STATUS_LIMIT_REACHED, true, 0},
	    {PROBE_STATUS_LIMIT_REACHED, false, 0},
	};
	struct pg_status_throttle t;
	uint64_t failures = 0;

	(void)unused;
	pg_status_throttle_init(&t);
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		uint64_t suppressed = 99;
		bool logged = pg_status_throttle_fail(&t, steps[i].status, i * 1000, &suppressed);

		assert_int_equal(logged, steps[i].logged);
		if (logged)
			assert_int_equal(suppressed, steps[i].suppressed);
	}
	assert_true(pg_status_throttle_ok(&t, &failures));
	assert_int_equal(failures, sizeof steps / sizeof steps[0]);
	assert_false(pg_status_throttle_ok(&t, &failures));
}

static void status_throttle_repeats_suppressed_doubling(void **unused)
{
	struct pg_status_throttle t;
	uint64_t suppressed = 0;
	size_t logged = 0;

	(void)unused;
	pg_status_throttle_init(&t);
	/* One refused connection a second for a minute: logged at 0, 10, 30 s. */
	for (uint64_t s = 0; s < 60; s++) {
		if (pg_status_throttle_fail(&t, PROBE_STATUS_REFUSED, s * 1000, &suppressed)) {
			logged++;
			assert_true(s == 0 || s == 10 || s == 30);
			assert_int_equal(suppressed, s == 0 ? 0 : s == 10 ? 9 : 19);
		}
	}
	assert_int_equal(logged, 3);
}

/* User query mapping */

static PGresult *make_result(int columns, const char *const *names, int rows,
			     const char *const *cells)
{
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc attrs[8];

	assert_true(columns <= 8);
	memset(attrs, 0, sizeof attrs);
	for (int i = 0; i < columns; i++) {
		attrs[i].name = (char *)names[i];
		attrs[i].typid = 25; /* text */
		attrs[i].typlen = -1;
	}
	assert_int_equal(PQsetResultAttrs(res, columns, attrs), 1);
	for (int r = 0; r < rows; r++) {
		for (int c = 0; c < columns; c++) {
			const char *cell = cells[r * columns + c];

			/* A NULL cell is set with length -1. */
			assert_int_equal(PQsetvalue(res, r, c, (char *)cell,
						    cell != NULL ? (int)strlen(cell) : -1),
					 1);
		}
	}
	return res;
}

static struct pg_user_query *user_query(void)
{
	struct pg_user_query *q = xcalloc(1, sizeof *q);

	q->name = xstrdup("backup");
	q->labels = xcalloc(2, sizeof *q->labels);
	q->labels[0] = xstrdup("kind");
	q->label_count = 1;
	q->values = xcalloc(2, sizeof *q->values);
	q->values[0] = (struct pg_user_value){xstrdup("age"), {"backup_age_seconds", "h", 0}};
	q->values[1] = (struct pg_user_value){xstrdup("ok"), {"backup_ok", "h", 0}};
	q->value_count = 2;
	return q;
}

static void user_query_free(struct pg_user_query *q)
{
	free(q->name);
	cfg_strv_free(q->labels);
	free(q->values[0].column);
	free(q->values[1].column);
	free(q->values);
	free(q);
}

static void user_columns_to_samples(void **unused)
{
	static const char *const names[] = {"ok", "kind", "age"};
	static const char *const cells[] = {"t", "full", "7200.5", "f", "wal", NULL};
	struct pg_user_query *q = user_query();
	PGresult *res = make_result(3, names, 2, cells);
	struct probe_run *run = probe_run_new(NULL, "test", NULL, NULL);
	const struct probe_sample *s;
	char error[128] = "";

	(void)unused;
	assert_int_equal(pg_user_emit(run, q, res, error, sizeof error), 0);
	/* Row 1: age and ok; row 2: ok only, since a NULL age is no value. */
	assert_int_equal(probe_run_sample_count(run), 3);
	s = probe_run_sample(run, 0);
	assert_string_equal(s->desc->name, "backup_age_seconds");
	assert_int_equal(s->label_count, 1);
	assert_string_equal(s->labels[0].name, "kind");
	assert_string_equal(s->labels[0].value, "full");
	assert_float_equal(s->value, 7200.5, 1e-9);
	s = probe_run_sample(run, 1);
	assert_string_equal(s->desc->name, "backup_ok");
	assert_float_equal(s->value, 1, 0);
	s = probe_run_sample(run, 2);
	assert_string_equal(s->labels[0].value, "wal");
	assert_float_equal(s->value, 0, 0);
	probe_run_free(run);
	PQclear(res);
	user_query_free(q);
}

static void user_column_missing_or_text(void **unused)
{
	static const char *const names[] = {"kind", "age"};
	static const char *const cells[] = {"full", "old"};
	static const char *const names_short[] = {"kind"};
	struct pg_user_query *q = user_query();
	PGresult *res = make_result(1, names_short, 1, cells);
	struct probe_run *run = probe_run_new(NULL, "test", NULL, NULL);
	char error[128] = "";

	(void)unused;
	assert_int_equal(pg_user_emit(run, q, res, error, sizeof error), -1);
	assert_string_equal(error, "value column 'age' not in the result");
	assert_int_equal(probe_run_sample_count(run), 0);
	PQclear(res);

	/* Column names match exactly: "Age" is not "age". */
	q->value_count = 1;
	res = make_result(2, names, 1, cells);
	assert_int_equal(pg_user_emit(run, q, res, error, sizeof error), -1);
	assert_string_equal(error, "column 'age' is not a number in row 1");
	PQclear(res);
	probe_run_free(run);
	q->value_count = 2;
	user_query_free(q);
}

static void cell_numbers(void **unused)
{
	static const char *const names[] = {"v"};
	static const char *const cells[] = {"42", "-1.5e3", "t", "f", "NaN", "", "12abc", NULL};
	static const int ok[] = {1, 1, 1, 1, 1, 0, 0, 0};
	static const double expected[] = {42, -1500, 1, 0, 0, 0, 0, 0};
	PGresult *res = make_result(1, names, 8, cells);

	(void)unused;
	for (int i = 0; i < 8; i++) {
		double v = -99;

		assert_int_equal(pg_cell_number(res, i, 0, &v), ok[i]);
		if (ok[i] && i != 4)
			assert_float_equal(v, expected[i], 1e-9);
	}
	PQclear(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(options_defaults),
	    cmocka_unit_test(options_host_name_not_hostaddr),
	    cmocka_unit_test(options_host_is_name_cases),
	    cmocka_unit_test(options_dns_server_forms),
	    cmocka_unit_test(options_keywords_resolved_hostaddr),
	    cmocka_unit_test(options_errors_name_value),
	    cmocka_unit_test(options_password_file),
	    cmocka_unit_test(options_keywords_carry_settings),
	    cmocka_unit_test(options_user_query_forms),
	    cmocka_unit_test(sqlstate_classes),
	    cmocka_unit_test(connect_message_classes),
	    cmocka_unit_test(sqlstate_found_in_message),
	    cmocka_unit_test(status_throttle_new_reason_logged_at_once),
	    cmocka_unit_test(status_throttle_repeats_suppressed_doubling),
	    cmocka_unit_test(user_columns_to_samples),
	    cmocka_unit_test(user_column_missing_or_text),
	    cmocka_unit_test(cell_numbers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
