/*
 * Parsing of Nagios plugin output and performance data; see perfdata.h. The parser is
 * strict about the item grammar but recovers at the next item, so one malformed item
 * never hides the valid ones around it.
 */
#include "probes/perfdata.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/xalloc.h"

/* Field separators of the item grammar: plain ASCII whitespace. */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char *trimmed_copy(const char *start, const char *end)
{
	while (start < end && is_space(*start))
		start++;
	while (end > start && is_space(end[-1]))
		end--;
	return xstrndup(start, (size_t)(end - start));
}

void perfdata_split_output(const char *output, size_t length, struct perfdata_output *out)
{
	char *text = xmalloc(length + 1);
	char *line_end;
	char *bar;
	char *first_perf = NULL;
	char *later_perf = NULL;

	/* A NUL inside the output would end every string function early. */
	for (size_t i = 0; i < length; i++)
		text[i] = output[i] != '\0' ? output[i] : ' ';
	text[length] = '\0';

	line_end = strchr(text, '\n');
	if (line_end == NULL)
		line_end = text + length;
	bar = memchr(text, '|', (size_t)(line_end - text));
	if (bar != NULL) {
		out->summary = trimmed_copy(text, bar);
		first_perf = xstrndup(bar + 1, (size_t)(line_end - bar - 1));
	} else {
		out->summary = trimmed_copy(text, line_end);
	}

	/* Long output: lines of text, then from the first '|' on, performance data only. */
	if (*line_end == '\n') {
		bar = strchr(line_end + 1, '|');
		if (bar != NULL)
			later_perf = bar + 1;
	}
	out->perfdata = xasprintf("%s %s", first_perf != NULL ? first_perf : "",
				  later_perf != NULL ? later_perf : "");
	free(first_perf);
	free(text);
}

void perfdata_output_free(struct perfdata_output *out)
{
	free(out->summary);
	free(out->perfdata);
	out->summary = NULL;
	out->perfdata = NULL;
}

/*
 * Scans a decimal number ([-+]digits[.digits][e[-+]digits], at least one digit) at the
 * start of `s`. Returns the characters used, 0 when there is no number.
 */
static size_t scan_number(const char *s, size_t length)
{
	size_t i = 0;
	size_t digits = 0;

	if (i < length && (s[i] == '-' || s[i] == '+'))
		i++;
	while (i < length && is_digit(s[i])) {
		i++;
		digits++;
	}
	if (i < length && s[i] == '.') {
		i++;
		while (i < length && is_digit(s[i])) {
			i++;
			digits++;
		}
	}
	if (digits == 0)
		return 0;
	if (i + 1 < length && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;

		if (j < length && (s[j] == '-' || s[j] == '+'))
			j++;
		if (j < length && is_digit(s[j])) {
			while (j < length && is_digit(s[j]))
				j++;
			i = j;
		}
	}
	return i;
}

static double number_value(const char *s, size_t length)
{
	char buf[64];

	if (length >= sizeof(buf))
		length = sizeof(buf) - 1;
	memcpy(buf, s, length);
	buf[length] = '\0';
	return strtod(buf, NULL);
}

/*
 * Parses a number that fills s[0..length), optionally followed by `uom` (some plugins
 * repeat the value's unit on thresholds). Returns 0 or -1.
 */
static int parse_bound(const char *s, size_t length, const char *uom, double *out)
{
	size_t used = scan_number(s, length);
	size_t rest = length - used;

	if (used == 0)
		return -1;
	if (rest != 0 &&
	    (uom[0] == '\0' || rest != strlen(uom) || memcmp(s + used, uom, rest) != 0))
		return -1;
	*out = number_value(s, used);
	return 0;
}

