/*
 * tocsind's lifecycle; see daemon.h.
 *
 * Reload keeps the daemon on its last good state: the new file is loaded and validated
 * completely first, and nothing of the running config is touched unless that succeeded.
 * Settings that belong to open resources (data_dir, rrdcached, retention) keep their
 * running values until a restart; a reload that changes them logs a warning.
 */
#include "collector/daemon.h"

#include "autoconf.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alerter/alerter.h"
#include "collector/audit.h"
#include "collector/clock.h"
#include "collector/config.h"
#include "collector/discovery.h"
#include "collector/evaluator.h"
#include "collector/pidfile.h"
#include "collector/privdrop.h"
#include "collector/remote_write.h"
#include "collector/remote_write_config.h"
#include "collector/rules.h"
#include "collector/scheduler.h"
#include "collector/sdnotify.h"
#include "collector/selfmon.h"
#include "collector/series.h"
#include "collector/shard.h"
#include "collector/statedb.h"
#include "collector/store.h"
#include "collector/window.h"
#include "collector/xalloc.h"
#include "probes/probe.h"
#include "web/api.h"
#include "web/graph.h"
#include "web/http.h"
#include "web/static.h"

struct daemon {
	const struct daemon_options *opts;
	struct event_base *base;
	struct config *cfg;
	struct series_registry *reg;
	struct store *store;
	struct scheduler *sched;
	struct selfmon *mon;
	struct http_server *http;
	struct graph *graph; /* NULL when its worker could not start */
	struct discovery *disc;
	struct window_store *ws;
	struct statedb *db;
	struct audit *audit; /* NULL without the state database */
	struct evaluator *ev;
	struct alerter *al;
	struct api *api;
	struct remote_write *rw;     /* NULL without a remote_write section */
	struct rule_set *next_rules; /* loaded with the config, applied after it */
	struct event *sig_term;
	struct event *sig_int;
	struct event *sig_hup;
	struct pidfile *pid_file; /* NULL without --pid-file */
	int exit_status;
};

struct config *daemon_load_config(const struct daemon_options *opts, char **errors)
{
	struct config *cfg;
	char *err = NULL;

	if (opts->config_path != NULL)
		cfg = config_load_file(opts->config_path, errors);
	else
		cfg = config_load_string("<embedded>", tocsin_default_config, errors);
	if (cfg == NULL)
		return NULL;

	if (opts->listen != NULL && config_set_listen(cfg, opts->listen, &err) < 0) {
		*errors = xasprintf("--listen: %s", err);
		free(err);
		config_free(cfg);
		return NULL;
	}
	if (opts->data_dir != NULL)
		config_set_data_dir(cfg, opts->data_dir);
	if (opts->shard != NULL && shard_set(cfg, opts->shard, &err) < 0) {
		*errors = xasprintf("--shard: %s", err);
		free(err);
		config_free(cfg);
		return NULL;
	}

	/* A template's options are checked against the targets its files list now. Every
	 * template is checked, so that one run reports all their errors. */
	for (size_t i = 0; i < cfg->probe_count; i++) {
		if (cfg->probes[i].discovery == NULL)
			continue;
		if (discovery_check_template(cfg, &cfg->probes[i], &err) < 0) {
			char *joined = *errors == NULL ? err : xasprintf("%s\n%s", *errors, err);

			if (joined != err)
				free(err);
			free(*errors);
			*errors = joined;
		}
	}
	if (*errors != NULL) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Loads the rule files the config names; NULL with *errors set when any is invalid. */
static struct rule_set *load_rules(const struct config *cfg, char **errors)
{
	return rules_load(cfg->rule_files, cfg->rule_file_count, NULL,
			  (int64_t)cfg->evaluation_interval_ms, errors);
}

/* Series removed from the registry take their sample window with them. */
static void forget_window(void *arg, struct series *s)
{
	window_forget(arg, s);
}

/* Every sample a probe or rule commits to its window goes to remote write as well. */
static void forward_sample(void *arg, const struct series *s, int64_t time_ms, double value)
{
	remote_write_append(arg, s, time_ms, value);
}

/* Hands the scheduler the config's probes plus the discovered ones. */
static void apply_probes(struct daemon *d)
{
	size_t found_count = 0;
	struct config_probe *const *found = discovery_probes(d->disc, &found_count);

	scheduler_apply_with_discovered(d->sched, d->cfg, found, found_count);
}

static void on_discovery_changed(void *arg)
{
	apply_probes(arg);
}

static void refresh_metrics(void *arg)
{
	struct daemon *d = arg;

	selfmon_refresh(d->mon);
	alerter_refresh_metrics(d->al);
	remote_write_refresh_metrics(d->rw, d->reg, clock_wall_ms());
}

static void log_errors(const char *what, const char *errors)
{
	const char *line = errors;

	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		int len = end != NULL ? (int)(end - line) : (int)strlen(line);

		log_error("config", NULL, "%s: %.*s", what, len, line);
		line = end != NULL ? end + 1 : NULL;
	}
}

