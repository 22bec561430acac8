/*
 * The configuration loader: defaults, every global and common probe key, the cross-key
 * rules (timeout, heartbeat, unique names) and the exact text of each error. Probes use
 * the `host` type, the one compiled into every build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/clock.h"
#include "collector/config.h"
#include "collector/units.h"
#include "collector/xalloc.h"
#include "probes/probe.h"

/* Loads `text` as "t.yml" and expects it to fail with exactly `expected`. */
static void expect_errors(const char *text, const char *expected)
{
	char *errors = NULL;
	struct config *cfg = config_load_string("t.yml", text, &errors);

	assert_null(cfg);
	assert_non_null(errors);
	assert_string_equal(errors, expected);
	free(errors);
}

static struct config *load_ok(const char *text)
{
	char *errors = NULL;
	struct config *cfg = config_load_string("t.yml", text, &errors);

	if (errors != NULL)
		print_error("unexpected errors:\n%s\n", errors);
	assert_null(errors);
	assert_non_null(cfg);
	return cfg;
}

static void test_defaults(void **state)
{
	struct config *cfg = load_ok("");
	struct retention expected;

	(void)state;
	assert_string_equal(cfg->source, "t.yml");
	assert_string_equal(cfg->listen_host, "127.0.0.1");
	assert_int_equal(cfg->listen_port, 9517);
	assert_non_null(cfg->data_dir);
	assert_true(cfg->data_dir[0] == '/');
	assert_null(cfg->rrdcached);
	assert_int_equal(cfg->interval_ms, CONFIG_DEFAULT_INTERVAL_MS);
	assert_int_equal(cfg->timeout_ms, CONFIG_DEFAULT_TIMEOUT_MS);
	assert_int_equal(cfg->heartbeat_ms, 0);
	assert_int_equal(units_parse_retention(CONFIG_DEFAULT_RETENTION, &expected), 0);
	assert_memory_equal(&cfg->retention, &expected, sizeof expected);
	assert_false(cfg->log_level_set);
	assert_int_equal(cfg->probe_count, 0);
	config_free(cfg);
}

static void test_embedded_default_loads(void **state)
{
	char *errors = NULL;
	struct config *cfg = config_load_string("<embedded>", tocsin_default_config, &errors);
	const struct config_probe *host;

	(void)state;
	assert_null(errors);
	assert_non_null(cfg);
	assert_string_equal(cfg->listen_host, "127.0.0.1");
	assert_int_equal(cfg->listen_port, 9517);
	assert_int_equal(cfg->retention.count, 3);
	host = config_find_probe(cfg, "host");
	assert_non_null(host);
	assert_ptr_equal(host->type, probe_type_find("host"));
	assert_int_equal(host->interval_ms, 10000);
	assert_int_equal(host->timeout_ms, 5000);
	assert_int_equal(host->heartbeat_s, 20);
	config_free(cfg);
}

