/*
 * Canonical rendering of a parsed expression: one space around binary operators, the
 * operands of a binary operator in parentheses when they are binary operations
 * themselves, so that the output shows how the parser grouped the input and parses back
 * to the same tree.
 */
#include "collector/expr_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/xalloc.h"

struct text {
	char *buf;
	size_t len;
	size_t capacity;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	t->buf = xreallocarray_grow(t->buf, &t->capacity, t->len + (size_t)n + 1, 1);
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

static void put_number(struct text *t, double v)
{
	char buf[40];

	if (isnan(v)) {
		put(t, "NaN");
		return;
	}
	if (isinf(v)) {
		put(t, "%sInf", v < 0 ? "-" : "");
		return;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		put(t, "%.0f", v);
		return;
	}
	/* The shortest form that reads back as the same double. */
	for (int digits = 1; digits <= 17; digits++) {
		snprintf(buf, sizeof(buf), "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	put(t, "%s", buf);
}

static void put_string(struct text *t, const char *s)
{
	put(t, "\"");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			put(t, "\\%c", c);
		else if (c == '\n')
			put(t, "\\n");
		else if (c == '\t')
			put(t, "\\t");
		else if (c < 0x20 || c == 0x7f)
			put(t, "\\x%02x", c);
		else
			put(t, "%c", c);
	}
	put(t, "\"");
}

static void put_duration(struct text *t, int64_t ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"y", 365 * 24 * 3600 * 1000LL},
		     {"w", 7 * 24 * 3600 * 1000LL},
		     {"d", 24 * 3600 * 1000LL},
		     {"h", 3600 * 1000LL},
		     {"m", 60 * 1000LL},
		     {"s", 1000},
		     {"ms", 1}};

	if (ms == 0) {
		put(t, "0s");
		return;
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (ms >= units[i].ms) {
			put(t, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
			ms %= units[i].ms;
		}
	}
}

static void put_labels(struct text *t, char *const *labels, size_t count)
{
	put(t, "(");
	for (size_t i = 0; i < count; i++)
		put(t, "%s%s", i ? ", " : "", labels[i]);
	put(t, ")");
}

static void put_node(struct text *t, const struct expr_node *n);

/*
 * True for names the parser reads as keywords where a binary operator's right side
 * starts (`a + + group_left` is a metric, `a + group_left` is a modifier), so a metric
 * of that name is written as {__name__="..."} to parse back.
 */
static bool keyword_name(const char *name)
{
	static const char *const words[] = {"and",         "or",   "unless",   "by",
					    "without",     "on",   "ignoring", "group_left",
					    "group_right", "bool", "offset"};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(name, words[i]) == 0)
			return true;
	return false;
}

static void put_selector(struct text *t, const struct expr_node *n)
{
	static const char *const ops[] = {"=", "!=", "=~", "!~"};
	bool named = n->metric != NULL && !keyword_name(n->metric);
	size_t first = named ? 1 : 0;

	if (named)
		put(t, "%s", n->metric);
	if (n->matcher_count > first || !named) {
		put(t, "{");
		for (size_t i = first; i < n->matcher_count; i++) {
			put(t, "%s%s%s", i > first ? ", " : "", n->matchers[i].name,
			    ops[n->matchers[i].op]);
			put_string(t, n->matchers[i].value);
		}
		put(t, "}");
	}
	if (n->range_ms > 0) {
		put(t, "[");
		put_duration(t, n->range_ms);
		put(t, "]");
	}
	if (n->offset_ms > 0) {
		put(t, " offset ");
		put_duration(t, n->offset_ms);
	}
}

static void put_operand(struct text *t, const struct expr_node *n)
{
	bool paren = n->kind == EXPR_NODE_BINARY;

	put(t, "%s", paren ? "(" : "");
	put_node(t, n);
	put(t, "%s", paren ? ")" : "");
}

static void put_binary(struct text *t, const struct expr_node *n)
{
	put_operand(t, n->lhs);
	put(t, " %s", expr_op_name(n->op));
	if (n->return_bool)
		put(t, " bool");
	if (n->has_matching) {
		put(t, " %s", n->matching_on ? "on" : "ignoring");
		put_labels(t, n->labels, n->label_count);
	}
	put(t, " ");
	put_operand(t, n->rhs);
}

static void put_node(struct text *t, const struct expr_node *n)
{
	switch (n->kind) {
	case EXPR_NODE_NUMBER:
		put_number(t, n->number);
		break;
	case EXPR_NODE_STRING:
		put_string(t, n->string);
		break;
	case EXPR_NODE_SELECTOR:
		put_selector(t, n);
		break;
	case EXPR_NODE_NEGATE:
		put(t, "-");
		put_operand(t, n->lhs);
		break;
	case EXPR_NODE_BINARY:
		put_binary(t, n);
		break;
	case EXPR_NODE_CALL:
		put(t, "%s(", n->func->name);
		for (size_t i = 0; i < n->arg_count; i++) {
			put(t, "%s", i ? ", " : "");
			put_node(t, n->args[i]);
		}
		put(t, ")");
		break;
	case EXPR_NODE_AGGREGATE:
		put(t, "%s", expr_agg_name(n->agg));
		if (n->has_grouping) {
			put(t, " %s ", n->without ? "without" : "by");
			put_labels(t, n->labels, n->label_count);
		}
		put(t, n->has_grouping ? " (" : "(");
		if (n->rhs != NULL) {
			put_node(t, n->rhs);
			put(t, ", ");
		}
		put_node(t, n->lhs);
		put(t, ")");
		break;
	}
}

char *expr_format(const struct expr *e)
{
	struct text t = {0};

	put_node(&t, e->root);
	return t.buf;
}