static bool same_string(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Keeps settings of open resources at their running values and logs which changed. */
static void keep_resource_settings(struct config *next, const struct config *running)
{
	if (!same_string(next->data_dir, running->data_dir))
		log_warn("config", NULL, "data_dir changed to %s; it takes effect at restart",
			 next->data_dir);
	free(next->data_dir);
	next->data_dir = xstrdup(running->data_dir);

	if (!same_string(next->rrdcached, running->rrdcached))
		log_warn("config", NULL, "rrdcached changed; it takes effect at restart");
	free(next->rrdcached);
	next->rrdcached = running->rrdcached != NULL ? xstrdup(running->rrdcached) : NULL;

	if (memcmp(&next->retention, &running->retention, sizeof(next->retention)) != 0)
		log_warn("config", NULL,
			 "retention changed; it applies to archive files created after a restart");
	next->retention = running->retention;

	if (!same_string(next->user, running->user))
		log_warn("config", NULL, "user changed; it takes effect at restart");

	/* The sender keeps its own copy of the endpoints. */
	if ((next->remote_write ? next->remote_write->fingerprint : 0) !=
	    (running->remote_write ? running->remote_write->fingerprint : 0))
		log_warn("config", NULL, "remote_write changed; it takes effect at restart");
}

/*
 * Rebinds the HTTP server when the listen address changed. Returns -1, with the old
 * server still serving, when the new address cannot be bound: the reload is then rejected
 * as a whole, like any other error in the new config.
 */
static int rebind_http(struct daemon *d, struct config *next)
{
	struct http_server *srv;

	if (same_string(next->listen_host, d->cfg->listen_host) &&
	    next->listen_port == d->cfg->listen_port)
		return 0;

	srv = http_server_new(d->base, next->listen_host, next->listen_port, d->reg,
			      refresh_metrics, d);
	if (srv == NULL) {
		log_error(
		    "config", NULL, "cannot listen on %s port %u; still serving on %s port %u",
		    next->listen_host, next->listen_port, d->cfg->listen_host, d->cfg->listen_port);
		return -1;
	}
	http_server_free(d->http);
	d->http = srv;
	graph_route(d->graph, srv);
	api_attach(d->api, srv);
	static_route(srv);
	selfmon_set_sources(d->mon, d->store, d->sched, d->http);
	log_notice("daemon", NULL, "now listening on %s://%s%s%s:%u/",
		   next->http.tls.cert_file != NULL ? "https" : "http",
		   strchr(next->listen_host, ':') ? "[" : "", next->listen_host,
		   strchr(next->listen_host, ':') ? "]" : "", next->listen_port);
	return 0;
}

/* Hands a rejected reload's errors to the API's caller, or frees them after a SIGHUP. */
static void pass_errors(char **out, char *errors)
{
	if (out != NULL)
		*out = errors;
	else
		free(errors);
}

/* Returns 0, or -1 with the reasons in *errors_out when it is not NULL. */
static int reload_config(struct daemon *d, char **errors_out)
{
	char *errors = NULL;
	struct config *next;
	struct rule_set *rules;
	struct http_tls *tls = NULL;

	log_notice("daemon", NULL, "reloading %s",
		   d->opts->config_path ? d->opts->config_path : "the embedded config");
	next = daemon_load_config(d->opts, &errors);
	if (next == NULL) {
		log_errors("reload rejected", errors);
		log_error("config", NULL, "reload rejected; still running the previous config");
		selfmon_config_loaded(d->mon, false, 0);
		audit_config_rejected(d->audit, "signal", d->opts->config_path, errors);
		pass_errors(errors_out, errors);
		return -1;
	}
	rules = load_rules(next, &errors);
	if (rules == NULL) {
		log_errors("reload rejected", errors);
		log_error("config", NULL,
			  "reload rejected: a rule file is invalid; still running the previous "
			  "config and rules");
		selfmon_config_loaded(d->mon, false, 0);
		audit_config_rejected(d->audit, "signal", d->opts->config_path, errors);
		pass_errors(errors_out, errors);
		config_free(next);
		return -1;
	}

	/* Certificate and key files are read again on every reload, so that a renewed
	 * certificate is served without a restart. */
	if (next->http.tls.cert_file != NULL) {
		tls = http_tls_new(&next->http.tls, &errors);
		if (tls == NULL) {
			log_error("config", NULL,
				  "reload rejected: %s; still serving with the previous TLS "
				  "certificate and config",
				  errors);
			selfmon_config_loaded(d->mon, false, 0);
			audit_config_rejected(d->audit, "signal", d->opts->config_path, errors);
			pass_errors(errors_out, errors);
			config_free(next);
			rules_free(rules);
			return -1;
		}
	}
	keep_resource_settings(next, d->cfg);
	if (rebind_http(d, next) < 0) {
		char *error = xasprintf("listen: cannot listen on %s port %u", next->listen_host,
					next->listen_port);

		log_error("config", NULL, "reload rejected; still running the previous config");
		selfmon_config_loaded(d->mon, false, 0);
		audit_config_rejected(d->audit, "signal", d->opts->config_path, error);
		pass_errors(errors_out, error);
		config_free(next);
		rules_free(rules);
		http_tls_free(tls);
		return -1;
	}
	if (!d->opts->log_level_set && next->log_level_set)
		log_set_level(next->log_level);
	audit_config_loaded(d->audit, "signal", "config.reload", d->opts->config_path, d->cfg,
			    evaluator_rules(d->ev), next, rules);
	{
		struct config *old = d->cfg;

		/* Discovery re-reads the targets and applies the new probe set to the
		 * scheduler; the old config is freed only afterwards. */
		d->cfg = next;
		http_server_configure(d->http, next);
		http_server_set_tls(d->http, tls);
		discovery_set_config(d->disc, next);
		alerter_apply(d->al, next->alerting);
		config_free(old);
	}
	evaluator_apply(d->ev, rules, clock_wall_ms());
	selfmon_config_loaded(d->mon, true, next->hash);
	log_notice("daemon", NULL, "reload done: %zu probes, %zu rules",
		   scheduler_probe_count(d->sched), rules_count(rules));
	return 0;
}

/* Tells systemd what the daemon does, for `systemctl status`. */
static void report_status(struct daemon *d, const char *prefix)
{
	sdnotify_status("%s%zu probes, %zu rules, listening on %s port %u", prefix,
			scheduler_probe_count(d->sched), rules_count(evaluator_rules(d->ev)),
			d->cfg->listen_host, http_server_port(d->http));
}

/* Runs reload_config() between RELOADING=1 and READY=1, so that systemd tracks the reload. */
static int reload(struct daemon *d, char **errors_out)
{
	int rc;

	sdnotify_reloading();
	rc = reload_config(d, errors_out);
	sdnotify_send("READY=1");
	report_status(d, rc == 0 ? "" : "reload rejected, still running the previous config: ");
	return rc;
}

/* POST /api/v1/reload. */
static int reload_for_api(void *arg, char **errors)
{
	return reload(arg, errors);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	if (sig == SIGHUP) {
		reload(d, NULL);
		return;
	}
	sdnotify_send("STOPPING=1");
	log_notice("daemon", NULL, "received %s; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	scheduler_stop(d->sched);
	evaluator_stop(d->ev);
	alerter_stop(d->al);
	event_base_loopbreak(d->base);
}

/* Routes libevent's own messages (bind and resolver warnings) into tocsin's log. */
static void libevent_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_ERR)
		log_error("libevent", NULL, "%s", msg);
	else if (severity == EVENT_LOG_WARN)
		log_warn("libevent", NULL, "%s", msg);
	else
		log_debug("libevent", NULL, "%s", msg);
}

