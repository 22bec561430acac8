/*
 * Internals of the expression language shared by the lexer (expr_lex.c), the parser and
 * type checker (expr_parse.c), the evaluator (expr_eval.c) and the functions and
 * aggregations (expr_func.c). Not for other modules: they use collector/expr.h.
 */
#ifndef TOCSIN_EXPR_IMPL_H
#define TOCSIN_EXPR_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/expr.h"

/* ---- tokens ---- */

enum expr_token_kind {
	EXPR_TOK_EOF,
	EXPR_TOK_IDENT,
	EXPR_TOK_NUMBER,
	EXPR_TOK_DURATION,
	EXPR_TOK_STRING,
	EXPR_TOK_LPAREN,
	EXPR_TOK_RPAREN,
	EXPR_TOK_LBRACE,
	EXPR_TOK_RBRACE,
	EXPR_TOK_LBRACKET,
	EXPR_TOK_RBRACKET,
	EXPR_TOK_COMMA,
	EXPR_TOK_COLON,
	EXPR_TOK_AT,
	EXPR_TOK_ASSIGN, /* = */
	EXPR_TOK_EQL,    /* == */
	EXPR_TOK_NEQ,    /* != */
	EXPR_TOK_EQL_RE, /* =~ */
	EXPR_TOK_NEQ_RE, /* !~ */
	EXPR_TOK_GTR,
	EXPR_TOK_LSS,
	EXPR_TOK_GTE,
	EXPR_TOK_LTE,
	EXPR_TOK_ADD,
	EXPR_TOK_SUB,
	EXPR_TOK_MUL,
	EXPR_TOK_DIV,
	EXPR_TOK_MOD,
	EXPR_TOK_POW,
};

struct expr_token {
	enum expr_token_kind kind;
	size_t pos; /* byte offset in the expression text */
	size_t len;
	double number;    /* EXPR_TOK_NUMBER */
	int64_t duration; /* EXPR_TOK_DURATION, in ms */
	char *string;     /* EXPR_TOK_STRING: the decoded value, owned by the lexer */
};

struct expr_lexer {
	const char *text;
	size_t len;
	size_t pos;
	char *string; /* decoded value of the last string token */
	/* Set when a token is invalid: position and problem ("unterminated string"). */
	size_t error_pos;
	char error[160];
	const char *expected; /* what is accepted there, or NULL */
};

void expr_lexer_init(struct expr_lexer *lx, const char *text);
void expr_lexer_done(struct expr_lexer *lx);
/* Reads the next token; returns -1 with lx->error set when the input is not a token. */
int expr_lex_next(struct expr_lexer *lx, struct expr_token *tok);
/* Describes a token for "unexpected ..." messages: `")"`, `identifier "x"`, `end of expr`. */
void expr_token_describe(const struct expr_lexer *lx, const struct expr_token *tok, char *buf,
			 size_t size);
/* Parses a PromQL duration ("5m", "1h30m", "500ms"); -1 when invalid. */
int expr_parse_duration(const char *text, size_t len, int64_t *out_ms);

/* ---- syntax tree ---- */

enum expr_node_kind {
	EXPR_NODE_NUMBER,
	EXPR_NODE_STRING,
	EXPR_NODE_SELECTOR, /* instant or (with range_ms > 0) range selector */
	EXPR_NODE_NEGATE,
	EXPR_NODE_BINARY,
	EXPR_NODE_CALL,
	EXPR_NODE_AGGREGATE,
};

enum expr_op {
	EXPR_OP_ADD,
	EXPR_OP_SUB,
	EXPR_OP_MUL,
	EXPR_OP_DIV,
	EXPR_OP_MOD,
	EXPR_OP_POW,
	EXPR_OP_EQL,
	EXPR_OP_NEQ,
	EXPR_OP_GTR,
	EXPR_OP_LSS,
	EXPR_OP_GTE,
	EXPR_OP_LTE,
	EXPR_OP_AND,
	EXPR_OP_OR,
	EXPR_OP_UNLESS,
};

const char *expr_op_name(enum expr_op op);
bool expr_op_is_comparison(enum expr_op op);
bool expr_op_is_set(enum expr_op op);

enum expr_agg_op {
	EXPR_AGG_SUM,
	EXPR_AGG_AVG,
	EXPR_AGG_MIN,
	EXPR_AGG_MAX,
	EXPR_AGG_COUNT,
	EXPR_AGG_TOPK,
	EXPR_AGG_BOTTOMK,
};

