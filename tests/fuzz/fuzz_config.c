/* Fuzz target: the YAML config loader, config_load_string(), on the whole file text. */
#include "collector/config.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	char *errors = NULL;
	struct config *cfg;

	fuzz_quiet_log();
	cfg = config_load_string("fuzz.yml", text, &errors);
	config_free(cfg);
	free(errors);
	free(text);
	return 0;
}
