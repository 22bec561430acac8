/*
 * Label matchers: parsing Alertmanager's string form and the config forms, compiling
 * anchored regexes, and matching label sets. Matching itself is expr_matcher_matches(),
 * so that a matcher here behaves exactly like one in a rule selector.
 */
#include "alerter/matcher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/cfg.h"
#include "collector/xalloc.h"

static const char *const matcher_op_text[] = {
    [EXPR_MATCH_EQUAL] = "=",
    [EXPR_MATCH_NOT_EQUAL] = "!=",
    [EXPR_MATCH_REGEX] = "=~",
    [EXPR_MATCH_NOT_REGEX] = "!~",
};

static void matcher_clear(struct matcher *m)
{
	free(m->name);
	free(m->value);
	expr_regex_free(m->regex);
}

void matcher_set_clear(struct matcher_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		matcher_clear(&set->v[i]);
	free(set->v);
	set->v = NULL;
	set->count = 0;
}

int matcher_set_add(struct matcher_set *set, const char *name, enum expr_match_op op,
		    const char *value, char *error, size_t size)
{
	char quoted[CFG_QUOTE_SIZE];
	struct matcher m = {op, NULL, NULL, NULL};

	if (!series_valid_label_name(name)) {
		snprintf(error, size,
			 "invalid label name %s (accepted: letters, digits and \"_\", not starting "
			 "with a digit)",
			 cfg_quote(name, quoted, sizeof quoted));
		return -1;
	}
	if (op == EXPR_MATCH_REGEX || op == EXPR_MATCH_NOT_REGEX) {
		char why[128];

		if (expr_regex_compile(value, &m.regex, why, sizeof why) < 0) {
			snprintf(error, size,
				 "invalid regex %s for label %s (%s); expected a POSIX extended "
				 "regular expression (plus (?i), (?:...) and \\d)",
				 cfg_quote(value, quoted, sizeof quoted), name, why);
			return -1;
		}
	}
	m.name = xstrdup(name);
	m.value = xstrdup(value);
	set->v = xrealloc(set->v, (set->count + 1) * sizeof(*set->v));
	set->v[set->count++] = m;
	return 0;
}

/* ---- the string form ---- */

struct matcher_text {
	const char *text;
	size_t i;
	char *error;
	size_t size;
};

static void matcher_skip_spaces(struct matcher_text *t)
{
	while (t->text[t->i] == ' ' || t->text[t->i] == '\t')
		t->i++;
}

static int matcher_fail(struct matcher_text *t, const char *expected)
{
	char quoted[CFG_QUOTE_SIZE];

	if (t->text[t->i] == '\0')
		snprintf(t->error, t->size, "invalid matcher %s: unexpected end, expected %s",
			 cfg_quote(t->text, quoted, sizeof quoted), expected);
	else
		snprintf(t->error, t->size,
			 "invalid matcher %s: unexpected \"%c\" at column %zu, "
			 "expected %s",
			 cfg_quote(t->text, quoted, sizeof quoted), t->text[t->i], t->i + 1,
			 expected);
	return -1;
}

static char *matcher_read_name(struct matcher_text *t)
{
	size_t start = t->i;
	const char *s = t->text;

	if (!(s[t->i] == '_' || (s[t->i] >= 'a' && s[t->i] <= 'z') ||
	      (s[t->i] >= 'A' && s[t->i] <= 'Z')))
		return NULL;
	while (s[t->i] == '_' || (s[t->i] >= 'a' && s[t->i] <= 'z') ||
	       (s[t->i] >= 'A' && s[t->i] <= 'Z') || (s[t->i] >= '0' && s[t->i] <= '9'))
		t->i++;
	return xstrndup(s + start, t->i - start);
}

static int matcher_read_op(struct matcher_text *t, enum expr_match_op *op)
{
	const char *s = t->text + t->i;

	if (s[0] == '=' && s[1] == '~') {
		*op = EXPR_MATCH_REGEX;
		t->i += 2;
	} else if (s[0] == '!' && s[1] == '~') {
		*op = EXPR_MATCH_NOT_REGEX;
		t->i += 2;
	} else if (s[0] == '!' && s[1] == '=') {
		*op = EXPR_MATCH_NOT_EQUAL;
		t->i += 2;
	} else if (s[0] == '=') {
		*op = EXPR_MATCH_EQUAL;
		t->i += 1;
	} else {
		return -1;
	}
	return 0;
}