/*
 * A loop with precise timers: by default libevent reads a coarse monotonic clock (4 ms
 * steps at HZ=250), which delays every probe turn and shows up as loop lag.
 */
static struct event_base *daemon_new_base(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *base;

	if (ec == NULL)
		return NULL;
	event_set_log_callback(libevent_log);
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	return base;
}

/* The longest time a configured probe takes to produce its first sample after a start.
 * Discovered targets run with their template's interval and timeout, which count here.
 * Each probe's interval and timeout are resolved already, so the top-level defaults
 * count only when no probe is configured. */
static int64_t longest_probe_turn(const struct config *cfg)
{
	uint64_t longest = cfg->probe_count == 0 ? cfg->interval_ms + cfg->timeout_ms : 0;

	for (size_t i = 0; i < cfg->probe_count; i++) {
		uint64_t t = cfg->probes[i].interval_ms + cfg->probes[i].timeout_ms;

		if (t > longest)
			longest = t;
	}
	return (int64_t)longest;
}

/* The alerter needs the state database: without it alerts are evaluated and exported
 * but not notified, and the log says so once. */
static void start_alerter(struct daemon *d)
{
	char *error = NULL;

	if (d->db == NULL) {
		if (d->cfg->alerting != NULL)
			log_error("alerter", NULL,
				  "the alerting section is ignored: notifications need the state "
				  "database; fix the state_dir error above and restart");
		return;
	}
	d->al = alerter_new(d->base, d->db, d->reg, NULL, &error);
	if (d->al == NULL) {
		log_error("alerter", NULL, "%s; no notifications will be sent until a restart",
			  error != NULL ? error : "cannot start the alerter");
		free(error);
		return;
	}
	alerter_apply(d->al, d->cfg->alerting);
}

