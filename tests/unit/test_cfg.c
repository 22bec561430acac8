/*
 * The YAML reader: typed getters on valid input, and the exact text, line and column of
 * every kind of error, including YAML syntax errors, duplicate and unknown keys.
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

#include "collector/cfg.h"
#include "collector/xalloc.h"

static struct cfg *parse(const char *text)
{
	return cfg_parse_string("t.yml", text, strlen(text));
}

static void test_getters_valid(void **state)
{
	struct cfg *cfg = parse("name: tocsin\n"
				"quoted: \"a \\\"b\\\"\"\n"
				"enabled: true\n"
				"disabled: false\n"
				"count: -12\n"
				"ratio: 0.25\n"
				"interval: 1h30m\n"
				"size: 512KiB\n"
				"targets: [a, b, c]\n"
				"headers:\n"
				"  Accept: text/plain\n"
				"  X-Id: 7\n"
				"nested:\n"
				"  inner: 5s\n");
	struct cfg_map root;
	struct cfg_map nested;
	char *name = NULL;
	char *quoted = NULL;
	bool enabled = false;
	bool disabled = true;
	int64_t count = 0;
	double ratio = 0;
	uint64_t interval = 0;
	uint64_t size = 0;
	uint64_t inner = 0;
	char **targets = NULL;
	size_t target_count = 0;
	char **names = NULL;
	char **values = NULL;
	size_t header_count = 0;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	assert_int_equal(cfg_get_string(&root, "name", &name), 1);
	assert_string_equal(name, "tocsin");
	assert_int_equal(cfg_get_string(&root, "quoted", &quoted), 1);
	assert_string_equal(quoted, "a \"b\"");
	assert_int_equal(cfg_get_bool(&root, "enabled", &enabled), 1);
	assert_true(enabled);
	assert_int_equal(cfg_get_bool(&root, "disabled", &disabled), 1);
	assert_false(disabled);
	assert_int_equal(cfg_get_int(&root, "count", -100, 100, &count), 1);
	assert_int_equal(count, -12);
	assert_int_equal(cfg_get_double(&root, "ratio", &ratio), 1);
	assert_true(ratio == 0.25);
	assert_int_equal(cfg_get_duration_ms(&root, "interval", &interval), 1);
	assert_int_equal(interval, 5400000);
	assert_int_equal(cfg_get_size(&root, "size", &size), 1);
	assert_int_equal(size, 524288);
	assert_int_equal(cfg_get_string_list(&root, "targets", &targets, &target_count), 1);
	assert_int_equal(target_count, 3);
	assert_string_equal(targets[0], "a");
	assert_string_equal(targets[2], "c");
	assert_null(targets[3]);
	assert_int_equal(cfg_get_string_map(&root, "headers", &names, &values, &header_count), 1);
	assert_int_equal(header_count, 2);
	assert_string_equal(names[0], "Accept");
	assert_string_equal(values[0], "text/plain");
	assert_string_equal(names[1], "X-Id");
	assert_string_equal(values[1], "7");
	assert_int_equal(cfg_get_map(&root, "nested", &nested), 1);
	assert_string_equal(nested.path, "nested");
	assert_int_equal(cfg_get_duration_ms(&nested, "inner", &inner), 1);
	assert_int_equal(inner, 5000);
	cfg_map_finish(&nested);
	cfg_map_finish(&root);

	assert_int_equal(cfg_error_count(cfg), 0);
	assert_string_equal(cfg_errors(cfg), "");
	free(name);
	free(quoted);
	cfg_strv_free(targets);
	cfg_strv_free(names);
	cfg_strv_free(values);
	cfg_free(cfg);
}

static void test_getters_absent(void **state)
{
	struct cfg *cfg = parse("other: 1\n");
	struct cfg_map root;
	struct cfg_map sub;
	struct cfg_seq seq;
	char *text = NULL;
	uint64_t ms = 42;
	int64_t n = 42;
	char **list = NULL;
	size_t count = 0;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	assert_int_equal(cfg_get_string(&root, "name", &text), 0);
	assert_null(text);
	assert_int_equal(cfg_get_duration_ms(&root, "interval", &ms), 0);
	assert_int_equal(ms, 42);
	assert_int_equal(cfg_get_int(&root, "count", 0, 10, &n), 0);
	assert_int_equal(n, 42);
	assert_int_equal(cfg_get_string_list(&root, "list", &list, &count), 0);
	assert_null(list);
	assert_false(cfg_has(&root, "missing"));
	assert_true(cfg_has(&root, "other"));
	assert_int_equal(cfg_get_map(&root, "sub", &sub), 0);
	cfg_map_finish(&sub);
	assert_int_equal(cfg_get_seq(&root, "seq", &seq), 0);
	assert_int_equal(cfg_seq_count(&seq), 0);
	assert_int_equal(cfg_get_int(&root, "other", 0, 10, &n), 1);
	cfg_map_finish(&root);
	assert_int_equal(cfg_error_count(cfg), 0);
	cfg_free(cfg);
}

static void test_getter_errors(void **state)
{
	struct cfg *cfg = parse("enabled: yes\n"
				"count: 12x\n"
				"port: 70000\n"
				"big: 9223372036854775808\n"
				"signed: +5\n"
				"spaced: ' 5'\n"
				"ratio: abc\n"
				"nan: nan\n"
				"huge: 1e400\n"
				"interval: 10x\n"
				"size: 10q\n"
				"name: [a, b]\n"
				"timeout:\n"
				"text: {a: 1}\n"
				"nul: \"a\\0b\"\n");
	struct cfg_map root;
	bool b = false;
	int64_t n = 0;
	double d = 0;
	uint64_t u = 0;
	char *s = NULL;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	assert_int_equal(cfg_get_bool(&root, "enabled", &b), -1);
	assert_int_equal(cfg_get_int(&root, "count", 0, 100, &n), -1);
	assert_int_equal(cfg_get_int(&root, "port", 1, 65535, &n), -1);
	assert_int_equal(cfg_get_int(&root, "big", INT64_MIN, INT64_MAX, &n), -1);
	assert_int_equal(cfg_get_int(&root, "signed", 0, 10, &n), -1);
	assert_int_equal(cfg_get_int(&root, "spaced", 0, 10, &n), -1);
	assert_int_equal(cfg_get_double(&root, "ratio", &d), -1);
	assert_int_equal(cfg_get_double(&root, "nan", &d), -1);
	assert_int_equal(cfg_get_double(&root, "huge", &d), -1);
	assert_int_equal(cfg_get_duration_ms(&root, "interval", &u), -1);
	assert_int_equal(cfg_get_size(&root, "size", &u), -1);
	assert_int_equal(cfg_get_string(&root, "name", &s), -1);
	assert_int_equal(cfg_get_duration_ms(&root, "timeout", &u), -1);
	assert_int_equal(cfg_get_string(&root, "text", &s), -1);
	assert_int_equal(cfg_get_string(&root, "nul", &s), -1);
	cfg_map_finish(&root);
	assert_null(s);
	assert_int_equal(n, 0);
	assert_int_equal(u, 0);

	assert_int_equal(cfg_error_count(cfg), 15);
	assert_string_equal(
	    cfg_errors(cfg),
	    "t.yml:1:10: enabled: \"yes\" is not a boolean (accepted: true, false)\n"
	    "t.yml:2:8: count: \"12x\" is not an integer (accepted: 0 to 100)\n"
	    "t.yml:3:7: port: \"70000\" is out of range (accepted: 1 to 65535)\n"
	    "t.yml:4:6: big: \"9223372036854775808\" is out of range (accepted: "
	    "-9223372036854775808 to 9223372036854775807)\n"
	    "t.yml:5:9: signed: \"+5\" is not an integer (accepted: 0 to 10)\n"
	    "t.yml:6:9: spaced: \" 5\" is not an integer (accepted: 0 to 10)\n"
	    "t.yml:7:8: ratio: \"abc\" is not a number (examples: 1, 0.5, -2.5e3)\n"
	    "t.yml:8:6: nan: \"nan\" is not a number (examples: 1, 0.5, -2.5e3)\n"
	    "t.yml:9:7: huge: \"1e400\" is out of range for a number\n"
	    "t.yml:10:11: interval: \"10x\" is not a duration (examples: 500ms, 10s, 5m, 1h, "
	    "1h30m, 7d)\n"
	    "t.yml:11:7: size: \"10q\" is not a size (examples: 4096, 512KiB, 10MB, 1GiB)\n"
	    "t.yml:12:7: name: expected a string, found a sequence\n"
	    "t.yml:13:9: timeout: has no value; expected a duration (examples: 500ms, 10s, 5m, "
	    "1h, 1h30m, 7d)\n"
	    "t.yml:14:7: text: expected a string, found a mapping\n"
	    "t.yml:15:6: nul: contains a NUL character; expected a string");
	cfg_free(cfg);
}

/* The example every operator sees first: a bad interval deep inside the probe list. */
static void test_duration_error_in_sequence(void **state)
{
	struct cfg *cfg = parse("probes:\n"
				"  - interval: 10s\n"
				"  - interval: 20s\n"
				"  - name: c\n"
				"    interval: 10x\n");
	struct cfg_map root;
	struct cfg_seq probes;
	char where[128];

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	assert_int_equal(cfg_get_seq(&root, "probes", &probes), 1);
	assert_int_equal(cfg_seq_count(&probes), 3);
	for (size_t i = 0; i < cfg_seq_count(&probes); i++) {
		struct cfg_map item;
		uint64_t ms = 0;
		char *name = NULL;

		assert_int_equal(cfg_seq_map(&probes, i, &item), 1);
		cfg_get_string(&item, "name", &name);
		free(name);
		cfg_get_duration_ms(&item, "interval", &ms);
		if (i == 2) {
			assert_string_equal(item.path, "probes[2]");
			assert_string_equal(cfg_location(&item, "interval", where, sizeof where),
					    "t.yml:5:15");
			assert_string_equal(cfg_location(&item, NULL, where, sizeof where),
					    "t.yml:4:5");
		}
		cfg_map_finish(&item);
	}
	cfg_map_finish(&root);
	assert_string_equal(cfg_errors(cfg),
			    "t.yml:5:15: probes[2].interval: \"10x\" is not a duration (examples: "
			    "500ms, 10s, 5m, 1h, 1h30m, 7d)");
	cfg_free(cfg);
}

