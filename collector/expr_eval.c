/*
 * Evaluation of a parsed expression at one instant: selectors read the source, binary
 * operators match vectors one-to-one, and everything allocated during one evaluation
 * lives in an arena that the result owns and frees at once. Functions and aggregations
 * are in expr_func.c.
 */
#include "collector/expr_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/hash.h"
#include "collector/xalloc.h"

/* ---- arena ---- */

#define ARENA_CHUNK (64 * 1024)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	size_t size;
	_Alignas(16) unsigned char data[];
};

struct expr_arena {
	struct arena_chunk *head;
};

/*
 * One standard chunk is kept per thread when an arena is freed and handed to the next
 * arena: a rule group evaluates thousands of expressions in a row, and a malloc and free
 * of 64 KiB for each made the allocator merge and split the same free block every time.
 * The one chunk left at exit stays reachable through the thread's storage.
 */
static _Thread_local struct arena_chunk *spare_chunk;

struct expr_arena *expr_arena_new(void)
{
	return xcalloc(1, sizeof(struct expr_arena));
}

void expr_arena_free(struct expr_arena *a)
{
	if (a == NULL)
		return;
	while (a->head != NULL) {
		struct arena_chunk *next = a->head->next;

		if (spare_chunk == NULL && a->head->size == ARENA_CHUNK)
			spare_chunk = a->head;
		else
			free(a->head);
		a->head = next;
	}
	free(a);
}