/* A probe's outcome changed: rules on probe health should see it now, not at their turn. */
static void nudge_evaluator(void *arg)
{
	evaluator_nudge(arg);
}

static int daemon_start(struct daemon *d)
{
	struct store_options so = {
	    .data_dir = d->cfg->data_dir,
	    .rrdcached = d->cfg->rrdcached,
	    .retention = d->cfg->retention,
	};

	d->base = daemon_new_base();
	if (d->base == NULL) {
		log_error("daemon", NULL, "cannot create the event loop");
		return -1;
	}
	d->reg = series_registry_new();
	d->store = store_new(&so);
	if (d->store == NULL)
		return -1;
	d->mon = selfmon_new(d->base, d->reg);
	d->sched = scheduler_new(d->base, d->reg, d->store);
	d->ws = window_store_new(0, WINDOW_DEFAULT_MAX_SAMPLES);
	series_registry_on_remove(d->reg, forget_window, d->ws);
	scheduler_set_window(d->sched, d->ws);
	d->rw = remote_write_new(d->base, d->cfg->remote_write, d->cfg->data_dir);
	if (d->rw != NULL)
		window_store_on_append(d->ws, forward_sample, d->rw);
	{
		char *error = NULL;

		/* NOTE: without the state database the daemon still probes and evaluates
		 * rules, but sends no notifications, and alert states and SLO budgets start
		 * empty after a restart. */
		d->db = statedb_open(d->cfg->state_dir, &error);
		if (d->db == NULL && errno == EBUSY) {
			/* A lock held past the busy timeout is most often a second tocsind on
			 * the same state_dir. Two alerters would send every notification
			 * twice, so stop and let the service manager start us again. */
			log_error("daemon", NULL,
				  "%s; tocsind stops because the outbox of notifications lives "
				  "in that database",
				  error);
			free(error);
			return -1;
		}
		if (d->db == NULL) {
			log_error("daemon", NULL, "%s; alert states will not survive a restart",
				  error != NULL ? error : "cannot open the state database");
			free(error);
		} else if ((d->audit = audit_open(d->db, &error)) == NULL) {
			log_error("audit", NULL, "%s; config changes are not recorded", error);
			free(error);
		}
		audit_config_loaded(d->audit, "tocsind", "config.load", d->opts->config_path, NULL,
				    NULL, d->cfg, d->next_rules);
	}
	start_alerter(d);
	d->ev = evaluator_new(d->base, d->reg, d->store, d->ws, d->db);
	evaluator_set_restore_grace(d->ev, longest_probe_turn(d->cfg));
	if (d->al != NULL)
		evaluator_on_transition(d->ev, alerter_on_transition, d->al);
	evaluator_apply(d->ev, d->next_rules, clock_wall_ms());
	d->next_rules = NULL;
	scheduler_on_outcome_change(d->sched, nudge_evaluator, d->ev);
	d->http = http_server_new(d->base, d->cfg->listen_host, d->cfg->listen_port, d->reg,
				  refresh_metrics, d);
	if (d->http == NULL)
		return -1;
	http_server_configure(d->http, d->cfg);
	if (d->cfg->http.tls.cert_file != NULL) {
		char *error = NULL;
		struct http_tls *tls = http_tls_new(&d->cfg->http.tls, &error);

		if (tls == NULL) {
			log_error("http", NULL, "cannot start TLS: %s", error);
			free(error);
			return -1;
		}
		http_server_set_tls(d->http, tls);
	}
	d->graph = graph_new(
	    d->base,
	    &(struct graph_options){.reg = d->reg, .ev = d->ev, .rrdcached = d->cfg->rrdcached});
	graph_route(d->graph, d->http);
	static_route(d->http);
	{
		struct api_sources api = {
		    .base = d->base,
		    .cfg = &d->cfg,
		    .reg = d->reg,
		    .ws = d->ws,
		    .sched = d->sched,
		    .ev = d->ev,
		    .al = d->al,
		    .audit = d->audit,
		    .reload = reload_for_api,
		    .reload_arg = d,
		};

		d->api = api_new(&api);
		api_attach(d->api, d->http);
	}
	selfmon_set_sources(d->mon, d->store, d->sched, d->http);
	selfmon_config_loaded(d->mon, true, d->cfg->hash);

	d->sig_term = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->sig_int = evsignal_new(d->base, SIGINT, on_signal, d);
	d->sig_hup = evsignal_new(d->base, SIGHUP, on_signal, d);
	evsignal_add(d->sig_term, NULL);
	evsignal_add(d->sig_int, NULL);
	evsignal_add(d->sig_hup, NULL);
	signal(SIGPIPE, SIG_IGN);

	d->disc = discovery_new(d->base, on_discovery_changed, d);
	discovery_set_config(d->disc, d->cfg); /* applies the probes */
	return 0;
}

