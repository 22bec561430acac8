/*
 * Renders the series registry in the Prometheus text exposition format 0.0.4. Text is
 * written straight into space reserved in the caller's evbuffer, so that a registry of
 * 100,000 series is rendered in one pass without an allocation per sample.
 */
#include "web/exposition.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "collector/log.h"
#include "collector/series.h"

/* Contiguous space reserved at a time: a few hundred sample lines. */
#define WRITER_CHUNK_SIZE 16384

/*
 * Integers below this magnitude print in full with %.15g, and are exact in a double, so
 * the fast path in exposition_format_value gives the same text as the general one.
 */
#define EXACT_INTEGER_LIMIT 1e15

/*
 * Decimal places the decimal fast path tries, so microsecond durations in seconds
 * (0.000412) take it; a value that needs more places goes through snprintf.
 */
#define DECIMAL_MAX_PLACES 6

/* Appends to an evbuffer through space reserved with evbuffer_reserve_space. */
struct writer {
	struct evbuffer *out;
	struct evbuffer_iovec space; /* iov_base is NULL while nothing is reserved */
	size_t length;               /* bytes of `space` written so far */
};

/* Hands the written part of the reserved space to the evbuffer. */
static void writer_commit(struct writer *w)
{
	if (w->space.iov_base == NULL)
		return;
	w->space.iov_len = w->length;
	evbuffer_commit_space(w->out, &w->space, 1);
	w->space.iov_base = NULL;
	w->length = 0;
}

static void writer_reserve(struct writer *w)
{
	/* Out of memory: tocsin's policy is to abort, as xmalloc does. */
	if (evbuffer_reserve_space(w->out, WRITER_CHUNK_SIZE, &w->space, 1) != 1) {
		log_error("exposition", NULL, "cannot reserve %d bytes in the output buffer",
			  WRITER_CHUNK_SIZE);
		abort();
	}
	w->length = 0;
}

static void writer_add(struct writer *w, const char *data, size_t length)
{
	if (w->space.iov_base == NULL || length > w->space.iov_len - w->length) {
		writer_commit(w);
		if (length > WRITER_CHUNK_SIZE) {
			evbuffer_add(w->out, data, length);
			return;
		}
		writer_reserve(w);
	}
	memcpy((char *)w->space.iov_base + w->length, data, length);
	w->length += length;
}

static void writer_add_string(struct writer *w, const char *s)
{
	writer_add(w, s, strlen(s));
}

static void writer_add_char(struct writer *w, char c)
{
	writer_add(w, &c, 1);
}

static bool is_name_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

bool exposition_valid_metric_name(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;

	if (p == NULL || (!is_name_start(*p) && *p != ':'))
		return false;
	for (p++; *p != '\0'; p++) {
		if (!is_name_start(*p) && !is_digit(*p) && *p != ':')
			return false;
	}
	return true;
}

bool exposition_valid_label_name(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;

	if (p == NULL || !is_name_start(*p))
		return false;
	for (p++; *p != '\0'; p++) {
		if (!is_name_start(*p) && !is_digit(*p))
			return false;
	}
	return true;
}

/*
 * Copies `text` with backslash and line feed escaped, and the double quote too when
 * `escape_quote` is set (label values need it, HELP text does not). Unescaped runs are
 * copied in one piece; bytes of UTF-8 sequences pass through unchanged.
 */
static void write_escaped(struct writer *w, const char *text, bool escape_quote)
{
	const char *run = text;
	const char *p;

	for (p = text; *p != '\0'; p++) {
		const char *escape;

		if (*p == '\\')
			escape = "\\\\";
		else if (*p == '\n')
			escape = "\\n";
		else if (*p == '"' && escape_quote)
			escape = "\\\"";
		else
			continue;
		writer_add(w, run, (size_t)(p - run));
		writer_add(w, escape, 2);
		run = p + 1;
	}
	writer_add(w, run, (size_t)(p - run));
}

void exposition_escape_label_value(struct evbuffer *out, const char *value)
{
	struct writer w = {.out = out};

	write_escaped(&w, value != NULL ? value : "", true);
	writer_commit(&w);
}

void exposition_escape_help(struct evbuffer *out, const char *help)
{
	struct writer w = {.out = out};

	write_escaped(&w, help != NULL ? help : "", false);
	writer_commit(&w);
}

