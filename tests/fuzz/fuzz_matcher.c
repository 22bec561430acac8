/*
 * Fuzz target: the alerter's matcher strings (`{severity="page", env!~"test.*"}`). A parsed
 * set is formatted and matched against a few labels.
 */
#include "alerter/matcher.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct label labels[] = {
	    {"alertname", "HighLatency"},
	    {"env", "prod"},
	    {"severity", "page"},
	};
	char *text = fuzz_text(data, size);
	struct matcher_set set = {0};
	char error[256];

	fuzz_quiet_log();
	if (matcher_parse(text, &set, error, sizeof(error)) == 0) {
		char *formatted = matcher_set_format(&set);

		(void)matcher_set_matches(&set, labels, 3);
		free(formatted);
	}
	matcher_set_clear(&set);
	free(text);
	return 0;
}
