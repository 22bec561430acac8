/*
 * Tests of the Prometheus text exposition writer and of the HTTP server that serves it:
 * escaping, number formatting, name validation, family layout, a check of the whole body
 * by promtool (the reference parser), and real requests over loopback.
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "collector/log.h"
#include "collector/series.h"
#include "web/exposition.h"
#include "web/http.h"

#define PROMTOOL "/usr/bin/promtool"

/* Returns the buffer's contents as a NUL-terminated string owned by the caller. */
static char *buffer_text(struct evbuffer *buf)
{
	size_t length = evbuffer_get_length(buf);
	char *text = malloc(length + 1);

	assert_non_null(text);
	evbuffer_copyout(buf, text, length);
	text[length] = '\0';
	return text;
}

static char *escaped_label_value(const char *value)
{
	struct evbuffer *buf = evbuffer_new();
	char *text;

	exposition_escape_label_value(buf, value);
	text = buffer_text(buf);
	evbuffer_free(buf);
	return text;
}

static char *rendered_registry(const struct series_registry *reg)
{
	struct evbuffer *buf = evbuffer_new();
	char *text;

	exposition_write_registry(buf, reg);
	text = buffer_text(buf);
	evbuffer_free(buf);
	return text;
}

static struct series *set_series(struct series_registry *reg, const struct metric_desc *desc,
				 const struct label *labels, size_t label_count, double value)
{
	struct series *s = series_intern(reg, desc, labels, label_count);

	assert_non_null(s);
	series_set(s, value, 1700000000000);
	return s;
}

static void label_value_escaping(void **state)
{
	static const struct {
		const char *value;
		const char *expected;
	} cases[] = {
	    {"Disk Usage C:\\", "Disk Usage C:\\\\"},
	    {"MSC20\\AUCTI-orders", "MSC20\\\\AUCTI-orders"},
	    {"laptop 14\" R/W", "laptop 14\\\" R/W"},
	    {"line1\nline2", "line1\\nline2"},
	    {"Größe", "Größe"},
	    /* A mount point with backslash, tab and line feed: the tab stays as it is. */
	    {"/srv/test/aaa\\b\tc\nd#e", "/srv/test/aaa\\\\b\tc\\nd#e"},
	    {"\\\"\n", "\\\\\\\"\\n"},
	    {"plain", "plain"},
	    {"", ""},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = escaped_label_value(cases[i].value);

		assert_string_equal(text, cases[i].expected);
		free(text);
	}
}

static void label_value_null_is_empty(void **state)
{
	char *text = escaped_label_value(NULL);

	assert_string_equal(text, "");
	free(text);
}

static void help_escaping_keeps_quotes(void **state)
{
	struct evbuffer *buf = evbuffer_new();
	char *text;

	exposition_escape_help(buf, "free space on \"C:\\\"\nper volume");
	text = buffer_text(buf);
	assert_string_equal(text, "free space on \"C:\\\\\"\\nper volume");
	free(text);
	evbuffer_free(buf);
}

static void value_formatting(void **state)
{
	static const struct {
		double value;
		const char *expected;
	} cases[] = {
	    {NAN, "NaN"},
	    {-NAN, "NaN"},
	    {+INFINITY, "+Inf"},
	    {-INFINITY, "-Inf"},
	    {0.0, "0"},
	    {-0.0, "-0"},
	    {1.0, "1"},
	    {-42.0, "-42"},
	    {1e-9, "1e-09"},
	    {181005683161.0, "181005683161"},
	    {0.1, "0.1"},
	    {1.0 / 3.0, "0.3333333333333333"},
	    {0.1 + 0.2, "0.30000000000000004"},
	    {9007199254740992.0, "9007199254740992"},
	    {1e21, "1e+21"},
	    {DBL_MAX, "1.7976931348623157e+308"},
	    {DBL_TRUE_MIN, "4.94065645841247e-324"},
	};
	char buf[EXPOSITION_VALUE_SIZE];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		exposition_format_value(buf, sizeof(buf), cases[i].value);
		assert_string_equal(buf, cases[i].expected);
	}
}

/* Any finite double, whatever its bit pattern, must read back exactly. */
static void value_formatting_round_trips(void **state)
{
	uint64_t bits = 0x9e3779b97f4a7c15u;
	char buf[EXPOSITION_VALUE_SIZE];

	for (int i = 0; i < 100000; i++) {
		double value;

		/* xorshift64: a fixed, repeatable sequence of bit patterns. */
		bits ^= bits << 13;
		bits ^= bits >> 7;
		bits ^= bits << 17;
		memcpy(&value, &bits, sizeof(value));
		if (!isfinite(value))
			continue;
		exposition_format_value(buf, sizeof(buf), value);
		assert_true(strlen(buf) < sizeof(buf) - 1);
		assert_true(strtod(buf, NULL) == value);
	}
}

