/*
 * Alert templates: the subset of Go's text/template listed in template.h, parsed once into
 * a list of text and action nodes and rendered for each alert. Every operand's type
 * (string, float or integer) is known at parse time, and every function returns a string.
 * So argument counts, argument types, literal printf formats and literal regexes are
 * checked when the rule file loads. Rendering can only fail on data: a label that is not a
 * number, a timestamp out of range, or a format or pattern that comes from a label. Output
 * follows Prometheus 2.42 (Go's fmt and strconv for numbers).
 */
#include "collector/template.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/cfg.h"
#include "collector/template_impl.h"
#include "collector/xalloc.h"

/* Deepest nesting of parenthesised pipelines, which bounds the recursion of rendering. */
#define MAX_NESTING 32

enum operand_kind {
	OPERAND_STRING,
	OPERAND_FLOAT,
	OPERAND_INT,
	OPERAND_VALUE,          /* $value, .Value */
	OPERAND_LABEL,          /* $labels.NAME, .Labels.NAME */
	OPERAND_EXTERNAL_LABEL, /* $externalLabels.NAME, .ExternalLabels.NAME */
	OPERAND_PIPELINE,       /* ( ... ) */
};

struct pipeline;

struct operand {
	enum operand_kind kind;
	size_t pos;
	char *text; /* the string literal or the label name */
	double number;
	long long integer;
	struct pipeline *pipeline;
};

enum function_id {
	FN_HUMANIZE,
	FN_HUMANIZE1024,
	FN_HUMANIZE_DURATION,
	FN_HUMANIZE_PERCENTAGE,
	FN_HUMANIZE_TIMESTAMP,
	FN_PRINTF,
	FN_TO_UPPER,
	FN_TO_LOWER,
	FN_TITLE,
	FN_RE_REPLACE_ALL,
};

struct function {
	const char *name;
	enum function_id id;
	size_t min_args;
	size_t max_args;
};

static const struct function functions[] = {
    {"humanize", FN_HUMANIZE, 1, 1},
    {"humanize1024", FN_HUMANIZE1024, 1, 1},
    {"humanizeDuration", FN_HUMANIZE_DURATION, 1, 1},
    {"humanizePercentage", FN_HUMANIZE_PERCENTAGE, 1, 1},
    {"humanizeTimestamp", FN_HUMANIZE_TIMESTAMP, 1, 1},
    {"printf", FN_PRINTF, 1, SIZE_MAX},
    {"toUpper", FN_TO_UPPER, 1, 1},
    {"toLower", FN_TO_LOWER, 1, 1},
    {"title", FN_TITLE, 1, 1},
    {"reReplaceAll", FN_RE_REPLACE_ALL, 3, 3},
};

#define FUNCTION_LIST                                                                              \
	"humanize, humanize1024, humanizeDuration, humanizePercentage, humanizeTimestamp, "        \
	"printf, toUpper, toLower, title or reReplaceAll"

/* Functions of Go's templates and of Prometheus that tocsin does not provide. */
static const char *const unsupported_functions[] = {
    "and",         "call",
    "html",        "index",
    "slice",       "js",
    "len",         "not",
    "or",          "print",
    "println",     "urlquery",
    "eq",          "ne",
    "lt",          "le",
    "gt",          "ge",
    "query",       "first",
    "label",       "value",
    "strvalue",    "args",
    "safeHtml",    "match",
    "graphLink",   "tableLink",
    "sortByLabel", "stripPort",
    "stripDomain", "pathPrefix",
    "externalURL", "parseDuration",
    "toTime",      "toDuration",
    "now",
};

static const char *const keywords[] = {
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
};

struct command {
	const struct function *func; /* NULL: the command is its one operand */
	size_t pos;
	struct operand *args;
	size_t arg_count;
	bool piped;                   /* the previous command's result is the last argument */
	struct template_regex *regex; /* reReplaceAll with a literal pattern, compiled at parse */
	bool format_checked;          /* printf with a literal format, checked at parse */
};

struct pipeline {
	struct command *commands;
	size_t count;
	enum template_type type;
};

/* A text node (action NULL) copies source[start, start + len); an action renders a pipeline. */
struct node {
	size_t start;
	size_t len;
	struct pipeline *action;
};

struct template
{
	char *source;
	struct node *nodes;
	size_t count;
	size_t capacity;
	bool constant;
};

/* Writes "column C" or "line L, column C" for byte offset pos, counting UTF-8 characters. */
static void describe_position(const char *text, size_t pos, char *buf, size_t size)
{
	int line = 1;
	int column = 1;

	for (size_t i = 0; i < pos && text[i] != '\0'; i++) {
		if (text[i] == '\n') {
			line++;
			column = 1;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			column++;
		}
	}
	if (line == 1)
		snprintf(buf, size, "column %d", column);
	else
		snprintf(buf, size, "line %d, column %d", line, column);
}

static void value_release(struct template_value *v)
{
	free(v->owned);
	v->owned = NULL;
}

static void value_set_owned(struct template_value *v, char *text)
{
	*v = (struct template_value){.type = TEMPLATE_TYPE_STRING, .owned = text};
}

/* Appends a value as Go's text/template prints it (fmt's %v). */
static void append_value(struct template_buf *out, const struct template_value *v)
{
	char buf[40];

	switch (v->type) {
	case TEMPLATE_TYPE_STRING:
		template_buf_puts(out, template_value_text(v));
		return;
	case TEMPLATE_TYPE_FLOAT:
		template_format_float(v->number, buf, sizeof(buf));
		break;
	case TEMPLATE_TYPE_INT:
		snprintf(buf, sizeof(buf), "%lld", v->integer);
		break;
	}
	template_buf_puts(out, buf);
}