/* A double-quoted value with Go's common escapes; t->i is at the opening quote. */
static char *matcher_read_quoted(struct matcher_text *t)
{
	const char *s = t->text;
	char *out = xmalloc(strlen(s + t->i) + 1);
	size_t n = 0;

	for (t->i++; s[t->i] != '"'; t->i++) {
		char c = s[t->i];

		if (c == '\0') {
			free(out);
			matcher_fail(t, "a closing \" after the value");
			return NULL;
		}
		if (c == '\\') {
			char e = s[++t->i];

			if (e == '"' || e == '\\') {
				c = e;
			} else if (e == 'n') {
				c = '\n';
			} else if (e == 't') {
				c = '\t';
			} else {
				free(out);
				matcher_fail(t, "one of the escapes \\\" \\\\ \\n \\t");
				return NULL;
			}
		}
		out[n++] = c;
	}
	t->i++;
	out[n] = '\0';
	return out;
}

/* A bare value: up to a comma (or the closing brace in braces), without outer spaces. */
static char *matcher_read_bare(struct matcher_text *t, bool braces)
{
	const char *s = t->text;
	size_t start = t->i;
	size_t end;

	while (s[t->i] != '\0' && s[t->i] != ',' && !(braces && s[t->i] == '}'))
		t->i++;
	end = t->i;
	while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
		end--;
	return xstrndup(s + start, end - start);
}

/* Reads one NAME OP VALUE at t->i and appends it. */
static int matcher_read_one(struct matcher_text *t, bool braces, struct matcher_set *set)
{
	enum expr_match_op op;
	char *name;
	char *value;
	int rc;

	matcher_skip_spaces(t);
	name = matcher_read_name(t);
	if (name == NULL)
		return matcher_fail(t, "a label name");
	matcher_skip_spaces(t);
	if (matcher_read_op(t, &op) < 0) {
		free(name);
		return matcher_fail(t, "one of the operators =, !=, =~, !~");
	}
	matcher_skip_spaces(t);
	/* `severity=="page"` would compare with the text `="page"`: a typo, never meant. */
	if (t->text[t->i] == '=' || t->text[t->i] == '~') {
		free(name);
		return matcher_fail(t, "a value; the operators are =, !=, =~ and !~ (a value "
				       "that starts with = or ~ must be quoted)");
	}
	value = t->text[t->i] == '"' ? matcher_read_quoted(t) : matcher_read_bare(t, braces);
	if (value == NULL) {
		free(name);
		return -1;
	}
	rc = matcher_set_add(set, name, op, value, t->error, t->size);
	free(name);
	free(value);
	return rc;
}

int matcher_parse(const char *text, struct matcher_set *set, char *error, size_t size)
{
	struct matcher_text t = {text, 0, error, size};
	size_t before = set->count;
	bool braces;

	matcher_skip_spaces(&t);
	braces = text[t.i] == '{';
	if (braces)
		t.i++;
	for (;;) {
		if (matcher_read_one(&t, braces, set) < 0)
			goto bad;
		matcher_skip_spaces(&t);
		if (text[t.i] != ',')
			break;
		t.i++;
		matcher_skip_spaces(&t);
		/* A trailing comma before the end or the closing brace is accepted. */
		if (text[t.i] == '\0' || (braces && text[t.i] == '}'))
			break;
	}
	if (braces) {
		if (text[t.i] != '}') {
			matcher_fail(&t, "\",\" or \"}\"");
			goto bad;
		}
		t.i++;
		matcher_skip_spaces(&t);
	}
	if (text[t.i] != '\0') {
		matcher_fail(&t, "\",\" or the end");
		goto bad;
	}
	return 0;
bad:
	while (set->count > before)
		matcher_clear(&set->v[--set->count]);
	return -1;
}

/* ---- matching ---- */

const char *matcher_label_value(const struct label *labels, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(labels[i].name, name) == 0)
			return labels[i].value;
	return NULL;
}

bool matcher_matches(const struct matcher *m, const struct label *labels, size_t count)
{
	struct expr_matcher em = {m->op, m->name, m->value, m->regex};

	return expr_matcher_matches(&em, matcher_label_value(labels, count, m->name));
}

bool matcher_set_matches(const struct matcher_set *set, const struct label *labels, size_t count)
{
	for (size_t i = 0; i < set->count; i++)
		if (!matcher_matches(&set->v[i], labels, count))
			return false;
	return true;
}

/* ---- formatting ---- */

