/*
 * Annotation and label templates of alerting rules: the part of Go's text/template that
 * Prometheus rule files use. A template is parsed once, when its rule file loads, and
 * rendered for each alert with the alert's labels and value.
 *
 * Supported (docs/rules.md lists it for users):
 *   text outside actions, copied as is
 *   {{ $labels.NAME }}, {{ .Labels.NAME }}      a label's value ("" when missing)
 *   {{ $value }}, {{ .Value }}                  the alert's value, as Go prints a float64
 *   {{ $externalLabels.NAME }}                  an external label ("" when missing)
 *   {{ "literal" }}, {{ 3.5 }}                  string and number literals
 *   pipelines: {{ $value | humanize }}, and calls: {{ humanize $value }}
 *   functions: humanize, humanize1024, humanizeDuration, humanizePercentage,
 *              humanizeTimestamp, printf FORMAT ARGS..., toUpper, toLower, title,
 *              reReplaceAll REGEX REPLACEMENT TEXT
 *   trim markers: {{- and -}} remove the white space before or after the action
 *   comments: {{ followed by a Go comment (slash, star ... star, slash) and }}
 * Anything else inside {{ }} (if, range, with, define, template, unknown functions) is a
 * parse error that names the construct.
 */
#ifndef TOCSIN_TEMPLATE_H
#define TOCSIN_TEMPLATE_H

#include <stddef.h>

#include "collector/expr.h"
#include "collector/series.h"

struct template;

/*
 * Parses `text`. Returns NULL on error and sets *error (caller frees) to
 * "FILE:LINE:COLUMN: PROBLEM at column N of template, expected WHAT", the location being
 * that of the YAML string (the prefix is left out when loc is NULL), like expr_parse().
 */
struct template *template_parse(const char *text, const struct expr_location *loc, char **error);
void template_free(struct template *t);

/* True when the template is only literal text (rendering returns it unchanged). */
int template_is_constant(const struct template *t);

struct template_data {
	const struct label *labels; /* the alert's labels, sorted by name */
	size_t label_count;
	double value;
	const struct label *external_labels; /* sorted by name; may be NULL */
	size_t external_label_count;
};

/*
 * Renders the template. Returns the text (caller frees), or NULL with *error set (caller
 * frees) when a function fails on its data at run time, for example printf with a bad
 * verb for its argument; the evaluator then uses the error text as the value.
 */
char *template_render(const struct template *t, const struct template_data *data, char **error);

/* The humanize functions on their own, as Prometheus formats them; results in buf. */
const char *template_humanize(double v, char *buf, size_t size);
const char *template_humanize1024(double v, char *buf, size_t size);
const char *template_humanize_duration(double seconds, char *buf, size_t size);
const char *template_humanize_percentage(double ratio, char *buf, size_t size);

#endif