void *expr_arena_alloc(struct expr_arena *a, size_t size)
{
	struct arena_chunk *c = a->head;

	size = (size + 15) & ~(size_t)15;
	if (size == 0)
		size = 16;
	if (c == NULL || c->size - c->used < size) {
		size_t chunk = size > ARENA_CHUNK / 4 ? size : ARENA_CHUNK;

		if (chunk == ARENA_CHUNK && spare_chunk != NULL) {
			c = spare_chunk;
			spare_chunk = NULL;
		} else {
			c = xmalloc(sizeof(*c) + chunk);
		}
		c->size = chunk;
		c->used = 0;
		/* A large block goes behind the current chunk so that its free space stays. */
		if (a->head != NULL && chunk == size) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	c->used += size;
	return c->data + c->used - size;
}

char *expr_arena_strdup(struct expr_arena *a, const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(expr_arena_alloc(a, n), s, n);
}

int expr_eval_fail(struct expr_eval_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ctx->error != NULL)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	ctx->error = expr_arena_alloc(ctx->arena, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(ctx->error, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- stale markers and sample buffers ---- */

/* The bit pattern Prometheus uses for stale markers: a NaN no arithmetic produces. */
#define STALE_NAN_BITS 0x7ff0000000000002ULL

double expr_stale_marker(void)
{
	uint64_t bits = STALE_NAN_BITS;
	double v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

bool expr_is_stale_marker(double value)
{
	uint64_t bits;

	memcpy(&bits, &value, sizeof(bits));
	return bits == STALE_NAN_BITS;
}

void expr_sample_buffer_append(struct expr_sample_buffer *buf, int64_t time_ms, double value)
{
	if (buf->count == buf->capacity)
		buf->v =
		    xreallocarray_grow(buf->v, &buf->capacity, buf->count + 1, sizeof(*buf->v));
	buf->v[buf->count++] = (struct expr_sample){time_ms, value};
}

/* ---- label sets ---- */

int expr_labels_compare(const struct expr_labels *a, const struct expr_labels *b)
{
	size_t n = a->count < b->count ? a->count : b->count;

	for (size_t i = 0; i < n; i++) {
		int c = strcmp(a->v[i].name, b->v[i].name);

		if (c == 0)
			c = strcmp(a->v[i].value, b->v[i].value);
		if (c != 0)
			return c;
	}
	return a->count < b->count ? -1 : a->count > b->count ? 1 : 0;
}

const char *expr_labels_get(const struct expr_labels *l, const char *name)
{
	for (size_t i = 0; i < l->count; i++)
		if (label_name_equal(l->v[i].name, name))
			return l->v[i].value;
	return NULL;
}

static bool name_listed(const char *name, char *const *names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (label_name_equal(name, names[i]))
			return true;
	return false;
}

struct expr_labels expr_labels_filter(struct expr_eval_ctx *ctx, const struct expr_labels *l,
				      char *const *names, size_t count, bool keep)
{
	struct expr_labels out = {
	    expr_arena_alloc(ctx->arena, (l->count + 1) * sizeof(struct label)), 0};

	for (size_t i = 0; i < l->count; i++)
		if (name_listed(l->v[i].name, names, count) == keep)
			out.v[out.count++] = l->v[i];
	return out;
}

struct expr_labels expr_labels_drop_name(struct expr_eval_ctx *ctx, const struct expr_labels *l)
{
	char *name = "__name__";

	if (expr_labels_get(l, name) == NULL)
		return *l;
	return expr_labels_filter(ctx, l, &name, 1, false);
}

const char *expr_labels_format(struct expr_eval_ctx *ctx, const struct expr_labels *l)
{
	const char *name = expr_labels_get(l, "__name__");
	size_t size = 3 + (name != NULL ? strlen(name) : 0);
	char *out;
	size_t n = 0;
	bool first = true;

	for (size_t i = 0; i < l->count; i++)
		size += strlen(l->v[i].name) + strlen(l->v[i].value) + 6;
	out = expr_arena_alloc(ctx->arena, size);
	n += (size_t)snprintf(out, size, "%s{", name != NULL ? name : "");
	for (size_t i = 0; i < l->count; i++) {
		if (strcmp(l->v[i].name, "__name__") == 0)
			continue;
		n += (size_t)snprintf(out + n, size - n, "%s%s=\"%s\"", first ? "" : ", ",
				      l->v[i].name, l->v[i].value);
		first = false;
	}
	out[n++] = '}';
	out[n] = '\0';
	return out;
}

static int elem_compare(const void *a, const void *b)
{
	const struct expr_vector_elem *ea = a;
	const struct expr_vector_elem *eb = b;

	return expr_labels_compare(&ea->labels, &eb->labels);
}

void expr_vector_sort(struct expr_value *v)
{
	if (v->count > 1)
		qsort(v->vec, v->count, sizeof(*v->vec), elem_compare);
}

static uint64_t labels_hash(const struct expr_labels *l)
{
	return label_set_hash(HASH_FNV_OFFSET, l->v, l->count);
}

/* ---- selectors ---- */

struct select_state {
	struct expr_eval_ctx *ctx;
	const struct expr_node *node;
	int64_t from;
	int64_t to;
	struct expr_sample_buffer buf;
	struct expr_value *out;
	size_t capacity;
};

/* The series' labels with "__name__" merged in at its sorted place. */
static struct expr_labels series_labels(struct expr_eval_ctx *ctx, const struct expr_series *s)
{
	/* The source's copy is shared, not duplicated: nothing writes to the labels of a
	 * value, every operation that changes a label set makes a new one in the arena. */
	if (s->named_labels != NULL)
		return (struct expr_labels){(struct label *)s->named_labels, s->label_count + 1};

	struct expr_labels l = {
	    expr_arena_alloc(ctx->arena, (s->label_count + 1) * sizeof(struct label)), 0};
	bool placed = false;

	for (size_t i = 0; i < s->label_count; i++) {
		/* Label names start with a letter or '_': only a name that starts with '_'
		 * needs the whole comparison with "__name__". */
		const char *name = s->labels[i].name;

		if (!placed &&
		    (name[0] > '_' || (name[0] == '_' && strcmp(name, "__name__") > 0))) {
			l.v[l.count++] = (struct label){"__name__", s->name};
			placed = true;
		}
		l.v[l.count++] = s->labels[i];
	}
	if (!placed)
		l.v[l.count++] = (struct label){"__name__", s->name};
	return l;
}

/* The latest sample of the selection's range, through the source's shortcut if it has one. */
static bool latest_sample(struct select_state *st, const void *handle, struct expr_sample *out)
{
	const struct expr_source *src = st->ctx->src;
	struct expr_sample_buffer *buf = &st->buf;

	if (src->latest != NULL)
		return src->latest(src->ctx, handle, st->from, st->to, out);
	buf->count = 0;
	src->read(src->ctx, handle, st->from, st->to, buf);
	if (buf->count == 0)
		return false;
	*out = buf->v[buf->count - 1];
	return true;
}

static void select_one(void *arg, const struct expr_series *s)
{
	struct select_state *st = arg;
	struct expr_value *out = st->out;
	struct expr_sample_buffer *buf = &st->buf;

	if (st->node->range_ms == 0) {
		/* Instant: the latest sample in the lookback, unless it marks the end. */
		struct expr_sample last;

		if (!latest_sample(st, s->handle, &last) || expr_is_stale_marker(last.value))
			return;
		if (out->count == st->capacity)
			out->vec = xreallocarray_grow(out->vec, &st->capacity, out->count + 1,
						      sizeof(*out->vec));
		out->vec[out->count++] =
		    (struct expr_vector_elem){series_labels(st->ctx, s), last.value};
		return;
	}
	buf->count = 0;
	st->ctx->src->read(st->ctx->src->ctx, s->handle, st->from, st->to, buf);
	{
		struct expr_range_series r = {series_labels(st->ctx, s), NULL, 0};

		r.samples = expr_arena_alloc(st->ctx->arena, buf->count * sizeof(*r.samples));
		for (size_t i = 0; i < buf->count; i++)
			if (!expr_is_stale_marker(buf->v[i].value))
				r.samples[r.count++] = buf->v[i];
		if (r.count == 0)
			return;
		if (out->range_count == st->capacity)
			out->ranges = xreallocarray_grow(
			    out->ranges, &st->capacity, out->range_count + 1, sizeof(*out->ranges));
		out->ranges[out->range_count++] = r;
	}
}

/* Moves a malloc'd array into the arena so that values never need freeing. */
static void *to_arena(struct expr_eval_ctx *ctx, void *array, size_t size)
{
	void *copy = expr_arena_alloc(ctx->arena, size);

	if (size > 0)
		memcpy(copy, array, size);
	free(array);
	return copy;
}

static int eval_selector(struct expr_eval_ctx *ctx, const struct expr_node *n,
			 struct expr_value *out)
{
	struct select_state st = {.ctx = ctx, .node = n, .out = out};
	int64_t end = ctx->time_ms - n->offset_ms;

	out->type = n->type;
	st.to = end;
	st.from = end - (n->range_ms > 0 ? n->range_ms : EXPR_LOOKBACK_MS);
	out->range_start = st.from;
	out->range_end = end;
	ctx->src->select(ctx->src->ctx, n->matchers, n->matcher_count, select_one, &st);
	free(st.buf.v);
	out->vec = to_arena(ctx, out->vec, out->count * sizeof(*out->vec));
	out->ranges = to_arena(ctx, out->ranges, out->range_count * sizeof(*out->ranges));
	return 0;
}

/* ---- operators ---- */

/* Applies an arithmetic or comparison operator; for comparisons *keep is the outcome. */
static double apply_op(enum expr_op op, double a, double b, bool *keep)
{
	*keep = true;
	switch (op) {
	case EXPR_OP_ADD:
		return a + b;
	case EXPR_OP_SUB:
		return a - b;
	case EXPR_OP_MUL:
		return a * b;
	case EXPR_OP_DIV:
		return a / b;
	case EXPR_OP_MOD:
		return fmod(a, b);
	case EXPR_OP_POW:
		return pow(a, b);
	case EXPR_OP_EQL:
		*keep = a == b;
		break;
	case EXPR_OP_NEQ:
		*keep = a != b;
		break;
	case EXPR_OP_GTR:
		*keep = a > b;
		break;
	case EXPR_OP_LSS:
		*keep = a < b;
		break;
	case EXPR_OP_GTE:
		*keep = a >= b;
		break;
	case EXPR_OP_LTE:
		*keep = a <= b;
		break;
	default:
		break;
	}
	return a;
}

static int eval_scalar_binary(const struct expr_node *n, double a, double b, struct expr_value *out)
{
	bool keep;
	double v = apply_op(n->op, a, b, &keep);

	out->type = EXPR_TYPE_SCALAR;
	/* The parser only lets comparisons between scalars through with bool. */
	out->scalar = expr_op_is_comparison(n->op) ? (keep ? 1 : 0) : v;
	return 0;
}

static int eval_vector_scalar(struct expr_eval_ctx *ctx, const struct expr_node *n,
			      const struct expr_value *vec, double scalar, bool scalar_left,
			      struct expr_value *out)
{
	bool cmp = expr_op_is_comparison(n->op);
	bool drop_name = !cmp || n->return_bool;

	out->type = EXPR_TYPE_VECTOR;
	out->vec = expr_arena_alloc(ctx->arena, vec->count * sizeof(*out->vec));
	out->count = 0;
	for (size_t i = 0; i < vec->count; i++) {
		const struct expr_vector_elem *e = &vec->vec[i];
		double a = scalar_left ? scalar : e->value;
		double b = scalar_left ? e->value : scalar;
		bool keep;
		double v = apply_op(n->op, a, b, &keep);
		struct expr_vector_elem r;

		if (cmp) {
			if (n->return_bool)
				v = keep ? 1 : 0;
			else if (!keep)
				continue;
			else
				v = e->value; /* filtering keeps the vector's own value */
		}
		r.labels = drop_name ? expr_labels_drop_name(ctx, &e->labels) : e->labels;
		r.value = v;
		out->vec[out->count++] = r;
	}
	return 0;
}

/* The labels two series are matched on: the on() labels, or all but ignoring() and name. */
static struct expr_labels match_signature(struct expr_eval_ctx *ctx, const struct expr_node *n,
					  const struct expr_labels *l)
{
	struct expr_labels sig;

	if (n->has_matching && n->matching_on)
		return expr_labels_filter(ctx, l, n->labels, n->label_count, true);
	sig = expr_labels_drop_name(ctx, l);
	if (n->has_matching)
		sig = expr_labels_filter(ctx, &sig, n->labels, n->label_count, false);
	return sig;
}

/* A hash table from signature to element index, open addressing. */
struct sig_table {
	size_t *slots; /* index + 1, 0 for empty */
	size_t mask;
	struct expr_labels *sigs;
	uint64_t *hashes;
};

static void sig_table_init(struct expr_eval_ctx *ctx, struct sig_table *t, size_t count)
{
	size_t size = 16;

	while (size < count * 2)
		size *= 2;
	t->slots = expr_arena_alloc(ctx->arena, size * sizeof(*t->slots));
	memset(t->slots, 0, size * sizeof(*t->slots));
	t->mask = size - 1;
	t->sigs = expr_arena_alloc(ctx->arena, (count + 1) * sizeof(*t->sigs));
	t->hashes = expr_arena_alloc(ctx->arena, (count + 1) * sizeof(*t->hashes));
}

/* Finds sig; returns the index stored for it or (size_t)-1 and the slot to insert at. */
static size_t sig_table_find(const struct sig_table *t, const struct expr_labels *sig, uint64_t h,
			     size_t *slot)
{
	size_t i = (size_t)h & t->mask;

	while (t->slots[i] != 0) {
		size_t idx = t->slots[i] - 1;

		if (t->hashes[idx] == h && expr_labels_compare(&t->sigs[idx], sig) == 0)
			return idx;
		i = (i + 1) & t->mask;
	}
	*slot = i;
	return (size_t)-1;
}

static void sig_table_index(struct expr_eval_ctx *ctx, const struct expr_node *n,
			    const struct expr_value *v, struct sig_table *t)
{
	sig_table_init(ctx, t, v->count);
	for (size_t i = 0; i < v->count; i++) {
		t->sigs[i] = match_signature(ctx, n, &v->vec[i].labels);
		t->hashes[i] = labels_hash(&t->sigs[i]);
	}
}

static int eval_set(struct expr_eval_ctx *ctx, const struct expr_node *n,
		    const struct expr_value *lhs, const struct expr_value *rhs,
		    struct expr_value *out)
{
	struct sig_table right;
	struct sig_table left;
	size_t slot;

	out->type = EXPR_TYPE_VECTOR;
	out->vec = expr_arena_alloc(ctx->arena, (lhs->count + rhs->count) * sizeof(*out->vec));
	out->count = 0;
	sig_table_index(ctx, n, rhs, &right);
	for (size_t i = 0; i < rhs->count; i++)
		if (sig_table_find(&right, &right.sigs[i], right.hashes[i], &slot) == (size_t)-1)
			right.slots[slot] = i + 1;
	sig_table_index(ctx, n, lhs, &left);
	for (size_t i = 0; i < lhs->count; i++) {
		bool found =
		    sig_table_find(&right, &left.sigs[i], left.hashes[i], &slot) != (size_t)-1;

		if (n->op == EXPR_OP_OR || (n->op == EXPR_OP_AND) == found)
			out->vec[out->count++] = lhs->vec[i];
		if (sig_table_find(&left, &left.sigs[i], left.hashes[i], &slot) == (size_t)-1)
			left.slots[slot] = i + 1;
	}
	if (n->op != EXPR_OP_OR)
		return 0;
	for (size_t i = 0; i < rhs->count; i++)
		if (sig_table_find(&left, &right.sigs[i], right.hashes[i], &slot) == (size_t)-1)
			out->vec[out->count++] = rhs->vec[i];
	return 0;
}

static struct expr_labels result_labels(struct expr_eval_ctx *ctx, const struct expr_node *n,
					const struct expr_labels *l)
{
	struct expr_labels r = *l;

	if (!expr_op_is_comparison(n->op) || n->return_bool)
		r = expr_labels_drop_name(ctx, &r);
	if (n->has_matching)
		r = expr_labels_filter(ctx, &r, n->labels, n->label_count, n->matching_on);
	return r;
}

static int eval_vector_vector(struct expr_eval_ctx *ctx, const struct expr_node *n,
			      const struct expr_value *lhs, const struct expr_value *rhs,
			      struct expr_value *out)
{
	struct sig_table right;
	bool *matched = expr_arena_alloc(ctx->arena, rhs->count + 1);
	size_t slot;

	memset(matched, 0, rhs->count + 1);
	sig_table_index(ctx, n, rhs, &right);
	for (size_t i = 0; i < rhs->count; i++) {
		size_t dup = sig_table_find(&right, &right.sigs[i], right.hashes[i], &slot);

		if (dup != (size_t)-1)
			return expr_eval_fail(
			    ctx,
			    "right side of \"%s\" has more than one series matching %s (%s and "
			    "%s); one-to-one matching needs unique series on each side: narrow "
			    "the match with on(...) or ignoring(...), or aggregate that side",
			    expr_op_name(n->op), expr_labels_format(ctx, &right.sigs[i]),
			    expr_labels_format(ctx, &rhs->vec[dup].labels),
			    expr_labels_format(ctx, &rhs->vec[i].labels));
		right.slots[slot] = i + 1;
	}
	out->type = EXPR_TYPE_VECTOR;
	out->vec = expr_arena_alloc(ctx->arena, lhs->count * sizeof(*out->vec));
	out->count = 0;
	for (size_t i = 0; i < lhs->count; i++) {
		const struct expr_vector_elem *e = &lhs->vec[i];
		struct expr_labels sig = match_signature(ctx, n, &e->labels);
		size_t r = sig_table_find(&right, &sig, labels_hash(&sig), &slot);
		bool keep;
		double v;

		if (r == (size_t)-1)
			continue;
		v = apply_op(n->op, e->value, rhs->vec[r].value, &keep);
		if (expr_op_is_comparison(n->op)) {
			if (n->return_bool)
				v = keep ? 1 : 0;
			else if (!keep)
				continue;
		}
		if (matched[r])
			return expr_eval_fail(
			    ctx,
			    "left side of \"%s\" has more than one series matching %s; "
			    "many-to-one matching (group_left/group_right) is not supported: "
			    "narrow the match with on(...) or ignoring(...), or aggregate that "
			    "side",
			    expr_op_name(n->op), expr_labels_format(ctx, &sig));
		matched[r] = true;
		out->vec[out->count++] =
		    (struct expr_vector_elem){result_labels(ctx, n, &e->labels), v};
	}
	return 0;
}

static int eval_binary(struct expr_eval_ctx *ctx, const struct expr_node *n, struct expr_value *out)
{
	struct expr_value lhs = {0};
	struct expr_value rhs = {0};

	if (expr_eval_node(ctx, n->lhs, &lhs) < 0 || expr_eval_node(ctx, n->rhs, &rhs) < 0)
		return -1;
	if (expr_op_is_set(n->op))
		return eval_set(ctx, n, &lhs, &rhs, out);
	if (lhs.type == EXPR_TYPE_SCALAR && rhs.type == EXPR_TYPE_SCALAR)
		return eval_scalar_binary(n, lhs.scalar, rhs.scalar, out);
	if (lhs.type == EXPR_TYPE_VECTOR && rhs.type == EXPR_TYPE_SCALAR)
		return eval_vector_scalar(ctx, n, &lhs, rhs.scalar, false, out);
	if (lhs.type == EXPR_TYPE_SCALAR)
		return eval_vector_scalar(ctx, n, &rhs, lhs.scalar, true, out);
	return eval_vector_vector(ctx, n, &lhs, &rhs, out);
}

static int eval_negate(struct expr_eval_ctx *ctx, const struct expr_node *n, struct expr_value *out)
{
	if (expr_eval_node(ctx, n->lhs, out) < 0)
		return -1;
	if (out->type == EXPR_TYPE_SCALAR) {
		out->scalar = -out->scalar;
		return 0;
	}
	for (size_t i = 0; i < out->count; i++) {
		out->vec[i].labels = expr_labels_drop_name(ctx, &out->vec[i].labels);
		out->vec[i].value = -out->vec[i].value;
	}
	return 0;
}

static int eval_aggregate(struct expr_eval_ctx *ctx, const struct expr_node *n,
			  struct expr_value *out)
{
	struct expr_value arg = {0};
	struct expr_value param = {0};

	if (n->rhs != NULL && expr_eval_node(ctx, n->rhs, &param) < 0)
		return -1;
	if (expr_eval_node(ctx, n->lhs, &arg) < 0)
		return -1;
	return expr_aggregate(ctx, n, &arg, param.scalar, out);
}

static int eval_call(struct expr_eval_ctx *ctx, const struct expr_node *n, struct expr_value *out)
{
	struct expr_value args[3] = {{0}};

	for (size_t i = 0; i < n->arg_count; i++)
		if (expr_eval_node(ctx, n->args[i], &args[i]) < 0)
			return -1;
	return n->func->call(ctx, n, args, out);
}

int expr_eval_node(struct expr_eval_ctx *ctx, const struct expr_node *n, struct expr_value *out)
{
	memset(out, 0, sizeof(*out));
	out->type = n->type;
	switch (n->kind) {
	case EXPR_NODE_NUMBER:
		out->scalar = n->number;
		return 0;
	case EXPR_NODE_STRING:
		out->string = n->string;
		return 0;
	case EXPR_NODE_SELECTOR:
		return eval_selector(ctx, n, out);
	case EXPR_NODE_NEGATE:
		return eval_negate(ctx, n, out);
	case EXPR_NODE_BINARY:
		return eval_binary(ctx, n, out);
	case EXPR_NODE_CALL:
		return eval_call(ctx, n, out);
	case EXPR_NODE_AGGREGATE:
		return eval_aggregate(ctx, n, out);
	}
	return expr_eval_fail(ctx, "unknown node kind %d", (int)n->kind);
}

int expr_eval(const struct expr *e, const struct expr_source *src, int64_t time_ms,
	      struct expr_result *out)
{
	struct expr_eval_ctx ctx = {src, time_ms, expr_arena_new(), NULL};
	struct expr_value v;

	memset(out, 0, sizeof(*out));
	out->arena = ctx.arena;
	if (e->root->type == EXPR_TYPE_MATRIX) {
		expr_eval_fail(&ctx, "the expression is a range vector; a rule needs a scalar or "
				     "an instant vector, so apply a function such as rate() to it");
		out->error = ctx.error;
		return -1;
	}
	if (expr_eval_node(&ctx, e->root, &v) < 0) {
		out->error = ctx.error;
		return -1;
	}
	out->type = v.type;
	out->scalar = v.scalar;
	out->string = v.string;
	expr_vector_sort(&v);
	for (size_t i = 1; i < v.count; i++) {
		if (expr_labels_compare(&v.vec[i - 1].labels, &v.vec[i].labels) == 0) {
			/* NOTE: only the final result is checked; an aggregation or binary
			 * operator fed with such duplicates combines them silently. */
			expr_eval_fail(&ctx,
				       "the result has more than one series with labels %s, "
				       "because the metric name was dropped from series that "
				       "differed only by it",
				       expr_labels_format(&ctx, &v.vec[i].labels));
			out->error = ctx.error;
			return -1;
		}
	}
	out->elements = expr_arena_alloc(ctx.arena, v.count * sizeof(*out->elements));
	out->count = v.count;
	for (size_t i = 0; i < v.count; i++)
		out->elements[i] =
		    (struct expr_element){v.vec[i].labels.v, v.vec[i].labels.count, v.vec[i].value};
	return 0;
}

void expr_result_free(struct expr_result *r)
{
	expr_arena_free(r->arena);
	memset(r, 0, sizeof(*r));
}