static void test_full_config(void **state)
{
	struct config *cfg = load_ok("listen: \"[::1]:9100\"\n"
				     "data_dir: /srv/tocsin\n"
				     "rrdcached: unix:/run/rrdcached.sock\n"
				     "interval: 30s\n"
				     "timeout: 20s\n"
				     "retention: [30s:1d, 5m:90d]\n"
				     "archive: {heartbeat: 2m}\n"
				     "log_level: debug\n"
				     "probes:\n"
				     "  - name: local\n"
				     "    type: host\n"
				     "    labels: {zone: b, env: prod}\n"
				     "  - name: fast\n"
				     "    type: host\n"
				     "    interval: 5s\n"
				     "    heartbeat: 15s\n"
				     "    root: /\n");
	const struct config_probe *local;
	const struct config_probe *fast;

	(void)state;
	assert_string_equal(cfg->listen_host, "::1");
	assert_int_equal(cfg->listen_port, 9100);
	assert_string_equal(cfg->data_dir, "/srv/tocsin");
	assert_string_equal(cfg->rrdcached, "unix:/run/rrdcached.sock");
	assert_int_equal(cfg->interval_ms, 30000);
	assert_int_equal(cfg->timeout_ms, 20000);
	assert_int_equal(cfg->retention.count, 2);
	assert_int_equal(cfg->retention.tier[0].step_s, 30);
	assert_int_equal(cfg->retention.tier[0].keep_s, 86400);
	assert_int_equal(cfg->retention.tier[1].step_s, 300);
	assert_int_equal(cfg->retention.tier[1].keep_s, 90 * 86400);
	assert_int_equal(cfg->heartbeat_ms, 120000);
	assert_true(cfg->log_level_set);
	assert_int_equal(cfg->log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(cfg->probe_count, 2);

	local = config_find_probe(cfg, "local");
	assert_non_null(local);
	assert_ptr_equal(local->type, probe_type_find("host"));
	assert_non_null(local->state);
	assert_int_equal(local->interval_ms, 30000);
	assert_int_equal(local->timeout_ms, 20000);
	assert_int_equal(local->heartbeat_s, 120); /* archive.heartbeat */
	assert_string_equal(local->location, "t.yml:10:5");
	assert_int_equal(local->label_count, 2);
	assert_string_equal(local->labels[0].name, "env"); /* sorted by name */
	assert_string_equal(local->labels[0].value, "prod");
	assert_string_equal(local->labels[1].name, "zone");
	assert_string_equal(local->labels[1].value, "b");

	fast = config_find_probe(cfg, "fast");
	assert_non_null(fast);
	assert_int_equal(fast->interval_ms, 5000);
	assert_int_equal(fast->timeout_ms, 5000); /* min(global timeout, interval) */
	assert_int_equal(fast->heartbeat_s, 15);
	assert_int_equal(fast->label_count, 0);
	assert_true(local->fingerprint != fast->fingerprint);

	assert_null(config_find_probe(cfg, "missing"));
	config_free(cfg);
}

static void test_heartbeat_shorter_than_interval(void **state)
{
	(void)state;
	expect_errors("probes:\n"
		      "  - name: a\n"
		      "    type: host\n"
		      "    interval: 3s\n"
		      "    heartbeat: 2s\n",
		      "t.yml:5:16: probes[0].heartbeat: heartbeat (2s) is shorter than probe "
		      "interval (3s); use at least 2x the interval (6s), or omit it for that "
		      "default");
}

static void test_heartbeat_defaults_to_twice_interval(void **state)
{
	struct config *cfg = load_ok("probes:\n"
				     "  - name: a\n"
				     "    type: host\n"
				     "    interval: 3s\n"
				     "  - name: b\n"
				     "    type: host\n"
				     "    interval: 3s\n"
				     "    heartbeat: 3s\n");

	(void)state;
	assert_int_equal(config_find_probe(cfg, "a")->heartbeat_s, 6);
	assert_int_equal(config_find_probe(cfg, "a")->timeout_ms, 3000);
	/* A heartbeat equal to the interval is accepted. */
	assert_int_equal(config_find_probe(cfg, "b")->heartbeat_s, 3);
	config_free(cfg);
}

static void test_archive_heartbeat_shorter_than_interval(void **state)
{
	(void)state;
	expect_errors("archive:\n"
		      "  heartbeat: 20s\n"
		      "probes:\n"
		      "  - name: slow\n"
		      "    type: host\n"
		      "    interval: 30s\n"
		      "    timeout: 5s\n",
		      "t.yml:6:15: probes[0].interval: heartbeat (20s, from archive.heartbeat) is "
		      "shorter than probe interval (30s); give this probe a heartbeat of at least "
		      "2x the interval (1m), or raise archive.heartbeat");
}

static void test_timeout_rules(void **state)
{
	struct config *cfg;

	(void)state;
	expect_errors("probes:\n"
		      "  - name: a\n"
		      "    type: host\n"
		      "    interval: 5s\n"
		      "    timeout: 6s\n",
		      "t.yml:5:14: probes[0].timeout: timeout (6s) is longer than probe interval "
		      "(5s); a run must end before the next one starts");
	expect_errors("interval: 2s\ntimeout: 3s\n",
		      "t.yml:2:10: timeout: timeout (3s) is longer than interval (2s); a probe run "
		      "must end before the next one starts");
	cfg = load_ok("interval: 2s\n");
	assert_int_equal(cfg->timeout_ms, 2000);
	config_free(cfg);
	expect_errors("timeout: 0s\n", "t.yml:1:10: timeout: a timeout of 0 is not accepted; "
				       "give at least 1ms");
}

static void test_health_keys(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("probes:\n"
		      "  - { name: a, type: host }\n"
		      "  - { name: b, type: host, interval: 30s, timeout: 2s, rise: 3, fall: 2,\n"
		      "      fast_interval: 5s }\n");
	assert_int_equal(cfg->probes[0].rise, 1);
	assert_int_equal(cfg->probes[0].fall, 1);
	assert_int_equal(cfg->probes[0].fast_interval_ms, 0);
	assert_int_equal(cfg->probes[1].rise, 3);
	assert_int_equal(cfg->probes[1].fall, 2);
	assert_int_equal(cfg->probes[1].fast_interval_ms, 5000);
	config_free(cfg);

	expect_errors("probes:\n"
		      "  - { name: a, type: host, interval: 10s, fast_interval: 20s }\n",
		      "t.yml:2:58: probes[0].fast_interval: fast_interval (20s) is longer than the "
		      "probe interval (10s); it is the shorter interval used while the probe is "
		      "failing");
	expect_errors(
	    "probes:\n"
	    "  - { name: a, type: host, interval: 10s, timeout: 5s, fast_interval: 1s }\n",
	    "t.yml:2:71: probes[0].fast_interval: fast_interval (1s) is shorter than the "
	    "timeout (5s); a run must end before the next one starts, so lower the "
	    "timeout or raise fast_interval");
	expect_errors("probes:\n"
		      "  - { name: a, type: host, rise: 0 }\n",
		      "t.yml:2:34: probes[0].rise: \"0\" is out of range (accepted: 1 to 1000)");
}

static void test_interval_rules(void **state)
{
	(void)state;
	expect_errors(
	    "interval: 1500ms\n",
	    "t.yml:1:11: interval: 1s500ms is not accepted; an interval is a whole number "
	    "of seconds from 1s to 7d because it is the archive step");
	expect_errors("interval: 8d\n",
		      "t.yml:1:11: interval: 8d is not accepted; an interval is a whole number of "
		      "seconds from 1s to 7d because it is the archive step");
	expect_errors("interval: 0\n",
		      "t.yml:1:11: interval: 0s is not accepted; an interval is a whole number of "
		      "seconds from 1s to 7d because it is the archive step");
	expect_errors(
	    "archive: {heartbeat: 500ms}\n",
	    "t.yml:1:22: archive.heartbeat: 500ms is not accepted; a heartbeat is a whole "
	    "number of seconds, at least 1s, because RRD stores it in seconds");
}

static void test_duplicate_probe_names(void **state)
{
	(void)state;
	expect_errors("probes:\n"
		      "  - name: web\n"
		      "    type: host\n"
		      "  - name: db\n"
		      "    type: host\n"
		      "  - type: host\n"
		      "    name: web\n",
		      "t.yml:7:11: probes[2].name: duplicate probe name \"web\" (first defined at "
		      "t.yml:2:5)");
}

/* A regex nested 30,000 groups deep in each probe type's regex options: each is a
 * config error, not a crash inside regcomp(). */
static void test_deeply_nested_regexes_rejected(void **state)
{
	/* Each probe is written around the regex: PREFIX REGEX SUFFIX. */
	static const char *const probes[][2] = {
	    {"{name: w, type: http, url: \"http://127.0.0.1:1/\", body_must_match: [\"", "\"]}"},
	    {"{name: t, type: tcp, target: \"127.0.0.1:1\", query_response: [{expect: \"", "\"}]}"},
	    {"{name: d, type: dns, query_name: example.test, server: \"127.0.0.1:1\", "
	     "validate_answer_rrs: {fail_if_not_matches_regexp: [\"",
	     "\"]}}"},
	    {"{name: h, type: host, mount_points_exclude: \"", "\"}"},
	};
	size_t depth = 30000;
	char *re = malloc(2 * depth + 2);

	(void)state;
	memset(re, '(', depth);
	re[depth] = 'x';
	memset(re + depth + 1, ')', depth);
	re[2 * depth + 1] = '\0';
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		char *text = xasprintf("probes:\n  - %s%s%s\n", probes[i][0], re, probes[i][1]);
		char *errors = NULL;
		struct config *cfg = config_load_string("t.yml", text, &errors);

		assert_null(cfg);
		assert_non_null(errors);
		if (strstr(errors, "groups nested deeper than 1000 at offset 1000") == NULL)
			fail_msg("%.60s...: %.300s", probes[i][0], errors);
		free(errors);
		free(text);
	}
	free(re);
}

