/*
 * Unit tests of the `alerting:` section: a complete config loaded through config_load_string
 * (receivers with one integration and with a list, defaults, lookups), the section left
 * out, and every error with its exact message and position. A fake receiver type, "test",
 * replaces the real notifiers; it needs a `url` and keeps it as its state.
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
#include "alerter/receiver.h"
#include "alerter/receiver_testing.h"
#include "collector/cfg.h"
#include "collector/config.h"

static int fake_parse(struct cfg_map *options, void **state)
{
	char *url;

	if (!cfg_has(options, "url")) {
		cfg_error(options, NULL, "missing required key \"url\"");
		return -1;
	}
	if (cfg_get_string(options, "url", &url) != 1)
		return -1;
	*state = url;
	return 0;
}

static void fake_free(void *state)
{
	free(state);
}

static const struct receiver_type test_receiver = {
    .name = "test",
    .parse = fake_parse,
    .free = fake_free,
};

static int register_test_receiver(void **state)
{
	(void)state;
	receiver_register_for_tests(&test_receiver);
	/* The message for an unknown zone names the file under the default directory. */
	unsetenv("TZDIR");
	return 0;
}

/* Loads `text` as "t.yml" and expects it to fail with exactly `expected`. */
static void expect_errors(const char *text, const char *expected)
{
	char *errors = NULL;
	struct config *cfg = config_load_string("t.yml", text, &errors);

	assert_null(cfg);
	assert_non_null(errors);
	if (strcmp(errors, expected) != 0)
		print_error("got:\n%s\n", errors);
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

static void alerting_absent(void **state)
{
	struct config *cfg = load_ok("listen: 127.0.0.1:9517\n");

	(void)state;
	assert_null(cfg->alerting);
	config_free(cfg);
	cfg = load_ok("alerting:\n");
	assert_null(cfg->alerting);
	config_free(cfg);
}

static void alerting_complete_config(void **state)
{
	struct config *cfg = load_ok("alerting:\n"
				     "  external_url: https://tocsin.example.com/ui//\n"
				     "  retry: {initial: 2s, max: 1m, max_age: 6h}\n"
				     "  circuit_breaker: {failures: 3, cooldown: 30s}\n"
				     "  time_intervals:\n"
				     "    - name: weekend\n"
				     "      time_intervals: [{weekdays: [saturday, sunday]}]\n"
				     "  receivers:\n"
				     "    - name: ops\n"
				     "      test: {url: 'http://127.0.0.1:9/a'}\n"
				     "    - name: pager\n"
				     "      test:\n"
				     "        - {url: 'http://127.0.0.1:9/b'}\n"
				     "        - {url: 'http://127.0.0.1:9/c'}\n"
				     "    - name: blackhole\n"
				     "  route:\n"
				     "    receiver: ops\n"
				     "    routes:\n"
				     "      - matchers: ['severity=\"page\"']\n"
				     "        receiver: pager\n"
				     "        mute_time_intervals: [weekend]\n"
				     "  inhibit_rules:\n"
				     "    - source_matchers: [severity=page]\n"
				     "      target_matchers: [severity=ticket]\n");
	const struct alerting_config *ac = cfg->alerting;
	const struct alerting_receiver *pager;

	(void)state;
	assert_non_null(ac);
	assert_string_equal(ac->external_url, "https://tocsin.example.com/ui");
	assert_int_equal(ac->retry.initial_ms, 2000);
	assert_int_equal(ac->retry.max_ms, 60000);
	assert_int_equal(ac->retry.max_age_ms, 6 * 3600 * 1000);
	assert_int_equal(ac->circuit_breaker.failures, 3);
	assert_int_equal(ac->circuit_breaker.cooldown_ms, 30000);

	assert_int_equal(ac->receiver_count, 3);
	assert_int_equal(ac->receivers[0].integration_count, 1);
	assert_ptr_equal(ac->receivers[0].integrations[0].type, &test_receiver);
	assert_string_equal(ac->receivers[0].integrations[0].state, "http://127.0.0.1:9/a");
	assert_string_equal(ac->receivers[0].integrations[0].location, "t.yml:10:13");
	pager = alerting_config_receiver(ac, "pager");
	assert_non_null(pager);
	assert_int_equal(pager->integration_count, 2);
	assert_string_equal(pager->integrations[1].state, "http://127.0.0.1:9/c");
	assert_int_equal(pager->integrations[1].index, 1);
	assert_int_equal(alerting_config_receiver(ac, "blackhole")->integration_count, 0);
	assert_null(alerting_config_receiver(ac, "nobody"));

	assert_int_equal(ac->time_interval_count, 1);
	assert_ptr_equal(ac->route->routes[0]->mute_intervals[0],
			 alerting_config_time_interval(ac, "weekend"));
	assert_null(alerting_config_time_interval(ac, "holidays"));
	assert_string_equal(ac->route->routes[0]->receiver, "pager");
	assert_string_equal(ac->route->routes[0]->location, "t.yml:19:9");
	assert_int_equal(ac->inhibit_rule_count, 1);
	config_free(cfg);
}

static void alerting_defaults(void **state)
{
	struct config *cfg = load_ok("alerting:\n"
				     "  receivers: [{name: ops}]\n"
				     "  route: {receiver: ops}\n");
	const struct alerting_config *ac = cfg->alerting;

	(void)state;
	assert_int_equal(ac->retry.initial_ms, 1000);
	assert_int_equal(ac->retry.max_ms, 5 * 60 * 1000);
	assert_int_equal(ac->retry.max_age_ms, 24 * 3600 * 1000);
	assert_int_equal(ac->circuit_breaker.failures, 5);
	assert_int_equal(ac->circuit_breaker.cooldown_ms, 60 * 1000);
	assert_null(ac->external_url);
	assert_int_equal(ac->inhibit_rule_count, 0);
	assert_int_equal(ac->time_interval_count, 0);
	config_free(cfg);
}

static void errors_route_and_receivers(void **state)
{
	(void)state;
	expect_errors(
	    "alerting:\n"
	    "  recievers: []\n"
	    "  time_intervals:\n"
	    "    - name: weekend\n"
	    "      time_intervals: [{weekdays: [saturday, sunday]}]\n"
	    "    - name: weekend\n"
	    "      time_intervals: []\n"
	    "    - time_intervals: []\n"
	    "    - name: bad\n"
	    "  receivers:\n"
	    "    - name: ops\n"
	    "      test: {url: http://127.0.0.1/}\n"
	    "    - name: ops\n"
	    "    - test: {url: x}\n"
	    "    - name: \" spaced\"\n"
	    "    - name: pager\n"
	    "      test:\n"
	    "        - {url: a}\n"
	    "        - {}\n"
	    "        - nope\n"
	    "      tset: {}\n"
	    "      test_configs: []\n"
	    "  route:\n"
	    "    recevier: ops\n"
	    "    receiver: nobody\n"
	    "    matchers: [a=b]\n"
	    "    continue: true\n"
	    "    mute_time_intervals: [weekend]\n"
	    "    group_by: [alertname, '...']\n"
	    "    group_interval: 0s\n"
	    "    repeat_interval: 5x\n"
	    "    routes:\n"
	    "      - receiver: ghost\n"
	    "        mute_time_intervals: [weekend, holidays]\n"
	    "        active_time_intervals: [weekend]\n"
	    "        group_by: [alertname, alertname, 1bad]\n"
	    "        matchers: ['a~b', 'x=~\"(\"']\n"
	    "        match: {1x: y}\n"
	    "        continue: maybe\n",
	    "t.yml:2:3: alerting.recievers: unknown key (did you mean \"receivers\"?)\n"
	    "t.yml:6:7: alerting.time_intervals[1]: duplicate time interval name \"weekend\" "
	    "(first defined at t.yml:4:7)\n"
	    "t.yml:8:7: alerting.time_intervals[2]: missing required key \"name\"\n"
	    "t.yml:9:7: alerting.time_intervals[3]: missing required key \"time_intervals\" (a "
	    "list of periods, e.g. [{weekdays: [\"saturday\", \"sunday\"]}])\n"
	    "t.yml:13:13: alerting.receivers[1].name: duplicate receiver name \"ops\" (first "
	    "defined at t.yml:11:7)\n"
	    "t.yml:14:7: alerting.receivers[2]: missing required key \"name\"\n"
	    "t.yml:15:13: alerting.receivers[3].name: invalid receiver name \" spaced\" (accepted: "
	    "up to 128 bytes of printable text, without control characters or leading and trailing "
	    "spaces)\n"
	    "t.yml:19:11: alerting.receivers[4].test[1]: missing required key \"url\"\n"
	    "t.yml:20:11: alerting.receivers[4].test[2]: expected a mapping, found a string\n"
	    "t.yml:21:7: alerting.receivers[4].tset: unknown key (did you mean \"test\"?)\n"
	    "t.yml:22:21: alerting.receivers[4].test_configs: unknown key; tocsin names this "
	    "receiver type \"test\" (a mapping or a list of mappings)\n"
	    "t.yml:24:5: alerting.route.recevier: unknown key (did you mean \"receiver\"?)\n"
	    "t.yml:25:15: alerting.route.receiver: unknown receiver \"nobody\"; define it under "
	    "alerting.receivers or use one of the defined names\n"
	    "t.yml:26:15: alerting.route.matchers: the root route receives every alert, so it "
	    "cannot have matchers; put them on a route under routes\n"
	    "t.yml:27:15: alerting.route.continue: the root route has no siblings, so it cannot "
	    "have continue\n"
	    "t.yml:28:26: alerting.route.mute_time_intervals: the root route cannot have time "
	    "intervals; put them on a route under routes\n"
	    "t.yml:29:27: alerting.route.group_by[1]: \"...\" groups by every label, so it must be "
	    "the only item of group_by\n"
	    "t.yml:31:22: alerting.route.repeat_interval: \"5x\" is not a duration (examples: "
	    "500ms, 10s, 5m, 1h, 1h30m, 7d)\n"
	    "t.yml:33:19: alerting.route.routes[0].receiver: unknown receiver \"ghost\"; define it "
	    "under alerting.receivers or use one of the defined names\n"
	    "t.yml:34:40: alerting.route.routes[0].mute_time_intervals[1]: unknown time interval "
	    "\"holidays\"; define it under alerting.time_intervals\n"
	    "t.yml:36:31: alerting.route.routes[0].group_by[1]: label \"alertname\" is listed "
	    "twice\n"
	    "t.yml:36:42: alerting.route.routes[0].group_by[2]: invalid label name \"1bad\" "
	    "(accepted: letters, digits and \"_\", not starting with a digit, or \"...\" alone for "
	    "every label)\n"
	    "t.yml:37:20: alerting.route.routes[0].matchers[0]: invalid matcher \"a~b\": "
	    "unexpected \"~\" at column 2, expected one of the operators =, !=, =~, !~\n"
	    "t.yml:37:27: alerting.route.routes[0].matchers[1]: invalid regex \"(\" for label x "
	    "(Unmatched ( or \\(); expected a POSIX extended regular expression (plus (?i), "
	    "(?:...) and \\d)\n"
	    "t.yml:38:21: alerting.route.routes[0].match.1x: invalid label name \"1x\" (accepted: "
	    "letters, digits and \"_\", not starting with a digit)\n"
	    "t.yml:39:19: alerting.route.routes[0].continue: \"maybe\" is not a boolean (accepted: "
	    "true, false)");
}

static void errors_time_intervals_and_settings(void **state)
{
	(void)state;
	expect_errors(
	    "alerting:\n"
	    "  receivers:\n"
	    "    - name: ops\n"
	    "      test:\n"
	    "    - name: two\n"
	    "      test: http://x\n"
	    "  route: {receiver: ops}\n"
	    "  time_intervals:\n"
	    "    - name: t\n"
	    "      time_intervals:\n"
	    "        - times:\n"
	    "            - {start_time: '9:00', end_time: '25:00'}\n"
	    "            - {start_time: '10:00', end_time: '10:00'}\n"
	    "            - {end_time: '24:00'}\n"
	    "            - {start_time: '24:00', end_time: '24:00'}\n"
	    "          weekdays: [mon, 'friday:monday', 'Sunday:saturday']\n"
	    "          days_of_month: ['0', '32', '-3:2', '5:1', '30:-3', '1:-1', '-5:-7', x]\n"
	    "          months: ['13', 'december:january', 'jan']\n"
	    "          years: ['0', '2025:2024', '10000']\n"
	    "          location: Mars/Olympus\n"
	    "          colour: red\n"
	    "        - location: ../../etc/passwd\n"
	    "  inhibit_rules:\n"
	    "    - source_matchers: ['a=']\n"
	    "      target_matchers: ['{b=\"x\"']\n"
	    "      equal: [1a, ok]\n"
	    "      eqaul: []\n"
	    "    - source_match_re: {a: '[' }\n"
	    "  retry: {initial: 0s, max: 0s, max_age: 1d, maximum: 1}\n"
	    "  circuit_breaker: {failures: 0, cooldown: 0s}\n"
	    "  external_url: ftp://example.com\n",
	    "t.yml:4:12: alerting.receivers[0].test: has no value; expected a mapping of test "
	    "options or a list of them\n"
	    "t.yml:6:13: alerting.receivers[1].test: expected a mapping of test options or a list "
	    "of them, found a string\n"
	    "t.yml:12:28: alerting.time_intervals[0].time_intervals[0].times[0].start_time: "
	    "\"9:00\" is not a time of day (accepted: HH:MM from 00:00 to 23:59, or 24:00 for the "
	    "end of the day)\n"
	    "t.yml:12:46: alerting.time_intervals[0].time_intervals[0].times[0].end_time: "
	    "\"25:00\" is not a time of day (accepted: HH:MM from 00:00 to 23:59, or 24:00 for the "
	    "end of the day)\n"
	    "t.yml:13:47: alerting.time_intervals[0].time_intervals[0].times[1].end_time: end_time "
	    "is not after start_time; the end is exclusive, and a range that passes midnight is "
	    "written as two ranges, up to 24:00 and from 00:00\n"
	    "t.yml:14:15: alerting.time_intervals[0].time_intervals[0].times[2]: missing required "
	    "key \"start_time\" (a time such as \"09:00\")\n"
	    "t.yml:15:47: alerting.time_intervals[0].time_intervals[0].times[3].end_time: end_time "
	    "is not after start_time; the end is exclusive, and a range that passes midnight is "
	    "written as two ranges, up to 24:00 and from 00:00\n"
	    "t.yml:16:22: alerting.time_intervals[0].time_intervals[0].weekdays[0]: \"mon\" is not "
	    "a weekday (accepted: sunday to saturday, or a range such as \"monday:friday\")\n"
	    "t.yml:16:27: alerting.time_intervals[0].time_intervals[0].weekdays[1]: "
	    "\"friday:monday\": the range ends before it starts; a week runs from sunday to "
	    "saturday here, so list a range that wraps as two items, e.g. [\"saturday\", "
	    "\"sunday\"]\n"
	    "t.yml:17:27: alerting.time_intervals[0].time_intervals[0].days_of_month[0]: \"0\" is "
	    "not a day of the month (accepted: 1 to 31, -31 to -1 counting from the end of the "
	    "month (-1 is the last day), or a range such as \"1:7\" or \"-3:-1\")\n"
	    "t.yml:17:32: alerting.time_intervals[0].time_intervals[0].days_of_month[1]: \"32\" is "
	    "not a day of the month (accepted: 1 to 31, -31 to -1 counting from the end of the "
	    "month (-1 is the last day), or a range such as \"1:7\" or \"-3:-1\")\n"
	    "t.yml:17:38: alerting.time_intervals[0].time_intervals[0].days_of_month[2]: \"-3:2\": "
	    "a range that starts from the end of the month (negative) must end from the end too\n"
	    "t.yml:17:46: alerting.time_intervals[0].time_intervals[0].days_of_month[3]: \"5:1\": "
	    "the range ends before it starts; write the earlier day first\n"
	    "t.yml:17:53: alerting.time_intervals[0].time_intervals[0].days_of_month[4]: "
	    "\"30:-3\": the range is empty in every month: its first day always comes after its "
	    "last\n"
	    "t.yml:17:70: alerting.time_intervals[0].time_intervals[0].days_of_month[6]: "
	    "\"-5:-7\": the range ends before it starts; write the earlier day first\n"
	    "t.yml:17:79: alerting.time_intervals[0].time_intervals[0].days_of_month[7]: \"x\" is "
	    "not a day of the month (accepted: 1 to 31, -31 to -1 counting from the end of the "
	    "month (-1 is the last day), or a range such as \"1:7\" or \"-3:-1\")\n"
	    "t.yml:18:20: alerting.time_intervals[0].time_intervals[0].months[0]: \"13\" is not a "
	    "month (accepted: january to december, 1 to 12, or a range such as \"march:may\")\n"
	    "t.yml:18:26: alerting.time_intervals[0].time_intervals[0].months[1]: "
	    "\"december:january\": the range ends before it starts; a range cannot wrap past "
	    "december, so list it as two items, e.g. [\"november:december\", "
	    "\"january:february\"]\n"
	    "t.yml:18:46: alerting.time_intervals[0].time_intervals[0].months[2]: \"jan\" is not a "
	    "month (accepted: january to december, 1 to 12, or a range such as \"march:may\")\n"
	    "t.yml:19:19: alerting.time_intervals[0].time_intervals[0].years[0]: \"0\" is not a "
	    "year (accepted: 1 to 9999, or a range such as \"2024:2026\")\n"
	    "t.yml:19:24: alerting.time_intervals[0].time_intervals[0].years[1]: \"2025:2024\": "
	    "the range ends before it starts; write the earlier year first\n"
	    "t.yml:19:37: alerting.time_intervals[0].time_intervals[0].years[2]: \"10000\" is not "
	    "a year (accepted: 1 to 9999, or a range such as \"2024:2026\")\n"
	    "t.yml:20:21: alerting.time_intervals[0].time_intervals[0].location: unknown time zone "
	    "\"Mars/Olympus\": cannot read /usr/share/zoneinfo/Mars/Olympus (No such file or "
	    "directory)\n"
	    "t.yml:21:11: alerting.time_intervals[0].time_intervals[0].colour: unknown key (known "
	    "keys here: times, weekdays, days_of_month, months, years, location)\n"
	    "t.yml:22:21: alerting.time_intervals[0].time_intervals[1].location: invalid time zone "
	    "name \"../../etc/passwd\"; expected an IANA name such as \"Europe/Berlin\", \"UTC\" "
	    "or \"Local\"\n"
	    "t.yml:25:25: alerting.inhibit_rules[0].target_matchers[0]: invalid matcher "
	    "\"{b=\\\"x\\\"\": unexpected end, expected \",\" or \"}\"\n"
	    "t.yml:26:15: alerting.inhibit_rules[0].equal[0]: invalid label name \"1a\" (accepted: "
	    "letters, digits and \"_\", not starting with a digit)\n"
	    "t.yml:27:7: alerting.inhibit_rules[0].eqaul: unknown key (did you mean \"equal\"?)\n"
	    "t.yml:28:28: alerting.inhibit_rules[1].source_match_re.a: invalid regex \"[\" for "
	    "label a (Unmatched [, [^, [:, [., or [=); expected a POSIX extended regular "
	    "expression (plus (?i), (?:...) and \\d)\n"
	    "t.yml:29:20: alerting.retry.initial: must be longer than 0; it is the delay before "
	    "the first retry\n"
	    "t.yml:29:29: alerting.retry.max: must be longer than 0; it is the longest delay "
	    "between two retries\n"
	    "t.yml:29:46: alerting.retry.maximum: unknown key (known keys here: initial, max, "
	    "max_age)\n"
	    "t.yml:30:31: alerting.circuit_breaker.failures: \"0\" is out of range (accepted: 1 to "
	    "1000000)\n"
	    "t.yml:30:44: alerting.circuit_breaker.cooldown: must be longer than 0; it is how long "
	    "a receiver rests after repeated failures\n"
	    "t.yml:31:17: alerting.external_url: \"ftp://example.com\" is not an http or https URL "
	    "(example: https://tocsin.example.com/)");
}

static void errors_root_route(void **state)
{
	(void)state;
	expect_errors("alerting:\n"
		      "  route:\n"
		      "    group_by: [a]\n"
		      "    match: {a: b}\n"
		      "    match_re: {a: b}\n"
		      "    active_time_intervals: [x]\n"
		      "    routes:\n"
		      "      - receiver: x\n",
		      "t.yml:3:5: alerting.route: missing required key \"receiver\": the root "
		      "route needs one for the alerts that match no child route\n"
		      "t.yml:4:12: alerting.route.match: the root route receives every alert, so "
		      "it cannot have matchers; put them on a route under routes\n"
		      "t.yml:5:15: alerting.route.match_re: the root route receives every alert, "
		      "so it cannot have matchers; put them on a route under routes\n"
		      "t.yml:6:28: alerting.route.active_time_intervals: the root route cannot "
		      "have time intervals; put them on a route under routes\n"
		      "t.yml:6:29: alerting.route.active_time_intervals[0]: unknown time interval "
		      "\"x\"; define it under alerting.time_intervals\n"
		      "t.yml:8:19: alerting.route.routes[0].receiver: unknown receiver \"x\": no "
		      "receivers are defined; add it under alerting.receivers");
}

static void errors_section_shape(void **state)
{
	(void)state;
	expect_errors("alerting: [1]\n",
		      "t.yml:1:11: alerting: expected a mapping, found a sequence");
	expect_errors(
	    "alerting:\n  receivers: [{name: a}]\n",
	    "t.yml:2:3: alerting: missing required key \"route\" (the root of the routing "
	    "tree, e.g. route: {receiver: ops})");
	expect_errors(
	    "alerting:\n  route:\n  x: 1\n",
	    "t.yml:2:3: alerting: missing required key \"route\" (the root of the routing "
	    "tree, e.g. route: {receiver: ops})\n"
	    "t.yml:3:3: alerting.x: unknown key (known keys here: time_intervals, "
	    "receivers, route, inhibit_rules, retry, circuit_breaker, external_url)");
	expect_errors("alerting:\n"
		      "  receivers: [{name: a}]\n"
		      "  route: {receiver: a}\n"
		      "  retry: {initial: 10m}\n"
		      "  external_url: \"http://\"\n",
		      "t.yml:4:20: alerting.retry.initial: max (5m) is shorter than initial (10m); "
		      "the delay doubles from initial up to max\n"
		      "t.yml:5:17: alerting.external_url: \"http://\" is not an http or https URL "
		      "(example: https://tocsin.example.com/)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(alerting_absent),
	    cmocka_unit_test(alerting_complete_config),
	    cmocka_unit_test(alerting_defaults),
	    cmocka_unit_test(errors_route_and_receivers),
	    cmocka_unit_test(errors_time_intervals_and_settings),
	    cmocka_unit_test(errors_root_route),
	    cmocka_unit_test(errors_section_shape),
	};

	return cmocka_run_group_tests(tests, register_test_receiver, NULL);
}