/* ---- lexer ------------------------------------------------------------------------------ */

enum token_kind {
	TOK_CLOSE, /* }} or, after white space, -}} */
	TOK_EOF,   /* the end of the template, inside an action */
	TOK_STRING,
	TOK_RAW_STRING,
	TOK_CHAR,
	TOK_NUMBER,
	TOK_VARIABLE, /* $name and the .field chain right after it */
	TOK_FIELD,    /* .Name chain, or a lone . */
	TOK_IDENT,
	TOK_LPAREN,
	TOK_RPAREN,
	TOK_PIPE,
	TOK_DECLARE,
	TOK_ASSIGN,
	TOK_COMMA,
	TOK_INVALID, /* a character that starts no token */
};

struct token {
	enum token_kind kind;
	size_t pos;
	size_t end;
	bool trim; /* TOK_CLOSE: -}} trims the white space after the action */
};

struct parser {
	const char *text;
	size_t pos;        /* where the lexer reads, inside the current action */
	size_t action_pos; /* the {{ of the current action */
	struct token tok;  /* the lookahead */
	const struct expr_location *loc;
	int depth;
	char *error;
};

/* White space as Go's templates define it around trim markers and inside actions. */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Records the first error: "FILE:LINE:COL: PROBLEM at column N of template, expected WHAT". */
static int fail(struct parser *p, size_t pos, const char *expected, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct parser *p, size_t pos, const char *expected, const char *fmt, ...)
{
	char problem[512];
	char where[48];
	char prefix[300] = "";
	va_list ap;

	if (p->error != NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	describe_position(p->text, pos, where, sizeof(where));
	if (p->loc != NULL)
		snprintf(prefix, sizeof(prefix), "%s:%d:%d: ", p->loc->file ? p->loc->file : "",
			 p->loc->line, p->loc->column);
	p->error = xasprintf("%s%s at %s of template%s%s", prefix, problem, where,
			     expected != NULL && *expected != '\0' ? ", expected " : "",
			     expected != NULL ? expected : "");
	return -1;
}

static int fail_problem(struct parser *p, size_t pos, const struct template_problem *pb)
{
	return fail(p, pos, pb->expected, "%s", pb->text);
}

/* Scans a "..." or '...' literal at i. Returns its end, or 0 when it is unterminated. */
static size_t scan_quoted(const char *t, size_t i)
{
	char quote = t[i++];

	for (; t[i] != quote; i++) {
		if (t[i] == '\\' && t[i + 1] != '\0' && t[i + 1] != '\n')
			i++;
		else if (t[i] == '\0' || t[i] == '\n')
			return 0;
	}
	return i + 1;
}

/* Scans a number: a sign, then letters, digits, "_" and ".", and a sign after an exponent. */
static size_t scan_number(const char *t, size_t i)
{
	bool hex;

	if (t[i] == '+' || t[i] == '-')
		i++;
	hex = t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'X');
	for (; is_ident_char(t[i]) || t[i] == '.'; i++) {
		char c = (char)tolower((unsigned char)t[i]);

		if ((c == (hex ? 'p' : 'e')) && (t[i + 1] == '+' || t[i + 1] == '-'))
			i++;
	}
	return i;
}

/* Scans "name" followed by any number of ".name" at i, and returns the end. */
static size_t scan_chain(const char *t, size_t i)
{
	while (is_ident_char(t[i]))
		i++;
	while (t[i] == '.' && is_ident_char(t[i + 1]))
		for (i++; is_ident_char(t[i]);)
			i++;
	return i;
}

static void lex_symbol(struct parser *p, struct token *tok)
{
	const char *t = p->text;
	size_t i = tok->pos;
	uint32_t cp;

	tok->end = i + 1;
	if (t[i] == '(')
		tok->kind = TOK_LPAREN;
	else if (t[i] == ')')
		tok->kind = TOK_RPAREN;
	else if (t[i] == '|')
		tok->kind = TOK_PIPE;
	else if (t[i] == ',')
		tok->kind = TOK_COMMA;
	else if (t[i] == '=')
		tok->kind = TOK_ASSIGN;
	else if (t[i] == ':' && t[i + 1] == '=')
		tok->kind = TOK_DECLARE, tok->end = i + 2;
	else
		tok->kind = TOK_INVALID, tok->end = i + template_utf8_decode(t + i, &cp);
}

/* Reads the next token of the action into p->tok. */
static int lex_next(struct parser *p)
{
	const char *t = p->text;
	size_t i = p->pos;
	struct token *tok = &p->tok;

	while (is_space(t[i]) && !(t[i + 1] == '-' && t[i + 2] == '}' && t[i + 3] == '}'))
		i++;
	*tok = (struct token){.pos = i, .end = i};
	if (is_space(t[i])) {
		*tok = (struct token){TOK_CLOSE, i + 1, i + 4, true};
	} else if (t[i] == '\0') {
		tok->kind = TOK_EOF;
	} else if (t[i] == '}' && t[i + 1] == '}') {
		*tok = (struct token){TOK_CLOSE, i, i + 2, false};
	} else if (t[i] == '"' || t[i] == '\'') {
		tok->kind = t[i] == '"' ? TOK_STRING : TOK_CHAR;
		tok->end = scan_quoted(t, i);
		if (tok->end == 0)
			return fail(
			    p, i, t[i] == '"' ? "a closing \" on the same line" : "a closing '",
			    "unterminated %s", t[i] == '"' ? "string" : "character literal");
	} else if (t[i] == '`') {
		const char *close = strchr(t + i + 1, '`');

		if (close == NULL)
			return fail(p, i, "a closing `", "unterminated raw string");
		tok->kind = TOK_RAW_STRING;
		tok->end = (size_t)(close - t) + 1;
	} else if (t[i] == '$') {
		tok->kind = TOK_VARIABLE;
		tok->end = scan_chain(t, i + 1);
	} else if (t[i] == '.' && !isdigit((unsigned char)t[i + 1])) {
		tok->kind = TOK_FIELD;
		tok->end = is_ident_char(t[i + 1]) ? scan_chain(t, i + 1) : i + 1;
	} else if (isdigit((unsigned char)t[i]) || t[i] == '.' || t[i] == '+' || t[i] == '-') {
		tok->kind = TOK_NUMBER;
		tok->end = scan_number(t, i);
	} else if (isalpha((unsigned char)t[i]) || t[i] == '_') {
		tok->kind = TOK_IDENT;
		tok->end = scan_chain(t, i);
	} else {
		lex_symbol(p, tok);
	}
	p->pos = tok->end;
	return 0;
}