/* Integers take a shortcut in the formatter; its text must match what %.15g prints. */
static void value_formatting_integers_match_printf(void **state)
{
	static const double values[] = {
	    1,
	    9,
	    10,
	    99,
	    100,
	    65535,
	    1e9,
	    4294967296.0,
	    181005683161.0,
	    999999999999999.0,
	    1e15,
	    1e16,
	    -1,
	    -10,
	    -999999999999999.0,
	    -1e15,
	    123456789012345.0,
	    9007199254740993.0,
	};
	char buf[EXPOSITION_VALUE_SIZE];
	char expected[EXPOSITION_VALUE_SIZE];

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		snprintf(expected, sizeof(expected), "%.15g", values[i]);
		if (strtod(expected, NULL) != values[i])
			snprintf(expected, sizeof(expected), "%.17g", values[i]);
		exposition_format_value(buf, sizeof(buf), values[i]);
		assert_string_equal(buf, expected);
	}
}

/* The text of the general path: the fewest of 15, 16 or 17 digits that read back exactly. */
static void format_with_printf(char *buf, size_t size, double value)
{
	for (int precision = 15; precision <= 17; precision++) {
		snprintf(buf, size, "%.*g", precision, value);
		if (strtod(buf, NULL) == value)
			return;
	}
}

/* Decimals with up to 6 places take a shortcut too; its text must match the general path. */
static void value_formatting_decimals_match_printf(void **state)
{
	static const double values[] = {
	    0.1,      0.5,     -0.25,     0.0001,      0.00012,     0.000412,  1e-5,
	    0.000099, 57.125,  57.123,    -1234.5678,  999999999.5, 1e9 + 0.5, 0.1 + 0.2,
	    1.0 / 3,  123.456, 0.1234567, 99999.99999, 0.999999,    1.000001,  -0.000001,
	};
	size_t fixed = sizeof(values) / sizeof(values[0]);
	char buf[EXPOSITION_VALUE_SIZE];
	char expected[EXPOSITION_VALUE_SIZE];
	uint64_t bits = 0x2545f4914f6cdd1du;

	for (size_t i = 0; i < fixed + 200000; i++) {
		double value = i < fixed ? values[i] : 0;

		if (i >= fixed) {
			/* A decimal of up to 10 digits with 0 to 7 places, either sign, as strtod
			 * reads it: what a plugin or a probe prints. */
			bits ^= bits << 13;
			bits ^= bits >> 7;
			bits ^= bits << 17;
			snprintf(expected, sizeof(expected), "%s%llu.%07llu", bits & 1 ? "-" : "",
				 (unsigned long long)(bits >> 8) % 1000,
				 (unsigned long long)(bits >> 20) %
				     (10000000 /
				      (unsigned long long)pow(10, (double)((bits >> 4) % 8))));
			value = strtod(expected, NULL);
		}
		format_with_printf(expected, sizeof(expected), value);
		exposition_format_value(buf, sizeof(buf), value);
		assert_string_equal(buf, expected);
	}
}

static void metric_name_validation(void **state)
{
	static const char *valid[] = {
	    "tocsin_probe_success", "node:cpu:rate5m", "_x", ":x", "a1", "A"};
	static const char *invalid[] = {"",      "1a",  "probe-success", "probe success",
					"größe", "a.b", "a{b}"};

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		assert_true(exposition_valid_metric_name(valid[i]));
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		assert_false(exposition_valid_metric_name(invalid[i]));
	assert_false(exposition_valid_metric_name(NULL));
}

static void label_name_validation(void **state)
{
	static const char *valid[] = {"type", "_x", "__name__", "a1", "Probe"};
	static const char *invalid[] = {"", "1a", "a:b", ":x", "a-b", "größe", "a b"};

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		assert_true(exposition_valid_label_name(valid[i]));
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		assert_false(exposition_valid_label_name(invalid[i]));
	assert_false(exposition_valid_label_name(NULL));
}

/* series_intern copies its labels with memcpy, which must not be given NULL. */
static const struct label no_labels[1] = {{"unused", "unused"}};

static const struct metric_desc probe_success = {
    "tocsin_probe_success", "Whether the last run of the probe succeeded (1) or failed (0).",
    METRIC_GAUGE};
static const struct metric_desc probe_duration = {
    "tocsin_probe_duration_seconds", "Duration of the last run of the probe.", METRIC_GAUGE};
static const struct metric_desc probe_runs = {"tocsin_probe_runs_total",
					      "Runs of the probe since start-up.", METRIC_COUNTER};
static const struct metric_desc check_info = {
    "tocsin_check_info", "Description of a check, \"quoted\", with C:\\ and\na line feed.",
    METRIC_GAUGE};
static const struct metric_desc value_gauge = {"tocsin_value", "A value of a test gauge.",
					       METRIC_GAUGE};

/*
 * Fills a registry the way a scheduler would: two HTTP probes and one TCP probe, run in
 * that interleaved order, each writing a sample of every probe family. Label values come
 * from the escaping cases.
 */