static void test_many_probe_names_checked_quickly(void **state)
{
	/* 50,000 probes and one duplicate name at the end. Comparing each name with every
	 * earlier one makes 1.25e9 comparisons, which take seconds; a set takes a fraction of
	 * one. The tcp type is parsed faster than host, whose options allocate more. */
	enum { PROBE_COUNT = 50000, LINE_MAX_LENGTH = 64 };
	char *text = malloc((size_t)(PROBE_COUNT + 2) * LINE_MAX_LENGTH);
	char *errors = NULL;
	struct config *cfg;
	double started;
	size_t len = 0;

	(void)state;
	assert_non_null(text);
	len += (size_t)sprintf(text + len, "probes:\n");
	for (int i = 0; i < PROBE_COUNT; i++)
		len += (size_t)sprintf(text + len,
				       "  - {name: p%06d, type: tcp, target: 127.0.0.1:1}\n", i);
	len += (size_t)sprintf(text + len, "  - {name: p%06d, type: tcp, target: 127.0.0.1:1}\n",
			       12345);

	started = clock_monotonic_seconds();
	cfg = config_load_string("t.yml", text, &errors);
	assert_true(clock_monotonic_seconds() - started < 5.0);

	assert_null(cfg);
	assert_non_null(errors);
	assert_string_equal(errors, "t.yml:50002:12: probes[50000].name: duplicate probe name "
				    "\"p012345\" (first defined at t.yml:12347:5)");
	free(errors);
	free(text);
}

