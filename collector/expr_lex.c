/*
 * The lexer of the expression language: numbers (decimal, hexadecimal, Inf, NaN),
 * durations (5m, 1h30m), strings in double quotes, single quotes or backquotes (raw),
 * identifiers, operators and punctuation. `#` starts a comment that runs to the end of
 * the line. Keywords (and, by, offset, ...) are identifiers: the parser decides by place.
 */
#include "collector/expr_impl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/xalloc.h"

void expr_lexer_init(struct expr_lexer *lx, const char *text)
{
	memset(lx, 0, sizeof(*lx));
	lx->text = text;
	lx->len = strlen(text);
}

void expr_lexer_done(struct expr_lexer *lx)
{
	free(lx->string);
	lx->string = NULL;
}

static int lex_fail(struct expr_lexer *lx, size_t pos, const char *expected, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records a problem ("unterminated string") and what is accepted there (may be NULL). */
static int lex_fail(struct expr_lexer *lx, size_t pos, const char *expected, const char *fmt, ...)
{
	va_list ap;

	lx->error_pos = pos;
	lx->expected = expected;
	va_start(ap, fmt);
	vsnprintf(lx->error, sizeof(lx->error), fmt, ap);
	va_end(ap);
	return -1;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Units of a duration, longest first where one is a prefix of another. */
static const struct {
	const char *suffix;
	int64_t ms;
} duration_units[] = {
    {"ms", 1},
    {"s", 1000},
    {"m", 60 * 1000},
    {"h", 3600 * 1000},
    {"d", 24 * 3600 * 1000},
    {"w", 7 * 24 * 3600 * 1000LL},
    {"y", 365 * 24 * 3600 * 1000LL},
};

/* Matches a unit at p; returns its index, or -1. */
static int duration_unit_at(const char *p, size_t avail)
{
	for (size_t i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++) {
		size_t n = strlen(duration_units[i].suffix);

		if (n <= avail && memcmp(p, duration_units[i].suffix, n) == 0)
			return (int)i;
	}
	return -1;
}

int expr_parse_duration(const char *text, size_t len, int64_t *out_ms)
{
	size_t i = 0;
	int64_t total = 0;
	int last_unit = -1;

	if (len == 0)
		return -1;
	while (i < len) {
		int64_t n = 0;
		int unit;

		if (!is_digit(text[i]))
			return -1;
		while (i < len && is_digit(text[i])) {
			if (n > (INT64_MAX - 9) / 10)
				return -1;
			n = n * 10 + (text[i] - '0');
			i++;
		}
		unit = duration_unit_at(text + i, len - i);
		/* Units must come from the largest to the smallest, each at most once. */
		if (unit < 0 ||
		    (last_unit >= 0 && duration_units[unit].ms >= duration_units[last_unit].ms))
			return -1;
		if (n > INT64_MAX / duration_units[unit].ms ||
		    total > INT64_MAX - n * duration_units[unit].ms)
			return -1;
		total += n * duration_units[unit].ms;
		i += strlen(duration_units[unit].suffix);
		last_unit = unit;
	}
	*out_ms = total;
	return 0;
}

/* Length of a duration-shaped run at p (digits and unit letters). */
static size_t duration_span(const char *p, size_t avail)
{
	size_t i = 0;

	while (i < avail && (is_digit(p[i]) || is_alpha(p[i])))
		i++;
	return i;
}

static int lex_number(struct expr_lexer *lx, struct expr_token *tok)
{
	const char *start = lx->text + lx->pos;
	size_t i = 0;
	char *end;

	/* A run of digits followed directly by a unit letter is a duration. */
	while (is_digit(start[i]))
		i++;
	if (i > 0 && duration_unit_at(start + i, lx->len - lx->pos - i) >= 0 &&
	    !(start[i] == 'e' || start[i] == 'E')) {
		size_t span = duration_span(start, lx->len - lx->pos);

		tok->kind = EXPR_TOK_DURATION;
		tok->len = span;
		if (expr_parse_duration(start, span, &tok->duration) < 0)
			return lex_fail(lx, lx->pos,
					"digits and units from largest to smallest (ms, s, m, h, "
					"d, w, y) like 1h30m",
					"invalid duration \"%.*s\"", (int)span, start);
		lx->pos += span;
		return 0;
	}
	errno = 0;
	if (start[0] == '0' && (start[1] == 'x' || start[1] == 'X') && is_hex(start[2]))
		tok->number = (double)strtoull(start, &end, 16);
	else
		tok->number = strtod(start, &end);
	if (end == start || (end < lx->text + lx->len && (is_alpha(*end) || is_digit(*end)))) {
		size_t span = 0;

		while (start[span] == '.' || is_digit(start[span]) || is_alpha(start[span]))
			span++;
		return lex_fail(lx, lx->pos,
				"a decimal or hexadecimal number like 42, 0.5, 1e3 or 0x1f",
				"invalid number \"%.*s\"", (int)(span ? span : 1), start);
	}
	tok->kind = EXPR_TOK_NUMBER;
	tok->len = (size_t)(end - start);
	lx->pos += tok->len;
	return 0;
}

/* Appends code point `cp` in UTF-8. */
static void append_utf8(char *out, size_t *n, unsigned long cp)
{
	if (cp < 0x80) {
		out[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*n)++] = (char)(0xc0 | (cp >> 6));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[(*n)++] = (char)(0xe0 | (cp >> 12));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*n)++] = (char)(0xf0 | (cp >> 18));
		out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/* Decodes one backslash escape at text[*i] (just after the backslash), Go's rules. */
static int lex_escape(struct expr_lexer *lx, size_t *i, char quote, char *out, size_t *n)
{
	const char *t = lx->text;
	char c = t[*i];
	size_t digits = 0;
	int base = 16;
	unsigned long cp = 0;

	switch (c) {
	case 'a':
		out[(*n)++] = '\a';
		break;
	case 'b':
		out[(*n)++] = '\b';
		break;
	case 'f':
		out[(*n)++] = '\f';
		break;
	case 'n':
		out[(*n)++] = '\n';
		break;
	case 'r':
		out[(*n)++] = '\r';
		break;
	case 't':
		out[(*n)++] = '\t';
		break;
	case 'v':
		out[(*n)++] = '\v';
		break;
	case '\\':
		out[(*n)++] = '\\';
		break;
	case 'x':
		digits = 2;
		break;
	case 'u':
		digits = 4;
		break;
	case 'U':
		digits = 8;
		break;
	default:
		if (c == quote) {
			out[(*n)++] = c;
			break;
		}
		if (c >= '0' && c <= '7') {
			digits = 3;
			base = 8;
			(*i)--; /* the digit is part of the value */
			break;
		}
		return lex_fail(lx, *i - 1,
				"one of \\\\ \\\" \\' \\n \\t \\r \\xHH \\uHHHH; write \\\\ for a "
				"backslash, for instance in a regex, or use a `raw string`",
				"unknown escape sequence \"\\%c\" in string", c ? c : ' ');
	}
	(*i)++;
	if (digits == 0)
		return 0;
	for (size_t k = 0; k < digits; k++, (*i)++) {
		char d = t[*i];
		int v;

		if (base == 8 && d >= '0' && d <= '7')
			v = d - '0';
		else if (base == 16 && is_hex(d))
			v = is_digit(d) ? d - '0' : (d | 0x20) - 'a' + 10;
		else
			return lex_fail(lx, *i, base == 8 ? "3 octal digits" : "hexadecimal digits",
					"invalid escape sequence in string");
		cp = cp * (unsigned long)base + (unsigned long)v;
	}
	if (c == 'x' || base == 8) {
		if (cp > 255)
			return lex_fail(lx, *i - digits, "a value up to \\377",
					"octal escape above \\377 in string");
		out[(*n)++] = (char)cp;
	} else {
		if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
			return lex_fail(lx, *i - digits - 2, "a Unicode code point",
					"invalid Unicode escape in string");
		append_utf8(out, n, cp);
	}
	return 0;
}

static int lex_string(struct expr_lexer *lx, struct expr_token *tok)
{
	char quote = lx->text[lx->pos];
	size_t i = lx->pos + 1;
	size_t n = 0;
	char *out = xmalloc(lx->len - lx->pos + 1); /* decoding never grows the text */

	for (;;) {
		char c = lx->text[i];

		if (c == '\0' || (c == '\n' && quote != '`')) {
			free(out);
			return lex_fail(lx, lx->pos,
					quote == '"'    ? "a closing \" on the same line"
					: quote == '\'' ? "a closing ' on the same line"
							: "a closing `",
					"unterminated string");
		}
		if (c == quote) {
			i++;
			break;
		}
		if (c == '\\' && quote != '`') {
			i++;
			if (lex_escape(lx, &i, quote, out, &n) < 0) {
				free(out);
				return -1;
			}
			continue;
		}
		out[n++] = c;
		i++;
	}
	out[n] = '\0';
	free(lx->string);
	lx->string = out;
	tok->kind = EXPR_TOK_STRING;
	tok->string = out;
	tok->len = i - lx->pos;
	lx->pos = i;
	return 0;
}

static void skip_space(struct expr_lexer *lx)
{
	for (;;) {
		char c = lx->text[lx->pos];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			lx->pos++;
		} else if (c == '#') {
			while (lx->pos < lx->len && lx->text[lx->pos] != '\n')
				lx->pos++;
		} else {
			return;
		}
	}
}

