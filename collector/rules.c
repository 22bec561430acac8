/*
 * Rule files: reads Prometheus-format rule groups, threshold rules and SLOs from YAML into
 * an immutable struct rule_set. Every expression, template, duration and name is checked
 * while the files load, and every error of every file is reported in one run.
 *
 * Errors come from two places. The cfg getters record theirs in the file's struct cfg.
 * The errors of expressions and templates are recorded here, because they point at the
 * first character of the text inside a quoted or block scalar, a position cfg has no
 * way to record. The two lists are merged in file order when a file is done.
 */
#include "collector/rules.h"

#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/cfg.h"
#include "collector/hash.h"
#include "collector/units.h"
#include "collector/xalloc.h"

/* Errors of one file past this many are counted, not listed, as cfg does. */
#define RULES_ERRORS_SHOWN 100

/* Defaults of the SLO keys the header comment lists. */
#define RULES_SLO_PERIOD_MS     (30LL * 24 * 3600 * 1000)
#define RULES_SLO_MIN_PERIOD_MS (3600LL * 1000)
#define RULES_FLAP_LOW          5.0
#define RULES_FLAP_HIGH         20.0

struct rules_message {
	size_t line; /* 1-based; 0 for a message without a position */
	size_t column;
	char *text;
};

/* One file being read: its cfg and the errors recorded here. */
struct rules_file {
	struct cfg *cfg;
	struct rules_message *messages;
	size_t message_count;
	size_t message_capacity;
	size_t error_count; /* including those past RULES_ERRORS_SHOWN */
};

struct rules_loader {
	struct rule_set *set;
	int64_t default_interval_ms;
	char **group_locations; /* "FILE:LINE:COLUMN" of each group's name, for duplicates */
	char *errors;           /* every error so far, one per line */
	size_t errors_length;
	size_t error_count;
};

/* ---- errors ---- */

static void rules_loader_error(struct rules_loader *ld, const char *text)
{
	size_t length = strlen(text);

	ld->errors = xrealloc(ld->errors, ld->errors_length + length + 2);
	if (ld->errors_length > 0)
		ld->errors[ld->errors_length++] = '\n';
	memcpy(ld->errors + ld->errors_length, text, length + 1);
	ld->errors_length += length;
	ld->error_count++;
}

static void rules_join_path(char *out, size_t size, const char *path, const char *key)
{
	snprintf(out, size, "%s%s%s", path, path[0] != '\0' ? "." : "", key);
}

static void rules_record(struct rules_file *f, size_t line, size_t column, const char *text)
{
	struct rules_message *m;

	f->error_count++;
	if (f->message_count >= RULES_ERRORS_SHOWN)
		return;
	f->messages = xreallocarray_grow(f->messages, &f->message_capacity, f->message_count + 1,
					 sizeof *f->messages);
	m = &f->messages[f->message_count++];
	m->line = line;
	m->column = column;
	m->text = xstrdup(text);
}

/*
 * Records an error at the first character of the text of `key`'s value, as
 * "FILE:LINE:COLUMN: PATH.KEY: PROBLEM". Falls back to cfg's position of the value.
 */
static void rules_value_error(struct rules_file *f, struct cfg_map *m, const char *key,
			      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void rules_value_error(struct rules_file *f, struct cfg_map *m, const char *key,
			      const char *fmt, ...)
{
	char problem[2048];
	char path[CFG_PATH_MAX + 64];
	char *text;
	int line;
	int column;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof problem, fmt, ap);
	va_end(ap);
	if (!cfg_value_position(m, key, &line, &column)) {
		cfg_error(m, key, "%s", problem);
		return;
	}
	rules_join_path(path, sizeof path, m->path, key);
	text = xasprintf("%s:%d:%d: %s: %s", cfg_file_name(f->cfg), line, column, path, problem);
	rules_record(f, (size_t)line, (size_t)column, text);
	free(text);
}

static int rules_message_compare(const void *a, const void *b)
{
	const struct rules_message *x = a;
	const struct rules_message *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->column != y->column)
		return x->column < y->column ? -1 : 1;
	return x < y ? -1 : x > y; /* stable: cfg's errors come first */
}

/*
 * Reads "NAME:LINE:COLUMN: ..." back from one of cfg's lines; a line without a position
 * sorts first, as cfg sorts it.
 */
static void rules_parse_position(const char *line, size_t name_length, size_t *row, size_t *column)
{
	unsigned long r;
	unsigned long c;
	int used = 0;

	*row = 0;
	*column = 0;
	if (sscanf(line + name_length, ":%lu:%lu:%n", &r, &c, &used) == 2 && used > 0) {
		*row = r;
		*column = c;
	}
}

/* Merges cfg's errors and this file's in file order and adds them to the loader. */
static void rules_file_flush(struct rules_loader *ld, struct rules_file *f)
{
	const char *name = cfg_file_name(f->cfg);
	size_t total = cfg_error_count(f->cfg) + f->error_count;
	char *from_cfg = xstrdup(cfg_errors(f->cfg));
	char *save = NULL;
	size_t shown;
	size_t cfg_lines = 0;

	/* cfg lists at most as many lines as it counts errors. When it dropped some, its last
	 * line says how many, and one such line for both lists replaces it below. */
	for (char *line = strtok_r(from_cfg, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t row;
		size_t column;

		if (cfg_lines++ >= cfg_error_count(f->cfg))
			break;
		if (strstr(line, " more errors not shown; fix the ones above first") != NULL &&
		    strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ':' &&
		    line[strlen(name) + 1] == ' ')
			break;
		rules_parse_position(line, strlen(name), &row, &column);
		f->messages = xreallocarray_grow(f->messages, &f->message_capacity,
						 f->message_count + 1, sizeof *f->messages);
		f->messages[f->message_count].line = row;
		f->messages[f->message_count].column = column;
		f->messages[f->message_count].text = xstrdup(line);
		f->message_count++;
	}
	free(from_cfg);

	if (f->message_count > 1)
		qsort(f->messages, f->message_count, sizeof *f->messages, rules_message_compare);
	shown = f->message_count < RULES_ERRORS_SHOWN ? f->message_count : RULES_ERRORS_SHOWN;
	for (size_t i = 0; i < shown; i++)
		rules_loader_error(ld, f->messages[i].text);
	if (total > shown) {
		char *more =
		    xasprintf("%s: and %zu more errors not shown; fix the ones above first", name,
			      total - shown);

		rules_loader_error(ld, more);
		free(more);
		ld->error_count += total - shown - 1;
	}
	for (size_t i = 0; i < f->message_count; i++)
		free(f->messages[i].text);
	free(f->messages);
	f->messages = NULL;
	f->message_count = 0;
}

/* ---- small checks ---- */

/* Names shown to people (alerts, groups, SLOs, probes): printable, not padded. */
static bool rules_is_display_name(const char *s)
{
	size_t length = strlen(s);

	if (length == 0 || s[0] == ' ' || s[length - 1] == ' ')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
	}
	return true;
}

