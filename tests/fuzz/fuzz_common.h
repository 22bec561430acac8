/*
 * Helpers shared by the libFuzzer targets: the parsers take NUL-terminated text, so each
 * target copies the fuzzer's bytes into a fresh buffer. Log output is cut to errors, so
 * a long run does not fill the terminal with the parsers' warnings.
 */
#ifndef TOCSIN_FUZZ_COMMON_H
#define TOCSIN_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns a NUL-terminated copy of the input (caller frees). Embedded NULs stay in it. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	return text;
}

static inline void fuzz_quiet_log(void)
{
	log_set_level(LOG_LEVEL_ERROR);
}

#endif
