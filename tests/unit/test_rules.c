/*
 * Rule files: a Prometheus-format file loading unchanged, threshold rules and SLOs read
 * into their structs, rule keys, history, globs, and the exact text and position of every
 * validation error. Also the config keys that name the rule files.
 */
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

#include "collector/config.h"
#include "collector/rules.h"

#define MINUTE_MS (60 * 1000LL)
#define HOUR_MS   (60 * MINUTE_MS)

static struct rule_set *load_ok(const char *text)
{
	char *errors = NULL;
	struct rule_set *set = rules_load_string("r.yml", text, MINUTE_MS, &errors);

	if (errors != NULL)
		print_error("unexpected errors:\n%s\n", errors);
	assert_null(errors);
	assert_non_null(set);
	return set;
}

/* Loads `text` as "r.yml" and returns its errors (caller frees); the load must fail. */
static char *load_errors(const char *text)
{
	char *errors = NULL;
	struct rule_set *set = rules_load_string("r.yml", text, MINUTE_MS, &errors);

	assert_null(set);
	assert_non_null(errors);
	return errors;
}

static void expect_errors(const char *text, const char *expected)
{
	char *errors = load_errors(text);

	if (strcmp(errors, expected) != 0)
		print_error("input:\n%s\n", text);
	assert_string_equal(errors, expected);
	free(errors);
}

static const struct rule *find_rule(const struct rule_set *set, const char *key)
{
	for (size_t i = 0; i < set->group_count; i++)
		for (size_t j = 0; j < set->groups[i].rule_count; j++)
			if (strcmp(set->groups[i].rules[j].key, key) == 0)
				return &set->groups[i].rules[j];
	fail_msg("no rule with key %s", key);
	return NULL;
}

static const char prometheus_file[] =
    "groups:\n"
    "  - name: node-exporter\n"
    "    rules:\n"
    "      - alert: HostOutOfMemory\n"
    "        expr: node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100 < 10\n"
    "        for: 2m\n"
    "        labels:\n"
    "          severity: warning\n"
    "        annotations:\n"
    "          summary: Host out of memory (instance {{ $labels.instance }})\n"
    "          description: \"Node memory is filling up (< 10% left)\\n  VALUE = {{ $value "
    "}}\"\n"
    "      - alert: HostHighCpuLoad\n"
    "        expr: |\n"
    "          sum by (instance) (avg by (mode, instance)\n"
    "            (rate(node_cpu_seconds_total{mode!=\"idle\"}[2m]))) > 0.8\n"
    "        for: 10m\n"
    "        keep_firing_for: 5m\n"
    "        labels:\n"
    "          severity: warning\n"
    "        annotations:\n"
    "          summary: \"Host high CPU load (instance {{ $labels.instance }})\"\n"
    "          description: \"CPU load is > 80%\\n  VALUE = {{ $value | humanize }}\"\n"
    "      - alert: HostOutOfDiskSpace\n"
    "        expr: (node_filesystem_avail_bytes * 100) / node_filesystem_size_bytes < 10 and "
    "on (instance, device, mountpoint) node_filesystem_readonly == 0\n"
    "        for: 2m\n"
    "        labels: {severity: critical}\n"
    "        annotations:\n"
    "          summary: 'Host out of disk space (instance {{ $labels.instance }})'\n"
    "          description: \"{{ $labels.mountpoint }} has {{ $value | humanize }}% left\"\n"
    "  - name: node-recording\n"
    "    interval: 30s\n"
    "    limit: 100\n"
    "    rules:\n"
    "      - record: instance:node_cpu_utilisation:rate5m\n"
    "        expr: 1 - avg without (cpu) (sum without (mode) "
    "(rate(node_cpu_seconds_total{job=\"node\", mode=~\"idle|iowait|steal\"}[5m])))\n"
    "      - record: instance:node_load1_per_cpu:ratio\n"
    "        expr: node_load1{job=\"node\"} / on (instance) count without (cpu, mode) "
    "(node_cpu_seconds_total{job=\"node\", mode=\"idle\"})\n"
    "        labels:\n"
    "          team: infra\n";

static void test_prometheus_file_loads(void **state)
{
	struct rule_set *set = load_ok(prometheus_file);
	const struct rule_group *g;
	const struct rule *r;

	(void)state;
	assert_int_equal(set->group_count, 2);
	assert_int_equal(rules_count(set), 5);
	assert_int_equal(set->slo_count, 0);
	assert_int_equal(set->file_count, 1);
	assert_string_equal(set->files[0], "r.yml");

	g = &set->groups[0];
	assert_string_equal(g->name, "node-exporter");
	assert_string_equal(g->file, "r.yml");
	assert_int_equal(g->interval_ms, MINUTE_MS); /* the caller's default */
	assert_int_equal(g->limit, 0);
	assert_int_equal(g->rule_count, 3);

	r = &g->rules[0];
	assert_int_equal(r->kind, RULE_ALERT);
	assert_string_equal(r->name, "HostOutOfMemory");
	assert_string_equal(r->key, "node-exporter/HostOutOfMemory");
	assert_string_equal(r->location, "r.yml:4:9");
	assert_string_equal(
	    r->expr_text, "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100 < 10");
	assert_non_null(r->expr);
	assert_false(r->params.threshold);
	assert_int_equal(r->params.for_ms, 2 * MINUTE_MS);
	assert_int_equal(r->params.keep_firing_for_ms, 0);
	assert_true(r->params.flap_low == 5); /* flap detection on by default, as in Nagios */
	assert_true(r->params.flap_high == 20);
	assert_int_equal(r->label_count, 1);
	assert_string_equal(r->labels[0].name, "severity");
	assert_string_equal(r->labels[0].text, "warning");
	assert_non_null(r->labels[0].tmpl);
	assert_int_equal(r->annotation_count, 2);
	assert_string_equal(r->annotations[0].name, "description"); /* sorted by name */
	assert_string_equal(r->annotations[0].text,
			    "Node memory is filling up (< 10% left)\n  VALUE = {{ $value }}");
	assert_string_equal(r->annotations[1].name, "summary");
	assert_string_equal(r->annotations[1].text,
			    "Host out of memory (instance {{ $labels.instance }})");
	assert_non_null(r->annotations[1].tmpl);
	assert_false(template_is_constant(r->annotations[1].tmpl));

	r = &g->rules[1];
	assert_string_equal(r->key, "node-exporter/HostHighCpuLoad");
	assert_string_equal(r->expr_text,
			    "sum by (instance) (avg by (mode, instance)\n"
			    "  (rate(node_cpu_seconds_total{mode!=\"idle\"}[2m]))) > 0.8\n");
	assert_int_equal(r->params.for_ms, 10 * MINUTE_MS);
	assert_int_equal(r->params.keep_firing_for_ms, 5 * MINUTE_MS);
	assert_int_equal(expr_result_type(r->expr), EXPR_TYPE_VECTOR);

	r = &g->rules[2];
	assert_string_equal(r->labels[0].text, "critical");

	g = &set->groups[1];
	assert_string_equal(g->name, "node-recording");
	assert_int_equal(g->interval_ms, 30000);
	assert_int_equal(g->limit, 100);
	r = &g->rules[0];
	assert_int_equal(r->kind, RULE_RECORD);
	assert_string_equal(r->name, "instance:node_cpu_utilisation:rate5m");
	assert_string_equal(r->key, "node-recording/instance:node_cpu_utilisation:rate5m");
	assert_int_equal(r->label_count, 0);
	assert_int_equal(r->annotation_count, 0);
	r = &g->rules[1];
	assert_int_equal(r->label_count, 1);
	assert_string_equal(r->labels[0].name, "team");
	assert_string_equal(r->labels[0].text, "infra");
	assert_true(template_is_constant(r->labels[0].tmpl));

	/* rate(...[5m]) and the instant selectors' lookback both read 5 minutes back. */
	assert_int_equal(set->history_ms, 5 * MINUTE_MS);
	rules_free(set);
}

