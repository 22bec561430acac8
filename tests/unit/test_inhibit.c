/*
 * Unit tests of inhibit rules: source and target matchers, and `equal` labels, where a
 * label missing on both sides counts as equal. Also alerts that match both sides of a
 * rule, the alert that would inhibit itself, Alertmanager's older mapping forms, and
 * which source is reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alerter/alerting_config.h"
#include "alerter/inhibit.h"
#include "collector/cfg.h"

static const char rules_yaml[] = "alerting:\n"
				 "  receivers: [{name: ops}]\n"
				 "  route: {receiver: ops}\n"
				 "  inhibit_rules:\n"
				 "    - source_matchers: ['severity=\"critical\"']\n"
				 "      target_matchers: ['severity=\"warning\"']\n"
				 "      equal: [alertname, cluster]\n"
				 "    - source_matchers: [alertname=NodeDown]\n"
				 "      target_matchers: ['alertname=~\".+\"']\n"
				 "      equal: [instance]\n"
				 "    - source_match: {kind: maintenance}\n"
				 "      target_match_re: {service: 'db.*'}\n";

/* The test's alerts: labels as "a=1,b=2" and a fingerprint. */
struct test_alert {
	const char *spec;
	uint64_t fingerprint;
	struct label labels[8];
	char text[256];
	size_t count;
};

static void alert_init(struct test_alert *a)
{
	char *save = NULL;

	a->count = 0;
	snprintf(a->text, sizeof(a->text), "%s", a->spec);
	for (char *item = strtok_r(a->text, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');

		assert_non_null(eq);
		*eq = '\0';
		a->labels[a->count].name = item;
		a->labels[a->count].value = eq + 1;
		a->count++;
	}
}

/* Iterates over a NULL-terminated list of alerts, counting the calls. */
struct test_iter {
	struct test_alert **alerts;
	size_t next;
	size_t calls;
};

static bool iter_next(void *ctx, struct inhibit_alert *out)
{
	struct test_iter *it = ctx;
	struct test_alert *a = it->alerts[it->next];

	it->calls++;
	if (a == NULL)
		return false;
	it->next++;
	out->labels = a->labels;
	out->label_count = a->count;
	out->fingerprint = a->fingerprint;
	return true;
}

static struct alerting_config *load(const char *yaml)
{
	struct cfg *c = cfg_parse_string("t.yml", yaml, strlen(yaml));
	struct alerting_config *ac;
	struct cfg_map root;

	assert_int_equal(cfg_root(c, &root), 0);
	ac = alerting_config_read(&root);
	cfg_map_finish(&root);
	if (cfg_error_count(c) > 0)
		print_error("unexpected errors:\n%s\n", cfg_errors(c));
	assert_int_equal(cfg_error_count(c), 0);
	cfg_free(c);
	return ac;
}

static void inhibit_table(void **state)
{
	struct test_alert crit_c1 = {.spec = "alertname=Disk,cluster=c1,severity=critical",
				     .fingerprint = 1};
	struct test_alert crit_c2 = {.spec = "alertname=Disk,cluster=c2,severity=critical",
				     .fingerprint = 2};
	struct test_alert crit_none = {.spec = "alertname=Disk,severity=critical",
				       .fingerprint = 3};
	struct test_alert crit_empty = {.spec = "alertname=Disk,cluster=,severity=critical",
					.fingerprint = 4};
	struct test_alert crit_other = {.spec = "alertname=Cpu,cluster=c1,severity=critical",
					.fingerprint = 5};
	struct test_alert warn_c1 = {.spec = "alertname=Disk,cluster=c1,severity=warning",
				     .fingerprint = 6};
	struct test_alert warn_none = {.spec = "alertname=Disk,severity=warning", .fingerprint = 7};
	struct test_alert down_h1 = {.spec = "alertname=NodeDown,instance=h1", .fingerprint = 10};
	struct test_alert down_h1_again = {.spec = "alertname=NodeDown,instance=h1,job=other",
					   .fingerprint = 11};
	struct test_alert down_h2 = {.spec = "alertname=NodeDown,instance=h2", .fingerprint = 12};
	struct test_alert disk_h1 = {.spec = "alertname=Disk,instance=h1,severity=info",
				     .fingerprint = 13};
	struct test_alert maintenance = {.spec = "alertname=Maint,kind=maintenance",
					 .fingerprint = 20};
	struct test_alert db = {.spec = "alertname=Slow,service=db-main", .fingerprint = 21};
	struct test_alert web = {.spec = "alertname=Slow,service=web", .fingerprint = 22};
	struct test_alert *all[] = {
	    &crit_c1, &crit_c2,       &crit_none, &crit_empty, &crit_other,  &warn_c1, &warn_none,
	    &down_h1, &down_h1_again, &down_h2,   &disk_h1,    &maintenance, &db,      &web};
	const struct {
		struct test_alert *target;
		struct test_alert *firing[4];
		bool inhibited;
		size_t rule;
		uint64_t source;
	} cases[] = {
	    {&warn_c1, {&crit_c1}, true, 0, 1},
	    {&warn_c1, {&crit_c2}, false, 0, 0},
	    {&warn_c1, {&crit_other}, false, 0, 0},
	    {&warn_c1, {&crit_c2, &crit_other, &crit_c1}, true, 0, 1},
	    {&warn_c1, {NULL}, false, 0, 0},
	    /* A label missing on both sides, or empty on one and missing on the other. */
	    {&warn_none, {&crit_none}, true, 0, 3},
	    {&warn_none, {&crit_empty}, true, 0, 4},
	    {&warn_none, {&crit_c1}, false, 0, 0},
	    /* A critical alert is not a target of the first rule. */
	    {&crit_c1, {&crit_c2, &crit_none}, false, 0, 0},
	    /* NodeDown matches both sides of the second rule: never by another NodeDown. */
	    {&down_h1, {&down_h1}, false, 0, 0},
	    {&down_h1, {&down_h1_again}, false, 0, 0},
	    {&disk_h1, {&down_h2}, false, 0, 0},
	    {&disk_h1, {&down_h2, &down_h1}, true, 1, 10},
	    /* Older mapping forms; no equal labels means any source will do. */
	    {&db, {&maintenance}, true, 2, 20},
	    {&web, {&maintenance}, false, 0, 0},
	};
	struct alerting_config *ac = load(rules_yaml);

	(void)state;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		alert_init(all[i]);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct test_alert *firing[5] = {0};
		struct test_iter it = {firing, 0, 0};
		struct inhibit_source_iter sources = {&it, iter_next};
		struct inhibit_alert target = {cases[i].target->labels, cases[i].target->count,
					       cases[i].target->fingerprint};
		struct inhibit_result why = {99, 99};
		bool inhibited;

		memcpy(firing, cases[i].firing, sizeof(cases[i].firing));
		inhibited = inhibit_check(ac->inhibit_rules, ac->inhibit_rule_count, &target,
					  &sources, &why);
		if (inhibited != cases[i].inhibited)
			print_error("case %zu: %s\n", i, cases[i].target->spec);
		assert_int_equal(inhibited, cases[i].inhibited);
		if (inhibited) {
			assert_int_equal(why.rule, cases[i].rule);
			assert_int_equal(why.source_fingerprint, cases[i].source);
		} else {
			assert_int_equal(why.rule, 99);
		}
	}
	alerting_config_free(ac);
}

