/*
 * The parser and type checker of the expression language: a precedence-climbing parser
 * that builds the tree of expr_impl.h and checks every operand's type as it builds, so
 * that a rule that loads can only fail at evaluation on data (a many-to-one match), never
 * on its shape. The first error stops the parse; its message names the position inside
 * the expression and what is accepted there.
 */
#include "collector/expr_impl.h"

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/cfg.h"
#include "collector/posix_regex.h"
#include "collector/xalloc.h"

/* Binding strength of binary operators, weakest first, as in PromQL. */
enum {
	PREC_OR = 1,
	PREC_AND = 2, /* and, unless */
	PREC_CMP = 3,
	PREC_ADD = 4,
	PREC_MUL = 5,
	PREC_POW = 6,
};

/*
 * Deepest tree the parser builds. The parser, the evaluator, the formatter and
 * expr_node_free() recurse once per level, so without a bound a query of 20,000 unary
 * minus signs or parentheses overflows the stack and kills the daemon. A chain of
 * several hundred operators (a + b + ...) still fits.
 */
#define EXPR_MAX_DEPTH 1000

struct parser {
	struct expr_lexer lx;
	struct expr_token tok; /* the lookahead */
	const struct expr_location *loc;
	char *error;
	unsigned depth; /* of the node being parsed in the tree, at most EXPR_MAX_DEPTH */
};

static const char *const op_names[] = {
    [EXPR_OP_ADD] = "+",   [EXPR_OP_SUB] = "-", [EXPR_OP_MUL] = "*",         [EXPR_OP_DIV] = "/",
    [EXPR_OP_MOD] = "%",   [EXPR_OP_POW] = "^", [EXPR_OP_EQL] = "==",        [EXPR_OP_NEQ] = "!=",
    [EXPR_OP_GTR] = ">",   [EXPR_OP_LSS] = "<", [EXPR_OP_GTE] = ">=",        [EXPR_OP_LTE] = "<=",
    [EXPR_OP_AND] = "and", [EXPR_OP_OR] = "or", [EXPR_OP_UNLESS] = "unless",
};

const char *expr_op_name(enum expr_op op)
{
	return op_names[op];
}

bool expr_op_is_comparison(enum expr_op op)
{
	return op >= EXPR_OP_EQL && op <= EXPR_OP_LTE;
}

bool expr_op_is_set(enum expr_op op)
{
	return op == EXPR_OP_AND || op == EXPR_OP_OR || op == EXPR_OP_UNLESS;
}

const char *expr_type_name(enum expr_type type)
{
	switch (type) {
	case EXPR_TYPE_SCALAR:
		return "scalar";
	case EXPR_TYPE_VECTOR:
		return "instant vector";
	case EXPR_TYPE_MATRIX:
		return "range vector";
	case EXPR_TYPE_STRING:
		return "string";
	}
	return "?";
}

/* "a scalar", "an instant vector", ... */
static const char *type_with_article(enum expr_type type)
{
	switch (type) {
	case EXPR_TYPE_SCALAR:
		return "a scalar";
	case EXPR_TYPE_VECTOR:
		return "an instant vector";
	case EXPR_TYPE_MATRIX:
		return "a range vector";
	case EXPR_TYPE_STRING:
		return "a string";
	}
	return "?";
}

/* ---- errors ---- */

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

/*
 * Records the first error: "FILE:LINE:COL: PROBLEM at column N of expr, expected WHAT".
 * `expected` may be NULL when the problem already says what to write instead.
 */