static const char *rules_type_with_article(enum expr_type type)
{
	switch (type) {
	case EXPR_TYPE_SCALAR:
		return "a scalar";
	case EXPR_TYPE_VECTOR:
		return "an instant vector";
	case EXPR_TYPE_MATRIX:
		return "a range vector";
	case EXPR_TYPE_STRING:
		break;
	}
	return "a string";
}

/* A required display name under `key`; NULL (error recorded) when missing or invalid. */
static char *rules_read_name(struct cfg_map *m, const char *key, const char *what)
{
	char quoted[CFG_QUOTE_SIZE];
	char *name = NULL;

	if (!cfg_has(m, key)) {
		cfg_error(m, NULL, "missing required key \"%s\" (the %s's name)", key, what);
		return NULL;
	}
	if (cfg_get_string(m, key, &name) != 1)
		return NULL;
	if (!rules_is_display_name(name)) {
		cfg_error(m, key,
			  "invalid %s name %s (accepted: printable text without control characters "
			  "or leading and trailing spaces)",
			  what, cfg_quote(name, quoted, sizeof quoted));
		free(name);
		return NULL;
	}
	return name;
}

/* A duration under `key` into *out (milliseconds); leaves *out alone when absent. */
static int rules_get_duration(struct cfg_map *m, const char *key, int64_t *out)
{
	uint64_t ms;
	int rc = cfg_get_duration_ms(m, key, &ms);

	if (rc != 1)
		return rc;
	if (ms > (uint64_t)INT64_MAX) {
		cfg_error(m, key, "is too long (more than 2^63 - 1 milliseconds)");
		return -1;
	}
	*out = (int64_t)ms;
	return 1;
}

/*
 * Parses the expression under `key`, which must give an instant vector or a scalar.
 * Returns NULL (error recorded) when it is missing and `required`, or invalid. *text gets
 * a copy of the source when the key is present (caller frees).
 */
static struct expr *rules_read_expr(struct rules_file *f, struct cfg_map *m, const char *key,
				    bool required, char **text)
{
	struct expr *e;
	char *error = NULL;
	char *source = NULL;
	enum expr_type type;

	if (!cfg_has(m, key)) {
		if (required)
			cfg_error(m, NULL, "missing required key \"%s\" (an expression)", key);
		return NULL;
	}
	if (cfg_get_string(m, key, &source) != 1)
		return NULL;
	e = expr_parse(source, NULL, &error);
	if (e == NULL) {
		rules_value_error(f, m, key, "%s", error);
		free(error);
		free(source);
		return NULL;
	}
	type = expr_result_type(e);
	if (type != EXPR_TYPE_VECTOR && type != EXPR_TYPE_SCALAR) {
		rules_value_error(f, m, key, "%s is %s; expected an instant vector or a scalar",
				  key, rules_type_with_article(type));
		expr_free(e);
		free(source);
		return NULL;
	}
	if (text != NULL)
		*text = source;
	else
		free(source);
	return e;
}

/* ---- labels and annotations ---- */

static int rules_template_compare(const void *a, const void *b)
{
	return strcmp(((const struct rule_template *)a)->name,
		      ((const struct rule_template *)b)->name);
}

static void rules_template_clear(struct rule_template *t)
{
	free(t->name);
	free(t->text);
	template_free(t->tmpl);
}

/* The reason label `name` cannot be set on a rule of `kind`, or NULL when it can. */
static const char *rules_label_reserved(const char *name, enum rule_kind kind)
{
	if (strcmp(name, "__name__") == 0)
		return "it is the metric name";
	if (strncmp(name, "__", 2) == 0)
		return "names starting with \"__\" are for internal use";
	if (kind != RULE_RECORD && strcmp(name, "alertname") == 0)
		return "it is set to the rule's alert name";
	if (kind == RULE_THRESHOLD && strcmp(name, "severity") == 0)
		return "a threshold rule sets it to the level (warning or critical)";
	return NULL;
}

/*
 * Reads `labels` or `annotations` of a rule: names checked, values parsed as templates
 * (recording rules' labels must be constant text). The result is sorted by name.
 */
static void rules_read_templates(struct rules_file *f, struct cfg_map *rule, const char *key,
				 enum rule_kind kind, struct rule_template **out, size_t *count)
{
	bool labels = strcmp(key, "labels") == 0;
	char quoted[CFG_QUOTE_SIZE];
	struct cfg_map sub;
	size_t size;

	if (cfg_get_map(rule, key, &sub) != 1) {
		cfg_map_finish(&sub);
		return;
	}
	size = cfg_map_size(&sub);
	*out = xcalloc(size + 1, sizeof **out);
	for (size_t i = 0; i < size; i++) {
		const char *name = cfg_map_key(&sub, i);
		const char *reserved;
		struct rule_template *t = &(*out)[*count];
		char *value = NULL;
		char *error = NULL;

		/* Non-string keys were reported when the file was read. */
		if (name == NULL || cfg_get_string(&sub, name, &value) != 1)
			continue;
		cfg_quote(name, quoted, sizeof quoted);
		reserved = labels ? rules_label_reserved(name, kind) : NULL;
		if (!series_valid_label_name(name)) {
			cfg_error(&sub, name,
				  "invalid %s name %s (accepted: letters, digits and \"_\", not "
				  "starting with a digit)",
				  labels ? "label" : "annotation", quoted);
		} else if (reserved != NULL) {
			cfg_error(&sub, name, "label name %s is reserved: %s", quoted, reserved);
		} else if ((t->tmpl = template_parse(value, NULL, &error)) == NULL) {
			rules_value_error(f, &sub, name, "%s", error);
			free(error);
		} else if (kind == RULE_RECORD && !template_is_constant(t->tmpl)) {
			rules_value_error(f, &sub, name,
					  "a recording rule's labels are constant text; remove the "
					  "{{ }} action, or make it an alerting rule");
			template_free(t->tmpl);
			t->tmpl = NULL;
		} else {
			t->name = xstrdup(name);
			t->text = value;
			(*count)++;
			continue;
		}
		free(value);
	}
	qsort(*out, *count, sizeof **out, rules_template_compare);
	cfg_map_finish(&sub);
}

/* ---- threshold and alert parameters ---- */

