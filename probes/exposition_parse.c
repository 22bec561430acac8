/*
 * The text exposition parser; see exposition_parse.h. It reads one line at a time, keeps
 * the families seen so far (for their HELP text and TYPE), and indexes metric names and
 * series in small open-addressing tables so that large documents parse in linear time.
 */
#include "probes/exposition_parse.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/hash.h"
#include "collector/xalloc.h"

enum family_type {
	FAMILY_UNTYPED,
	FAMILY_COUNTER,
	FAMILY_GAUGE,
	FAMILY_HISTOGRAM,
	FAMILY_SUMMARY,
};

struct family {
	char *name;
	char *help;
	enum family_type type;
	bool help_seen;
	bool type_seen;
	bool samples_seen;
};

/* Open addressing over indexes into an array; slots hold index + 1, 0 is empty. */
struct index_table {
	size_t *slots;
	uint64_t *hashes;
	size_t capacity; /* a power of two */
	size_t count;
};

struct parser {
	const char *line; /* current line, not NUL-terminated */
	size_t line_length;
	size_t line_number;
	size_t pos; /* in the current line */
	struct exposition_doc *doc;
	struct family *families;
	size_t family_count;
	size_t family_capacity;
	struct index_table family_index;
	struct index_table metric_index;
	struct index_table series_index;
	char *error;
	size_t error_size;
};

static void index_free(struct index_table *t)
{
	free(t->slots);
	free(t->hashes);
	memset(t, 0, sizeof(*t));
}

static void index_insert_slot(struct index_table *t, uint64_t hash, size_t value)
{
	size_t mask = t->capacity - 1;

	for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
		if (t->slots[i] == 0) {
			t->slots[i] = value + 1;
			t->hashes[i] = hash;
			return;
		}
	}
}

static void index_add(struct index_table *t, uint64_t hash, size_t value)
{
	if ((t->count + 1) * 2 > t->capacity) {
		struct index_table bigger = {0};

		bigger.capacity = t->capacity ? t->capacity * 2 : 64;
		bigger.slots = xcalloc(bigger.capacity, sizeof(*bigger.slots));
		bigger.hashes = xcalloc(bigger.capacity, sizeof(*bigger.hashes));
		for (size_t i = 0; i < t->capacity; i++) {
			if (t->slots[i] != 0)
				index_insert_slot(&bigger, t->hashes[i], t->slots[i] - 1);
		}
		bigger.count = t->count;
		index_free(t);
		*t = bigger;
	}
	index_insert_slot(t, hash, value);
	t->count++;
}

/*
 * Calls match(value, arg) for each entry with `hash`; returns the first value it accepts,
 * or SIZE_MAX.
 */
static size_t index_find(const struct index_table *t, uint64_t hash,
			 bool (*match)(size_t value, const void *arg), const void *arg)
{
	size_t mask = t->capacity - 1;

	if (t->capacity == 0)
		return SIZE_MAX;
	for (size_t i = (size_t)hash & mask; t->slots[i] != 0; i = (i + 1) & mask) {
		if (t->hashes[i] == hash && match(t->slots[i] - 1, arg))
			return t->slots[i] - 1;
	}
	return SIZE_MAX;
}