static void test_syntax_errors(void **state)
{
	static const struct {
		const char *text;
		const char *error;
	} cases[] = {
	    {"a: b: c\n",
	     "t.yml:1:5: invalid YAML: mapping values are not allowed in this context"},
	    {"a: 1\nb: [1, 2\n",
	     "t.yml:3:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow "
	     "sequence that starts at line 2, column 4)"},
	    {"a: *missing\n", "t.yml:1:4: invalid YAML: found undefined alias"},
	    {"a: 1\n\tb: 2\n", "t.yml:2:1: invalid YAML: found a tab character that violates "
			       "indentation (while scanning a plain scalar that starts at line 1, "
			       "column 4)"},
	    {"a: \"\xff\"\n",
	     "t.yml:1:5: invalid YAML: invalid leading UTF-8 octet (byte offset 4)"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cfg *cfg = parse(cases[i].text);
		struct cfg_map root;

		/* After a syntax error the document is empty, so getters find nothing. */
		assert_int_equal(cfg_root(cfg, &root), 0);
		assert_int_equal(cfg_map_size(&root), 0);
		cfg_map_finish(&root);
		assert_int_equal(cfg_error_count(cfg), 1);
		assert_string_equal(cfg_errors(cfg), cases[i].error);
		cfg_free(cfg);
	}
}

static void test_duplicate_keys(void **state)
{
	struct cfg *cfg = parse("interval: 10s\n"
				"archive: {heartbeat: 20s, heartbeat: 30s}\n"
				"interval: 20s\n");
	struct cfg_map root;
	struct cfg_map archive;
	uint64_t ms = 0;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	/* The getters read the first copy and do not report the second one as unknown. */
	assert_int_equal(cfg_get_duration_ms(&root, "interval", &ms), 1);
	assert_int_equal(ms, 10000);
	assert_int_equal(cfg_get_map(&root, "archive", &archive), 1);
	assert_int_equal(cfg_get_duration_ms(&archive, "heartbeat", &ms), 1);
	assert_int_equal(ms, 20000);
	cfg_map_finish(&archive);
	cfg_map_finish(&root);
	assert_string_equal(cfg_errors(cfg),
			    "t.yml:2:27: archive.heartbeat: duplicate key (first at line 2, "
			    "column 11); remove one of them\n"
			    "t.yml:3:1: interval: duplicate key (first at line 1, column 1); "
			    "remove one of them");
	cfg_free(cfg);
}

static void test_unknown_keys_with_hints(void **state)
{
	struct cfg *cfg = parse("intervl: 10s\n"
				"timeout: 5s\n"
				"Listen: 1\n"
				"zzz: 1\n"
				"probes:\n"
				"  - name: a\n"
				"    tipe: host\n");
	struct cfg_map root;
	struct cfg_seq probes;
	struct cfg_map probe;
	uint64_t ms;
	char *s = NULL;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	cfg_get_duration_ms(&root, "interval", &ms);
	cfg_get_duration_ms(&root, "timeout", &ms);
	cfg_has(&root, "listen");
	assert_int_equal(cfg_get_seq(&root, "probes", &probes), 1);
	assert_int_equal(cfg_seq_map(&probes, 0, &probe), 1);
	cfg_get_string(&probe, "name", &s);
	cfg_has(&probe, "type");
	cfg_map_finish(&probe);
	cfg_map_finish(&root);
	free(s);
	assert_string_equal(
	    cfg_errors(cfg),
	    "t.yml:1:1: intervl: unknown key (did you mean \"interval\"?)\n"
	    "t.yml:3:1: Listen: unknown key (did you mean \"listen\"?)\n"
	    "t.yml:4:1: zzz: unknown key (known keys here: interval, timeout, listen, "
	    "probes)\n"
	    "t.yml:7:5: probes[0].tipe: unknown key (did you mean \"type\"?)");
	cfg_free(cfg);
}

static void test_errors_capped_and_counted(void **state)
{
	char *text = xmalloc(300 * 16 + 1);
	struct cfg *cfg;
	struct cfg_map root;
	size_t len = 0;
	const char *errors;
	const char *last;

	(void)state;
	for (int i = 0; i < 300; i++)
		len += (size_t)sprintf(text + len, "key%04d: 1\n", i);
	cfg = parse(text);
	assert_int_equal(cfg_root(cfg, &root), 0);
	cfg_map_finish(&root);
	assert_int_equal(cfg_error_count(cfg), 300);
	errors = cfg_errors(cfg);
	assert_non_null(strstr(errors, "t.yml:1:1: key0000: unknown key"));
	assert_non_null(strstr(errors, "t.yml:100:1: key0099: unknown key"));
	assert_null(strstr(errors, "key0100"));
	last = strrchr(errors, '\n') + 1;
	assert_string_equal(last, "t.yml: and 200 more errors not shown; fix the ones above first");
	cfg_free(cfg);
	free(text);
}

static void test_many_keys_checked_quickly(void **state)
{
	/* 20,000 keys with one duplicate: the check must stay O(n log n). */
	char *text = xmalloc(20001 * 16 + 1);
	struct cfg *cfg;
	size_t len = 0;

	(void)state;
	for (int i = 0; i < 20000; i++)
		len += (size_t)sprintf(text + len, "k%06d: 1\n", i);
	len += (size_t)sprintf(text + len, "k%06d: 2\n", 12345);
	cfg = parse(text);
	assert_int_equal(cfg_error_count(cfg), 1);
	assert_string_equal(cfg_errors(cfg), "t.yml:20001:1: k012345: duplicate key (first at "
					     "line 12346, column 1); remove one of them");
	cfg_free(cfg);
	free(text);
}

static void test_unknown_key_discarded(void **state)
{
	struct cfg *cfg = parse("a: 1\nb: 2\n");
	struct cfg_map root;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	cfg_map_discard(&root);
	assert_int_equal(cfg_error_count(cfg), 0);
	cfg_free(cfg);
}

static void test_all_errors_in_one_run(void **state)
{
	struct cfg *cfg = parse("a: x\n"
				"b: y\n"
				"c: z\n"
				"d: {e: 1, e: 2}\n"
				"f: 1\n");
	struct cfg_map root;
	uint64_t ms;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	cfg_get_duration_ms(&root, "a", &ms);
	cfg_get_duration_ms(&root, "b", &ms);
	cfg_get_size(&root, "c", &ms);
	cfg_has(&root, "d");
	cfg_map_finish(&root);
	/* One duplicate found while reading, three bad values, two unknown keys. */
	assert_int_equal(cfg_error_count(cfg), 6);
	cfg_free(cfg);
}

static void test_root_not_mapping(void **state)
{
	static const struct {
		const char *text;
		const char *error;
	} cases[] = {
	    {"- a\n- b\n", "t.yml:1:1: the top level is a sequence; it must be a mapping of keys "
			   "to values (\"key: value\" lines)"},
	    {"hello\n", "t.yml:1:1: the top level is the string \"hello\"; it must be a mapping "
			"of keys to values (\"key: value\" lines)"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cfg *cfg = parse(cases[i].text);
		struct cfg_map root;

		assert_int_equal(cfg_root(cfg, &root), -1);
		cfg_map_finish(&root);
		assert_string_equal(cfg_errors(cfg), cases[i].error);
		cfg_free(cfg);
	}
}

static void test_empty_documents(void **state)
{
	static const char *const cases[] = {"", "# only a comment\n", "---\n", "~\n",
					    "a: 1\n---\n"};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cfg *cfg = parse(cases[i]);
		struct cfg_map root;

		int64_t a;

		assert_int_equal(cfg_root(cfg, &root), 0);
		cfg_get_int(&root, "a", 0, 1, &a);
		cfg_map_finish(&root);
		assert_string_equal(cfg_errors(cfg), "");
		cfg_free(cfg);
	}
}

static void test_second_document(void **state)
{
	struct cfg *cfg = parse("a: 1\n---\nb: 2\n");
	struct cfg_map root;
	int64_t a;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	cfg_get_int(&root, "a", 0, 1, &a);
	cfg_map_finish(&root);
	assert_string_equal(cfg_errors(cfg),
			    "t.yml:2:1: a second YAML document starts here; a config file holds "
			    "exactly one (remove the \"---\" line and what follows)");
	cfg_free(cfg);
}

static void test_non_scalar_key(void **state)
{
	struct cfg *cfg = parse("? [a]\n: b\n");
	struct cfg_map root;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	cfg_map_finish(&root);
	assert_string_equal(cfg_errors(cfg),
			    "t.yml:1:3: a key is a sequence; keys must be strings");
	cfg_free(cfg);
}

static void test_sequence_item_errors(void **state)
{
	struct cfg *cfg = parse("targets: [a, {b: 1}, c]\n"
				"probes:\n"
				"  - just a string\n"
				"headers: {a: [1]}\n"
				"list: scalar\n");
	struct cfg_map root;
	struct cfg_seq probes;
	struct cfg_map item;
	char **list = NULL;
	char **names = NULL;
	char **values = NULL;
	size_t count = 0;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	assert_int_equal(cfg_get_string_list(&root, "targets", &list, &count), -1);
	assert_null(list);
	assert_int_equal(cfg_get_seq(&root, "probes", &probes), 1);
	assert_int_equal(cfg_seq_map(&probes, 0, &item), -1);
	cfg_map_finish(&item);
	assert_int_equal(cfg_get_string_map(&root, "headers", &names, &values, &count), -1);
	assert_null(names);
	assert_int_equal(cfg_get_string_list(&root, "list", &list, &count), -1);
	cfg_map_finish(&root);
	assert_string_equal(cfg_errors(cfg),
			    "t.yml:1:14: targets[1]: expected a string, found a mapping\n"
			    "t.yml:3:5: probes[0]: expected a mapping, found a string\n"
			    "t.yml:4:14: headers.a: expected a string, found a sequence\n"
			    "t.yml:5:7: list: expected a sequence of strings, found a string");
	cfg_free(cfg);
}

static void test_seq_strings(void **state)
{
	struct cfg *cfg = parse("retention: [10s:2d, 1m:30d, {x: 1}]\n");
	struct cfg_map root;
	struct cfg_seq seq;
	char *item = NULL;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	assert_int_equal(cfg_get_seq(&root, "retention", &seq), 1);
	assert_int_equal(cfg_seq_count(&seq), 3);
	/* In a flow sequence "10s:2d" is one plain scalar: no space follows the colon. */
	assert_int_equal(cfg_seq_string(&seq, 0, &item), 1);
	assert_string_equal(item, "10s:2d");
	free(item);
	assert_int_equal(cfg_seq_string(&seq, 2, &item), -1);
	cfg_seq_error(&seq, 1, "custom problem %d", 7);
	cfg_map_finish(&root);
	assert_string_equal(cfg_errors(cfg),
			    "t.yml:1:21: retention[1]: custom problem 7\n"
			    "t.yml:1:29: retention[2]: expected a string, found a mapping");
	cfg_free(cfg);
}

static void test_kind_and_keys(void **state)
{
	struct cfg *cfg = parse("s: x\nq: [1]\nm: {a: 1}\nn:\n");
	struct cfg_map root;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	assert_int_equal(cfg_kind(&root, "s"), CFG_KIND_SCALAR);
	assert_int_equal(cfg_kind(&root, "q"), CFG_KIND_SEQUENCE);
	assert_int_equal(cfg_kind(&root, "m"), CFG_KIND_MAPPING);
	assert_int_equal(cfg_kind(&root, "n"), CFG_KIND_NULL);
	assert_int_equal(cfg_kind(&root, "absent"), CFG_KIND_ABSENT);
	assert_int_equal(cfg_map_size(&root), 4);
	assert_string_equal(cfg_map_key(&root, 0), "s");
	assert_string_equal(cfg_map_key(&root, 3), "n");
	assert_null(cfg_map_key(&root, 4));
	/* cfg_kind marks keys known, not used: all four are reported. */
	cfg_map_finish(&root);
	assert_int_equal(cfg_error_count(cfg), 4);
	assert_string_equal(
	    cfg_errors(cfg),
	    "t.yml:1:1: s: key is not used with the other settings here; remove it\n"
	    "t.yml:2:1: q: key is not used with the other settings here; remove it\n"
	    "t.yml:3:1: m: key is not used with the other settings here; remove it\n"
	    "t.yml:4:1: n: key is not used with the other settings here; remove it");
	cfg_free(cfg);
}

static void test_custom_error_positions(void **state)
{
	struct cfg *cfg = parse("outer:\n  inner: value\n");
	struct cfg_map root;
	struct cfg_map outer;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	assert_int_equal(cfg_get_map(&root, "outer", &outer), 1);
	cfg_has(&outer, "inner");
	cfg_error(&outer, "inner", "value %s is bad", "\"value\"");
	cfg_error(&outer, NULL, "mapping is bad");
	cfg_error(&outer, "missing", "required key is missing");
	cfg_error(&root, NULL, "root is bad");
	cfg_map_discard(&outer);
	cfg_map_finish(&root);
	/* Listed in file order (line, column), then in the order found. */
	assert_string_equal(cfg_errors(cfg), "t.yml:1:1: root is bad\n"
					     "t.yml:2:3: outer: mapping is bad\n"
					     "t.yml:2:3: outer.missing: required key is missing\n"
					     "t.yml:2:10: outer.inner: value \"value\" is bad");
	cfg_free(cfg);
}

static void test_aliases(void **state)
{
	struct cfg *cfg = parse("base: &base {interval: 10s}\n"
				"copy: *base\n"
				"loop: &loop [*loop]\n");
	struct cfg_map root;
	struct cfg_map copy;
	uint64_t ms = 0;

	(void)state;
	assert_int_equal(cfg_root(cfg, &root), 0);
	assert_int_equal(cfg_get_map(&root, "copy", &copy), 1);
	assert_int_equal(cfg_get_duration_ms(&copy, "interval", &ms), 1);
	assert_int_equal(ms, 10000);
	cfg_map_finish(&copy);
	cfg_has(&root, "base");
	cfg_has(&root, "loop");
	cfg_map_discard(&root);
	/* The recursive alias neither loops forever nor counts as an error. */
	assert_int_equal(cfg_error_count(cfg), 0);
	cfg_free(cfg);
}

static void test_fingerprint(void **state)
{
	static const char *const texts[] = {
	    "p: {name: a, interval: 10s}\n",
	    "# comment\np:\n  name: a\n  interval: 10s   \n", /* same tree, other layout */
	    "p: {name: a, interval: 20s}\n",                  /* other value */
	    "p: {interval: 10s, name: a}\n",                  /* other order */
	    "p: {name: a, interval: 10s, x: 1}\n",            /* one more key */
	};
	uint64_t h[5];

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		struct cfg *cfg = parse(texts[i]);
		struct cfg_map root;
		struct cfg_map p;

		assert_int_equal(cfg_root(cfg, &root), 0);
		assert_int_equal(cfg_get_map(&root, "p", &p), 1);
		h[i] = cfg_map_fingerprint(&p);
		cfg_map_discard(&p);
		cfg_map_finish(&root);
		assert_int_equal(cfg_error_count(cfg), 0);
		cfg_free(cfg);
	}
	assert_true(h[0] == h[1]);
	assert_true(h[0] != h[2]);
	assert_true(h[0] != h[3]);
	assert_true(h[0] != h[4]);
}