/* Reads one threshold value and its clear value; returns true when the threshold is set. */
static bool rules_read_level(struct cfg_map *t, const char *key, const char *clear_key,
			     double *value, double *clear)
{
	bool has = cfg_get_double(t, key, value) == 1;

	*clear = *value;
	if (cfg_get_double(t, clear_key, clear) == 1 && !has && cfg_has(t, key) == false)
		cfg_error(t, clear_key, "%s is set without %s; give %s or remove %s", clear_key,
			  key, key, clear_key);
	return has;
}

/* Checks warn, crit and the clear values against the direction. */
static void rules_check_levels(struct cfg_map *t, const struct alert_params *p)
{
	const char *worse = p->direction_above ? "above" : "below";
	const char *better = p->direction_above ? "below" : "above";
	double sign = p->direction_above ? 1.0 : -1.0;

	if (p->has_warn && p->has_crit && sign * p->crit < sign * p->warn)
		cfg_error(t, "crit",
			  "crit (%g) is %s warn (%g); with direction %s, crit must be at least as "
			  "far %s as warn",
			  p->crit, better, p->warn, worse, worse);
	if (p->has_warn && sign * p->clear_warn > sign * p->warn)
		cfg_error(t, "clear_warn",
			  "clear_warn (%g) is %s warn (%g); with direction %s, the warning clears "
			  "when the value is back past clear_warn, so it must not be %s warn",
			  p->clear_warn, worse, p->warn, worse, worse);
	if (p->has_crit && sign * p->clear_crit > sign * p->crit)
		cfg_error(
		    t, "clear_crit",
		    "clear_crit (%g) is %s crit (%g); with direction %s, the critical level "
		    "clears when the value is back past clear_crit, so it must not be %s crit",
		    p->clear_crit, worse, p->crit, worse, worse);
}

/* Reads `threshold:` of a threshold rule into r->expr and r->params. */
static void rules_read_threshold(struct rules_file *f, struct cfg_map *rule, struct rule *r)
{
	struct alert_params *p = &r->params;
	char quoted[CFG_QUOTE_SIZE];
	struct cfg_map t;
	char *direction = NULL;
	bool direction_valid = false;

	p->threshold = true;
	if (cfg_get_map(rule, "threshold", &t) != 1) {
		if (cfg_kind(rule, "threshold") == CFG_KIND_NULL)
			cfg_error(rule, "threshold",
				  "is empty; give expr, direction and warn or crit");
		cfg_map_discard(&t);
		return;
	}
	r->expr = rules_read_expr(f, &t, "expr", true, &r->expr_text);

	/* A higher value is worse unless `direction` is given, as in Nagios plugins. */
	p->direction_above = true;
	direction_valid = !cfg_has(&t, "direction");
	if (cfg_get_string(&t, "direction", &direction) == 1) {
		direction_valid =
		    strcmp(direction, "above") == 0 || strcmp(direction, "below") == 0;
		if (direction_valid)
			p->direction_above = direction[0] == 'a';
		else
			cfg_error(&t, "direction", "%s is not a direction (accepted: above, below)",
				  cfg_quote(direction, quoted, sizeof quoted));
		free(direction);
	}

	p->has_warn = rules_read_level(&t, "warn", "clear_warn", &p->warn, &p->clear_warn);
	p->has_crit = rules_read_level(&t, "crit", "clear_crit", &p->crit, &p->clear_crit);
	if (!cfg_has(&t, "warn") && !cfg_has(&t, "crit"))
		cfg_error(&t, NULL, "give warn, crit or both: the values that raise each level");
	if (direction_valid)
		rules_check_levels(&t, p);

	p->warn_for_ms = p->for_ms;
	p->crit_for_ms = p->for_ms;
	rules_get_duration(&t, "warn_for", &p->warn_for_ms);
	rules_get_duration(&t, "crit_for", &p->crit_for_ms);
	rules_get_duration(&t, "clear_for", &p->clear_for_ms);
	cfg_map_finish(&t);
}

static void rules_read_no_data(struct cfg_map *rule, struct alert_params *p)
{
	char quoted[CFG_QUOTE_SIZE];
	char *text;

	p->no_data = ALERT_NO_DATA_KEEP;
	if (cfg_get_string(rule, "no_data", &text) != 1)
		return;
	if (strcmp(text, "keep") == 0)
		p->no_data = ALERT_NO_DATA_KEEP;
	else if (strcmp(text, "alert") == 0)
		p->no_data = ALERT_NO_DATA_ALERT;
	else if (strcmp(text, "resolve") == 0)
		p->no_data = ALERT_NO_DATA_RESOLVE;
	else
		cfg_error(rule, "no_data", "%s is not accepted (accepted: keep, alert, resolve)",
			  cfg_quote(text, quoted, sizeof quoted));
	free(text);
}

/* `flapping: {low, high}`, percentages of state changes; 5 and 20 as in Nagios. */
static void rules_read_flapping(struct cfg_map *rule, struct alert_params *p)
{
	struct cfg_map fm;
	bool valid = true;

	p->flap_low = RULES_FLAP_LOW;
	p->flap_high = RULES_FLAP_HIGH;
	if (cfg_get_map(rule, "flapping", &fm) != 1) {
		cfg_map_finish(&fm);
		return;
	}
	if (cfg_get_double(&fm, "low", &p->flap_low) == 1 &&
	    (p->flap_low < 0 || p->flap_low > 100)) {
		cfg_error(&fm, "low", "%g is not a percentage from 0 to 100", p->flap_low);
		valid = false;
	}
	if (cfg_get_double(&fm, "high", &p->flap_high) == 1 &&
	    (p->flap_high < 0 || p->flap_high > 100)) {
		cfg_error(&fm, "high", "%g is not a percentage from 0 to 100", p->flap_high);
		valid = false;
	}
	if (valid && p->flap_high == 0) {
		/* high 0 turns detection off, whatever the value of low. */
		p->flap_low = 0;
	} else if (valid && p->flap_low >= p->flap_high) {
		cfg_error(&fm, cfg_has(&fm, "low") ? "low" : "high",
			  "low (%g) is not below high (%g); a flap episode starts above high and "
			  "ends below low",
			  p->flap_low, p->flap_high);
	}
	cfg_map_finish(&fm);
}

/* ---- rules ---- */

/* Checks the rule's `alert` or `record` name; the name is kept even when invalid. */
static void rules_read_rule_name(struct cfg_map *m, struct rule *r)
{
	char quoted[CFG_QUOTE_SIZE];
	const char *key = r->kind == RULE_RECORD ? "record" : "alert";

	if (cfg_get_string(m, key, &r->name) != 1)
		return;
	cfg_quote(r->name, quoted, sizeof quoted);
	if (r->kind == RULE_RECORD && !series_valid_metric_name(r->name))
		cfg_error(m, key,
			  "invalid metric name %s (accepted: letters, digits, \"_\" and \":\", not "
			  "starting with a digit)",
			  quoted);
	else if (r->kind != RULE_RECORD && !rules_is_display_name(r->name))
		cfg_error(m, key,
			  "invalid alert name %s (accepted: printable text without control "
			  "characters or leading and trailing spaces)",
			  quoted);
}