static int fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parser *ps, const char *fmt, ...)
{
	char message[EXPOSITION_PARSE_ERROR_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	snprintf(ps->error, ps->error_size, "line %zu, column %zu: %s", ps->line_number,
		 ps->pos + 1, message);
	return -1;
}

static bool at_end(const struct parser *ps)
{
	return ps->pos >= ps->line_length;
}

static char peek(const struct parser *ps)
{
	return at_end(ps) ? '\0' : ps->line[ps->pos];
}

static void skip_blanks(struct parser *ps)
{
	while (peek(ps) == ' ' || peek(ps) == '\t')
		ps->pos++;
}

static bool is_name_char(char c, bool first, bool colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (c == ':')
		return colon;
	return !first && c >= '0' && c <= '9';
}

/* Reads a metric name (colon allowed) or label name at the current position. */
static char *read_name(struct parser *ps, bool colon)
{
	size_t start = ps->pos;

	while (!at_end(ps) && is_name_char(peek(ps), ps->pos == start, colon))
		ps->pos++;
	if (ps->pos == start)
		return NULL;
	return xstrndup(ps->line + start, ps->pos - start);
}

/* Reads the next run of non-blank characters. */
static char *read_token(struct parser *ps)
{
	size_t start = ps->pos;

	while (!at_end(ps) && peek(ps) != ' ' && peek(ps) != '\t')
		ps->pos++;
	return xstrndup(ps->line + start, ps->pos - start);
}

static bool family_match(size_t value, const void *arg)
{
	const struct parser *ps = ((const void *const *)arg)[0];
	const char *name = ((const void *const *)arg)[1];

	return strcmp(ps->families[value].name, name) == 0;
}

static struct family *family_find(struct parser *ps, const char *name)
{
	const void *arg[2] = {ps, name};
	size_t i =
	    index_find(&ps->family_index, hash_string(HASH_FNV_OFFSET, name), family_match, arg);

	return i == SIZE_MAX ? NULL : &ps->families[i];
}

static struct family *family_add(struct parser *ps, const char *name)
{
	struct family *f;

	ps->families = xreallocarray_grow(ps->families, &ps->family_capacity, ps->family_count + 1,
					  sizeof(*ps->families));
	f = &ps->families[ps->family_count];
	memset(f, 0, sizeof(*f));
	f->name = xstrdup(name);
	f->help = xstrdup("");
	index_add(&ps->family_index, hash_string(HASH_FNV_OFFSET, name), ps->family_count);
	ps->family_count++;
	return f;
}

static struct family *family_get(struct parser *ps, const char *name)
{
	struct family *f = family_find(ps, name);

	return f != NULL ? f : family_add(ps, name);
}

/* Unescapes HELP text: \\ and \n; any other backslash sequence is an error. */
static int read_help(struct parser *ps, char **out)
{
	char *help = xmalloc(ps->line_length - ps->pos + 1);
	size_t n = 0;

	while (!at_end(ps)) {
		char c = ps->line[ps->pos];

		if (c == '\\') {
			char next = ps->pos + 1 < ps->line_length ? ps->line[ps->pos + 1] : '\0';

			if (next != '\\' && next != 'n') {
				free(help);
				return fail(ps, "invalid escape sequence in HELP text; only \\\\ "
						"and \\n are allowed");
			}
			c = next == 'n' ? '\n' : '\\';
			ps->pos++;
		}
		help[n++] = c;
		ps->pos++;
	}
	help[n] = '\0';
	*out = help;
	return 0;
}

static int parse_type_word(const char *word, enum family_type *out)
{
	static const struct {
		const char *word;
		enum family_type type;
	} types[] = {
	    {"counter", FAMILY_COUNTER},     {"gauge", FAMILY_GAUGE},
	    {"histogram", FAMILY_HISTOGRAM}, {"summary", FAMILY_SUMMARY},
	    {"untyped", FAMILY_UNTYPED},
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(types[i].word, word) == 0) {
			*out = types[i].type;
			return 0;
		}
	}
	return -1;
}

/* A line starting with '#': HELP and TYPE are read, every other comment is skipped. */
static int parse_comment(struct parser *ps)
{
	char *keyword;
	char *name;
	struct family *f;
	bool is_help;
	int rc = 0;

	ps->pos++;
	skip_blanks(ps);
	keyword = read_token(ps);
	is_help = strcmp(keyword, "HELP") == 0;
	if (!is_help && strcmp(keyword, "TYPE") != 0) {
		free(keyword);
		return 0;
	}
	free(keyword);
	skip_blanks(ps);
	name = read_name(ps, true);
	if (name == NULL)
		return fail(ps, "expected a metric name after %s", is_help ? "HELP" : "TYPE");
	if (!at_end(ps) && peek(ps) != ' ' && peek(ps) != '\t') {
		free(name);
		return fail(ps, "invalid character '%c' in metric name", peek(ps));
	}
	f = family_get(ps, name);
	free(name);
	skip_blanks(ps);

	if (is_help) {
		char *help = NULL;

		if (f->help_seen)
			return fail(ps, "second HELP line for %s", f->name);
		if (read_help(ps, &help) < 0)
			return -1;
		free(f->help);
		f->help = help;
		f->help_seen = true;
		return 0;
	}

	if (f->type_seen)
		return fail(ps, "second TYPE line for %s", f->name);
	if (f->samples_seen)
		return fail(ps, "TYPE line for %s after its samples", f->name);
	keyword = read_token(ps);
	if (parse_type_word(keyword, &f->type) < 0)
		rc = fail(ps,
			  "unknown type '%s'; expected counter, gauge, histogram, summary "
			  "or untyped",
			  keyword);
	free(keyword);
	if (rc == 0) {
		skip_blanks(ps);
		if (!at_end(ps))
			rc = fail(ps, "unexpected text after the type");
	}
	f->type_seen = true;
	return rc;
}