struct punct {
	const char *text;
	enum expr_token_kind kind;
};

/* Two-character operators first. */
static const struct punct puncts[] = {
    {"==", EXPR_TOK_EQL},    {"!=", EXPR_TOK_NEQ},     {"=~", EXPR_TOK_EQL_RE},
    {"!~", EXPR_TOK_NEQ_RE}, {">=", EXPR_TOK_GTE},     {"<=", EXPR_TOK_LTE},
    {"(", EXPR_TOK_LPAREN},  {")", EXPR_TOK_RPAREN},   {"{", EXPR_TOK_LBRACE},
    {"}", EXPR_TOK_RBRACE},  {"[", EXPR_TOK_LBRACKET}, {"]", EXPR_TOK_RBRACKET},
    {",", EXPR_TOK_COMMA},   {":", EXPR_TOK_COLON},    {"@", EXPR_TOK_AT},
    {"=", EXPR_TOK_ASSIGN},  {">", EXPR_TOK_GTR},      {"<", EXPR_TOK_LSS},
    {"+", EXPR_TOK_ADD},     {"-", EXPR_TOK_SUB},      {"*", EXPR_TOK_MUL},
    {"/", EXPR_TOK_DIV},     {"%", EXPR_TOK_MOD},      {"^", EXPR_TOK_POW},
};

