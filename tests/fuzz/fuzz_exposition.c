/*
 * Fuzz target: the Prometheus text exposition parser that reads exec probes' output. The
 * bytes go in without a terminating NUL, as the probe passes its output buffer.
 */
#include "probes/exposition_parse.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size heap copy, so ASan reports any read past `length`. */
	char *text = malloc(size > 0 ? size : 1);
	struct exposition_doc doc = {0};
	char error[EXPOSITION_PARSE_ERROR_SIZE];

	if (text == NULL)
		abort();
	fuzz_quiet_log();
	memcpy(text, data, size);
	if (exposition_parse(text, size, &doc, error, sizeof(error)) == 0)
		exposition_doc_free(&doc);
	free(text);
	return 0;
}