static struct series_registry *probe_registry(void)
{
	static const struct {
		const char *probe;
		const char *type;
		double success;
	} probes[] = {
	    {"Disk Usage C:\\", "http", 1},
	    {"laptop 14\" R/W", "tcp", 0},
	    {"MSC20\\AUCTI-orders", "http", 1},
	};
	struct series_registry *reg = series_registry_new();

	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		struct label labels[] = {{"type", probes[i].type}, {"probe", probes[i].probe}};

		set_series(reg, &probe_success, labels, 2, probes[i].success);
		set_series(reg, &probe_duration, labels, 2, 0.25 * (double)(i + 1));
		set_series(reg, &probe_runs, labels, 2, 181005683161.0);
	}

	struct label info[] = {{"unit", "Größe"}, {"detail", "line1\nline2"}};
	set_series(reg, &check_info, info, 2, 1);

	struct label g1[] = {{"probe", "g1"}};
	struct label g2[] = {{"probe", "g2"}};
	struct label g3[] = {{"probe", "g3"}};
	struct label g4[] = {{"probe", "g4"}};
	struct label mount[] = {{"mountpoint", "/srv/test/aaa\\b\tc\nd#e"}};
	set_series(reg, &value_gauge, g1, 1, NAN);
	set_series(reg, &value_gauge, g2, 1, INFINITY);
	set_series(reg, &value_gauge, g3, 1, -INFINITY);
	set_series(reg, &value_gauge, g4, 1, -0.0);
	set_series(reg, &value_gauge, mount, 1, 1e-9);
	/* A series without labels; the empty label set is passed as a non-NULL array. */
	set_series(reg, &value_gauge, no_labels, 0, 1.0 / 3.0);
	return reg;
}

/* Returns the metric name of a sample line, i.e. its text up to '{' or ' ', in `name`. */
static void sample_name(const char *line, char *name, size_t size)
{
	size_t length = strcspn(line, "{ ");

	assert_true(length < size);
	memcpy(name, line, length);
	name[length] = '\0';
}

/*
 * Checks the layout of a body line by line. Each family has its HELP line, then its TYPE
 * line, then only its own samples. No family comes twice, and families are in name order.
 */