static void test_empty_file_is_valid(void **state)
{
	struct rule_set *set = load_ok("");

	(void)state;
	assert_int_equal(set->group_count, 0);
	assert_int_equal(set->slo_count, 0);
	assert_int_equal(rules_count(set), 0);
	assert_int_equal(set->history_ms, 0);
	rules_free(set);

	set = load_ok("groups: []\n");
	assert_int_equal(set->group_count, 0);
	rules_free(set);
}

static void test_hash_follows_text_and_interval(void **state)
{
	char *errors = NULL;
	struct rule_set *a = load_ok("groups: [{name: g, rules: [{record: x, expr: up}]}]\n");
	struct rule_set *b = load_ok("groups: [{name: g, rules: [{record: x, expr: up}]}]\n");
	struct rule_set *c = load_ok("groups: [{name: g, rules: [{record: y, expr: up}]}]\n");
	struct rule_set *d = rules_load_string(
	    "r.yml", "groups: [{name: g, rules: [{record: x, expr: up}]}]\n", 30000, &errors);

	(void)state;
	assert_non_null(d);
	assert_true(a->hash == b->hash);
	assert_true(a->hash != c->hash);
	assert_true(a->hash != d->hash);
	assert_int_equal(d->groups[0].interval_ms, 30000);
	rules_free(a);
	rules_free(b);
	rules_free(c);
	rules_free(d);
}

static void test_repeated_names_get_numbered_keys(void **state)
{
	struct rule_set *set = load_ok("groups:\n"
				       "  - name: g\n"
				       "    rules:\n"
				       "      - {alert: Down, expr: up == 0}\n"
				       "      - {record: job:up:sum, expr: sum by (job) (up)}\n"
				       "      - {alert: Down, expr: up == 0, for: 5m}\n"
				       "      - {alert: Down, expr: up == 0, for: 10m}\n"
				       "  - name: h\n"
				       "    rules:\n"
				       "      - {alert: Down, expr: up == 0}\n");

	(void)state;
	assert_string_equal(set->groups[0].rules[0].key, "g/Down");
	assert_string_equal(set->groups[0].rules[1].key, "g/job:up:sum");
	assert_string_equal(set->groups[0].rules[2].key, "g/Down#2");
	assert_string_equal(set->groups[0].rules[3].key, "g/Down#3");
	assert_int_equal(set->groups[0].rules[3].params.for_ms, 10 * MINUTE_MS);
	assert_string_equal(set->groups[1].rules[0].key, "h/Down");
	rules_free(set);
}

static void test_colliding_keys_rejected(void **state)
{
	(void)state;
	/* "a/b" + "c" and "a" + "b/c" would share alert state. */
	expect_errors("groups:\n"
		      "  - name: a/b\n"
		      "    rules: [{alert: c, expr: up == 0}]\n"
		      "  - name: a\n"
		      "    rules: [{alert: b/c, expr: up == 0}]\n",
		      "r.yml:5:13: the rule key \"a/b/c\" is also the key of the rule at "
		      "r.yml:3:13; rename the group or the rule, because the key identifies the "
		      "rule's state across reloads");
}

static void test_threshold_above(void **state)
{
	struct rule_set *set = load_ok("groups:\n"
				       "  - name: host\n"
				       "    rules:\n"
				       "      - alert: CPUBusy\n"
				       "        threshold:\n"
				       "          expr: 100 * host_cpu_busy_ratio{cpu=\"all\"}\n"
				       "          direction: above\n"
				       "          warn: 80\n"
				       "          crit: 90\n"
				       "          clear_warn: 75\n"
				       "          crit_for: 1m\n"
				       "          clear_for: 30s\n"
				       "        for: 5m\n"
				       "        no_data: alert\n"
				       "        flapping: {low: 10, high: 30}\n"
				       "        labels: {team: ops}\n"
				       "        annotations: {summary: \"{{ $value }}% busy\"}\n");
	const struct rule *r = find_rule(set, "host/CPUBusy");
	const struct alert_params *p = &r->params;

	(void)state;
	assert_int_equal(r->kind, RULE_THRESHOLD);
	assert_string_equal(r->expr_text, "100 * host_cpu_busy_ratio{cpu=\"all\"}");
	assert_non_null(r->expr);
	assert_true(p->threshold);
	assert_true(p->direction_above);
	assert_true(p->has_warn);
	assert_true(p->has_crit);
	assert_true(p->warn == 80);
	assert_true(p->crit == 90);
	assert_true(p->clear_warn == 75);
	assert_true(p->clear_crit == 90); /* default: crit */
	assert_int_equal(p->for_ms, 5 * MINUTE_MS);
	assert_int_equal(p->warn_for_ms, 5 * MINUTE_MS); /* default: the rule's for */
	assert_int_equal(p->crit_for_ms, MINUTE_MS);
	assert_int_equal(p->clear_for_ms, 30000);
	assert_int_equal(p->no_data, ALERT_NO_DATA_ALERT);
	assert_true(p->flap_low == 10);
	assert_true(p->flap_high == 30);
	assert_int_equal(r->label_count, 1);
	assert_int_equal(r->annotation_count, 1);
	rules_free(set);
}

