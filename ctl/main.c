/*
 * tocsinctl: a command-line client for tocsind's HTTP API (docs/tocsinctl.md). This file
 * parses the command line, checks each command's arguments and options against the
 * command table, and runs the command. The commands live in status.c, alerts.c, silence.c,
 * query.c and audit.c.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoconf.h"
#include "collector/xalloc.h"
#include "ctl/client.h"
#include "ctl/commands.h"

/* Bits of the options that only some commands take. */
enum ctl_option_bit {
	CTL_OPT_FAIL_IF_FIRING = 1u << 0,
	CTL_OPT_MATCHER = 1u << 1,
	CTL_OPT_DURATION = 1u << 2,
	CTL_OPT_BY = 1u << 3,
	CTL_OPT_COMMENT = 1u << 4,
	CTL_OPT_EXPIRES = 1u << 5,
	CTL_OPT_TIME = 1u << 6,
	CTL_OPT_LIMIT = 1u << 7,
};

struct ctl_option_name {
	unsigned bit;
	const char *name;
};

static const struct ctl_option_name option_names[] = {
    {CTL_OPT_FAIL_IF_FIRING, "--fail-if-firing"},
    {CTL_OPT_MATCHER, "--matcher"},
    {CTL_OPT_DURATION, "--duration"},
    {CTL_OPT_BY, "--by"},
    {CTL_OPT_COMMENT, "--comment"},
    {CTL_OPT_EXPIRES, "--expires"},
    {CTL_OPT_TIME, "--time"},
    {CTL_OPT_LIMIT, "--limit"},
};

struct ctl_command {
	const char *group; /* "silence" for `silence add`, NULL for a top-level command */
	const char *name;
	const char *usage; /* the arguments and options after the name */
	size_t min_args;
	size_t max_args;
	unsigned allowed;  /* ctl_option_bit flags */
	unsigned required; /* ctl_option_bit flags */
	int (*run)(struct ctl_context *ctx, char **args, size_t count);
};

