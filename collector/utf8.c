/*
 * UTF-8 validation and repair for text that becomes a label value, a HELP text or a log
 * field: kernel names, plugin output and server messages are arbitrary bytes, while the
 * Prometheus text format and most log pipelines require UTF-8.
 */
#include "collector/utf8.h"

#include <stdbool.h>

static bool is_continuation(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/* Length of the valid UTF-8 sequence at p (no overlong forms, surrogates or > U+10FFFF), or 0. */
static size_t utf8_sequence_length(const unsigned char *p)
{
	unsigned char low = 0x80;
	unsigned char high = 0xBF;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		return is_continuation(p[1]) ? 2 : 0;
	if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		if (p[0] == 0xE0)
			low = 0xA0;
		if (p[0] == 0xED)
			high = 0x9F;
		return p[1] >= low && p[1] <= high && is_continuation(p[2]) ? 3 : 0;
	}
	if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		if (p[0] == 0xF0)
			low = 0x90;
		if (p[0] == 0xF4)
			high = 0x8F;
		return p[1] >= low && p[1] <= high && is_continuation(p[2]) && is_continuation(p[3])
			   ? 4
			   : 0;
	}
	return 0;
}

size_t utf8_repair(char *text)
{
	unsigned char *p = (unsigned char *)text;
	size_t replaced = 0;

	/* The terminating NUL is not a continuation byte, so no look-ahead passes the end. */
	while (*p != '\0') {
		size_t length = utf8_sequence_length(p);

		if (length == 0) {
			*p++ = '?';
			replaced++;
			continue;
		}
		p += length;
	}
	return replaced;
}

bool utf8_valid(const char *text)
{
	const unsigned char *p = (const unsigned char *)text;

	while (*p != '\0') {
		size_t length = utf8_sequence_length(p);

		if (length == 0)
			return false;
		p += length;
	}
	return true;
}
