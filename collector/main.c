/*
 * tocsind: command-line parsing and dispatch to --check-config, --check-rules, --test-rules,
 * --once or the daemon.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoconf.h"
#include "alerter/silence_cli.h"
#include "collector/audit_cli.h"
#include "collector/config.h"
#include "collector/daemon.h"
#include "collector/log.h"
#include "collector/once.h"
#include "collector/rules.h"
#include "collector/ruletest.h"
#include "collector/shard.h"

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: tocsind [OPTION]...\n"
	    "Monitoring and alerting daemon: runs probes, archives samples in RRD files and\n"
	    "serves them in the Prometheus format on /metrics.\n"
	    "\n"
	    "  -c, --config FILE      read the configuration from FILE (default: the embedded\n"
	    "                         configuration, which monitors this host)\n"
	    "  -t, --check-config     validate the configuration, print every error or a\n"
	    "                         summary, and exit (status 1 when it has errors)\n"
	    "  -1, --once             run every probe once, print its samples and result, and\n"
	    "                         exit (status 0 when every probe succeeded)\n"
	    "      --check-rules FILE...\n"
	    "                         validate rule files, print every error or one summary\n"
	    "                         line per file, and exit (status 1 when any has errors)\n"
	    "      --test-rules FILE...\n"
	    "                         run rule unit tests written for `promtool test rules`\n"
	    "                         on a virtual clock, and exit (status 0 when all pass)\n"
	    "  -l, --listen ADDR:PORT serve HTTP on ADDR:PORT instead of the configured address\n"
	    "                         (e.g. 127.0.0.1:9517, [::1]:9517)\n"
	    "  -d, --data-dir DIR     write archives under DIR instead of the configured data_dir\n"
	    "      --shard I/N        run only the probes of shard I of N (0 <= I < N); this\n"
	    "                         overrides the config's `shard`. A probe's shard is the\n"
	    "                         64-bit FNV-1a hash of its name and a zero byte, mixed by\n"
	    "                         MurmurHash3's fmix64, modulo N (see docs/configuration.md).\n"
	    "                         With --once, also print each probe's shard\n"
	    "  -L, --log-level LEVEL  error, warn, notice, info or debug (default: info)\n"
	    "      --log-target TARGET\n"
	    "                         where log lines go: stderr (the default; under systemd\n"
	    "                         stderr already reaches the journal), syslog (facility\n"
	    "                         daemon) or journal (the journal's native socket, with\n"
	    "                         structured fields; stderr when the socket is missing)\n"
	    "      --user NAME        when started as root, switch to user NAME (and its\n"
	    "                         groups) once the HTTP port is bound and the data and\n"
	    "                         state directories are given to it; overrides `user`\n"
	    "      --pid-file FILE    write the process ID to FILE, remove it at exit; refuse\n"
	    "                         to start when FILE names a running process\n"
	    "  -V, --version          print the version and exit\n"
	    "  -h, --help             print this help and exit\n"
	    "\n"
	    "Signals: SIGHUP reloads the configuration (kept unchanged when the new one has\n"
	    "errors); SIGTERM and SIGINT stop probes, flush archives and exit.\n"
	    "With $NOTIFY_SOCKET set, readiness, reloads, the stop and watchdog pings are\n"
	    "reported to systemd (Type=notify).\n"
	    "\n");
	silence_cli_usage(out);
	fprintf(out, "\n");
	audit_cli_usage(out);
}

/* Counts the groups, rules and SLOs that came from `file`. */
static void count_rules_of_file(const struct rule_set *set, const char *file, size_t *groups,
				size_t *rules, size_t *slos)
{
	size_t length = strlen(file);

	*groups = 0;
	*rules = 0;
	*slos = 0;
	for (size_t i = 0; i < set->group_count; i++) {
		if (strcmp(set->groups[i].file, file) != 0)
			continue;
		(*groups)++;
		*rules += set->groups[i].rule_count;
	}
	/* An SLO's location is "FILE:LINE:COLUMN". */
	for (size_t i = 0; i < set->slo_count; i++) {
		const char *location = set->slos[i].location;

		if (strncmp(location, file, length) == 0 && location[length] == ':')
			(*slos)++;
	}
}

static int check_rules(char *const *files, size_t count)
{
	char *errors = NULL;
	struct rule_set *set =
	    rules_load(files, count, NULL, CONFIG_DEFAULT_EVALUATION_INTERVAL_MS, &errors);

	if (set == NULL) {
		fprintf(stderr, "%s\n", errors);
		free(errors);
		return 1;
	}
	for (size_t i = 0; i < set->file_count; i++) {
		size_t groups;
		size_t rules;
		size_t slos;

		count_rules_of_file(set, set->files[i], &groups, &rules, &slos);
		printf("%s: %zu groups, %zu rules, %zu SLOs\n", set->files[i], groups, rules, slos);
	}
	rules_free(set);
	return 0;
}

static int check_config(const struct daemon_options *opts)
{
	char *errors = NULL;
	struct config *cfg = daemon_load_config(opts, &errors);
	struct rule_set *rules;

	if (cfg == NULL) {
		fprintf(stderr, "%s\n", errors);
		free(errors);
		return 1;
	}
	rules = rules_load(cfg->rule_files, cfg->rule_file_count, NULL,
			   (int64_t)cfg->evaluation_interval_ms, &errors);
	if (rules == NULL) {
		fprintf(stderr, "%s\n", errors);
		free(errors);
		config_free(cfg);
		return 1;
	}
	config_print_summary(cfg, stdout);
	if (cfg->rule_file_count > 0)
		printf("rules: %zu groups, %zu rules, %zu SLOs from %zu files\n",
		       rules->group_count, rules_count(rules), rules->slo_count, rules->file_count);
	rules_free(rules);
	config_free(cfg);
	return 0;
}