/* Reads a quoted label value with \\, \" and \n escapes. */
static int read_label_value(struct parser *ps, char **out)
{
	char *value = xmalloc(ps->line_length - ps->pos + 1);
	size_t n = 0;

	ps->pos++; /* the opening quote */
	for (;;) {
		char c;

		if (at_end(ps)) {
			free(value);
			return fail(ps, "label value has no closing quote");
		}
		c = ps->line[ps->pos];
		if (c == '"')
			break;
		if (c == '\\') {
			char next = ps->pos + 1 < ps->line_length ? ps->line[ps->pos + 1] : '\0';

			if (next != '\\' && next != '"' && next != 'n') {
				free(value);
				return fail(ps, "invalid escape sequence in label value; only "
						"\\\\, \\\" and \\n are allowed");
			}
			c = next == 'n' ? '\n' : next;
			ps->pos++;
		}
		value[n++] = c;
		ps->pos++;
	}
	ps->pos++;
	value[n] = '\0';
	*out = value;
	return 0;
}

static void labels_free(struct label *labels, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free((char *)labels[i].name);
		free((char *)labels[i].value);
	}
	free(labels);
}

/* Reads {name="value",...} at the current '{' into smp. */
static int parse_labels(struct parser *ps, struct exposition_sample *smp)
{
	size_t capacity = 0;

	ps->pos++;
	for (;;) {
		size_t name_start;
		char *name;
		char *value = NULL;

		skip_blanks(ps);
		if (peek(ps) == '}')
			break;
		name_start = ps->pos;
		name = read_name(ps, false);
		if (name == NULL)
			return fail(ps, "expected a label name or '}'");
		for (size_t i = 0; i < smp->label_count; i++) {
			if (strcmp(smp->labels[i].name, name) == 0) {
				free(name);
				ps->pos = name_start;
				return fail(ps, "label %s repeated", smp->labels[i].name);
			}
		}
		skip_blanks(ps);
		if (peek(ps) != '=') {
			free(name);
			return fail(ps, "expected '=' after label name");
		}
		ps->pos++;
		skip_blanks(ps);
		if (peek(ps) != '"') {
			free(name);
			return fail(ps, "expected '\"' to start the label value");
		}
		if (read_label_value(ps, &value) < 0) {
			free(name);
			return -1;
		}
		smp->labels = xreallocarray_grow(smp->labels, &capacity, smp->label_count + 1,
						 sizeof(*smp->labels));
		smp->labels[smp->label_count++] = (struct label){name, value};
		skip_blanks(ps);
		if (peek(ps) == ',') {
			ps->pos++;
			continue;
		}
		if (peek(ps) != '}')
			return fail(ps, "expected ',' or '}' after a label value");
	}
	ps->pos++;
	return 0;
}

/* Parses a sample value: a decimal or exponent number, NaN, Inf, +Inf or -Inf. */
static int parse_value(struct parser *ps, double *out)
{
	size_t start = ps->pos;
	char *token = read_token(ps);
	char *end;
	const char *digits = token + (token[0] == '+' || token[0] == '-');
	int rc = 0;

	if (*token == '\0') {
		rc = fail(ps, "expected a sample value");
	} else if (strcmp(token, "NaN") == 0) {
		*out = NAN;
	} else if (strcmp(digits, "Inf") == 0) {
		*out = token[0] == '-' ? -INFINITY : INFINITY;
	} else {
		*out = strtod(token, &end);
		/* strtod also reads hexadecimal, "infinity" and "nan(...)": not numbers here. */
		if (*end != '\0' || !((digits[0] >= '0' && digits[0] <= '9') || digits[0] == '.') ||
		    strpbrk(token, "xX") != NULL) {
			ps->pos = start;
			rc = fail(ps, "invalid sample value '%s'", token);
		}
	}
	free(token);
	return rc;
}

/* Parses an optional timestamp in milliseconds, which is ignored. */
static int parse_timestamp(struct parser *ps)
{
	size_t start = ps->pos;
	size_t digits = 0;

	if (peek(ps) == '-')
		ps->pos++;
	while (peek(ps) >= '0' && peek(ps) <= '9') {
		ps->pos++;
		digits++;
	}
	if (digits == 0 || (!at_end(ps) && peek(ps) != ' ' && peek(ps) != '\t')) {
		ps->pos = start;
		return fail(ps, "invalid timestamp; expected an integer in milliseconds");
	}
	skip_blanks(ps);
	if (!at_end(ps))
		return fail(ps, "unexpected text after the timestamp");
	return 0;
}