static const struct ctl_command commands[] = {
    {.name = "status", .usage = "", .run = ctl_run_status},
    {.name = "probes", .usage = "[NAME]", .max_args = 1, .run = ctl_run_probes},
    {.name = "alerts",
     .usage = "[MATCHER...] [--fail-if-firing]",
     .max_args = SIZE_MAX,
     .allowed = CTL_OPT_FAIL_IF_FIRING,
     .run = ctl_run_alerts},
    {.group = "silence",
     .name = "add",
     .usage = "--matcher M... --duration D --by NAME --comment TEXT",
     .allowed = CTL_OPT_MATCHER | CTL_OPT_DURATION | CTL_OPT_BY | CTL_OPT_COMMENT,
     .required = CTL_OPT_MATCHER | CTL_OPT_DURATION | CTL_OPT_BY | CTL_OPT_COMMENT,
     .run = ctl_run_silence_add},
    {.group = "silence",
     .name = "list",
     .usage = "[active|pending|expired|all]",
     .max_args = 1,
     .run = ctl_run_silence_list},
    {.group = "silence",
     .name = "expire",
     .usage = "ID",
     .min_args = 1,
     .max_args = 1,
     .run = ctl_run_silence_expire},
    {.name = "ack",
     .usage = "RULE FINGERPRINT --by NAME --comment TEXT [--expires D]",
     .min_args = 2,
     .max_args = 2,
     .allowed = CTL_OPT_BY | CTL_OPT_COMMENT | CTL_OPT_EXPIRES,
     .required = CTL_OPT_BY | CTL_OPT_COMMENT,
     .run = ctl_run_ack},
    {.name = "reload", .usage = "", .run = ctl_run_reload},
    {.name = "query",
     .usage = "EXPR [--time T]",
     .min_args = 1,
     .max_args = 1,
     .allowed = CTL_OPT_TIME,
     .run = ctl_run_query},
    /* Before `audit`, because find_command() takes the first entry that matches. */
    {.group = "audit", .name = "verify", .usage = "", .run = ctl_run_audit_verify},
    {.name = "audit", .usage = "[--limit N]", .allowed = CTL_OPT_LIMIT, .run = ctl_run_audit},
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void print_help(FILE *out)
{
	fputs(
	    "Usage: tocsinctl [--server URL] [--token TOKEN] [--json] COMMAND [ARGS...]\n"
	    "\n"
	    "A client for tocsind's HTTP API under /api/v1.\n"
	    "\n"
	    "Commands:\n"
	    "  status                   version, uptime, config and counts\n"
	    "  probes [NAME]            each probe's health and last result\n"
	    "  alerts [MATCHER...]      alerts and their state; each MATCHER (team=\"ops\",\n"
	    "                           severity=~\"page|crit\") must match\n"
	    "      --fail-if-firing     exit 4 when a listed alert fires and is neither\n"
	    "                           silenced, inhibited nor acknowledged\n"
	    "  silence add --matcher M... --duration D --by NAME --comment TEXT\n"
	    "                           silence alerts matching every M (repeat --matcher) for\n"
	    "                           D (30m, 2h, 1d) from now; prints the silence ID\n"
	    "  silence list [active|pending|expired|all]\n"
	    "                           silences in that state (default: active)\n"
	    "  silence expire ID        end a silence now\n"
	    "  ack RULE FINGERPRINT --by NAME --comment TEXT [--expires D]\n"
	    "                           acknowledge one alert (RULE and FINGERPRINT as `alerts`\n"
	    "                           shows them) until it resolves, or for D\n"
	    "  reload                   reload tocsind's config and rule files\n"
	    "  query EXPR [--time T]    evaluate EXPR now, or at T (RFC 3339 or Unix seconds)\n"
	    "  audit [--limit N]        the newest N audit records (default 100, max 1000)\n"
	    "  audit verify             check the audit trail's hash chain; exit 1 when broken\n"
	    "\n"
	    "Options:\n"
	    "  --server URL             tocsind's address (default: $TOCSIN_URL, "
	    "else " CTL_DEFAULT_SERVER ")\n"
	    "  --token TOKEN            bearer token for silence add/expire, ack and reload\n"
	    "                           (default: $TOCSIN_TOKEN; the environment keeps it out of\n"
	    "                           the process list)\n"
	    "  --json                   print the API's data as JSON instead of a table\n"
	    "  -h, --help               print this help\n"
	    "  --version                print the version\n"
	    "\n"
	    "Requests time out after 5 s connecting and 30 s in total.\n"
	    "\n"
	    "Exit status:\n"
	    "  0  success\n"
	    "  1  the server replied with an error (printed with its detail), or\n"
	    "     `audit verify` found a broken record\n"
	    "  2  invalid command line\n"
	    "  3  cannot connect to the server, or no reply within the timeout\n"
	    "  4  alerts --fail-if-firing: at least one alert fires\n",
	    out);
}

__attribute__((format(printf, 2, 3))) static int usage_error(const struct ctl_command *cmd,
							     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("tocsinctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (cmd != NULL)
		fprintf(stderr, "usage: tocsinctl %s%s%s%s%s\n", cmd->group ? cmd->group : "",
			cmd->group ? " " : "", cmd->name, cmd->usage[0] != '\0' ? " " : "",
			cmd->usage);
	fputs("Run 'tocsinctl --help' for every command and option.\n", stderr);
	return CTL_EXIT_USAGE;
}

/* Finds the command named by the first one or two positional arguments; sets *used. */
static const struct ctl_command *find_command(char **args, size_t count, size_t *used)
{
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		const struct ctl_command *cmd = &commands[i];
		if (cmd->group == NULL && strcmp(args[0], cmd->name) == 0) {
			*used = 1;
			return cmd;
		}
		if (cmd->group != NULL && strcmp(args[0], cmd->group) == 0 && count > 1 &&
		    strcmp(args[1], cmd->name) == 0) {
			*used = 2;
			return cmd;
		}
	}
	return NULL;
}

/* Checks the argument count and the options given against the command's table entry. */
static int check_command(const struct ctl_command *cmd, size_t arg_count, unsigned options_seen)
{
	if (arg_count < cmd->min_args)
		return usage_error(cmd, "%s: missing argument", cmd->name);
	if (arg_count > cmd->max_args)
		return usage_error(cmd, "%s: too many arguments", cmd->name);
	for (size_t i = 0; i < sizeof(option_names) / sizeof(option_names[0]); i++) {
		unsigned bit = option_names[i].bit;
		if ((options_seen & bit) != 0 && (cmd->allowed & bit) == 0)
			return usage_error(cmd, "%s does not apply to this command",
					   option_names[i].name);
		if ((cmd->required & bit) != 0 && (options_seen & bit) == 0)
			return usage_error(cmd, "missing required option %s", option_names[i].name);
	}
	return CTL_EXIT_OK;
}

enum long_only_option {
	LONG_SERVER = 256,
	LONG_TOKEN,
	LONG_JSON,
	LONG_VERSION,
	LONG_FAIL_IF_FIRING,
	LONG_MATCHER,
	LONG_DURATION,
	LONG_BY,
	LONG_COMMENT,
	LONG_EXPIRES,
	LONG_TIME,
	LONG_LIMIT,
};

static const struct option long_options[] = {
    {"server", required_argument, NULL, LONG_SERVER},
    {"token", required_argument, NULL, LONG_TOKEN},
    {"json", no_argument, NULL, LONG_JSON},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, LONG_VERSION},
    {"fail-if-firing", no_argument, NULL, LONG_FAIL_IF_FIRING},
    {"matcher", required_argument, NULL, LONG_MATCHER},
    {"duration", required_argument, NULL, LONG_DURATION},
    {"by", required_argument, NULL, LONG_BY},
    {"comment", required_argument, NULL, LONG_COMMENT},
    {"expires", required_argument, NULL, LONG_EXPIRES},
    {"time", required_argument, NULL, LONG_TIME},
    {"limit", required_argument, NULL, LONG_LIMIT},
    {NULL, 0, NULL, 0},
};

