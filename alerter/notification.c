/*
 * Notifications (see notification.h): the labels common to a group's alerts, the RFC 3339
 * form of times, and the stored JSON form. The JSON form contains every field, label sets
 * as objects in label order, the 64-bit fingerprint as 16 hex digits (many JSON readers
 * lose the bits of a number past 2^53) and times as integer milliseconds. Writing a
 * parsed notification gives back the same bytes.
 */
#include "alerter/notification.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "collector/log.h"
#include "collector/statedb.h"
#include "collector/utf8.h"
#include "collector/xalloc.h"

/* ---- common labels ---- */

static const char *label_lookup(const struct label *v, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(v[i].name, name) == 0)
			return v[i].value;
	}
	return NULL;
}

static int compare_labels(const void *a, const void *b)
{
	const struct label *x = a;
	const struct label *y = b;

	return strcmp(x->name, y->name);
}

/*
 * Collects the pairs of the first alert's set that every other alert has with the same
 * value, from the annotations when `annotations` is true and from the labels otherwise.
 */
static void common_pairs(const struct notification *n, bool annotations, struct label **out,
			 size_t *count)
{
	const struct notification_alert *first;
	const struct label *candidates;
	size_t candidate_count;
	struct label *result = NULL;
	size_t result_count = 0;

	*out = NULL;
	*count = 0;
	if (n->alert_count == 0)
		return;
	first = &n->alerts[0];
	candidates = annotations ? first->annotations : first->labels;
	candidate_count = annotations ? first->annotation_count : first->label_count;
	if (candidate_count == 0)
		return;
	result = xcalloc(candidate_count, sizeof(*result));
	for (size_t i = 0; i < candidate_count; i++) {
		bool common = true;

		for (size_t a = 1; a < n->alert_count && common; a++) {
			const struct notification_alert *alert = &n->alerts[a];
			const char *value =
			    annotations ? label_lookup(alert->annotations, alert->annotation_count,
						       candidates[i].name)
					: label_lookup(alert->labels, alert->label_count,
						       candidates[i].name);

			common = value != NULL && strcmp(value, candidates[i].value) == 0;
		}
		if (common)
			result[result_count++] = candidates[i];
	}
	if (result_count == 0) {
		free(result);
		return;
	}
	/* The sets are sorted by contract, but sorting again costs little and protects callers. */
	qsort(result, result_count, sizeof(*result), compare_labels);
	*out = result;
	*count = result_count;
}

void notification_common_labels(const struct notification *n, struct label **out, size_t *count)
{
	common_pairs(n, false, out, count);
}

void notification_common_annotations(const struct notification *n, struct label **out,
				     size_t *count)
{
	common_pairs(n, true, out, count);
}

void notification_labels_release(struct label *v)
{
	free(v);
}

/* ---- times ---- */

const char *notification_time(int64_t ms, char *buf, size_t size)
{
	int64_t seconds = ms / 1000;
	int64_t millis = ms % 1000;
	char year_text[24];
	struct tm tm;
	time_t t;
	long year;

	if (size == 0)
		return buf;
	if (ms == 0) {
		snprintf(buf, size, "0001-01-01T00:00:00Z");
		return buf;
	}
	/* C division truncates toward zero, but times before 1970 need the floor. */
	if (millis < 0) {
		millis += 1000;
		seconds -= 1;
	}
	t = (time_t)seconds;
	if (gmtime_r(&t, &tm) == NULL) {
		/* Not reached for 64-bit time_t: every int64 ms value fits in struct tm. */
		snprintf(buf, size, "invalid time %" PRId64 " ms", ms);
		return buf;
	}
	year = (long)tm.tm_year + 1900;
	/* RFC 3339 has four-digit years. Wider years are written in full, and years before 1 BC
	 * get a minus sign. */
	if (year < 0) {
		snprintf(year_text, sizeof year_text, "-%04ld", -year);
	} else {
		snprintf(year_text, sizeof year_text, "%04ld", year);
	}
	if (millis != 0) {
		snprintf(buf, size, "%s-%02d-%02dT%02d:%02d:%02d.%03dZ", year_text, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)millis);
	} else {
		snprintf(buf, size, "%s-%02d-%02dT%02d:%02d:%02dZ", year_text, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	}
	return buf;
}

