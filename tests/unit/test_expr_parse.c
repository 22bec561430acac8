/*
 * Unit tests of the expression parser and type checker: every construct with its
 * canonical rendering (which shows precedence and associativity), rendering round trips,
 * result types, history spans, and every error with its exact message and column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/expr.h"
#include "collector/expr_impl.h"

static const struct expr_location rules_yml = {"rules.yml", 8, 17};

struct parse_case {
	const char *text;
	const char *canonical;
	enum expr_type type;
};

static const struct parse_case parse_cases[] = {
    {"up", "up", EXPR_TYPE_VECTOR},
    {"up{job=\"a\", instance!=\"b\", x=~\"a.*\", y!~\"c|d\"}",
     "up{job=\"a\", instance!=\"b\", x=~\"a.*\", y!~\"c|d\"}", EXPR_TYPE_VECTOR},
    {"up{job=\"a\",}", "up{job=\"a\"}", EXPR_TYPE_VECTOR},
    {"up{}", "up", EXPR_TYPE_VECTOR},
    {"{__name__=~\"node_.*\"}", "{__name__=~\"node_.*\"}", EXPR_TYPE_VECTOR},
    {"{job=\"a\"}", "{job=\"a\"}", EXPR_TYPE_VECTOR},
    {"recorded:rate:5m", "recorded:rate:5m", EXPR_TYPE_VECTOR},
    /* A metric named like a keyword (found by fuzzing): written so that it parses back. */
    {"a + + group_left", "a + {__name__=\"group_left\"}", EXPR_TYPE_VECTOR},
    {"bool{x=\"1\"}", "{__name__=\"bool\", x=\"1\"}", EXPR_TYPE_VECTOR},
    {"x[5m]", "x[5m]", EXPR_TYPE_MATRIX},
    {"x[90m]", "x[1h30m]", EXPR_TYPE_MATRIX},
    {"x[1h30m]", "x[1h30m]", EXPR_TYPE_MATRIX},
    {"x[500ms]", "x[500ms]", EXPR_TYPE_MATRIX},
    {"x[1y]", "x[1y]", EXPR_TYPE_MATRIX},
    {"x[2w]", "x[2w]", EXPR_TYPE_MATRIX},
    {"x offset 5m", "x offset 5m", EXPR_TYPE_VECTOR},
    {"x[1h] offset 1d", "x[1h] offset 1d", EXPR_TYPE_MATRIX},
    {"42", "42", EXPR_TYPE_SCALAR},
    {"0.5", "0.5", EXPR_TYPE_SCALAR},
    {".5", "0.5", EXPR_TYPE_SCALAR},
    {"1e3", "1000", EXPR_TYPE_SCALAR},
    {"1.5e-7", "1.5e-07", EXPR_TYPE_SCALAR},
    {"0x1f", "31", EXPR_TYPE_SCALAR},
    {"Inf", "Inf", EXPR_TYPE_SCALAR},
    {"nan", "NaN", EXPR_TYPE_SCALAR},
    {"\"text\"", "\"text\"", EXPR_TYPE_STRING},
    {"'single'", "\"single\"", EXPR_TYPE_STRING},
    {"`raw\\d`", "\"raw\\\\d\"", EXPR_TYPE_STRING},
    {"\"tab\\there\\u00e9\"", "\"tab\\there\xc3\xa9\"", EXPR_TYPE_STRING},
    {"(x)", "x", EXPR_TYPE_VECTOR},
    {"x # a comment\n", "x", EXPR_TYPE_VECTOR},
    {"-x", "-x", EXPR_TYPE_VECTOR},
    {"+x", "x", EXPR_TYPE_VECTOR},
    {"1 + 2 * 3", "1 + (2 * 3)", EXPR_TYPE_SCALAR},
    {"(1 + 2) * 3", "(1 + 2) * 3", EXPR_TYPE_SCALAR},
    {"a - b - c", "(a - b) - c", EXPR_TYPE_VECTOR},
    {"a / b % c", "(a / b) % c", EXPR_TYPE_VECTOR},
    {"2 ^ 3 ^ 2", "2 ^ (3 ^ 2)", EXPR_TYPE_SCALAR},
    {"-2 ^ 2", "-(2 ^ 2)", EXPR_TYPE_SCALAR},
    {"-a * b", "-a * b", EXPR_TYPE_VECTOR},
    {"2 ^ -1", "2 ^ -1", EXPR_TYPE_SCALAR},
    {"a + b > c * 2", "(a + b) > (c * 2)", EXPR_TYPE_VECTOR},
    {"a > 1 and b < 2", "(a > 1) and (b < 2)", EXPR_TYPE_VECTOR},
    {"a or b and c unless d", "a or ((b and c) unless d)", EXPR_TYPE_VECTOR},
    {"a == b", "a == b", EXPR_TYPE_VECTOR},
    {"a != 1", "a != 1", EXPR_TYPE_VECTOR},
    {"a >= 1", "a >= 1", EXPR_TYPE_VECTOR},
    {"a <= 1", "a <= 1", EXPR_TYPE_VECTOR},
    {"a > bool 1", "a > bool 1", EXPR_TYPE_VECTOR},
    {"1 < bool 2", "1 < bool 2", EXPR_TYPE_SCALAR},
    {"a > bool on(job) b", "a > bool on(job) b", EXPR_TYPE_VECTOR},
    {"a + ignoring(x, y) b", "a + ignoring(x, y) b", EXPR_TYPE_VECTOR},
    {"a and on() b", "a and on() b", EXPR_TYPE_VECTOR},
    {"sum(x)", "sum(x)", EXPR_TYPE_VECTOR},
    {"sum by (job) (x)", "sum by (job) (x)", EXPR_TYPE_VECTOR},
    {"sum(x) by (job, instance)", "sum by (job, instance) (x)", EXPR_TYPE_VECTOR},
    {"avg without (cpu,) (x)", "avg without (cpu) (x)", EXPR_TYPE_VECTOR},
    {"min(x) without (a)", "min without (a) (x)", EXPR_TYPE_VECTOR},
    {"max by () (x)", "max by () (x)", EXPR_TYPE_VECTOR},
    {"count(x)", "count(x)", EXPR_TYPE_VECTOR},
    {"topk(3, x)", "topk(3, x)", EXPR_TYPE_VECTOR},
    {"bottomk by (job) (1 + 1, x)", "bottomk by (job) (1 + 1, x)", EXPR_TYPE_VECTOR},
    {"rate(x[5m])", "rate(x[5m])", EXPR_TYPE_VECTOR},
    {"irate(x[5m])", "irate(x[5m])", EXPR_TYPE_VECTOR},
    {"increase(x[1h])", "increase(x[1h])", EXPR_TYPE_VECTOR},
    {"delta(x[1h])", "delta(x[1h])", EXPR_TYPE_VECTOR},
    {"avg_over_time(x[5m])", "avg_over_time(x[5m])", EXPR_TYPE_VECTOR},
    {"min_over_time(x[5m])", "min_over_time(x[5m])", EXPR_TYPE_VECTOR},
    {"max_over_time(x[5m])", "max_over_time(x[5m])", EXPR_TYPE_VECTOR},
    {"sum_over_time(x[5m])", "sum_over_time(x[5m])", EXPR_TYPE_VECTOR},
    {"count_over_time(x[5m])", "count_over_time(x[5m])", EXPR_TYPE_VECTOR},
    {"last_over_time(x[5m])", "last_over_time(x[5m])", EXPR_TYPE_VECTOR},
    {"quantile_over_time(0.9, x[5m])", "quantile_over_time(0.9, x[5m])", EXPR_TYPE_VECTOR},
    {"absent(up{job=\"x\"})", "absent(up{job=\"x\"})", EXPR_TYPE_VECTOR},
    {"absent_over_time(up[5m])", "absent_over_time(up[5m])", EXPR_TYPE_VECTOR},
    {"abs(-x)", "abs(-x)", EXPR_TYPE_VECTOR},
    {"clamp_min(x, 0)", "clamp_min(x, 0)", EXPR_TYPE_VECTOR},
    {"clamp_max(x, 100)", "clamp_max(x, 100)", EXPR_TYPE_VECTOR},
    {"time()", "time()", EXPR_TYPE_SCALAR},
    {"time() - x", "time() - x", EXPR_TYPE_VECTOR},
    {"sum(rate(x[5m])) by (job) > 0.5", "sum by (job) (rate(x[5m])) > 0.5", EXPR_TYPE_VECTOR},
    {"on", "{__name__=\"on\"}", EXPR_TYPE_VECTOR},
    {"x{on=\"a\"}", "x{on=\"a\"}", EXPR_TYPE_VECTOR},
    {"x{a=~\"\\\\d+\"}", "x{a=~\"\\\\d+\"}", EXPR_TYPE_VECTOR},
};