static void inhibit_walks_sources_once(void **state)
{
	struct test_alert warn = {.spec = "alertname=Disk,cluster=c1,severity=warning",
				  .fingerprint = 1};
	struct test_alert crit = {.spec = "alertname=Disk,cluster=c2,severity=critical",
				  .fingerprint = 2};
	struct test_alert other = {.spec = "alertname=Other", .fingerprint = 3};
	struct test_alert *firing[] = {&crit, &other, &crit, NULL};
	struct test_alert *none[] = {NULL};
	struct test_iter it = {firing, 0, 0};
	struct inhibit_source_iter sources = {&it, iter_next};
	struct inhibit_alert target;
	struct alerting_config *ac = load(rules_yaml);

	(void)state;
	alert_init(&warn);
	alert_init(&crit);
	alert_init(&other);
	target = (struct inhibit_alert){warn.labels, warn.count, warn.fingerprint};
	assert_false(
	    inhibit_check(ac->inhibit_rules, ac->inhibit_rule_count, &target, &sources, NULL));
	assert_int_equal(it.calls, 4);

	/* An alert that no rule targets needs no look at the sources at all. */
	target = (struct inhibit_alert){other.labels, other.count, other.fingerprint};
	it = (struct test_iter){none, 0, 0};
	assert_false(inhibit_check(ac->inhibit_rules, 1, &target, &sources, NULL));
	assert_int_equal(it.calls, 0);
	assert_false(inhibit_check(ac->inhibit_rules, 0, &target, &sources, NULL));
	assert_int_equal(it.calls, 0);
	alerting_config_free(ac);
}

static void inhibit_rules_read(void **state)
{
	struct alerting_config *ac = load(rules_yaml);
	const struct inhibit_rule *r = &ac->inhibit_rules[0];

	(void)state;
	assert_int_equal(ac->inhibit_rule_count, 3);
	assert_int_equal(r->source.count, 1);
	assert_int_equal(r->target.count, 1);
	assert_int_equal(r->equal_count, 2);
	assert_string_equal(r->equal[0], "alertname");
	assert_string_equal(r->equal[1], "cluster");
	assert_null(r->equal[2]);
	assert_string_equal(r->location, "t.yml:5:7");
	assert_int_equal(ac->inhibit_rules[2].equal_count, 0);
	assert_int_equal(ac->inhibit_rules[2].target.v[0].op, EXPR_MATCH_REGEX);
	alerting_config_free(ac);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(inhibit_table),
	    cmocka_unit_test(inhibit_walks_sources_once),
	    cmocka_unit_test(inhibit_rules_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
