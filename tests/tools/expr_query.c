/*
 * Evaluates expressions over synthetic series on a virtual clock, for tests that compare
 * tocsin's engine with another (tests/integration/test_promql_parity.py). Reads stdin:
 *   series STEP_S SELECTOR | VALUES    values in promtool's notation, from t=0
 *   eval T_S EXPR
 * and writes, per eval, one "sample<TAB>LABELS<TAB>VALUE" line per element ("scalar"
 * lines for scalars, "error" lines for errors) and a line "end".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/expr.h"
#include "collector/series_notation.h"
#include "collector/window.h"

/* Loads one input series; exits with status 2 on a notation error, as a test tool may. */
static void load_series(struct series_registry *reg, struct window_store *ws, long step_s,
			const char *selector, const char *values)
{
	struct series_notation_item *items = NULL;
	struct label *labels = NULL;
	size_t item_count = 0;
	size_t label_count = 0;
	char *error = NULL;
	struct series *s = NULL;

	if (series_notation_parse_labels(selector, &labels, &label_count, &error) == 0 &&
	    series_notation_parse_values(values, &items, &item_count, &error) == 0)
		s = series_notation_intern(reg, labels, label_count, &error);
	if (s == NULL) {
		fprintf(stderr, "invalid series %s | %s: %s\n", selector, values, error);
		free(error);
		free(items);
		series_notation_labels_free(labels, label_count);
		exit(2);
	}
	series_notation_load(ws, s, items, item_count, step_s * 1000, INT64_MAX);
	series_notation_labels_free(labels, label_count);
	free(items);
}

static void print_result(const struct expr_result *r)
{
	if (r->type == EXPR_TYPE_SCALAR) {
		printf("scalar\t\t%.17g\n", r->scalar);
		return;
	}
	for (size_t i = 0; i < r->count; i++) {
		const struct expr_element *el = &r->elements[i];
		char *labels = series_notation_format_labels(el->labels, el->label_count);

		printf("sample\t%s\t%.17g\n", labels, el->value);
		free(labels);
	}
}

int main(void)
{
	struct series_registry *reg = series_registry_new();
	struct window_store *ws = window_store_new(400LL * 24 * 3600 * 1000, 1 << 20);
	struct expr_source src;
	char line[8192];

	window_source(ws, reg, &src);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		long n;
		char *rest;

		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "series ", 7) == 0) {
			char *bar = strchr(line, '|');

			n = strtol(line + 7, &rest, 10);
			if (bar == NULL)
				return 2;
			*bar = '\0';
			load_series(reg, ws, n, rest, bar + 1);
		} else if (strncmp(line, "eval ", 5) == 0) {
			char *error = NULL;
			struct expr *e;
			struct expr_result r;

			n = strtol(line + 5, &rest, 10);
			e = expr_parse(rest, NULL, &error);
			if (e == NULL) {
				printf("error\t\t%s\n", error);
				free(error);
			} else if (expr_eval(e, &src, n * 1000LL, &r) < 0) {
				printf("error\t\t%s\n", r.error);
			} else {
				print_result(&r);
			}
			if (e != NULL)
				expr_result_free(&r);
			expr_free(e);
			printf("end\n");
			fflush(stdout);
		}
	}
	window_store_free(ws);
	series_registry_free(reg);
	return 0;
}