static void constructs_parse_to_canonical_form(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
		const struct parse_case *c = &parse_cases[i];
		char *error = NULL;
		struct expr *e = expr_parse(c->text, &rules_yml, &error);
		char *text;

		if (e == NULL)
			fail_msg("%s: %s", c->text, error);
		text = expr_format(e);
		if (strcmp(text, c->canonical) != 0)
			fail_msg("%s: rendered %s, expected %s", c->text, text, c->canonical);
		if (expr_result_type(e) != c->type)
			fail_msg("%s: type %s, expected %s", c->text,
				 expr_type_name(expr_result_type(e)), expr_type_name(c->type));
		free(text);
		expr_free(e);
	}
}

static void canonical_form_parses_to_itself(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
		char *error = NULL;
		struct expr *e = expr_parse(parse_cases[i].canonical, NULL, &error);
		char *text;

		if (e == NULL)
			fail_msg("%s: %s", parse_cases[i].canonical, error);
		text = expr_format(e);
		assert_string_equal(text, parse_cases[i].canonical);
		free(text);
		expr_free(e);
	}
}

struct error_case {
	const char *text;
	const char *message;
};

static const struct error_case error_cases[] = {
    /* syntax */
    {"up{job=\"x\",)",
     "rules.yml:8:17: unexpected \")\" at column 12 of expr, expected a label matcher"},
    {"up{", "rules.yml:8:17: unexpected end of expr at column 4 of expr, expected a label "
	    "matcher"},
    {"up{job}", "rules.yml:8:17: unexpected \"}\" at column 7 of expr, expected a matcher "
		"operator: =, !=, =~ or !~"},
    {"up{job==\"a\"}", "rules.yml:8:17: unexpected \"==\" at column 7 of expr, expected a "
		       "matcher operator: =, !=, =~ or !~"},
    {"up{job=a}", "rules.yml:8:17: unexpected identifier \"a\" at column 8 of expr, expected "
		  "a quoted label value"},
    {"up{job=\"a\" x=\"b\"}", "rules.yml:8:17: unexpected identifier \"x\" at column 12 of "
			      "expr, expected \",\" or \"}\""},
    {"up{a:b=\"1\"}", "rules.yml:8:17: invalid label name \"a:b\" at column 4 of expr, "
		      "expected letters, digits and underscores, not starting with a digit"},
    {"", "rules.yml:8:17: empty expr at column 1 of expr, expected an expression"},
    {"1 +", "rules.yml:8:17: unexpected end of expr at column 4 of expr, expected an "
	    "expression: a number, a string, a selector, a function, an aggregation or \"(\""},
    {"a +\n  )", "rules.yml:8:17: unexpected \")\" at line 2, column 3 of expr, expected an "
		 "expression: a number, a string, a selector, a function, an aggregation or "
		 "\"(\""},
    {"x y", "rules.yml:8:17: unexpected identifier \"y\" at column 3 of expr, expected an "
	    "operator or end of expr"},
    {"(x", "rules.yml:8:17: unexpected end of expr at column 3 of expr, expected \")\" or an "
	   "operator"},
    {"x = 1", "rules.yml:8:17: unexpected \"=\" at column 3 of expr, expected == to compare"},
    {"5 ~ 3", "rules.yml:8:17: unexpected character \"~\" at column 3 of expr"},
    {"\"abc", "rules.yml:8:17: unterminated string at column 1 of expr, expected a closing \" "
	      "on the same line"},
    {"\"a\\.b\"", "rules.yml:8:17: unknown escape sequence \"\\.\" in string at column 3 of "
		  "expr, expected one of \\\\ \\\" \\' \\n \\t \\r \\xHH \\uHHHH; write \\\\ for a "
		  "backslash, for instance in a regex, or use a `raw string`"},
    {"x{a=\"\\x4\"}", "rules.yml:8:17: invalid escape sequence in string at column 9 of "
		      "expr, expected hexadecimal digits"},
    {"1.5m", "rules.yml:8:17: invalid number \"1.5m\" at column 1 of expr, expected a decimal "
	     "or hexadecimal number like 42, 0.5, 1e3 or 0x1f"},
    {"x[1m5h]", "rules.yml:8:17: invalid duration \"1m5h\" at column 3 of expr, expected "
		"digits and units from largest to smallest (ms, s, m, h, d, w, y) like 1h30m"},
    {"x[5]", "rules.yml:8:17: unexpected number 5 at column 3 of expr, expected a duration "
	     "like 5m or 1h30m (units ms, s, m, h, d, w, y)"},
    {"x[0s]", "rules.yml:8:17: range [0s] is empty; write a positive duration at column 2 of "
	      "expr"},
    {"x[5m", "rules.yml:8:17: unexpected end of expr at column 5 of expr, expected \"]\""},
    {"x[5m:1m]", "rules.yml:8:17: subqueries are not supported at column 5 of expr, expected "
		 "\"]\""},
    {"(x)[5m]", "rules.yml:8:17: range \"[\" after an expression at column 4 of expr, "
		"expected a range right after a metric selector, like x[5m]"},
    {"x[5m][5m]", "rules.yml:8:17: range \"[\" after a range at column 6 of expr, expected a "
		  "range right after a metric selector, like x[5m]"},
    {"sum(x) offset 5m", "rules.yml:8:17: unexpected identifier \"offset\" at column 8 of "
			 "expr, expected an operator or end of expr"},
    {"x offset -5m", "rules.yml:8:17: negative offset is not supported at column 10 of expr"},
    {"x @ 100", "rules.yml:8:17: the @ modifier is not supported at column 3 of expr"},
    {"5m", "rules.yml:8:17: duration outside a range at column 1 of expr, expected a number, "
	   "or the duration inside a range like x[5m]"},
    {"{a=\"\"}", "rules.yml:8:17: selector matches every series at column 1 of expr, "
		 "expected at least one matcher that does not match the empty string, such as a "
		 "metric name or job=\"x\""},
    {"{a=~\".*\"}", "rules.yml:8:17: selector matches every series at column 1 of expr, "
		    "expected at least one matcher that does not match the empty string, such as "
		    "a metric name or job=\"x\""},
    {"x{__name__=\"y\"}", "rules.yml:8:17: metric name given twice at column 1 of expr, "
			  "expected either a name before \"{\" or a __name__ matcher"},
    {"x{a=~\"(\"}", "rules.yml:8:17: invalid regex \"(\" for label a (Unmatched ( or \\() at "
		    "column 6 of expr, expected a POSIX extended regular expression (plus (?i), "
		    "(?:...) and \\d)"},
    /* glibc's regcomp() needs memory exponential in a run of repetition operators. */
    {"x{a=~\"b++++\"}",
     "rules.yml:8:17: invalid regex \"b++++\" for label a (invalid nested "
     "repetition operator at offset 2; put the inner repetition in a group) at "
     "column 6 of expr, expected a POSIX extended regular expression (plus (?i), "
     "(?:...) and \\d)"},
    {"x{a=~\"b*{2}\"}",
     "rules.yml:8:17: invalid regex \"b*{2}\" for label a (invalid nested "
     "repetition operator at offset 2; put the inner repetition in a group) at "
     "column 6 of expr, expected a POSIX extended regular expression (plus (?i), "
     "(?:...) and \\d)"},
    {"a + group_left b", "rules.yml:8:17: group_left (many-to-one matching) is not supported "
			 "at column 5 of expr, expected one-to-one matching only: make both sides "
			 "unique on the matching labels with on(...) or ignoring(...), for "
			 "instance by aggregating one side"},
    {"a * on(x) group_right(y) b",
     "rules.yml:8:17: group_right (many-to-one matching) is not supported at column 11 of "
     "expr, expected one-to-one matching only: make both sides unique on the matching labels "
     "with on(...) or ignoring(...), for instance by aggregating one side"},
    {"a + bool b", "rules.yml:8:17: bool after \"+\" at column 5 of expr, expected bool only "
		   "after ==, !=, >, <, >= or <="},
    {"a + on(x b", "rules.yml:8:17: unexpected identifier \"b\" at column 10 of expr, "
		   "expected \",\" or \")\""},
    {"sum by job (x)", "rules.yml:8:17: unexpected identifier \"job\" at column 8 of expr, "
		       "expected \"(\" and a list of label names"},
    {"sum by (job) by (x) (y)", "rules.yml:8:17: grouping given twice at column 14 of expr, "
				"expected by or without either before or after the argument"},
    {"sum by (job) x", "rules.yml:8:17: unexpected identifier \"x\" at column 14 of expr, "
		       "expected \"(\" and the vector to aggregate"},
    {"stddev(x)", "rules.yml:8:17: aggregation \"stddev\" is not supported at column 1 of "
		  "expr, expected one of sum, avg, min, max, count, topk, bottomk"},
    {"foo(x)", "rules.yml:8:17: unknown or unsupported function \"foo\" at column 1 of expr, "
	       "expected one of abs, absent, absent_over_time, avg_over_time, clamp_max, "
	       "clamp_min, count_over_time, delta, increase, irate, last_over_time, "
	       "max_over_time, min_over_time, quantile_over_time, rate, sum_over_time, time"},
    {"rate(x[5m]", "rules.yml:8:17: unexpected end of expr at column 11 of expr, expected "
		   "\",\" or \")\""},
    /* types */
    {"rate(x)", "rules.yml:8:17: argument 1 of rate() is an instant vector at column 6 of "
		"expr, expected a range vector, like x[5m]"},
    {"abs(x[5m])", "rules.yml:8:17: argument 1 of abs() is a range vector at column 5 of "
		   "expr, expected an instant vector"},
    {"clamp_min(x, \"0\")", "rules.yml:8:17: argument 2 of clamp_min() is a string at column "
			    "14 of expr, expected a scalar, like 0.9"},
    {"clamp_max(x, y)", "rules.yml:8:17: argument 2 of clamp_max() is an instant vector at "
			"column 14 of expr, expected a scalar, like 0.9"},
    {"quantile_over_time(x[5m], 0.5)",
     "rules.yml:8:17: argument 1 of quantile_over_time() is a range vector at column 20 of "
     "expr, expected a scalar, like 0.9"},
    {"rate(x[5m], 1)", "rules.yml:8:17: rate() called with 2 arguments at column 1 of expr, "
		       "expected 1 argument"},
    {"time(1)", "rules.yml:8:17: time() called with 1 argument at column 1 of expr, expected "
		"0 arguments"},
    {"clamp_min(x)", "rules.yml:8:17: clamp_min() called with 1 argument at column 1 of expr, "
		     "expected 2 arguments"},
    {"sum(x[5m])", "rules.yml:8:17: the argument of sum() is a range vector at column 5 of "
		   "expr, expected an instant vector"},
    {"sum(1, x)", "rules.yml:8:17: sum() called with 2 arguments at column 1 of expr, "
		  "expected 1 argument: an instant vector"},
    {"topk(x)", "rules.yml:8:17: topk() called with 1 argument at column 1 of expr, expected "
		"2 arguments: the number of series k and an instant vector"},
    {"topk(x, 3)", "rules.yml:8:17: k of topk/bottomk is an instant vector at column 6 of "
		   "expr, expected a scalar, like 0.9"},
    {"x + y[5m]", "rules.yml:8:17: right side of \"+\" is a range vector at column 5 of expr, "
		  "expected a scalar or an instant vector; apply a function such as rate() or "
		  "avg_over_time() to a range first"},
    {"\"a\" * 2", "rules.yml:8:17: left side of \"*\" is a string at column 1 of expr, "
		  "expected a scalar or an instant vector"},
    {"1 > 2", "rules.yml:8:17: comparison \">\" between two scalars at column 3 of expr, "
	      "expected bool after the operator, as in 1 > bool 0"},
    {"a and 1", "rules.yml:8:17: right side of \"and\" is a scalar at column 7 of expr, "
		"expected instant vectors on both sides"},
    {"1 or a", "rules.yml:8:17: left side of \"or\" is a scalar at column 1 of expr, expected "
	       "instant vectors on both sides"},
    {"a + on(x) 1", "rules.yml:8:17: vector matching with a scalar operand at column 3 of "
		    "expr, expected instant vectors on both sides of on() or ignoring()"},
    {"-x[5m]", "rules.yml:8:17: unary - applied to a range vector at column 2 of expr, "
	       "expected a scalar or an instant vector"},
};