/* Writes the token for a message: "end of template", or its text in quotes. */
static void describe_token(const struct parser *p, const struct token *tok, char *buf, size_t size)
{
	char *text;

	if (tok->kind == TOK_EOF) {
		snprintf(buf, size, "end of template");
		return;
	}
	text = xstrndup(p->text + tok->pos, tok->end - tok->pos);
	cfg_quote(text, buf, size);
	free(text);
}

static int fail_unexpected(struct parser *p, const char *expected)
{
	char what[CFG_QUOTE_SIZE];

	if (p->tok.kind == TOK_EOF)
		return fail(p, p->action_pos, "}}", "unclosed action");
	describe_token(p, &p->tok, what, sizeof(what));
	return fail(p, p->tok.pos, expected, "unexpected %s", what);
}

static int advance(struct parser *p)
{
	return lex_next(p);
}

/* ---- parser ----------------------------------------------------------------------------- */

#define STRING_EXPECTED "a string (printf \"%v\" formats a number as one)"
#define VALUE_LIST      "$value, $labels.NAME or $externalLabels.NAME"
#define FIELD_LIST      ".Value, .Labels.NAME or .ExternalLabels.NAME"
#define ESCAPE_LIST                                                                                \
	"\\\\, \\\", \\a, \\b, \\f, \\n, \\r, \\t, \\v, \\NNN (octal), \\xHH, \\uHHHH or "         \
	"\\UHHHHHHHH"

static struct pipeline *parse_pipeline(struct parser *p, bool in_parens);
static void pipeline_free(struct pipeline *pl);