static void test_threshold_below_defaults(void **state)
{
	struct rule_set *set = load_ok("groups:\n"
				       "  - name: fs\n"
				       "    rules:\n"
				       "      - alert: SpaceLow\n"
				       "        threshold:\n"
				       "          expr: node_filesystem_avail_bytes\n"
				       "          direction: below\n"
				       "          crit: 1e9\n"
				       "          clear_crit: 2e9\n"
				       "        flapping: {}\n");
	const struct alert_params *p = &find_rule(set, "fs/SpaceLow")->params;

	(void)state;
	assert_false(p->direction_above);
	assert_false(p->has_warn);
	assert_true(p->has_crit);
	assert_true(p->crit == 1e9);
	assert_true(p->clear_crit == 2e9);
	assert_int_equal(p->for_ms, 0);
	assert_int_equal(p->warn_for_ms, 0);
	assert_int_equal(p->crit_for_ms, 0);
	assert_int_equal(p->clear_for_ms, 0);
	assert_int_equal(p->no_data, ALERT_NO_DATA_KEEP);
	assert_true(p->flap_low == 5); /* an empty `flapping` keeps the defaults */
	assert_true(p->flap_high == 20);
	rules_free(set);
}

static void test_threshold_direction_defaults_to_above(void **state)
{
	struct rule_set *set = load_ok("groups:\n"
				       "  - name: g\n"
				       "    rules:\n"
				       "      - alert: Load\n"
				       "        threshold: {expr: node_load1, warn: 4}\n");
	const struct alert_params *p = &find_rule(set, "g/Load")->params;

	(void)state;
	assert_true(p->threshold);
	assert_true(p->direction_above);
	assert_true(p->has_warn);
	assert_false(p->has_crit);
	assert_true(p->warn == 4);
	assert_true(p->clear_warn == 4);
	rules_free(set);
}

static void test_flapping_high_zero_turns_off(void **state)
{
	struct rule_set *set = load_ok("groups:\n"
				       "  - name: g\n"
				       "    rules:\n"
				       "      - alert: A\n"
				       "        expr: up == 0\n"
				       "        flapping: {low: 50, high: 0}\n");
	const struct alert_params *p = &find_rule(set, "g/A")->params;

	(void)state;
	assert_true(p->flap_high == 0);
	assert_true(p->flap_low == 0);
	rules_free(set);
}

static void test_slo_forms(void **state)
{
	struct rule_set *set =
	    load_ok("slos:\n"
		    "  - name: web-availability\n"
		    "    objective: 99.9\n"
		    "    probe: web\n"
		    "  - name: web-latency\n"
		    "    objective: 99\n"
		    "    window: 7d\n"
		    "    latency: {probe: web, threshold: 250ms}\n"
		    "    alerts: [{severity: page, long: 1h, short: 5m, burn_rate: 14.4}]\n"
		    "    min_events: 10\n"
		    "    exclude:\n"
		    "      - {start: 2024-05-01T02:00:00Z, end: 2024-05-01T05:00:00+02:00}\n"
		    "      - {start: \"2024-05-02 02:00:00.5z\", end: 2024-05-02T03:00:00Z}\n"
		    "    labels: {team: web, env: prod}\n"
		    "  - name: api-good\n"
		    "    objective: 99.5\n"
		    "    period: 28d\n"
		    "    good: sum(http_requests_total{code!~\"5..\"})\n"
		    "    total: sum(http_requests_total)\n"
		    "    alerts: []\n"
		    "  - name: api-errors\n"
		    "    objective: 99.5\n"
		    "    errors: sum(http_requests_total{code=~\"5..\"})\n"
		    "    total: sum(http_requests_total)\n");
	const struct slo_config *c;

	(void)state;
	assert_int_equal(set->slo_count, 4);
	assert_int_equal(set->group_count, 0);

	c = &set->slos[0];
	assert_string_equal(c->name, "web-availability");
	assert_string_equal(c->location, "r.yml:2:5");
	assert_true(c->objective > 0.99899 && c->objective < 0.99901);
	assert_int_equal(c->period_ms, 30 * 24 * HOUR_MS); /* default */
	assert_int_equal(c->kind, SLO_SLI_AVAILABILITY);
	assert_string_equal(c->probe, "web");
	assert_int_equal(c->alert_count, 4); /* the defaults */
	assert_string_equal(c->alerts[0].severity, "page");
	assert_int_equal(c->alerts[0].long_ms, HOUR_MS);
	assert_int_equal(c->alerts[0].short_ms, 5 * MINUTE_MS);
	assert_true(c->min_events == SLO_DEFAULT_MIN_EVENTS);
	assert_int_equal(c->exclusion_count, 0);

	c = &set->slos[1];
	assert_int_equal(c->kind, SLO_SLI_LATENCY);
	assert_string_equal(c->probe, "web");
	assert_true(c->latency_threshold_s == 0.25);
	assert_int_equal(c->period_ms, 7 * 24 * HOUR_MS);
	assert_int_equal(c->alert_count, 1);
	assert_string_equal(c->alerts[0].severity, "page");
	assert_int_equal(c->alerts[0].long_ms, HOUR_MS);
	assert_int_equal(c->alerts[0].short_ms, 5 * MINUTE_MS);
	assert_true(c->alerts[0].factor == 14.4);
	assert_true(c->min_events == 10);
	assert_int_equal(c->exclusion_count, 2);
	assert_int_equal(c->exclusions[0].start_ms, 1714528800000LL);
	assert_int_equal(c->exclusions[0].end_ms, 1714532400000LL);
	assert_int_equal(c->exclusions[1].start_ms, 1714615200500LL);
	assert_int_equal(c->exclusions[1].end_ms, 1714618800000LL);
	assert_int_equal(c->label_count, 2);
	assert_string_equal(c->labels[0].name, "env");
	assert_string_equal(c->labels[0].value, "prod");
	assert_string_equal(c->labels[1].name, "team");

	c = &set->slos[2];
	assert_int_equal(c->kind, SLO_SLI_GOOD_TOTAL);
	assert_non_null(c->good);
	assert_null(c->errors);
	assert_non_null(c->total);
	assert_int_equal(c->period_ms, 28 * 24 * HOUR_MS);
	assert_int_equal(c->alert_count, 0);

	c = &set->slos[3];
	assert_int_equal(c->kind, SLO_SLI_ERRORS_TOTAL);
	assert_null(c->good);
	assert_non_null(c->errors);
	rules_free(set);
}

static void test_history_counts_rules_and_slo_expressions(void **state)
{
	struct rule_set *set = load_ok("groups:\n"
				       "  - name: g\n"
				       "    rules:\n"
				       "      - record: a:rate10m\n"
				       "        expr: rate(a_total[10m] offset 5m)\n"
				       "      - record: b\n"
				       "        expr: '1'\n");

	(void)state;
	assert_int_equal(set->history_ms, 15 * MINUTE_MS);
	rules_free(set);

	/* The SLO's 30-day period is kept in its buckets, not in sample windows. */
	set = load_ok("groups:\n"
		      "  - name: g\n"
		      "    rules: [{record: b, expr: up}]\n"
		      "slos:\n"
		      "  - name: s\n"
		      "    objective: 99\n"
		      "    period: 30d\n"
		      "    good: sum(increase(ok_total[1h]))\n"
		      "    total: sum(requests_total)\n");
	assert_int_equal(set->history_ms, HOUR_MS);
	rules_free(set);

	set = load_ok("slos: [{name: s, objective: 99, period: 30d, probe: web}]\n");
	assert_int_equal(set->history_ms, 0);
	rules_free(set);
}