static void test_quote(void **state)
{
	char buf[CFG_QUOTE_SIZE];
	char tiny[9];
	char long_value[200];

	(void)state;
	assert_string_equal(cfg_quote("plain", buf, sizeof buf), "\"plain\"");
	assert_string_equal(cfg_quote("a\"b\\c\nd\te\x01", buf, sizeof buf),
			    "\"a\\\"b\\\\c\\nd\\te\\x01\"");
	memset(long_value, 'x', sizeof long_value - 1);
	long_value[sizeof long_value - 1] = '\0';
	cfg_quote(long_value, buf, sizeof buf);
	assert_int_equal(strlen(buf), 1 + 60 + 3 + 1);
	assert_string_equal(buf + 61, "...\"");
	assert_string_equal(cfg_quote("abcdefgh", tiny, sizeof tiny), "\"abc...\"");
}

static void test_parse_file(void **state)
{
	char path[] = "/tmp/test_cfg_XXXXXX";
	int fd = mkstemp(path);
	const char *text = "interval: 10s\nbad: [\n";
	struct cfg *cfg;
	char expected[256];

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cfg = cfg_parse_file(path);
	assert_string_equal(cfg_file_name(cfg), path);
	snprintf(expected, sizeof expected,
		 "%s:3:1: invalid YAML: did not find expected node content (while parsing a flow "
		 "node that starts at line 3, column 1)",
		 path);
	assert_string_equal(cfg_errors(cfg), expected);
	cfg_free(cfg);
	unlink(path);

	cfg = cfg_parse_file("/nonexistent/tocsin.yml");
	assert_string_equal(cfg_errors(cfg),
			    "/nonexistent/tocsin.yml: failed to read: No such file or directory");
	cfg_free(cfg);
}

