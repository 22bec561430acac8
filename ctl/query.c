/*
 * The `query` command: evaluates an expression of the rule language at one time through
 * GET /api/v1/query and prints the result by its type (vector, scalar, string, matrix).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/xalloc.h"
#include "ctl/commands.h"
#include "ctl/format.h"
#include "ctl/table.h"

/* Reads a sample pair [UNIX_SECONDS, "VALUE"] into text cells. */
static void sample_cells(const json_t *pair, char *time_buf, size_t size, const char **value)
{
	json_t *t = json_array_get(pair, 0);
	if (json_is_number(t))
		snprintf(time_buf, size, "%.3f", json_number_value(t));
	else
		snprintf(time_buf, size, "-");
	*value = json_string_value(json_array_get(pair, 1));
}

static void print_vector(const json_t *result)
{
	static const char *const header[] = {"METRIC", "VALUE"};
	struct ctl_table *t = ctl_table_new(2, header);
	size_t i;
	json_t *sample;

	json_array_foreach(result, i, sample)
	{
		char *metric = ctl_format_labels(json_object_get(sample, "metric"), true);
		char time_buf[64];
		const char *value;
		sample_cells(json_object_get(sample, "value"), time_buf, sizeof(time_buf), &value);
		const char *row[] = {metric, value};
		ctl_table_add_row(t, row);
		free(metric);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static void print_matrix(const json_t *result)
{
	static const char *const header[] = {"METRIC", "TIME", "VALUE"};
	struct ctl_table *t = ctl_table_new(3, header);
	size_t i;
	json_t *series;

	json_array_foreach(result, i, series)
	{
		char *metric = ctl_format_labels(json_object_get(series, "metric"), true);
		size_t j;
		json_t *pair;
		json_array_foreach(json_object_get(series, "values"), j, pair)
		{
			char time_buf[64];
			const char *value;
			sample_cells(pair, time_buf, sizeof(time_buf), &value);
			const char *row[] = {metric, time_buf, value};
			ctl_table_add_row(t, row);
		}
		free(metric);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static void print_single(const json_t *pair)
{
	static const char *const header[] = {"TIME", "VALUE"};
	struct ctl_table *t = ctl_table_new(2, header);
	char time_buf[64];
	const char *value;

	sample_cells(pair, time_buf, sizeof(time_buf), &value);
	const char *row[] = {time_buf, value};
	ctl_table_add_row(t, row);
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

int ctl_run_query(struct ctl_context *ctx, char **args, size_t count)
{
	(void)count;
	struct ctl_param params[2] = {{"query", args[0]}, {"time", ctx->options.time}};
	size_t param_count = ctx->options.time != NULL ? 2 : 1;

	json_t *data;
	int rc = ctl_client_call(&ctx->client, "GET", "/query", params, param_count, NULL, &data);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctx->options.json) {
		rc = ctl_print_json(data) == 0 ? CTL_EXIT_OK : CTL_EXIT_SERVER;
		json_decref(data);
		return rc;
	}

	const char *type = ctl_json_string(data, "resultType");
	const json_t *result = json_object_get(data, "result");
	if (type != NULL && strcmp(type, "vector") == 0) {
		print_vector(result);
	} else if (type != NULL && strcmp(type, "matrix") == 0) {
		print_matrix(result);
	} else if (type != NULL && (strcmp(type, "scalar") == 0 || strcmp(type, "string") == 0)) {
		print_single(result);
	} else {
		fprintf(stderr,
			"tocsinctl: GET /api/v1/query: unknown resultType \"%s\"; use --json "
			"to see the reply\n",
			type != NULL ? type : "");
		rc = CTL_EXIT_SERVER;
	}
	json_decref(data);
	return rc;
}
