/* Fuzz target: alerting rule templates, parsed and then rendered with a few labels. */
#include "collector/template.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct label labels[] = {
	    {"instance", "db1:5432"},
	    {"job", "postgres"},
	    {"severity", "page"},
	};
	static const struct label external[] = {{"cluster", "eu-1"}};
	struct template_data td = {labels, 3, 0.25, external, 1};
	char *text = fuzz_text(data, size);
	char *error = NULL;
	struct template *t;

	fuzz_quiet_log();
	t = template_parse(text, NULL, &error);
	if (t != NULL) {
		char *render_error = NULL;
		char *out = template_render(t, &td, &render_error);

		free(out);
		free(render_error);
		template_free(t);
	}
	free(error);
	free(text);
	return 0;
}
