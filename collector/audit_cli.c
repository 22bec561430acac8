/*
 * The --audit actions of tocsind (see audit_cli.h): option parsing, opening the state
 * database of the configured state_dir, the aligned table of `list` and the chain check
 * of `verify`.
 */
#include "collector/audit_cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alerter/notification.h"
#include "collector/audit.h"
#include "collector/config.h"
#include "collector/daemon.h"
#include "collector/log.h"
#include "collector/statedb.h"
#include "collector/xalloc.h"

#define CLI_EXIT_FAILED 1
#define CLI_EXIT_USAGE  2

/* Records that `--audit list` prints without --limit. */
#define AUDIT_CLI_DEFAULT_LIMIT 50

struct cli_request {
	const char *action; /* "list" or "verify" */
	struct daemon_options opts;
	const char *limit; /* --limit's text, NULL when not given */
	size_t limit_count;
	char **args; /* the arguments after the options */
	size_t arg_count;
};

bool audit_cli_requested(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--audit") == 0 || strncmp(argv[i], "--audit=", 8) == 0)
			return true;
	}
	return false;
}

void audit_cli_usage(FILE *out)
{
	fprintf(out,
		"Audit trail (read from the state database of the configured state_dir):\n"
		"      --audit list [--limit N]\n"
		"                         print the N newest records, newest first, as a table\n"
		"                         (default: %d; 0 prints every record)\n"
		"      --audit verify     recompute the hash chain; exit 0 when it is intact, 1\n"
		"                         naming the first changed or missing record otherwise\n"
		"  With --audit, --config, --data-dir and --log-level are accepted too. Exit\n"
		"  status: 0 on success, 1 when the trail is broken or cannot be read, 2 for a\n"
		"  command-line error.\n",
		AUDIT_CLI_DEFAULT_LIMIT);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a command-line error and returns the exit status for it. */
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "tocsind: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see --help)\n");
	return CLI_EXIT_USAGE;
}

/* Parses argv into *r. Returns 0 or an exit status. */
static int parse_arguments(int argc, char **argv, struct cli_request *r)
{
	static const struct option options[] = {
	    {"audit", required_argument, NULL, 'A'},     {"limit", required_argument, NULL, 'n'},
	    {"config", required_argument, NULL, 'c'},    {"data-dir", required_argument, NULL, 'd'},
	    {"log-level", required_argument, NULL, 'L'}, {NULL, 0, NULL, 0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:d:L:", options, NULL)) != -1) {
		int shared = daemon_options_apply(&r->opts, c, optarg);

		if (shared < 0)
			return CLI_EXIT_USAGE;
		if (shared > 0)
			continue;
		switch (c) {
		case 'A':
			r->action = optarg;
			break;
		case 'n':
			r->limit = optarg;
			break;
		default:
			/* getopt_long() has printed the problem; other tocsind options land
			 * here too because they do not apply to --audit. */
			fprintf(stderr, "tocsind: see --help for the options of --audit\n");
			return CLI_EXIT_USAGE;
		}
	}
	r->args = argv + optind;
	r->arg_count = (size_t)(argc - optind);
	return 0;
}

/* Checks that the options fit the action and parses --limit. Returns 0 or CLI_EXIT_USAGE. */
static int check_request(struct cli_request *r)
{
	if (r->action == NULL)
		return usage_error("--audit: missing action; use list or verify");
	if (strcmp(r->action, "list") != 0 && strcmp(r->action, "verify") != 0)
		return usage_error("--audit: unknown action \"%s\"; use list or verify", r->action);
	if (r->arg_count > 0)
		return usage_error("--audit %s: unexpected argument \"%s\"", r->action, r->args[0]);
	if (r->limit != NULL && strcmp(r->action, "list") != 0)
		return usage_error("--audit %s: --limit belongs to --audit list", r->action);
	r->limit_count = AUDIT_CLI_DEFAULT_LIMIT;
	if (r->limit != NULL) {
		char *end = NULL;
		unsigned long long n;

		errno = 0;
		n = strtoull(r->limit, &end, 10);
		if (r->limit[0] < '0' || r->limit[0] > '9' || *end != '\0' || errno != 0 ||
		    n > SIZE_MAX)
			return usage_error("--limit: \"%s\" is not a number of records (a whole "
					   "number, 0 for every record)",
					   r->limit);
		r->limit_count = (size_t)n;
	}
	return 0;
}

/* ---- the table of --audit list ---- */

enum cli_column {
	COLUMN_ID,
	COLUMN_TIME,
	COLUMN_ACTOR,
	COLUMN_REMOTE,
	COLUMN_ACTION,
	COLUMN_DETAIL,
	COLUMN_COUNT,
};

static const char *const column_titles[COLUMN_COUNT] = {
    [COLUMN_ID] = "ID",         [COLUMN_TIME] = "TIME",     [COLUMN_ACTOR] = "ACTOR",
    [COLUMN_REMOTE] = "REMOTE", [COLUMN_ACTION] = "ACTION", [COLUMN_DETAIL] = "DETAIL",
};

struct cli_table {
	char *(*rows)[COLUMN_COUNT];
	size_t count;
	size_t capacity;
};

/* A copy of text with control characters as spaces, so one record stays on one line. */
static char *cell_text(const char *text)
{
	char *copy = xstrdup(text[0] != '\0' ? text : "-");

	for (char *p = copy; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	}
	return copy;
}

/* Columns that the text takes on a terminal: one per UTF-8 character. */
static size_t display_width(const char *text)
{
	size_t width = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if ((*p & 0xc0) != 0x80)
			width++;
	}
	return width;
}

