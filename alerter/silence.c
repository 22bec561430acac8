/*
 * Silences (see silence.h): validation, the in-memory set used for matching, and its
 * table in the state database. Matchers are compiled by the PromQL parser, so a silence's
 * regex means exactly what the same regex means in a rule's selector.
 */
#include "alerter/silence.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>
#include <sqlite3.h>

#include "alerter/notification.h"
#include "alerter/silence_impl.h"
/* For the compiled matcher inside a parsed selector: expr.h exports no helper that
 * compiles one matcher, and the parser is the one place that defines the regex dialect. */
#include "collector/expr_impl.h"
#include "collector/log.h"
#include "collector/statedb.h"
#include "collector/utf8.h"
#include "collector/xalloc.h"

#define SILENCE_SCHEMA_KEY "schema_version.silences"

static const char silence_schema[] = "CREATE TABLE IF NOT EXISTS silences ("
				     " id TEXT PRIMARY KEY,"
				     " matchers TEXT NOT NULL," /* JSON array of objects */
				     " starts_at_ms INTEGER NOT NULL,"
				     " ends_at_ms INTEGER NOT NULL,"
				     " created_by TEXT NOT NULL,"
				     " comment TEXT NOT NULL,"
				     " created_at_ms INTEGER NOT NULL,"
				     " updated_at_ms INTEGER NOT NULL)";

enum silence_stmt {
	STMT_INSERT,
	STMT_UPDATE_WINDOW,
	STMT_PRUNE,
	STMT_LOAD,
	STMT_COUNT,
};

static const struct silence_table_stmt statements[STMT_COUNT] = {
    [STMT_INSERT] =
	{"silence write",
	 "INSERT INTO silences (id, matchers, starts_at_ms, ends_at_ms, created_by, "
	 "comment, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
    [STMT_UPDATE_WINDOW] = {"silence update",
			    "UPDATE silences SET starts_at_ms = ?2, ends_at_ms = ?3, "
			    "updated_at_ms = ?4 WHERE id = ?1"},
    [STMT_PRUNE] = {"silence prune", "DELETE FROM silences WHERE ends_at_ms < ?1"},
    [STMT_LOAD] = {"silence read",
		   "SELECT id, matchers, starts_at_ms, ends_at_ms, created_by, comment, "
		   "created_at_ms, updated_at_ms FROM silences ORDER BY created_at_ms, id"},
};

/* A silence with its matchers compiled: compiled[i] belongs to s.matchers[i]. */
struct silence_entry {
	struct silence s;
	struct expr **compiled;
};

struct silence_set {
	struct silence_table table;
	struct silence_entry *entries; /* oldest created first */
	size_t count;
};

/* ---- matchers ---- */

const char *silence_op_name(enum expr_match_op op)
{
	switch (op) {
	case EXPR_MATCH_EQUAL:
		return "=";
	case EXPR_MATCH_NOT_EQUAL:
		return "!=";
	case EXPR_MATCH_REGEX:
		return "=~";
	case EXPR_MATCH_NOT_REGEX:
		return "!~";
	}
	return "?";
}

static int parse_op(const char *text, enum expr_match_op *op)
{
	static const enum expr_match_op ops[] = {EXPR_MATCH_EQUAL, EXPR_MATCH_NOT_EQUAL,
						 EXPR_MATCH_REGEX, EXPR_MATCH_NOT_REGEX};

	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		if (strcmp(text, silence_op_name(ops[i])) == 0) {
			*op = ops[i];
			return 0;
		}
	}
	return -1;
}

static bool valid_op(enum expr_match_op op)
{
	return op == EXPR_MATCH_EQUAL || op == EXPR_MATCH_NOT_EQUAL || op == EXPR_MATCH_REGEX ||
	       op == EXPR_MATCH_NOT_REGEX;
}

/* Appends value as a double-quoted PromQL string that the expression lexer decodes back
 * to the same bytes. */