static void assert_families_contiguous(const char *body, size_t expected_families)
{
	char *copy = strdup(body);
	char family[128] = "";
	char help_name[128] = "";
	size_t families = 0;
	char *save = NULL;

	assert_non_null(copy);
	for (char *line = strtok_r(copy, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[128];

		if (strncmp(line, "# HELP ", 7) == 0) {
			sample_name(line + 7, help_name, sizeof(help_name));
			/* Sorted and never repeated: each HELP name is after the previous one. */
			assert_true(strcmp(help_name, family) > 0);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			sample_name(line + 7, name, sizeof(name));
			assert_string_equal(name, help_name);
			strcpy(family, name);
			families++;
			continue;
		}
		assert_true(line[0] != '#');
		sample_name(line, name, sizeof(name));
		assert_string_equal(name, family);
	}
	assert_int_equal(families, expected_families);
	free(copy);
}

static void registry_families_contiguous(void **state)
{
	struct series_registry *reg = probe_registry();
	char *body = rendered_registry(reg);

	assert_families_contiguous(body, 5);
	assert_non_null(strstr(body, "# HELP tocsin_probe_success Whether the last run of the "
				     "probe succeeded (1) or failed (0).\n"
				     "# TYPE tocsin_probe_success gauge\n"));
	assert_non_null(strstr(body, "# TYPE tocsin_probe_runs_total counter\n"));
	assert_non_null(strstr(body, "# HELP tocsin_check_info Description of a check, "
				     "\"quoted\", with C:\\\\ and\\na line feed.\n"));
	free(body);
	series_registry_free(reg);
}

/* A histogram's three families render as one: HELP and TYPE once, under its own name. */
static void registry_histogram_one_header(void **state)
{
	static const struct metric_desc bucket = {"req_seconds_bucket", "Request time.",
						  METRIC_HISTOGRAM};
	static const struct metric_desc count = {"req_seconds_count", "Request time.",
						 METRIC_HISTOGRAM};
	static const struct metric_desc sum = {"req_seconds_sum", "Request time.",
					       METRIC_HISTOGRAM};
	struct series_registry *reg = series_registry_new();
	struct label le[2] = {{"le", "0.5"}, {"le", "+Inf"}};
	char *body;

	(void)state;
	series_set(series_intern(reg, &bucket, &le[0], 1), 3, 1000);
	series_set(series_intern(reg, &bucket, &le[1], 1), 4, 1000);
	series_set(series_intern(reg, &count, NULL, 0), 4, 1000);
	series_set(series_intern(reg, &sum, NULL, 0), 1.5, 1000);
	body = rendered_registry(reg);
	assert_string_equal(body, "# HELP req_seconds Request time.\n"
				  "# TYPE req_seconds histogram\n"
				  "req_seconds_bucket{le=\"0.5\"} 3\n"
				  "req_seconds_bucket{le=\"+Inf\"} 4\n"
				  "req_seconds_count 4\n"
				  "req_seconds_sum 1.5\n");
	free(body);
	series_registry_free(reg);
}

static void registry_samples_escaped(void **state)
{
	static const char *fragments[] = {
	    "\ntocsin_probe_success{probe=\"Disk Usage C:\\\\\",type=\"http\"} 1\n",
	    "\ntocsin_probe_success{probe=\"laptop 14\\\" R/W\",type=\"tcp\"} 0\n",
	    "\ntocsin_probe_success{probe=\"MSC20\\\\AUCTI-orders\",type=\"http\"} 1\n",
	    "\ntocsin_probe_runs_total{probe=\"MSC20\\\\AUCTI-orders\",type=\"http\"} "
	    "181005683161\n",
	    "\ntocsin_check_info{detail=\"line1\\nline2\",unit=\"Größe\"} 1\n",
	    "\ntocsin_value{probe=\"g1\"} NaN\n",
	    "\ntocsin_value{probe=\"g2\"} +Inf\n",
	    "\ntocsin_value{probe=\"g3\"} -Inf\n",
	    "\ntocsin_value{probe=\"g4\"} -0\n",
	    "\ntocsin_value{mountpoint=\"/srv/test/aaa\\\\b\tc\\nd#e\"} 1e-09\n",
	    "\ntocsin_value 0.3333333333333333\n",
	};
	struct series_registry *reg = probe_registry();
	char *body = rendered_registry(reg);

	for (size_t i = 0; i < sizeof(fragments) / sizeof(fragments[0]); i++) {
		if (strstr(body, fragments[i]) == NULL)
			fail_msg("fragment %s is missing from:\n%s", fragments[i], body);
	}
	/* C's own spellings of the special values are not valid in the format. */
	assert_null(strstr(body, " nan\n"));
	assert_null(strstr(body, " -nan\n"));
	assert_null(strstr(body, " inf\n"));
	assert_null(strstr(body, " -inf\n"));
	free(body);
	series_registry_free(reg);
}

/* A sample longer than one reserved chunk of output is written piece by piece. */
static void registry_long_label_value(void **state)
{
	enum { LENGTH = 20000 };
	struct series_registry *reg = series_registry_new();
	char *value = malloc(LENGTH + 1);
	char *expected = malloc(2 * LENGTH + 64);
	struct label labels[] = {{"detail", value}};
	char *body;
	char *end;

	(void)state;
	assert_non_null(value);
	assert_non_null(expected);
	for (size_t i = 0; i < LENGTH; i++)
		value[i] = i % 100 == 0 ? '"' : 'x';
	value[LENGTH] = '\0';
	set_series(reg, &probe_success, labels, 1, 0.25);
	body = rendered_registry(reg);

	end = stpcpy(expected, "tocsin_probe_success{detail=\"");
	for (size_t i = 0; i < LENGTH; i++)
		end = stpcpy(end, i % 100 == 0 ? "\\\"" : "x");
	strcpy(end, "\"} 0.25\n");
	assert_non_null(strstr(body, expected));
	free(body);
	free(expected);
	free(value);
	series_registry_free(reg);
}

static void registry_stale_series_omitted(void **state)
{
	static const struct metric_desc never_set = {"tocsin_never_set", "Never written.",
						     METRIC_GAUGE};
	struct series_registry *reg = series_registry_new();
	struct label fresh[] = {{"probe", "fresh"}};
	struct label old[] = {{"probe", "old"}};
	struct label unset[] = {{"probe", "unset"}};
	struct series *stale;
	char *body;

	set_series(reg, &probe_success, fresh, 1, 1);
	stale = set_series(reg, &probe_success, old, 1, 0);
	assert_non_null(series_intern(reg, &never_set, unset, 1));
	/* The scheduler marks a series stale when its owner's last run did not write it. */
	stale->stale = true;

	body = rendered_registry(reg);
	assert_string_equal(body, "# HELP tocsin_probe_success Whether the last run of the "
				  "probe succeeded (1) or failed (0).\n"
				  "# TYPE tocsin_probe_success gauge\n"
				  "tocsin_probe_success{probe=\"fresh\"} 1\n");
	free(body);
	series_registry_free(reg);
}

static void registry_empty_renders_nothing(void **state)
{
	struct series_registry *reg = series_registry_new();
	char *body = rendered_registry(reg);

	assert_string_equal(body, "");
	free(body);
	series_registry_free(reg);
}

/* 100,000 series in 10 families: every sample is rendered, each family once. */
static void registry_large_renders_every_series(void **state)
{
	enum { FAMILIES = 10, PER_FAMILY = 10000 };
	struct series_registry *reg = series_registry_new();
	struct metric_desc descs[FAMILIES];
	char names[FAMILIES][32];
	size_t lines = 0;
	char *body;

	for (int f = 0; f < FAMILIES; f++) {
		snprintf(names[f], sizeof(names[f]), "tocsin_load_%d_seconds", f);
		descs[f] = (struct metric_desc){names[f], "Load test gauge.", METRIC_GAUGE};
	}
	/* Interleaved creation, as probes running side by side would do it. */
	for (int i = 0; i < PER_FAMILY; i++) {
		char target[32];

		snprintf(target, sizeof(target), "host-%05d.example.org", i);
		for (int f = 0; f < FAMILIES; f++) {
			struct label labels[] = {{"target", target}};

			set_series(reg, &descs[f], labels, 1, (double)i / 7.0);
		}
	}

	body = rendered_registry(reg);
	for (const char *p = body; *p != '\0'; p++)
		lines += *p == '\n';
	assert_int_equal(lines, FAMILIES * PER_FAMILY + 2 * FAMILIES);
	assert_families_contiguous(body, FAMILIES);
	free(body);
	series_registry_free(reg);
}

/*
 * Runs promtool on `body`. Returns its exit status and stores its output in `output`.
 * promtool exits 1 when the body does not parse and 3 when it parses but a lint rule
 * (such as the _total suffix of counters) fails.
 */
static int promtool_check(const char *body, char *output, size_t size)
{
	char body_path[] = "/tmp/tocsin-exposition-XXXXXX";
	char output_path[] = "/tmp/tocsin-promtool-XXXXXX";
	int body_fd = mkstemp(body_path);
	int output_fd = mkstemp(output_path);
	char command[256];
	ssize_t length;
	int status;

	assert_true(body_fd >= 0);
	assert_true(output_fd >= 0);
	assert_int_equal(write(body_fd, body, strlen(body)), (ssize_t)strlen(body));
	close(body_fd);

	snprintf(command, sizeof(command), PROMTOOL " check metrics < %s > %s 2>&1", body_path,
		 output_path);
	status = system(command);
	length = read(output_fd, output, size - 1);
	output[length > 0 ? length : 0] = '\0';
	close(output_fd);
	unlink(body_path);
	unlink(output_path);

	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void registry_body_passes_promtool(void **state)
{
	struct series_registry *reg;
	char output[4096];
	char *body;
	int status;

	if (access(PROMTOOL, X_OK) != 0) {
		print_message("promtool not found at " PROMTOOL
			      " (Debian package prometheus); skipping\n");
		skip();
	}
	reg = probe_registry();
	body = rendered_registry(reg);
	status = promtool_check(body, output, sizeof(output));
	if (status != 0)
		fail_msg("promtool exited with %d:\n%s\nbody:\n%s", status, output, body);
	free(body);
	series_registry_free(reg);
}

/* A body with a broken escape must fail, or the check above proves nothing. */
static void promtool_rejects_bad_escape(void **state)
{
	char output[4096];

	if (access(PROMTOOL, X_OK) != 0) {
		print_message("promtool not found at " PROMTOOL "; skipping\n");
		skip();
	}
	assert_int_equal(promtool_check("# HELP tocsin_value A value.\n"
					"# TYPE tocsin_value gauge\n"
					"tocsin_value{probe=\"MSC20\\AUCTI\"} 1\n",
					output, sizeof(output)),
			 1);
}

/* A response as the test client saw it. */
struct response {
	struct event_base *base;
	bool done;
	int status;
	char content_type[128];
	char allow[64];
	bool has_content_encoding;
	char body[8192];
	size_t body_length;
};

static void copy_header(struct evkeyvalq *headers, const char *name, char *buf, size_t size)
{
	const char *value = evhttp_find_header(headers, name);

	snprintf(buf, size, "%s", value != NULL ? value : "");
}

static void response_received(struct evhttp_request *req, void *arg)
{
	struct response *resp = arg;

	resp->done = true;
	event_base_loopbreak(resp->base);
	if (req == NULL || evhttp_request_get_response_code(req) == 0) {
		resp->status = -1;
		return;
	}

	struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
	struct evbuffer *body = evhttp_request_get_input_buffer(req);

	resp->status = evhttp_request_get_response_code(req);
	copy_header(headers, "Content-Type", resp->content_type, sizeof(resp->content_type));
	copy_header(headers, "Allow", resp->allow, sizeof(resp->allow));
	resp->has_content_encoding = evhttp_find_header(headers, "Content-Encoding") != NULL;
	resp->body_length = evbuffer_copyout(body, resp->body, sizeof(resp->body) - 1);
	resp->body[resp->body_length] = '\0';
}

static void deadline_reached(evutil_socket_t fd, short events, void *arg)
{
	event_base_loopbreak(arg);
}

/*
 * Sends one request on `conn`, a client connection in the same event base as the server,
 * and runs the loop until the response arrives or 10 seconds pass.
 */
static void fetch_on(struct event_base *base, struct evhttp_connection *conn,
		     enum evhttp_cmd_type method, const char *path, const char *extra_header,
		     const char *extra_value, struct response *resp)
{
	struct timeval limit = {10, 0};
	struct event *deadline = evtimer_new(base, deadline_reached, base);
	struct evhttp_request *req = evhttp_request_new(response_received, resp);

	memset(resp, 0, sizeof(*resp));
	resp->base = base;
	assert_non_null(deadline);
	assert_non_null(req);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "localhost");
	if (extra_header != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req), extra_header,
				  extra_value);
	assert_int_equal(evhttp_make_request(conn, req, method, path), 0);

	evtimer_add(deadline, &limit);
	while (!resp->done && evtimer_pending(deadline, NULL))
		event_base_loop(base, EVLOOP_ONCE);
	event_free(deadline);
	assert_true(resp->done);
}