static void test_probe_name_and_type_errors(void **state)
{
	char expected[1024];

	(void)state;
	snprintf(expected, sizeof expected,
		 "t.yml:2:5: probes[0]: missing required key \"name\"\n"
		 "t.yml:4:11: probes[1].type: unknown probe type \"htp\" (known types: %s)\n"
		 "t.yml:5:5: probes[2]: missing required key \"type\" (known types: %s)\n"
		 "t.yml:6:11: probes[3].name: invalid probe name \"a\\tb\" (accepted: up to 128 "
		 "bytes of printable text, without control characters or leading and trailing "
		 "spaces)\n"
		 "t.yml:8:5: probes[4]: expected a mapping, found a string",
		 probe_type_names(), probe_type_names());
	expect_errors("probes:\n"
		      "  - type: host\n"
		      "  - name: b\n"
		      "    type: htp\n"
		      "  - name: c\n"
		      "  - name: \"a\\tb\"\n"
		      "    type: host\n"
		      "  - just a name\n",
		      expected);
}

static void test_labels(void **state)
{
	(void)state;
	expect_errors(
	    "probes:\n"
	    "  - name: a\n"
	    "    type: host\n"
	    "    labels:\n"
	    "      9lives: x\n"
	    "      __meta: x\n"
	    "      probe: x\n"
	    "      empty: \"\"\n"
	    "      ok: fine\n"
	    "      list: [1]\n",
	    "t.yml:5:15: probes[0].labels.9lives: invalid label name \"9lives\" "
	    "(accepted: letters, digits and \"_\", not starting with a digit)\n"
	    "t.yml:6:15: probes[0].labels.__meta: label name \"__meta\" is reserved: "
	    "names starting with \"__\" are for internal use\n"
	    "t.yml:7:14: probes[0].labels.probe: label name \"probe\" is reserved: tocsin "
	    "sets it to the probe's name\n"
	    "t.yml:8:14: probes[0].labels.empty: label value is empty; remove the label "
	    "instead, because an empty value means no label in Prometheus\n"
	    "t.yml:10:13: probes[0].labels.list: expected a string, found a sequence");
	expect_errors("probes:\n"
		      "  - name: a\n"
		      "    type: host\n"
		      "    labels: [a, b]\n",
		      "t.yml:4:13: probes[0].labels: expected a mapping, found a sequence");
}