struct ctl_parsed {
	const char *server;
	const char *token;
	struct ctl_options options;
	unsigned options_seen; /* ctl_option_bit flags of the options on the command line */
	bool help;
	bool version;
};

/* Parses every option (before or after the command); returns CTL_EXIT_OK or a usage error. */
static int parse_options(int argc, char **argv, struct ctl_parsed *p)
{
	struct ctl_options *o = &p->options;
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
		switch (opt) {
		case LONG_SERVER:
			p->server = optarg;
			break;
		case LONG_TOKEN:
			p->token = optarg;
			break;
		case LONG_JSON:
			o->json = true;
			break;
		case 'h':
			p->help = true;
			break;
		case LONG_VERSION:
			p->version = true;
			break;
		case LONG_FAIL_IF_FIRING:
			o->fail_if_firing = true;
			p->options_seen |= CTL_OPT_FAIL_IF_FIRING;
			break;
		case LONG_MATCHER:
			o->matchers =
			    xrealloc(o->matchers, (o->matcher_count + 1) * sizeof(*o->matchers));
			o->matchers[o->matcher_count++] = optarg;
			p->options_seen |= CTL_OPT_MATCHER;
			break;
		case LONG_DURATION:
			o->duration = optarg;
			p->options_seen |= CTL_OPT_DURATION;
			break;
		case LONG_BY:
			o->by = optarg;
			p->options_seen |= CTL_OPT_BY;
			break;
		case LONG_COMMENT:
			o->comment = optarg;
			p->options_seen |= CTL_OPT_COMMENT;
			break;
		case LONG_EXPIRES:
			o->expires = optarg;
			p->options_seen |= CTL_OPT_EXPIRES;
			break;
		case LONG_TIME:
			o->time = optarg;
			p->options_seen |= CTL_OPT_TIME;
			break;
		case LONG_LIMIT:
			o->limit = optarg;
			p->options_seen |= CTL_OPT_LIMIT;
			break;
		case ':':
			return usage_error(NULL, "option %s needs a value", argv[optind - 1]);
		default:
			/* Only the name: a mistyped --token=SECRET must not print the secret. */
			return usage_error(NULL, "unknown option %.*s",
					   (int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
		}
	}
	return CTL_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct ctl_parsed parsed = {0};
	int rc = parse_options(argc, argv, &parsed);
	if (rc != CTL_EXIT_OK)
		goto done;
	if (parsed.help) {
		print_help(stdout);
		goto done;
	}
	if (parsed.version) {
		printf("tocsinctl %s\n", PACKAGE_VERSION);
		goto done;
	}

	char **args = argv + optind;
	size_t count = (size_t)(argc - optind);
	if (count == 0) {
		rc = usage_error(NULL, "missing command");
		goto done;
	}
	size_t used = 0;
	const struct ctl_command *cmd = find_command(args, count, &used);
	if (cmd == NULL && strcmp(args[0], "silence") == 0) {
		rc = usage_error(NULL, "silence: expected add, list or expire after \"silence\"");
		goto done;
	}
	if (cmd == NULL) {
		rc = usage_error(NULL, "unknown command \"%s\"", args[0]);
		goto done;
	}
	rc = check_command(cmd, count - used, parsed.options_seen);
	if (rc != CTL_EXIT_OK)
		goto done;

	const char *server = parsed.server;
	if (server == NULL)
		server = getenv("TOCSIN_URL");
	if (server == NULL || server[0] == '\0')
		server = CTL_DEFAULT_SERVER;
	const char *token = parsed.token != NULL ? parsed.token : getenv("TOCSIN_TOKEN");

	struct ctl_context ctx = {.options = parsed.options};
	rc = ctl_client_init(&ctx.client, server, token);
	if (rc != CTL_EXIT_OK)
		goto done;
	rc = cmd->run(&ctx, args + used, count - used);
	ctl_client_cleanup(&ctx.client);

done:
	free(parsed.options.matchers);
	return rc;
}