static void test_source_hash(void **state)
{
	struct cfg *a = parse("a: 1\n");
	struct cfg *b = parse("a: 1\n");
	struct cfg *c = parse("a: 2\n");

	(void)state;
	assert_true(cfg_source_hash(a) == cfg_source_hash(b));
	assert_true(cfg_source_hash(a) != cfg_source_hash(c));
	cfg_free(a);
	cfg_free(b);
	cfg_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_getters_valid),
	    cmocka_unit_test(test_getters_absent),
	    cmocka_unit_test(test_getter_errors),
	    cmocka_unit_test(test_duration_error_in_sequence),
	    cmocka_unit_test(test_syntax_errors),
	    cmocka_unit_test(test_duplicate_keys),
	    cmocka_unit_test(test_unknown_keys_with_hints),
	    cmocka_unit_test(test_unknown_key_discarded),
	    cmocka_unit_test(test_errors_capped_and_counted),
	    cmocka_unit_test(test_many_keys_checked_quickly),
	    cmocka_unit_test(test_all_errors_in_one_run),
	    cmocka_unit_test(test_root_not_mapping),
	    cmocka_unit_test(test_empty_documents),
	    cmocka_unit_test(test_second_document),
	    cmocka_unit_test(test_non_scalar_key),
	    cmocka_unit_test(test_sequence_item_errors),
	    cmocka_unit_test(test_seq_strings),
	    cmocka_unit_test(test_kind_and_keys),
	    cmocka_unit_test(test_custom_error_positions),
	    cmocka_unit_test(test_aliases),
	    cmocka_unit_test(test_fingerprint),
	    cmocka_unit_test(test_quote),
	    cmocka_unit_test(test_parse_file),
	    cmocka_unit_test(test_source_hash),
	};

	return cmocka_run_group_tests_name("cfg", tests, NULL, NULL);
}
