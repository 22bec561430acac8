/*
 * POSIX extended regexes from configs, rules and API requests, compiled with a bound on
 * their nesting. glibc's regcomp() recurses once per nested group, so a pattern of
 * 30,000 nested groups, which fits in one request or config line, overflows the stack
 * and kills the daemon.
 */
#ifndef TOCSIN_POSIX_REGEX_H
#define TOCSIN_POSIX_REGEX_H

#include <regex.h>
#include <stddef.h>

#define POSIX_REGEX_MAX_GROUP_DEPTH 1000

/*
 * Checks that `pattern` nests groups at most POSIX_REGEX_MAX_GROUP_DEPTH deep, counting
 * parentheses outside bracket expressions and escapes. Returns 0, or -1 with the reason
 * and the offset of the group that goes too deep in why.
 */
int posix_regex_check_depth(const char *pattern, char *why, size_t size);

/*
 * Runs posix_regex_check_depth(), then regcomp(). Returns 0 with *re compiled, or -1 with
 * the reason in why (and nothing to free).
 */
int posix_regex_compile(regex_t *re, const char *pattern, int flags, char *why, size_t size);

#endif
