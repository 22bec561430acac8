/*
 * The commands about the daemon itself: `status` (version, uptime, config, counts),
 * `probes` (each probe's health and last result) and `reload`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "collector/xalloc.h"
#include "ctl/commands.h"
#include "ctl/format.h"
#include "ctl/table.h"

static char *count_text(const json_t *counts, const char *key)
{
	json_t *value = json_object_get(counts, key);
	if (!json_is_integer(value))
		return xstrdup("-");
	return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(value));
}

static void print_status(const json_t *data)
{
	static const char *const header[] = {"FIELD", "VALUE"};
	static const char *const counts[] = {"probes", "series", "rules", "alerts", "silences"};
	struct ctl_table *t = ctl_table_new(2, header);
	char uptime[64];

	ctl_format_seconds(json_number_value(json_object_get(data, "uptimeSeconds")), uptime,
			   sizeof(uptime));
	json_t *alerting = json_object_get(data, "alerting");
	const char *alerting_text = NULL;
	if (json_is_boolean(alerting))
		alerting_text = json_is_true(alerting) ? "yes" : "no";
	const char *rows[][2] = {
	    {"version", ctl_json_string(data, "version")},
	    {"started", ctl_json_string(data, "startTime")},
	    {"uptime", uptime},
	    {"config", ctl_json_string(data, "configSource")},
	    {"config hash", ctl_json_string(data, "configHash")},
	    {"alerting", alerting_text},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ctl_table_add_row(t, rows[i]);

	const json_t *count_object = json_object_get(data, "counts");
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		char *value = count_text(count_object, counts[i]);
		const char *row[] = {counts[i], value};
		ctl_table_add_row(t, row);
		free(value);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

int ctl_run_status(struct ctl_context *ctx, char **args, size_t count)
{
	(void)args;
	(void)count;
	json_t *data;
	int rc = ctl_client_call(&ctx->client, "GET", "/status", NULL, 0, NULL, &data);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctx->options.json)
		rc = ctl_print_json(data) == 0 ? CTL_EXIT_OK : CTL_EXIT_SERVER;
	else
		print_status(data);
	json_decref(data);
	return rc;
}

static void add_probe_row(struct ctl_table *t, const json_t *probe)
{
	const json_t *last = json_object_get(probe, "lastRun");
	const char *row[] = {
	    ctl_json_string(probe, "name"),
	    ctl_json_string(probe, "type"),
	    ctl_json_string(probe, "target"),
	    ctl_json_string(probe, "health"),
	    ctl_json_string(probe, "lastStateChange"),
	    ctl_json_string(last, "status"),
	    ctl_json_string(last, "reason"),
	};
	ctl_table_add_row(t, row);
}

int ctl_run_probes(struct ctl_context *ctx, char **args, size_t count)
{
	static const char *const header[] = {"NAME",  "TYPE",   "TARGET", "HEALTH",
					     "SINCE", "STATUS", "REASON"};
	char *path;
	if (count == 1) {
		char *name = ctl_client_escape(args[0]);
		path = xasprintf("/probes/%s", name);
		free(name);
	} else {
		path = xstrdup("/probes");
	}

	json_t *data;
	int rc = ctl_client_call(&ctx->client, "GET", path, NULL, 0, NULL, &data);
	free(path);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctx->options.json) {
		rc = ctl_print_json(data) == 0 ? CTL_EXIT_OK : CTL_EXIT_SERVER;
		json_decref(data);
		return rc;
	}

	struct ctl_table *t = ctl_table_new(7, header);
	if (json_is_array(data)) {
		size_t i;
		json_t *probe;
		json_array_foreach(data, i, probe) add_probe_row(t, probe);
	} else {
		add_probe_row(t, data);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	json_decref(data);
	return CTL_EXIT_OK;
}

int ctl_run_reload(struct ctl_context *ctx, char **args, size_t count)
{
	(void)args;
	(void)count;
	json_t *data;
	int rc = ctl_client_call(&ctx->client, "POST", "/reload", NULL, 0, NULL, &data);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctx->options.json)
		rc = ctl_print_json(data) == 0 ? CTL_EXIT_OK : CTL_EXIT_SERVER;
	else
		puts("configuration and rule files reloaded");
	json_decref(data);
	return rc;
}
