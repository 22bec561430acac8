/*
 * YAML configuration reading with positions. The whole file is loaded with libyaml's
 * document API and checked once for duplicate and non-scalar keys. Typed getters then walk
 * it and record every problem as "FILE:LINE:COLUMN: KEY.PATH: PROBLEM" instead of stopping,
 * so that one run reports every error in the file.
 */
#include "collector/cfg.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "collector/hash.h"
#include "collector/units.h"
#include "collector/xalloc.h"

/* Larger files are rejected: a configuration this big is almost certainly the wrong file. */
#define CFG_FILE_MAX (16u * 1024 * 1024)
/* Deeper nesting only comes from recursive aliases or generated junk. */
#define CFG_DEPTH_MAX 64
/* Values longer than this are shortened in messages. */
#define CFG_QUOTE_MAX 60

/* Errors past this many are counted, not listed: a file of generated garbage must not
 * turn into megabytes of messages. */
#define CFG_ERRORS_SHOWN 100

struct cfg_message {
	size_t line; /* 1-based; 0 when the message has no position */
	size_t column;
	char *text;
};

struct cfg {
	char *name;
	yaml_document_t doc;
	bool have_doc;
	struct cfg_message *messages; /* in the order found */
	size_t message_count;
	size_t message_capacity;
	size_t error_count;      /* including those past CFG_ERRORS_SHOWN */
	char *errors;            /* cfg_errors() output, rebuilt when stale */
	size_t errors_built_for; /* error_count when `errors` was built */
	char *text;              /* the source, for cfg_map_source() */
	size_t length;
	uint64_t source_hash;
};

/* Records "NAME:LINE:COLUMN: PATH: MESSAGE"; mark NULL leaves out the position. */
static void cfg_record_v(struct cfg *cfg, const yaml_mark_t *mark, const char *path,
			 const char *fmt, va_list ap)
{
	char message[1024];
	char position[64] = "";
	struct cfg_message *m;

	cfg->error_count++;
	if (cfg->message_count >= CFG_ERRORS_SHOWN)
		return;

	vsnprintf(message, sizeof message, fmt, ap);
	if (mark != NULL)
		snprintf(position, sizeof position, ":%zu:%zu", mark->line + 1, mark->column + 1);
	cfg->messages = xreallocarray_grow(cfg->messages, &cfg->message_capacity,
					   cfg->message_count + 1, sizeof *cfg->messages);
	m = &cfg->messages[cfg->message_count++];
	m->line = mark != NULL ? mark->line + 1 : 0;
	m->column = mark != NULL ? mark->column + 1 : 0;
	if (path != NULL && path[0] != '\0')
		m->text = xasprintf("%s%s: %s: %s", cfg->name, position, path, message);
	else
		m->text = xasprintf("%s%s: %s", cfg->name, position, message);
}

static void cfg_record(struct cfg *cfg, const yaml_mark_t *mark, const char *path, const char *fmt,
		       ...) __attribute__((format(printf, 4, 5)));

static void cfg_record(struct cfg *cfg, const yaml_mark_t *mark, const char *path, const char *fmt,
		       ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_record_v(cfg, mark, path, fmt, ap);
	va_end(ap);
}

static yaml_node_t *cfg_node(const struct cfg *cfg, int index)
{
	if (!cfg->have_doc || index <= 0)
		return NULL;
	return yaml_document_get_node((yaml_document_t *)&cfg->doc, index);
}

/* Writes path + separator + part into out, cutting what does not fit: paths are for messages. */
static void cfg_path_join(char *out, size_t size, const char *path, const char *separator,
			  const char *part)
{
	size_t used = 0;
	const char *pieces[3] = {path, separator, part};

	for (size_t i = 0; i < 3; i++) {
		size_t len = strlen(pieces[i]);

		if (len > size - 1 - used)
			len = size - 1 - used;
		memmove(out + used, pieces[i], len);
		used += len;
	}
	out[used] = '\0';
}

static void cfg_path_key(char *out, size_t size, const char *path, const char *key)
{
	cfg_path_join(out, size, path, path[0] == '\0' ? "" : ".", key);
}

static void cfg_path_index(char *out, size_t size, const char *path, size_t index)
{
	char number[32];

	snprintf(number, sizeof number, "[%zu]", index);
	cfg_path_join(out, size, path, "", number);
}

const char *cfg_quote(const char *value, char *buf, size_t size)
{
	size_t used = 0;
	size_t shown = 0;

	/* Room for the quotes, the longest escape ("\\xff") or "...", and the NUL. */
	if (size < 9) {
		if (size > 0)
			buf[0] = '\0';
		return buf;
	}
	buf[used++] = '"';
	/* Before each character, 5 bytes are left for a closing `..."` and the NUL. */
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
		bool last = p[1] == '\0';
		char piece[8];
		size_t len;

		if (*p == '"' || *p == '\\')
			snprintf(piece, sizeof piece, "\\%c", *p);
		else if (*p == '\n')
			snprintf(piece, sizeof piece, "\\n");
		else if (*p == '\t')
			snprintf(piece, sizeof piece, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			snprintf(piece, sizeof piece, "\\x%02x", *p);
		else
			snprintf(piece, sizeof piece, "%c", *p);
		len = strlen(piece);
		if (shown == CFG_QUOTE_MAX || used + len + (last ? 2 : 5) > size) {
			memcpy(buf + used, "...", 3);
			used += 3;
			break;
		}
		memcpy(buf + used, piece, len);
		used += len;
		shown++;
	}
	buf[used++] = '"';
	buf[used] = '\0';
	return buf;
}

static const char *cfg_node_kind(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a sequence";
	case YAML_SCALAR_NODE:
	case YAML_NO_NODE:
		break;
	}
	return "a string";
}