static struct evhttp_connection *client_connect(struct event_base *base, const char *host,
						uint16_t port)
{
	struct evhttp_connection *conn = evhttp_connection_base_new(base, NULL, host, port);

	assert_non_null(conn);
	evhttp_connection_set_timeout(conn, 5);
	return conn;
}

/* Sends one request on a new connection. */
static void fetch_with_header(struct event_base *base, const char *host, uint16_t port,
			      enum evhttp_cmd_type method, const char *path,
			      const char *extra_header, const char *extra_value,
			      struct response *resp)
{
	struct evhttp_connection *conn = client_connect(base, host, port);

	fetch_on(base, conn, method, path, extra_header, extra_value, resp);
	evhttp_connection_free(conn);
}

static void fetch(struct event_base *base, uint16_t port, enum evhttp_cmd_type method,
		  const char *path, struct response *resp)
{
	fetch_with_header(base, "127.0.0.1", port, method, path, NULL, NULL, resp);
}

struct refresh_probe {
	int calls;
	struct series *gauge;
};

/* Stands in for the daemon's refresh: updates one gauge so the body shows it ran. */
static void refresh_gauge(void *arg)
{
	struct refresh_probe *refresh = arg;

	refresh->calls++;
	series_set(refresh->gauge, (double)refresh->calls, 1700000000000);
}