static int hex_value(char c)
{
	return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

/*
 * Decodes the escape at s (just after the backslash) as Go's strconv.Unquote does in a
 * double-quoted string. Returns its length, or 0 when it is invalid.
 */
static size_t decode_escape(const char *s, struct template_buf *out)
{
	static const char from[] = "abfnrtv\\\"";
	static const char to[] = "\a\b\f\n\r\t\v\\\"";
	size_t digits = 0;
	uint32_t cp = 0;
	char enc[4];

	if (s[0] == 'x')
		digits = 2;
	else if (s[0] == 'u')
		digits = 4;
	else if (s[0] == 'U')
		digits = 8;
	if (s[0] != '\0' && strchr(from, s[0]) != NULL) {
		template_buf_putc(out, to[strchr(from, s[0]) - from]);
		return 1;
	}
	if (s[0] >= '0' && s[0] <= '7') {
		for (size_t i = 0; i < 3; i++) {
			if (s[i] < '0' || s[i] > '7')
				return 0;
			cp = cp * 8 + (uint32_t)(s[i] - '0');
		}
		if (cp > 255)
			return 0;
		template_buf_putc(out, (char)cp);
		return 3;
	}
	if (digits == 0)
		return 0;
	for (size_t i = 1; i <= digits; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return 0;
		cp = cp * 16 + (uint32_t)hex_value(s[i]);
	}
	if (digits == 2)
		template_buf_putc(out, (char)cp);
	else if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	else
		template_buf_append(out, enc, template_utf8_encode(cp, enc));
	return digits + 1;
}

/* Decodes a string literal token; a raw string loses its carriage returns, as in Go. */
static int decode_string(struct parser *p, const struct token *tok, char **out)
{
	struct template_buf b = {0};
	const char *t = p->text;

	for (size_t i = tok->pos + 1; i + 1 < tok->end; i++) {
		size_t n;
		size_t before = b.len;

		if (tok->kind == TOK_RAW_STRING || t[i] != '\\') {
			if (t[i] != '\r' || tok->kind != TOK_RAW_STRING)
				template_buf_putc(&b, t[i]);
			continue;
		}
		n = decode_escape(t + i + 1, &b);
		if (n == 0 || memchr(b.data + before, '\0', b.len - before) != NULL) {
			uint32_t cp;
			size_t width = template_utf8_decode(t + i + 1, &cp);

			free(b.data);
			if (n != 0)
				return fail(p, i, "a character other than NUL",
					    "NUL character in string is not supported");
			return fail(p, i, ESCAPE_LIST, "invalid escape \\%.*s in string",
				    (int)width, t + i + 1);
		}
		i += n;
	}
	*out = template_buf_finish(&b);
	return 0;
}

/* Parses an unsigned integer in base, with every character a digit of it. */
static bool parse_unsigned(const char *s, int base, unsigned long long *out)
{
	char *end;

	if (*s == '\0' || !isalnum((unsigned char)*s))
		return false;
	errno = 0;
	*out = strtoull(s, &end, base);
	return *end == '\0' && errno == 0;
}

/*
 * Parses a number literal as Go's templates do: an integer (decimal, 0x hexadecimal, 0o or
 * leading-0 octal, 0b binary) is an int, anything with ".", "e" or "E" is a float64.
 */
static int parse_number(struct parser *p, const struct token *tok, struct operand *o)
{
	char text[64];
	char quoted[CFG_QUOTE_SIZE];
	size_t len = tok->end - tok->pos;
	const char *body = text;
	bool neg = false;
	unsigned long long u;
	int base = 10;
	char *end;

	snprintf(text, sizeof(text), "%.*s", (int)(len < sizeof(text) ? len : sizeof(text) - 1),
		 p->text + tok->pos);
	if (*body == '+' || *body == '-')
		neg = *body++ == '-';
	if (body[0] == '0' && body[1] != '\0' && strchr("xXoObB", body[1]) != NULL) {
		if (body[1] == 'x' || body[1] == 'X')
			base = 16;
		else if (body[1] == 'o' || body[1] == 'O')
			base = 8;
		else
			base = 2;
		body += 2;
	} else if (strpbrk(body, ".eE") != NULL) {
		o->kind = OPERAND_FLOAT;
		errno = 0;
		o->number = strtod(text, &end);
		if (len < sizeof(text) && *end == '\0' && end != text &&
		    (isdigit((unsigned char)*body) || body[0] == '.')) {
			if (isfinite(o->number))
				return 0;
			return fail(p, tok->pos, "a number within the range of a float64",
				    "number %s is out of range",
				    cfg_quote(text, quoted, sizeof(quoted)));
		}
		body = NULL;
	} else if (body[0] == '0' && body[1] != '\0') {
		base = 8;
		body++;
	}
	if (body != NULL && parse_unsigned(body, base, &u) && len < sizeof(text) &&
	    u <= (unsigned long long)LLONG_MAX + neg) {
		o->kind = OPERAND_INT;
		o->integer = neg ? (long long)(0ULL - u) : (long long)u;
		return 0;
	}
	return fail(p, tok->pos, "a decimal, 0x hexadecimal, 0o octal or 0b binary number",
		    "invalid number %s", cfg_quote(text, quoted, sizeof(quoted)));
}

/* True when the action continues with := or = after the token: a variable declaration. */
static bool declaration_follows(const struct parser *p, const struct token *tok)
{
	size_t i = tok->end;

	while (is_space(p->text[i]))
		i++;
	return p->text[i] == '=' || (p->text[i] == ':' && p->text[i + 1] == '=');
}

/* Resolves the reference ROOT.NAME, where ROOT is a label map, to a label operand. */
static int resolve_label(struct parser *p, const struct token *tok, size_t root_len,
			 enum operand_kind kind, struct operand *o)
{
	const char *t = p->text + tok->pos;
	const char *name = t + root_len + 1;
	size_t len = tok->end - tok->pos;
	char *dot;
	char expected[32];

	snprintf(expected, sizeof(expected), "%.*s.NAME", (int)root_len, t);
	if (len <= root_len)
		return fail(p, tok->pos, expected, "%.*s needs a label name", (int)len, t);
	o->kind = kind;
	o->text = xstrndup(name, len - root_len - 1);
	dot = strchr(o->text, '.');
	if (dot != NULL)
		return fail(p, tok->pos + root_len + 1 + (size_t)(dot - o->text),
			    t[0] == '$' ? VALUE_LIST : FIELD_LIST,
			    "the value of label %.*s has no fields", (int)(dot - o->text), o->text);
	return 0;
}

/* The data of an alert, as $variables and as .Fields. */
struct reference {
	const char *variable;
	const char *field;
	enum operand_kind kind;
};

static const struct reference references[] = {
    {"$value", ".Value", OPERAND_VALUE},
    {"$labels", ".Labels", OPERAND_LABEL},
    {"$externalLabels", ".ExternalLabels", OPERAND_EXTERNAL_LABEL},
};

/* Resolves $name... and .Name... to the value, a label or an external label. */
static int resolve_reference(struct parser *p, const struct token *tok, struct operand *o)
{
	const char *t = p->text + tok->pos;
	size_t len = tok->end - tok->pos;
	size_t root = 1;
	bool var = tok->kind == TOK_VARIABLE;
	const char *accepted = var ? VALUE_LIST : FIELD_LIST;

	while (root < len && t[root] != '.')
		root++;
	if (var && declaration_follows(p, tok))
		return fail(p, tok->pos, "a value or a function call",
			    "variable declarations are not supported");
	for (size_t i = 0; i < sizeof(references) / sizeof(references[0]); i++) {
		const char *name = var ? references[i].variable : references[i].field;

		if (strlen(name) != root || strncmp(t, name, root) != 0)
			continue;
		if (references[i].kind != OPERAND_VALUE)
			return resolve_label(p, tok, root, references[i].kind, o);
		if (root < len)
			return fail(p, tok->pos + root, name, "the alert value has no fields");
		o->kind = OPERAND_VALUE;
		return 0;
	}
	if (len == 1)
		return fail(p, tok->pos, accepted, "%s (the whole data) is not supported",
			    var ? "$" : ".");
	if (strncmp(t, var ? "$externalURL" : ".ExternalURL", root) == 0 && root == 12)
		return fail(p, tok->pos, accepted, "%.*s is not supported", (int)root, t);
	return fail(p, tok->pos, accepted, "unknown %s %.*s", var ? "variable" : "field", (int)root,
		    t);
}

static int parse_parenthesised(struct parser *p, struct operand *o)
{
	size_t open = p->tok.pos;

	if (p->depth >= MAX_NESTING)
		return fail(p, open, NULL, "parentheses nested deeper than %d", MAX_NESTING);
	if (advance(p) < 0)
		return -1;
	if (p->tok.kind == TOK_RPAREN)
		return fail(p, open, "a value or a function call", "empty parentheses");
	p->depth++;
	o->kind = OPERAND_PIPELINE;
	o->pipeline = parse_pipeline(p, true);
	p->depth--;
	if (o->pipeline == NULL)
		return -1;
	if (p->tok.kind != TOK_RPAREN)
		return p->tok.kind == TOK_EOF ? fail_unexpected(p, NULL)
					      : fail(p, open, ")", "unclosed (");
	return advance(p);
}

/* Parses one operand: a literal, a reference or a parenthesised pipeline. */
static int parse_operand(struct parser *p, struct operand *o)
{
	struct token tok = p->tok;
	char what[CFG_QUOTE_SIZE];

	o->pos = tok.pos;
	switch (tok.kind) {
	case TOK_STRING:
	case TOK_RAW_STRING:
		o->kind = OPERAND_STRING;
		if (decode_string(p, &tok, &o->text) < 0)
			return -1;
		break;
	case TOK_NUMBER:
		if (parse_number(p, &tok, o) < 0)
			return -1;
		break;
	case TOK_VARIABLE:
	case TOK_FIELD:
		if (resolve_reference(p, &tok, o) < 0)
			return -1;
		break;
	case TOK_LPAREN:
		return parse_parenthesised(p, o);
	case TOK_CHAR:
		describe_token(p, &tok, what, sizeof(what));
		return fail(p, tok.pos, "a string in double quotes",
			    "character literal %s is not supported", what);
	default:
		return fail_unexpected(p, "a value");
	}
	return advance(p);
}

static enum template_type operand_type(const struct operand *o)
{
	switch (o->kind) {
	case OPERAND_FLOAT:
	case OPERAND_VALUE:
		return TEMPLATE_TYPE_FLOAT;
	case OPERAND_INT:
		return TEMPLATE_TYPE_INT;
	case OPERAND_PIPELINE:
		return o->pipeline->type;
	default:
		return TEMPLATE_TYPE_STRING;
	}
}

/* Type of argument i of a call, where the piped value is the last argument. */
static enum template_type arg_type(const struct command *c, size_t i, enum template_type piped)
{
	return i < c->arg_count ? operand_type(&c->args[i]) : piped;
}

/* Position of argument i for messages: the function's for the piped value. */
static size_t arg_pos(const struct command *c, size_t i)
{
	return i < c->arg_count ? c->args[i].pos : c->pos;
}

static int check_string_args(struct parser *p, const struct command *c, enum template_type piped)
{
	size_t total = c->arg_count + c->piped;

	for (size_t i = 0; i < total; i++) {
		enum template_type type = arg_type(c, i, piped);

		if (type == TEMPLATE_TYPE_STRING)
			continue;
		if (i >= c->arg_count)
			return fail(p, c->pos, STRING_EXPECTED, "the value piped into %s is %s",
				    c->func->name, template_type_name(type));
		return fail(p, arg_pos(c, i), STRING_EXPECTED, "argument %zu of %s is %s", i + 1,
			    c->func->name, template_type_name(type));
	}
	return 0;
}

static int check_printf(struct parser *p, struct command *c, enum template_type piped)
{
	size_t total = c->arg_count + c->piped;
	enum template_type *types;
	struct template_problem pb;
	size_t bad;
	int rc = 0;

	if (arg_type(c, 0, piped) != TEMPLATE_TYPE_STRING)
		return fail(p, arg_pos(c, 0), "a format string", "the format of printf is %s",
			    template_type_name(arg_type(c, 0, piped)));
	if (c->arg_count == 0 || c->args[0].kind != OPERAND_STRING)
		return 0; /* checked when rendering */
	types = xcalloc(total, sizeof(*types));
	for (size_t i = 1; i < total; i++)
		types[i - 1] = arg_type(c, i, piped);
	if (template_printf_check(c->args[0].text, types, total - 1, &pb, &bad) < 0)
		rc = fail_problem(p, bad < total - 1 ? arg_pos(c, bad + 1) : c->args[0].pos, &pb);
	free(types);
	c->format_checked = true;
	return rc;
}

/* Checks the argument types of a call, and compiles or checks its literal arguments. */
static int check_call(struct parser *p, struct command *c, enum template_type piped)
{
	struct template_problem pb;
	char quoted[CFG_QUOTE_SIZE];
	double unused;

	switch (c->func->id) {
	case FN_HUMANIZE:
	case FN_HUMANIZE1024:
	case FN_HUMANIZE_DURATION:
	case FN_HUMANIZE_PERCENTAGE:
	case FN_HUMANIZE_TIMESTAMP:
		if (c->arg_count == 1 && c->args[0].kind == OPERAND_STRING &&
		    !template_parse_float(c->args[0].text, &unused))
			return fail(p, c->args[0].pos, "a number, or a string that contains one",
				    "argument of %s is not a number: %s", c->func->name,
				    cfg_quote(c->args[0].text, quoted, sizeof(quoted)));
		return 0;
	case FN_PRINTF:
		return check_printf(p, c, piped);
	case FN_TO_UPPER:
	case FN_TO_LOWER:
	case FN_TITLE:
		return check_string_args(p, c, piped);
	case FN_RE_REPLACE_ALL:
		if (check_string_args(p, c, piped) < 0)
			return -1;
		if (c->args[0].kind != OPERAND_STRING)
			return 0; /* compiled when rendering */
		c->regex = template_regex_compile(c->args[0].text, &pb);
		return c->regex == NULL ? fail_problem(p, c->args[0].pos, &pb) : 0;
	}
	return 0;
}

static bool token_is(const struct parser *p, const struct token *tok, const char *word)
{
	size_t len = tok->end - tok->pos;

	return len == strlen(word) && strncmp(p->text + tok->pos, word, len) == 0;
}

/* Looks a function name up, and fails with a message that names it when it is missing. */
static const struct function *lookup_function(struct parser *p, const struct token *tok)
{
	static const char *const constants[] = {"true", "false", "nil"};
	const char *name = p->text + tok->pos;
	int len = (int)(tok->end - tok->pos);

	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (token_is(p, tok, keywords[i])) {
			fail(p, tok->pos, "a value or a function call", "%s is not supported",
			     keywords[i]);
			return NULL;
		}
	for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++)
		if (token_is(p, tok, constants[i])) {
			fail(p, tok->pos, "a string or a number", "%s is not supported",
			     constants[i]);
			return NULL;
		}
	for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++)
		if (token_is(p, tok, functions[i].name))
			return &functions[i];
	for (size_t i = 0; i < sizeof(unsupported_functions) / sizeof(unsupported_functions[0]);
	     i++)
		if (token_is(p, tok, unsupported_functions[i])) {
			fail(p, tok->pos, FUNCTION_LIST, "function %s is not supported",
			     unsupported_functions[i]);
			return NULL;
		}
	fail(p, tok->pos, FUNCTION_LIST, "unknown function %.*s", len, name);
	return NULL;
}