/* Plain "", "~" and "null" are YAML's null: a key written with no value. */
static bool cfg_node_is_null(const yaml_node_t *node)
{
	const char *v;

	if (node == NULL)
		return true;
	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)node->data.scalar.value;
	return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static bool cfg_scalar_equals(const yaml_node_t *node, const char *text)
{
	size_t len = strlen(text);

	return node != NULL && node->type == YAML_SCALAR_NODE && node->data.scalar.length == len &&
	       memcmp(node->data.scalar.value, text, len) == 0;
}

/* Checks keys of every mapping below `index`: scalar, and each at most once per mapping. */
struct cfg_key_ref {
	const yaml_node_t *key; /* NULL for a key that is not a scalar */
	size_t index;
};

static int cfg_key_ref_compare(const void *a, const void *b)
{
	const struct cfg_key_ref *x = a;
	const struct cfg_key_ref *y = b;

	if (x->key == NULL || y->key == NULL) {
		if (x->key != y->key)
			return x->key == NULL ? -1 : 1;
	} else if (x->key->data.scalar.length != y->key->data.scalar.length) {
		return x->key->data.scalar.length < y->key->data.scalar.length ? -1 : 1;
	} else {
		int c = memcmp(x->key->data.scalar.value, y->key->data.scalar.value,
			       x->key->data.scalar.length);

		if (c != 0)
			return c;
	}
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * For each pair, the index of the first earlier pair with the same key, or SIZE_MAX.
 * Sorting keeps this O(n log n): a generated file with thousands of keys must not stall
 * the loop during a reload. The caller frees the array.
 */
static size_t *cfg_find_duplicate_keys(const struct cfg *cfg, const yaml_node_pair_t *pairs,
				       size_t count)
{
	struct cfg_key_ref *refs = xcalloc(count + 1, sizeof *refs);
	size_t *earlier = xcalloc(count + 1, sizeof *earlier);

	for (size_t i = 0; i < count; i++) {
		const yaml_node_t *key = cfg_node(cfg, pairs[i].key);

		refs[i].key = key != NULL && key->type == YAML_SCALAR_NODE ? key : NULL;
		refs[i].index = i;
		earlier[i] = SIZE_MAX;
	}
	qsort(refs, count, sizeof *refs, cfg_key_ref_compare);
	for (size_t i = 1; i < count; i++) {
		const struct cfg_key_ref *prev = &refs[i - 1];
		const struct cfg_key_ref *cur = &refs[i];

		if (prev->key == NULL || cur->key == NULL ||
		    prev->key->data.scalar.length != cur->key->data.scalar.length ||
		    memcmp(prev->key->data.scalar.value, cur->key->data.scalar.value,
			   cur->key->data.scalar.length) != 0)
			continue;
		/* Runs of equal keys are sorted by index: point each at the run's first. */
		earlier[cur->index] =
		    earlier[prev->index] != SIZE_MAX ? earlier[prev->index] : prev->index;
	}
	free(refs);
	return earlier;
}

static void cfg_check_node(struct cfg *cfg, int index, const char *path, int depth, bool *visited)
{
	yaml_node_t *node = cfg_node(cfg, index);
	char child[CFG_PATH_MAX];

	if (node == NULL || visited[index])
		return;
	visited[index] = true;
	if (depth > CFG_DEPTH_MAX) {
		cfg_record(cfg, &node->start_mark, path, "nested deeper than %d levels",
			   CFG_DEPTH_MAX);
		return;
	}
	if (node->type == YAML_SEQUENCE_NODE) {
		yaml_node_item_t *items = node->data.sequence.items.start;
		size_t count = (size_t)(node->data.sequence.items.top - items);

		for (size_t i = 0; i < count; i++) {
			cfg_path_index(child, sizeof child, path, i);
			cfg_check_node(cfg, items[i], child, depth + 1, visited);
		}
		return;
	}
	if (node->type != YAML_MAPPING_NODE)
		return;

	yaml_node_pair_t *pairs = node->data.mapping.pairs.start;
	size_t count = (size_t)(node->data.mapping.pairs.top - pairs);
	size_t *earlier = cfg_find_duplicate_keys(cfg, pairs, count);

	for (size_t i = 0; i < count; i++) {
		yaml_node_t *key = cfg_node(cfg, pairs[i].key);

		if (key == NULL || key->type != YAML_SCALAR_NODE) {
			cfg_record(cfg, key != NULL ? &key->start_mark : &node->start_mark, path,
				   "a key is %s; keys must be strings",
				   key != NULL ? cfg_node_kind(key) : "missing");
			continue;
		}
		cfg_path_key(child, sizeof child, path, (const char *)key->data.scalar.value);
		if (earlier[i] != SIZE_MAX) {
			yaml_node_t *first = cfg_node(cfg, pairs[earlier[i]].key);

			cfg_record(
			    cfg, &key->start_mark, child,
			    "duplicate key (first at line %zu, column %zu); remove one of them",
			    first->start_mark.line + 1, first->start_mark.column + 1);
		}
		cfg_check_node(cfg, pairs[i].value, child, depth + 1, visited);
	}
	free(earlier);
}

static void cfg_record_yaml_error(struct cfg *cfg, const yaml_parser_t *parser, const char *text,
				  size_t length)
{
	const char *problem = parser->problem != NULL ? parser->problem : "unknown error";
	yaml_mark_t mark = {0};

	switch (parser->error) {
	case YAML_MEMORY_ERROR:
		cfg_record(cfg, NULL, NULL, "invalid YAML: out of memory while parsing");
		return;
	case YAML_READER_ERROR:
		/* The reader reports a byte offset only (bad UTF-8, control characters). */
		for (size_t i = 0; i < parser->problem_offset && i < length; i++) {
			if (text[i] == '\n') {
				mark.line++;
				mark.column = 0;
			} else {
				mark.column++;
			}
		}
		cfg_record(cfg, &mark, NULL, "invalid YAML: %s (byte offset %zu)", problem,
			   parser->problem_offset);
		return;
	default:
		break;
	}
	if (parser->context != NULL)
		cfg_record(cfg, &parser->problem_mark, NULL,
			   "invalid YAML: %s (%s that starts at line %zu, column %zu)", problem,
			   parser->context, parser->context_mark.line + 1,
			   parser->context_mark.column + 1);
	else
		cfg_record(cfg, &parser->problem_mark, NULL, "invalid YAML: %s", problem);
}

/*
 * Finds where flow collections ("[", "{") nest deeper than CFG_DEPTH_MAX, skipping quoted
 * strings and comments. libyaml's scanner slows down with the square of that depth, so
 * a pathological file is rejected before it reaches the parser. Returns false and sets
 * *mark when the limit is passed.
 */
static bool cfg_flow_depth_ok(const char *text, size_t length, yaml_mark_t *mark)
{
	size_t depth = 0;
	size_t line = 0;
	size_t column = 0;
	char quote = 0;
	bool comment = false;

	for (size_t i = 0; i < length; i++, column++) {
		char c = text[i];

		if (c == '\n') {
			line++;
			column = (size_t)-1;
			comment = false;
		} else if (comment) {
			continue;
		} else if (quote != 0) {
			if (c == '\\' && quote == '"')
				i++, column++;
			else if (c == quote)
				quote = 0;
		} else if (c == '"' || c == '\'') {
			quote = c;
		} else if (c == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t')) {
			comment = true;
		} else if (c == '[' || c == '{') {
			if (++depth > CFG_DEPTH_MAX) {
				mark->line = line;
				mark->column = column;
				mark->index = i;
				return false;
			}
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return true;
}

struct cfg *cfg_parse_string(const char *name, const char *text, size_t length)
{
	struct cfg *cfg = xcalloc(1, sizeof *cfg);
	yaml_parser_t parser;
	yaml_document_t extra;
	yaml_mark_t deep = {0};
	bool *visited = NULL;

	cfg->name = xstrdup(name);
	cfg->text = xstrndup(text, length);
	cfg->length = length;
	cfg->source_hash = hash_bytes(HASH_FNV_OFFSET, text, length);
	if (!cfg_flow_depth_ok(text, length, &deep)) {
		cfg_record(cfg, &deep, NULL, "nested deeper than %d levels", CFG_DEPTH_MAX);
		return cfg;
	}
	if (!yaml_parser_initialize(&parser)) {
		cfg_record(cfg, NULL, NULL, "invalid YAML: out of memory while parsing");
		return cfg;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, length);
	if (!yaml_parser_load(&parser, &cfg->doc)) {
		cfg_record_yaml_error(cfg, &parser, text, length);
		goto done;
	}
	cfg->have_doc = true;

	/* A second document would be silently ignored by a reader of the first one. */
	if (!yaml_parser_load(&parser, &extra)) {
		cfg_record_yaml_error(cfg, &parser, text, length);
	} else {
		yaml_node_t *root = yaml_document_get_root_node(&extra);

		/* A trailing "---" with nothing after it is harmless. */
		if (root != NULL && !cfg_node_is_null(root))
			cfg_record(cfg, &extra.start_mark, NULL,
				   "a second YAML document starts here; a config file holds "
				   "exactly one (remove the \"---\" line and what follows)");
		yaml_document_delete(&extra);
	}

	visited = xcalloc((size_t)(cfg->doc.nodes.top - cfg->doc.nodes.start) + 1, sizeof(bool));
	cfg_check_node(cfg, 1, "", 0, visited);
	free(visited);
done:
	yaml_parser_delete(&parser);
	return cfg;
}

struct cfg *cfg_parse_file(const char *path)
{
	struct cfg *cfg = NULL;
	FILE *fp = fopen(path, "rb");
	char *text = NULL;
	size_t length = 0;
	size_t capacity = 0;
	int saved_errno;

	if (fp == NULL)
		goto failed;
	for (;;) {
		size_t n;

		text = xreallocarray_grow(text, &capacity, length + 65536, 1);
		n = fread(text + length, 1, capacity - length, fp);
		length += n;
		if (length > CFG_FILE_MAX) {
			cfg = cfg_parse_string(path, "", 0);
			cfg_record(cfg, NULL, NULL,
				   "file is larger than %u MiB; is it a config file?",
				   CFG_FILE_MAX / (1024 * 1024));
			goto done;
		}
		if (n == 0)
			break;
	}
	if (ferror(fp))
		goto failed;
	cfg = cfg_parse_string(path, text, length);
	goto done;
failed:
	saved_errno = errno;
	cfg = cfg_parse_string(path, "", 0);
	cfg_record(cfg, NULL, NULL, "failed to read: %s", strerror(saved_errno));
done:
	if (fp != NULL)
		fclose(fp);
	free(text);
	return cfg;
}

void cfg_free(struct cfg *cfg)
{
	if (cfg == NULL)
		return;
	if (cfg->have_doc)
		yaml_document_delete(&cfg->doc);
	free(cfg->name);
	free(cfg->text);
	free(cfg->errors);
	for (size_t i = 0; i < cfg->message_count; i++)
		free(cfg->messages[i].text);
	free(cfg->messages);
	free(cfg);
}

size_t cfg_error_count(const struct cfg *cfg)
{
	return cfg->error_count;
}

uint64_t cfg_source_hash(const struct cfg *cfg)
{
	return cfg->source_hash;
}

static int cfg_message_compare(const void *a, const void *b)
{
	const struct cfg_message *x = *(const struct cfg_message *const *)a;
	const struct cfg_message *y = *(const struct cfg_message *const *)b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->column != y->column)
		return x->column < y->column ? -1 : 1;
	return x < y ? -1 : x > y; /* stable: order found */
}

/* Joins the messages in file order (line, then column), then a count of the rest. */
const char *cfg_errors(const struct cfg *cfg)
{
	struct cfg *c = (struct cfg *)cfg; /* the joined text is a cache */
	const struct cfg_message **sorted;
	size_t len = 0;
	char *out;

	if (c->errors != NULL && c->errors_built_for == c->error_count)
		return c->errors;
	free(c->errors);

	sorted = xcalloc(c->message_count + 1, sizeof *sorted);
	for (size_t i = 0; i < c->message_count; i++) {
		sorted[i] = &c->messages[i];
		len += strlen(c->messages[i].text) + 1;
	}
	qsort(sorted, c->message_count, sizeof *sorted, cfg_message_compare);

	out = xmalloc(len + 128);
	out[0] = '\0';
	len = 0;
	for (size_t i = 0; i < c->message_count; i++) {
		size_t n = strlen(sorted[i]->text);

		if (i > 0)
			out[len++] = '\n';
		memcpy(out + len, sorted[i]->text, n + 1);
		len += n;
	}
	if (c->error_count > c->message_count)
		snprintf(out + len, 128,
			 "\n%s: and %zu more errors not shown; fix the ones above first", c->name,
			 c->error_count - c->message_count);
	free(sorted);
	c->errors = out;
	c->errors_built_for = c->error_count;
	return c->errors;
}

const char *cfg_file_name(const struct cfg *cfg)
{
	return cfg->name;
}

static size_t cfg_pair_count(const yaml_node_t *node)
{
	if (node == NULL || node->type != YAML_MAPPING_NODE)
		return 0;
	return (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
}

static void cfg_map_open(struct cfg_map *m, struct cfg *cfg, int node, const char *path)
{
	memset(m, 0, sizeof *m);
	m->cfg = cfg;
	m->node = node;
	snprintf(m->path, sizeof m->path, "%s", path);
	/* One extra slot so that an empty mapping still gets an array. */
	m->used = xcalloc(cfg_pair_count(cfg_node(cfg, node)) + 1, sizeof(bool));
}

int cfg_root(struct cfg *cfg, struct cfg_map *root)
{
	yaml_node_t *node = cfg->have_doc ? yaml_document_get_root_node(&cfg->doc) : NULL;
	char quoted[CFG_QUOTE_SIZE];

	/* An empty file, or one holding only comments, is an empty mapping: all defaults. */
	if (node == NULL || cfg_node_is_null(node)) {
		cfg_map_open(root, cfg, 0, "");
		return 0;
	}
	if (node->type != YAML_MAPPING_NODE) {
		cfg_map_open(root, cfg, 0, "");
		if (node->type == YAML_SCALAR_NODE)
			cfg_record(
			    cfg, &node->start_mark, NULL,
			    "the top level is the string %s; it must be a mapping of keys to "
			    "values (\"key: value\" lines)",
			    cfg_quote((const char *)node->data.scalar.value, quoted,
				      sizeof quoted));
		else
			cfg_record(cfg, &node->start_mark, NULL,
				   "the top level is %s; it must be a mapping of keys to values "
				   "(\"key: value\" lines)",
				   cfg_node_kind(node));
		return -1;
	}
	cfg_map_open(root, cfg, (int)(node - cfg->doc.nodes.start) + 1, "");
	return 0;
}

int cfg_root_seq(struct cfg *cfg, struct cfg_seq *root)
{
	yaml_node_t *node = cfg->have_doc ? yaml_document_get_root_node(&cfg->doc) : NULL;

	root->cfg = cfg;
	root->node = 0;
	root->path[0] = '\0';
	/* An empty file is an empty list. */
	if (node == NULL || cfg_node_is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE) {
		cfg_record(cfg, &node->start_mark, NULL, "the top level is %s; it must be a list",
			   cfg_node_kind(node));
		return -1;
	}
	root->node = (int)(node - cfg->doc.nodes.start) + 1;
	return 0;
}

/* Index of the pair whose key is `key`, or -1. */
static long cfg_map_find(const struct cfg_map *m, const char *key)
{
	yaml_node_t *node = cfg_node(m->cfg, m->node);
	size_t count = cfg_pair_count(node);

	for (size_t i = 0; i < count; i++) {
		yaml_node_t *k = cfg_node(m->cfg, node->data.mapping.pairs.start[i].key);

		if (cfg_scalar_equals(k, key))
			return (long)i;
	}
	return -1;
}

static yaml_node_t *cfg_map_value(const struct cfg_map *m, long pair)
{
	yaml_node_t *node = cfg_node(m->cfg, m->node);

	return cfg_node(m->cfg, node->data.mapping.pairs.start[pair].value);
}

static void cfg_map_know(struct cfg_map *m, const char *key)
{
	for (size_t i = 0; i < m->known_count; i++)
		if (strcmp(m->known[i], key) == 0)
			return;
	m->known =
	    xreallocarray_grow(m->known, &m->known_capacity, m->known_count + 1, sizeof *m->known);
	m->known[m->known_count++] = key;
}

/*
 * Marks `key` known and, when present, used; returns its value node or NULL. A key that
 * appears twice was reported when the file was read, so both copies count as used.
 */
static yaml_node_t *cfg_map_take(struct cfg_map *m, const char *key)
{
	yaml_node_t *node = cfg_node(m->cfg, m->node);
	size_t count = cfg_pair_count(node);
	long pair;

	cfg_map_know(m, key);
	pair = cfg_map_find(m, key);
	if (pair < 0)
		return NULL;
	for (size_t i = (size_t)pair; i < count && m->used != NULL; i++)
		if (cfg_scalar_equals(cfg_node(m->cfg, node->data.mapping.pairs.start[i].key), key))
			m->used[i] = true;
	return cfg_map_value(m, pair);
}

static const yaml_mark_t *cfg_map_mark(const struct cfg_map *m, const char *key)
{
	yaml_node_t *node = cfg_node(m->cfg, m->node);
	long pair;

	if (node == NULL)
		return NULL;
	if (key != NULL) {
		pair = cfg_map_find(m, key);
		if (pair >= 0)
			return &cfg_map_value(m, pair)->start_mark;
	}
	return &node->start_mark;
}

void cfg_error(struct cfg_map *m, const char *key, const char *fmt, ...)
{
	char path[CFG_PATH_MAX];
	va_list ap;

	if (key != NULL)
		cfg_path_key(path, sizeof path, m->path, key);
	else
		snprintf(path, sizeof path, "%s", m->path);
	va_start(ap, fmt);
	cfg_record_v(m->cfg, cfg_map_mark(m, key), path, fmt, ap);
	va_end(ap);
}

static yaml_node_t *cfg_seq_item(const struct cfg_seq *s, size_t index)
{
	yaml_node_t *node = cfg_node(s->cfg, s->node);

	if (node == NULL || index >= cfg_seq_count(s))
		return NULL;
	return cfg_node(s->cfg, node->data.sequence.items.start[index]);
}

void cfg_seq_error(struct cfg_seq *s, size_t index, const char *fmt, ...)
{
	yaml_node_t *item = cfg_seq_item(s, index);
	yaml_node_t *node = cfg_node(s->cfg, s->node);
	char path[CFG_PATH_MAX];
	va_list ap;

	cfg_path_index(path, sizeof path, s->path, index);
	va_start(ap, fmt);
	cfg_record_v(s->cfg,
		     item != NULL   ? &item->start_mark
		     : node != NULL ? &node->start_mark
				    : NULL,
		     path, fmt, ap);
	va_end(ap);
}

const char *cfg_location(const struct cfg_map *m, const char *key, char *buf, size_t size)
{
	const yaml_mark_t *mark = cfg_map_mark(m, key);

	if (mark != NULL)
		snprintf(buf, size, "%s:%zu:%zu", m->cfg->name, mark->line + 1, mark->column + 1);
	else
		snprintf(buf, size, "%s", m->cfg->name);
	return buf;
}

bool cfg_value_position(const struct cfg_map *m, const char *key, int *line, int *column)
{
	long pair = cfg_map_find(m, key);
	const yaml_node_t *value = pair >= 0 ? cfg_map_value(m, pair) : NULL;
	size_t i;
	size_t indent = 0;

	if (value == NULL || value->type != YAML_SCALAR_NODE)
		return false;
	switch (value->data.scalar.style) {
	case YAML_SINGLE_QUOTED_SCALAR_STYLE:
	case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
		*line = (int)value->start_mark.line + 1;
		*column = (int)value->start_mark.column + 2;
		return true;
	case YAML_LITERAL_SCALAR_STYLE:
	case YAML_FOLDED_SCALAR_STYLE:
		break;
	default:
		*line = (int)value->start_mark.line + 1;
		*column = (int)value->start_mark.column + 1;
		return true;
	}

	/* The mark is at the "|" or ">": the text starts on the next line, indented like the
	 * first line that is not blank. NOTE: folding (">") joins lines, and an explicit
	 * indentation indicator ("|2") keeps spaces in the text, so positions that a parser
	 * counts past the first line of such a scalar do not match the file's. */
	i = value->start_mark.index;
	while (i < m->cfg->length && m->cfg->text[i] != '\n')
		i++;
	for (size_t j = i + 1; j < m->cfg->length; j++) {
		char c = m->cfg->text[j];

		if (c == ' ') {
			indent++;
		} else if (c == '\n' || c == '\r') {
			indent = 0;
		} else {
			break;
		}
	}
	*line = (int)value->start_mark.line + 2;
	*column = (int)indent + 1;
	return true;
}

bool cfg_has(struct cfg_map *m, const char *key)
{
	cfg_map_know(m, key);
	return cfg_map_find(m, key) >= 0;
}

enum cfg_kind cfg_kind(struct cfg_map *m, const char *key)
{
	long pair;
	yaml_node_t *value;

	cfg_map_know(m, key);
	pair = cfg_map_find(m, key);
	if (pair < 0)
		return CFG_KIND_ABSENT;
	value = cfg_map_value(m, pair);
	if (cfg_node_is_null(value))
		return CFG_KIND_NULL;
	if (value->type == YAML_SEQUENCE_NODE)
		return CFG_KIND_SEQUENCE;
	if (value->type == YAML_MAPPING_NODE)
		return CFG_KIND_MAPPING;
	return CFG_KIND_SCALAR;
}

size_t cfg_map_size(const struct cfg_map *m)
{
	return cfg_pair_count(cfg_node(m->cfg, m->node));
}

const char *cfg_map_key(const struct cfg_map *m, size_t index)
{
	yaml_node_t *node = cfg_node(m->cfg, m->node);
	yaml_node_t *key;

	if (index >= cfg_pair_count(node))
		return NULL;
	key = cfg_node(m->cfg, node->data.mapping.pairs.start[index].key);
	if (key == NULL || key->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)key->data.scalar.value;
}

/*
 * Common start of every scalar getter: 0 when absent, -1 (error recorded) when the value
 * is null, not a scalar or contains a NUL byte, else 1 with *text pointing into the document.
 */
static int cfg_get_scalar(struct cfg_map *m, const char *key, const char *expected,
			  const char **text)
{
	yaml_node_t *value = cfg_map_take(m, key);

	if (value == NULL)
		return 0;
	if (value->type != YAML_SCALAR_NODE) {
		cfg_error(m, key, "expected %s, found %s", expected, cfg_node_kind(value));
		return -1;
	}
	if (cfg_node_is_null(value)) {
		cfg_error(m, key, "has no value; expected %s", expected);
		return -1;
	}
	if (strlen((const char *)value->data.scalar.value) != value->data.scalar.length) {
		cfg_error(m, key, "contains a NUL character; expected %s", expected);
		return -1;
	}
	*text = (const char *)value->data.scalar.value;
	return 1;
}

int cfg_get_string(struct cfg_map *m, const char *key, char **out)
{
	const char *text;
	int rc = cfg_get_scalar(m, key, "a string", &text);

	if (rc == 1)
		*out = xstrdup(text);
	return rc;
}

int cfg_get_bool(struct cfg_map *m, const char *key, bool *out)
{
	char quoted[CFG_QUOTE_SIZE];
	const char *text;
	int rc = cfg_get_scalar(m, key, "true or false", &text);

	if (rc != 1)
		return rc;
	/* YAML 1.2 booleans only: "yes", "on" and friends are YAML 1.1 surprises. */
	if (strcmp(text, "true") == 0) {
		*out = true;
		return 1;
	}
	if (strcmp(text, "false") == 0) {
		*out = false;
		return 1;
	}
	cfg_error(m, key, "%s is not a boolean (accepted: true, false)",
		  cfg_quote(text, quoted, sizeof quoted));
	return -1;
}

int cfg_get_int(struct cfg_map *m, const char *key, int64_t min, int64_t max, int64_t *out)
{
	char quoted[CFG_QUOTE_SIZE];
	const char *text;
	const char *digits;
	char *end;
	long long value;
	int rc = cfg_get_scalar(m, key, "an integer", &text);

	if (rc != 1)
		return rc;
	/* strtoll alone would accept leading spaces, a '+' sign and trailing junk. */
	digits = text[0] == '-' ? text + 1 : text;
	errno = 0;
	value = strtoll(text, &end, 10);
	if (*digits < '0' || *digits > '9' || *end != '\0') {
		cfg_error(m, key, "%s is not an integer (accepted: %lld to %lld)",
			  cfg_quote(text, quoted, sizeof quoted), (long long)min, (long long)max);
		return -1;
	}
	if (errno == ERANGE || value < min || value > max) {
		cfg_error(m, key, "%s is out of range (accepted: %lld to %lld)",
			  cfg_quote(text, quoted, sizeof quoted), (long long)min, (long long)max);
		return -1;
	}
	*out = value;
	return 1;
}

int cfg_get_double(struct cfg_map *m, const char *key, double *out)
{
	char quoted[CFG_QUOTE_SIZE];
	const char *text;
	char *end;
	double value;
	int rc = cfg_get_scalar(m, key, "a number", &text);

	if (rc != 1)
		return rc;
	/* Decimal notation only: strtod would also take spaces, hex, "nan" and "inf". */
	errno = 0;
	value = strtod(text, &end);
	if (text[strspn(text, "0123456789+-.eE")] != '\0' || end == text || *end != '\0') {
		cfg_error(m, key, "%s is not a number (examples: 1, 0.5, -2.5e3)",
			  cfg_quote(text, quoted, sizeof quoted));
		return -1;
	}
	if (errno == ERANGE && !isfinite(value)) {
		cfg_error(m, key, "%s is out of range for a number",
			  cfg_quote(text, quoted, sizeof quoted));
		return -1;
	}
	*out = value;
	return 1;
}

int cfg_get_duration_ms(struct cfg_map *m, const char *key, uint64_t *out)
{
	char quoted[CFG_QUOTE_SIZE];
	const char *text;
	int rc = cfg_get_scalar(m, key, "a duration (" UNITS_DURATION_EXAMPLES ")", &text);

	if (rc != 1)
		return rc;
	if (units_parse_duration_ms(text, out) < 0) {
		cfg_error(m, key, "%s is not a duration (" UNITS_DURATION_EXAMPLES ")",
			  cfg_quote(text, quoted, sizeof quoted));
		return -1;
	}
	return 1;
}

int cfg_get_size(struct cfg_map *m, const char *key, uint64_t *out)
{
	char quoted[CFG_QUOTE_SIZE];
	const char *text;
	int rc = cfg_get_scalar(m, key, "a size (" UNITS_SIZE_EXAMPLES ")", &text);

	if (rc != 1)
		return rc;
	if (units_parse_size(text, out) < 0) {
		cfg_error(m, key, "%s is not a size (" UNITS_SIZE_EXAMPLES ")",
			  cfg_quote(text, quoted, sizeof quoted));
		return -1;
	}
	return 1;
}

void cfg_strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

/* Copies a scalar item for the list and map getters; NULL (error recorded) otherwise. */
static char *cfg_copy_scalar(struct cfg *cfg, const yaml_node_t *node, const char *path)
{
	if (node->type != YAML_SCALAR_NODE) {
		cfg_record(cfg, &node->start_mark, path, "expected a string, found %s",
			   cfg_node_kind(node));
		return NULL;
	}
	if (cfg_node_is_null(node)) {
		cfg_record(cfg, &node->start_mark, path, "has no value; expected a string");
		return NULL;
	}
	if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length) {
		cfg_record(cfg, &node->start_mark, path,
			   "contains a NUL character; expected a string");
		return NULL;
	}
	return xstrdup((const char *)node->data.scalar.value);
}

int cfg_get_string_list(struct cfg_map *m, const char *key, char ***out, size_t *count)
{
	yaml_node_t *value = cfg_map_take(m, key);
	char path[CFG_PATH_MAX];
	char item_path[CFG_PATH_MAX];
	char **list;
	size_t n;
	bool failed = false;

	if (value == NULL || cfg_node_is_null(value))
		return 0;
	if (value->type != YAML_SEQUENCE_NODE) {
		cfg_error(m, key, "expected a sequence of strings, found %s", cfg_node_kind(value));
		return -1;
	}
	cfg_path_key(path, sizeof path, m->path, key);
	n = (size_t)(value->data.sequence.items.top - value->data.sequence.items.start);
	list = xcalloc(n + 1, sizeof *list);
	for (size_t i = 0, kept = 0; i < n; i++) {
		yaml_node_t *item = cfg_node(m->cfg, value->data.sequence.items.start[i]);

		cfg_path_index(item_path, sizeof item_path, path, i);
		list[kept] = cfg_copy_scalar(m->cfg, item, item_path);
		if (list[kept] == NULL)
			failed = true;
		else
			kept++;
	}
	if (failed) {
		cfg_strv_free(list);
		return -1;
	}
	*out = list;
	*count = n;
	return 1;
}

int cfg_get_string_map(struct cfg_map *m, const char *key, char ***names, char ***values,
		       size_t *count)
{
	yaml_node_t *value = cfg_map_take(m, key);
	char path[CFG_PATH_MAX];
	char item_path[CFG_PATH_MAX];
	char **name_list;
	char **value_list;
	size_t n;
	size_t kept = 0;
	bool failed = false;

	if (value == NULL || cfg_node_is_null(value))
		return 0;
	if (value->type != YAML_MAPPING_NODE) {
		cfg_error(m, key, "expected a mapping of names to strings, found %s",
			  cfg_node_kind(value));
		return -1;
	}
	cfg_path_key(path, sizeof path, m->path, key);
	n = cfg_pair_count(value);
	name_list = xcalloc(n + 1, sizeof *name_list);
	value_list = xcalloc(n + 1, sizeof *value_list);
	for (size_t i = 0; i < n; i++) {
		yaml_node_pair_t *pair = &value->data.mapping.pairs.start[i];
		yaml_node_t *k = cfg_node(m->cfg, pair->key);
		yaml_node_t *v = cfg_node(m->cfg, pair->value);
		char *v_copy;

		/* Non-scalar keys were reported when the file was read. */
		if (k->type != YAML_SCALAR_NODE) {
			failed = true;
			continue;
		}
		cfg_path_key(item_path, sizeof item_path, path, (const char *)k->data.scalar.value);
		v_copy = cfg_copy_scalar(m->cfg, v, item_path);
		if (v_copy == NULL) {
			failed = true;
			continue;
		}
		name_list[kept] = xstrdup((const char *)k->data.scalar.value);
		value_list[kept] = v_copy;
		kept++;
	}
	if (failed) {
		cfg_strv_free(name_list);
		cfg_strv_free(value_list);
		return -1;
	}
	*names = name_list;
	*values = value_list;
	*count = kept;
	return 1;
}

int cfg_get_map(struct cfg_map *m, const char *key, struct cfg_map *sub)
{
	yaml_node_t *value = cfg_map_take(m, key);
	char path[CFG_PATH_MAX];

	cfg_path_key(path, sizeof path, m->path, key);
	if (value == NULL || cfg_node_is_null(value)) {
		cfg_map_open(sub, m->cfg, 0, path);
		return 0;
	}
	if (value->type != YAML_MAPPING_NODE) {
		cfg_map_open(sub, m->cfg, 0, path);
		cfg_error(m, key, "expected a mapping, found %s", cfg_node_kind(value));
		return -1;
	}
	cfg_map_open(sub, m->cfg, (int)(value - m->cfg->doc.nodes.start) + 1, path);
	return 1;
}

int cfg_get_seq(struct cfg_map *m, const char *key, struct cfg_seq *seq)
{
	yaml_node_t *value = cfg_map_take(m, key);

	memset(seq, 0, sizeof *seq);
	seq->cfg = m->cfg;
	cfg_path_key(seq->path, sizeof seq->path, m->path, key);
	if (value == NULL || cfg_node_is_null(value))
		return 0;
	if (value->type != YAML_SEQUENCE_NODE) {
		cfg_error(m, key, "expected a sequence, found %s", cfg_node_kind(value));
		return -1;
	}
	seq->node = (int)(value - m->cfg->doc.nodes.start) + 1;
	return 1;
}

size_t cfg_seq_count(const struct cfg_seq *s)
{
	yaml_node_t *node = cfg_node(s->cfg, s->node);

	if (node == NULL || node->type != YAML_SEQUENCE_NODE)
		return 0;
	return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

int cfg_seq_map(struct cfg_seq *s, size_t index, struct cfg_map *item)
{
	yaml_node_t *node = cfg_seq_item(s, index);
	char path[CFG_PATH_MAX];

	cfg_path_index(path, sizeof path, s->path, index);
	if (node == NULL || node->type != YAML_MAPPING_NODE) {
		cfg_map_open(item, s->cfg, 0, path);
		if (node != NULL)
			cfg_seq_error(s, index, "expected a mapping, found %s",
				      cfg_node_kind(node));
		return -1;
	}
	cfg_map_open(item, s->cfg, (int)(node - s->cfg->doc.nodes.start) + 1, path);
	return 1;
}

int cfg_seq_string(struct cfg_seq *s, size_t index, char **out)
{
	yaml_node_t *node = cfg_seq_item(s, index);
	char path[CFG_PATH_MAX];
	char *copy;

	if (node == NULL)
		return -1;
	cfg_path_index(path, sizeof path, s->path, index);
	copy = cfg_copy_scalar(s->cfg, node, path);
	if (copy == NULL)
		return -1;
	*out = copy;
	return 1;
}

static uint64_t cfg_hash_node(const struct cfg *cfg, int index, uint64_t h, int depth)
{
	yaml_node_t *node = cfg_node(cfg, index);
	unsigned char kind;

	if (node == NULL || depth > CFG_DEPTH_MAX)
		return hash_bytes(h, "-", 1);
	kind = (unsigned char)node->type;
	h = hash_bytes(h, &kind, 1);
	if (node->type == YAML_SCALAR_NODE) {
		uint64_t len = node->data.scalar.length;

		/* The length keeps "ab","c" apart from "a","bc". */
		h = hash_bytes(h, &len, sizeof len);
		return hash_bytes(h, node->data.scalar.value, node->data.scalar.length);
	}
	if (node->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *i = node->data.sequence.items.start;
		     i < node->data.sequence.items.top; i++)
			h = cfg_hash_node(cfg, *i, h, depth + 1);
		return hash_bytes(h, "]", 1);
	}
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
	     p++) {
		h = cfg_hash_node(cfg, p->key, h, depth + 1);
		h = cfg_hash_node(cfg, p->value, h, depth + 1);
	}
	return hash_bytes(h, "}", 1);
}

char *cfg_map_source(const struct cfg_map *m)
{
	yaml_node_t *node = cfg_node(m->cfg, m->node);
	size_t start;
	size_t end;
	size_t column;
	char *out;

	if (node == NULL || m->cfg->text == NULL)
		return NULL;
	start = node->start_mark.index;
	end = node->end_mark.index;
	column = node->start_mark.column;
	if (start > end || end > m->cfg->length)
		return NULL;

	/* The first line starts at the mapping's column; indent it like the lines after it
	 * so that the text is a mapping on its own. */
	out = xmalloc(column + (end - start) + 2);
	memset(out, ' ', column);
	memcpy(out + column, m->cfg->text + start, end - start);
	out[column + end - start] = '\n';
	out[column + end - start + 1] = '\0';
	return out;
}

uint64_t cfg_map_fingerprint(const struct cfg_map *m)
{
	return cfg_hash_node(m->cfg, m->node, HASH_FNV_OFFSET, 0);
}

/* Levenshtein distance, capped: anything past `cap` is reported as cap + 1. */
static size_t cfg_edit_distance(const char *a, const char *b, size_t cap)
{
	size_t la = strlen(a);
	size_t lb = strlen(b);
	size_t row[65];

	if (la > 64 || lb > 64)
		return cap + 1;
	if ((la > lb ? la - lb : lb - la) > cap)
		return cap + 1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diagonal = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t above = row[j];
			size_t best = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);

			if (above + 1 < best)
				best = above + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diagonal = above;
			row[j] = best;
		}
	}
	return row[lb] > cap ? cap + 1 : row[lb];
}

