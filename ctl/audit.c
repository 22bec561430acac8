/*
 * The audit commands: `audit` lists the newest records of tocsind's audit trail, and
 * `audit verify` has the daemon check the hash chain and exits 1 when the chain is broken.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/xalloc.h"
#include "ctl/commands.h"
#include "ctl/format.h"
#include "ctl/table.h"

/* Max code points of the DETAIL column. A longer detail ends in "...", and --json prints it
 * whole. */
#define CTL_AUDIT_DETAIL_WIDTH 60

/* Returns the first CTL_AUDIT_DETAIL_WIDTH code points of text, plus "..." when it was cut.
 * The caller frees the result. */
static char *shorten(const char *text)
{
	size_t points = 0;
	size_t i = 0;

	for (; text[i] != '\0'; i++) {
		/* Count lead bytes only, so the cut never splits a UTF-8 sequence. */
		if (((unsigned char)text[i] & 0xC0) == 0x80)
			continue;
		if (points == CTL_AUDIT_DETAIL_WIDTH)
			return xasprintf("%.*s...", (int)i, text);
		points++;
	}
	return xstrdup(text);
}

static void add_record_row(struct ctl_table *t, const json_t *record)
{
	const json_t *detail = json_object_get(record, "detail");
	char *detail_text =
	    detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	char *short_detail = shorten(detail_text != NULL ? detail_text : "");
	char *id =
	    xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(record, "id")));
	const char *remote = ctl_json_string(record, "remote");
	const char *row[] = {
	    id,
	    ctl_json_string(record, "time"),
	    ctl_json_string(record, "actor"),
	    remote != NULL && remote[0] != '\0' ? remote : NULL,
	    ctl_json_string(record, "action"),
	    short_detail,
	};

	ctl_table_add_row(t, row);
	free(id);
	free(short_detail);
	free(detail_text);
}

int ctl_run_audit(struct ctl_context *ctx, char **args, size_t count)
{
	static const char *const header[] = {"ID", "TIME", "ACTOR", "REMOTE", "ACTION", "DETAIL"};
	(void)args;
	(void)count;
	const char *limit = ctx->options.limit;
	struct ctl_param params[] = {{"limit", limit}};

	/* The server checks the range (1 to 1000) and names the parameter when the value is out of range. */
	if (limit != NULL && (limit[0] == '\0' || strspn(limit, "0123456789") != strlen(limit))) {
		fprintf(stderr,
			"tocsinctl: invalid --limit \"%s\": expected the number of records, 1 to "
			"1000\n",
			limit);
		return CTL_EXIT_USAGE;
	}

	json_t *data;
	int rc = ctl_client_call(&ctx->client, "GET", "/audit", params, limit != NULL ? 1 : 0, NULL,
				 &data);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctx->options.json) {
		rc = ctl_print_json(data) == 0 ? CTL_EXIT_OK : CTL_EXIT_SERVER;
		json_decref(data);
		return rc;
	}

	struct ctl_table *t = ctl_table_new(6, header);
	size_t i;
	json_t *record;
	json_array_foreach(data, i, record) add_record_row(t, record);
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	json_decref(data);
	return CTL_EXIT_OK;
}

int ctl_run_audit_verify(struct ctl_context *ctx, char **args, size_t count)
{
	(void)args;
	(void)count;
	json_t *data;
	int rc = ctl_client_call(&ctx->client, "GET", "/audit/verify", NULL, 0, NULL, &data);
	if (rc != CTL_EXIT_OK)
		return rc;

	bool intact = json_is_true(json_object_get(data, "intact"));
	if (ctx->options.json) {
		rc = ctl_print_json(data) == 0 ? CTL_EXIT_OK : CTL_EXIT_SERVER;
	} else if (intact) {
		printf("audit trail intact: %" JSON_INTEGER_FORMAT " records\n",
		       json_integer_value(json_object_get(data, "records")));
	} else {
		const char *detail = ctl_json_string(data, "detail");
		printf("audit trail broken at record %" JSON_INTEGER_FORMAT ": %s\n",
		       json_integer_value(json_object_get(data, "firstBadId")),
		       detail != NULL ? detail : "no detail");
	}
	json_decref(data);
	if (rc == CTL_EXIT_OK && !intact)
		rc = CTL_EXIT_SERVER;
	return rc;
}