int expr_lex_next(struct expr_lexer *lx, struct expr_token *tok)
{
	const char *p;

	skip_space(lx);
	memset(tok, 0, sizeof(*tok));
	tok->pos = lx->pos;
	p = lx->text + lx->pos;
	if (*p == '\0') {
		tok->kind = EXPR_TOK_EOF;
		return 0;
	}
	if (is_digit(*p) || (*p == '.' && is_digit(p[1])))
		return lex_number(lx, tok);
	if (*p == '"' || *p == '\'' || *p == '`')
		return lex_string(lx, tok);
	/* ":" starts a metric name, except before a digit (the step of a subquery). */
	if (is_alpha(*p) || (*p == ':' && !is_digit(p[1]))) {
		size_t n = 0;

		while (is_alpha(p[n]) || is_digit(p[n]) || p[n] == ':')
			n++;
		tok->len = n;
		lx->pos += n;
		if ((n == 3 && strncasecmp(p, "inf", 3) == 0) ||
		    (n == 3 && strncasecmp(p, "nan", 3) == 0)) {
			tok->kind = EXPR_TOK_NUMBER;
			tok->number = (p[0] | 0x20) == 'i' ? INFINITY : NAN;
			return 0;
		}
		tok->kind = EXPR_TOK_IDENT;
		return 0;
	}
	for (size_t i = 0; i < sizeof puncts / sizeof puncts[0]; i++) {
		size_t n = strlen(puncts[i].text);

		if (strncmp(p, puncts[i].text, n) == 0) {
			tok->kind = puncts[i].kind;
			tok->len = n;
			lx->pos += n;
			return 0;
		}
	}
	if ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f)
		return lex_fail(lx, lx->pos, NULL, "unexpected character \"%c\"", *p);
	return lex_fail(lx, lx->pos, NULL, "unexpected character 0x%02x", (unsigned char)*p);
}

void expr_token_describe(const struct expr_lexer *lx, const struct expr_token *tok, char *buf,
			 size_t size)
{
	const char *text = lx->text + tok->pos;
	int len = (int)(tok->len > 40 ? 40 : tok->len);

	switch (tok->kind) {
	case EXPR_TOK_EOF:
		snprintf(buf, size, "end of expr");
		break;
	case EXPR_TOK_IDENT:
		snprintf(buf, size, "identifier \"%.*s\"", len, text);
		break;
	case EXPR_TOK_NUMBER:
		snprintf(buf, size, "number %.*s", len, text);
		break;
	case EXPR_TOK_DURATION:
		snprintf(buf, size, "duration %.*s", len, text);
		break;
	case EXPR_TOK_STRING:
		snprintf(buf, size, "string %.*s%s", len, text, tok->len > 40 ? "..." : "");
		break;
	default:
		snprintf(buf, size, "\"%.*s\"", len, text);
		break;
	}
}