static int run_once(const struct daemon_options *opts)
{
	char *errors = NULL;
	struct config *cfg = daemon_load_config(opts, &errors);
	int status;

	if (cfg == NULL) {
		fprintf(stderr, "%s\n", errors);
		free(errors);
		return 1;
	}
	/* The report goes to stdout; keep stderr to warnings unless asked otherwise. */
	if (!opts->log_level_set)
		log_set_level(LOG_LEVEL_WARN);
	status = once_run(cfg, stdout);
	config_free(cfg);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 't'},
	    {"once", no_argument, NULL, '1'},
	    {"check-rules", no_argument, NULL, 'R'},
	    {"test-rules", no_argument, NULL, 'T'},
	    {"listen", required_argument, NULL, 'l'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"shard", required_argument, NULL, 'S'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"log-target", required_argument, NULL, 'G'},
	    {"user", required_argument, NULL, 'U'},
	    {"pid-file", required_argument, NULL, 'P'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct daemon_options opts = {0};
	enum log_target log_target = LOG_TARGET_STDERR;
	bool check = false;
	bool once = false;
	bool check_rule_files = false;
	bool test_rule_files = false;
	int c;

	/* The --silence and --audit actions have options of their own, so they parse the whole
	 * line. */
	if (silence_cli_requested(argc, argv))
		return silence_cli_main(argc, argv);
	if (audit_cli_requested(argc, argv))
		return audit_cli_main(argc, argv);
	while ((c = getopt_long(argc, argv, "c:t1l:d:L:Vh", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			opts.config_path = optarg;
			break;
		case 't':
			check = true;
			break;
		case '1':
			once = true;
			break;
		case 'R':
			check_rule_files = true;
			break;
		case 'T':
			test_rule_files = true;
			break;
		case 'l':
			opts.listen = optarg;
			break;
		case 'd':
			opts.data_dir = optarg;
			break;
		case 'S': {
			unsigned index;
			unsigned count;
			const char *problem = shard_parse(optarg, &index, &count);

			if (problem != NULL) {
				fprintf(stderr,
					"tocsind: --shard: \"%s\" %s; expected I/N with 0 <= I < N "
					"<= %d, e.g. --shard 0/3\n",
					optarg, problem, SHARD_COUNT_MAX);
				return 2;
			}
			opts.shard = optarg;
			break;
		}
		case 'L':
			if (log_level_parse(optarg, &opts.log_level) < 0) {
				fprintf(stderr,
					"tocsind: --log-level: \"%s\" is not a level (accepted: "
					"error, warn, notice, info, debug)\n",
					optarg);
				return 2;
			}
			opts.log_level_set = true;
			log_set_level(opts.log_level);
			break;
		case 'G':
			if (log_target_parse(optarg, &log_target) < 0) {
				fprintf(stderr,
					"tocsind: --log-target: \"%s\" is not a log target "
					"(accepted: stderr, syslog, journal)\n",
					optarg);
				return 2;
			}
			break;
		case 'U':
			if (optarg[0] == '\0') {
				fprintf(stderr, "tocsind: --user: the user name is empty\n");
				return 2;
			}
			opts.user = optarg;
			break;
		case 'P':
			if (optarg[0] == '\0') {
				fprintf(stderr, "tocsind: --pid-file: the path is empty\n");
				return 2;
			}
			opts.pid_file = optarg;
			break;
		case 'V':
			printf("tocsind %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (check_rule_files && test_rule_files) {
		fprintf(stderr, "tocsind: --check-rules and --test-rules exclude each other\n");
		return 2;
	}
	if (check_rule_files) {
		/* The arguments left are the rule files. */
		if (check || once) {
			fprintf(stderr,
				"tocsind: --check-rules excludes --check-config and --once\n");
			return 2;
		}
		if (optind == argc) {
			fprintf(stderr, "tocsind: --check-rules needs at least one rule file\n");
			return 2;
		}
		return check_rules(argv + optind, (size_t)(argc - optind));
	}
	if (test_rule_files) {
		/* The arguments left are the test files. */
		if (check || once) {
			fprintf(stderr,
				"tocsind: --test-rules excludes --check-config and --once\n");
			return 2;
		}
		if (optind == argc) {
			fprintf(stderr, "tocsind: --test-rules needs at least one test file\n");
			return 2;
		}
		/* The report goes to stdout; stderr keeps test-file errors and warnings. */
		if (!opts.log_level_set)
			log_set_level(LOG_LEVEL_WARN);
		return ruletest_run(argv + optind, (size_t)(argc - optind), stdout, stderr);
	}
	if (optind < argc) {
		fprintf(stderr, "tocsind: unexpected argument \"%s\" (see --help)\n", argv[optind]);
		return 2;
	}
	if (check && once) {
		fprintf(stderr, "tocsind: --check-config and --once exclude each other\n");
		return 2;
	}

	if (check)
		return check_config(&opts);
	if (once)
		return run_once(&opts);
	/* Only the daemon logs to the target: the other actions report on stdout and stderr. */
	log_set_target(log_target);
	return daemon_run(&opts);
}
