/*
 * Evaluates expressions over synthetic series on a virtual clock, for tests that compare
 * tocsin's engine with another (tests/integration/test_promql_parity.py). Reads stdin:
 *   series STEP_S SELECTOR | VALUES    values in promtool's notation, from t=0
 *   eval T_S EXPR
 * and writes, per eval, one "sample<TAB>LABELS<TAB>VALUE" line per element ("scalar"
 * lines for scalars, "error" lines for errors) and a line "end".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/expr.h"
#include "collector/expr_impl.h"
#include "collector/window.h"

static struct series *intern_selector(struct series_registry *reg, const char *text)
{
	char *error = NULL;
	struct expr *e = expr_parse(text, NULL, &error);
	struct metric_desc desc = {NULL, "input series", METRIC_GAUGE};
	struct label labels[32];
	size_t count = 0;
	struct series *s;

	if (e == NULL || e->root->kind != EXPR_NODE_SELECTOR || e->root->metric == NULL) {
		fprintf(stderr, "invalid series %s: %s\n", text, error ? error : "not a selector");
		exit(2);
	}
	desc.name = e->root->metric;
	for (size_t i = 1; i < e->root->matcher_count && count < 32; i++)
		labels[count++] =
		    (struct label){e->root->matchers[i].name, e->root->matchers[i].value};
	s = series_intern(reg, &desc, labels, count);
	expr_free(e);
	return s;
}

static void load(struct window_store *ws, struct series *s, long step_s, char *values)
{
	char *save = NULL;
	int64_t t = 0;

	for (char *tok = strtok_r(values, " \t\n", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		double a;
		double b;
		int n;
		char sign;

		if (strcmp(tok, "_") == 0) {
			t += step_s;
		} else if (strcmp(tok, "stale") == 0) {
			window_mark_stale(ws, s, t * 1000);
			t += step_s;
		} else if (sscanf(tok, "%lf%c%lfx%d", &a, &sign, &b, &n) == 4 &&
			   (sign == '+' || sign == '-')) {
			for (int i = 0; i <= n; i++, t += step_s)
				window_append(ws, s, t * 1000, a + (sign == '+' ? b : -b) * i);
		} else {
			window_append(ws, s, t * 1000, strtod(tok, NULL));
			t += step_s;
		}
	}
}

static void print_result(const struct expr_result *r)
{
	if (r->type == EXPR_TYPE_SCALAR) {
		printf("scalar\t\t%.17g\n", r->scalar);
		return;
	}
	for (size_t i = 0; i < r->count; i++) {
		const struct expr_element *el = &r->elements[i];
		const char *name = "";
		bool first = true;

		for (size_t k = 0; k < el->label_count; k++)
			if (strcmp(el->labels[k].name, "__name__") == 0)
				name = el->labels[k].value;
		printf("sample\t%s{", name);
		for (size_t k = 0; k < el->label_count; k++) {
			if (strcmp(el->labels[k].name, "__name__") == 0)
				continue;
			printf("%s%s=\"%s\"", first ? "" : ", ", el->labels[k].name,
			       el->labels[k].value);
			first = false;
		}
		printf("}\t%.17g\n", el->value);
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
			load(ws, intern_selector(reg, rest), n, bar + 1);
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
