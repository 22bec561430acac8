/*
 * Unit tests of label matchers and the routing tree. Matchers: the string form and its
 * errors, regex anchoring and missing labels. Routing: nested routes with inheritance and
 * `continue`, and the default route. Groups: keys for group_by lists, `...` and [].
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
#include "alerter/matcher.h"
#include "alerter/route.h"
#include "collector/cfg.h"

/* Up to 8 labels parsed from "a=1,b=2" (no escapes), kept in the struct. */
struct test_labels {
	struct label v[8];
	char text[256];
	size_t count;
};

static void labels_set(struct test_labels *l, const char *spec)
{
	char *save = NULL;

	l->count = 0;
	snprintf(l->text, sizeof(l->text), "%s", spec);
	for (char *item = strtok_r(l->text, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');

		assert_non_null(eq);
		assert_true(l->count < 8);
		*eq = '\0';
		l->v[l->count].name = item;
		l->v[l->count].value = eq + 1;
		l->count++;
	}
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
	assert_non_null(ac);
	cfg_free(c);
	return ac;
}

static void matcher_string_forms(void **state)
{
	static const struct {
		const char *text;
		const char *formatted;
	} cases[] = {
	    {"severity=\"page\"", "{severity=\"page\"}"},
	    {"severity=~\"crit|page\"", "{severity=~\"crit|page\"}"},
	    {"env!=test", "{env!=\"test\"}"},
	    {"  team !~ ops.*  ", "{team!~\"ops.*\"}"},
	    {"{b=\"2\", a=~\"1\"}", "{a=~\"1\",b=\"2\"}"},
	    {"{a=\"1\",}", "{a=\"1\"}"},
	    {"a=\"x\\\"y\\\\z\\n\"", "{a=\"x\\\"y\\\\z\\n\"}"},
	    {"a=\"with, comma\"", "{a=\"with, comma\"}"},
	    {"a=", "{a=\"\"}"},
	    {"a=b c", "{a=\"b c\"}"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct matcher_set set = {0};
		char error[256] = "";
		char *text;

		if (matcher_parse(cases[i].text, &set, error, sizeof error) != 0)
			print_error("case %zu: %s\n", i, error);
		assert_string_equal(error, "");
		text = matcher_set_format(&set);
		assert_string_equal(text, cases[i].formatted);
		free(text);
		matcher_set_clear(&set);
	}
}

static void matcher_string_errors(void **state)
{
	static const struct {
		const char *text;
		const char *error;
	} cases[] = {
	    {"", "invalid matcher \"\": unexpected end, expected a label name"},
	    {"1a=b",
	     "invalid matcher \"1a=b\": unexpected \"1\" at column 1, expected a label name"},
	    {"a~b", "invalid matcher \"a~b\": unexpected \"~\" at column 2, expected one of the "
		    "operators =, !=, =~, !~"},
	    {"a=\"x", "invalid matcher \"a=\\\"x\": unexpected end, expected a closing \" after "
		      "the value"},
	    {"a=\"\\q\"", "invalid matcher \"a=\\\"\\\\q\\\"\": unexpected \"q\" at column 5, "
			  "expected one of the escapes \\\" \\\\ \\n \\t"},
	    {"{a=\"x\"",
	     "invalid matcher \"{a=\\\"x\\\"\": unexpected end, expected \",\" or \"}\""},
	    {"a=\"x\" b",
	     "invalid matcher \"a=\\\"x\\\" b\": unexpected \"b\" at column 7, expected "
	     "\",\" or the end"},
	    {"severity==\"page\"",
	     "invalid matcher \"severity==\\\"page\\\"\": unexpected \"=\" at column 10, "
	     "expected a value; the operators are =, !=, =~ and !~ (a value that starts with = "
	     "or ~ must be quoted)"},
	    {"a=~\"(\"", "invalid regex \"(\" for label a (Unmatched ( or \\(); expected a POSIX "
			 "extended regular expression (plus (?i), (?:...) and \\d)"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct matcher_set set = {0};
		char error[512] = "";

		assert_int_equal(matcher_parse("keep=\"me\"", &set, error, sizeof error), 0);
		assert_int_equal(matcher_parse(cases[i].text, &set, error, sizeof error), -1);
		assert_string_equal(error, cases[i].error);
		/* A failed parse leaves the set as it was. */
		assert_int_equal(set.count, 1);
		matcher_set_clear(&set);
	}
}

static void matcher_matching_table(void **state)
{
	static const struct {
		const char *matcher;
		const char *labels;
		bool expected;
	} cases[] = {
	    {"a=\"x\"", "a=x", true},
	    {"a=\"x\"", "a=xy", false},
	    {"a=\"x\"", "b=x", false},
	    {"a!=\"x\"", "b=x", true},
	    {"a=\"\"", "b=x", true},
	    {"a!=\"\"", "b=x", false},
	    {"a!=\"\"", "a=1", true},
	    /* Regexes are anchored at both ends, also around an alternation. */
	    {"a=~\"b\"", "a=ab", false},
	    {"a=~\"a.*\"", "a=ba", false},
	    {"a=~\"crit|page\"", "a=critical", false},
	    {"a=~\"crit|page\"", "a=page", true},
	    {"a=~\"crit|page\"", "a=xpage", false},
	    {"a=~\".*\"", "b=x", true},
	    {"a=~\".+\"", "b=x", false},
	    {"a!~\".+\"", "b=x", true},
	    {"a!~\"x.*\"", "a=xyz", false},
	    {"a!~\"x.*\"", "a=yx", true},
	    {"a=~\"(?i)PAGE\"", "a=page", true},
	    {"a=~\"(?:db|web)-\\\\d+\"", "a=db-12", true},
	    {"a=~\"(?:db|web)-\\\\d+\"", "a=db-x", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct matcher_set set = {0};
		struct test_labels l;
		char error[256];

		assert_int_equal(matcher_parse(cases[i].matcher, &set, error, sizeof error), 0);
		labels_set(&l, cases[i].labels);
		if (matcher_set_matches(&set, l.v, l.count) != cases[i].expected)
			print_error("case %zu: %s on %s\n", i, cases[i].matcher, cases[i].labels);
		assert_int_equal(matcher_set_matches(&set, l.v, l.count), cases[i].expected);
		matcher_set_clear(&set);
	}
}

static const char tree_yaml[] = "alerting:\n"
				"  receivers:\n"
				"    - name: default\n"
				"    - name: db\n"
				"    - name: db-pager\n"
				"    - name: web\n"
				"    - name: shop\n"
				"    - name: staging\n"
				"  route:\n"
				"    receiver: default\n"
				"    group_by: [alertname]\n"
				"    group_wait: 10s\n"
				"    routes:\n"
				"      - matchers: ['team=\"db\"']\n"
				"        receiver: db\n"
				"        group_by: [cluster, alertname]\n"
				"        routes:\n"
				"          - matchers: ['severity=\"page\"']\n"
				"            receiver: db-pager\n"
				"            group_wait: 0s\n"
				"          - matchers: ['severity=~\"warn|info\"']\n"
				"      - matchers: ['service=~\"web.*\"']\n"
				"        receiver: web\n"
				"        continue: true\n"
				"      - matchers: ['service=\"webshop\"']\n"
				"        receiver: shop\n"
				"      - match: {env: staging}\n"
				"        receiver: staging\n"
				"        group_by: ['...']\n"
				"      - match_re: {env: 'test.*'}\n"
				"        group_by: []\n"
				"        repeat_interval: 1h\n"
				"      - matchers: ['service=\"webshop\"']\n"
				"        receiver: shop\n";

static void routing_table(void **state)
{
	static const struct {
		const char *labels;
		const char *keys[3];
		const char *receivers[3];
	} cases[] = {
	    {"alertname=X", {"{}"}, {"default"}},
	    {"alertname=X,team=db,severity=page",
	     {"{}/{team=\"db\"}/{severity=\"page\"}"},
	     {"db-pager"}},
	    {"team=db,severity=info", {"{}/{team=\"db\"}/{severity=~\"warn|info\"}"}, {"db"}},
	    {"team=db,severity=crit", {"{}/{team=\"db\"}"}, {"db"}},
	    /* continue: the next sibling is tried as well. */
	    {"service=webshop",
	     {"{}/{service=~\"web.*\"}", "{}/{service=\"webshop\"}"},
	     {"web", "shop"}},
	    {"service=webapp", {"{}/{service=~\"web.*\"}"}, {"web"}},
	    /* The first matching route without continue ends the search. */
	    {"team=db,service=webshop", {"{}/{team=\"db\"}"}, {"db"}},
	    {"env=staging", {"{}/{env=\"staging\"}"}, {"staging"}},
	    {"env=testing", {"{}/{env=~\"test.*\"}"}, {"default"}},
	    {"env=pretesting", {"{}"}, {"default"}},
	};
	struct alerting_config *ac = load(tree_yaml);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct route **nodes = NULL;
		struct test_labels l;
		size_t expected = 0;
		size_t n;

		labels_set(&l, cases[i].labels);
		n = route_match(ac->route, l.v, l.count, &nodes);
		while (expected < 3 && cases[i].keys[expected] != NULL)
			expected++;
		if (n != expected)
			print_error("case %zu (%s): %zu routes\n", i, cases[i].labels, n);
		assert_int_equal(n, expected);
		for (size_t k = 0; k < n; k++) {
			assert_string_equal(nodes[k]->key, cases[i].keys[k]);
			assert_string_equal(nodes[k]->receiver, cases[i].receivers[k]);
		}
		free(nodes);
	}
	alerting_config_free(ac);
}

static void routing_inherits_settings(void **state)
{
	struct alerting_config *ac = load(tree_yaml);
	const struct route *root = ac->route;
	const struct route *db = root->routes[0];
	const struct route *pager = db->routes[0];
	const struct route *info = db->routes[1];
	const struct route *staging = root->routes[3];
	const struct route *testing = root->routes[4];

	(void)state;
	assert_int_equal(root->group_wait_ms, 10000);
	assert_int_equal(root->group_interval_ms, ROUTE_DEFAULT_GROUP_INTERVAL_MS);
	assert_int_equal(root->repeat_interval_ms, ROUTE_DEFAULT_REPEAT_INTERVAL_MS);
	assert_int_equal(root->group_by_count, 1);

	assert_int_equal(pager->group_wait_ms, 0);
	assert_int_equal(pager->group_interval_ms, ROUTE_DEFAULT_GROUP_INTERVAL_MS);
	assert_int_equal(pager->group_by_count, 2);
	/* Sorted, whatever the order in the file. */
	assert_string_equal(pager->group_by[0], "alertname");
	assert_string_equal(pager->group_by[1], "cluster");
	assert_int_equal(info->group_wait_ms, 10000);
	assert_string_equal(info->receiver, "db");

	assert_true(staging->group_by_all);
	assert_int_equal(staging->group_by_count, 0);
	assert_false(testing->group_by_all);
	assert_int_equal(testing->group_by_count, 0);
	assert_int_equal(testing->repeat_interval_ms, 3600 * 1000);
	assert_true(root->routes[1]->continue_matching);
	assert_false(root->routes[2]->continue_matching);
	alerting_config_free(ac);
}

static void routing_default_timings(void **state)
{
	struct alerting_config *ac = load("alerting:\n"
					  "  receivers: [{name: ops}]\n"
					  "  route: {receiver: ops}\n");

	(void)state;
	assert_int_equal(ac->route->group_wait_ms, 30 * 1000);
	assert_int_equal(ac->route->group_interval_ms, 5 * 60 * 1000);
	assert_int_equal(ac->route->repeat_interval_ms, 4 * 3600 * 1000);
	assert_int_equal(ac->route->group_by_count, 0);
	assert_false(ac->route->group_by_all);
	assert_string_equal(ac->route->key, "{}");
	alerting_config_free(ac);
}

/* Group key and labels of `spec` at node r. */
static char *group_of(const struct route *r, const char *spec, char *labels_out, size_t size)
{
	struct test_labels l;
	struct label *group;
	size_t count;
	char *key;
	char *text;

	labels_set(&l, spec);
	route_group_key(r, l.v, l.count, &key, &group, &count);
	text = matcher_format_labels(group, count);
	snprintf(labels_out, size, "%s", text);
	free(text);
	route_labels_free(group, count);
	return key;
}

static void group_keys_table(void **state)
{
	static const struct {
		int node; /* 0: root, 1: team=db, 2: staging (...), 3: testing ([]) */
		const char *labels;
		const char *key;
		const char *group;
	} cases[] = {
	    {0, "alertname=A,instance=h1", "{}:{alertname=\"A\"}", "{alertname=\"A\"}"},
	    {0, "instance=h2,alertname=A", "{}:{alertname=\"A\"}", "{alertname=\"A\"}"},
	    {0, "alertname=B", "{}:{alertname=\"B\"}", "{alertname=\"B\"}"},
	    {0, "instance=h1", "{}:{}", "{}"},
	    {1, "team=db,cluster=c1,alertname=A,instance=h1",
	     "{}/{team=\"db\"}:{alertname=\"A\",cluster=\"c1\"}",
	     "{alertname=\"A\",cluster=\"c1\"}"},
	    {1, "alertname=A,team=db,instance=h2,cluster=c1",
	     "{}/{team=\"db\"}:{alertname=\"A\",cluster=\"c1\"}",
	     "{alertname=\"A\",cluster=\"c1\"}"},
	    {1, "alertname=A,team=db,cluster=c2",
	     "{}/{team=\"db\"}:{alertname=\"A\",cluster=\"c2\"}",
	     "{alertname=\"A\",cluster=\"c2\"}"},
	    {1, "alertname=A,team=db", "{}/{team=\"db\"}:{alertname=\"A\"}", "{alertname=\"A\"}"},
	    {2, "env=staging,b=2,a=1", "{}/{env=\"staging\"}:{a=\"1\",b=\"2\",env=\"staging\"}",
	     "{a=\"1\",b=\"2\",env=\"staging\"}"},
	    {2, "env=staging,a=1", "{}/{env=\"staging\"}:{a=\"1\",env=\"staging\"}",
	     "{a=\"1\",env=\"staging\"}"},
	    {3, "env=test,alertname=A", "{}/{env=~\"test.*\"}:{}", "{}"},
	    {3, "env=test2,alertname=B", "{}/{env=~\"test.*\"}:{}", "{}"},
	};
	struct alerting_config *ac = load(tree_yaml);
	const struct route *nodes[] = {ac->route, ac->route->routes[0], ac->route->routes[3],
				       ac->route->routes[4]};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char group[256];
		char *key = group_of(nodes[cases[i].node], cases[i].labels, group, sizeof group);

		assert_string_equal(key, cases[i].key);
		assert_string_equal(group, cases[i].group);
		free(key);
	}
	alerting_config_free(ac);
}

static void group_keys_stable_and_distinct(void **state)
{
	struct alerting_config *first = load(tree_yaml);
	struct alerting_config *second = load(tree_yaml);
	const struct route *shop = first->route->routes[2];
	const struct route *shop_again = first->route->routes[5];
	char group[256];
	char *a;
	char *b;

	(void)state;
	/* The same config loaded twice gives the same keys. */
	a = group_of(first->route->routes[0]->routes[0], "team=db,severity=page,alertname=A", group,
		     sizeof group);
	b = group_of(second->route->routes[0]->routes[0], "team=db,severity=page,alertname=A",
		     group, sizeof group);
	assert_string_equal(a, b);
	free(b);
	/* The same alert at a parent and at its child falls in different groups. */
	b = group_of(first->route->routes[0], "team=db,severity=page,alertname=A", group,
		     sizeof group);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
	/* A sibling with the same matchers as an earlier one gets its own key. */
	assert_string_equal(shop->key, "{}/{service=\"webshop\"}");
	assert_string_equal(shop_again->key, "{}/{service=\"webshop\"}#2");
	/* Values that need escaping cannot make two groups collide. */
	{
		const struct label tricky[] = {{"env", "staging"}, {"x", "1\",y=\"2"}};
		const struct label plain[] = {{"env", "staging"}, {"x", "1"}, {"y", "2"}};
		struct label *g;
		size_t count;

		route_group_key(first->route->routes[3], tricky, 2, &a, &g, &count);
		route_labels_free(g, count);
		route_group_key(first->route->routes[3], plain, 3, &b, &g, &count);
		route_labels_free(g, count);
		assert_string_equal(a,
				    "{}/{env=\"staging\"}:{env=\"staging\",x=\"1\\\",y=\\\"2\"}");
		assert_string_equal(b, "{}/{env=\"staging\"}:{env=\"staging\",x=\"1\",y=\"2\"}");
		free(a);
		free(b);
	}
	alerting_config_free(first);
	alerting_config_free(second);
}

static void muted_by_time_intervals(void **state)
{
	struct alerting_config *ac =
	    load("alerting:\n"
		 "  time_intervals:\n"
		 "    - name: weekend\n"
		 "      time_intervals: [{weekdays: [saturday, sunday]}]\n"
		 "    - name: office\n"
		 "      time_intervals:\n"
		 "        - times: [{start_time: '09:00', end_time: '17:00'}]\n"
		 "    - name: lunch\n"
		 "      time_intervals:\n"
		 "        - times: [{start_time: '12:00', end_time: '13:00'}]\n"
		 "  receivers: [{name: ops}]\n"
		 "  route:\n"
		 "    receiver: ops\n"
		 "    routes:\n"
		 "      - matchers: [a=1]\n"
		 "        mute_time_intervals: [weekend]\n"
		 "        routes: [{matchers: [b=1]}]\n"
		 "      - matchers: [a=2]\n"
		 "        active_time_intervals: [office]\n"
		 "        mute_time_intervals: [lunch]\n");
	/* 2024-05-04 is a Saturday; 2024-05-06 a Monday. */
	const int64_t saturday_10 = 1714816800000;
	const int64_t monday_10 = 1714989600000;
	const int64_t monday_1230 = monday_10 + 150 * 60 * 1000;
	const int64_t monday_18 = monday_10 + 8 * 3600 * 1000;
	const struct route *muted = ac->route->routes[0];
	const struct route *active = ac->route->routes[1];

	(void)state;
	assert_false(route_muted(ac->route, saturday_10));
	assert_true(route_muted(muted, saturday_10));
	assert_false(route_muted(muted, monday_10));
	/* Time intervals are not inherited. */
	assert_false(route_muted(muted->routes[0], saturday_10));
	assert_false(route_muted(active, monday_10));
	assert_true(route_muted(active, monday_18));
	/* A mute interval wins over an active one. */
	assert_true(route_muted(active, monday_1230));
	alerting_config_free(ac);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(matcher_string_forms),
	    cmocka_unit_test(matcher_string_errors),
	    cmocka_unit_test(matcher_matching_table),
	    cmocka_unit_test(routing_table),
	    cmocka_unit_test(routing_inherits_settings),
	    cmocka_unit_test(routing_default_timings),
	    cmocka_unit_test(group_keys_table),
	    cmocka_unit_test(group_keys_stable_and_distinct),
	    cmocka_unit_test(muted_by_time_intervals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
