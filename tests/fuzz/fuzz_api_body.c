/*
 * Fuzz target: the JSON body of POST /api/v1/silences. It follows the handler's steps
 * without a connection: the size limit and json_loadb() call of api_read_json_body(),
 * each matcher through api_read_silence_matcher(), and the times through api_parse_time().
 */
#include <jansson.h>

#include "alerter/silence.h"
#include "tests/fuzz/fuzz_common.h"
#include "web/api_impl.h"

static void read_time(json_t *body, const char *field)
{
	json_t *v = json_object_get(body, field);
	int64_t ms;

	if (json_is_string(v))
		(void)api_parse_time(json_string_value(v), &ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t err;
	json_t *body;
	json_t *list;

	if (size > API_MAX_BODY_SIZE)
		return 0;
	fuzz_quiet_log();
	body = json_loadb((const char *)data, size, 0, &err);
	if (body == NULL)
		return 0;
	list = json_object_get(body, "matchers");
	for (size_t i = 0; i < json_array_size(list); i++) {
		struct silence_matcher m = {0};
		char *error = NULL;

		if (api_read_silence_matcher(json_array_get(list, i), i, &m, &error) == 0)
			silence_matcher_clear(&m);
		free(error);
	}
	read_time(body, "startsAt");
	read_time(body, "endsAt");
	read_time(body, "expiresAt");
	json_decref(body);
	return 0;
}