static bool at_command_end(const struct parser *p)
{
	enum token_kind k = p->tok.kind;

	return k == TOK_PIPE || k == TOK_CLOSE || k == TOK_RPAREN || k == TOK_EOF;
}

/* Parses a function call. piped is NULL for the first command of a pipeline. */
static int parse_call(struct parser *p, struct command *c, const enum template_type *piped)
{
	size_t cap = 0;
	size_t total;
	const struct function *f = lookup_function(p, &p->tok);

	if (f == NULL || advance(p) < 0)
		return -1;
	c->func = f;
	while (!at_command_end(p)) {
		if (p->tok.kind == TOK_IDENT) {
			const struct function *g = lookup_function(p, &p->tok);

			if (g == NULL)
				return -1;
			return fail(p, p->tok.pos, "(FUNCTION ARGUMENTS...) in parentheses",
				    "function %s as an argument needs parentheses", g->name);
		}
		c->args = xreallocarray_grow(c->args, &cap, c->arg_count + 1, sizeof(*c->args));
		c->args[c->arg_count] = (struct operand){0};
		if (parse_operand(p, &c->args[c->arg_count++]) < 0)
			return -1;
	}
	c->piped = piped != NULL;
	total = c->arg_count + c->piped;
	if (total < f->min_args || total > f->max_args) {
		char expected[48] = "a format and the values it formats";

		if (f->min_args == f->max_args)
			snprintf(expected, sizeof(expected), "%zu argument%s", f->min_args,
				 f->min_args == 1 ? "" : "s");
		return fail(p, c->pos, expected, "%s called with %zu argument%s%s", f->name, total,
			    total == 1 ? "" : "s",
			    c->piped ? " (the piped value is the last one)" : "");
	}
	return check_call(p, c, piped != NULL ? *piped : TEMPLATE_TYPE_STRING);
}