/* ---- to JSON ---- */

static void out_of_memory(void)
{
	log_fatal("notification", "out of memory building a notification's JSON form");
}

/* A JSON string for text, or null for NULL. Bytes that are not UTF-8 become '?'. */
static json_t *text_json(const char *text)
{
	char *copy;
	json_t *s;

	if (text == NULL)
		return json_null();
	if (utf8_valid(text))
		return json_string(text);
	copy = xstrdup(text);
	utf8_repair(copy);
	s = json_string(copy);
	free(copy);
	return s;
}

static void set_member(json_t *object, const char *key, json_t *value)
{
	if (value == NULL || json_object_set_new(object, key, value) < 0)
		out_of_memory();
}

static json_t *labels_json(const struct label *v, size_t count)
{
	json_t *object = json_object();

	if (object == NULL)
		out_of_memory();
	for (size_t i = 0; i < count; i++) {
		json_t *name = text_json(v[i].name);

		if (name == NULL)
			out_of_memory();
		set_member(object, json_string_value(name), text_json(v[i].value));
		json_decref(name);
	}
	return object;
}

static json_t *alert_json(const struct notification_alert *a)
{
	json_t *object = json_object();
	char fingerprint[17];

	if (object == NULL)
		out_of_memory();
	snprintf(fingerprint, sizeof fingerprint, "%016" PRIx64, a->fingerprint);
	set_member(object, "labels", labels_json(a->labels, a->label_count));
	set_member(object, "annotations", labels_json(a->annotations, a->annotation_count));
	set_member(object, "firing", json_boolean(a->firing));
	set_member(object, "starts_at_ms", json_integer(a->starts_at_ms));
	set_member(object, "ends_at_ms", json_integer(a->ends_at_ms));
	set_member(object, "condition_at_ms", json_integer(a->condition_at_ms));
	set_member(object, "fingerprint", json_string(fingerprint));
	set_member(object, "generator_url", text_json(a->generator_url));
	return object;
}

char *notification_to_json(const struct notification *n)
{
	json_t *object = json_object();
	json_t *alerts = json_array();
	char *text;

	if (object == NULL || alerts == NULL)
		out_of_memory();
	set_member(object, "receiver", text_json(n->receiver != NULL ? n->receiver : ""));
	set_member(object, "group_key", text_json(n->group_key != NULL ? n->group_key : ""));
	/* NOTE: a sequence above INT64_MAX would be written negative. Sequences count up
	 * from 1 per group key, so none gets there. */
	set_member(object, "sequence", json_integer((json_int_t)n->sequence));
	set_member(object, "idempotency_key",
		   text_json(n->idempotency_key != NULL ? n->idempotency_key : ""));
	set_member(object, "group_labels", labels_json(n->group_labels, n->group_label_count));
	set_member(object, "firing", json_boolean(n->firing));
	for (size_t i = 0; i < n->alert_count; i++) {
		if (json_array_append_new(alerts, alert_json(&n->alerts[i])) < 0)
			out_of_memory();
	}
	set_member(object, "alerts", alerts);
	set_member(object, "truncated_alerts", json_integer((json_int_t)n->truncated_alerts));
	set_member(object, "external_url", text_json(n->external_url));
	set_member(object, "created_ms", json_integer(n->created_ms));
	text = json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(object);
	if (text == NULL)
		out_of_memory();
	/* jansson allocates with malloc() unless json_set_alloc_funcs() replaced it. */
	return text;
}

/* ---- from JSON ---- */

/* The path of a value in the document, for messages: "alerts[2].labels". */
struct json_path {
	char text[96];
};

static void path_member(struct json_path *out, const char *prefix, const char *key)
{
	snprintf(out->text, sizeof out->text, "%s%s%s", prefix, prefix[0] != '\0' ? "." : "", key);
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a real number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "an unknown value";
}