static bool has_suffix(const char *name, const char *suffix, size_t *base_length)
{
	size_t n = strlen(name);
	size_t m = strlen(suffix);

	if (n <= m || strcmp(name + n - m, suffix) != 0)
		return false;
	*base_length = n - m;
	return true;
}

static bool has_label(const struct exposition_sample *smp, const char *name)
{
	for (size_t i = 0; i < smp->label_count; i++) {
		if (strcmp(smp->labels[i].name, name) == 0)
			return true;
	}
	return false;
}

/*
 * Finds the family a sample name belongs to: its own, or the histogram or summary whose
 * _bucket, _sum or _count it is. An unknown name starts an untyped family.
 */
static struct family *sample_family(struct parser *ps, const char *name,
				    const struct exposition_sample *smp)
{
	static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
	struct family *f = family_find(ps, name);

	if (f != NULL && f->type != FAMILY_HISTOGRAM)
		return f;
	for (size_t i = 0; f == NULL && i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t base_length;
		char *base;
		struct family *g;

		if (!has_suffix(name, suffixes[i], &base_length))
			continue;
		base = xstrndup(name, base_length);
		g = family_find(ps, base);
		free(base);
		if (g == NULL || (g->type != FAMILY_HISTOGRAM && g->type != FAMILY_SUMMARY))
			continue;
		if (g->type == FAMILY_SUMMARY && i == 0)
			continue;
		if (i == 0 && !has_label(smp, "le")) {
			fail(ps, "histogram bucket %s has no le label", name);
			return NULL;
		}
		return g;
	}
	if (f != NULL && f->type == FAMILY_HISTOGRAM) {
		fail(ps, "histogram %s has a sample without _bucket, _sum or _count", name);
		return NULL;
	}
	return family_add(ps, name);
}

static bool metric_match(size_t value, const void *arg)
{
	const struct parser *ps = ((const void *const *)arg)[0];
	const char *name = ((const void *const *)arg)[1];

	return strcmp(ps->doc->metrics[value].name, name) == 0;
}

/* Returns the index of the metric for `name`, adding it when new. */
static size_t metric_get(struct parser *ps, const char *name, const struct family *f)
{
	struct exposition_doc *doc = ps->doc;
	uint64_t hash = hash_string(HASH_FNV_OFFSET, name);
	const void *arg[2] = {ps, name};
	size_t i = index_find(&ps->metric_index, hash, metric_match, arg);
	struct exposition_metric *m;

	if (i != SIZE_MAX)
		return i;
	doc->metrics = xreallocarray_grow(doc->metrics, &doc->metric_capacity,
					  doc->metric_count + 1, sizeof(*doc->metrics));
	m = &doc->metrics[doc->metric_count];
	m->name = xstrdup(name);
	m->help = xstrdup(f->help);
	m->type = f->type == FAMILY_COUNTER ? METRIC_COUNTER : METRIC_GAUGE;
	index_add(&ps->metric_index, hash, doc->metric_count);
	return doc->metric_count++;
}

/* Hash of a series that does not depend on the order of its labels. */
static uint64_t series_hash(size_t metric, const struct exposition_sample *smp)
{
	uint64_t h = hash_bytes(HASH_FNV_OFFSET, &metric, sizeof(metric));

	for (size_t i = 0; i < smp->label_count; i++) {
		uint64_t lh = hash_string(HASH_FNV_OFFSET, smp->labels[i].name);

		lh = hash_bytes(lh, "=", 1);
		h += hash_string(lh, smp->labels[i].value);
	}
	return h;
}

static bool series_match(size_t value, const void *arg)
{
	const struct parser *ps = ((const void *const *)arg)[0];
	const struct exposition_sample *smp = ((const void *const *)arg)[1];
	const struct exposition_sample *other = &ps->doc->samples[value];

	if (other->metric != smp->metric || other->label_count != smp->label_count)
		return false;
	for (size_t i = 0; i < smp->label_count; i++) {
		bool found = false;

		for (size_t j = 0; j < other->label_count && !found; j++) {
			found = strcmp(smp->labels[i].name, other->labels[j].name) == 0 &&
				strcmp(smp->labels[i].value, other->labels[j].value) == 0;
		}
		if (!found)
			return false;
	}
	return true;
}

