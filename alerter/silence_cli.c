/*
 * The --silence actions of tocsind (see silence_cli.h): option parsing, opening the state
 * database of the configured state_dir, and printing silences as an aligned table.
 */
#include "alerter/silence_cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerter/notification.h"
#include "alerter/silence.h"
#include "collector/audit.h"
#include "collector/clock.h"
#include "collector/config.h"
#include "collector/daemon.h"
#include "collector/log.h"
#include "collector/statedb.h"
#include "collector/units.h"
#include "collector/xalloc.h"

#define CLI_EXIT_FAILED 1
#define CLI_EXIT_USAGE  2

struct cli_request {
	const char *action; /* "add", "list" or "expire" */
	struct daemon_options opts;
	struct silence_matcher *matchers;
	size_t matcher_count;
	const char *duration;
	const char *created_by;
	const char *comment;
	char **args; /* the arguments after the options: ids or a filter */
	size_t arg_count;
};

bool silence_cli_requested(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--silence") == 0 || strncmp(argv[i], "--silence=", 10) == 0)
			return true;
	}
	return false;
}

void silence_cli_usage(FILE *out)
{
	fprintf(out,
		"Silences (written to the state database of the configured state_dir):\n"
		"      --silence add --matcher MATCHER [--matcher MATCHER]... --duration\n"
		"                    DURATION --by NAME --comment TEXT\n"
		"                         mute alerts whose labels pass every MATCHER\n"
		"                         (NAME=\"VALUE\", NAME!=\"VALUE\", NAME=~\"REGEX\" or\n"
		"                         NAME!~\"REGEX\") from now for DURATION (e.g. 2h), and\n"
		"                         print the new silence's id\n"
		"      --silence list [active|pending|expired|all]\n"
		"                         print silences as a table (default: all)\n"
		"      --silence expire ID...\n"
		"                         end the silences now\n"
		"  With --silence, --config, --data-dir and --log-level are accepted too. Exit\n"
		"  status: 0 on success, 1 when the request fails, 2 for a command-line error.\n");
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

static void request_clear(struct cli_request *r)
{
	for (size_t i = 0; i < r->matcher_count; i++)
		silence_matcher_clear(&r->matchers[i]);
	free(r->matchers);
}

static int add_matcher(struct cli_request *r, const char *text)
{
	struct silence_matcher m;
	char *error = NULL;

	if (silence_matcher_parse(text, &m, &error) < 0) {
		fprintf(stderr, "tocsind: --matcher: %s\n", error);
		free(error);
		return -1;
	}
	r->matchers = xrealloc(r->matchers, (r->matcher_count + 1) * sizeof(*r->matchers));
	r->matchers[r->matcher_count++] = m;
	return 0;
}

/* Parses argv into *r. Returns 0 or an exit status. */
static int parse_arguments(int argc, char **argv, struct cli_request *r)
{
	static const struct option options[] = {
	    {"silence", required_argument, NULL, 'S'},
	    {"matcher", required_argument, NULL, 'm'},
	    {"duration", required_argument, NULL, 'D'},
	    {"by", required_argument, NULL, 'b'},
	    {"comment", required_argument, NULL, 'C'},
	    {"config", required_argument, NULL, 'c'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"log-level", required_argument, NULL, 'L'},
	    {NULL, 0, NULL, 0},
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
		case 'S':
			r->action = optarg;
			break;
		case 'm':
			if (add_matcher(r, optarg) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'D':
			r->duration = optarg;
			break;
		case 'b':
			r->created_by = optarg;
			break;
		case 'C':
			r->comment = optarg;
			break;
		default:
			/* getopt_long() has printed the problem; other tocsind options land
			 * here too because they do not apply to --silence. */
			fprintf(stderr, "tocsind: see --help for the options of --silence\n");
			return CLI_EXIT_USAGE;
		}
	}
	r->args = argv + optind;
	r->arg_count = (size_t)(argc - optind);
	return 0;
}

/* Checks that the options fit the action. Returns 0 or CLI_EXIT_USAGE. */
static int check_request(const struct cli_request *r)
{
	bool add;

	if (r->action == NULL)
		return usage_error("--silence: missing action; use add, list or expire");
	add = strcmp(r->action, "add") == 0;
	if (!add && strcmp(r->action, "list") != 0 && strcmp(r->action, "expire") != 0)
		return usage_error("--silence: unknown action \"%s\"; use add, list or expire",
				   r->action);
	if (!add && (r->matcher_count > 0 || r->duration != NULL || r->created_by != NULL ||
		     r->comment != NULL)) {
		return usage_error("--silence %s: --matcher, --duration, --by and --comment "
				   "belong to --silence add",
				   r->action);
	}
	if (add) {
		if (r->arg_count > 0)
			return usage_error("--silence add: unexpected argument \"%s\"", r->args[0]);
		if (r->matcher_count == 0)
			return usage_error("--silence add: missing --matcher, for instance "
					   "--matcher 'alertname=\"DiskFull\"'");
		if (r->duration == NULL)
			return usage_error("--silence add: missing --duration, for instance "
					   "--duration 2h");
		if (r->created_by == NULL)
			return usage_error("--silence add: missing --by NAME");
		if (r->comment == NULL)
			return usage_error("--silence add: missing --comment TEXT");
	}
	if (strcmp(r->action, "expire") == 0 && r->arg_count == 0)
		return usage_error("--silence expire: missing silence id");
	if (strcmp(r->action, "list") == 0 && r->arg_count > 1)
		return usage_error("--silence list: unexpected argument \"%s\"", r->args[1]);
	return 0;
}

/*
 * Writes the audit record of a change to silence `id` inside the transaction that made it,
 * then commits. Rolls back when either fails, so no change lands without its record.
 * Returns 0 when the change was committed.
 */
static int record_change(struct statedb *db, struct silence_set *set, struct audit *audit,
			 const char *action, const char *id)
{
	const struct silence *s = silence_get(set, id);
	char *detail = s != NULL ? audit_silence_detail(s) : NULL;
	int rc = detail != NULL ? audit_record(audit, "cli", NULL, action, detail) : -1;

	free(detail);
	if (rc == 0 && statedb_commit(db) == 0)
		return 0;
	if (rc < 0)
		statedb_rollback(db);
	fprintf(stderr,
		"tocsind: --silence: writing %s of %s and its audit record to the state database "
		"failed (see the error above); the change was not made\n",
		action, id);
	return -1;
}

static int run_add(struct statedb *db, struct silence_set *set, struct audit *audit,
		   const struct cli_request *r, int64_t now_ms)
{
	uint64_t duration_ms;
	struct silence_spec spec;
	char id[SILENCE_ID_SIZE];
	char *error = NULL;

	if (units_parse_duration_ms(r->duration, &duration_ms) < 0 || duration_ms == 0 ||
	    duration_ms > (uint64_t)(INT64_MAX - now_ms)) {
		return usage_error("--duration: invalid duration \"%s\" (" UNITS_DURATION_EXAMPLES
				   ")",
				   r->duration);
	}
	spec = (struct silence_spec){
	    .matchers = r->matchers,
	    .matcher_count = r->matcher_count,
	    .starts_at_ms = now_ms,
	    .ends_at_ms = now_ms + (int64_t)duration_ms,
	    .created_by = r->created_by,
	    .comment = r->comment,
	};
	if (statedb_begin(db) < 0)
		return CLI_EXIT_FAILED;
	if (silence_create(set, &spec, now_ms, id, &error) < 0) {
		statedb_rollback(db);
		fprintf(stderr, "tocsind: --silence add: %s\n", error);
		free(error);
		return CLI_EXIT_FAILED;
	}
	if (record_change(db, set, audit, "silence.create", id) < 0)
		return CLI_EXIT_FAILED;
	printf("%s\n", id);
	return 0;
}

static int run_expire(struct statedb *db, struct silence_set *set, struct audit *audit,
		      const struct cli_request *r, int64_t now_ms)
{
	int status = 0;

	for (size_t i = 0; i < r->arg_count; i++) {
		char *error = NULL;

		if (statedb_begin(db) < 0) {
			status = CLI_EXIT_FAILED;
		} else if (silence_expire(set, r->args[i], now_ms, &error) < 0) {
			statedb_rollback(db);
			fprintf(stderr, "tocsind: --silence expire: %s\n", error);
			free(error);
			status = CLI_EXIT_FAILED;
		} else if (record_change(db, set, audit, "silence.expire", r->args[i]) < 0) {
			status = CLI_EXIT_FAILED;
		}
	}
	return status;
}

/* ---- the table of --silence list ---- */

enum cli_column {
	COLUMN_ID,
	COLUMN_STATE,
	COLUMN_STARTS,
	COLUMN_ENDS,
	COLUMN_CREATED_BY,
	COLUMN_COMMENT,
	COLUMN_MATCHERS,
	COLUMN_COUNT,
};

static const char *const column_titles[COLUMN_COUNT] = {
    [COLUMN_ID] = "ID",
    [COLUMN_STATE] = "STATE",
    [COLUMN_STARTS] = "STARTS",
    [COLUMN_ENDS] = "ENDS",
    [COLUMN_CREATED_BY] = "CREATED BY",
    [COLUMN_COMMENT] = "COMMENT",
    [COLUMN_MATCHERS] = "MATCHERS",
};

struct cli_table {
	char *(*rows)[COLUMN_COUNT];
	size_t count;
	size_t capacity;
	int64_t now_ms;
};

/* A copy of text with control characters as spaces, so one silence stays on one line. */
static char *cell_text(const char *text)
{
	char *copy = xstrdup(text);

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

/* A time to the second: the table is for people, and the ms are in the database. */
static char *cell_time(int64_t ms)
{
	char buf[40];
	int64_t seconds = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);

	return xstrdup(notification_time(seconds * 1000, buf, sizeof buf));
}

static char *cell_matchers(const struct silence *s)
{
	char **parts = xcalloc(s->matcher_count, sizeof(*parts));
	size_t length = 1;
	char *out;

	for (size_t i = 0; i < s->matcher_count; i++) {
		parts[i] = silence_matcher_format(&s->matchers[i]);
		length += strlen(parts[i]) + 1;
	}
	out = xmalloc(length);
	out[0] = '\0';
	for (size_t i = 0; i < s->matcher_count; i++) {
		if (i > 0)
			strcat(out, " ");
		strcat(out, parts[i]);
		free(parts[i]);
	}
	free(parts);
	return out;
}

static void table_add(void *arg, const struct silence *s)
{
	struct cli_table *t = arg;
	char **row;

	t->rows = xreallocarray_grow(t->rows, &t->capacity, t->count + 1, sizeof(*t->rows));
	row = t->rows[t->count++];
	row[COLUMN_ID] = xstrdup(s->id);
	row[COLUMN_STATE] = xstrdup(silence_state_name(silence_state(s, t->now_ms)));
	row[COLUMN_STARTS] = cell_time(s->starts_at_ms);
	row[COLUMN_ENDS] = cell_time(s->ends_at_ms);
	row[COLUMN_CREATED_BY] = cell_text(s->created_by);
	row[COLUMN_COMMENT] = cell_text(s->comment);
	row[COLUMN_MATCHERS] = cell_matchers(s);
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

static int run_list(struct silence_set *set, const struct cli_request *r, int64_t now_ms)
{
	static const struct {
		const char *name;
		enum silence_filter filter;
	} filters[] = {
	    {"active", SILENCE_FILTER_ACTIVE},
	    {"pending", SILENCE_FILTER_PENDING},
	    {"expired", SILENCE_FILTER_EXPIRED},
	    {"all", SILENCE_FILTER_ALL},
	};
	enum silence_filter filter = SILENCE_FILTER_ALL;
	struct cli_table t = {.now_ms = now_ms};
	size_t widths[COLUMN_COUNT];
	bool known = r->arg_count == 0;

	for (size_t i = 0; i < sizeof filters / sizeof filters[0] && !known; i++) {
		if (strcmp(r->args[0], filters[i].name) == 0) {
			filter = filters[i].filter;
			known = true;
		}
	}
	if (!known) {
		return usage_error("--silence list: unknown filter \"%s\"; use active, pending, "
				   "expired or all",
				   r->args[0]);
	}
	silence_list(set, filter, now_ms, table_add, &t);
	for (size_t c = 0; c < COLUMN_COUNT; c++) {
		widths[c] = display_width(column_titles[c]);
		for (size_t i = 0; i < t.count; i++) {
			size_t w = display_width(t.rows[i][c]);

			if (w > widths[c])
				widths[c] = w;
		}
	}
	print_row(column_titles, widths);
	for (size_t i = 0; i < t.count; i++) {
		print_row((const char *const *)t.rows[i], widths);
		for (size_t c = 0; c < COLUMN_COUNT; c++)
			free(t.rows[i][c]);
	}
	free(t.rows);
	return 0;
}

/* Loads the config, opens the state database and runs the action. */
static int run_action(const struct cli_request *r)
{
	char *error = NULL;
	struct config *cfg = daemon_load_config(&r->opts, &error);
	struct statedb *db = NULL;
	struct silence_set *set = NULL;
	struct audit *audit = NULL;
	int64_t now_ms = clock_wall_ms();
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
	set = silence_set_open(db, &error);
	if (set == NULL) {
		fprintf(stderr, "tocsind: %s\n", error);
		goto done;
	}
	/* Changes are recorded in the audit trail; listing is not. */
	if (strcmp(r->action, "list") != 0) {
		audit = audit_open(db, &error);
		if (audit == NULL) {
			fprintf(stderr, "tocsind: %s\n", error);
			goto done;
		}
	}
	if (strcmp(r->action, "add") == 0)
		status = run_add(db, set, audit, r, now_ms);
	else if (strcmp(r->action, "expire") == 0)
		status = run_expire(db, set, audit, r, now_ms);
	else
		status = run_list(set, r, now_ms);

done:
	free(error);
	audit_close(audit);
	silence_set_free(set);
	statedb_close(db);
	config_free(cfg);
	return status;
}

int silence_cli_main(int argc, char **argv)
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
	request_clear(&r);
	return status;
}
