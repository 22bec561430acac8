/*
 * The alert commands: `alerts` lists the alerter's alerts (each argument a filter matcher)
 * and can fail a script when one fires, and `ack` acknowledges one alert.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/units.h"
#include "collector/xalloc.h"
#include "ctl/commands.h"
#include "ctl/format.h"
#include "ctl/table.h"

/* Firing and in state "active". Silenced, inhibited and acknowledged alerts are already
 * handled by someone, so they do not count. */
static bool alert_needs_attention(const json_t *alert)
{
	const char *state = ctl_json_string(alert, "state");
	return json_is_true(json_object_get(alert, "firing")) && state != NULL &&
	       strcmp(state, "active") == 0;
}

static void print_alerts(const json_t *alerts)
{
	static const char *const header[] = {"RULE",    "FINGERPRINT", "STATE",
					     "STARTED", "REASON",      "LABELS"};
	struct ctl_table *t = ctl_table_new(6, header);
	size_t i;
	json_t *alert;

	json_array_foreach(alerts, i, alert)
	{
		char *labels = ctl_format_labels(json_object_get(alert, "labels"), false);
		const char *row[] = {
		    ctl_json_string(alert, "rule"),   ctl_json_string(alert, "fingerprint"),
		    ctl_json_string(alert, "state"),  ctl_json_string(alert, "startsAt"),
		    ctl_json_string(alert, "reason"), labels,
		};
		ctl_table_add_row(t, row);
		free(labels);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

int ctl_run_alerts(struct ctl_context *ctx, char **args, size_t count)
{
	struct ctl_param *params = xcalloc(count > 0 ? count : 1, sizeof(*params));
	for (size_t i = 0; i < count; i++)
		params[i] = (struct ctl_param){"filter", args[i]};

	json_t *data;
	int rc = ctl_client_call(&ctx->client, "GET", "/alerts", params, count, NULL, &data);
	free(params);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (!json_is_array(data)) {
		fprintf(stderr, "tocsinctl: GET /api/v1/alerts: the reply's data is not a list\n");
		json_decref(data);
		return CTL_EXIT_SERVER;
	}

	if (ctx->options.json) {
		rc = ctl_print_json(data) == 0 ? CTL_EXIT_OK : CTL_EXIT_SERVER;
	} else {
		print_alerts(data);
	}

	if (rc == CTL_EXIT_OK && ctx->options.fail_if_firing) {
		size_t i;
		json_t *alert;
		json_array_foreach(data, i, alert)
		{
			if (alert_needs_attention(alert)) {
				rc = CTL_EXIT_FIRING;
				break;
			}
		}
	}
	json_decref(data);
	return rc;
}

int ctl_run_ack(struct ctl_context *ctx, char **args, size_t count)
{
	(void)count;
	const struct ctl_options *o = &ctx->options;
	char expires_at[CTL_TIME_SIZE];

	json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "rule", args[0], "fingerprint", args[1],
				 "createdBy", o->by, "comment", o->comment);
	if (body == NULL) {
		fprintf(stderr, "tocsinctl: invalid UTF-8 in the rule, fingerprint, --by or "
				"--comment argument\n");
		return CTL_EXIT_USAGE;
	}
	if (o->expires != NULL) {
		if (ctl_format_deadline(o->expires, expires_at, sizeof(expires_at)) != 0) {
			fprintf(stderr,
				"tocsinctl: invalid --expires \"%s\": expected a positive duration "
				"(" UNITS_DURATION_EXAMPLES ")\n",
				o->expires);
			json_decref(body);
			return CTL_EXIT_USAGE;
		}
		json_object_set_new(body, "expiresAt", json_string(expires_at));
	}

	json_t *data;
	int rc = ctl_client_call(&ctx->client, "POST", "/acks", NULL, 0, body, &data);
	json_decref(body);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctx->options.json) {
		rc = ctl_print_json(data) == 0 ? CTL_EXIT_OK : CTL_EXIT_SERVER;
	} else {
		const char *until = ctl_json_string(data, "expiresAt");
		printf("acknowledged %s %s until %s\n", args[0], args[1],
		       until != NULL ? until : "the alert resolves");
	}
	json_decref(data);
	return rc;
}