static char *quote_value(const char *value)
{
	size_t length = strlen(value);
	char *out = xmalloc(length * 4 + 3);
	size_t n = 0;

	out[n++] = '"';
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			out[n++] = '\\';
			out[n++] = (char)*p;
		} else if (*p == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else if (*p < 0x20 || *p == 0x7f) {
			n += (size_t)snprintf(out + n, 5, "\\x%02x", *p);
		} else {
			out[n++] = (char)*p;
		}
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

char *silence_matcher_format(const struct silence_matcher *m)
{
	char *quoted = quote_value(m->value);
	char *text = xasprintf("%s%s%s", m->name, silence_op_name(m->op), quoted);

	free(quoted);
	return text;
}

/*
 * Keeps the problem and the accepted forms of a parser message "PROBLEM at column N of
 * expr, expected WHAT": the position refers to the selector built here, not to anything
 * the user wrote.
 */
static char *parser_problem(const char *message)
{
	const char *tail = NULL;
	const char *at = NULL;
	const char *expected;

	for (const char *p = strstr(message, " of expr"); p != NULL; p = strstr(p + 1, " of expr"))
		tail = p;
	if (tail == NULL)
		return xstrdup(message);
	for (const char *p = message; p < tail; p++) {
		if (strncmp(p, " at ", 4) == 0)
			at = p;
	}
	if (at == NULL)
		return xstrdup(message);
	expected = strstr(tail, ", expected ");
	if (expected != NULL)
		return xasprintf("%.*s; expected %s", (int)(at - message), message, expected + 11);
	return xasprintf("%.*s", (int)(at - message), message);
}

/*
 * Compiles a matcher with the PromQL parser. The selector gets a second matcher that does
 * not match the empty string because the parser rejects selectors that match every series,
 * and a silence may contain such a matcher beside others. Returns NULL with *problem set.
 */
static struct expr *compile_matcher(const struct silence_matcher *m, char **problem)
{
	char *quoted = quote_value(m->value);
	char *text = xasprintf("{%s%s%s, __name__!=\"\"}", m->name, silence_op_name(m->op), quoted);
	char *error = NULL;
	struct expr *e = expr_parse(text, NULL, &error);

	free(quoted);
	free(text);
	if (e == NULL) {
		*problem = parser_problem(error);
		free(error);
		return NULL;
	}
	if (e->root->kind != EXPR_NODE_SELECTOR || e->root->matcher_count != 2)
		log_fatal("silence", "the selector of matcher %s parsed to an unexpected tree",
			  m->name);
	return e;
}

static const struct expr_matcher *compiled_matcher(const struct expr *e)
{
	return &e->root->matchers[0];
}

void silence_matcher_clear(struct silence_matcher *m)
{
	free(m->name);
	free(m->value);
	m->name = NULL;
	m->value = NULL;
}

static bool is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Decodes the quoted string at the start of text with the PromQL lexer. */
static int parse_quoted_value(const char *text, char **value, char **problem)
{
	struct expr_lexer lx;
	struct expr_token tok;
	int rc = -1;

	expr_lexer_init(&lx, text);
	if (expr_lex_next(&lx, &tok) < 0) {
		*problem = xstrdup(lx.error);
	} else if (tok.kind != EXPR_TOK_STRING) {
		*problem = xstrdup("the value is not a quoted string");
	} else {
		*value = xstrdup(tok.string);
		if (expr_lex_next(&lx, &tok) < 0 || tok.kind != EXPR_TOK_EOF) {
			*problem = xstrdup("unexpected text after the quoted value");
			free(*value);
			*value = NULL;
		} else {
			rc = 0;
		}
	}
	expr_lexer_done(&lx);
	return rc;
}

int silence_matcher_parse(const char *text, struct silence_matcher *m, char **error)
{
	static const char form[] = "write NAME=\"VALUE\" with one of the operators = != =~ !~";
	const char *p = text;
	const char *name_start;
	size_t name_length;
	char *problem = NULL;
	char *value = NULL;
	char op[3] = "";

	memset(m, 0, sizeof(*m));
	*error = NULL;
	while (*p == ' ' || *p == '\t')
		p++;
	name_start = p;
	if (!is_name_start(*p)) {
		*error = xasprintf("invalid matcher \"%s\": missing label name; %s", text, form);
		return -1;
	}
	while (is_name_char(*p))
		p++;
	name_length = (size_t)(p - name_start);
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncmp(p, "=~", 2) == 0 || strncmp(p, "!~", 2) == 0 || strncmp(p, "!=", 2) == 0) {
		memcpy(op, p, 2);
		p += 2;
	} else if (*p == '=' && p[1] != '=') {
		op[0] = '=';
		p++;
	} else {
		*error = xasprintf("invalid matcher \"%s\": missing operator after \"%.*s\"; %s",
				   text, (int)name_length, name_start, form);
		return -1;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '"' || *p == '\'' || *p == '`') {
		if (parse_quoted_value(p, &value, &problem) < 0) {
			*error = xasprintf("invalid matcher \"%s\": %s; %s", text, problem, form);
			free(problem);
			return -1;
		}
	} else {
		/* An unquoted value runs to the end, without trailing blanks. */
		size_t length = strlen(p);

		while (length > 0 && (p[length - 1] == ' ' || p[length - 1] == '\t'))
			length--;
		value = xstrndup(p, length);
	}
	m->name = xstrndup(name_start, name_length);
	parse_op(op, &m->op);
	m->value = value;
	return 0;
}