static void handle_custom(struct evhttp_request *req, void *arg)
{
	evbuffer_add_printf(evhttp_request_get_output_buffer(req), "%s\n", (const char *)arg);
	http_send_reply(req, HTTP_OK, "OK");
}

struct server_fixture {
	struct event_base *base;
	struct series_registry *reg;
	struct http_server *srv;
	struct refresh_probe refresh;
	uint16_t port;
};

static int server_setup(void **state)
{
	static const struct metric_desc refreshes = {"tocsin_refreshes",
						     "Refreshes seen by the test.", METRIC_GAUGE};
	struct server_fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->base = event_base_new();
	assert_non_null(fx->base);
	fx->reg = probe_registry();
	fx->refresh.gauge = series_intern(fx->reg, &refreshes, no_labels, 0);
	assert_non_null(fx->refresh.gauge);
	fx->srv = http_server_new(fx->base, "127.0.0.1", 0, fx->reg, refresh_gauge, &fx->refresh);
	assert_non_null(fx->srv);
	fx->port = http_server_port(fx->srv);
	assert_int_not_equal(fx->port, 0);
	http_server_route(fx->srv, "/custom", handle_custom, "custom route");
	*state = fx;
	return 0;
}

static int server_teardown(void **state)
{
	struct server_fixture *fx = *state;

	http_server_free(fx->srv);
	series_registry_free(fx->reg);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

/* Redirects the log into a pipe; returns the read end. */
static int capture_log(void)
{
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	log_set_fd(fds[1]);
	return fds[0];
}

static void read_log(int fd, char *buf, size_t size)
{
	ssize_t length = read(fd, buf, size - 1);

	buf[length > 0 ? length : 0] = '\0';
	log_set_fd(2);
	close(fd);
}

static void http_metrics_served(void **state)
{
	struct server_fixture *fx = *state;
	struct response resp;

	fetch(fx->base, fx->port, EVHTTP_REQ_GET, "/metrics", &resp);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.content_type, EXPOSITION_CONTENT_TYPE);
	assert_int_equal(fx->refresh.calls, 1);
	assert_non_null(strstr(resp.body, "\ntocsin_refreshes 1\n"));
	assert_non_null(strstr(resp.body, "\ntocsin_value{probe=\"g2\"} +Inf\n"));

	fetch(fx->base, fx->port, EVHTTP_REQ_GET, "/metrics?debug=1", &resp);
	assert_int_equal(resp.status, 200);
	assert_non_null(strstr(resp.body, "\ntocsin_refreshes 2\n"));
}

/* gzip is optional in the format, so a plain body is a valid response to a gzip request. */
static void http_metrics_ignores_gzip(void **state)
{
	struct server_fixture *fx = *state;
	struct response resp;

	fetch_with_header(fx->base, "127.0.0.1", fx->port, EVHTTP_REQ_GET, "/metrics",
			  "Accept-Encoding", "gzip", &resp);
	assert_int_equal(resp.status, 200);
	assert_false(resp.has_content_encoding);
	assert_non_null(strstr(resp.body, "# TYPE tocsin_value gauge\n"));
}

/*
 * A HEAD response must carry no body bytes on the wire: on a keep-alive connection they
 * would be read as the start of the next response, so the GET after it would fail.
 */