static void cfg_report_unknown(struct cfg_map *m, const yaml_node_t *key)
{
	const char *name = (const char *)key->data.scalar.value;
	char path[CFG_PATH_MAX];
	const char *hint = NULL;
	size_t cap = strlen(name) < 3 ? 1 : 2;
	size_t best = cap + 1;

	cfg_path_key(path, sizeof path, m->path, name);
	for (size_t i = 0; i < m->known_count; i++) {
		size_t d = cfg_edit_distance(name, m->known[i], cap);

		if (d < best) {
			best = d;
			hint = m->known[i];
		}
	}
	for (size_t i = 0; i < m->known_count; i++) {
		if (strcmp(m->known[i], name) == 0) {
			cfg_record(m->cfg, &key->start_mark, path,
				   "key is not used with the other settings here; remove it");
			return;
		}
	}
	if (hint != NULL) {
		cfg_record(m->cfg, &key->start_mark, path, "unknown key (did you mean \"%s\"?)",
			   hint);
		return;
	}
	if (m->known_count == 0) {
		cfg_record(m->cfg, &key->start_mark, path, "unknown key");
		return;
	}

	char list[512] = "";
	size_t used = 0;

	for (size_t i = 0; i < m->known_count && used < sizeof list; i++) {
		int n = snprintf(list + used, sizeof list - used, "%s%s", i > 0 ? ", " : "",
				 m->known[i]);

		if (n < 0)
			break;
		used += (size_t)n;
	}
	cfg_record(m->cfg, &key->start_mark, path, "unknown key (known keys here: %s)", list);
}

void cfg_map_discard(struct cfg_map *m)
{
	free(m->used);
	free(m->known);
	m->used = NULL;
	m->known = NULL;
	m->known_count = 0;
	m->known_capacity = 0;
	m->node = 0;
}

void cfg_map_finish(struct cfg_map *m)
{
	yaml_node_t *node = cfg_node(m->cfg, m->node);
	size_t count = cfg_pair_count(node);

	for (size_t i = 0; i < count && m->used != NULL; i++) {
		yaml_node_t *key = cfg_node(m->cfg, node->data.mapping.pairs.start[i].key);

		/* Non-scalar keys were reported when the file was read. */
		if (!m->used[i] && key != NULL && key->type == YAML_SCALAR_NODE)
			cfg_report_unknown(m, key);
	}
	cfg_map_discard(m);
}
