/*
 * promtool's series notation; see series_notation.h. Series descriptions go through the
 * expression lexer, so names and quoted strings read exactly as they do in rules.
 */
#include "collector/series_notation.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collector/expr_impl.h"
#include "collector/window.h"
#include "collector/xalloc.h"

#define NAME_LABEL "__name__"

/* Column of byte offset `pos`, counting UTF-8 characters from 1. */
static size_t notation_column(const char *text, size_t pos)
{
	size_t column = 1;

	for (size_t i = 0; i < pos && text[i] != '\0'; i++)
		if (((unsigned char)text[i] & 0xc0) != 0x80)
			column++;
	return column;
}

static int notation_fail(char **error, const char *text, size_t pos, const char *what,
			 const char *expected, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Sets *error to "PROBLEM at column N of WHAT[, expected EXPECTED]" and returns -1. */
static int notation_fail(char **error, const char *text, size_t pos, const char *what,
			 const char *expected, const char *fmt, ...)
{
	char problem[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof problem, fmt, ap);
	va_end(ap);
	if (expected != NULL)
		*error = xasprintf("%s at column %zu of %s, expected %s", problem,
				   notation_column(text, pos), what, expected);
	else
		*error =
		    xasprintf("%s at column %zu of %s", problem, notation_column(text, pos), what);
	return -1;
}

/* ---- series descriptions ---- */

struct label_list {
	struct label *v;
	size_t count;
	size_t capacity;
};

static void label_list_add(struct label_list *l, const char *name, const char *value)
{
	l->v = xreallocarray_grow(l->v, &l->capacity, l->count + 1, sizeof *l->v);
	l->v[l->count++] = (struct label){xstrdup(name), xstrdup(value)};
}

static const struct label *label_list_find(const struct label_list *l, const char *name)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

static int label_compare(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

void series_notation_labels_free(struct label *labels, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free((char *)labels[i].name);
		free((char *)labels[i].value);
	}
	free(labels);
}

/* Reads the next token; on a lexer error sets *error. */
static int notation_next(struct expr_lexer *lx, struct expr_token *tok, char **error)
{
	if (expr_lex_next(lx, tok) == 0)
		return 0;
	return notation_fail(error, lx->text, lx->error_pos, "series", lx->expected, "%s",
			     lx->error);
}

static int notation_unexpected(struct expr_lexer *lx, const struct expr_token *tok,
			       const char *expected, char **error)
{
	char found[96];

	if (tok->kind == EXPR_TOK_EOF)
		snprintf(found, sizeof found, "end of series");
	else
		expr_token_describe(lx, tok, found, sizeof found);
	return notation_fail(error, lx->text, tok->pos, "series", expected, "unexpected %s", found);
}

/* Reads the next token and checks that it is of `kind`. */
static int notation_expect(struct expr_lexer *lx, enum expr_token_kind kind, const char *expected,
			   struct expr_token *tok, char **error)
{
	if (notation_next(lx, tok, error) < 0)
		return -1;
	if (tok->kind != kind)
		return notation_unexpected(lx, tok, expected, error);
	return 0;
}

/* Parses `label="value"` pairs after "{" up to and including "}". */
static int notation_parse_pairs(struct expr_lexer *lx, struct label_list *out, char **error)
{
	struct expr_token tok;

	for (;;) {
		char *name;
		size_t name_pos;

		if (notation_next(lx, &tok, error) < 0)
			return -1;
		if (tok.kind == EXPR_TOK_RBRACE)
			return 0;
		if (tok.kind != EXPR_TOK_IDENT)
			return notation_unexpected(lx, &tok, "a label name or \"}\"", error);
		name = xstrndup(lx->text + tok.pos, tok.len);
		name_pos = tok.pos;
		if (!series_valid_label_name(name)) {
			notation_fail(error, lx->text, name_pos, "series", "[a-zA-Z_][a-zA-Z0-9_]*",
				      "invalid label name \"%s\"", name);
			free(name);
			return -1;
		}
		if (label_list_find(out, name) != NULL) {
			notation_fail(error, lx->text, name_pos, "series", NULL,
				      "label %s given twice", name);
			free(name);
			return -1;
		}
		if (notation_expect(lx, EXPR_TOK_ASSIGN, "\"=\" (a series has exact label values)",
				    &tok, error) < 0 ||
		    notation_expect(lx, EXPR_TOK_STRING, "a quoted label value", &tok, error) < 0) {
			free(name);
			return -1;
		}
		label_list_add(out, name, tok.string);
		free(name);

		if (notation_next(lx, &tok, error) < 0)
			return -1;
		if (tok.kind == EXPR_TOK_RBRACE)
			return 0;
		if (tok.kind != EXPR_TOK_COMMA)
			return notation_unexpected(lx, &tok, "\",\" or \"}\"", error);
	}
}

/* Parses `[name][{pairs}]` into *out, which then contains "__name__" when a name was given. */
static int notation_parse_series(struct expr_lexer *lx, struct label_list *out, char **error)
{
	struct expr_token tok;
	char *name = NULL;
	size_t name_pos = 0;
	int rc = -1;

	if (notation_next(lx, &tok, error) < 0)
		return -1;
	if (tok.kind == EXPR_TOK_IDENT) {
		name = xstrndup(lx->text + tok.pos, tok.len);
		name_pos = tok.pos;
		if (notation_next(lx, &tok, error) < 0)
			goto out;
	} else if (tok.kind != EXPR_TOK_LBRACE) {
		notation_unexpected(lx, &tok, "a metric name or \"{\"", error);
		goto out;
	}
	if (tok.kind == EXPR_TOK_LBRACE) {
		if (notation_parse_pairs(lx, out, error) < 0)
			goto out;
		if (notation_next(lx, &tok, error) < 0)
			goto out;
	}
	if (tok.kind != EXPR_TOK_EOF) {
		notation_unexpected(lx, &tok, name != NULL ? "\"{\" or the end" : "the end", error);
		goto out;
	}
	if (name != NULL) {
		if (label_list_find(out, NAME_LABEL) != NULL) {
			notation_fail(error, lx->text, name_pos, "series", NULL,
				      "metric name given twice, before \"{\" and as " NAME_LABEL);
			goto out;
		}
		label_list_add(out, NAME_LABEL, name);
	}
	rc = 0;
out:
	free(name);
	return rc;
}

int series_notation_parse_labels(const char *text, struct label **labels, size_t *count,
				 char **error)
{
	struct expr_lexer lx;
	struct label_list list = {0};
	const struct label *name;
	size_t kept = 0;

	expr_lexer_init(&lx, text);
	if (notation_parse_series(&lx, &list, error) < 0) {
		expr_lexer_done(&lx);
		series_notation_labels_free(list.v, list.count);
		return -1;
	}
	expr_lexer_done(&lx);

	name = label_list_find(&list, NAME_LABEL);
	if (name != NULL && !series_valid_metric_name(name->value)) {
		notation_fail(error, text, 0, "series", "[a-zA-Z_:][a-zA-Z0-9_:]*",
			      "invalid metric name \"%s\"", name->value);
		series_notation_labels_free(list.v, list.count);
		return -1;
	}
	for (size_t i = 0; i < list.count; i++) {
		if (list.v[i].value[0] == '\0') {
			free((char *)list.v[i].name);
			free((char *)list.v[i].value);
			continue;
		}
		list.v[kept++] = list.v[i];
	}
	if (kept > 1)
		qsort(list.v, kept, sizeof *list.v, label_compare);
	*labels = list.v;
	*count = kept;
	return 0;
}

/* Appends `value` quoted and escaped so that the expression lexer reads it back. */
static void notation_append_quoted(char **buf, size_t *len, size_t *capacity, const char *value)
{
	size_t need = *len + 4 * strlen(value) + 3;

	*buf = xreallocarray_grow(*buf, capacity, need + 1, 1);
	(*buf)[(*len)++] = '"';
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			(*buf)[(*len)++] = '\\';
			(*buf)[(*len)++] = (char)*p;
		} else if (*p == '\n') {
			(*buf)[(*len)++] = '\\';
			(*buf)[(*len)++] = 'n';
		} else if (*p < 0x20 || *p == 0x7f) {
			*len += (size_t)snprintf(*buf + *len, 5, "\\x%02x", *p);
		} else {
			(*buf)[(*len)++] = (char)*p;
		}
	}
	(*buf)[(*len)++] = '"';
	(*buf)[*len] = '\0';
}