static void http_metrics_head_has_no_body(void **state)
{
	struct server_fixture *fx = *state;
	struct evhttp_connection *conn = client_connect(fx->base, "127.0.0.1", fx->port);
	struct response resp;

	fetch_on(fx->base, conn, EVHTTP_REQ_HEAD, "/metrics", NULL, NULL, &resp);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.content_type, EXPOSITION_CONTENT_TYPE);
	assert_int_equal(resp.body_length, 0);
	assert_int_equal(fx->refresh.calls, 0);

	fetch_on(fx->base, conn, EVHTTP_REQ_HEAD, "/nope", NULL, NULL, &resp);
	assert_int_equal(resp.status, 404);
	assert_int_equal(resp.body_length, 0);

	fetch_on(fx->base, conn, EVHTTP_REQ_GET, "/healthz", NULL, NULL, &resp);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body, "ok\n");
	evhttp_connection_free(conn);
}

static void http_metrics_rejects_post(void **state)
{
	struct server_fixture *fx = *state;
	struct response resp;

	fetch(fx->base, fx->port, EVHTTP_REQ_POST, "/metrics", &resp);
	assert_int_equal(resp.status, 405);
	assert_string_equal(resp.allow, "GET, HEAD");
	assert_string_equal(resp.content_type, "text/plain; charset=utf-8");

	fetch(fx->base, fx->port, EVHTTP_REQ_DELETE, "/healthz", &resp);
	assert_int_equal(resp.status, 405);

	/* TRACE is not among the methods the server accepts at all. */
	fetch(fx->base, fx->port, EVHTTP_REQ_TRACE, "/metrics", &resp);
	assert_int_equal(resp.status, 501);
	assert_int_equal(fx->refresh.calls, 0);
}

static void http_healthz_ok(void **state)
{
	struct server_fixture *fx = *state;
	struct response resp;

	fetch(fx->base, fx->port, EVHTTP_REQ_GET, "/healthz", &resp);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.content_type, "text/plain; charset=utf-8");
	assert_string_equal(resp.body, "ok\n");
}

static void http_index_lists_endpoints(void **state)
{
	struct server_fixture *fx = *state;
	struct response resp;

	fetch(fx->base, fx->port, EVHTTP_REQ_GET, "/", &resp);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.content_type, "text/plain; charset=utf-8");
	assert_non_null(strstr(resp.body, "/metrics"));
	assert_non_null(strstr(resp.body, "/healthz"));
	assert_non_null(strstr(resp.body, "/custom"));
}

static void http_unknown_path_not_found(void **state)
{
	static const char *paths[] = {"/nope", "/metrics/", "/METRICS", "/metrics%00x"};
	struct server_fixture *fx = *state;
	struct response resp;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		fetch(fx->base, fx->port, EVHTTP_REQ_GET, paths[i], &resp);
		if (i < 3)
			assert_int_equal(resp.status, 404);
		else
			assert_int_equal(resp.status, 400);
		assert_string_equal(resp.content_type, "text/plain; charset=utf-8");
		assert_true(resp.body_length > 0);
	}
	assert_int_equal(fx->refresh.calls, 0);
}

static void http_added_route_served(void **state)
{
	struct server_fixture *fx = *state;
	struct response resp;

	fetch(fx->base, fx->port, EVHTTP_REQ_GET, "/custom", &resp);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body, "custom route\n");

	/* The percent-encoded form names the same path. */
	fetch(fx->base, fx->port, EVHTTP_REQ_GET, "/cus%74om", &resp);
	assert_int_equal(resp.status, 200);
}

static void http_route_replaced(void **state)
{
	struct server_fixture *fx = *state;
	struct response resp;
	char log[2048];
	int log_fd = capture_log();

	http_server_route(fx->srv, "/custom", handle_custom, "replacement");
	read_log(log_fd, log, sizeof(log));
	assert_non_null(strstr(log, "level=warn"));
	assert_non_null(strstr(log, "/custom"));

	fetch(fx->base, fx->port, EVHTTP_REQ_GET, "/custom", &resp);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body, "replacement\n");
}

static void http_stats_counted(void **state)
{
	struct server_fixture *fx = *state;
	struct http_stats stats;
	struct response resp;

	http_server_stats(fx->srv, &stats);
	assert_int_equal(stats.requests, 0);
	assert_int_equal(stats.scrapes, 0);

	fetch(fx->base, fx->port, EVHTTP_REQ_GET, "/metrics", &resp);
	fetch(fx->base, fx->port, EVHTTP_REQ_GET, "/healthz", &resp);
	fetch(fx->base, fx->port, EVHTTP_REQ_GET, "/nope", &resp);
	fetch(fx->base, fx->port, EVHTTP_REQ_POST, "/metrics", &resp);

	http_server_stats(fx->srv, &stats);
	assert_int_equal(stats.requests, 4);
	assert_int_equal(stats.scrapes, 1);
	assert_true(stats.last_scrape_seconds > 0.0);
	assert_true(stats.last_scrape_seconds < 10.0);
}