/* Parses a command: a function call, or a single operand (which cannot take a piped value). */
static int parse_command(struct parser *p, struct command *c, const enum template_type *piped,
			 bool in_parens)
{
	char what[CFG_QUOTE_SIZE];

	c->pos = p->tok.pos;
	if (p->tok.kind == TOK_IDENT)
		return parse_call(p, c, piped);
	if (piped != NULL) {
		describe_token(p, &p->tok, what, sizeof(what));
		return fail(p, p->tok.pos, "a function", "cannot pipe a value into %s", what);
	}
	c->args = xcalloc(1, sizeof(*c->args));
	c->arg_count = 1;
	if (parse_operand(p, &c->args[0]) < 0)
		return -1;
	if (!at_command_end(p))
		return fail_unexpected(p, in_parens ? "| or )" : "| or }}");
	return 0;
}

static struct pipeline *parse_pipeline(struct parser *p, bool in_parens)
{
	struct pipeline *pl = xcalloc(1, sizeof(*pl));
	size_t cap = 0;

	for (;;) {
		struct command *c;

		if (at_command_end(p)) {
			if (pl->count == 0 && p->tok.kind == TOK_PIPE)
				fail(p, p->tok.pos, "a value before |", "missing value before |");
			else if (p->tok.kind == TOK_EOF)
				fail_unexpected(p, NULL);
			else
				fail(p, p->tok.pos, "a function after |",
				     "missing function after |");
			break;
		}
		pl->commands = xreallocarray_grow(pl->commands, &cap, pl->count + 1, sizeof(*c));
		c = &pl->commands[pl->count++];
		*c = (struct command){0};
		if (parse_command(p, c, pl->count > 1 ? &pl->type : NULL, in_parens) < 0)
			break;
		pl->type = c->func != NULL ? TEMPLATE_TYPE_STRING : operand_type(&c->args[0]);
		if (p->tok.kind != TOK_PIPE)
			return pl;
		if (advance(p) < 0)
			break;
	}
	pipeline_free(pl);
	return NULL;
}

/* Parses the action whose {{ (and trim marker) ends at inner, up to p->tok at its }}. */
static struct pipeline *parse_action(struct parser *p, size_t open, size_t inner)
{
	struct pipeline *pl;

	p->pos = inner;
	p->action_pos = open;
	if (advance(p) < 0)
		return NULL;
	if (p->tok.kind == TOK_CLOSE) {
		fail(p, open, "a value or a function call", "empty action");
		return NULL;
	}
	pl = parse_pipeline(p, false);
	if (pl != NULL && p->tok.kind != TOK_CLOSE) {
		if (p->tok.kind == TOK_RPAREN)
			fail(p, p->tok.pos, "| or }}", "unexpected \")\" without (");
		else
			fail_unexpected(p, "| or }}");
		pipeline_free(pl);
		return NULL;
	}
	return pl;
}