static int fail(char **error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(char **error, const char *fmt, ...)
{
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	*error = xstrdup(message);
	return -1;
}

/* Fetches a member that must be present. `prefix` is the path of `object`. */
static json_t *member(const json_t *object, const char *prefix, const char *key, char **error)
{
	json_t *v = json_object_get(object, key);
	struct json_path path;

	if (v == NULL) {
		path_member(&path, prefix, key);
		fail(error, "%s: missing", path.text);
	}
	return v;
}

/* Reads a string member into *out (allocated). A null gives NULL when `nullable`. */
static int read_string(const json_t *object, const char *prefix, const char *key, bool nullable,
		       char **out, char **error)
{
	json_t *v = member(object, prefix, key, error);
	struct json_path path;

	if (v == NULL)
		return -1;
	if (nullable && json_is_null(v)) {
		*out = NULL;
		return 0;
	}
	if (!json_is_string(v)) {
		path_member(&path, prefix, key);
		return fail(error, "%s: expected a string%s, got %s", path.text,
			    nullable ? " or null" : "", json_kind(v));
	}
	*out = xstrdup(json_string_value(v));
	return 0;
}

/* Reads an integer member of at least `min`. */
static int read_integer(const json_t *object, const char *prefix, const char *key, int64_t min,
			int64_t *out, char **error)
{
	json_t *v = member(object, prefix, key, error);
	struct json_path path;

	if (v == NULL)
		return -1;
	path_member(&path, prefix, key);
	if (!json_is_integer(v))
		return fail(error, "%s: expected an integer, got %s", path.text, json_kind(v));
	if (json_integer_value(v) < min) {
		return fail(error, "%s: %" PRId64 " is below the minimum %" PRId64, path.text,
			    (int64_t)json_integer_value(v), min);
	}
	*out = json_integer_value(v);
	return 0;
}

static int read_boolean(const json_t *object, const char *prefix, const char *key, bool *out,
			char **error)
{
	json_t *v = member(object, prefix, key, error);
	struct json_path path;

	if (v == NULL)
		return -1;
	if (!json_is_boolean(v)) {
		path_member(&path, prefix, key);
		return fail(error, "%s: expected true or false, got %s", path.text, json_kind(v));
	}
	*out = json_is_true(v);
	return 0;
}

/* Reads an object of strings into a label array sorted by name. */
static int read_labels(const json_t *object, const char *prefix, const char *key,
		       struct label **out, size_t *count, char **error)
{
	json_t *v = member(object, prefix, key, error);
	struct json_path path;
	const char *bad_name;

	*out = NULL;
	*count = 0;
	if (v == NULL)
		return -1;
	if (statedb_labels_from_json(v, out, count, &bad_name) == 0)
		return 0;
	path_member(&path, prefix, key);
	if (bad_name == NULL) {
		return fail(error, "%s: expected an object of strings, got %s", path.text,
			    json_kind(v));
	}
	return fail(error, "%s: expected an object of strings, but \"%s\" is %s", path.text,
		    bad_name, json_kind(json_object_get(v, bad_name)));
}

/* Parses exactly 16 hex digits. */
static int parse_fingerprint(const char *text, uint64_t *out)
{
	uint64_t v = 0;

	if (strlen(text) != 16)
		return -1;
	for (const char *p = text; *p != '\0'; p++) {
		int digit;

		if (*p >= '0' && *p <= '9') {
			digit = *p - '0';
		} else if (*p >= 'a' && *p <= 'f') {
			digit = *p - 'a' + 10;
		} else if (*p >= 'A' && *p <= 'F') {
			digit = *p - 'A' + 10;
		} else {
			return -1;
		}
		v = v << 4 | (uint64_t)digit;
	}
	*out = v;
	return 0;
}

static void alert_clear(struct notification_alert *a)
{
	statedb_labels_free(a->labels, a->label_count);
	statedb_labels_free(a->annotations, a->annotation_count);
	free(a->generator_url);
}

static int read_alert(const json_t *object, size_t index, struct notification_alert *a,
		      char **error)
{
	char prefix[32];
	char *fingerprint = NULL;

	snprintf(prefix, sizeof prefix, "alerts[%zu]", index);
	if (!json_is_object(object))
		return fail(error, "%s: expected an object, got %s", prefix, json_kind(object));
	if (read_labels(object, prefix, "labels", &a->labels, &a->label_count, error) < 0 ||
	    read_labels(object, prefix, "annotations", &a->annotations, &a->annotation_count,
			error) < 0 ||
	    read_boolean(object, prefix, "firing", &a->firing, error) < 0 ||
	    read_integer(object, prefix, "starts_at_ms", INT64_MIN, &a->starts_at_ms, error) < 0 ||
	    read_integer(object, prefix, "ends_at_ms", INT64_MIN, &a->ends_at_ms, error) < 0 ||
	    read_integer(object, prefix, "condition_at_ms", INT64_MIN, &a->condition_at_ms, error) <
		0 ||
	    read_string(object, prefix, "fingerprint", false, &fingerprint, error) < 0 ||
	    read_string(object, prefix, "generator_url", true, &a->generator_url, error) < 0)
		goto bad;
	if (parse_fingerprint(fingerprint, &a->fingerprint) < 0) {
		fail(error, "%s.fingerprint: expected 16 hex digits, got \"%s\"", prefix,
		     fingerprint);
		goto bad;
	}
	free(fingerprint);
	return 0;

bad:
	free(fingerprint);
	return -1;
}

static int read_alerts(const json_t *object, struct notification *n, char **error)
{
	json_t *alerts = member(object, "", "alerts", error);
	size_t count;

	if (alerts == NULL)
		return -1;
	if (!json_is_array(alerts))
		return fail(error, "alerts: expected an array, got %s", json_kind(alerts));
	count = json_array_size(alerts);
	if (count == 0)
		return 0;
	n->alerts = xcalloc(count, sizeof(*n->alerts));
	for (size_t i = 0; i < count; i++) {
		/* Counted before reading, so notification_free() clears a half-read alert. */
		n->alert_count = i + 1;
		if (read_alert(json_array_get(alerts, i), i, &n->alerts[i], error) < 0)
			return -1;
	}
	return 0;
}

static int read_notification(const json_t *object, struct notification *n, char **error)
{
	int64_t sequence;
	int64_t truncated;

	if (read_string(object, "", "receiver", false, &n->receiver, error) < 0 ||
	    read_string(object, "", "group_key", false, &n->group_key, error) < 0 ||
	    read_integer(object, "", "sequence", 0, &sequence, error) < 0 ||
	    read_string(object, "", "idempotency_key", false, &n->idempotency_key, error) < 0 ||
	    read_labels(object, "", "group_labels", &n->group_labels, &n->group_label_count,
			error) < 0 ||
	    read_boolean(object, "", "firing", &n->firing, error) < 0 ||
	    read_alerts(object, n, error) < 0 ||
	    read_integer(object, "", "truncated_alerts", 0, &truncated, error) < 0 ||
	    read_string(object, "", "external_url", true, &n->external_url, error) < 0 ||
	    read_integer(object, "", "created_ms", INT64_MIN, &n->created_ms, error) < 0)
		return -1;
	n->sequence = (uint64_t)sequence;
	n->truncated_alerts = (size_t)truncated;
	return 0;
}

struct notification *notification_from_json(const char *json, char **error)
{
	struct notification *n;
	json_error_t jerr;
	json_t *root;

	*error = NULL;
	if (json == NULL) {
		fail(error, "no JSON text");
		return NULL;
	}
	root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		fail(error, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
		     jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		fail(error, "expected a JSON object at the top level, got %s", json_kind(root));
		json_decref(root);
		return NULL;
	}
	n = xcalloc(1, sizeof(*n));
	if (read_notification(root, n, error) < 0) {
		notification_free(n);
		n = NULL;
	}
	json_decref(root);
	return n;
}

void notification_free(struct notification *n)
{
	if (n == NULL)
		return;
	free(n->receiver);
	free(n->group_key);
	free(n->idempotency_key);
	statedb_labels_free(n->group_labels, n->group_label_count);
	for (size_t i = 0; i < n->alert_count; i++)
		alert_clear(&n->alerts[i]);
	free(n->alerts);
	free(n->external_url);
	free(n);
}