static int parse_sample(struct parser *ps)
{
	struct exposition_doc *doc = ps->doc;
	struct exposition_sample smp = {0};
	struct family *f;
	char *name = read_name(ps, true);
	const void *arg[2] = {ps, &smp};
	uint64_t hash;

	if (name == NULL)
		return fail(ps, "expected a metric name");
	if (!at_end(ps) && peek(ps) != ' ' && peek(ps) != '\t' && peek(ps) != '{') {
		fail(ps, "invalid character '%c' in the metric name", peek(ps));
		goto bad;
	}
	skip_blanks(ps);
	if (peek(ps) == '{') {
		if (parse_labels(ps, &smp) < 0)
			goto bad;
		if (!at_end(ps) && peek(ps) != ' ' && peek(ps) != '\t') {
			fail(ps, "expected a space after the labels");
			goto bad;
		}
		skip_blanks(ps);
	}
	if (parse_value(ps, &smp.value) < 0)
		goto bad;
	skip_blanks(ps);
	if (!at_end(ps) && parse_timestamp(ps) < 0)
		goto bad;
	if (doc->sample_count >= EXPOSITION_PARSE_MAX_SAMPLES) {
		fail(ps, "more than %d samples", EXPOSITION_PARSE_MAX_SAMPLES);
		goto bad;
	}
	f = sample_family(ps, name, &smp);
	if (f == NULL)
		goto bad;
	f->samples_seen = true;
	smp.metric = metric_get(ps, name, f);

	hash = series_hash(smp.metric, &smp);
	if (index_find(&ps->series_index, hash, series_match, arg) != SIZE_MAX) {
		ps->pos = 0;
		fail(ps, "duplicate sample for %s with the same labels", name);
		goto bad;
	}
	doc->samples = xreallocarray_grow(doc->samples, &doc->sample_capacity,
					  doc->sample_count + 1, sizeof(*doc->samples));
	doc->samples[doc->sample_count] = smp;
	index_add(&ps->series_index, hash, doc->sample_count);
	doc->sample_count++;
	free(name);
	return 0;

bad:
	labels_free(smp.labels, smp.label_count);
	free(name);
	return -1;
}

static int parse_line(struct parser *ps)
{
	skip_blanks(ps);
	if (at_end(ps))
		return 0;
	if (peek(ps) == '#')
		return parse_comment(ps);
	return parse_sample(ps);
}

void exposition_doc_free(struct exposition_doc *doc)
{
	for (size_t i = 0; i < doc->metric_count; i++) {
		free(doc->metrics[i].name);
		free(doc->metrics[i].help);
	}
	free(doc->metrics);
	for (size_t i = 0; i < doc->sample_count; i++)
		labels_free(doc->samples[i].labels, doc->samples[i].label_count);
	free(doc->samples);
	memset(doc, 0, sizeof(*doc));
}

int exposition_parse(const char *text, size_t length, struct exposition_doc *doc, char *error,
		     size_t error_size)
{
	struct parser ps = {.doc = doc, .error = error, .error_size = error_size};
	size_t offset = 0;
	int rc = 0;

	error[0] = '\0';
	while (offset < length && rc == 0) {
		const char *line = text + offset;
		const char *newline = memchr(line, '\n', length - offset);
		size_t line_length = newline != NULL ? (size_t)(newline - line) : length - offset;

		offset += line_length + (newline != NULL);
		ps.line = line;
		ps.line_length = line_length;
		ps.line_number++;
		ps.pos = 0;
		if (memchr(line, '\0', line_length) != NULL) {
			ps.pos = (size_t)((const char *)memchr(line, '\0', line_length) - line);
			rc = fail(&ps, "NUL byte in the text");
			break;
		}
		/* Lines ending in CR LF, as a Windows-built command may print them. */
		if (ps.line_length > 0 && line[ps.line_length - 1] == '\r')
			ps.line_length--;
		rc = parse_line(&ps);
	}

	for (size_t i = 0; i < ps.family_count; i++) {
		free(ps.families[i].name);
		free(ps.families[i].help);
	}
	free(ps.families);
	index_free(&ps.family_index);
	index_free(&ps.metric_index);
	index_free(&ps.series_index);
	if (rc < 0)
		exposition_doc_free(doc);
	return rc;
}