struct expr_node;
struct expr_eval_ctx;
struct expr_value;

struct expr_func {
	const char *name;
	enum expr_type args[3];
	size_t min_args;
	size_t max_args;
	enum expr_type result;
	/* Computes the result from evaluated arguments; -1 with an error set in ctx. */
	int (*call)(struct expr_eval_ctx *ctx, const struct expr_node *node,
		    struct expr_value *args, struct expr_value *out);
};

/* NULL when `name` is not a supported function. */
const struct expr_func *expr_func_lookup(const char *name);
/* Comma-separated list of supported functions, for messages. */
const char *expr_func_names(void);
/* Sets *op and returns true when `name` is a supported aggregation. */
bool expr_agg_lookup(const char *name, enum expr_agg_op *op);
const char *expr_agg_name(enum expr_agg_op op);

struct expr_node {
	enum expr_node_kind kind;
	enum expr_type type;
	size_t pos; /* byte offset of the node's first character */

	double number;
	char *string;

	/* selector */
	char *metric;                  /* NULL for {__name__=...} selectors */
	struct expr_matcher *matchers; /* the metric name, when given, as the first one */
	size_t matcher_count;
	int64_t range_ms; /* 0 for an instant selector */
	int64_t offset_ms;

	/* negate, binary, call, aggregate */
	struct expr_node *lhs; /* operand of negate; left side; aggregation argument */
	struct expr_node *rhs; /* right side; topk/bottomk parameter */
	enum expr_op op;
	bool return_bool;
	bool matching_on;  /* on(...) given, else ignoring(...) or nothing */
	bool has_matching; /* on or ignoring written */
	char **labels;     /* on/ignoring labels, or by/without labels */
	size_t label_count;

	const struct expr_func *func;
	struct expr_node **args;
	size_t arg_count;

	enum expr_agg_op agg;
	bool without;
	bool has_grouping; /* by or without written */
};

struct expr {
	struct expr_node *root;
};

void expr_node_free(struct expr_node *n);

/* ---- evaluation ---- */

struct expr_arena;
struct expr_arena *expr_arena_new(void);
void expr_arena_free(struct expr_arena *a);
void *expr_arena_alloc(struct expr_arena *a, size_t size);
char *expr_arena_strdup(struct expr_arena *a, const char *s);

/* A series with its labels and, for range vectors, its samples. */
struct expr_labels {
	struct label *v; /* sorted by name, "__name__" included when present */
	size_t count;
};

struct expr_vector_elem {
	struct expr_labels labels;
	double value;
};

struct expr_range_series {
	struct expr_labels labels;
	struct expr_sample *samples;
	size_t count;
};

struct expr_value {
	enum expr_type type;
	double scalar;
	const char *string;
	struct expr_vector_elem *vec;
	size_t count;
	struct expr_range_series *ranges;
	size_t range_count;
	/* For range vectors: the window [start, end] they were selected over. */
	int64_t range_start;
	int64_t range_end;
};

struct expr_eval_ctx {
	const struct expr_source *src;
	int64_t time_ms;
	struct expr_arena *arena;
	char *error; /* in the arena */
};

int expr_eval_node(struct expr_eval_ctx *ctx, const struct expr_node *n, struct expr_value *out);
/* Sets ctx->error (printf style); returns -1 for `return expr_eval_fail(...)`. */
int expr_eval_fail(struct expr_eval_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Aggregation over an evaluated argument; k is topk/bottomk's parameter. */
int expr_aggregate(struct expr_eval_ctx *ctx, const struct expr_node *n,
		   const struct expr_value *arg, double k, struct expr_value *out);

/* Label set helpers, all in ctx's arena. */
int expr_labels_compare(const struct expr_labels *a, const struct expr_labels *b);
const char *expr_labels_get(const struct expr_labels *l, const char *name);
/* Copy without "__name__". */
struct expr_labels expr_labels_drop_name(struct expr_eval_ctx *ctx, const struct expr_labels *l);
/* Copy keeping only (keep = true) or dropping (keep = false) the listed names. */
struct expr_labels expr_labels_filter(struct expr_eval_ctx *ctx, const struct expr_labels *l,
				      char *const *names, size_t count, bool keep);
/* Renders name{a="1", b="2"} into the arena, for error messages. */
const char *expr_labels_format(struct expr_eval_ctx *ctx, const struct expr_labels *l);
/* Sorts a vector by label set. */
void expr_vector_sort(struct expr_value *v);

#endif