/* Positions point at the first character of the expression's text, whatever the style. */
static void test_expression_error_positions(void **state)
{
	(void)state;
	expect_errors("groups:\n"
		      "  - name: g\n"
		      "    rules:\n"
		      "      - alert: Plain\n"
		      "        expr: up ==\n"
		      "      - alert: Quoted\n"
		      "        expr: \"sum(up\"\n"
		      "      - alert: Block\n"
		      "        expr: |\n"
		      "          sum(up)\n"
		      "            > on(job\n",
		      "r.yml:5:15: groups[0].rules[0].expr: unexpected end of expr at column 6 of "
		      "expr, expected an expression: a number, a string, a selector, a function, "
		      "an aggregation or \"(\"\n"
		      "r.yml:7:16: groups[0].rules[1].expr: unexpected end of expr at column 7 of "
		      "expr, expected \",\" or \")\"\n"
		      "r.yml:10:11: groups[0].rules[2].expr: unexpected end of expr at line 3, "
		      "column 1 of expr, expected \",\" or \")\"");
}

/* cfg's errors and the expression errors come out in one list, in file order. */
static void test_errors_merged_in_file_order(void **state)
{
	(void)state;
	expect_errors("groups:\n"
		      "  - name: g\n"
		      "    rules:\n"
		      "      - alert: A\n"
		      "        expr: up[5m]\n"
		      "        for: 5x\n"
		      "      - alert: B\n"
		      "        expr: sum(\n"
		      "        fro: 5m\n",
		      "r.yml:5:15: groups[0].rules[0].expr: expr is a range vector; expected an "
		      "instant vector or a scalar\n"
		      "r.yml:6:14: groups[0].rules[0].for: \"5x\" is not a duration (examples: "
		      "500ms, 10s, 5m, 1h, 1h30m, 7d)\n"
		      "r.yml:8:15: groups[0].rules[1].expr: unexpected end of expr at column 5 of "
		      "expr, expected an expression: a number, a string, a selector, a function, "
		      "an aggregation or \"(\"\n"
		      "r.yml:9:9: groups[0].rules[1].fro: unknown key (did you mean \"for\"?)");
}

/* Both lists of errors (cfg's and the expressions') are merged before the cap applies. */
static const char capped_first_lines[] =
    "r.yml:4:28: groups[0].rules[0].expr: expr is a range vector; expected an instant vector "
    "or a scalar\n"
    "r.yml:4:36: groups[0].rules[0].fro: unknown key (did you mean \"for\"?)\n"
    "r.yml:5:28: groups[0].rules[1].expr: expr is a range vector; expected an instant vector "
    "or a scalar\n";

static void test_error_count_capped(void **state)
{
	size_t size = 64 + 150 * 64;
	char *text = malloc(size);
	size_t used = 0;
	char *errors;
	size_t lines = 1;
	const char *last;

	(void)state;
	assert_non_null(text);
	used += (size_t)snprintf(text + used, size - used, "groups:\n  - name: g\n    rules:\n");
	for (int i = 0; i < 150; i++)
		used += (size_t)snprintf(text + used, size - used,
					 "      - {alert: A%d, expr: \"x[1m]\", fro: 1m}\n", i);
	errors = load_errors(text);
	for (const char *p = errors; *p != '\0'; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 101);
	last = strrchr(errors, '\n') + 1;
	assert_string_equal(last, "r.yml: and 200 more errors not shown; fix the ones above first");
	assert_true(strncmp(errors, capped_first_lines, strlen(capped_first_lines)) == 0);
	free(errors);
	free(text);
}

struct error_case {
	const char *text;
	const char *errors;
};

#define RULE_PREFIX "groups:\n  - name: g\n    rules:\n"