static void fail(struct parser *p, size_t pos, const char *expected, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(struct parser *p, size_t pos, const char *expected, const char *fmt, ...)
{
	char problem[512];
	char where[48];
	char prefix[300] = "";
	va_list ap;

	if (p->error != NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	describe_position(p->lx.text, pos, where, sizeof(where));
	if (p->loc != NULL)
		snprintf(prefix, sizeof(prefix), "%s:%d:%d: ", p->loc->file ? p->loc->file : "",
			 p->loc->line, p->loc->column);
	p->error = xasprintf("%s%s at %s of expr%s%s", prefix, problem, where,
			     expected ? ", expected " : "", expected ? expected : "");
}

static void fail_unexpected(struct parser *p, const char *expected)
{
	char what[96];

	expr_token_describe(&p->lx, &p->tok, what, sizeof(what));
	fail(p, p->tok.pos, expected, "unexpected %s", what);
}

static void fail_too_deep(struct parser *p, size_t pos)
{
	fail(p, pos,
	     "fewer nested parentheses, signs and function calls, or an aggregation such as "
	     "sum() in place of a long chain of operators",
	     "expression nested deeper than %d levels", EXPR_MAX_DEPTH);
}

/* ---- tokens ---- */

static bool advance(struct parser *p)
{
	if (expr_lex_next(&p->lx, &p->tok) < 0) {
		fail(p, p->lx.error_pos, p->lx.expected, "%s", p->lx.error);
		return false;
	}
	return true;
}

/* Kind of the token after the lookahead, without consuming anything. */
static enum expr_token_kind peek_kind(const struct parser *p)
{
	struct expr_lexer copy = p->lx;
	struct expr_token tok;
	enum expr_token_kind kind;

	copy.string = NULL;
	kind = expr_lex_next(&copy, &tok) < 0 ? EXPR_TOK_EOF : tok.kind;
	expr_lexer_done(&copy);
	return kind;
}

static bool is_ident(const struct parser *p, const char *word)
{
	return p->tok.kind == EXPR_TOK_IDENT && strlen(word) == p->tok.len &&
	       strncmp(p->lx.text + p->tok.pos, word, p->tok.len) == 0;
}

static char *token_text(const struct parser *p)
{
	return xstrndup(p->lx.text + p->tok.pos, p->tok.len);
}

static bool expect(struct parser *p, enum expr_token_kind kind, const char *expected)
{
	if (p->tok.kind != kind) {
		fail_unexpected(p, expected);
		return false;
	}
	return advance(p);
}

/* ---- nodes ---- */

static struct expr_node *node_new(enum expr_node_kind kind, size_t pos)
{
	struct expr_node *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->pos = pos;
	return n;
}

static void matcher_clear(struct expr_matcher *m)
{
	free((char *)m->name);
	free((char *)m->value);
	expr_regex_free(m->regex);
}

void expr_node_free(struct expr_node *n)
{
	if (n == NULL)
		return;
	free(n->string);
	free(n->metric);
	for (size_t i = 0; i < n->matcher_count; i++)
		matcher_clear(&n->matchers[i]);
	free(n->matchers);
	for (size_t i = 0; i < n->label_count; i++)
		free(n->labels[i]);
	free(n->labels);
	for (size_t i = 0; i < n->arg_count; i++)
		expr_node_free(n->args[i]);
	free(n->args);
	expr_node_free(n->lhs);
	expr_node_free(n->rhs);
	free(n);
}

bool expr_matcher_matches(const struct expr_matcher *m, const char *value)
{
	if (value == NULL)
		value = "";
	switch (m->op) {
	case EXPR_MATCH_EQUAL:
		return strcmp(value, m->value) == 0;
	case EXPR_MATCH_NOT_EQUAL:
		return strcmp(value, m->value) != 0;
	case EXPR_MATCH_REGEX:
		return regexec(m->regex, value, 0, NULL, 0) == 0;
	case EXPR_MATCH_NOT_REGEX:
		return regexec(m->regex, value, 0, NULL, 0) != 0;
	}
	return false;
}

/* True when s starts a repetition operator: *, +, ? or a bound such as {2} or {1,3}. */
static bool regex_is_repetition(const char *s)
{
	return s[0] == '*' || s[0] == '+' || s[0] == '?' ||
	       (s[0] == '{' && s[1] >= '0' && s[1] <= '9');
}

/*
 * Rewrites the common RE2 forms that POSIX extended regexes lack: a leading (?i) becomes
 * REG_ICASE, (?: becomes (, and \d and \D become bracket expressions. The result is
 * anchored at both ends, as PromQL anchors every label regex.
 * Returns NULL with the problem in why when a repetition operator follows another one
 * ("a++", "a*{2}"); RE2 rejects these too, except one '?' after a repetition. glibc's
 * regcomp() copies the repeated subtree for each operator, so a run of them takes
 * memory exponential in its length.
 * NOTE: repeated groups nested in each other ("((a+)+)+") grow the same way and are
 * still accepted, up to POSIX_REGEX_MAX_GROUP_DEPTH levels.
 */
static char *regex_to_posix(const char *re, int *flags, char *why, size_t size)
{
	size_t len = strlen(re);
	char *out;
	size_t n = 0;
	bool in_bracket = false;
	/* 0: no repetition just before; 1: one; 2: one followed by a lazy '?'. */
	int repetitions = 0;

	if (posix_regex_check_depth(re, why, size) < 0)
		return NULL;
	out = xmalloc(len * 4 + 8);
	*flags = REG_EXTENDED | REG_NOSUB;
	if (strncmp(re, "(?i)", 4) == 0) {
		*flags |= REG_ICASE;
		re += 4;
	}
	out[n++] = '^';
	out[n++] = '(';
	for (const char *s = re; *s != '\0'; s++) {
		if (!in_bracket && regex_is_repetition(s)) {
			if (repetitions == 2 || (repetitions == 1 && s[0] != '?')) {
				snprintf(
				    why, size,
				    "invalid nested repetition operator at offset %zu; put the "
				    "inner repetition in a group",
				    (size_t)(s - re));
				free(out);
				return NULL;
			}
			repetitions++;
			out[n++] = *s;
			/* A bound is copied whole, so its digits do not end the run. */
			if (s[0] == '{') {
				while (s[1] != '\0' && s[0] != '}')
					out[n++] = *++s;
			}
			continue;
		}
		repetitions = 0;
		if (!in_bracket && s[0] == '(' && s[1] == '?' && s[2] == ':') {
			out[n++] = '(';
			s += 2;
		} else if (s[0] == '\\' && (s[1] == 'd' || s[1] == 'D')) {
			const char *cls = in_bracket ? "0-9" : s[1] == 'd' ? "[0-9]" : "[^0-9]";

			memcpy(out + n, cls, strlen(cls));
			n += strlen(cls);
			s++;
		} else if (s[0] == '\\' && s[1] != '\0') {
			out[n++] = *s++;
			out[n++] = *s;
		} else if (!in_bracket && s[0] == '[') {
			in_bracket = true;
			out[n++] = *s;
			/* A ] right after [ or [^ is a literal member, not the end. */
			if (s[1] == '^')
				out[n++] = *++s;
			if (s[1] == ']')
				out[n++] = *++s;
		} else {
			if (in_bracket && s[0] == ']')
				in_bracket = false;
			out[n++] = *s;
		}
	}
	out[n++] = ')';
	out[n++] = '$';
	out[n] = '\0';
	return out;
}

int expr_regex_compile(const char *re, void **regex, char *why, size_t size)
{
	int flags;
	char *pattern = regex_to_posix(re, &flags, why, size);
	regex_t *compiled;
	int rc;

	if (pattern == NULL) {
		*regex = NULL;
		return -1;
	}
	compiled = xmalloc(sizeof(regex_t));
	rc = regcomp(compiled, pattern, flags);

	free(pattern);
	if (rc != 0) {
		regerror(rc, compiled, why, size);
		free(compiled);
		*regex = NULL;
		return -1;
	}
	*regex = compiled;
	return 0;
}

void expr_regex_free(void *regex)
{
	if (regex == NULL)
		return;
	regfree(regex);
	free(regex);
}

static int compile_matcher(struct parser *p, struct expr_matcher *m, size_t value_pos)
{
	char why[128];
	char quoted[96];

	if (m->op != EXPR_MATCH_REGEX && m->op != EXPR_MATCH_NOT_REGEX)
		return 0;
	if (expr_regex_compile(m->value, &m->regex, why, sizeof(why)) == 0)
		return 0;
	fail(p, value_pos, "a POSIX extended regular expression (plus (?i), (?:...) and \\d)",
	     "invalid regex %s for label %s (%s)", cfg_quote(m->value, quoted, sizeof(quoted)),
	     m->name, why);
	return -1;
}

/* ---- selectors ---- */

static struct expr_node *parse_expr(struct parser *p, int min_prec);

static void matcher_add(struct expr_node *n, enum expr_match_op op, char *name, char *value)
{
	n->matchers = xrealloc(n->matchers, (n->matcher_count + 1) * sizeof(*n->matchers));
	n->matchers[n->matcher_count++] = (struct expr_matcher){op, name, value, NULL};
}

static int parse_matcher_op(struct parser *p, enum expr_match_op *op)
{
	switch (p->tok.kind) {
	case EXPR_TOK_ASSIGN:
		*op = EXPR_MATCH_EQUAL;
		break;
	case EXPR_TOK_NEQ:
		*op = EXPR_MATCH_NOT_EQUAL;
		break;
	case EXPR_TOK_EQL_RE:
		*op = EXPR_MATCH_REGEX;
		break;
	case EXPR_TOK_NEQ_RE:
		*op = EXPR_MATCH_NOT_REGEX;
		break;
	default:
		fail_unexpected(p, "a matcher operator: =, !=, =~ or !~");
		return -1;
	}
	return advance(p) ? 0 : -1;
}

/* Reads {name op "value", ...} into n; the lookahead is the "{". */
static int parse_matchers(struct parser *p, struct expr_node *n)
{
	if (!advance(p))
		return -1;
	while (p->tok.kind != EXPR_TOK_RBRACE) {
		enum expr_match_op op;
		size_t name_pos = p->tok.pos;
		char *name;

		if (p->tok.kind != EXPR_TOK_IDENT) {
			fail_unexpected(p, "a label matcher");
			return -1;
		}
		name = token_text(p);
		if (!series_valid_label_name(name)) {
			fail(p, name_pos,
			     "letters, digits and underscores, not starting with a digit",
			     "invalid label name \"%s\"", name);
			free(name);
			return -1;
		}
		if (!advance(p) || parse_matcher_op(p, &op) < 0) {
			free(name);
			return -1;
		}
		if (p->tok.kind != EXPR_TOK_STRING) {
			free(name);
			fail_unexpected(p, "a quoted label value");
			return -1;
		}
		matcher_add(n, op, name, xstrdup(p->tok.string));
		if (compile_matcher(p, &n->matchers[n->matcher_count - 1], p->tok.pos) < 0)
			return -1;
		if (!advance(p))
			return -1;
		if (p->tok.kind == EXPR_TOK_COMMA) {
			if (!advance(p))
				return -1;
		} else if (p->tok.kind != EXPR_TOK_RBRACE) {
			fail_unexpected(p, "\",\" or \"}\"");
			return -1;
		}
	}
	return advance(p) ? 0 : -1;
}

static int check_selector(struct parser *p, struct expr_node *n)
{
	bool selective = false;
	size_t names = 0;

	for (size_t i = 0; i < n->matcher_count; i++) {
		if (!expr_matcher_matches(&n->matchers[i], ""))
			selective = true;
		if (strcmp(n->matchers[i].name, "__name__") == 0)
			names++;
	}
	if (n->metric != NULL && names > 1) {
		fail(p, n->pos, "either a name before \"{\" or a __name__ matcher",
		     "metric name given twice");
		return -1;
	}
	if (!selective) {
		fail(p, n->pos,
		     "at least one matcher that does not match the empty string, "
		     "such as a metric name or job=\"x\"",
		     "selector matches every series");
		return -1;
	}
	return 0;
}

/* A selector: NAME, NAME{...} or {...}; the lookahead is the name or the "{". */
static struct expr_node *parse_selector(struct parser *p)
{
	struct expr_node *n = node_new(EXPR_NODE_SELECTOR, p->tok.pos);

	n->type = EXPR_TYPE_VECTOR;
	if (p->tok.kind == EXPR_TOK_IDENT) {
		n->metric = token_text(p);
		matcher_add(n, EXPR_MATCH_EQUAL, xstrdup("__name__"), xstrdup(n->metric));
		if (!advance(p))
			goto bad;
	}
	if (p->tok.kind == EXPR_TOK_LBRACE && parse_matchers(p, n) < 0)
		goto bad;
	if (check_selector(p, n) < 0)
		goto bad;
	return n;
bad:
	expr_node_free(n);
	return NULL;
}

static int parse_duration_token(struct parser *p, int64_t *out, const char *what)
{
	if (p->tok.kind == EXPR_TOK_SUB) {
		fail(p, p->tok.pos, NULL, "negative %s is not supported", what);
		return -1;
	}
	if (p->tok.kind != EXPR_TOK_DURATION) {
		fail_unexpected(p, "a duration like 5m or 1h30m (units ms, s, m, h, d, w, y)");
		return -1;
	}
	*out = p->tok.duration;
	return advance(p) ? 0 : -1;
}

/* The range "[5m]" and "offset 5m" after a selector; anything else after a non-selector. */
static struct expr_node *parse_postfix(struct parser *p, struct expr_node *n, bool bare_selector)
{
	if (n == NULL)
		return NULL;
	for (;;) {
		size_t pos = p->tok.pos;

		if (p->tok.kind == EXPR_TOK_LBRACKET) {
			if (!bare_selector || n->range_ms > 0 || n->offset_ms > 0) {
				fail(p, pos, "a range right after a metric selector, like x[5m]",
				     "range \"[\" after %s",
				     n->range_ms > 0 ? "a range" : "an expression");
				goto bad;
			}
			if (!advance(p) || parse_duration_token(p, &n->range_ms, "range") < 0)
				goto bad;
			if (p->tok.kind == EXPR_TOK_COLON) {
				fail(p, p->tok.pos, "\"]\"", "subqueries are not supported");
				goto bad;
			}
			if (!expect(p, EXPR_TOK_RBRACKET, "\"]\""))
				goto bad;
			if (n->range_ms == 0) {
				fail(p, pos, NULL,
				     "range [0s] is empty; write a positive duration");
				goto bad;
			}
			n->type = EXPR_TYPE_MATRIX;
		} else if (is_ident(p, "offset")) {
			if (!bare_selector || n->offset_ms > 0) {
				fail(p, pos, "offset right after a selector, like x offset 5m",
				     "offset after %s",
				     n->offset_ms > 0 ? "an offset" : "an expression");
				goto bad;
			}
			if (!advance(p) || parse_duration_token(p, &n->offset_ms, "offset") < 0)
				goto bad;
		} else if (p->tok.kind == EXPR_TOK_AT) {
			fail(p, pos, NULL, "the @ modifier is not supported");
			goto bad;
		} else {
			return n;
		}
	}
bad:
	expr_node_free(n);
	return NULL;
}

/* ---- calls and aggregations ---- */

/* PromQL names that tocsin knows but does not implement, for a precise message. */
static const char *const unsupported_aggs[] = {"stddev", "stdvar", "count_values", "quantile",
					       "group",  "limitk", "limit_ratio"};

static bool is_unsupported_agg(const char *name)
{
	for (size_t i = 0; i < sizeof unsupported_aggs / sizeof unsupported_aggs[0]; i++)
		if (strcmp(name, unsupported_aggs[i]) == 0)
			return true;
	return false;
}

static const char *expected_for_type(enum expr_type type)
{
	switch (type) {
	case EXPR_TYPE_MATRIX:
		return "a range vector, like x[5m]";
	case EXPR_TYPE_VECTOR:
		return "an instant vector";
	case EXPR_TYPE_SCALAR:
		return "a scalar, like 0.9";
	case EXPR_TYPE_STRING:
		return "a string";
	}
	return "?";
}

static int check_operand(struct parser *p, const struct expr_node *arg, enum expr_type want,
			 const char *what)
{
	if (arg->type == want)
		return 0;
	fail(p, arg->pos, expected_for_type(want), "%s is %s", what, type_with_article(arg->type));
	return -1;
}

static int parse_arguments(struct parser *p, struct expr_node *n)
{
	if (!expect(p, EXPR_TOK_LPAREN, "\"(\""))
		return -1;
	if (p->tok.kind == EXPR_TOK_RPAREN)
		return advance(p) ? 0 : -1;
	for (;;) {
		struct expr_node *arg = parse_expr(p, 0);

		if (arg == NULL)
			return -1;
		n->args = xrealloc(n->args, (n->arg_count + 1) * sizeof(*n->args));
		n->args[n->arg_count++] = arg;
		if (p->tok.kind == EXPR_TOK_RPAREN)
			return advance(p) ? 0 : -1;
		if (!expect(p, EXPR_TOK_COMMA, "\",\" or \")\""))
			return -1;
	}
}

static struct expr_node *parse_call(struct parser *p, char *name)
{
	struct expr_node *n = node_new(EXPR_NODE_CALL, p->tok.pos);
	size_t name_pos = p->tok.pos;
	const struct expr_func *f = expr_func_lookup(name);

	if (f == NULL) {
		fail(p, name_pos, expr_func_names(), "unknown or unsupported function \"%s\"",
		     name);
		goto bad;
	}
	n->func = f;
	n->type = f->result;
	if (!advance(p) || parse_arguments(p, n) < 0)
		goto bad;
	if (n->arg_count < f->min_args || n->arg_count > f->max_args) {
		char expected[64];

		if (f->min_args == f->max_args)
			snprintf(expected, sizeof(expected), "%zu argument%s", f->min_args,
				 f->min_args == 1 ? "" : "s");
		else
			snprintf(expected, sizeof(expected), "%zu to %zu arguments", f->min_args,
				 f->max_args);
		fail(p, name_pos, expected, "%s() called with %zu argument%s", name, n->arg_count,
		     n->arg_count == 1 ? "" : "s");
		goto bad;
	}
	for (size_t i = 0; i < n->arg_count; i++) {
		char what[96];

		snprintf(what, sizeof(what), "argument %zu of %s()", i + 1, name);
		if (check_operand(p, n->args[i], f->args[i], what) < 0)
			goto bad;
	}
	free(name);
	return n;
bad:
	free(name);
	expr_node_free(n);
	return NULL;
}

/* Reads "(a, b, ...)" into n->labels; the lookahead is the "(". */
static int parse_label_list(struct parser *p, struct expr_node *n)
{
	if (!expect(p, EXPR_TOK_LPAREN, "\"(\" and a list of label names"))
		return -1;
	while (p->tok.kind != EXPR_TOK_RPAREN) {
		char *name;

		if (p->tok.kind != EXPR_TOK_IDENT) {
			fail_unexpected(p, "a label name or \")\"");
			return -1;
		}
		name = token_text(p);
		if (!series_valid_label_name(name)) {
			fail(p, p->tok.pos, "letters, digits and underscores",
			     "invalid label name \"%s\"", name);
			free(name);
			return -1;
		}
		n->labels = xrealloc(n->labels, (n->label_count + 1) * sizeof(*n->labels));
		n->labels[n->label_count++] = name;
		if (!advance(p))
			return -1;
		if (p->tok.kind == EXPR_TOK_COMMA) {
			if (!advance(p))
				return -1;
		} else if (p->tok.kind != EXPR_TOK_RPAREN) {
			fail_unexpected(p, "\",\" or \")\"");
			return -1;
		}
	}
	return advance(p) ? 0 : -1;
}

/* "by (...)" or "without (...)" when the lookahead is one of them. */
static int parse_grouping(struct parser *p, struct expr_node *n)
{
	bool by = is_ident(p, "by");

	if (!by && !is_ident(p, "without"))
		return 0;
	if (n->has_grouping) {
		fail(p, p->tok.pos, "by or without either before or after the argument",
		     "grouping given twice");
		return -1;
	}
	n->has_grouping = true;
	n->without = !by;
	if (!advance(p))
		return -1;
	return parse_label_list(p, n);
}

static struct expr_node *parse_aggregate(struct parser *p, enum expr_agg_op op, char *name)
{
	struct expr_node *n = node_new(EXPR_NODE_AGGREGATE, p->tok.pos);
	bool with_param = op == EXPR_AGG_TOPK || op == EXPR_AGG_BOTTOMK;
	size_t name_pos = p->tok.pos;

	n->agg = op;
	n->type = EXPR_TYPE_VECTOR;
	if (!advance(p) || parse_grouping(p, n) < 0 || parse_grouping(p, n) < 0)
		goto bad;
	if (p->tok.kind != EXPR_TOK_LPAREN) {
		fail_unexpected(p, "\"(\" and the vector to aggregate");
		goto bad;
	}
	if (parse_arguments(p, n) < 0 || parse_grouping(p, n) < 0)
		goto bad;
	if (n->arg_count != (with_param ? 2u : 1u)) {
		fail(p, name_pos,
		     with_param ? "2 arguments: the number of series k and an instant vector"
				: "1 argument: an instant vector",
		     "%s() called with %zu argument%s", name, n->arg_count,
		     n->arg_count == 1 ? "" : "s");
		goto bad;
	}
	/* The tree keeps the aggregated vector in lhs and the parameter in rhs. */
	n->lhs = n->args[n->arg_count - 1];
	n->rhs = with_param ? n->args[0] : NULL;
	free(n->args);
	n->args = NULL;
	n->arg_count = 0;
	if (n->rhs != NULL && check_operand(p, n->rhs, EXPR_TYPE_SCALAR, "k of topk/bottomk") < 0)
		goto bad;
	{
		char what[64];

		snprintf(what, sizeof(what), "the argument of %s()", name);
		if (check_operand(p, n->lhs, EXPR_TYPE_VECTOR, what) < 0)
			goto bad;
	}
	free(name);
	return n;
bad:
	free(name);
	expr_node_free(n);
	return NULL;
}

/* ---- expressions ---- */

static struct expr_node *parse_identifier(struct parser *p)
{
	enum expr_token_kind next = peek_kind(p);
	char *name = token_text(p);
	bool grouping_follows = false;
	enum expr_agg_op agg;

	if (next == EXPR_TOK_IDENT) {
		struct parser ahead = *p;

		ahead.lx.string = NULL;
		ahead.error = NULL;
		/* "sum by (x) (...)": the word after the name decides. */
		if (expr_lex_next(&ahead.lx, &ahead.tok) == 0)
			grouping_follows = is_ident(&ahead, "by") || is_ident(&ahead, "without");
		expr_lexer_done(&ahead.lx);
	}
	if (expr_agg_lookup(name, &agg) && (next == EXPR_TOK_LPAREN || grouping_follows))
		return parse_aggregate(p, agg, name);
	if (is_unsupported_agg(name) && (next == EXPR_TOK_LPAREN || grouping_follows)) {
		fail(p, p->tok.pos, "one of sum, avg, min, max, count, topk, bottomk",
		     "aggregation \"%s\" is not supported", name);
		free(name);
		return NULL;
	}
	if (next == EXPR_TOK_LPAREN)
		return parse_call(p, name);
	free(name);
	return parse_postfix(p, parse_selector(p), true);
}

static struct expr_node *parse_primary(struct parser *p)
{
	struct expr_node *n;

	switch (p->tok.kind) {
	case EXPR_TOK_NUMBER:
		n = node_new(EXPR_NODE_NUMBER, p->tok.pos);
		n->type = EXPR_TYPE_SCALAR;
		n->number = p->tok.number;
		break;
	case EXPR_TOK_STRING:
		n = node_new(EXPR_NODE_STRING, p->tok.pos);
		n->type = EXPR_TYPE_STRING;
		n->string = xstrdup(p->tok.string);
		break;
	case EXPR_TOK_LPAREN: {
		size_t pos = p->tok.pos;

		if (!advance(p))
			return NULL;
		n = parse_expr(p, 0);
		if (n == NULL)
			return NULL;
		if (!expect(p, EXPR_TOK_RPAREN, "\")\" or an operator")) {
			expr_node_free(n);
			return NULL;
		}
		n->pos = pos;
		return parse_postfix(p, n, false);
	}
	case EXPR_TOK_IDENT:
		return parse_identifier(p);
	case EXPR_TOK_LBRACE:
		return parse_postfix(p, parse_selector(p), true);
	case EXPR_TOK_DURATION:
		fail(p, p->tok.pos, "a number, or the duration inside a range like x[5m]",
		     "duration outside a range");
		return NULL;
	default:
		fail_unexpected(p, "an expression: a number, a string, a selector, "
				   "a function, an aggregation or \"(\"");
		return NULL;
	}
	if (!advance(p)) {
		expr_node_free(n);
		return NULL;
	}
	return parse_postfix(p, n, false);
}

static struct expr_node *parse_unary(struct parser *p)
{
	struct expr_node *n;
	struct expr_node *operand;
	size_t pos = p->tok.pos;
	bool negate = p->tok.kind == EXPR_TOK_SUB;

	if (!negate && p->tok.kind != EXPR_TOK_ADD)
		return parse_primary(p);
	if (!advance(p))
		return NULL;
	/* -a^b is -(a^b), and -a*b is (-a)*b: the operand binds up to "^" only. */
	operand = parse_expr(p, PREC_POW);
	if (operand == NULL)
		return NULL;
	if (operand->type != EXPR_TYPE_SCALAR && operand->type != EXPR_TYPE_VECTOR) {
		fail(p, operand->pos, "a scalar or an instant vector", "unary %s applied to %s",
		     negate ? "-" : "+", type_with_article(operand->type));
		expr_node_free(operand);
		return NULL;
	}
	if (!negate)
		return operand;
	n = node_new(EXPR_NODE_NEGATE, pos);
	n->type = operand->type;
	n->lhs = operand;
	return n;
}

/* Returns the precedence of the binary operator at the lookahead, 0 when there is none. */
static int binary_operator(const struct parser *p, enum expr_op *op)
{
	static const struct {
		enum expr_token_kind kind;
		enum expr_op op;
		int prec;
	} table[] = {
	    {EXPR_TOK_ADD, EXPR_OP_ADD, PREC_ADD}, {EXPR_TOK_SUB, EXPR_OP_SUB, PREC_ADD},
	    {EXPR_TOK_MUL, EXPR_OP_MUL, PREC_MUL}, {EXPR_TOK_DIV, EXPR_OP_DIV, PREC_MUL},
	    {EXPR_TOK_MOD, EXPR_OP_MOD, PREC_MUL}, {EXPR_TOK_POW, EXPR_OP_POW, PREC_POW},
	    {EXPR_TOK_EQL, EXPR_OP_EQL, PREC_CMP}, {EXPR_TOK_NEQ, EXPR_OP_NEQ, PREC_CMP},
	    {EXPR_TOK_GTR, EXPR_OP_GTR, PREC_CMP}, {EXPR_TOK_LSS, EXPR_OP_LSS, PREC_CMP},
	    {EXPR_TOK_GTE, EXPR_OP_GTE, PREC_CMP}, {EXPR_TOK_LTE, EXPR_OP_LTE, PREC_CMP},
	};

	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		if (p->tok.kind == table[i].kind) {
			*op = table[i].op;
			return table[i].prec;
		}
	}
	if (is_ident(p, "and") || is_ident(p, "unless")) {
		*op = is_ident(p, "and") ? EXPR_OP_AND : EXPR_OP_UNLESS;
		return PREC_AND;
	}
	if (is_ident(p, "or")) {
		*op = EXPR_OP_OR;
		return PREC_OR;
	}
	return 0;
}

/* bool, on(...)/ignoring(...) and the rejected group_left/group_right after an operator. */
static int parse_binary_modifiers(struct parser *p, struct expr_node *n)
{
	if (is_ident(p, "bool")) {
		if (!expr_op_is_comparison(n->op)) {
			fail(p, p->tok.pos,
			     "bool only after ==, !=, >, <, >= or <=", "bool after \"%s\"",
			     expr_op_name(n->op));
			return -1;
		}
		n->return_bool = true;
		if (!advance(p))
			return -1;
	}
	if (is_ident(p, "on") || is_ident(p, "ignoring")) {
		n->has_matching = true;
		n->matching_on = is_ident(p, "on");
		if (!advance(p) || parse_label_list(p, n) < 0)
			return -1;
	}
	if (is_ident(p, "group_left") || is_ident(p, "group_right")) {
		char *word = token_text(p);

		fail(p, p->tok.pos,
		     "one-to-one matching only: make both sides unique on the matching labels "
		     "with on(...) or ignoring(...), for instance by aggregating one side",
		     "%s (many-to-one matching) is not supported", word);
		free(word);
		return -1;
	}
	return 0;
}

static int check_binary(struct parser *p, struct expr_node *n, size_t op_pos)
{
	const char *op = expr_op_name(n->op);
	struct expr_node *sides[2] = {n->lhs, n->rhs};

	for (size_t i = 0; i < 2; i++) {
		const struct expr_node *s = sides[i];

		if (expr_op_is_set(n->op) && s->type != EXPR_TYPE_VECTOR) {
			fail(p, s->pos, "instant vectors on both sides", "%s side of \"%s\" is %s",
			     i == 0 ? "left" : "right", op, type_with_article(s->type));
			return -1;
		}
		if (s->type != EXPR_TYPE_SCALAR && s->type != EXPR_TYPE_VECTOR) {
			fail(p, s->pos,
			     s->type == EXPR_TYPE_MATRIX
				 ? "a scalar or an instant vector; apply a function such as "
				   "rate() or avg_over_time() to a range first"
				 : "a scalar or an instant vector",
			     "%s side of \"%s\" is %s", i == 0 ? "left" : "right", op,
			     type_with_article(s->type));
			return -1;
		}
	}
	if (n->lhs->type == EXPR_TYPE_SCALAR && n->rhs->type == EXPR_TYPE_SCALAR) {
		if (expr_op_is_comparison(n->op) && !n->return_bool) {
			fail(p, op_pos, "bool after the operator, as in 1 > bool 0",
			     "comparison \"%s\" between two scalars", op);
			return -1;
		}
		if (n->has_matching) {
			fail(p, op_pos, "instant vectors on both sides of on() or ignoring()",
			     "vector matching between two scalars");
			return -1;
		}
	}
	if (n->has_matching &&
	    (n->lhs->type == EXPR_TYPE_SCALAR || n->rhs->type == EXPR_TYPE_SCALAR)) {
		fail(p, op_pos, "instant vectors on both sides of on() or ignoring()",
		     "vector matching with a scalar operand");
		return -1;
	}
	n->type = n->lhs->type == EXPR_TYPE_VECTOR || n->rhs->type == EXPR_TYPE_VECTOR
		      ? EXPR_TYPE_VECTOR
		      : EXPR_TYPE_SCALAR;
	return 0;
}

static struct expr_node *parse_expr(struct parser *p, int min_prec)
{
	const unsigned depth = p->depth;
	struct expr_node *lhs;

	if (++p->depth > EXPR_MAX_DEPTH) {
		fail_too_deep(p, p->tok.pos);
		p->depth = depth;
		return NULL;
	}
	lhs = parse_unary(p);
	while (lhs != NULL) {
		enum expr_op op;
		int prec = binary_operator(p, &op);
		size_t op_pos = p->tok.pos;
		struct expr_node *n;

		if (prec == 0 || prec < min_prec)
			break;
		/* A chain such as a + b + c is parsed in this loop, and each operator puts the
		 * operands before it one level deeper in the tree. */
		if (++p->depth > EXPR_MAX_DEPTH) {
			fail_too_deep(p, op_pos);
			expr_node_free(lhs);
			lhs = NULL;
			break;
		}
		n = node_new(EXPR_NODE_BINARY, lhs->pos);
		n->op = op;
		n->lhs = lhs;
		lhs = NULL;
		if (!advance(p) || parse_binary_modifiers(p, n) < 0) {
			expr_node_free(n);
			break;
		}
		/* "^" is right-associative; every other operator is left-associative. */
		n->rhs = parse_expr(p, op == EXPR_OP_POW ? prec : prec + 1);
		if (n->rhs == NULL || check_binary(p, n, op_pos) < 0) {
			expr_node_free(n);
			break;
		}
		lhs = n;
	}
	p->depth = depth;
	return lhs;
}

struct expr *expr_parse(const char *text, const struct expr_location *loc, char **error)
{
	struct parser p = {.loc = loc};
	struct expr_node *root = NULL;
	struct expr *e;

	*error = NULL;
	expr_lexer_init(&p.lx, text);
	if (advance(&p)) {
		if (p.tok.kind == EXPR_TOK_EOF)
			fail(&p, 0, "an expression", "empty expr");
		else
			root = parse_expr(&p, 0);
	}
	if (root != NULL && p.tok.kind != EXPR_TOK_EOF) {
		if (p.tok.kind == EXPR_TOK_ASSIGN)
			fail(&p, p.tok.pos, "== to compare", "unexpected \"=\"");
		else
			fail_unexpected(&p, "an operator or end of expr");
	}
	expr_lexer_done(&p.lx);
	if (p.error != NULL) {
		expr_node_free(root);
		*error = p.error;
		return NULL;
	}
	e = xcalloc(1, sizeof(*e));
	e->root = root;
	return e;
}

void expr_free(struct expr *e)
{
	if (e == NULL)
		return;
	expr_node_free(e->root);
	free(e);
}

enum expr_type expr_result_type(const struct expr *e)
{
	return e->root->type;
}

bool expr_as_selector(const struct expr *e, struct expr_selector *out)
{
	const struct expr_node *n = e->root;

	if (n->kind != EXPR_NODE_SELECTOR)
		return false;
	out->matchers = n->matchers;
	out->count = n->matcher_count;
	out->range_ms = n->range_ms;
	out->offset_ms = n->offset_ms;
	return true;
}

static int64_t node_history(const struct expr_node *n)
{
	int64_t h = 0;

	if (n == NULL)
		return 0;
	if (n->kind == EXPR_NODE_SELECTOR)
		return (n->range_ms > 0 ? n->range_ms : EXPR_LOOKBACK_MS) + n->offset_ms;
	for (size_t i = 0; i < n->arg_count; i++) {
		int64_t a = node_history(n->args[i]);

		h = a > h ? a : h;
	}
	/* Each side is walked once, because walking it twice per level takes time exponential
	 * in the depth, and a chain of 30 binary operators or unary minus signs is that deep. */
	int64_t lhs = node_history(n->lhs);
	int64_t rhs = node_history(n->rhs);

	h = lhs > h ? lhs : h;
	return rhs > h ? rhs : h;
}

int64_t expr_history_ms(const struct expr *e)
{
	return node_history(e->root);
}

static bool node_may_select(const struct expr_node *n, const char *metric)
{
	if (n == NULL)
		return false;
	if (n->kind == EXPR_NODE_SELECTOR) {
		for (size_t i = 0; i < n->matcher_count; i++)
			if (strcmp(n->matchers[i].name, "__name__") == 0 &&
			    !expr_matcher_matches(&n->matchers[i], metric))
				return false;
		return true;
	}
	for (size_t i = 0; i < n->arg_count; i++)
		if (node_may_select(n->args[i], metric))
			return true;
	return node_may_select(n->lhs, metric) || node_may_select(n->rhs, metric);
}

bool expr_may_select(const struct expr *e, const char *metric)
{
	return node_may_select(e->root, metric);
}