/*
 * Skips the comment that starts at inner. As in Go, the comment's closing star and slash
 * must be followed directly by }} or by a space and -}}. Sets *next after the action, and
 * *trim for -}}.
 */
static int skip_comment(struct parser *p, size_t open, size_t inner, size_t *next, bool *trim)
{
	const char *close = strstr(p->text + inner + 2, "*/");
	size_t after;

	if (close == NULL)
		return fail(p, open, "*/}} at the end of the comment", "unclosed comment");
	after = (size_t)(close - p->text) + 2;
	*trim = is_space(p->text[after]) && strncmp(p->text + after + 1, "-}}", 3) == 0;
	if (*trim) {
		*next = after + 4;
		return 0;
	}
	if (strncmp(p->text + after, "}}", 2) == 0) {
		*next = after + 2;
		return 0;
	}
	return fail(p, after, "}} right after */", "text after the end of a comment");
}

static void template_add(struct template *t, size_t start, size_t len, struct pipeline *action)
{
	t->nodes = xreallocarray_grow(t->nodes, &t->capacity, t->count + 1, sizeof(*t->nodes));
	t->nodes[t->count++] = (struct node){start, len, action};
}

/* Adds the text [start, end), without the white space that trim markers remove. */
static void add_text(struct template *t, size_t start, size_t end, bool trim_start, bool trim_end)
{
	while (trim_start && start < end && is_space(t->source[start]))
		start++;
	while (trim_end && end > start && is_space(t->source[end - 1]))
		end--;
	if (end > start)
		template_add(t, start, end - start, NULL);
}

struct template *template_parse(const char *text, const struct expr_location *loc, char **error)
{
	struct template *t = xcalloc(1, sizeof(*t));
	struct parser p = {.loc = loc};
	size_t pos = 0;
	bool trim = false;

	*error = NULL;
	t->source = xstrdup(text);
	p.text = t->source;
	t->constant = strstr(text, "{{") == NULL;
	for (;;) {
		const char *open = strstr(t->source + pos, "{{");
		size_t at = open != NULL ? (size_t)(open - t->source) : strlen(t->source);
		/* "{{- " trims the white space before the action, but "{{-3" is the number -3. */
		bool trim_before = open != NULL && open[2] == '-' && is_space(open[3]);
		size_t inner = at + 2 + (trim_before ? 2 : 0);
		struct pipeline *action;

		add_text(t, pos, at, trim, trim_before);
		if (open == NULL)
			break;
		if (t->source[inner] == '/' && t->source[inner + 1] == '*') {
			if (skip_comment(&p, at, inner, &pos, &trim) < 0)
				break;
			continue;
		}
		action = parse_action(&p, at, inner);
		if (action == NULL)
			break;
		template_add(t, at, 0, action);
		pos = p.tok.end;
		trim = p.tok.trim;
	}
	if (p.error != NULL) {
		template_free(t);
		*error = p.error;
		return NULL;
	}
	return t;
}

int template_is_constant(const struct template *t)
{
	return t->constant;
}

static void operand_free(struct operand *o)
{
	free(o->text);
	pipeline_free(o->pipeline);
}

static void pipeline_free(struct pipeline *pl)
{
	if (pl == NULL)
		return;
	for (size_t i = 0; i < pl->count; i++) {
		struct command *c = &pl->commands[i];

		for (size_t k = 0; k < c->arg_count; k++)
			operand_free(&c->args[k]);
		free(c->args);
		template_regex_free(c->regex);
	}
	free(pl->commands);
	free(pl);
}

void template_free(struct template *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->count; i++)
		pipeline_free(t->nodes[i].action);
	free(t->nodes);
	free(t->source);
	free(t);
}

/* ---- rendering -------------------------------------------------------------------------- */

struct render {
	const struct template *t;
	const struct template_data *data;
	char *error;
};