/* Every check of rules and groups, with the exact message and position. */
static const struct error_case rule_cases[] = {
    {"group: []\n", "r.yml:1:1: group: unknown key (did you mean \"groups\"?)"},
    {"groups: {name: g}\n", "r.yml:1:9: groups: expected a sequence, found a mapping"},
    {"groups:\n  - rules: []\n",
     "r.yml:2:5: groups[0]: missing required key \"name\" (the group's name)"},
    {"groups:\n  - name: \" g\"\n",
     "r.yml:2:11: groups[0].name: invalid group name \" g\" (accepted: printable text without "
     "control characters or leading and trailing spaces)"},
    {"groups:\n  - name: g\n  - name: g\n",
     "r.yml:3:11: groups[1].name: duplicate group name \"g\" (first at r.yml:2:11); group "
     "names must be unique across all rule files"},
    {"groups:\n  - name: g\n    interval: 0s\n",
     "r.yml:3:15: groups[0].interval: must be longer than 0; it is how often the group is "
     "evaluated"},
    {"groups:\n  - name: g\n    limit: -1\n",
     "r.yml:3:12: groups[0].limit: \"-1\" is out of range (accepted: 0 to "
     "9223372036854775807)"},
    {"groups:\n  - name: g\n    query_offset: 1m\n",
     "r.yml:3:19: groups[0].query_offset: query_offset is not supported; remove it (rules "
     "are evaluated on the latest samples)"},
    {"groups:\n  - name: g\n    labels: {team: a}\n",
     "r.yml:3:13: groups[0].labels: group labels are not supported; give the labels on "
     "each rule instead"},
    {RULE_PREFIX "      - expr: up\n",
     "r.yml:4:9: groups[0].rules[0]: missing \"alert\" or \"record\": give \"alert: NAME\" "
     "for an alerting or threshold rule, \"record: METRIC\" for a recording rule"},
    {RULE_PREFIX "      - {alert: a, record: b, expr: up}\n",
     "r.yml:4:9: groups[0].rules[0]: has both \"alert\" and \"record\"; a rule is either an "
     "alerting rule or a recording rule"},
    {RULE_PREFIX "      - alert: A\n",
     "r.yml:4:9: groups[0].rules[0]: missing required key \"expr\" (an expression)"},
    {RULE_PREFIX "      - {alert: \"\", expr: up}\n",
     "r.yml:4:17: groups[0].rules[0].alert: invalid alert name \"\" (accepted: printable "
     "text without control characters or leading and trailing spaces)"},
    {RULE_PREFIX "      - {record: job-up, expr: up}\n",
     "r.yml:4:18: groups[0].rules[0].record: invalid metric name \"job-up\" (accepted: "
     "letters, digits, \"_\" and \":\", not starting with a digit)"},
    {RULE_PREFIX "      - {record: a, expr: \"up[5m]\"}\n",
     "r.yml:4:28: groups[0].rules[0].expr: expr is a range vector; expected an instant "
     "vector or a scalar"},
    {RULE_PREFIX "      - {record: a, expr: '\"text\"'}\n",
     "r.yml:4:28: groups[0].rules[0].expr: expr is a string; expected an instant vector or "
     "a scalar"},
    {RULE_PREFIX "      - {alert: A, expr: up, for: 5x}\n",
     "r.yml:4:35: groups[0].rules[0].for: \"5x\" is not a duration (examples: 500ms, 10s, "
     "5m, 1h, 1h30m, 7d)"},
    {RULE_PREFIX "      - {alert: A, expr: up, keep_firing_for: -1m}\n",
     "r.yml:4:47: groups[0].rules[0].keep_firing_for: \"-1m\" is not a duration (examples: "
     "500ms, 10s, 5m, 1h, 1h30m, 7d)"},
    {RULE_PREFIX "      - {record: a, expr: up, for: 1m}\n",
     "r.yml:4:31: groups[0].rules[0].for: key is not used with the other settings here; "
     "remove it"},
    {RULE_PREFIX "      - {record: a, expr: up, annotations: {summary: x}}\n",
     "r.yml:4:31: groups[0].rules[0].annotations: key is not used with the other settings "
     "here; remove it"},
    {RULE_PREFIX "      - {alert: A, expr: up, no_data: keep}\n",
     "r.yml:4:30: groups[0].rules[0].no_data: key is not used with the other settings "
     "here; remove it"},
    {RULE_PREFIX "      - {alert: A, expr: up, exprr: up}\n",
     "r.yml:4:30: groups[0].rules[0].exprr: unknown key (did you mean \"expr\"?)"},
    {RULE_PREFIX "      - {alert: A, expr: up, labels: {a-b: x}}\n",
     "r.yml:4:44: groups[0].rules[0].labels.a-b: invalid label name \"a-b\" (accepted: "
     "letters, digits and \"_\", not starting with a digit)"},
    {RULE_PREFIX "      - {alert: A, expr: up, annotations: {1st: x}}\n",
     "r.yml:4:49: groups[0].rules[0].annotations.1st: invalid annotation name \"1st\" "
     "(accepted: letters, digits and \"_\", not starting with a digit)"},
    {RULE_PREFIX "      - {alert: A, expr: up, labels: {__x: y}}\n",
     "r.yml:4:44: groups[0].rules[0].labels.__x: label name \"__x\" is reserved: names "
     "starting with \"__\" are for internal use"},
    {RULE_PREFIX "      - {record: a, expr: up, labels: {__name__: y}}\n",
     "r.yml:4:50: groups[0].rules[0].labels.__name__: label name \"__name__\" is reserved: "
     "it is the metric name"},
    {RULE_PREFIX "      - {alert: A, expr: up, labels: {alertname: B}}\n",
     "r.yml:4:50: groups[0].rules[0].labels.alertname: label name \"alertname\" is "
     "reserved: it is set to the rule's alert name"},
    {RULE_PREFIX "      - {record: a, expr: up, labels: {x: \"{{ $labels.job }}\"}}\n",
     "r.yml:4:44: groups[0].rules[0].labels.x: a recording rule's labels are constant "
     "text; remove the {{ }} action, or make it an alerting rule"},
    {RULE_PREFIX "      - {alert: A, expr: up, labels: {x: }}\n",
     "r.yml:4:42: groups[0].rules[0].labels.x: has no value; expected a string"},
    {RULE_PREFIX "      - {alert: A, expr: up, flapping: {low: 20, high: 20}}\n",
     "r.yml:4:46: groups[0].rules[0].flapping.low: low (20) is not below high (20); a flap "
     "episode starts above high and ends below low"},
    {RULE_PREFIX "      - {alert: A, expr: up, flapping: {high: 120}}\n",
     "r.yml:4:47: groups[0].rules[0].flapping.high: 120 is not a percentage from 0 to 100"},
    {RULE_PREFIX "      - {alert: A, expr: up, flapping: {low: -1}}\n",
     "r.yml:4:46: groups[0].rules[0].flapping.low: -1 is not a percentage from 0 to 100"},
};

#define THRESHOLD_PREFIX RULE_PREFIX "      - alert: T\n        threshold:\n"

/* Threshold rules: the block's keys and the order of the levels. */
static const struct error_case threshold_cases[] = {
    /* Without direction, a higher value is worse. */
    {THRESHOLD_PREFIX "          expr: x\n          warn: 20\n          crit: 10\n",
     "r.yml:8:17: groups[0].rules[0].threshold.crit: crit (10) is below warn (20); with "
     "direction above, crit must be at least as far above as warn"},
    {THRESHOLD_PREFIX "          expr: x\n          direction: up\n          warn: 1\n",
     "r.yml:7:22: groups[0].rules[0].threshold.direction: \"up\" is not a direction "
     "(accepted: above, below)"},
    {THRESHOLD_PREFIX "          expr: x\n          direction: above\n",
     "r.yml:6:11: groups[0].rules[0].threshold: give warn, crit or both: the values that "
     "raise each level"},
    {THRESHOLD_PREFIX "          direction: above\n          warn: 1\n",
     "r.yml:6:11: groups[0].rules[0].threshold: missing required key \"expr\" (an "
     "expression)"},
    {THRESHOLD_PREFIX "          expr: x[5m]\n          direction: above\n          warn: 1\n",
     "r.yml:6:17: groups[0].rules[0].threshold.expr: expr is a range vector; expected an "
     "instant vector or a scalar"},
    {THRESHOLD_PREFIX "          expr: x\n          direction: above\n          warn: 90\n"
		      "          crit: 80\n",
     "r.yml:9:17: groups[0].rules[0].threshold.crit: crit (80) is below warn (90); with "
     "direction above, crit must be at least as far above as warn"},
    {THRESHOLD_PREFIX "          expr: x\n          direction: below\n          warn: 10\n"
		      "          crit: 20\n",
     "r.yml:9:17: groups[0].rules[0].threshold.crit: crit (20) is above warn (10); with "
     "direction below, crit must be at least as far below as warn"},
    {THRESHOLD_PREFIX "          expr: x\n          direction: above\n          warn: 80\n"
		      "          clear_warn: 85\n",
     "r.yml:9:23: groups[0].rules[0].threshold.clear_warn: clear_warn (85) is above warn "
     "(80); with direction above, the warning clears when the value is back past "
     "clear_warn, so it must not be above warn"},
    {THRESHOLD_PREFIX "          expr: x\n          direction: below\n          crit: 10\n"
		      "          clear_crit: 5\n",
     "r.yml:9:23: groups[0].rules[0].threshold.clear_crit: clear_crit (5) is below crit "
     "(10); with direction below, the critical level clears when the value is back past "
     "clear_crit, so it must not be below crit"},
    {THRESHOLD_PREFIX "          expr: x\n          direction: above\n          crit: 10\n"
		      "          clear_warn: 5\n",
     "r.yml:9:23: groups[0].rules[0].threshold.clear_warn: clear_warn is set without warn; "
     "give warn or remove clear_warn"},
    {THRESHOLD_PREFIX "          expr: x\n          direction: above\n          crit: 1\n"
		      "          warn_for: soon\n",
     "r.yml:9:21: groups[0].rules[0].threshold.warn_for: \"soon\" is not a duration "
     "(examples: 500ms, 10s, 5m, 1h, 1h30m, 7d)"},
    {THRESHOLD_PREFIX "          expr: x\n          direction: above\n          crit: 1\n"
		      "        expr: x\n",
     "r.yml:9:15: groups[0].rules[0].expr: a threshold rule reads its expression from "
     "threshold.expr; move it there"},
    {THRESHOLD_PREFIX "          expr: x\n          direction: above\n          crit: 1\n"
		      "        no_data: ignore\n",
     "r.yml:9:18: groups[0].rules[0].no_data: \"ignore\" is not accepted (accepted: keep, "
     "alert, resolve)"},
    {THRESHOLD_PREFIX "          expr: x\n          direction: above\n          crit: 1\n"
		      "        labels: {severity: page}\n",
     "r.yml:9:28: groups[0].rules[0].labels.severity: label name \"severity\" is reserved: "
     "a threshold rule sets it to the level (warning or critical)"},
    {THRESHOLD_PREFIX "          expr: x\n          direction: above\n          crit: 1\n"
		      "        keep_firing_for: 5m\n",
     "r.yml:9:9: groups[0].rules[0].keep_firing_for: key is not used with the other "
     "settings here; remove it"},
    {RULE_PREFIX "      - alert: T\n        threshold:\n",
     "r.yml:5:19: groups[0].rules[0].threshold: is empty; give expr, direction and warn or "
     "crit"},
};