static void errors_name_position_and_fix(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
		const struct error_case *c = &error_cases[i];
		char *error = NULL;
		struct expr *e = expr_parse(c->text, &rules_yml, &error);

		if (e != NULL)
			fail_msg("%s: parsed, expected error %s", c->text, c->message);
		if (strcmp(error, c->message) != 0)
			fail_msg("%s:\n got      %s\n expected %s", c->text, error, c->message);
		free(error);
	}
}

static void error_without_location_has_no_prefix(void **state)
{
	char *error = NULL;

	(void)state;
	assert_null(expr_parse("rate(x)", NULL, &error));
	assert_string_equal(error, "argument 1 of rate() is an instant vector at column 6 of "
				   "expr, expected a range vector, like x[5m]");
	free(error);
}

static void column_counts_characters_not_bytes(void **state)
{
	char *error = NULL;

	(void)state;
	assert_null(expr_parse("x{a=\"\xc3\xa9\xc3\xa9\"} +", &rules_yml, &error));
	assert_string_equal(error, "rules.yml:8:17: unexpected end of expr at column 12 of expr, "
				   "expected an expression: a number, a string, a selector, a "
				   "function, an aggregation or \"(\"");
	free(error);
}

struct history_case {
	const char *text;
	int64_t history_ms;
};

