/* Bounded compilation of POSIX extended regexes; see posix_regex.h. */
#include "collector/posix_regex.h"

#include <stdio.h>
#include <string.h>

/* Returns the end of the bracket expression that starts at s[0] == '[', or the end of
 * the pattern when it is not closed (regcomp() reports that). */
static const char *bracket_end(const char *s)
{
	s++;
	if (*s == '^')
		s++;
	if (*s == ']')
		s++; /* a leading ']' is a member, not the end */
	while (*s != '\0' && *s != ']') {
		/* [:class:], [.coll.] and [=equiv=] may contain ']'. */
		if (s[0] == '[' && (s[1] == ':' || s[1] == '.' || s[1] == '=')) {
			char close[3] = {s[1], ']', '\0'};
			const char *end = strstr(s + 2, close);

			if (end == NULL)
				return s + strlen(s);
			s = end + 2;
			continue;
		}
		s++;
	}
	return s;
}

int posix_regex_check_depth(const char *pattern, char *why, size_t size)
{
	unsigned depth = 0;

	for (const char *s = pattern; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] != '\0') {
			s++;
		} else if (s[0] == '[') {
			s = bracket_end(s);
			if (*s == '\0')
				break;
		} else if (s[0] == '(') {
			if (++depth > POSIX_REGEX_MAX_GROUP_DEPTH) {
				snprintf(why, size,
					 "groups nested deeper than %d at offset %zu; nest fewer "
					 "groups",
					 POSIX_REGEX_MAX_GROUP_DEPTH, (size_t)(s - pattern));
				return -1;
			}
		} else if (s[0] == ')' && depth > 0) {
			depth--;
		}
	}
	return 0;
}

int posix_regex_compile(regex_t *re, const char *pattern, int flags, char *why, size_t size)
{
	int err;

	if (posix_regex_check_depth(pattern, why, size) < 0)
		return -1;
	err = regcomp(re, pattern, flags);
	if (err != 0) {
		regerror(err, re, why, size);
		return -1;
	}
	return 0;
}
