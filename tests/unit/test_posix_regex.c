/*
 * Unit tests of the bounded regex compilation: how groups are counted (escapes and
 * bracket expressions do not open groups), and that a pattern nested past the bound is
 * rejected before regcomp() could overflow its stack.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/posix_regex.h"

/* Returns "((...(x)...))" with `depth` groups, prefixed by `prefix`; caller frees. */
static char *nested(const char *prefix, size_t depth)
{
	size_t plen = strlen(prefix);
	char *s = malloc(plen + 2 * depth + 2);

	memcpy(s, prefix, plen);
	memset(s + plen, '(', depth);
	s[plen + depth] = 'x';
	memset(s + plen + depth + 1, ')', depth);
	s[plen + 2 * depth + 1] = '\0';
	return s;
}

static void depth_at_bound_compiles(void **state)
{
	char *re = nested("", POSIX_REGEX_MAX_GROUP_DEPTH);
	char why[128];
	regex_t compiled;

	(void)state;
	assert_int_equal(
	    posix_regex_compile(&compiled, re, REG_EXTENDED | REG_NOSUB, why, sizeof(why)), 0);
	assert_int_equal(regexec(&compiled, "x", 0, NULL, 0), 0);
	regfree(&compiled);
	free(re);
}

static void depth_past_bound_rejected(void **state)
{
	char *re = nested("ab", 30000);
	char why[128];
	regex_t compiled;

	(void)state;
	assert_int_equal(posix_regex_compile(&compiled, re, REG_EXTENDED, why, sizeof(why)), -1);
	/* The 1001st '(' is at offset 2 + 1000. */
	assert_string_equal(why,
			    "groups nested deeper than 1000 at offset 1002; nest fewer groups");
	free(re);
}

static void escapes_and_brackets_open_no_group(void **state)
{
	char why[128];
	char *deep = nested("", POSIX_REGEX_MAX_GROUP_DEPTH);
	/* Parentheses in brackets and escapes are literals: prefixing them keeps the depth. */
	const char *prefixes[] = {"\\(", "[(]", "[](]", "[^(]", "[[:alpha:](]", "[[.(.]]"};

	(void)state;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t len = strlen(prefixes[i]) + strlen(deep) + 1;
		char *re = malloc(len);

		strcpy(re, prefixes[i]);
		strcat(re, deep);
		if (posix_regex_check_depth(re, why, sizeof(why)) != 0)
			fail_msg("%s...: %s", prefixes[i], why);
		free(re);
	}
	/* Closed groups do not count towards the depth of later ones. */
	assert_int_equal(posix_regex_check_depth("(a)(b)(c)", why, sizeof(why)), 0);
	free(deep);
}

static void regcomp_error_reported(void **state)
{
	char why[128] = "";
	regex_t compiled;

	(void)state;
	assert_int_equal(posix_regex_compile(&compiled, "a(b", REG_EXTENDED, why, sizeof(why)), -1);
	assert_true(strlen(why) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(depth_at_bound_compiles),
	    cmocka_unit_test(depth_past_bound_rejected),
	    cmocka_unit_test(escapes_and_brackets_open_no_group),
	    cmocka_unit_test(regcomp_error_reported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
