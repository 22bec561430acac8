/*
 * The silence commands: `silence add` creates a silence that ends a duration from now,
 * `silence list` shows silences in one state, and `silence expire` ends one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/units.h"
#include "collector/xalloc.h"
#include "ctl/commands.h"
#include "ctl/format.h"
#include "ctl/table.h"

int ctl_run_silence_add(struct ctl_context *ctx, char **args, size_t count)
{
	(void)args;
	(void)count;
	const struct ctl_options *o = &ctx->options;
	char ends_at[CTL_TIME_SIZE];

	if (ctl_format_deadline(o->duration, ends_at, sizeof(ends_at)) != 0) {
		fprintf(stderr,
			"tocsinctl: invalid --duration \"%s\": expected a positive duration "
			"(" UNITS_DURATION_EXAMPLES ")\n",
			o->duration);
		return CTL_EXIT_USAGE;
	}
	/* The server parses each matcher string and names the invalid one in its error. */
	json_t *matchers = json_array();
	for (size_t i = 0; i < o->matcher_count; i++) {
		json_t *text = json_string(o->matchers[i]);
		if (text == NULL) {
			fprintf(stderr, "tocsinctl: invalid UTF-8 in --matcher \"%s\"\n",
				o->matchers[i]);
			json_decref(matchers);
			return CTL_EXIT_USAGE;
		}
		json_array_append_new(matchers, text);
	}
	/* "o" hands the reference of `matchers` to the body, also when packing fails. */
	json_t *body = json_pack("{s:o, s:s, s:s, s:s}", "matchers", matchers, "endsAt", ends_at,
				 "createdBy", o->by, "comment", o->comment);
	if (body == NULL) {
		fprintf(stderr, "tocsinctl: invalid UTF-8 in the --by or --comment argument\n");
		return CTL_EXIT_USAGE;
	}

	json_t *data;
	int rc = ctl_client_call(&ctx->client, "POST", "/silences", NULL, 0, body, &data);
	json_decref(body);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctx->options.json) {
		rc = ctl_print_json(data) == 0 ? CTL_EXIT_OK : CTL_EXIT_SERVER;
	} else {
		/* Only the ID, so that scripts can write id=$(tocsinctl silence add ...). */
		const char *id = ctl_json_string(data, "silenceID");
		puts(id != NULL ? id : "-");
	}
	json_decref(data);
	return rc;
}

/* Returns the matchers of a silence as `name="value", name=~"regex"`; the caller frees it. */
static char *format_matchers(const json_t *matchers)
{
	char *out = xstrdup("");
	size_t i;
	json_t *m;

	json_array_foreach(matchers, i, m)
	{
		bool regex = json_is_true(json_object_get(m, "isRegex"));
		/* Alertmanager's format: isEqual is missing in old silences and means true. */
		bool equal = !json_is_false(json_object_get(m, "isEqual"));
		const char *op;
		if (equal)
			op = regex ? "=~" : "=";
		else
			op = regex ? "!~" : "!=";
		const char *name = ctl_json_string(m, "name");
		const char *value = ctl_json_string(m, "value");
		char *quoted = ctl_quote(value != NULL ? value : "");
		char *next = xasprintf("%s%s%s%s%s", out, i == 0 ? "" : ", ",
				       name != NULL ? name : "", op, quoted);
		free(quoted);
		free(out);
		out = next;
	}
	return out;
}

static const char *silence_state(const json_t *silence)
{
	return ctl_json_string(json_object_get(silence, "status"), "state");
}

int ctl_run_silence_list(struct ctl_context *ctx, char **args, size_t count)
{
	static const char *const header[] = {"ID",         "STATE",    "ENDS",
					     "CREATED BY", "MATCHERS", "COMMENT"};
	const char *requested = count > 0 ? args[0] : "active";
	if (strcmp(requested, "active") != 0 && strcmp(requested, "pending") != 0 &&
	    strcmp(requested, "expired") != 0 && strcmp(requested, "all") != 0) {
		fprintf(
		    stderr,
		    "tocsinctl: invalid silence state \"%s\": expected active, pending, expired "
		    "or all\n",
		    requested);
		return CTL_EXIT_USAGE;
	}

	json_t *data;
	int rc = ctl_client_call(&ctx->client, "GET", "/silences", NULL, 0, NULL, &data);
	if (rc != CTL_EXIT_OK)
		return rc;

	/* The API lists every silence; the state filter is applied here. */
	json_t *selected = json_array();
	size_t i;
	json_t *silence;
	json_array_foreach(data, i, silence)
	{
		const char *state = silence_state(silence);
		if (strcmp(requested, "all") == 0 ||
		    (state != NULL && strcmp(state, requested) == 0))
			json_array_append(selected, silence);
	}
	json_decref(data);

	if (ctx->options.json) {
		rc = ctl_print_json(selected) == 0 ? CTL_EXIT_OK : CTL_EXIT_SERVER;
		json_decref(selected);
		return rc;
	}
	struct ctl_table *t = ctl_table_new(6, header);
	json_array_foreach(selected, i, silence)
	{
		char *matchers = format_matchers(json_object_get(silence, "matchers"));
		const char *row[] = {
		    ctl_json_string(silence, "id"),
		    silence_state(silence),
		    ctl_json_string(silence, "endsAt"),
		    ctl_json_string(silence, "createdBy"),
		    matchers,
		    ctl_json_string(silence, "comment"),
		};
		ctl_table_add_row(t, row);
		free(matchers);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	json_decref(selected);
	return CTL_EXIT_OK;
}

int ctl_run_silence_expire(struct ctl_context *ctx, char **args, size_t count)
{
	(void)count;
	char *id = ctl_client_escape(args[0]);
	char *path = xasprintf("/silences/%s", id);
	free(id);

	json_t *data;
	int rc = ctl_client_call(&ctx->client, "DELETE", path, NULL, 0, NULL, &data);
	free(path);
	if (rc != CTL_EXIT_OK)
		return rc;
	if (ctx->options.json)
		rc = ctl_print_json(data) == 0 ? CTL_EXIT_OK : CTL_EXIT_SERVER;
	else
		printf("silence %s expired\n", args[0]);
	json_decref(data);
	return rc;
}
