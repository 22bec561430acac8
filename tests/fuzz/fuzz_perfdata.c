/*
 * Fuzz target: Nagios plugin output. The output is split into summary and perfdata, as
 * the exec probe does, and the perfdata part is parsed into items.
 */
#include "probes/perfdata.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct perfdata_output out = {0};
	struct perfdata_list list = {0};

	fuzz_quiet_log();
	perfdata_split_output((const char *)data, size, &out);
	perfdata_parse(out.perfdata, &list);
	perfdata_list_free(&list);
	perfdata_output_free(&out);
	return 0;
}