static void history_covers_longest_range(void **state)
{
	static const struct history_case cases[] = {
	    {"1 + 1", 0},
	    {"up", EXPR_LOOKBACK_MS},
	    {"rate(x[1m])", 60000},
	    {"rate(x[1h]) / rate(y[5m])", 3600000},
	    {"x offset 1h", 3600000 + EXPR_LOOKBACK_MS},
	    {"sum(max_over_time(x[2h] offset 30m))", 9000000},
	    {"topk(3, x[10m:] )", -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *error = NULL;
		struct expr *e = expr_parse(cases[i].text, NULL, &error);

		if (cases[i].history_ms < 0) {
			assert_null(e);
			free(error);
			continue;
		}
		if (e == NULL)
			fail_msg("%s: %s", cases[i].text, error);
		if (expr_history_ms(e) != cases[i].history_ms)
			fail_msg("%s: history %lld, expected %lld", cases[i].text,
				 (long long)expr_history_ms(e), (long long)cases[i].history_ms);
		expr_free(e);
	}
}

/*
 * 200 nested operators. Walking each side once per level ends at once, but walking it
 * twice per level takes 2^200 steps.
 */
static void history_of_deep_expression(void **state)
{
	char text[512];
	char *error = NULL;
	struct expr *e;
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 200; i++)
		text[n++] = '-';
	strcpy(text + n, "rate(x[1h] offset 5m)");
	e = expr_parse(text, NULL, &error);
	if (e == NULL)
		fail_msg("unary minus chain: %s", error);
	assert_int_equal(expr_history_ms(e), 3900000);
	expr_free(e);

	n = 0;
	for (int i = 0; i < 100; i++) {
		memcpy(text + n, "a + ", 4);
		n += 4;
	}
	strcpy(text + n, "rate(b[2h])");
	e = expr_parse(text, NULL, &error);
	if (e == NULL)
		fail_msg("binary chain: %s", error);
	assert_int_equal(expr_history_ms(e), 7200000);
	expr_free(e);
}