static void test_unknown_keys(void **state)
{
	(void)state;
	expect_errors("listn: 127.0.0.1:1\n"
		      "archive: {hearbeat: 20s}\n"
		      "probes:\n"
		      "  - name: a\n"
		      "    type: host\n"
		      "    intreval: 10s\n"
		      "    roots: /\n"
		      "    completely_different: 1\n",
		      "t.yml:1:1: listn: unknown key (did you mean \"listen\"?)\n"
		      "t.yml:2:11: archive.hearbeat: unknown key (did you mean \"heartbeat\"?)\n"
		      "t.yml:6:5: probes[0].intreval: unknown key (did you mean \"interval\"?)\n"
		      "t.yml:7:5: probes[0].roots: unknown key (did you mean \"root\"?)\n"
		      "t.yml:8:5: probes[0].completely_different: unknown key (known keys here: "
		      "name, type, interval, timeout, heartbeat, rise, fall, fast_interval, "
		      "labels, discovery, "
		      "root, "
		      "filesystems_exclude, "
		      "mount_points_exclude, devices_exclude, interfaces_exclude)");
}

static void test_unknown_type_hides_options(void **state)
{
	char expected[512];

	(void)state;
	/* Without a valid type, options cannot be distinguished from typos: only the type is reported. */
	snprintf(expected, sizeof expected,
		 "t.yml:3:11: probes[0].type: unknown probe type \"nope\" (known types: %s)",
		 probe_type_names());
	expect_errors("probes:\n"
		      "  - name: a\n"
		      "    type: nope\n"
		      "    url: http://127.0.0.1/\n",
		      expected);
}

static void test_global_value_errors(void **state)
{
	(void)state;
	expect_errors(
	    "listen: localhost\n"
	    "data_dir: \"\"\n"
	    "rrdcached: /run/rrdcached.sock\n"
	    "interval: 10x\n"
	    "log_level: verbose\n",
	    "t.yml:1:9: listen: \"localhost\" is not HOST:PORT with a port from 0 to 65535 "
	    "(examples: 127.0.0.1:9517, [::1]:9517, :9517)\n"
	    "t.yml:2:11: data_dir: is empty; expected a directory path\n"
	    "t.yml:3:12: rrdcached: \"/run/rrdcached.sock\" is not an rrdcached address "
	    "(accepted: unix:/PATH or HOST:PORT; examples: unix:/run/rrdcached.sock, "
	    "127.0.0.1:42217)\n"
	    "t.yml:4:11: interval: \"10x\" is not a duration (examples: 500ms, 10s, 5m, "
	    "1h, 1h30m, 7d)\n"
	    "t.yml:5:12: log_level: \"verbose\" is not a log level (accepted: error, warn, "
	    "notice, info, debug)");
}

static void test_rrdcached_forms(void **state)
{
	static const char *const valid[] = {"unix:/run/rrdcached.sock", "127.0.0.1:42217",
					    "rrd.example.net:42217", "[::1]:42217"};
	static const char *const invalid[] = {"unix:",  "unix:relative", "127.0.0.1",
					      ":42217", "host:0",        "host:99999"};
	char text[128];
	char *errors = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		struct config *cfg;

		snprintf(text, sizeof text, "rrdcached: \"%s\"\n", valid[i]);
		cfg = load_ok(text);
		assert_string_equal(cfg->rrdcached, valid[i]);
		config_free(cfg);
	}
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		snprintf(text, sizeof text, "rrdcached: \"%s\"\n", invalid[i]);
		assert_null(config_load_string("t.yml", text, &errors));
		assert_non_null(strstr(errors, "is not an rrdcached address"));
		free(errors);
	}
}

static void test_retention_rules(void **state)
{
	struct config *cfg;

	(void)state;
	expect_errors(
	    "retention: [1m:30d, 10s:2d, 7s:1m, junk, 1h:1h]\n",
	    "t.yml:1:21: retention[1]: \"10s:2d\" has a step (10s) that is not longer "
	    "than the step of the tier before it (1m); list tiers from the shortest step "
	    "to the longest\n"
	    "t.yml:1:29: retention[2]: \"7s:1m\" has a KEEP that is not a multiple of its "
	    "STEP (STEP:KEEP; examples: 10s:2d, 1m:30d, 1h:400d)\n"
	    "t.yml:1:36: retention[3]: \"junk\" is not STEP:KEEP (STEP:KEEP; examples: "
	    "10s:2d, 1m:30d, 1h:400d)\n"
	    "t.yml:1:42: retention[4]: \"1h:1h\" has a KEEP that is not longer than its "
	    "STEP (STEP:KEEP; examples: 10s:2d, 1m:30d, 1h:400d)");
	expect_errors("retention: []\n", "t.yml:1:12: retention: no tiers given; list at least one "
					 "(examples: 10s:2d, 1m:30d, 1h:400d)");
	expect_errors("retention: [1s:2s, 2s:4s, 3s:6s, 4s:8s, 5s:10s, 6s:12s, 7s:14s, 8s:16s, "
		      "9s:18s]\n",
		      "t.yml:1:73: retention[8]: \"9s:18s\" is one tier too many; at most 8 tiers "
		      "are accepted");
	expect_errors("retention: {a: 1}\n",
		      "t.yml:1:12: retention: expected a sequence, found a mapping");

	/* One string of comma-separated tiers is read as the sequence would be. */
	cfg = load_ok("retention: 10s:1d, 1m:7d\n");
	assert_int_equal(cfg->retention.count, 2);
	assert_int_equal(cfg->retention.tier[1].step_s, 60);
	config_free(cfg);
	expect_errors("retention: 1m:1d, 10s:1h\n",
		      "t.yml:1:12: retention: \"10s:1h\" has a step (10s) that is not longer than "
		      "the step of the tier before it (1m); list tiers from the shortest step to "
		      "the longest");
}