/* How long SIGTERM waits for queued archive updates before giving up on them. */
#define DAEMON_FLUSH_TIMEOUT_MS 30000u

/* A second SIGTERM or SIGINT during the final flush: the operator wants out now. */
static void on_second_signal(int sig)
{
	static const char msg[] = "level=error module=daemon msg=\"second stop signal during the "
				  "archive flush; exiting without writing the queued updates\"\n";
	ssize_t unused = write(2, msg, sizeof(msg) - 1);

	(void)unused;
	(void)sig;
	_exit(1);
}

/* Returns 0 when every queued update reached the archives, -1 when the flush timed out
 * (the writer thread is then left running: the process is about to exit). */
static int daemon_flush(struct daemon *d)
{
	struct store_stats st;

	if (d->store == NULL)
		return 0;
	signal(SIGTERM, on_second_signal);
	signal(SIGINT, on_second_signal);
	if (store_flush_timeout(d->store, DAEMON_FLUSH_TIMEOUT_MS) < 0) {
		store_get_stats(d->store, &st);
		log_error("daemon", NULL,
			  "archive flush did not finish within %u s; %llu queued updates are lost",
			  DAEMON_FLUSH_TIMEOUT_MS / 1000, (unsigned long long)st.queue_depth);
		return -1;
	}
	store_get_stats(d->store, &st);
	log_notice("daemon", NULL, "archives flushed: %llu updates written",
		   (unsigned long long)st.written);
	return 0;
}