static int matcher_compare(const void *a, const void *b)
{
	const struct matcher *x = *(const struct matcher *const *)a;
	const struct matcher *y = *(const struct matcher *const *)b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	if (x->op != y->op)
		return x->op < y->op ? -1 : 1;
	return strcmp(x->value, y->value);
}

/* Appends value in double quotes, escaping what the string form unescapes. */
static size_t matcher_append_quoted(char *out, const char *value)
{
	size_t n = 0;

	out[n++] = '"';
	for (const char *s = value; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\') {
			out[n++] = '\\';
			out[n++] = *s;
		} else if (*s == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else if (*s == '\t') {
			out[n++] = '\\';
			out[n++] = 't';
		} else {
			out[n++] = *s;
		}
	}
	out[n++] = '"';
	return n;
}

char *matcher_set_format(const struct matcher_set *set)
{
	const struct matcher **sorted = xcalloc(set->count + 1, sizeof(*sorted));
	size_t len = 3;
	size_t n = 0;
	char *out;

	for (size_t i = 0; i < set->count; i++) {
		sorted[i] = &set->v[i];
		len += strlen(set->v[i].name) + 2 * strlen(set->v[i].value) + 6;
	}
	qsort(sorted, set->count, sizeof(*sorted), matcher_compare);
	out = xmalloc(len);
	out[n++] = '{';
	for (size_t i = 0; i < set->count; i++) {
		const char *op = matcher_op_text[sorted[i]->op];

		if (i > 0)
			out[n++] = ',';
		memcpy(out + n, sorted[i]->name, strlen(sorted[i]->name));
		n += strlen(sorted[i]->name);
		memcpy(out + n, op, strlen(op));
		n += strlen(op);
		n += matcher_append_quoted(out + n, sorted[i]->value);
	}
	out[n++] = '}';
	out[n] = '\0';
	free(sorted);
	return out;
}

char *matcher_format_labels(const struct label *labels, size_t count)
{
	size_t len = 3;
	size_t n = 0;
	char *out;

	for (size_t i = 0; i < count; i++)
		len += strlen(labels[i].name) + 2 * strlen(labels[i].value) + 4;
	out = xmalloc(len);
	out[n++] = '{';
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			out[n++] = ',';
		memcpy(out + n, labels[i].name, strlen(labels[i].name));
		n += strlen(labels[i].name);
		out[n++] = '=';
		n += matcher_append_quoted(out + n, labels[i].value);
	}
	out[n++] = '}';
	out[n] = '\0';
	return out;
}

/* ---- config forms ---- */

static int matcher_read_list(struct cfg_map *m, const char *key, struct matcher_set *set)
{
	struct cfg_seq seq;
	int failed = 0;
	int rc = cfg_get_seq(m, key, &seq);

	if (rc != 1)
		return rc;
	for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
		char error[512];
		char *text;

		if (cfg_seq_string(&seq, i, &text) != 1) {
			failed = -1;
			continue;
		}
		if (matcher_parse(text, set, error, sizeof error) < 0) {
			cfg_seq_error(&seq, i, "%s", error);
			failed = -1;
		}
		free(text);
	}
	return failed;
}

static int matcher_read_map(struct cfg_map *m, const char *key, enum expr_match_op op,
			    struct matcher_set *set)
{
	struct cfg_map sub;
	int failed = 0;
	int rc = cfg_get_map(m, key, &sub);

	if (rc != 1) {
		cfg_map_discard(&sub);
		return rc;
	}
	for (size_t i = 0; i < cfg_map_size(&sub); i++) {
		const char *name = cfg_map_key(&sub, i);
		char error[512];
		char *value;

		/* Non-string keys were reported when the file was read. */
		if (name == NULL || cfg_get_string(&sub, name, &value) != 1) {
			failed = -1;
			continue;
		}
		if (matcher_set_add(set, name, op, value, error, sizeof error) < 0) {
			cfg_error(&sub, name, "%s", error);
			failed = -1;
		}
		free(value);
	}
	cfg_map_finish(&sub);
	return failed;
}

int matcher_set_read(struct cfg_map *m, const char *list_key, const char *equal_key,
		     const char *regex_key, struct matcher_set *set)
{
	int rc = 0;

	if (list_key != NULL && matcher_read_list(m, list_key, set) < 0)
		rc = -1;
	if (equal_key != NULL && matcher_read_map(m, equal_key, EXPR_MATCH_EQUAL, set) < 0)
		rc = -1;
	if (regex_key != NULL && matcher_read_map(m, regex_key, EXPR_MATCH_REGEX, set) < 0)
		rc = -1;
	return rc;
}