/* Writes an integer-valued `value` below EXACT_INTEGER_LIMIT in magnitude, as %.15g would. */
static void format_integer(char *buf, double value)
{
	char digits[20];
	uint64_t magnitude = (uint64_t)fabs(value);
	size_t count = 0;
	size_t length = 0;

	do {
		digits[count++] = (char)('0' + magnitude % 10);
		magnitude /= 10;
	} while (magnitude > 0);
	if (signbit(value))
		buf[length++] = '-';
	while (count > 0)
		buf[length++] = digits[--count];
	buf[length] = '\0';
}

/*
 * Writes `value` as a decimal with at most DECIMAL_MAX_PLACES places when one of at most
 * 15 significant digits reads back as exactly `value`, and returns false otherwise. Such
 * a decimal is the text %.15g prints. Because 15 digits are DBL_DIG, rounding `value` to
 * 15 significant digits gives that decimal back. %g drops trailing zeros, and the
 * smallest number of places has none. `mantissa / scale` is one correctly rounded
 * division of exact operands, so it equals what strtod returns for the decimal.
 */
static bool format_decimal(char *buf, double value)
{
	double magnitude = fabs(value);
	double scale = 1;

	/* Below 1e-4 %g switches to an exponent; 1e9 keeps the mantissa under 1e15. */
	if (magnitude < 1e-4 || magnitude >= 1e9)
		return false;
	for (int places = 1; places <= DECIMAL_MAX_PLACES; places++) {
		double mantissa;
		char digits[EXPOSITION_VALUE_SIZE];
		size_t length = 0;

		scale *= 10;
		mantissa = nearbyint(magnitude * scale);
		if (mantissa / scale != magnitude)
			continue;
		format_integer(digits, mantissa);
		if (signbit(value))
			buf[length++] = '-';
		size_t count = strlen(digits);
		if (count <= (size_t)places) {
			buf[length++] = '0';
			buf[length++] = '.';
			for (size_t zeros = (size_t)places - count; zeros > 0; zeros--)
				buf[length++] = '0';
			memcpy(buf + length, digits, count);
			length += count;
		} else {
			memcpy(buf + length, digits, count - (size_t)places);
			length += count - (size_t)places;
			buf[length++] = '.';
			memcpy(buf + length, digits + count - (size_t)places, (size_t)places);
			length += (size_t)places;
		}
		buf[length] = '\0';
		return true;
	}
	return false;
}

/*
 * %.15g is exact for most values people read (0.1, 181005683161), and 17 significant
 * digits always read back exactly for an IEEE 754 double, so the loop ends at 17. %g
 * switches to an exponent only when the exponent is below -4 or not below the
 * precision, so integers up to 15 digits print in full. Those integers, and decimals
 * with a few places (durations, ratios, temperatures), take fast paths that print the
 * same text without snprintf. The decimal point comes from LC_NUMERIC, which tocsind
 * leaves at "C".
 */
void exposition_format_value(char *buf, size_t size, double value)
{
	if (isnan(value)) {
		snprintf(buf, size, "NaN");
		return;
	}
	if (isinf(value)) {
		snprintf(buf, size, "%s", value > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (size >= EXPOSITION_VALUE_SIZE && fabs(value) < EXACT_INTEGER_LIMIT &&
	    value == trunc(value)) {
		format_integer(buf, value);
		return;
	}
	if (size >= EXPOSITION_VALUE_SIZE && format_decimal(buf, value))
		return;
	/*
	 * NOTE: this path costs about 3.5 microseconds for a value that needs 17 digits
	 * (100,000 values of i / 7.0 on one core of an AMD EPYC guest, glibc 2.36), so such
	 * a registry blocks the loop for about 0.35 s per scrape. A shortest-digits algorithm
	 * such as Ryu would cut that.
	 */
	for (int precision = 15; precision <= 17; precision++) {
		snprintf(buf, size, "%.*g", precision, value);
		if (strtod(buf, NULL) == value)
			return;
	}
}

static bool family_has_exported_series(const struct series_family *family)
{
	for (size_t i = 0; i < family->count; i++) {
		if (!family->series[i]->stale)
			return true;
	}
	return false;
}

/*
 * A family without help text gets no HELP line, as the format allows. A histogram's three
 * families sort as NAME_bucket, NAME_count, NAME_sum and so follow each other: the header
 * names the histogram once, before its buckets.
 */
static void write_family_header(struct writer *w, const struct series_family *family)
{
	size_t name_length = strlen(family->name);
	static const char bucket[] = "_bucket";

	if (family->type == METRIC_HISTOGRAM) {
		if (name_length <= sizeof(bucket) - 1 ||
		    strcmp(family->name + name_length - (sizeof(bucket) - 1), bucket) != 0)
			return;
		name_length -= sizeof(bucket) - 1;
	}
	if (family->help != NULL && family->help[0] != '\0') {
		writer_add_string(w, "# HELP ");
		writer_add(w, family->name, name_length);
		writer_add_char(w, ' ');
		write_escaped(w, family->help, false);
		writer_add_char(w, '\n');
	}
	writer_add_string(w, "# TYPE ");
	writer_add(w, family->name, name_length);
	writer_add_char(w, ' ');
	writer_add_string(w, series_type_name(family->type));
	writer_add_char(w, '\n');
}

/* Copies a label value with backslash, line feed and double quote escaped; returns the end. */
static char *copy_label_value(char *out, const char *value)
{
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\\' || *p == '\n' || *p == '"') {
			*out++ = '\\';
			*out++ = *p == '\n' ? 'n' : *p;
		} else {
			*out++ = *p;
		}
	}
	return out;
}