static int daemon_stop(struct daemon *d)
{
	if (d->sig_term != NULL) {
		event_free(d->sig_term);
		event_free(d->sig_int);
		event_free(d->sig_hup);
	}
	/* The queues are on disk already: closing them only writes the last records. */
	if (d->ws != NULL)
		window_store_on_append(d->ws, NULL, NULL);
	remote_write_free(d->rw);
	d->rw = NULL;
	if (daemon_flush(d) < 0) {
		/* NOTE: the writer thread may be inside librrd; exit without joining it. */
		return -1;
	}
	graph_free(d->graph);
	http_server_free(d->http);
	api_free(d->api);
	scheduler_free(d->sched);
	evaluator_free(d->ev);
	alerter_free(d->al);
	rules_free(d->next_rules);
	audit_close(d->audit);
	statedb_close(d->db);
	discovery_free(d->disc);
	selfmon_free(d->mon);
	store_free(d->store);
	series_registry_free(d->reg);
	window_store_free(d->ws);
	if (d->base != NULL)
		event_base_free(d->base);
	config_free(d->cfg);
	return 0;
}

int daemon_options_apply(struct daemon_options *opts, int c, const char *arg)
{
	switch (c) {
	case 'c':
		opts->config_path = arg;
		return 1;
	case 'd':
		opts->data_dir = arg;
		return 1;
	case 'L':
		if (log_level_parse(arg, &opts->log_level) < 0) {
			fprintf(
			    stderr,
			    "tocsind: --log-level: \"%s\" is not a level (accepted: error, warn, "
			    "notice, info, debug) (see --help)\n",
			    arg);
			return -1;
		}
		opts->log_level_set = true;
		return 1;
	default:
		return 0;
	}
}

/*
 * Finds the user to switch to: --user, else the config's `user:`. Returns 0 with
 * user->name set, 0 with it NULL when there is no switch to make, or -1 after printing
 * why the daemon cannot start.
 */
static int resolve_user(const struct daemon *d, struct privdrop_user *user)
{
	const char *name = d->opts->user != NULL ? d->opts->user : d->cfg->user;
	char *source =
	    d->opts->user != NULL ? xstrdup("--user") : xasprintf("%s: user", d->cfg->source);
	char *error = NULL;
	int rc = 0;

	if (name == NULL) {
		if (geteuid() == 0)
			log_warn("daemon", NULL,
				 "running as root; --user NAME (or `user:` in the config) is "
				 "recommended, so that a fault in a probe or receiver cannot act "
				 "as root");
	} else if (privdrop_lookup(name, source, user, &error) < 0) {
		fprintf(stderr, "tocsind: %s\n", error);
		free(error);
		rc = -1;
	} else if (geteuid() != 0 && geteuid() != user->uid) {
		fprintf(stderr,
			"tocsind: %s: only root can switch to user \"%s\" (this process runs as "
			"uid %u); start tocsind as root, or as that user without %s\n",
			source, name, (unsigned)geteuid(), source);
		privdrop_user_free(user);
		rc = -1;
	} else if (geteuid() != 0) {
		privdrop_user_free(user); /* already that user */
	}
	free(source);
	return rc;
}

static bool has_icmp_probes(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->probe_count; i++)
		if (strcmp(cfg->probes[i].type->name, "icmp") == 0)
			return true;
	return false;
}

/*
 * Gives the data and state directories to the user and switches to it. CAP_NET_RAW is
 * kept when the config has icmp probes and the process has it, because icmp probes open
 * their sockets on their first run, after this. Returns 0, or -1 after logging the error.
 */