#define SLO_PREFIX "slos:\n  - name: s\n"

static const struct error_case slo_cases[] = {
    {"slos:\n  - objective: 99\n    probe: p\n",
     "r.yml:2:5: slos[0]: missing required key \"name\" (the SLO's name)"},
    {SLO_PREFIX "    probe: p\n",
     "r.yml:2:5: slos[0]: missing required key \"objective\" (the percentage of good events, "
     "e.g. 99.9)"},
    {SLO_PREFIX "    objective: 100\n    probe: p\n",
     "r.yml:3:16: slos[0].objective: must be below 100 (found 100): a 100% objective leaves "
     "no error budget; use e.g. 99.99"},
    {SLO_PREFIX "    objective: 0\n    probe: p\n",
     "r.yml:3:16: slos[0].objective: must be above 0 (found 0); give the percentage of good "
     "events, e.g. 99.9"},
    {SLO_PREFIX "    objective: 0.999\n    probe: p\n",
     "r.yml:3:16: slos[0].objective: 0.999 looks like a ratio; objective is a percentage, "
     "e.g. 99.9 for a ratio of 0.999"},
    {SLO_PREFIX "    objective: 99\n    period: 30m\n    probe: p\n",
     "r.yml:4:13: slos[0].period: 30m is shorter than 1h; an SLO's period is the span its "
     "error budget covers, usually 28d or 30d"},
    {SLO_PREFIX "    objective: 99\n    period: 30d\n    window: 30d\n    probe: p\n",
     "r.yml:5:13: slos[0].window: window is another name for period; give only one of "
     "them"},
    {SLO_PREFIX "    objective: 99\n",
     "r.yml:2:5: slos[0]: missing the SLI: give probe: NAME, latency: {probe: NAME, "
     "threshold: DURATION}, or good or errors with total (counter expressions)"},
    {SLO_PREFIX "    objective: 99\n    probe: p\n    latency: {probe: p, threshold: 1s}\n",
     "r.yml:2:5: slos[0]: gives both probe and latency; an SLO has one SLI only: probe, "
     "latency, or good or errors with total"},
    {SLO_PREFIX "    objective: 99\n    probe: p\n    total: sum(x)\n",
     "r.yml:2:5: slos[0]: gives both probe and counter expressions; an SLO has one SLI "
     "only: probe, latency, or good or errors with total\n"
     "r.yml:5:12: slos[0].total: total needs good or errors: a counter of the events that "
     "count as good, or of those that count as errors"},
    {SLO_PREFIX "    objective: 99\n    good: sum(a)\n    errors: sum(b)\n    total: sum(c)\n",
     "r.yml:5:13: slos[0].errors: give either good or errors with total, not both: each "
     "one determines the other"},
    {SLO_PREFIX "    objective: 99\n    good: sum(a)\n",
     "r.yml:4:11: slos[0].good: good needs total: a counter of all events (missing key "
     "\"total\")"},
    {SLO_PREFIX "    objective: 99\n    good: a[5m]\n    total: sum(c)\n",
     "r.yml:4:11: slos[0].good: good is a range vector; expected an instant vector or a "
     "scalar"},
    {SLO_PREFIX "    objective: 99\n    latency: {probe: p}\n",
     "r.yml:4:14: slos[0].latency: missing required key \"threshold\" (the slowest run that "
     "counts as good, e.g. 250ms)"},
    {SLO_PREFIX "    objective: 99\n    latency: {probe: p, threshold: 0s}\n",
     "r.yml:4:36: slos[0].latency.threshold: must be longer than 0"},
    {SLO_PREFIX "    objective: 99\n    probe: p\n"
		"    alerts: [{severity: page, long: 5m, short: 1h, burn_rate: 14.4}]\n",
     "r.yml:5:48: slos[0].alerts[0].short: short (1h) must be longer than 0 and shorter "
     "than long (5m)"},
    {SLO_PREFIX "    objective: 99\n    probe: p\n"
		"    alerts: [{severity: page, long: 1h, short: 5m, burn_rate: 0}]\n",
     "r.yml:5:63: slos[0].alerts[0].burn_rate: 0 is not accepted; a burn rate is above 0"},
    {SLO_PREFIX "    objective: 99\n    probe: p\n    alerts: [{severity: page, long: 1h}]\n",
     "r.yml:5:14: slos[0].alerts[0]: give long, short and burn_rate (e.g. {severity: page, "
     "long: 1h, short: 5m, burn_rate: 14.4})"},
    {SLO_PREFIX "    objective: 99\n    probe: p\n    min_events: -1\n",
     "r.yml:5:17: slos[0].min_events: -1 is not accepted; give 0 or more events (default "
     "10)"},
    {SLO_PREFIX "    objective: 99\n    probe: p\n"
		"    exclude: [{start: 2024-05-01T04:00:00Z, end: 2024-05-01T02:00:00Z}]\n",
     "r.yml:5:50: slos[0].exclude[0].end: end is not after start; give the end of the "
     "maintenance window"},
    {SLO_PREFIX "    objective: 99\n    probe: p\n"
		"    exclude: [{start: 2024-02-30T04:00:00Z, end: 2024-05-01T02:00:00Z}]\n",
     "r.yml:5:23: slos[0].exclude[0].start: \"2024-02-30T04:00:00Z\" is not an RFC 3339 "
     "date and time (examples: 2024-05-01T02:00:00Z, 2024-05-01T04:00:00+02:00)"},
    {SLO_PREFIX "    objective: 99\n    probe: p\n    exclude: [{start: 2024-05-01T04:00:00Z}]\n",
     "r.yml:5:15: slos[0].exclude[0]: missing \"end\"; an exclusion needs start and end"},
    {SLO_PREFIX "    objective: 99\n    probe: p\n    labels: {__slo: x}\n",
     "r.yml:5:21: slos[0].labels.__slo: label name \"__slo\" is reserved: names starting "
     "with \"__\" are for internal use"},
    {SLO_PREFIX "    objective: 99\n    probe: p\n  - name: s\n    objective: 99\n"
		"    probe: p\n",
     "r.yml:5:11: slos[1].name: duplicate SLO name \"s\" (first at r.yml:2:5); SLO names "
     "must be unique across all rule files"},
    {SLO_PREFIX "    objective: 99\n    probe: p\n    budget: 1\n",
     "r.yml:5:5: slos[0].budget: unknown key (known keys here: name, objective, period, "
     "window, probe, latency, good, errors, total, alerts, min_events, exclude, labels)"},
};