struct regex_case {
	const char *matcher;
	const char *value;
	bool matches;
};

static void regex_matchers_are_anchored_re2_subset(void **state)
{
	static const struct regex_case cases[] = {
	    {"x{a=~\"b.*\"}", "bc", true},
	    {"x{a=~\"b.*\"}", "abc", false},
	    {"x{a=~\"b|c\"}", "c", true},
	    {"x{a=~\"b|c\"}", "bc", false},
	    {"x{a=~\"\\\\d+\"}", "123", true},
	    {"x{a=~\"\\\\d+\"}", "12a", false},
	    {"x{a=~\"(?:ab)+\"}", "abab", true},
	    {"x{a=~\"(?i)abc\"}", "ABC", true},
	    {"x{a!~\"b.*\"}", "bc", false},
	    {"x{a!~\"b.*\"}", "", true},
	    {"x{a=~\"[\\\\d.]+\"}", "1.5", true},
	    {"x{a=~\"[]a]\"}", "]", true},
	    {"x{a=~\"b{2}?\"}", "bb", true},
	    {"x{a=~\"b+?c\"}", "bbc", true},
	    {"x{a=~\"[+*]+\"}", "+*", true},
	    {"x{a=~\"\\\\++\"}", "++", true},
	    {"x{a=\"\"}", "", true},
	    {"x{a!=\"\"}", "", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *error = NULL;
		struct expr *e = expr_parse(cases[i].matcher, NULL, &error);
		const struct expr_matcher *m;

		if (e == NULL)
			fail_msg("%s: %s", cases[i].matcher, error);
		/* The label matcher follows the metric name's matcher. */
		m = &e->root->matchers[1];
		if (expr_matcher_matches(m, cases[i].value) != cases[i].matches)
			fail_msg("%s on \"%s\": expected %s", cases[i].matcher, cases[i].value,
				 cases[i].matches ? "a match" : "no match");
		expr_free(e);
	}
}

/* Returns count copies of prefix, then core, then count copies of suffix. */
static char *repeat_around(const char *prefix, const char *core, const char *suffix, size_t count)
{
	size_t size = count * (strlen(prefix) + strlen(suffix)) + strlen(core) + 1;
	char *text = malloc(size);
	char *w = text;

	assert_non_null(text);
	for (size_t i = 0; i < count; i++)
		w += sprintf(w, "%s", prefix);
	w += sprintf(w, "%s", core);
	for (size_t i = 0; i < count; i++)
		w += sprintf(w, "%s", suffix);
	return text;
}

static void nesting_deeper_than_limit_rejected(void **state)
{
	/* Each of these overflowed the stack before the depth was bounded. Such an expression
	 * can come from a rule file or from any client of /api/v1/query. */
	static const struct {
		const char *prefix, *core, *suffix;
		size_t count;
		const char *column;
	} cases[] = {
	    {"(", "1", ")", 100000, "column 1001"}, {"-", "1", "", 100000, "column 1001"},
	    {"2^", "1", "", 100000, "column 1001"}, {"abs(", "x", ")", 100000, "column 4001"},
	    {"x+", "x", "", 100000, "column 1999"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text =
		    repeat_around(cases[i].prefix, cases[i].core, cases[i].suffix, cases[i].count);
		char *error = NULL;
		char expected[256];

		assert_null(expr_parse(text, &rules_yml, &error));
		snprintf(expected, sizeof expected,
			 "rules.yml:8:17: expression nested deeper than 1000 levels at %s of expr, "
			 "expected fewer nested parentheses, signs and function calls, or an "
			 "aggregation such as sum() in place of a long chain of operators",
			 cases[i].column);
		assert_string_equal(error, expected);
		free(error);
		free(text);
	}
}

static void nesting_up_to_limit_accepted(void **state)
{
	char *parens = repeat_around("(", "x", ")", 998);
	char *chain = repeat_around("x + ", "x", "", 500);
	char *error = NULL;
	struct expr *e;

	(void)state;
	e = expr_parse(parens, NULL, &error);
	if (e == NULL)
		fail_msg("998 parentheses: %s", error);
	assert_int_equal(expr_history_ms(e), EXPR_LOOKBACK_MS);
	expr_free(e);

	e = expr_parse(chain, NULL, &error);
	if (e == NULL)
		fail_msg("a sum of 501 terms: %s", error);
	assert_int_equal(expr_history_ms(e), EXPR_LOOKBACK_MS);
	expr_free(e);
	free(parens);
	free(chain);
}

static void regex_groups_nested_deeper_rejected(void **state)
{
	/* 30,000 nested groups overflowed regcomp()'s stack; silences and queries send them. */
	char *deep = repeat_around("(", "x", ")", 30000);
	char *limit = repeat_around("(", "x", ")", 1000);
	char why[256];
	void *regex = NULL;

	(void)state;
	assert_int_equal(expr_regex_compile(deep, &regex, why, sizeof why), -1);
	assert_null(regex);
	assert_string_equal(why,
			    "groups nested deeper than 1000 at offset 1000; nest fewer groups");

	assert_int_equal(expr_regex_compile(limit, &regex, why, sizeof why), 0);
	assert_non_null(regex);
	expr_regex_free(regex);
	free(deep);
	free(limit);
}

/* Which metric names a parsed expression can select, by name matchers alone. */
static void may_select_by_metric_name(void **state)
{
	static const struct {
		const char *text;
		const char *metric;
		bool expected;
	} cases[] = {
	    {"tocsin_probe_success{probe=\"a\"} == 0", "tocsin_probe_success", true},
	    {"tocsin_probe_success{probe=\"a\"} == 0", "probe_success", false},
	    {"sum by (job) (rate(node_cpu_seconds_total[5m])) > on (job) up", "up", true},
	    {"{__name__=~\"tocsin_probe_.*\"}", "tocsin_probe_up", true},
	    {"{__name__!=\"tocsin_probe_up\", job=\"a\"}", "tocsin_probe_up", false},
	    {"{job=\"a\"}", "anything", true},
	    {"time() > bool 5", "tocsin_probe_up", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *error = NULL;
		struct expr *e = expr_parse(cases[i].text, NULL, &error);

		if (e == NULL)
			fail_msg("%s: %s", cases[i].text, error);
		if (expr_may_select(e, cases[i].metric) != cases[i].expected)
			fail_msg("%s with %s: expected %d", cases[i].text, cases[i].metric,
				 cases[i].expected);
		expr_free(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(constructs_parse_to_canonical_form),
	    cmocka_unit_test(canonical_form_parses_to_itself),
	    cmocka_unit_test(errors_name_position_and_fix),
	    cmocka_unit_test(error_without_location_has_no_prefix),
	    cmocka_unit_test(column_counts_characters_not_bytes),
	    cmocka_unit_test(history_covers_longest_range),
	    cmocka_unit_test(regex_matchers_are_anchored_re2_subset),
	    cmocka_unit_test(history_of_deep_expression),
	    cmocka_unit_test(nesting_deeper_than_limit_rejected),
	    cmocka_unit_test(nesting_up_to_limit_accepted),
	    cmocka_unit_test(regex_groups_nested_deeper_rejected),
	    cmocka_unit_test(may_select_by_metric_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