char *series_notation_format_labels(const struct label *labels, size_t count)
{
	size_t capacity = 0;
	size_t len = 0;
	char *buf = NULL;
	bool first = true;

	for (size_t i = 0; i < count; i++) {
		if (strcmp(labels[i].name, NAME_LABEL) == 0) {
			buf = xstrdup(labels[i].value);
			len = strlen(buf);
			capacity = len + 1;
		}
	}
	buf = xreallocarray_grow(buf, &capacity, len + 2, 1);
	buf[len++] = '{';
	buf[len] = '\0';
	for (size_t i = 0; i < count; i++) {
		if (strcmp(labels[i].name, NAME_LABEL) == 0)
			continue;
		buf = xreallocarray_grow(buf, &capacity, len + strlen(labels[i].name) + 4, 1);
		len += (size_t)sprintf(buf + len, "%s%s=", first ? "" : ", ", labels[i].name);
		notation_append_quoted(&buf, &len, &capacity, labels[i].value);
		first = false;
	}
	buf = xreallocarray_grow(buf, &capacity, len + 2, 1);
	buf[len++] = '}';
	buf[len] = '\0';
	return buf;
}

/* ---- values ---- */

#define VALUES_EXPECTED "a number, _, stale, a+bxn, a-bxn or axn"

/* Reads [+-](digits[.digits][e[+-]digits] | .digits[...] | Inf | NaN) at text[*pos]. */
static bool notation_read_number(const char *text, size_t *pos, bool allow_sign, double *out)
{
	size_t start = *pos;
	size_t i = *pos;
	size_t digits = 0;
	char buf[128];

	if (allow_sign && (text[i] == '+' || text[i] == '-'))
		i++;
	if (strncasecmp(text + i, "inf", 3) == 0 || strncasecmp(text + i, "nan", 3) == 0) {
		i += 3;
	} else {
		while (isdigit((unsigned char)text[i])) {
			i++;
			digits++;
		}
		if (text[i] == '.') {
			i++;
			while (isdigit((unsigned char)text[i])) {
				i++;
				digits++;
			}
		}
		if (digits == 0)
			return false;
		if (text[i] == 'e' || text[i] == 'E') {
			size_t e = i + 1;

			if (text[e] == '+' || text[e] == '-')
				e++;
			if (!isdigit((unsigned char)text[e]))
				return false;
			while (isdigit((unsigned char)text[e]))
				e++;
			i = e;
		}
	}
	if (i - start >= sizeof buf)
		return false;
	memcpy(buf, text + start, i - start);
	buf[i - start] = '\0';
	*out = strtod(buf, NULL);
	*pos = i;
	return true;
}