/* Records a run-time error: "PROBLEM at column N of template". */
static int render_fail(struct render *r, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int render_fail(struct render *r, size_t pos, const char *fmt, ...)
{
	char problem[512];
	char where[48];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	describe_position(r->t->source, pos, where, sizeof(where));
	r->error = xasprintf("%s at %s of template", problem, where);
	return -1;
}

/* The value of a label, "" when the sorted list does not have it. */
static const char *find_label(const struct label *labels, size_t count, const char *name)
{
	size_t lo = 0;
	size_t hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(labels[mid].name, name);

		if (cmp == 0)
			return labels[mid].value != NULL ? labels[mid].value : "";
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return "";
}

static int eval_pipeline(struct render *r, const struct pipeline *pl, struct template_value *out);

static int eval_operand(struct render *r, const struct operand *o, struct template_value *out)
{
	const struct template_data *d = r->data;

	*out = (struct template_value){.type = operand_type(o)};
	switch (o->kind) {
	case OPERAND_STRING:
		out->text = o->text;
		break;
	case OPERAND_FLOAT:
		out->number = o->number;
		break;
	case OPERAND_INT:
		out->integer = o->integer;
		break;
	case OPERAND_VALUE:
		out->number = d->value;
		break;
	case OPERAND_LABEL:
		out->text = find_label(d->labels, d->label_count, o->text);
		break;
	case OPERAND_EXTERNAL_LABEL:
		out->text = d->external_labels != NULL
				? find_label(d->external_labels, d->external_label_count, o->text)
				: "";
		break;
	case OPERAND_PIPELINE:
		return eval_pipeline(r, o->pipeline, out);
	}
	return 0;
}

/* The numeric argument of a humanize function. A string must contain a number. */
static int to_number(struct render *r, const struct command *c, const struct template_value *v,
		     double *out)
{
	char quoted[CFG_QUOTE_SIZE];

	if (v->type == TEMPLATE_TYPE_FLOAT)
		*out = v->number;
	else if (v->type == TEMPLATE_TYPE_INT)
		*out = (double)v->integer;
	else if (!template_parse_float(template_value_text(v), out))
		return render_fail(r, c->pos, "%s: %s is not a number", c->func->name,
				   cfg_quote(template_value_text(v), quoted, sizeof(quoted)));
	return 0;
}

static int call_humanize(struct render *r, const struct command *c,
			 const struct template_value *arg, struct template_value *out)
{
	double v;
	char text[40];

	if (to_number(r, c, arg, &v) < 0)
		return -1;
	*out = (struct template_value){.type = TEMPLATE_TYPE_STRING};
	switch (c->func->id) {
	case FN_HUMANIZE:
		template_humanize(v, out->small, sizeof(out->small));
		break;
	case FN_HUMANIZE1024:
		template_humanize1024(v, out->small, sizeof(out->small));
		break;
	case FN_HUMANIZE_DURATION:
		template_humanize_duration(v, out->small, sizeof(out->small));
		break;
	case FN_HUMANIZE_PERCENTAGE:
		template_humanize_percentage(v, out->small, sizeof(out->small));
		break;
	default:
		if (template_format_timestamp(v, out->small, sizeof(out->small)) == 0)
			break;
		template_format_float(v, text, sizeof(text));
		return render_fail(r, c->pos,
				   "humanizeTimestamp: %s is outside the range of timestamps "
				   "(1677-09-21 to 2262-04-11)",
				   text);
	}
	return 0;
}

static int call_printf(struct render *r, const struct command *c, const struct template_value *args,
		       size_t n, struct template_value *out)
{
	if (!c->format_checked) {
		enum template_type *types = xcalloc(n, sizeof(*types));
		struct template_problem pb;
		size_t bad;
		int rc;

		for (size_t i = 1; i < n; i++)
			types[i - 1] = args[i].type;
		rc = template_printf_check(template_value_text(&args[0]), types, n - 1, &pb, &bad);
		free(types);
		if (rc < 0)
			return render_fail(r, c->pos, "%s", pb.text);
	}
	value_set_owned(out, template_printf_render(args, n));
	return 0;
}

static int call_replace(struct render *r, const struct command *c,
			const struct template_value *args, struct template_value *out)
{
	struct template_regex *rx = c->regex;
	struct template_problem pb;

	if (rx == NULL) {
		rx = template_regex_compile(template_value_text(&args[0]), &pb);
		if (rx == NULL)
			return render_fail(r, c->pos, "reReplaceAll: %s", pb.text);
	}
	value_set_owned(out, template_regex_replace(rx, template_value_text(&args[2]),
						    template_value_text(&args[1])));
	if (rx != c->regex)
		template_regex_free(rx);
	return 0;
}

static int call_function(struct render *r, const struct command *c,
			 const struct template_value *args, size_t n, struct template_value *out)
{
	switch (c->func->id) {
	case FN_PRINTF:
		return call_printf(r, c, args, n, out);
	case FN_TO_UPPER:
		value_set_owned(
		    out, template_map_case(template_value_text(&args[0]), TEMPLATE_CASE_UPPER));
		return 0;
	case FN_TO_LOWER:
		value_set_owned(
		    out, template_map_case(template_value_text(&args[0]), TEMPLATE_CASE_LOWER));
		return 0;
	case FN_TITLE:
		value_set_owned(
		    out, template_map_case(template_value_text(&args[0]), TEMPLATE_CASE_TITLE));
		return 0;
	case FN_RE_REPLACE_ALL:
		return call_replace(r, c, args, out);
	default:
		return call_humanize(r, c, &args[0], out);
	}
}

/* Evaluates a command, taking over *piped (NULL for the first command of a pipeline). */
static int eval_command(struct render *r, const struct command *c, struct template_value *piped,
			struct template_value *out)
{
	struct template_value local[4];
	size_t n = c->arg_count + (piped != NULL);
	struct template_value *args = n <= 4 ? local : xcalloc(n, sizeof(*args));
	size_t done = 0;
	int rc = 0;

	if (c->func == NULL)
		return eval_operand(r, &c->args[0], out);
	if (piped != NULL)
		args[n - 1] = *piped;
	/* eval_operand() initializes its value first, so a failed one can be released too. */
	for (; done < c->arg_count && rc == 0; done++)
		rc = eval_operand(r, &c->args[done], &args[done]);
	if (rc == 0)
		rc = call_function(r, c, args, n, out);
	for (size_t i = 0; i < done; i++)
		value_release(&args[i]);
	if (piped != NULL)
		value_release(&args[n - 1]);
	if (args != local)
		free(args);
	return rc;
}

static int eval_pipeline(struct render *r, const struct pipeline *pl, struct template_value *out)
{
	if (eval_command(r, &pl->commands[0], NULL, out) < 0)
		return -1;
	for (size_t i = 1; i < pl->count; i++) {
		struct template_value piped = *out;

		if (eval_command(r, &pl->commands[i], &piped, out) < 0)
			return -1;
	}
	return 0;
}

char *template_render(const struct template *t, const struct template_data *data, char **error)
{
	struct render r = {.t = t, .data = data};
	struct template_buf out = {0};

	*error = NULL;
	for (size_t i = 0; i < t->count; i++) {
		const struct node *n = &t->nodes[i];
		struct template_value v;

		if (n->action == NULL) {
			template_buf_append(&out, t->source + n->start, n->len);
			continue;
		}
		if (eval_pipeline(&r, n->action, &v) < 0) {
			free(out.data);
			*error = r.error;
			return NULL;
		}
		append_value(&out, &v);
		value_release(&v);
	}
	return template_buf_finish(&out);
}
