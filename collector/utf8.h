/*
 * UTF-8 checks for text that leaves tocsind as a label value, HELP text or log field.
 */
#ifndef TOCSIN_UTF8_H
#define TOCSIN_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when the NUL-terminated text is valid UTF-8 (no overlong forms or surrogates). */
bool utf8_valid(const char *text);

/*
 * Replaces, in place, each byte that is not part of a valid UTF-8 sequence with '?'.
 * Returns how many bytes were replaced.
 */
size_t utf8_repair(char *text);

#endif