/*
 * Maximum length of the text of a sample of `s`, because each label value byte may
 * double when escaped. SIZE_MAX when that does not fit in one reserved chunk.
 */
static size_t sample_max_length(size_t name_length, const struct series *s)
{
	size_t length = name_length + 2 + EXPOSITION_VALUE_SIZE + 2;

	for (size_t i = 0; i < s->label_count; i++) {
		const char *value = s->labels[i].value != NULL ? s->labels[i].value : "";

		length += strlen(s->labels[i].name) + 2 * strlen(value) + 4;
		if (length > WRITER_CHUNK_SIZE)
			return SIZE_MAX;
	}
	return length;
}

/* Writes one sample line into reserved space that can take `max_length` bytes. */
static void write_sample_reserved(struct writer *w, const char *name, size_t name_length,
				  const struct series *s, size_t max_length)
{
	char *start;
	char *out;

	if (w->space.iov_base == NULL || max_length > w->space.iov_len - w->length) {
		writer_commit(w);
		writer_reserve(w);
	}
	start = (char *)w->space.iov_base + w->length;
	out = start;
	memcpy(out, name, name_length);
	out += name_length;
	for (size_t i = 0; i < s->label_count; i++) {
		size_t label_length = strlen(s->labels[i].name);

		*out++ = i == 0 ? '{' : ',';
		memcpy(out, s->labels[i].name, label_length);
		out += label_length;
		*out++ = '=';
		*out++ = '"';
		out = copy_label_value(out, s->labels[i].value != NULL ? s->labels[i].value : "");
		*out++ = '"';
	}
	if (s->label_count > 0)
		*out++ = '}';
	*out++ = ' ';
	exposition_format_value(out, EXPOSITION_VALUE_SIZE, s->value);
	out += strlen(out);
	*out++ = '\n';
	w->length += (size_t)(out - start);
}

/*
 * Most samples are written straight into the reserved chunk after one bound check. A
 * sample too long for a chunk goes through writer_add piece by piece.
 */
static void write_sample(struct writer *w, const char *name, size_t name_length,
			 const struct series *s)
{
	char value[EXPOSITION_VALUE_SIZE];
	size_t max_length = sample_max_length(name_length, s);

	if (max_length != SIZE_MAX) {
		write_sample_reserved(w, name, name_length, s, max_length);
		return;
	}
	writer_add(w, name, name_length);
	if (s->label_count > 0) {
		for (size_t i = 0; i < s->label_count; i++) {
			writer_add_char(w, i == 0 ? '{' : ',');
			writer_add_string(w, s->labels[i].name);
			writer_add(w, "=\"", 2);
			write_escaped(w, s->labels[i].value != NULL ? s->labels[i].value : "",
				      true);
			writer_add_char(w, '"');
		}
		writer_add_char(w, '}');
	}
	writer_add_char(w, ' ');
	exposition_format_value(value, sizeof(value), s->value);
	writer_add_string(w, value);
	writer_add_char(w, '\n');
}

/*
 * Samples carry no timestamp, so Prometheus assigns the scrape time and marks a series
 * stale as soon as it disappears from the body, as it does for any exporter.
 */
void exposition_write_registry(struct evbuffer *out, const struct series_registry *reg)
{
	struct writer w = {.out = out};
	size_t family_count = series_registry_family_count(reg);

	for (size_t f = 0; f < family_count; f++) {
		const struct series_family *family = series_registry_family(reg, f);
		size_t name_length = strlen(family->name);

		if (!family_has_exported_series(family))
			continue;
		write_family_header(&w, family);
		for (size_t i = 0; i < family->count; i++) {
			if (!family->series[i]->stale)
				write_sample(&w, family->name, name_length, family->series[i]);
		}
	}
	writer_commit(&w);
}
