/*
 * Target discovery from files (Prometheus's file_sd format) or DNS records (dns_sd, in
 * discovery_dns.c). A probe with `discovery:` is a template; this module reads its
 * targets on start and every refresh_interval, and keeps one probe per target made with
 * config_instantiate_probe(). When a template's targets change it calls back, and the
 * daemon hands the scheduler the static probes plus the discovered ones: targets that
 * appear start probing, targets that vanish stop and their series leave /metrics.
 * A target file with errors is logged (throttled) and its last good targets are kept.
 */
#ifndef TOCSIN_DISCOVERY_H
#define TOCSIN_DISCOVERY_H

#include <stddef.h>

#include "collector/series.h"

struct config;
struct config_discovery;
struct config_probe;
struct event_base;

/* One target read from a file: the address and its labels (owned). */
struct discovery_target {
	char *target;
	struct label *labels;
	size_t label_count;
};

/*
 * Reads every file matched by dc->files. Returns 0 and the targets in file order (a
 * target listed twice is kept once), or -1 with every problem in *errors (caller frees);
 * a pattern that matches no file is not an error.
 */
int discovery_read_targets(const struct config_discovery *dc, struct discovery_target **out,
			   size_t *count, char **errors);
void discovery_targets_free(struct discovery_target *targets, size_t count);

/*
 * Checks a template against the targets its files list now: every target's probe must
 * load. Returns 0, or -1 with the errors in *errors. Used when a config is loaded, so that
 * --check-config and reload see template errors at once.
 */
int discovery_check_template(const struct config *cfg, const struct config_probe *tmpl,
			     char **errors);

struct discovery;
typedef void discovery_changed_fn(void *arg);

struct discovery *discovery_new(struct event_base *base, discovery_changed_fn *changed, void *arg);
/* Takes the templates of cfg (which must outlive the next call) and reads their targets
 * now; calls `changed` when the discovered probes differ from before. */
void discovery_set_config(struct discovery *d, const struct config *cfg);
/* The discovered probes, valid until the next refresh or discovery_set_config(). The
 * scheduler may take their parsed state (set it to NULL in these records). */
struct config_probe *const *discovery_probes(struct discovery *d, size_t *count);

/*
 * Reads every template's targets once and returns all their probes (an array the caller
 * frees with config_probe_clear on each and free). Targets of a template whose files
 * have errors are left out, with the errors in *errors (caller frees; NULL when none).
 */
struct config_probe *discovery_expand(const struct config *cfg, size_t *count, char **errors);
void discovery_free(struct discovery *d);

#endif