/* The keys only some kinds of rule take: marked known, so that finishing the mapping
 * reports them as "not used with the other settings here" instead of as typos. */
static void rules_know_other_keys(struct cfg_map *m)
{
	static const char *const keys[] = {"expr",      "for",     "keep_firing_for", "annotations",
					   "threshold", "no_data", "flapping"};

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		cfg_has(m, keys[i]);
}

static void rules_read_rule_fields(struct rules_file *f, struct cfg_map *m, struct rule *r)
{
	char where[CFG_PATH_MAX + 64];
	char *ignored = NULL;

	r->location = xstrdup(cfg_location(m, NULL, where, sizeof where));
	rules_read_rule_name(m, r);
	if (r->kind != RULE_RECORD)
		rules_get_duration(m, "for", &r->params.for_ms);

	if (r->kind == RULE_THRESHOLD) {
		if (cfg_has(m, "expr") && cfg_get_string(m, "expr", &ignored) >= 0)
			cfg_error(m, "expr",
				  "a threshold rule reads its expression from threshold.expr; move "
				  "it there");
		free(ignored);
		rules_read_threshold(f, m, r);
		rules_read_no_data(m, &r->params);
	} else {
		r->expr = rules_read_expr(f, m, "expr", true, &r->expr_text);
	}
	if (r->kind == RULE_ALERT)
		rules_get_duration(m, "keep_firing_for", &r->params.keep_firing_for_ms);
	if (r->kind != RULE_RECORD) {
		rules_read_flapping(m, &r->params);
		rules_read_templates(f, m, "annotations", r->kind, &r->annotations,
				     &r->annotation_count);
	}
	rules_read_templates(f, m, "labels", r->kind, &r->labels, &r->label_count);
	rules_know_other_keys(m);
}

static void rules_rule_clear(struct rule *r)
{
	free(r->name);
	free(r->key);
	free(r->location);
	free(r->expr_text);
	expr_free(r->expr);
	for (size_t i = 0; i < r->label_count; i++)
		rules_template_clear(&r->labels[i]);
	free(r->labels);
	for (size_t i = 0; i < r->annotation_count; i++)
		rules_template_clear(&r->annotations[i]);
	free(r->annotations);
}

static void rules_read_rule(struct rules_file *f, struct cfg_seq *seq, size_t index,
			    struct rule_group *g)
{
	struct cfg_map m;
	struct rule *r;
	bool alert;
	bool record;

	if (cfg_seq_map(seq, index, &m) != 1) {
		cfg_map_discard(&m);
		return;
	}
	alert = cfg_has(&m, "alert");
	record = cfg_has(&m, "record");
	if (alert == record) {
		cfg_error(
		    &m, NULL,
		    alert ? "has both \"alert\" and \"record\"; a rule is either an alerting "
			    "rule or a recording rule"
			  : "missing \"alert\" or \"record\": give \"alert: NAME\" for an "
			    "alerting or threshold rule, \"record: METRIC\" for a recording rule");
		cfg_map_discard(&m);
		return;
	}
	g->rules = xrealloc(g->rules, (g->rule_count + 1) * sizeof *g->rules);
	r = &g->rules[g->rule_count++];
	memset(r, 0, sizeof *r);
	r->kind = record ? RULE_RECORD : cfg_has(&m, "threshold") ? RULE_THRESHOLD : RULE_ALERT;
	r->params.no_data = ALERT_NO_DATA_KEEP;
	rules_read_rule_fields(f, &m, r);
	cfg_map_finish(&m);
}

/* Orders rule indices by name, then by position, for numbering repeated names. */
struct rules_name_ref {
	const char *name;
	size_t index;
};