static int drop_privileges(struct daemon *d, const struct privdrop_user *user)
{
	const struct remote_write_config *rw = d->cfg->remote_write;
	size_t endpoints = rw != NULL ? rw->endpoint_count : 0;
	const char **dirs = xcalloc(2 + endpoints, sizeof(*dirs));
	size_t count = 0;
	bool keep_net_raw = has_icmp_probes(d->cfg) && privdrop_has_net_raw();
	char *error = NULL;

	if (user->name == NULL) {
		free(dirs);
		return 0;
	}
	dirs[count++] = d->cfg->data_dir;
	dirs[count++] = d->cfg->state_dir;
	/* Remote-write queues outside the data directory were created by root as well. */
	for (size_t i = 0; i < endpoints; i++)
		if (rw->endpoints[i].queue_dir != NULL)
			dirs[count++] = rw->endpoints[i].queue_dir;
	for (size_t i = 0; i < count; i++) {
		if (privdrop_chown_tree(dirs[i], user, &error) < 0) {
			log_error("daemon", NULL,
				  "cannot give %s to user %s: %s; fix its owner (chown -R %s %s) "
				  "or configure another directory",
				  dirs[i], user->name, error, user->name, dirs[i]);
			free(error);
			free(dirs);
			return -1;
		}
	}
	free(dirs);
	if (privdrop_switch(user, keep_net_raw, &error) < 0) {
		log_error("daemon", NULL,
			  "cannot switch to user %s: %s; tocsind must start as root "
			  "(or with CAP_SETUID, CAP_SETGID and CAP_CHOWN) to use --user",
			  user->name, error);
		free(error);
		return -1;
	}
	log_notice("daemon", NULL, "running as user %s (uid %u, gid %u)%s", user->name,
		   (unsigned)user->uid, (unsigned)user->gid,
		   keep_net_raw ? ", keeping CAP_NET_RAW for the icmp probes" : "");
	return 0;
}

int daemon_run(const struct daemon_options *opts)
{
	struct daemon d = {.opts = opts};
	struct privdrop_user user = {0};
	char *errors = NULL;
	int status = 1;

	d.cfg = daemon_load_config(opts, &errors);
	if (d.cfg == NULL) {
		fprintf(stderr, "%s\n", errors);
		free(errors);
		return 1;
	}
	d.next_rules = load_rules(d.cfg, &errors);
	if (d.next_rules == NULL) {
		fprintf(stderr, "%s\n", errors);
		free(errors);
		config_free(d.cfg);
		return 1;
	}
	if (!opts->log_level_set && d.cfg->log_level_set)
		log_set_level(d.cfg->log_level);
	if (resolve_user(&d, &user) < 0) {
		rules_free(d.next_rules);
		config_free(d.cfg);
		return 1;
	}
	/* Claimed before the archives open, so that a second daemon stops here. */
	if (opts->pid_file != NULL &&
	    (d.pid_file = pidfile_create(opts->pid_file, &errors)) == NULL) {
		fprintf(stderr, "tocsind: %s\n", errors);
		free(errors);
		privdrop_user_free(&user);
		rules_free(d.next_rules);
		config_free(d.cfg);
		return 1;
	}
	sdnotify_open();

	if (daemon_start(&d) == 0 && drop_privileges(&d, &user) == 0) {
		const char *h = d.cfg->listen_host;
		bool v6 = strchr(h, ':') != NULL;

		printf("tocsind %s: monitoring %zu probe%s; serving "
		       "%s://%s%s%s:%u/ (metrics at /metrics), archives in %s\n",
		       PACKAGE_VERSION, scheduler_probe_count(d.sched),
		       scheduler_probe_count(d.sched) == 1 ? "" : "s",
		       d.cfg->http.tls.cert_file != NULL ? "https" : "http", v6 ? "[" : "", h,
		       v6 ? "]" : "", http_server_port(d.http), d.cfg->data_dir);
		fflush(stdout);
		log_notice("daemon", NULL,
			   "started: %zu probes, %zu rules, listening on %s port %u",
			   scheduler_probe_count(d.sched), rules_count(evaluator_rules(d.ev)), h,
			   http_server_port(d.http));
		sdnotify_send("READY=1");
		report_status(&d, "");
		sdnotify_watchdog_start(d.base);
		event_base_dispatch(d.base);
		status = 0;
	}
	/* Before daemon_stop(), which frees the loop that contains the watchdog timer. */
	sdnotify_close();
	if (daemon_stop(&d) < 0)
		status = 1;
	pidfile_remove(d.pid_file);
	privdrop_user_free(&user);
	log_notice("daemon", NULL, "stopped");
	return status;
}