static void run_cases(const struct error_case *cases, size_t count)
{
	for (size_t i = 0; i < count; i++)
		expect_errors(cases[i].text, cases[i].errors);
}

static void test_rule_errors(void **state)
{
	(void)state;
	run_cases(rule_cases, sizeof rule_cases / sizeof rule_cases[0]);
}

static void test_threshold_errors(void **state)
{
	(void)state;
	run_cases(threshold_cases, sizeof threshold_cases / sizeof threshold_cases[0]);
}

static void test_slo_errors(void **state)
{
	(void)state;
	run_cases(slo_cases, sizeof slo_cases / sizeof slo_cases[0]);
}

/* The template's own message follows the position of its text and the key path. */
static void test_template_error_position(void **state)
{
	char *errors =
	    load_errors(RULE_PREFIX "      - alert: A\n"
				    "        expr: up\n"
				    "        annotations:\n"
				    "          summary: \"{{ if $value }}x{{ end }}\"\n");
	const char *prefix = "r.yml:7:21: groups[0].rules[0].annotations.summary: ";

	(void)state;
	if (strncmp(errors, prefix, strlen(prefix)) != 0)
		fail_msg("expected the prefix \"%s\" in:\n%s", prefix, errors);
	assert_null(strchr(errors, '\n'));
	free(errors);
}