static void table_add(void *arg, const struct audit_entry *e)
{
	struct cli_table *t = arg;
	char time[40];
	char **row;

	t->rows = xreallocarray_grow(t->rows, &t->capacity, t->count + 1, sizeof(*t->rows));
	row = t->rows[t->count++];
	row[COLUMN_ID] = xasprintf("%" PRId64, e->id);
	row[COLUMN_TIME] = xstrdup(notification_time(e->time_ms, time, sizeof time));
	row[COLUMN_ACTOR] = cell_text(e->actor);
	row[COLUMN_REMOTE] = cell_text(e->remote);
	row[COLUMN_ACTION] = cell_text(e->action);
	row[COLUMN_DETAIL] = cell_text(e->detail);
}

static void print_row(const char *const *cells, const size_t *widths)
{
	for (size_t c = 0; c < COLUMN_COUNT; c++) {
		if (c + 1 == COLUMN_COUNT) {
			/* The last column is not padded, so lines carry no trailing blanks. */
			printf("%s\n", cells[c]);
		} else {
			printf("%s%*s", cells[c], (int)(widths[c] - display_width(cells[c]) + 2),
			       "");
		}
	}
}

static int run_list(struct audit *audit, const struct cli_request *r)
{
	struct cli_table t = {0};
	size_t widths[COLUMN_COUNT];
	int status = 0;

	if (audit_list(audit, r->limit_count, 0, table_add, &t) < 0) {
		fprintf(stderr, "tocsind: --audit list: cannot read the audit trail (see the "
				"error above)\n");
		status = CLI_EXIT_FAILED;
	}
	for (size_t c = 0; c < COLUMN_COUNT; c++) {
		widths[c] = display_width(column_titles[c]);
		for (size_t i = 0; i < t.count; i++) {
			size_t w = display_width(t.rows[i][c]);

			if (w > widths[c])
				widths[c] = w;
		}
	}
	if (status == 0)
		print_row(column_titles, widths);
	for (size_t i = 0; i < t.count; i++) {
		if (status == 0)
			print_row((const char *const *)t.rows[i], widths);
		for (size_t c = 0; c < COLUMN_COUNT; c++)
			free(t.rows[i][c]);
	}
	free(t.rows);
	return status;
}

static int run_verify(struct audit *audit)
{
	int64_t first_bad_id = 0;
	char *error = NULL;
	int64_t count = audit_verify(audit, &first_bad_id, &error);

	if (count >= 0) {
		printf("audit trail intact: %" PRId64 " record%s\n", count, count == 1 ? "" : "s");
		return 0;
	}
	if (first_bad_id == 0) {
		fprintf(stderr, "tocsind: --audit verify: %s\n", error);
	} else {
		printf("audit trail broken at record %" PRId64 ": %s\n", first_bad_id, error);
	}
	free(error);
	return CLI_EXIT_FAILED;
}

/* Loads the config, opens the state database and runs the action. */
static int run_action(const struct cli_request *r)
{
	char *error = NULL;
	struct config *cfg = daemon_load_config(&r->opts, &error);
	struct statedb *db = NULL;
	struct audit *audit = NULL;
	int status = CLI_EXIT_FAILED;

	if (cfg == NULL) {
		fprintf(stderr, "%s\n", error);
		goto done;
	}
	db = statedb_open(cfg->state_dir, &error);
	if (db == NULL) {
		fprintf(stderr, "tocsind: %s\n", error);
		goto done;
	}
	audit = audit_open(db, &error);
	if (audit == NULL) {
		fprintf(stderr, "tocsind: %s\n", error);
		goto done;
	}
	if (strcmp(r->action, "list") == 0)
		status = run_list(audit, r);
	else
		status = run_verify(audit);

done:
	free(error);
	audit_close(audit);
	statedb_close(db);
	config_free(cfg);
	return status;
}

int audit_cli_main(int argc, char **argv)
{
	struct cli_request r = {0};
	int status = parse_arguments(argc, argv, &r);

	if (status == 0)
		status = check_request(&r);
	if (status == 0) {
		/* stdout carries the result; stderr keeps warnings unless asked otherwise. */
		log_set_level(r.opts.log_level_set ? r.opts.log_level : LOG_LEVEL_WARN);
		status = run_action(&r);
	}
	return status;
}