/* Reads the decimal repetition count after "x"; false when it is not a whole number. */
static bool notation_read_count(const char *text, size_t *pos, uint64_t *out)
{
	size_t i = *pos;
	uint64_t n = 0;

	if (!isdigit((unsigned char)text[i]))
		return false;
	for (; isdigit((unsigned char)text[i]); i++) {
		unsigned digit = (unsigned)(text[i] - '0');

		if (n > (UINT64_MAX - 1 - digit) / 10)
			return false;
		n = n * 10 + digit;
	}
	*pos = i;
	*out = n;
	return true;
}

/* Parses one whitespace-free token text[start, end) into *item. */
static int notation_parse_item(const char *text, size_t start, size_t end,
			       struct series_notation_item *item, char **error)
{
	int len = (int)(end - start > 60 ? 60 : end - start);
	size_t pos = start;
	uint64_t n;

	memset(item, 0, sizeof *item);
	item->count = 1;
	if (text[pos] == '_') {
		item->kind = SERIES_NOTATION_MISSING;
		pos++;
		if (pos < end && text[pos] == 'x') {
			pos++;
			if (!notation_read_count(text, &pos, &item->count) || pos != end)
				goto bad_count;
		}
	} else if (end - start == 5 && strncmp(text + start, "stale", 5) == 0) {
		item->kind = SERIES_NOTATION_STALE;
		pos = end;
	} else {
		item->kind = SERIES_NOTATION_VALUE;
		if (!notation_read_number(text, &pos, true, &item->start))
			goto bad_value;
		if (pos < end && (text[pos] == '+' || text[pos] == '-')) {
			bool negative = text[pos] == '-';

			pos++;
			if (!notation_read_number(text, &pos, false, &item->step))
				goto bad_value;
			if (negative)
				item->step = -item->step;
			if (pos >= end || text[pos] != 'x')
				goto bad_value;
		}
		if (pos < end && text[pos] == 'x') {
			pos++;
			if (!notation_read_count(text, &pos, &n) || pos != end)
				goto bad_count;
			item->count = n + 1;
		}
	}
	if (pos != end)
		goto bad_value;
	return 0;

bad_count:
	return notation_fail(error, text, start, "values", "a whole number after \"x\"",
			     "invalid repetition count in \"%.*s\"", len, text + start);
bad_value:
	return notation_fail(error, text, start, "values", VALUES_EXPECTED,
			     "invalid value \"%.*s\"", len, text + start);
}