static int rules_name_ref_compare(const void *a, const void *b)
{
	const struct rules_name_ref *x = a;
	const struct rules_name_ref *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Keys "GROUP/NAME", with "#2", "#3"... for the second and later rules of one name. */
static void rules_assign_keys(struct rule_group *g)
{
	struct rules_name_ref *refs = xcalloc(g->rule_count + 1, sizeof *refs);
	size_t repeat = 1;

	for (size_t i = 0; i < g->rule_count; i++) {
		refs[i].name = g->rules[i].name != NULL ? g->rules[i].name : "";
		refs[i].index = i;
	}
	qsort(refs, g->rule_count, sizeof *refs, rules_name_ref_compare);
	for (size_t i = 0; i < g->rule_count; i++) {
		struct rule *r = &g->rules[refs[i].index];

		repeat = i > 0 && strcmp(refs[i - 1].name, refs[i].name) == 0 ? repeat + 1 : 1;
		if (repeat == 1)
			r->key = xasprintf("%s/%s", g->name, refs[i].name);
		else
			r->key = xasprintf("%s/%s#%zu", g->name, refs[i].name, repeat);
	}
	free(refs);
}

/* ---- groups ---- */

static void rules_group_clear(struct rule_group *g)
{
	free(g->name);
	free(g->file);
	for (size_t i = 0; i < g->rule_count; i++)
		rules_rule_clear(&g->rules[i]);
	free(g->rules);
}

/* Keys of Prometheus's rule groups that tocsin does not implement. */
static void rules_reject_unsupported(struct cfg_map *m)
{
	struct cfg_map ignored;
	char *text = NULL;

	if (cfg_has(m, "query_offset")) {
		cfg_get_string(m, "query_offset", &text);
		free(text);
		cfg_error(m, "query_offset",
			  "query_offset is not supported; remove it (rules are evaluated on the "
			  "latest samples)");
	}
	if (cfg_has(m, "labels")) {
		cfg_get_map(m, "labels", &ignored);
		cfg_map_discard(&ignored);
		cfg_error(m, "labels",
			  "group labels are not supported; give the labels on each rule instead");
	}
}

/* Checks the group's name against every group read so far, in any file. */
static void rules_check_group_name(struct rules_loader *ld, struct cfg_map *m,
				   const struct rule_group *g)
{
	char quoted[CFG_QUOTE_SIZE];
	char where[CFG_PATH_MAX + 64];
	size_t count = ld->set->group_count;

	for (size_t i = 0; i < count; i++) {
		if (ld->set->groups[i].name == NULL ||
		    strcmp(ld->set->groups[i].name, g->name) != 0)
			continue;
		cfg_error(m, "name",
			  "duplicate group name %s (first at %s); group names must be unique "
			  "across all rule files",
			  cfg_quote(g->name, quoted, sizeof quoted), ld->group_locations[i]);
		return;
	}
	ld->group_locations[count] = xstrdup(cfg_location(m, "name", where, sizeof where));
}

static void rules_read_group(struct rules_loader *ld, struct rules_file *f, struct cfg_seq *seq,
			     size_t index)
{
	struct rule_set *set = ld->set;
	struct rule_group *g;
	struct cfg_map m;
	struct cfg_seq rules;
	uint64_t interval_ms;
	int64_t limit = 0;

	if (cfg_seq_map(seq, index, &m) != 1) {
		cfg_map_discard(&m);
		return;
	}
	set->groups = xrealloc(set->groups, (set->group_count + 1) * sizeof *set->groups);
	ld->group_locations =
	    xrealloc(ld->group_locations, (set->group_count + 1) * sizeof *ld->group_locations);
	ld->group_locations[set->group_count] = NULL;
	g = &set->groups[set->group_count];
	memset(g, 0, sizeof *g);
	g->file = xstrdup(cfg_file_name(f->cfg));
	g->interval_ms = ld->default_interval_ms;

	g->name = rules_read_name(&m, "name", "group");
	if (g->name != NULL)
		rules_check_group_name(ld, &m, g);
	else
		g->name = xstrdup("");
	if (cfg_get_duration_ms(&m, "interval", &interval_ms) == 1) {
		if (interval_ms == 0 || interval_ms > (uint64_t)INT64_MAX)
			cfg_error(&m, "interval",
				  "must be longer than 0; it is how often the group is evaluated");
		else
			g->interval_ms = (int64_t)interval_ms;
	}
	if (cfg_get_int(&m, "limit", 0, INT64_MAX, &limit) == 1)
		g->limit = (uint64_t)limit;
	rules_reject_unsupported(&m);

	if (cfg_get_seq(&m, "rules", &rules) == 1) {
		for (size_t i = 0; i < cfg_seq_count(&rules); i++)
			rules_read_rule(f, &rules, i, g);
	}
	rules_assign_keys(g);
	set->group_count++;
	cfg_map_finish(&m);
}

/* ---- SLOs ---- */

static bool rules_is_leap_year(long year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/* Days from 1970-01-01 to the date, in the proleptic Gregorian calendar. */
static int64_t rules_days_from_epoch(long year, int month, int day)
{
	static const int before_month[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
	int64_t days = 0;

	for (long y = 1970; y < year; y++)
		days += rules_is_leap_year(y) ? 366 : 365;
	for (long y = year; y < 1970; y++)
		days -= rules_is_leap_year(y) ? 366 : 365;
	days += before_month[month - 1] + day - 1;
	if (month > 2 && rules_is_leap_year(year))
		days++;
	return days;
}

static bool rules_digits(const char *s, size_t count, int *out)
{
	int value = 0;

	for (size_t i = 0; i < count; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		value = value * 10 + (s[i] - '0');
	}
	*out = value;
	return true;
}

/*
 * Parses an RFC 3339 date and time, such as "2024-05-01T02:00:00Z" or
 * "2024-05-01T04:00:00.5+02:00", into Unix milliseconds. A lower-case "t" or "z" and a
 * space in place of the "T" are accepted, because RFC 3339 allows them.
 */
static int rules_parse_rfc3339(const char *s, int64_t *out_ms)
{
	static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int year, month, day, hour, minute, second, offset_h, offset_m;
	int64_t ms = 0;
	int64_t offset_ms = 0;
	const char *p;

	if (strlen(s) < 20 || !rules_digits(s, 4, &year) || s[4] != '-' ||
	    !rules_digits(s + 5, 2, &month) || s[7] != '-' || !rules_digits(s + 8, 2, &day) ||
	    strchr("Tt ", s[10]) == NULL || !rules_digits(s + 11, 2, &hour) || s[13] != ':' ||
	    !rules_digits(s + 14, 2, &minute) || s[16] != ':' || !rules_digits(s + 17, 2, &second))
		return -1;
	if (month < 1 || month > 12 || day < 1 || day > month_days[month - 1] ||
	    (month == 2 && day == 29 && !rules_is_leap_year(year)) || hour > 23 || minute > 59 ||
	    second > 60)
		return -1;
	p = s + 19;
	if (*p == '.') {
		int scale = 100;

		if (p[1] < '0' || p[1] > '9')
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			ms += (*p - '0') * scale;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		offset_ms = 0;
	} else if ((*p == '+' || *p == '-') && rules_digits(p + 1, 2, &offset_h) && p[3] == ':' &&
		   rules_digits(p + 4, 2, &offset_m) && p[6] == '\0' && offset_h < 24 &&
		   offset_m < 60) {
		offset_ms = ((int64_t)offset_h * 60 + offset_m) * 60000 * (*p == '+' ? 1 : -1);
	} else {
		return -1;
	}
	/* A leap second (":60") counts as the first instant of the next minute. */
	*out_ms = ((rules_days_from_epoch(year, month, day) * 24 + hour) * 60 + minute) * 60000 +
		  (int64_t)second * 1000 + ms - offset_ms;
	return 0;
}

/* Reads an RFC 3339 time under `key`; 1, 0 when absent, -1 (error recorded). */
static int rules_get_time(struct cfg_map *m, const char *key, int64_t *out_ms)
{
	char quoted[CFG_QUOTE_SIZE];
	char *text;
	int rc = cfg_get_string(m, key, &text);

	if (rc != 1)
		return rc;
	if (rules_parse_rfc3339(text, out_ms) < 0) {
		cfg_error(m, key,
			  "%s is not an RFC 3339 date and time (examples: 2024-05-01T02:00:00Z, "
			  "2024-05-01T04:00:00+02:00)",
			  cfg_quote(text, quoted, sizeof quoted));
		rc = -1;
	}
	free(text);
	return rc;
}

static void rules_read_exclusions(struct cfg_map *m, struct slo_config *c)
{
	struct cfg_seq seq;

	if (cfg_get_seq(m, "exclude", &seq) != 1)
		return;
	c->exclusions = xcalloc(cfg_seq_count(&seq) + 1, sizeof *c->exclusions);
	for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
		struct slo_exclusion x = {0};
		struct cfg_map em;
		int start_rc;
		int end_rc;

		if (cfg_seq_map(&seq, i, &em) != 1) {
			cfg_map_discard(&em);
			continue;
		}
		start_rc = rules_get_time(&em, "start", &x.start_ms);
		end_rc = rules_get_time(&em, "end", &x.end_ms);
		if (start_rc == 0 || end_rc == 0)
			cfg_error(&em, NULL, "missing \"%s\"; an exclusion needs start and end",
				  start_rc == 0 ? "start" : "end");
		else if (start_rc == 1 && end_rc == 1 && x.start_ms >= x.end_ms)
			cfg_error(&em, "end",
				  "end is not after start; give the end of the "
				  "maintenance window");
		else if (start_rc == 1 && end_rc == 1)
			c->exclusions[c->exclusion_count++] = x;
		cfg_map_finish(&em);
	}
}

static void rules_read_alert_window(struct cfg_seq *seq, size_t index, struct slo_config *c)
{
	struct slo_alert_window w = {0};
	struct cfg_map am;
	char text[2][32];
	bool complete = true;

	if (cfg_seq_map(seq, index, &am) != 1) {
		cfg_map_discard(&am);
		return;
	}
	if (!cfg_has(&am, "severity")) {
		cfg_error(&am, NULL, "missing required key \"severity\" (e.g. page or ticket)");
		complete = false;
	} else if (cfg_get_string(&am, "severity", &w.severity) == 1 && w.severity[0] == '\0') {
		cfg_error(&am, "severity", "is empty; give a severity such as page or ticket");
		complete = false;
	} else if (w.severity == NULL) {
		complete = false;
	}
	if (!cfg_has(&am, "long") || !cfg_has(&am, "short") || !cfg_has(&am, "burn_rate")) {
		cfg_error(&am, NULL,
			  "give long, short and burn_rate (e.g. {severity: page, long: "
			  "1h, short: 5m, burn_rate: 14.4})");
		complete = false;
	}
	if ((rules_get_duration(&am, "long", &w.long_ms) != 1) |
	    (rules_get_duration(&am, "short", &w.short_ms) != 1)) {
		/* Both read, so that both are checked: no short-circuit. */
		complete = false;
	} else if (w.short_ms == 0 || w.short_ms >= w.long_ms) {
		cfg_error(&am, "short",
			  "short (%s) must be longer than 0 and shorter than long (%s)",
			  units_format_duration((uint64_t)w.short_ms, text[0], sizeof text[0]),
			  units_format_duration((uint64_t)w.long_ms, text[1], sizeof text[1]));
		complete = false;
	}
	if (cfg_get_double(&am, "burn_rate", &w.factor) == 1 && w.factor <= 0) {
		cfg_error(&am, "burn_rate", "%g is not accepted; a burn rate is above 0", w.factor);
		complete = false;
	}
	cfg_map_finish(&am);
	if (!complete) {
		free(w.severity);
		return;
	}
	c->alerts[c->alert_count++] = w;
}

static void rules_read_slo_alerts(struct cfg_map *m, struct slo_config *c)
{
	enum cfg_kind kind = cfg_kind(m, "alerts");
	struct cfg_seq seq;

	if (kind == CFG_KIND_ABSENT || kind == CFG_KIND_NULL) {
		c->alert_count = slo_default_alerts(&c->alerts);
		return;
	}
	/* `alerts: []` leaves the SLO without alerts: a budget to watch only. */
	if (cfg_get_seq(m, "alerts", &seq) != 1)
		return;
	c->alerts = xcalloc(cfg_seq_count(&seq) + 1, sizeof *c->alerts);
	for (size_t i = 0; i < cfg_seq_count(&seq); i++)
		rules_read_alert_window(&seq, i, c);
}

static int rules_label_compare_by_name(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

static void rules_read_slo_labels(struct cfg_map *m, struct slo_config *c)
{
	char quoted[CFG_QUOTE_SIZE];
	struct cfg_map lm;
	size_t size;

	if (cfg_get_map(m, "labels", &lm) != 1) {
		cfg_map_finish(&lm);
		return;
	}
	size = cfg_map_size(&lm);
	c->labels = xcalloc(size + 1, sizeof *c->labels);
	for (size_t i = 0; i < size; i++) {
		const char *name = cfg_map_key(&lm, i);
		char *value;

		if (name == NULL || cfg_get_string(&lm, name, &value) != 1)
			continue;
		cfg_quote(name, quoted, sizeof quoted);
		if (!series_valid_label_name(name)) {
			cfg_error(&lm, name,
				  "invalid label name %s (accepted: letters, digits and \"_\", not "
				  "starting with a digit)",
				  quoted);
		} else if (strncmp(name, "__", 2) == 0) {
			cfg_error(&lm, name,
				  "label name %s is reserved: names starting with \"__\" are for "
				  "internal use",
				  quoted);
		} else {
			c->labels[c->label_count].name = xstrdup(name);
			c->labels[c->label_count].value = value;
			c->label_count++;
			continue;
		}
		free(value);
	}
	qsort(c->labels, c->label_count, sizeof *c->labels, rules_label_compare_by_name);
	cfg_map_finish(&lm);
}

static void rules_read_objective(struct cfg_map *m, struct slo_config *c)
{
	double percent;

	if (!cfg_has(m, "objective")) {
		cfg_error(m, NULL,
			  "missing required key \"objective\" (the percentage of good events, e.g. "
			  "99.9)");
		return;
	}
	if (cfg_get_double(m, "objective", &percent) != 1)
		return;
	if (percent >= 100)
		cfg_error(m, "objective",
			  "must be below 100 (found %g): a 100%% objective leaves no error budget; "
			  "use e.g. 99.99",
			  percent);
	else if (percent <= 0)
		cfg_error(m, "objective",
			  "must be above 0 (found %g); give the percentage of good events, e.g. "
			  "99.9",
			  percent);
	else if (percent < 1)
		cfg_error(m, "objective",
			  "%g looks like a ratio; objective is a percentage, e.g. 99.9 for a ratio "
			  "of 0.999",
			  percent);
	else
		c->objective = percent / 100;
}

/* `period`, also spelt `window`: at least 1h, 30d by default. */
static void rules_read_period(struct cfg_map *m, struct slo_config *c)
{
	const char *key = cfg_has(m, "period") ? "period" : "window";
	char text[32];
	int64_t ms;

	c->period_ms = RULES_SLO_PERIOD_MS;
	if (cfg_has(m, "period") && cfg_has(m, "window")) {
		rules_get_duration(m, "window", &ms);
		cfg_error(m, "window", "window is another name for period; give only one of them");
	}
	if (rules_get_duration(m, key, &ms) != 1)
		return;
	if (ms < RULES_SLO_MIN_PERIOD_MS)
		cfg_error(m, key,
			  "%s is shorter than 1h; an SLO's period is the span its error budget "
			  "covers, usually 28d or 30d",
			  units_format_duration((uint64_t)ms, text, sizeof text));
	else
		c->period_ms = ms;
}

static void rules_read_latency(struct cfg_map *m, struct slo_config *c)
{
	struct cfg_map lm;
	char *probe;
	uint64_t ms;

	if (cfg_get_map(m, "latency", &lm) != 1) {
		if (cfg_kind(m, "latency") == CFG_KIND_NULL)
			cfg_error(m, "latency", "is empty; give probe and threshold");
		cfg_map_discard(&lm);
		return;
	}
	probe = rules_read_name(&lm, "probe", "probe");
	if (!cfg_has(&lm, "threshold")) {
		cfg_error(
		    &lm, NULL,
		    "missing required key \"threshold\" (the slowest run that counts as good, "
		    "e.g. 250ms)");
	} else if (cfg_get_duration_ms(&lm, "threshold", &ms) == 1) {
		if (ms == 0)
			cfg_error(&lm, "threshold", "must be longer than 0");
		else
			c->latency_threshold_s = (double)ms / 1000;
	}
	if (c->probe == NULL)
		c->probe = probe;
	else
		free(probe);
	cfg_map_finish(&lm);
}

/* good or errors, with total: counter expressions. */
static void rules_read_counters(struct rules_file *f, struct cfg_map *m, struct slo_config *c)
{
	bool good = cfg_has(m, "good");
	bool errors = cfg_has(m, "errors");

	c->good = rules_read_expr(f, m, "good", false, NULL);
	c->errors = rules_read_expr(f, m, "errors", false, NULL);
	c->total = rules_read_expr(f, m, "total", false, NULL);
	c->kind = errors ? SLO_SLI_ERRORS_TOTAL : SLO_SLI_GOOD_TOTAL;
	if (good && errors)
		cfg_error(m, "errors",
			  "give either good or errors with total, not both: each one determines "
			  "the other");
	else if (!good && !errors)
		cfg_error(m, "total",
			  "total needs good or errors: a counter of the events that count as good, "
			  "or of those that count as errors");
	if (!cfg_has(m, "total"))
		cfg_error(m, good ? "good" : "errors",
			  "%s needs total: a counter of all events (missing key \"total\")",
			  good ? "good" : "errors");
}

/* The SLI: exactly one of probe, latency, and good or errors with total. */
static void rules_read_sli(struct rules_file *f, struct cfg_map *m, struct slo_config *c)
{
	bool probe = cfg_has(m, "probe");
	bool latency = cfg_has(m, "latency");
	bool counters = cfg_has(m, "good") || cfg_has(m, "errors") || cfg_has(m, "total");
	int forms = (int)probe + (int)latency + (int)counters;

	if (forms == 0) {
		cfg_error(m, NULL,
			  "missing the SLI: give probe: NAME, latency: {probe: NAME, threshold: "
			  "DURATION}, or good or errors with total (counter expressions)");
		return;
	}
	if (forms > 1)
		cfg_error(m, NULL,
			  "gives %s; an SLO has one SLI only: probe, latency, or good or errors "
			  "with total",
			  probe && latency ? "both probe and latency"
			  : probe          ? "both probe and counter expressions"
					   : "both latency and counter expressions");
	if (counters)
		rules_read_counters(f, m, c);
	if (latency) {
		c->kind = SLO_SLI_LATENCY;
		rules_read_latency(m, c);
	}
	if (probe) {
		c->kind = SLO_SLI_AVAILABILITY;
		free(c->probe);
		c->probe = rules_read_name(m, "probe", "probe");
	}
}

static void rules_check_slo_name(struct rules_loader *ld, struct cfg_map *m, const char *name)
{
	char quoted[CFG_QUOTE_SIZE];

	for (size_t i = 0; i < ld->set->slo_count; i++) {
		if (ld->set->slos[i].name == NULL || strcmp(ld->set->slos[i].name, name) != 0)
			continue;
		cfg_error(m, "name",
			  "duplicate SLO name %s (first at %s); SLO names must be unique across "
			  "all rule files",
			  cfg_quote(name, quoted, sizeof quoted), ld->set->slos[i].location);
		return;
	}
}

static void rules_read_slo(struct rules_loader *ld, struct rules_file *f, struct cfg_seq *seq,
			   size_t index)
{
	struct rule_set *set = ld->set;
	char where[CFG_PATH_MAX + 64];
	struct slo_config *c;
	struct cfg_map m;

	if (cfg_seq_map(seq, index, &m) != 1) {
		cfg_map_discard(&m);
		return;
	}
	set->slos = xrealloc(set->slos, (set->slo_count + 1) * sizeof *set->slos);
	c = &set->slos[set->slo_count];
	memset(c, 0, sizeof *c);
	c->location = xstrdup(cfg_location(&m, NULL, where, sizeof where));
	c->name = rules_read_name(&m, "name", "SLO");
	if (c->name != NULL)
		rules_check_slo_name(ld, &m, c->name);
	set->slo_count++;

	rules_read_objective(&m, c);
	rules_read_period(&m, c);
	rules_read_sli(f, &m, c);
	rules_read_slo_alerts(&m, c);
	/* One failed request in a quiet hour is a 100 % error ratio: without a floor, a
	 * low-traffic service would be paged for it. Ten events are fewer than any probe with
	 * an interval up to six minutes makes in the shortest default long window (1 h). */
	c->min_events = SLO_DEFAULT_MIN_EVENTS;
	if (cfg_get_double(&m, "min_events", &c->min_events) == 1 && c->min_events < 0)
		cfg_error(&m, "min_events",
			  "%g is not accepted; give 0 or more events (default %d)", c->min_events,
			  SLO_DEFAULT_MIN_EVENTS);
	rules_read_exclusions(&m, c);
	rules_read_slo_labels(&m, c);
	cfg_map_finish(&m);
}

/* ---- loading ---- */

static void rules_read_file(struct rules_loader *ld, struct cfg *cfg)
{
	struct rule_set *set = ld->set;
	struct rules_file f = {.cfg = cfg};
	struct cfg_map root;
	struct cfg_seq seq;
	uint64_t source_hash = cfg_source_hash(cfg);

	if (cfg_root(cfg, &root) == 0) {
		if (cfg_get_seq(&root, "groups", &seq) == 1) {
			for (size_t i = 0; i < cfg_seq_count(&seq); i++)
				rules_read_group(ld, &f, &seq, i);
		}
		if (cfg_get_seq(&root, "slos", &seq) == 1) {
			for (size_t i = 0; i < cfg_seq_count(&seq); i++)
				rules_read_slo(ld, &f, &seq, i);
		}
	}
	cfg_map_finish(&root);

	set->files = xrealloc(set->files, (set->file_count + 1) * sizeof *set->files);
	set->files[set->file_count++] = xstrdup(cfg_file_name(cfg));
	set->hash = hash_string(set->hash, cfg_file_name(cfg));
	set->hash = hash_bytes(set->hash, &source_hash, sizeof source_hash);
	rules_file_flush(ld, &f);
	cfg_free(cfg);
}

static int rules_key_ref_compare(const void *a, const void *b)
{
	const struct rule *x = *(const struct rule *const *)a;
	const struct rule *y = *(const struct rule *const *)b;

	return strcmp(x->key, y->key);
}

/*
 * Keys must be unique across groups too. They can collide only through a "/" or "#" in
 * a name ("a/b" + "c" and "a" + "b/c"), but two rules sharing a key would share state.
 */
static void rules_check_keys(struct rules_loader *ld)
{
	const struct rule_set *set = ld->set;
	size_t count = rules_count(set);
	const struct rule **refs = xcalloc(count + 1, sizeof *refs);
	size_t n = 0;

	for (size_t i = 0; i < set->group_count; i++)
		for (size_t j = 0; j < set->groups[i].rule_count; j++)
			refs[n++] = &set->groups[i].rules[j];
	qsort(refs, n, sizeof *refs, rules_key_ref_compare);
	for (size_t i = 1; i < n; i++) {
		char *text;

		if (strcmp(refs[i - 1]->key, refs[i]->key) != 0)
			continue;
		text =
		    xasprintf("%s: the rule key \"%s\" is also the key of the rule at %s; rename "
			      "the group or the rule, because the key identifies the rule's "
			      "state across reloads",
			      refs[i]->location, refs[i]->key, refs[i - 1]->location);
		rules_loader_error(ld, text);
		free(text);
	}
	free(refs);
}

static int64_t rules_history_ms(const struct rule_set *set)
{
	int64_t max = 0;

	for (size_t i = 0; i < set->group_count; i++) {
		for (size_t j = 0; j < set->groups[i].rule_count; j++) {
			const struct expr *e = set->groups[i].rules[j].expr;

			if (e != NULL && expr_history_ms(e) > max)
				max = expr_history_ms(e);
		}
	}
	/* SLO windows live in the SLO's minute buckets; only the counters' reads count. */
	for (size_t i = 0; i < set->slo_count; i++) {
		const struct expr *counters[] = {set->slos[i].good, set->slos[i].errors,
						 set->slos[i].total};

		for (size_t j = 0; j < 3; j++) {
			if (counters[j] != NULL && expr_history_ms(counters[j]) > max)
				max = expr_history_ms(counters[j]);
		}
	}
	return max;
}

static void rules_loader_init(struct rules_loader *ld, int64_t default_interval_ms)
{
	memset(ld, 0, sizeof *ld);
	ld->set = xcalloc(1, sizeof *ld->set);
	ld->set->hash = HASH_FNV_OFFSET;
	ld->default_interval_ms = default_interval_ms;
}

static struct rule_set *rules_loader_finish(struct rules_loader *ld, char **errors)
{
	struct rule_set *set = ld->set;

	for (size_t i = 0; i < set->group_count; i++)
		free(ld->group_locations[i]);
	free(ld->group_locations);
	if (ld->error_count == 0)
		rules_check_keys(ld);
	set->history_ms = rules_history_ms(set);
	/* The default interval changes groups that set none, as an edit of the files would. */
	set->hash = hash_bytes(set->hash, &ld->default_interval_ms, sizeof ld->default_interval_ms);
	if (ld->error_count > 0) {
		*errors = ld->errors;
		rules_free(set);
		return NULL;
	}
	free(ld->errors);
	*errors = NULL;
	return set;
}

static int rules_path_compare(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Expands one pattern into *paths; a literal path that matches nothing is an error. */
static void rules_expand(struct rules_loader *ld, const char *pattern, const char *base_dir,
			 char ***paths, size_t *count)
{
	char *full;
	char *text;
	glob_t g;
	int rc;

	if (pattern[0] != '/' && base_dir != NULL && base_dir[0] != '\0')
		full = xasprintf("%s/%s", base_dir, pattern);
	else
		full = xstrdup(pattern);
	rc = glob(full, 0, NULL, &g);
	if (rc == 0) {
		*paths = xrealloc(*paths, (*count + g.gl_pathc + 1) * sizeof **paths);
		for (size_t i = 0; i < g.gl_pathc; i++)
			(*paths)[(*count)++] = xstrdup(g.gl_pathv[i]);
	} else if (rc == GLOB_NOMATCH) {
		if (strpbrk(pattern, "*?[") == NULL) {
			text = xasprintf("%s: rule file not found; fix the path, or remove it from "
					 "the list",
					 full);
			rules_loader_error(ld, text);
			free(text);
		}
	} else {
		text = xasprintf("%s: failed to expand the pattern: %s", full,
				 rc == GLOB_NOSPACE ? "out of memory"
						    : "a directory could not be read");
		rules_loader_error(ld, text);
		free(text);
	}
	globfree(&g);
	free(full);
}

struct rule_set *rules_load(char *const *patterns, size_t pattern_count, const char *base_dir,
			    int64_t default_interval_ms, char **errors)
{
	struct rules_loader ld;
	char **paths = NULL;
	size_t count = 0;

	rules_loader_init(&ld, default_interval_ms);
	for (size_t i = 0; i < pattern_count; i++)
		rules_expand(&ld, patterns[i], base_dir, &paths, &count);
	if (count > 0)
		qsort(paths, count, sizeof *paths, rules_path_compare);
	for (size_t i = 0; i < count; i++) {
		/* Overlapping patterns name a file more than once: read it once. */
		if (i == 0 || strcmp(paths[i - 1], paths[i]) != 0)
			rules_read_file(&ld, cfg_parse_file(paths[i]));
	}
	for (size_t i = 0; i < count; i++)
		free(paths[i]);
	free(paths);
	return rules_loader_finish(&ld, errors);
}

struct rule_set *rules_load_string(const char *name, const char *text, int64_t default_interval_ms,
				   char **errors)
{
	struct rules_loader ld;

	rules_loader_init(&ld, default_interval_ms);
	rules_read_file(&ld, cfg_parse_string(name, text, strlen(text)));
	return rules_loader_finish(&ld, errors);
}

void rules_free(struct rule_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->group_count; i++)
		rules_group_clear(&set->groups[i]);
	free(set->groups);
	for (size_t i = 0; i < set->slo_count; i++)
		slo_config_free(&set->slos[i]);
	free(set->slos);
	for (size_t i = 0; i < set->file_count; i++)
		free(set->files[i]);
	free(set->files);
	free(set);
}

size_t rules_count(const struct rule_set *set)
{
	size_t count = 0;

	for (size_t i = 0; i < set->group_count; i++)
		count += set->groups[i].rule_count;
	return count;
}