static void http_bind_in_use_fails(void **state)
{
	struct server_fixture *fx = *state;
	char expected[64];
	char log[2048];
	int log_fd = capture_log();
	struct http_server *second =
	    http_server_new(fx->base, "127.0.0.1", fx->port, fx->reg, NULL, NULL);

	read_log(log_fd, log, sizeof(log));
	assert_null(second);
	snprintf(expected, sizeof(expected), "listen=127.0.0.1:%u", fx->port);
	if (strstr(log, expected) == NULL || strstr(log, "--listen") == NULL ||
	    strstr(log, "level=error") == NULL)
		fail_msg("the bind error does not name %s and --listen: %s", expected, log);
}

static void http_bind_unusable_host_fails(void **state)
{
	char log[2048];
	struct event_base *base = event_base_new();
	int log_fd = capture_log();
	struct http_server *srv =
	    http_server_new(base, "no such host.invalid", 0, NULL, NULL, NULL);

	read_log(log_fd, log, sizeof(log));
	assert_null(srv);
	assert_non_null(strstr(log, "level=error"));
	assert_non_null(strstr(log, "no such host.invalid"));
	assert_non_null(strstr(log, "127.0.0.1"));

	/* 192.0.2.1 (TEST-NET-1) is assigned to no interface, so bind() fails locally. */
	log_fd = capture_log();
	srv = http_server_new(base, "192.0.2.1", 0, NULL, NULL, NULL);
	read_log(log_fd, log, sizeof(log));
	assert_null(srv);
	assert_non_null(strstr(log, "listen=192.0.2.1:0"));
	assert_non_null(strstr(log, "--listen"));
	event_base_free(base);
}

static void http_ipv6_loopback_served(void **state)
{
	static const char *hosts[] = {"::1", "[::1]"};
	struct event_base *base = event_base_new();

	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		struct response resp;
		struct http_server *srv = http_server_new(base, hosts[i], 0, NULL, NULL, NULL);

		if (srv == NULL && i == 0) {
			event_base_free(base);
			print_message("IPv6 loopback not available; skipping\n");
			skip();
		}
		assert_non_null(srv);
		fetch_with_header(base, "::1", http_server_port(srv), EVHTTP_REQ_GET, "/healthz",
				  NULL, NULL, &resp);
		assert_int_equal(resp.status, 200);
		assert_string_equal(resp.body, "ok\n");

		/* A server without a registry serves an empty body. */
		fetch_with_header(base, "::1", http_server_port(srv), EVHTTP_REQ_GET, "/metrics",
				  NULL, NULL, &resp);
		assert_int_equal(resp.status, 200);
		assert_int_equal(resp.body_length, 0);
		http_server_free(srv);
	}
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(label_value_escaping),
	    cmocka_unit_test(label_value_null_is_empty),
	    cmocka_unit_test(help_escaping_keeps_quotes),
	    cmocka_unit_test(value_formatting),
	    cmocka_unit_test(value_formatting_round_trips),
	    cmocka_unit_test(value_formatting_integers_match_printf),
	    cmocka_unit_test(value_formatting_decimals_match_printf),
	    cmocka_unit_test(metric_name_validation),
	    cmocka_unit_test(label_name_validation),
	    cmocka_unit_test(registry_families_contiguous),
	    cmocka_unit_test(registry_samples_escaped),
	    cmocka_unit_test(registry_long_label_value),
	    cmocka_unit_test(registry_histogram_one_header),
	    cmocka_unit_test(registry_stale_series_omitted),
	    cmocka_unit_test(registry_empty_renders_nothing),
	    cmocka_unit_test(registry_large_renders_every_series),
	    cmocka_unit_test(registry_body_passes_promtool),
	    cmocka_unit_test(promtool_rejects_bad_escape),
	    cmocka_unit_test_setup_teardown(http_metrics_served, server_setup, server_teardown),
	    cmocka_unit_test_setup_teardown(http_metrics_ignores_gzip, server_setup,
					    server_teardown),
	    cmocka_unit_test_setup_teardown(http_metrics_head_has_no_body, server_setup,
					    server_teardown),
	    cmocka_unit_test_setup_teardown(http_metrics_rejects_post, server_setup,
					    server_teardown),
	    cmocka_unit_test_setup_teardown(http_healthz_ok, server_setup, server_teardown),
	    cmocka_unit_test_setup_teardown(http_index_lists_endpoints, server_setup,
					    server_teardown),
	    cmocka_unit_test_setup_teardown(http_unknown_path_not_found, server_setup,
					    server_teardown),
	    cmocka_unit_test_setup_teardown(http_added_route_served, server_setup, server_teardown),
	    cmocka_unit_test_setup_teardown(http_route_replaced, server_setup, server_teardown),
	    cmocka_unit_test_setup_teardown(http_stats_counted, server_setup, server_teardown),
	    cmocka_unit_test_setup_teardown(http_bind_in_use_fails, server_setup, server_teardown),
	    cmocka_unit_test(http_bind_unusable_host_fails),
	    cmocka_unit_test(http_ipv6_loopback_served),
	};

	/* The server logs one info line per start; only errors matter here. */
	log_set_level(LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