int series_notation_parse_values(const char *text, struct series_notation_item **items,
				 size_t *count, char **error)
{
	struct series_notation_item *v = NULL;
	size_t n = 0;
	size_t capacity = 0;
	size_t pos = 0;

	for (;;) {
		size_t start;

		while (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' ||
		       text[pos] == '\r')
			pos++;
		if (text[pos] == '\0')
			break;
		start = pos;
		while (text[pos] != '\0' && text[pos] != ' ' && text[pos] != '\t' &&
		       text[pos] != '\n' && text[pos] != '\r')
			pos++;
		v = xreallocarray_grow(v, &capacity, n + 1, sizeof *v);
		if (notation_parse_item(text, start, pos, &v[n], error) < 0) {
			free(v);
			return -1;
		}
		n++;
	}
	*items = v;
	*count = n;
	return 0;
}

struct series *series_notation_intern(struct series_registry *reg, const struct label *labels,
				      size_t count, char **error)
{
	struct metric_desc desc = {NULL, "Input series of a rule test.", METRIC_GAUGE};
	struct label *rest = xcalloc(count + 1, sizeof *rest);
	size_t rest_count = 0;
	struct series *s;

	for (size_t i = 0; i < count; i++) {
		if (strcmp(labels[i].name, NAME_LABEL) == 0)
			desc.name = labels[i].value;
		else
			rest[rest_count++] = labels[i];
	}
	if (desc.name == NULL) {
		free(rest);
		*error = xstrdup("the series has no metric name, expected name{label=\"value\"}");
		return NULL;
	}
	s = series_intern(reg, &desc, rest, rest_count);
	free(rest);
	if (s == NULL)
		*error = xasprintf("the series registry rejected %s (invalid name or a name used "
				   "with another type)",
				   desc.name);
	return s;
}

size_t series_notation_load(struct window_store *ws, struct series *s,
			    const struct series_notation_item *items, size_t count, int64_t step_ms,
			    int64_t end_ms)
{
	size_t appended = 0;
	int64_t t = 0;

	for (size_t i = 0; i < count && t <= end_ms; i++) {
		const struct series_notation_item *item = &items[i];
		double value = item->start;

		if (item->kind == SERIES_NOTATION_MISSING) {
			if (step_ms > 0 && item->count > (uint64_t)((end_ms - t) / step_ms))
				return appended;
			t += (int64_t)item->count * step_ms;
			continue;
		}
		for (uint64_t k = 0; k < item->count && t <= end_ms; k++) {
			if (item->kind == SERIES_NOTATION_STALE) {
				window_mark_stale(ws, s, t);
			} else {
				if (window_append(ws, s, t, value) == 0)
					appended++;
				value += item->step;
			}
			if (t > INT64_MAX - step_ms)
				return appended;
			t += step_ms;
		}
	}
	return appended;
}