int perfdata_parse_range(const char *text, const char *uom, struct perfdata_range *out)
{
	const char *colon;
	struct perfdata_range r = {0};

	*out = r;
	if (*text == '\0')
		return 0;
	if (*text == '@') {
		r.inside = true;
		text++;
	}
	colon = strchr(text, ':');
	if (colon == NULL) {
		r.start = 0;
		if (parse_bound(text, strlen(text), uom, &r.end) < 0)
			return -1;
	} else {
		size_t start_length = (size_t)(colon - text);

		if (start_length == 1 && text[0] == '~') {
			r.start = -INFINITY;
			r.start_explicit = true;
		} else if (start_length == 0) {
			r.start = 0;
		} else {
			if (parse_bound(text, start_length, uom, &r.start) < 0)
				return -1;
			r.start_explicit = true;
		}
		if (colon[1] == '\0')
			r.end = INFINITY;
		else if (parse_bound(colon + 1, strlen(colon + 1), uom, &r.end) < 0)
			return -1;
	}
	if (r.start > r.end)
		return -1;
	r.present = true;
	*out = r;
	return 0;
}

struct item_error {
	char message[PERFDATA_ERROR_SIZE];
};

static void item_fail(struct item_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void item_fail(struct item_error *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/*
 * Reads a label at *p, quoted ('it''s') or bare (up to '='), into a new string and moves
 * *p to the '='. Returns NULL with err set when the label is invalid.
 */
static char *parse_label(const char **p, struct item_error *err)
{
	const char *s = *p;
	char *label;
	size_t n = 0;

	if (*s == '\'') {
		label = xmalloc(strlen(s) + 1);
		for (s++;; s++) {
			if (*s == '\0') {
				item_fail(err, "label has no closing quote");
				free(label);
				*p = s;
				return NULL;
			}
			if (*s == '\'') {
				if (s[1] != '\'')
					break;
				s++; /* '' is one literal quote */
			}
			label[n++] = *s;
		}
		label[n] = '\0';
		s++;
	} else {
		const char *start = s;

		while (*s != '\0' && *s != '=' && !is_space(*s))
			s++;
		label = xstrndup(start, (size_t)(s - start));
		n = (size_t)(s - start);
	}
	*p = s;
	if (*s != '=') {
		item_fail(err, "label '%s' is not followed by '='", label);
		free(label);
		return NULL;
	}
	if (n == 0) {
		item_fail(err, "empty label");
		free(label);
		return NULL;
	}
	return label;
}

/* Parses "value[UOM]" from the token s[0..length). */
static int parse_value(const char *s, size_t length, struct perfdata_item *item,
		       struct item_error *err)
{
	size_t used;
	size_t uom_length;

	if (length == 1 && s[0] == 'U') {
		item->unknown = true;
		item->value = NAN;
		return 0;
	}
	used = scan_number(s, length);
	if (used == 0) {
		item_fail(err, "'%s': value '%.*s' is not a number or U", item->label, (int)length,
			  s);
		return -1;
	}
	item->value = number_value(s, used);
	uom_length = length - used;
	if (uom_length >= PERFDATA_UOM_SIZE) {
		item_fail(err, "'%s': unit '%.*s' is longer than %d characters", item->label,
			  (int)uom_length, s + used, PERFDATA_UOM_SIZE - 1);
		return -1;
	}
	for (size_t i = used; i < length; i++) {
		if (is_digit(s[i]) || s[i] == '\'' || s[i] == ',' || s[i] == '.') {
			item_fail(err, "'%s': invalid unit '%.*s'", item->label, (int)uom_length,
				  s + used);
			return -1;
		}
	}
	memcpy(item->uom, s + used, uom_length);
	item->uom[uom_length] = '\0';
	return 0;
}

/* Parses field `index` (0 warn, 1 crit, 2 min, 3 max) from its text. */
static int parse_field(struct perfdata_item *item, int index, const char *text,
		       struct item_error *err)
{
	static const char *const names[] = {"warn", "crit", "min", "max"};
	int rc = 0;

	switch (index) {
	case 0:
		rc = perfdata_parse_range(text, item->uom, &item->warn);
		break;
	case 1:
		rc = perfdata_parse_range(text, item->uom, &item->crit);
		break;
	case 2:
		if (*text != '\0') {
			rc = parse_bound(text, strlen(text), item->uom, &item->min);
			item->has_min = rc == 0;
		}
		break;
	default:
		if (*text != '\0') {
			rc = parse_bound(text, strlen(text), item->uom, &item->max);
			item->has_max = rc == 0;
		}
		break;
	}
	if (rc < 0)
		item_fail(err, "'%s': %s '%s' is not a %s", item->label, names[index], text,
			  index < 2 ? "range" : "number");
	return rc;
}

/*
 * Parses one item starting at *p (not at whitespace). On return *p is at the whitespace
 * after the item, or at the end of the text.
 */
static int parse_item(const char **p, struct perfdata_item *item, struct item_error *err)
{
	const char *s = *p;
	const char *token;
	size_t length;
	int field = -1;

	memset(item, 0, sizeof(*item));
	item->label = parse_label(&s, err);
	if (item->label == NULL)
		goto bad;
	s++; /* the '=' */
	for (;;) {
		char buf[128];

		token = s;
		while (*s != '\0' && *s != ';' && !is_space(*s))
			s++;
		length = (size_t)(s - token);
		if (field == -1) {
			if (parse_value(token, length, item, err) < 0)
				goto bad;
		} else if (field > 3) {
			item_fail(err, "'%s': more than 5 fields", item->label);
			goto bad;
		} else {
			if (length >= sizeof(buf)) {
				item_fail(err, "'%s': field %d is too long", item->label,
					  field + 2);
				goto bad;
			}
			memcpy(buf, token, length);
			buf[length] = '\0';
			if (parse_field(item, field, buf, err) < 0)
				goto bad;
		}
		if (*s != ';')
			break;
		s++;
		field++;
	}
	*p = s;
	return 0;

bad:
	/* Resume at the next item: after this token's whitespace. */
	while (*s != '\0' && !is_space(*s))
		s++;
	*p = s;
	free(item->label);
	item->label = NULL;
	return -1;
}

size_t perfdata_parse(const char *text, struct perfdata_list *list)
{
	const char *p = text;
	size_t added = 0;

	for (;;) {
		struct perfdata_item item;
		struct item_error err = {""};

		while (is_space(*p))
			p++;
		if (*p == '\0')
			break;
		if (parse_item(&p, &item, &err) < 0) {
			if (list->errors++ == 0)
				snprintf(list->first_error, sizeof(list->first_error), "%s",
					 err.message);
			continue;
		}
		list->items = xreallocarray_grow(list->items, &list->capacity, list->count + 1,
						 sizeof(*list->items));
		list->items[list->count++] = item;
		added++;
	}
	return added;
}

void perfdata_list_free(struct perfdata_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i].label);
	free(list->items);
	memset(list, 0, sizeof(*list));
}

struct perfdata_unit perfdata_unit_lookup(const char *uom)
{
	static const struct {
		const char *uom;
		struct perfdata_unit unit;
	} units[] = {
	    {"", {1, 1, "", false}},
	    {"s", {1, 1, "seconds", false}},
	    {"ms", {1, 1e3, "seconds", false}},
	    {"us", {1, 1e6, "seconds", false}},
	    {"%", {1, 100, "ratio", false}},
	    {"B", {1, 1, "bytes", false}},
	    {"KB", {1024.0, 1, "bytes", false}},
	    {"MB", {1024.0 * 1024, 1, "bytes", false}},
	    {"GB", {1024.0 * 1024 * 1024, 1, "bytes", false}},
	    {"TB", {1024.0 * 1024 * 1024 * 1024, 1, "bytes", false}},
	    {"c", {1, 1, "", true}},
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(units[i].uom, uom) == 0)
			return units[i].unit;
	}
	return (struct perfdata_unit){1, 1, uom, false};
}

double perfdata_unit_convert(const struct perfdata_unit *unit, double value)
{
	/* The scales are powers of two and the divisors exact integers: one rounding each. */
	return value * unit->scale / unit->divisor;
}