/* ---- files and globs ---- */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static void remove_files(const char *dir, const char *const *names, size_t count)
{
	char path[512];

	for (size_t i = 0; i < count; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void test_globs_sorted_and_deduplicated(void **state)
{
	char dir[] = "/tmp/test_rules_XXXXXX";
	const char *names[] = {"20-b.yml", "10-a.yml", "notes.txt"};
	char *patterns[] = {"*.yml", "10-a.yml", "none-*.yml"};
	char expected[2][600];
	char *errors = NULL;
	struct rule_set *set;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_file(dir, "20-b.yml", "groups: [{name: b, rules: [{record: b, expr: up}]}]\n");
	write_file(dir, "10-a.yml",
		   "groups: [{name: a, rules: [{alert: A, expr: up == 0}]}]\n"
		   "slos: [{name: s, objective: 99, probe: p}]\n");
	write_file(dir, "notes.txt", "not YAML: [\n");

	set = rules_load(patterns, 3, dir, MINUTE_MS, &errors);
	assert_null(errors);
	assert_non_null(set);
	snprintf(expected[0], sizeof expected[0], "%s/10-a.yml", dir);
	snprintf(expected[1], sizeof expected[1], "%s/20-b.yml", dir);
	assert_int_equal(set->file_count, 2);
	assert_string_equal(set->files[0], expected[0]);
	assert_string_equal(set->files[1], expected[1]);
	assert_int_equal(set->group_count, 2);
	assert_string_equal(set->groups[0].name, "a"); /* files in name order */
	assert_string_equal(set->groups[0].file, expected[0]);
	assert_string_equal(set->groups[1].name, "b");
	assert_int_equal(set->slo_count, 1);
	rules_free(set);

	/* An absolute pattern ignores base_dir. */
	patterns[0] = expected[1];
	set = rules_load(patterns, 1, "/nonexistent", MINUTE_MS, &errors);
	assert_null(errors);
	assert_non_null(set);
	assert_int_equal(set->file_count, 1);
	rules_free(set);

	remove_files(dir, names, 3);
}

static void test_missing_literal_file_is_error(void **state)
{
	char dir[] = "/tmp/test_rules_XXXXXX";
	char *patterns[] = {"missing.yml", "none-*.yml"};
	char expected[600];
	char *errors = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_null(rules_load(patterns, 2, dir, MINUTE_MS, &errors));
	snprintf(expected, sizeof expected,
		 "%s/missing.yml: rule file not found; fix the path, or remove it from the list",
		 dir);
	assert_string_equal(errors, expected);
	free(errors);

	/* A wildcard that matches nothing, or no pattern at all, is an empty set. */
	{
		struct rule_set *set = rules_load(patterns + 1, 1, dir, MINUTE_MS, &errors);

		assert_null(errors);
		assert_non_null(set);
		assert_int_equal(set->file_count, 0);
		rules_free(set);
		set = rules_load(NULL, 0, NULL, MINUTE_MS, &errors);
		assert_non_null(set);
		rules_free(set);
	}
	rmdir(dir);
}

static void test_errors_across_files(void **state)
{
	char dir[] = "/tmp/test_rules_XXXXXX";
	const char *names[] = {"a.yml", "b.yml"};
	char *patterns[] = {"*.yml"};
	char expected[2000];
	char *errors = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_file(dir, "a.yml",
		   "groups:\n  - name: g\n    rules: [{record: a, expr: up}]\n"
		   "slos: [{name: s, objective: 99, probe: p}]\n");
	write_file(dir, "b.yml",
		   "groups:\n  - name: g\n    rules: [{record: b, expr: \"up[\"}]\n"
		   "slos: [{name: s, objective: 99, probe: p}]\n");
	assert_null(rules_load(patterns, 1, dir, MINUTE_MS, &errors));
	snprintf(expected, sizeof expected,
		 "%s/b.yml:2:11: groups[0].name: duplicate group name \"g\" (first at "
		 "%s/a.yml:2:11); group names must be unique across all rule files\n"
		 "%s/b.yml:3:32: groups[0].rules[0].expr: unexpected end of expr at column 4 "
		 "of expr, expected a duration like 5m or 1h30m (units ms, s, m, h, d, w, y)\n"
		 "%s/b.yml:4:15: slos[0].name: duplicate SLO name \"s\" (first at "
		 "%s/a.yml:4:8); SLO names must be unique across all rule files",
		 dir, dir, dir, dir, dir);
	assert_string_equal(errors, expected);
	free(errors);
	remove_files(dir, names, 2);
}

static void test_unreadable_yaml_reported(void **state)
{
	(void)state;
	expect_errors("groups: [\n",
		      "r.yml:2:1: invalid YAML: did not find expected node content (while "
		      "parsing a flow node that starts at line 2, column 1)");
}

/* ---- the config keys ---- */

static struct config *config_ok(const char *name, const char *text)
{
	char *errors = NULL;
	struct config *cfg = config_load_string(name, text, &errors);

	if (errors != NULL)
		print_error("unexpected errors:\n%s\n", errors);
	assert_null(errors);
	assert_non_null(cfg);
	return cfg;
}

static void test_config_rule_settings(void **state)
{
	struct config *cfg = config_ok("t.yml", "data_dir: /srv/tocsin\n");
	char *errors = NULL;

	(void)state;
	assert_int_equal(cfg->rule_file_count, 0);
	assert_int_equal(cfg->evaluation_interval_ms, 60000);
	assert_string_equal(cfg->state_dir, "/srv/tocsin/state");
	assert_false(cfg->state_dir_set);
	config_set_data_dir(cfg, "/tmp/x");
	assert_string_equal(cfg->state_dir, "/tmp/x/state");
	config_free(cfg);

	cfg = config_ok("/etc/tocsin/tocsin.yml", "rule_files: [rules/*.yml, /opt/rules.yml]\n"
						  "evaluation_interval: 30s\n"
						  "state_dir: /var/lib/tocsin-state\n");
	assert_int_equal(cfg->rule_file_count, 2);
	assert_string_equal(cfg->rule_files[0], "/etc/tocsin/rules/*.yml");
	assert_string_equal(cfg->rule_files[1], "/opt/rules.yml");
	assert_null(cfg->rule_files[2]);
	assert_int_equal(cfg->evaluation_interval_ms, 30000);
	assert_string_equal(cfg->state_dir, "/var/lib/tocsin-state");
	assert_true(cfg->state_dir_set);
	config_set_data_dir(cfg, "/tmp/x");
	assert_string_equal(cfg->state_dir, "/var/lib/tocsin-state");
	config_free(cfg);

	/* A config named without a directory leaves relative patterns as they are. */
	cfg = config_ok("tocsin.yml", "rule_files: [rules.yml]\n");
	assert_string_equal(cfg->rule_files[0], "rules.yml");
	config_free(cfg);

	assert_null(config_load_string("t.yml",
				       "rule_files: rules.yml\n"
				       "evaluation_interval: 0s\n"
				       "state_dir: \"\"\n",
				       &errors));
	assert_string_equal(
	    errors, "t.yml:1:13: rule_files: expected a sequence of strings, found a string\n"
		    "t.yml:2:22: evaluation_interval: must be longer than 0; it is how often rule "
		    "groups are evaluated\n"
		    "t.yml:3:12: state_dir: is empty; expected a directory path");
	free(errors);
}

static void test_config_summary_lists_rule_settings(void **state)
{
	struct config *cfg = config_ok("/etc/tocsin/tocsin.yml", "data_dir: /srv/tocsin\n"
								 "rule_files: [a.yml, b/*.yml]\n");
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	(void)state;
	assert_non_null(out);
	config_print_summary(cfg, out);
	fclose(out);
	assert_non_null(strstr(text, "rule_files: /etc/tocsin/a.yml, /etc/tocsin/b/*.yml\n"
				     "evaluation_interval: 1m\n"
				     "state_dir: /srv/tocsin/state\n"));
	free(text);
	config_free(cfg);
}

/* The shipped example must load; TOCSIN_SRCDIR is set by `make check`. */
static void test_example_rules_load(void **state)
{
	const char *srcdir = getenv("TOCSIN_SRCDIR");
	char path[1024];
	char *patterns[] = {path};
	char *errors = NULL;
	struct rule_set *set;

	(void)state;
	snprintf(path, sizeof path, "%s/etc/rules/example.yml", srcdir != NULL ? srcdir : "../..");
	set = rules_load(patterns, 1, NULL, MINUTE_MS, &errors);
	if (errors != NULL)
		print_error("%s\n", errors);
	assert_null(errors);
	assert_non_null(set);
	assert_int_equal(set->group_count, 2);
	assert_int_equal(rules_count(set), 5);
	assert_int_equal(set->slo_count, 1);
	assert_int_equal(find_rule(set, "host/FilesystemSpaceLow")->kind, RULE_THRESHOLD);
	assert_false(find_rule(set, "host/FilesystemSpaceLow")->params.direction_above);
	rules_free(set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prometheus_file_loads),
	    cmocka_unit_test(test_empty_file_is_valid),
	    cmocka_unit_test(test_hash_follows_text_and_interval),
	    cmocka_unit_test(test_repeated_names_get_numbered_keys),
	    cmocka_unit_test(test_colliding_keys_rejected),
	    cmocka_unit_test(test_threshold_above),
	    cmocka_unit_test(test_threshold_below_defaults),
	    cmocka_unit_test(test_threshold_direction_defaults_to_above),
	    cmocka_unit_test(test_flapping_high_zero_turns_off),
	    cmocka_unit_test(test_slo_forms),
	    cmocka_unit_test(test_history_counts_rules_and_slo_expressions),
	    cmocka_unit_test(test_expression_error_positions),
	    cmocka_unit_test(test_errors_merged_in_file_order),
	    cmocka_unit_test(test_error_count_capped),
	    cmocka_unit_test(test_rule_errors),
	    cmocka_unit_test(test_threshold_errors),
	    cmocka_unit_test(test_slo_errors),
	    cmocka_unit_test(test_template_error_position),
	    cmocka_unit_test(test_globs_sorted_and_deduplicated),
	    cmocka_unit_test(test_missing_literal_file_is_error),
	    cmocka_unit_test(test_errors_across_files),
	    cmocka_unit_test(test_unreadable_yaml_reported),
	    cmocka_unit_test(test_config_rule_settings),
	    cmocka_unit_test(test_config_summary_lists_rule_settings),
	    cmocka_unit_test(test_example_rules_load),
	};

	return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}