/* ---- validation ---- */

static bool blank(const char *text)
{
	if (text == NULL)
		return true;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			return false;
	}
	return true;
}

static void free_compiled(struct expr **compiled, size_t count)
{
	if (compiled == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		expr_free(compiled[i]);
	free(compiled);
}

/* Checks and compiles the matchers. Returns the compiled array, or NULL with *error set. */
static struct expr **compile_matchers(const struct silence_matcher *matchers, size_t count,
				      char **error)
{
	struct expr **compiled;
	bool selective = false;

	if (count == 0) {
		silence_fail(error,
			     "matchers: at least one matcher is required, such as alertname=\"X\"");
		return NULL;
	}
	compiled = xcalloc(count, sizeof(*compiled));
	for (size_t i = 0; i < count; i++) {
		const struct silence_matcher *m = &matchers[i];
		char *problem = NULL;

		if (m->name == NULL || !series_valid_label_name(m->name)) {
			silence_fail(
			    error,
			    "matchers[%zu].name: invalid label name \"%s\"; use letters, digits "
			    "and underscores, not starting with a digit",
			    i, m->name != NULL ? m->name : "");
			goto bad;
		}
		if (!valid_op(m->op)) {
			silence_fail(error,
				     "matchers[%zu].op: unknown operator %d; use = != =~ or !~", i,
				     (int)m->op);
			goto bad;
		}
		if (m->value == NULL || !utf8_valid(m->value)) {
			silence_fail(error, "matchers[%zu].value: %s", i,
				     m->value == NULL ? "missing" : "invalid UTF-8");
			goto bad;
		}
		compiled[i] = compile_matcher(m, &problem);
		if (compiled[i] == NULL) {
			silence_fail(error, "matchers[%zu].value: %s", i, problem);
			free(problem);
			goto bad;
		}
		if (!expr_matcher_matches(compiled_matcher(compiled[i]), ""))
			selective = true;
	}
	if (!selective) {
		silence_fail(error,
			     "matchers: every matcher matches the empty string, so the silence "
			     "would mute every alert; add one that does not, such as "
			     "alertname=\"X\"");
		goto bad;
	}
	return compiled;

bad:
	free_compiled(compiled, count);
	return NULL;
}

static int check_text(const char *field, const char *text, const char *hint, char **error)
{
	if (blank(text))
		return silence_fail(error, "%s: missing; %s", field, hint);
	if (!utf8_valid(text))
		return silence_fail(error, "%s: invalid UTF-8", field);
	return 0;
}

/* Applies the time rules of silence_create() and sets *starts_ms. */
static int check_window(const struct silence_spec *spec, int64_t now_ms, int64_t *starts_ms,
			char **error)
{
	char ends[40];
	char starts[40];

	/* A silence cannot have muted anything before it existed. */
	*starts_ms = spec->starts_at_ms < now_ms ? now_ms : spec->starts_at_ms;
	if (spec->ends_at_ms == 0)
		return silence_fail(error, "ends_at: missing; give the time the silence ends");
	notification_time(spec->ends_at_ms, ends, sizeof ends);
	if (spec->ends_at_ms <= now_ms)
		return silence_fail(error, "ends_at: %s is not in the future; give a later end",
				    ends);
	if (spec->ends_at_ms <= *starts_ms) {
		notification_time(*starts_ms, starts, sizeof starts);
		return silence_fail(
		    error, "ends_at: %s is not after starts_at %s; give a later end", ends, starts);
	}
	return 0;
}

/* ---- storage ---- */

static char *matchers_json(const struct silence_matcher *matchers, size_t count)
{
	json_t *array = json_array();
	char *text;

	if (array == NULL)
		log_fatal("silence", "out of memory building a JSON array");
	for (size_t i = 0; i < count; i++) {
		/* Names and values are valid UTF-8 (checked on creation), so json_pack() fails only
		 * when memory runs out. */
		json_t *object =
		    json_pack("{s:s, s:s, s:s}", "name", matchers[i].name, "op",
			      silence_op_name(matchers[i].op), "value", matchers[i].value);

		if (object == NULL || json_array_append_new(array, object) < 0)
			log_fatal("silence", "out of memory building a JSON array");
	}
	text = json_dumps(array, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(array);
	if (text == NULL)
		log_fatal("silence", "out of memory rendering a JSON array");
	return text;
}

static void free_matchers(struct silence_matcher *matchers, size_t count)
{
	if (matchers == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		silence_matcher_clear(&matchers[i]);
	free(matchers);
}

/* Parses the stored matchers. Returns -1 with *problem set when they are not what
 * matchers_json() writes. */
static int matchers_parse(const char *text, struct silence_matcher **out, size_t *count,
			  char **problem)
{
	json_t *array = json_loads(text, 0, NULL);
	struct silence_matcher *matchers = NULL;
	size_t n = 0;
	size_t index;
	json_t *item;

	*out = NULL;
	*count = 0;
	if (array == NULL || !json_is_array(array)) {
		json_decref(array);
		*problem = xstrdup("matchers are not a JSON array");
		return -1;
	}
	if (json_array_size(array) > 0)
		matchers = xcalloc(json_array_size(array), sizeof(*matchers));
	json_array_foreach(array, index, item)
	{
		const char *name = NULL;
		const char *op = NULL;
		const char *value = NULL;

		if (json_unpack(item, "{s:s, s:s, s:s}", "name", &name, "op", &op, "value",
				&value) < 0 ||
		    parse_op(op, &matchers[n].op) < 0) {
			*problem =
			    xasprintf("matcher %zu is not an object of name, op and value", index);
			free_matchers(matchers, n);
			json_decref(array);
			return -1;
		}
		matchers[n].name = xstrdup(name);
		matchers[n].value = xstrdup(value);
		n++;
	}
	json_decref(array);
	*out = matchers;
	*count = n;
	return 0;
}

static void entry_clear(struct silence_entry *e)
{
	free_matchers(e->s.matchers, e->s.matcher_count);
	free_compiled(e->compiled, e->s.matcher_count);
	free(e->s.created_by);
	free(e->s.comment);
}

static void free_entries(struct silence_entry *entries, size_t count)
{
	for (size_t i = 0; i < count; i++)
		entry_clear(&entries[i]);
	free(entries);
}

/* Fills *e from the current row of STMT_LOAD. Returns -1 (logged) for an invalid row. */
static int read_row(struct silence_set *set, sqlite3_stmt *stmt, struct silence_entry *e)
{
	const char *id = silence_table_text(stmt, 0);
	char *problem = NULL;
	char ids[PATH_MAX + 64];

	memset(e, 0, sizeof(*e));
	if (strlen(id) != SILENCE_ID_SIZE - 1) {
		problem = xasprintf("id \"%s\" is not a UUID", id);
	} else if (matchers_parse(silence_table_text(stmt, 1), &e->s.matchers, &e->s.matcher_count,
				  &problem) == 0) {
		e->compiled = compile_matchers(e->s.matchers, e->s.matcher_count, &problem);
	}
	if (problem != NULL) {
		log_warn("silence",
			 log_ids(ids, sizeof ids, "file", statedb_path(set->table.db), "silence",
				 id, NULL),
			 "skipped a stored silence: %s; expire it or delete its row", problem);
		free(problem);
		entry_clear(e);
		return -1;
	}
	memcpy(e->s.id, id, SILENCE_ID_SIZE);
	e->s.starts_at_ms = sqlite3_column_int64(stmt, 2);
	e->s.ends_at_ms = sqlite3_column_int64(stmt, 3);
	e->s.created_by = xstrdup(silence_table_text(stmt, 4));
	e->s.comment = xstrdup(silence_table_text(stmt, 5));
	e->s.created_at_ms = sqlite3_column_int64(stmt, 6);
	e->s.updated_at_ms = sqlite3_column_int64(stmt, 7);
	return 0;
}

/* Replaces the in-memory set with the table's rows. */
static int load(void *owner, char **error)
{
	struct silence_set *set = owner;
	sqlite3_stmt *stmt = set->table.stmt[STMT_LOAD];
	struct silence_entry *entries = NULL;
	size_t count = 0;
	size_t capacity = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct silence_entry e;

		if (read_row(set, stmt, &e) < 0)
			continue;
		entries = xreallocarray_grow(entries, &capacity, count + 1, sizeof(*entries));
		entries[count++] = e;
	}
	if (rc != SQLITE_DONE) {
		free_entries(entries, count);
		return silence_table_failed(&set->table, STMT_LOAD, rc, error);
	}
	silence_table_succeeded(&set->table, STMT_LOAD);
	free_entries(set->entries, set->count);
	set->entries = entries;
	set->count = count;
	return 0;
}

struct silence_set *silence_set_open(struct statedb *db, char **error)
{
	struct silence_set *set = xcalloc(1, sizeof(*set));

	if (silence_table_open(&set->table, db, "silence", SILENCE_SCHEMA_KEY, silence_schema,
			       statements, STMT_COUNT, load, set, error) < 0) {
		free(set);
		return NULL;
	}
	return set;
}

void silence_set_free(struct silence_set *set)
{
	if (set == NULL)
		return;
	silence_table_close(&set->table);
	free_entries(set->entries, set->count);
	free(set);
}

int silence_set_refresh(struct silence_set *set)
{
	return silence_table_refresh(&set->table);
}

int silence_set_reload(struct silence_set *set)
{
	return load(set, NULL);
}

/* ---- operations ---- */

/* Writes a random (version 4) UUID. */
static int make_uuid(char id[SILENCE_ID_SIZE], char **error)
{
	unsigned char b[16];
	ssize_t n;

	do {
		n = getrandom(b, sizeof b, 0);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof b) {
		return silence_fail(error,
				    "getrandom() failed: %s; the kernel gave no random bytes for "
				    "a silence id",
				    n < 0 ? strerror(errno) : "short read");
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(id, SILENCE_ID_SIZE,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
	return 0;
}

static struct silence_matcher *copy_matchers(const struct silence_matcher *matchers, size_t count)
{
	struct silence_matcher *out = xcalloc(count, sizeof(*out));

	for (size_t i = 0; i < count; i++) {
		out[i].name = xstrdup(matchers[i].name);
		out[i].op = matchers[i].op;
		out[i].value = xstrdup(matchers[i].value);
	}
	return out;
}

static int insert_row(struct silence_set *set, const struct silence *s, char **error)
{
	sqlite3_stmt *stmt = set->table.stmt[STMT_INSERT];

	sqlite3_bind_text(stmt, 1, s->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, matchers_json(s->matchers, s->matcher_count), -1, free);
	sqlite3_bind_int64(stmt, 3, s->starts_at_ms);
	sqlite3_bind_int64(stmt, 4, s->ends_at_ms);
	sqlite3_bind_text(stmt, 5, s->created_by, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 6, s->comment, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 7, s->created_at_ms);
	sqlite3_bind_int64(stmt, 8, s->updated_at_ms);
	return silence_table_run(&set->table, STMT_INSERT, error);
}

int silence_create(struct silence_set *set, const struct silence_spec *spec, int64_t now_ms,
		   char id[SILENCE_ID_SIZE], char **error)
{
	struct silence_entry e = {0};
	int64_t starts_ms;
	char starts[40];
	char ends[40];
	char ids[64];

	*error = NULL;
	e.compiled = compile_matchers(spec->matchers, spec->matcher_count, error);
	if (e.compiled == NULL)
		return -1;
	e.s.matchers = copy_matchers(spec->matchers, spec->matcher_count);
	e.s.matcher_count = spec->matcher_count;
	if (check_window(spec, now_ms, &starts_ms, error) < 0 ||
	    check_text("created_by", spec->created_by, "give who creates the silence", error) < 0 ||
	    check_text("comment", spec->comment, "give the reason for the silence", error) < 0 ||
	    make_uuid(e.s.id, error) < 0)
		goto bad;
	e.s.starts_at_ms = starts_ms;
	e.s.ends_at_ms = spec->ends_at_ms;
	e.s.created_by = xstrdup(spec->created_by);
	e.s.comment = xstrdup(spec->comment);
	e.s.created_at_ms = now_ms;
	e.s.updated_at_ms = now_ms;
	if (insert_row(set, &e.s, error) < 0)
		goto bad;
	set->entries = xrealloc(set->entries, (set->count + 1) * sizeof(*set->entries));
	set->entries[set->count++] = e;
	memcpy(id, e.s.id, SILENCE_ID_SIZE);
	log_info("silence", log_ids(ids, sizeof ids, "silence", e.s.id, NULL),
		 "created by %s, active from %s to %s", e.s.created_by,
		 notification_time(e.s.starts_at_ms, starts, sizeof starts),
		 notification_time(e.s.ends_at_ms, ends, sizeof ends));
	return 0;

bad:
	entry_clear(&e);
	return -1;
}

static struct silence_entry *find_entry(const struct silence_set *set, const char *id)
{
	for (size_t i = 0; i < set->count; i++) {
		if (strcmp(set->entries[i].s.id, id) == 0)
			return &set->entries[i];
	}
	return NULL;
}

const struct silence *silence_get(const struct silence_set *set, const char *id)
{
	struct silence_entry *e = find_entry(set, id);

	return e != NULL ? &e->s : NULL;
}

int silence_expire(struct silence_set *set, const char *id, int64_t now_ms, char **error)
{
	struct silence_entry *e = find_entry(set, id);
	sqlite3_stmt *stmt = set->table.stmt[STMT_UPDATE_WINDOW];
	int64_t starts_ms;
	char ids[64];

	*error = NULL;
	if (e == NULL)
		return silence_fail(error, "silence %s not found; list the ids with --silence list",
				    id);
	if (silence_state(&e->s, now_ms) == SILENCE_EXPIRED)
		return silence_fail(error, "silence %s is already expired", id);
	starts_ms = e->s.starts_at_ms > now_ms ? now_ms : e->s.starts_at_ms;
	sqlite3_bind_text(stmt, 1, e->s.id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, starts_ms);
	sqlite3_bind_int64(stmt, 3, now_ms);
	sqlite3_bind_int64(stmt, 4, now_ms);
	if (silence_table_run(&set->table, STMT_UPDATE_WINDOW, error) < 0)
		return -1;
	e->s.starts_at_ms = starts_ms;
	e->s.ends_at_ms = now_ms;
	e->s.updated_at_ms = now_ms;
	log_info("silence", log_ids(ids, sizeof ids, "silence", id, NULL), "expired");
	return 0;
}

enum silence_state silence_state(const struct silence *s, int64_t now_ms)
{
	if (now_ms < s->starts_at_ms)
		return SILENCE_PENDING;
	if (now_ms < s->ends_at_ms)
		return SILENCE_ACTIVE;
	return SILENCE_EXPIRED;
}

const char *silence_state_name(enum silence_state state)
{
	switch (state) {
	case SILENCE_PENDING:
		return "pending";
	case SILENCE_ACTIVE:
		return "active";
	case SILENCE_EXPIRED:
		return "expired";
	}
	return "unknown";
}

static bool passes_filter(const struct silence *s, enum silence_filter filter, int64_t now_ms)
{
	switch (filter) {
	case SILENCE_FILTER_ACTIVE:
		return silence_state(s, now_ms) == SILENCE_ACTIVE;
	case SILENCE_FILTER_PENDING:
		return silence_state(s, now_ms) == SILENCE_PENDING;
	case SILENCE_FILTER_EXPIRED:
		return silence_state(s, now_ms) == SILENCE_EXPIRED;
	case SILENCE_FILTER_ALL:
		return true;
	}
	return false;
}

void silence_list(const struct silence_set *set, enum silence_filter filter, int64_t now_ms,
		  silence_list_fn *fn, void *arg)
{
	for (size_t i = 0; i < set->count; i++) {
		if (passes_filter(&set->entries[i].s, filter, now_ms))
			fn(arg, &set->entries[i].s);
	}
}

size_t silence_count(const struct silence_set *set)
{
	return set->count;
}

static const char *label_value(const struct label *labels, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(labels[i].name, name) == 0)
			return labels[i].value;
	}
	return NULL;
}

static bool entry_matches(const struct silence_entry *e, const struct label *labels,
			  size_t label_count)
{
	for (size_t i = 0; i < e->s.matcher_count; i++) {
		const char *value = label_value(labels, label_count, e->s.matchers[i].name);

		if (!expr_matcher_matches(compiled_matcher(e->compiled[i]), value))
			return false;
	}
	return true;
}

const char *silence_matches(const struct silence_set *set, const struct label *labels,
			    size_t label_count, int64_t now_ms)
{
	for (size_t i = 0; i < set->count; i++) {
		const struct silence_entry *e = &set->entries[i];

		if (silence_state(&e->s, now_ms) == SILENCE_ACTIVE &&
		    entry_matches(e, labels, label_count))
			return e->s.id;
	}
	return NULL;
}

int silence_prune(struct silence_set *set, int64_t now_ms, int64_t retention_ms)
{
	int64_t before_ms = now_ms - retention_ms;
	size_t remaining = 0;
	int removed = 0;

	sqlite3_bind_int64(set->table.stmt[STMT_PRUNE], 1, before_ms);
	if (silence_table_run(&set->table, STMT_PRUNE, NULL) < 0)
		return -1;
	for (size_t i = 0; i < set->count; i++) {
		if (set->entries[i].s.ends_at_ms < before_ms) {
			entry_clear(&set->entries[i]);
			removed++;
		} else {
			set->entries[remaining++] = set->entries[i];
		}
	}
	set->count = remaining;
	if (removed > 0)
		log_info("silence", NULL, "pruned %d silences that expired before %" PRId64 " ms",
			 removed, before_ms);
	return removed;
}