static void test_all_errors_in_one_run(void **state)
{
	char *errors = NULL;
	size_t lines = 1;

	(void)state;
	assert_null(config_load_string("t.yml",
				       "interval: 10x\n"
				       "timeout: 1y\n"
				       "log_level: loud\n"
				       "bogus: 1\n"
				       "probes:\n"
				       "  - name: a\n"
				       "    type: host\n"
				       "    interval: 3s\n"
				       "    heartbeat: 2s\n"
				       "  - name: a\n"
				       "    type: host\n"
				       "    labels: {probe: x}\n",
				       &errors));
	assert_non_null(errors);
	for (const char *p = errors; *p != '\0'; p++)
		lines += *p == '\n';
	/* interval, timeout, log_level, heartbeat, duplicate name, label, unknown key. */
	assert_int_equal(lines, 7);
	assert_non_null(strstr(errors, "t.yml:1:11: interval:"));
	assert_non_null(strstr(errors, "t.yml:2:10: timeout:"));
	assert_non_null(strstr(errors, "t.yml:3:12: log_level:"));
	assert_non_null(strstr(errors, "t.yml:9:16: probes[0].heartbeat:"));
	assert_non_null(strstr(errors, "t.yml:10:11: probes[1].name: duplicate"));
	assert_non_null(strstr(errors, "t.yml:12:21: probes[1].labels.probe:"));
	assert_non_null(strstr(errors, "t.yml:4:1: bogus: unknown key"));
	free(errors);
}

static void test_syntax_error(void **state)
{
	(void)state;
	expect_errors("interval: 10s\nprobes: [\n",
		      "t.yml:3:1: invalid YAML: did not find expected node content (while parsing "
		      "a flow node that starts at line 3, column 1)");
}

static void test_listen_parsing(void **state)
{
	static const struct {
		const char *text;
		const char *host;
		uint16_t port;
	} valid[] = {
	    {"127.0.0.1:9517", "127.0.0.1", 9517},
	    {"localhost:80", "localhost", 80},
	    {"[::1]:9517", "::1", 9517},
	    {"[fe80::1%eth0]:1", "fe80::1%eth0", 1},
	    {":9517", "0.0.0.0", 9517},
	    {"127.0.0.1:0", "127.0.0.1", 0},
	    {"127.0.0.1:65535", "127.0.0.1", 65535},
	};
	static const char *const invalid[] = {
	    "",
	    "9517",
	    "127.0.0.1",
	    "127.0.0.1:",
	    "127.0.0.1:65536",
	    "127.0.0.1:-1",
	    "127.0.0.1:+80",
	    "127.0.0.1:8o",
	    "::1:9517",
	    "[::1]9517",
	    "[::1]:",
	    "[]:80",
	    "[zz::1]:80",
	    "[127.0.0.1]:80",
	    "host name:80",
	    "127.0.0.1:0009517",
	};

	(void)state;
	for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		char *host = NULL;
		uint16_t port = 1;

		assert_int_equal(config_parse_listen(valid[i].text, &host, &port), 0);
		assert_string_equal(host, valid[i].host);
		assert_int_equal(port, valid[i].port);
		free(host);
	}
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		char *host = NULL;
		uint16_t port = 1;

		assert_int_equal(config_parse_listen(invalid[i], &host, &port), -1);
		assert_null(host);
		assert_int_equal(port, 1);
	}
}

