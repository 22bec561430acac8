/*
 * Fuzz target: the rule expression parser. A parsed expression is also formatted and the
 * canonical text parsed again, because expr_format() promises text that parses back.
 */
#include "collector/expr.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct expr_location loc = {"fuzz.yml", 1, 1};
	char *text = fuzz_text(data, size);
	char *error = NULL;
	struct expr *e;

	fuzz_quiet_log();
	e = expr_parse(text, &loc, &error);
	if (e != NULL) {
		struct expr_selector sel;
		char *canonical = expr_format(e);
		char *again_error = NULL;
		struct expr *again;

		(void)expr_result_type(e);
		(void)expr_history_ms(e);
		(void)expr_as_selector(e, &sel);
		again = expr_parse(canonical, NULL, &again_error);
		if (again == NULL)
			abort(); /* the canonical form of a valid expression must parse */
		expr_free(again);
		free(canonical);
		expr_free(e);
	}
	free(error);
	free(text);
	return 0;
}