static void test_command_line_overrides(void **state)
{
	struct config *cfg = load_ok("");
	char *error = NULL;

	(void)state;
	assert_int_equal(config_set_listen(cfg, "[::]:9999", &error), 0);
	assert_null(error);
	assert_string_equal(cfg->listen_host, "::");
	assert_int_equal(cfg->listen_port, 9999);
	assert_int_equal(config_set_listen(cfg, "nope", &error), -1);
	assert_string_equal(error, "invalid listen address \"nope\" (examples: 127.0.0.1:9517, "
				   "[::1]:9517, :9517)");
	free(error);
	/* A rejected value leaves the previous one in place. */
	assert_string_equal(cfg->listen_host, "::");
	config_set_data_dir(cfg, "/tmp/tocsin-data");
	assert_string_equal(cfg->data_dir, "/tmp/tocsin-data");
	config_free(cfg);
}

static void test_fingerprint_follows_inherited_values(void **state)
{
	const char *probes = "probes:\n"
			     "  - name: inherits\n"
			     "    type: host\n"
			     "  - name: own\n"
			     "    type: host\n"
			     "    interval: 10s\n"
			     "    timeout: 2s\n"
			     "    heartbeat: 20s\n";
	char text[512];
	struct config *a;
	struct config *b;
	struct config *c;

	(void)state;
	snprintf(text, sizeof text, "interval: 30s\n%s", probes);
	a = load_ok(text);
	snprintf(text, sizeof text, "interval: 1m\n%s", probes);
	b = load_ok(text);
	snprintf(text, sizeof text, "# a comment\ninterval: 30s\n%s", probes);
	c = load_ok(text);
	assert_true(config_find_probe(a, "inherits")->fingerprint !=
		    config_find_probe(b, "inherits")->fingerprint);
	assert_true(config_find_probe(a, "own")->fingerprint ==
		    config_find_probe(b, "own")->fingerprint);
	assert_true(config_find_probe(a, "inherits")->fingerprint ==
		    config_find_probe(c, "inherits")->fingerprint);
	/* The source hash covers every byte, comments included. */
	assert_true(a->hash != c->hash);
	config_free(a);
	config_free(b);
	config_free(c);
}

static void test_http_limits(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("probes: []\n");
	assert_int_equal(cfg->http.max_header_size, 16 * 1024);
	assert_int_equal(cfg->http.max_header_count, 64);
	assert_int_equal(cfg->http.max_body_size, 1024 * 1024);
	assert_int_equal(cfg->http.max_connections, 256);
	assert_int_equal(cfg->http.timeout_ms, 30000);
	assert_int_equal(cfg->api_read, CONFIG_API_READ_LOOPBACK);
	config_free(cfg);

	cfg = load_ok("http:\n"
		      "  max_header_size: 8KiB\n"
		      "  max_header_count: 20\n"
		      "  max_body_size: 2MiB\n"
		      "  max_connections: 10\n"
		      "  timeout: 5s\n"
		      "api:\n"
		      "  read: open\n");
	assert_int_equal(cfg->http.max_header_size, 8 * 1024);
	assert_int_equal(cfg->http.max_header_count, 20);
	assert_int_equal(cfg->http.max_body_size, 2 * 1024 * 1024);
	assert_int_equal(cfg->http.max_connections, 10);
	assert_int_equal(cfg->http.timeout_ms, 5000);
	assert_int_equal(cfg->api_read, CONFIG_API_READ_OPEN);
	config_free(cfg);
}

static void test_http_limit_errors(void **state)
{
	(void)state;
	expect_errors(
	    "http:\n"
	    "  max_header_size: 100\n"
	    "  max_header_count: 0\n"
	    "  max_body_size: 2GiB\n"
	    "  max_connections: many\n"
	    "  timeout: 100ms\n"
	    "api:\n"
	    "  read: everyone\n",
	    "t.yml:2:20: http.max_header_size: 100 bytes is out of range (accepted: 1KiB "
	    "to 1MiB)\n"
	    "t.yml:3:21: http.max_header_count: \"0\" is out of range (accepted: 8 to "
	    "10000)\n"
	    "t.yml:4:18: http.max_body_size: 2147483648 bytes is out of range (accepted: "
	    "1KiB to 1GiB)\n"
	    "t.yml:5:20: http.max_connections: \"many\" is not an integer (accepted: 1 to "
	    "100000)\n"
	    "t.yml:6:12: http.timeout: 100ms is out of range (accepted: 1s to 1h)\n"
	    "t.yml:8:9: api.read: \"everyone\" is not a read access (accepted: open, "
	    "loopback, token)");
	expect_errors("api:\n"
		      "  read: token\n",
		      "t.yml:2:9: api.read: is token, but api.tokens is empty, so every read "
		      "would be rejected; add a token of role read or admin");
}

/*
 * A token that is not a mapping is an error. The ASan build also checks that the key
 * tracking of the rejected item is freed.
 */
static void test_api_token_not_mapping(void **state)
{
	char *errors = NULL;
	struct config *cfg = config_load_string("t.yml",
						"api:\n"
						"  tokens:\n"
						"    - ops\n",
						&errors);

	(void)state;
	assert_null(cfg);
	assert_non_null(errors);
	assert_non_null(strstr(errors, "api.tokens[0]"));
	assert_non_null(strstr(errors, "expected a mapping"));
	free(errors);
}

static void test_print_summary(void **state)
{
	struct config *cfg = load_ok("listen: \"[::1]:9100\"\n"
				     "data_dir: /srv/tocsin\n"
				     "probes:\n"
				     "  - name: local\n"
				     "    type: host\n"
				     "    labels: {env: prod}\n");
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	(void)state;
	assert_non_null(out);
	config_print_summary(cfg, out);
	fclose(out);
	assert_string_equal(text,
			    "config: t.yml\n"
			    "listen: [::1]:9100\n"
			    "data_dir: /srv/tocsin\n"
			    "archives: written by tocsind\n"
			    "retention: 10s:2d, 1m:30d, 1h:400d\n"
			    "defaults: interval 10s, timeout 5s, heartbeat 2x interval\n"
			    "log_level: info\n"
			    "probes: 1\n"
			    "  local: type host, interval 10s, timeout 5s, heartbeat 20s, labels "
			    "env=\"prod\"\n");
	free(text);
	config_free(cfg);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/test_config_XXXXXX";
	int fd = mkstemp(path);
	const char *text = "interval: 20s\n";
	char *errors = NULL;
	struct config *cfg;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cfg = config_load_file(path, &errors);
	unlink(path);
	assert_null(errors);
	assert_non_null(cfg);
	assert_string_equal(cfg->source, path);
	assert_int_equal(cfg->interval_ms, 20000);
	config_free(cfg);

	assert_null(config_load_file("/nonexistent/tocsin.yml", &errors));
	assert_string_equal(errors,
			    "/nonexistent/tocsin.yml: failed to read: No such file or directory");
	free(errors);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_embedded_default_loads),
	    cmocka_unit_test(test_full_config),
	    cmocka_unit_test(test_heartbeat_shorter_than_interval),
	    cmocka_unit_test(test_heartbeat_defaults_to_twice_interval),
	    cmocka_unit_test(test_archive_heartbeat_shorter_than_interval),
	    cmocka_unit_test(test_timeout_rules),
	    cmocka_unit_test(test_health_keys),
	    cmocka_unit_test(test_interval_rules),
	    cmocka_unit_test(test_duplicate_probe_names),
	    cmocka_unit_test(test_deeply_nested_regexes_rejected),
	    cmocka_unit_test(test_many_probe_names_checked_quickly),
	    cmocka_unit_test(test_probe_name_and_type_errors),
	    cmocka_unit_test(test_labels),
	    cmocka_unit_test(test_unknown_keys),
	    cmocka_unit_test(test_unknown_type_hides_options),
	    cmocka_unit_test(test_global_value_errors),
	    cmocka_unit_test(test_rrdcached_forms),
	    cmocka_unit_test(test_retention_rules),
	    cmocka_unit_test(test_all_errors_in_one_run),
	    cmocka_unit_test(test_syntax_error),
	    cmocka_unit_test(test_listen_parsing),
	    cmocka_unit_test(test_command_line_overrides),
	    cmocka_unit_test(test_fingerprint_follows_inherited_values),
	    cmocka_unit_test(test_http_limits),
	    cmocka_unit_test(test_http_limit_errors),
	    cmocka_unit_test(test_api_token_not_mapping),
	    cmocka_unit_test(test_print_summary),
	    cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
