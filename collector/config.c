/*
 * The configuration loader: reads tocsin.yml through the cfg getters into a struct config,
 * applies defaults and cross-key rules (timeout within interval, heartbeat at least the
 * interval, unique probe names), and hands each probe's remaining keys to its type. Every
 * error of the file is collected; a config is returned only when there is none.
 */
#include "collector/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "alerter/alerting_config.h"
#include "collector/cfg.h"
#include "collector/hash.h"
#include "collector/remote_write_config.h"
#include "collector/shard.h"
#include "collector/xalloc.h"
#include "probes/probe.h"

/* The FHS place for a daemon's state, whatever the install prefix: the embedded config
 * and the systemd unit use the same directory. */
#define CONFIG_DEFAULT_DATA_DIR "/var/lib/tocsin"

/* Defaults of the `http:` section. A scrape or API request is a few hundred bytes. */
#define CONFIG_DEFAULT_HTTP_MAX_HEADER_SIZE  (16 * 1024)
#define CONFIG_DEFAULT_HTTP_MAX_HEADER_COUNT 64
#define CONFIG_DEFAULT_HTTP_MAX_BODY_SIZE    (1024 * 1024)
#define CONFIG_DEFAULT_HTTP_MAX_CONNECTIONS  256
#define CONFIG_DEFAULT_HTTP_TIMEOUT_MS       30000

/* Intervals are RRD steps, so whole seconds; a week is past any sensible polling period. */
#define CONFIG_INTERVAL_MIN_MS 1000u
#define CONFIG_INTERVAL_MAX_MS (7u * 24 * 3600 * 1000)
#define CONFIG_PROBE_NAME_MAX  128

#define CONFIG_LISTEN_EXAMPLES "examples: 127.0.0.1:9517, [::1]:9517, :9517"

/* Settings every probe inherits from the top level. */
struct config_defaults {
	uint64_t interval_ms;
	uint64_t timeout_ms;
	uint64_t heartbeat_ms; /* 0: not set */
};

static bool config_is_digits(const char *s)
{
	return s[0] != '\0' && s[strspn(s, "0123456789")] == '\0';
}

/* Host names and IPv4 addresses: letters, digits, '-', '.' and '_' (for local names). */
static bool config_is_host_name(const char *s)
{
	return s[0] != '\0' &&
	       s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")] ==
		   '\0';
}

static bool config_is_ipv6(const char *s)
{
	struct in6_addr addr;
	char copy[INET6_ADDRSTRLEN + 1];
	size_t len = strcspn(s, "%"); /* a zone ("fe80::1%eth0") is checked by bind, not here */

	if (len == 0 || len >= sizeof copy || (s[len] == '%' && s[len + 1] == '\0'))
		return false;
	memcpy(copy, s, len);
	copy[len] = '\0';
	return inet_pton(AF_INET6, copy, &addr) == 1;
}

int config_parse_listen(const char *text, char **host, uint16_t *port)
{
	const char *port_text;
	char *name;
	unsigned long value;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		name = xstrndup(text + 1, (size_t)(close - text - 1));
		port_text = close + 2;
		if (!config_is_ipv6(name))
			goto bad;
	} else {
		const char *colon = strrchr(text, ':');

		if (colon == NULL)
			return -1;
		/* ":9517" binds every IPv4 address, as "0.0.0.0:9517" would. */
		name = colon == text ? xstrdup("0.0.0.0") : xstrndup(text, (size_t)(colon - text));
		port_text = colon + 1;
		if (!config_is_host_name(name))
			goto bad;
	}
	if (!config_is_digits(port_text) || strlen(port_text) > 5)
		goto bad;
	value = strtoul(port_text, NULL, 10);
	if (value > 65535)
		goto bad;
	*host = name;
	*port = (uint16_t)value;
	return 0;
bad:
	free(name);
	return -1;
}

int config_set_listen(struct config *cfg, const char *host_port, char **error)
{
	char *host;
	uint16_t port;

	if (config_parse_listen(host_port, &host, &port) < 0) {
		char quoted[CFG_QUOTE_SIZE];

		*error = xasprintf("invalid listen address %s (" CONFIG_LISTEN_EXAMPLES ")",
				   cfg_quote(host_port, quoted, sizeof quoted));
		return -1;
	}
	free(cfg->listen_host);
	cfg->listen_host = host;
	cfg->listen_port = port;
	return 0;
}

void config_set_data_dir(struct config *cfg, const char *dir)
{
	free(cfg->data_dir);
	cfg->data_dir = xstrdup(dir);
	if (!cfg->state_dir_set) {
		free(cfg->state_dir);
		cfg->state_dir = xasprintf("%s/state", dir);
	}
}

static void config_probe_free(struct config_probe *p);

static void config_discovery_free(struct config_discovery *dc)
{
	if (dc == NULL)
		return;
	cfg_strv_free(dc->files);
	cfg_strv_free(dc->names);
	free(dc->server);
	free(dc->template_text);
	free(dc->source);
	free(dc);
}

void config_probe_clear(struct config_probe *p)
{
	config_probe_free(p);
	memset(p, 0, sizeof(*p));
}

static void config_probe_free(struct config_probe *p)
{
	config_discovery_free(p->discovery);
	if (p->type != NULL && p->type->free != NULL && p->state != NULL)
		p->type->free(p->state);
	for (size_t i = 0; i < p->label_count; i++) {
		free((char *)p->labels[i].name);
		free((char *)p->labels[i].value);
	}
	free(p->labels);
	free(p->name);
	free(p->location);
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->probe_count; i++)
		config_probe_free(&cfg->probes[i]);
	free(cfg->probes);
	free(cfg->source);
	free(cfg->listen_host);
	free(cfg->data_dir);
	free(cfg->user);
	free(cfg->rrdcached);
	cfg_strv_free(cfg->rule_files);
	free(cfg->state_dir);
	alerting_config_free(cfg->alerting);
	remote_write_config_free(cfg->remote_write);
	for (size_t i = 0; i < cfg->api_token_count; i++)
		free(cfg->api_tokens[i].name);
	free(cfg->api_tokens);
	free(cfg->http.tls.cert_file);
	free(cfg->http.tls.key_file);
	free(cfg);
}

static struct config *config_new_defaults(const char *source)
{
	struct config *c = xcalloc(1, sizeof *c);

	c->source = xstrdup(source);
	if (config_parse_listen(CONFIG_DEFAULT_LISTEN, &c->listen_host, &c->listen_port) < 0)
		abort(); /* the compiled-in default is valid */
	c->data_dir = xstrdup(CONFIG_DEFAULT_DATA_DIR);
	c->state_dir = xstrdup(CONFIG_DEFAULT_DATA_DIR "/state");
	c->evaluation_interval_ms = CONFIG_DEFAULT_EVALUATION_INTERVAL_MS;
	c->interval_ms = CONFIG_DEFAULT_INTERVAL_MS;
	c->timeout_ms = CONFIG_DEFAULT_TIMEOUT_MS;
	if (units_parse_retention(CONFIG_DEFAULT_RETENTION, &c->retention) < 0)
		abort();
	c->log_level = LOG_LEVEL_INFO;
	c->api_read = CONFIG_API_READ_LOOPBACK;
	c->http = (struct config_http){
	    .max_header_size = CONFIG_DEFAULT_HTTP_MAX_HEADER_SIZE,
	    .max_header_count = CONFIG_DEFAULT_HTTP_MAX_HEADER_COUNT,
	    .max_body_size = CONFIG_DEFAULT_HTTP_MAX_BODY_SIZE,
	    .max_connections = CONFIG_DEFAULT_HTTP_MAX_CONNECTIONS,
	    .timeout_ms = CONFIG_DEFAULT_HTTP_TIMEOUT_MS,
	};
	return c;
}

/* Reads an interval: a duration in whole seconds from 1s to 7d. */
static int config_get_interval(struct cfg_map *m, const char *key, uint64_t *out)
{
	char text[32];
	uint64_t ms;
	int rc = cfg_get_duration_ms(m, key, &ms);

	if (rc != 1)
		return rc;
	if (ms % 1000 != 0 || ms < CONFIG_INTERVAL_MIN_MS || ms > CONFIG_INTERVAL_MAX_MS) {
		cfg_error(m, key,
			  "%s is not accepted; an interval is a whole number of seconds from 1s "
			  "to 7d because it is the archive step",
			  units_format_duration(ms, text, sizeof text));
		return -1;
	}
	*out = ms;
	return 1;
}

static int config_get_timeout(struct cfg_map *m, const char *key, uint64_t *out)
{
	uint64_t ms;
	int rc = cfg_get_duration_ms(m, key, &ms);

	if (rc != 1)
		return rc;
	if (ms == 0) {
		cfg_error(m, key, "a timeout of 0 is not accepted; give at least 1ms");
		return -1;
	}
	*out = ms;
	return 1;
}

static int config_get_heartbeat(struct cfg_map *m, const char *key, uint64_t *out)
{
	char text[32];
	uint64_t ms;
	int rc = cfg_get_duration_ms(m, key, &ms);

	if (rc != 1)
		return rc;
	if (ms % 1000 != 0 || ms < 1000 || ms / 1000 > UINT32_MAX) {
		cfg_error(m, key,
			  "%s is not accepted; a heartbeat is a whole number of seconds, at least "
			  "1s, because RRD stores it in seconds",
			  units_format_duration(ms, text, sizeof text));
		return -1;
	}
	*out = ms;
	return 1;
}

/* Checks one retention item and appends it; the caller words the position. */
static const char *config_add_tier(struct retention *r, const char *text, char *why,
				   size_t why_size)
{
	const char *problem = units_retention_tier_problem(text);
	char quoted[CFG_QUOTE_SIZE];
	struct retention_tier tier;

	cfg_quote(text, quoted, sizeof quoted);
	if (problem != NULL) {
		snprintf(why, why_size, "%s %s (STEP:KEEP; " UNITS_RETENTION_EXAMPLES ")", quoted,
			 problem);
		return why;
	}
	if (r->count == RETENTION_MAX_TIERS) {
		snprintf(why, why_size, "%s is one tier too many; at most %d tiers are accepted",
			 quoted, RETENTION_MAX_TIERS);
		return why;
	}
	units_parse_retention_tier(text, &tier);
	if (r->count > 0 && tier.step_s <= r->tier[r->count - 1].step_s) {
		char step[32];
		char previous[32];

		snprintf(why, why_size,
			 "%s has a step (%s) that is not longer than the step of the tier "
			 "before it (%s); list tiers from the shortest step to the longest",
			 quoted,
			 units_format_duration((uint64_t)tier.step_s * 1000, step, sizeof step),
			 units_format_duration((uint64_t)r->tier[r->count - 1].step_s * 1000,
					       previous, sizeof previous));
		return why;
	}
	r->tier[r->count++] = tier;
	return NULL;
}

/* retention: a sequence of "STEP:KEEP" strings, or one comma-separated string of them. */
static void config_read_retention(struct cfg_map *root, struct config *c)
{
	struct retention r = {0};
	enum cfg_kind kind = cfg_kind(root, "retention");
	char why[512];
	bool failed = false;

	if (kind == CFG_KIND_SCALAR) {
		char *text;
		char *save = NULL;

		if (cfg_get_string(root, "retention", &text) != 1)
			return;
		for (char *item = strtok_r(text, ",", &save); item != NULL;
		     item = strtok_r(NULL, ",", &save)) {
			char *end;

			item += strspn(item, " ");
			end = item + strlen(item);
			while (end > item && end[-1] == ' ')
				*--end = '\0';
			if (config_add_tier(&r, item, why, sizeof why) != NULL) {
				cfg_error(root, "retention", "%s", why);
				failed = true;
			}
		}
		free(text);
	} else {
		struct cfg_seq seq;
		int rc = cfg_get_seq(root, "retention", &seq);

		if (rc != 1)
			return;
		for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
			char *item;

			if (cfg_seq_string(&seq, i, &item) != 1) {
				failed = true;
				continue;
			}
			if (config_add_tier(&r, item, why, sizeof why) != NULL) {
				cfg_seq_error(&seq, i, "%s", why);
				failed = true;
			}
			free(item);
		}
	}
	if (!failed && r.count == 0) {
		cfg_error(root, "retention",
			  "no tiers given; list at least one (" UNITS_RETENTION_EXAMPLES ")");
		return;
	}
	if (!failed)
		c->retention = r;
}

static void config_read_listen(struct cfg_map *root, struct config *c)
{
	char quoted[CFG_QUOTE_SIZE];
	char *text;

	if (cfg_get_string(root, "listen", &text) != 1)
		return;
	free(c->listen_host);
	c->listen_host = NULL;
	if (config_parse_listen(text, &c->listen_host, &c->listen_port) < 0)
		cfg_error(root, "listen",
			  "%s is not HOST:PORT with a port from 0 to 65535 (" CONFIG_LISTEN_EXAMPLES
			  ")",
			  cfg_quote(text, quoted, sizeof quoted));
	free(text);
}

/* rrdcached accepts "unix:/ABSOLUTE/PATH" or "HOST:PORT" (librrd's rrdc_connect forms). */
static void config_read_rrdcached(struct cfg_map *root, struct config *c)
{
	char quoted[CFG_QUOTE_SIZE];
	char *text;
	char *host = NULL;
	uint16_t port;
	bool valid;

	if (cfg_get_string(root, "rrdcached", &text) != 1)
		return;
	if (strncmp(text, "unix:", 5) == 0)
		valid = text[5] == '/' && text[6] != '\0';
	else
		valid = text[0] != ':' && config_parse_listen(text, &host, &port) == 0 && port != 0;
	free(host);
	if (!valid) {
		cfg_error(root, "rrdcached",
			  "%s is not an rrdcached address (accepted: unix:/PATH or HOST:PORT; "
			  "examples: unix:/run/rrdcached.sock, 127.0.0.1:42217)",
			  cfg_quote(text, quoted, sizeof quoted));
		free(text);
		return;
	}
	c->rrdcached = text;
}

/*
 * rule_files, evaluation_interval and state_dir. Relative patterns are joined to the
 * config file's directory here, so that the daemon's working directory does not matter.
 */
static void config_read_rule_settings(struct cfg_map *root, struct config *c)
{
	const char *slash = strrchr(c->source, '/');
	char *text;

	if (cfg_get_string_list(root, "rule_files", &c->rule_files, &c->rule_file_count) == 1) {
		for (size_t i = 0; i < c->rule_file_count; i++) {
			char *pattern = c->rule_files[i];

			if (pattern[0] == '\0') {
				cfg_error(
				    root, "rule_files",
				    "item %zu is empty; expected a file name or a glob pattern", i);
			} else if (pattern[0] != '/' && slash != NULL) {
				c->rule_files[i] = xasprintf("%.*s/%s", (int)(slash - c->source),
							     c->source, pattern);
				free(pattern);
			}
		}
	}
	if (cfg_get_duration_ms(root, "evaluation_interval", &c->evaluation_interval_ms) == 1 &&
	    c->evaluation_interval_ms == 0)
		cfg_error(root, "evaluation_interval",
			  "must be longer than 0; it is how often rule groups are evaluated");

	if (cfg_get_string(root, "state_dir", &text) == 1) {
		if (text[0] == '\0') {
			cfg_error(root, "state_dir", "is empty; expected a directory path");
			free(text);
		} else {
			free(c->state_dir);
			c->state_dir = text;
			c->state_dir_set = true;
		}
	}
	if (!c->state_dir_set) {
		free(c->state_dir);
		c->state_dir = xasprintf("%s/state", c->data_dir);
	}
}

static void config_read_globals(struct cfg_map *root, struct config *c, struct config_defaults *d)
{
	char quoted[CFG_QUOTE_SIZE];
	struct cfg_map archive;
	char *text;
	int rc;

	config_read_listen(root, c);
	if (cfg_get_string(root, "data_dir", &text) == 1) {
		if (text[0] == '\0') {
			cfg_error(root, "data_dir", "is empty; expected a directory path");
			free(text);
		} else {
			free(c->data_dir);
			c->data_dir = text;
		}
	}
	if (cfg_get_string(root, "user", &text) == 1) {
		if (text[0] == '\0') {
			cfg_error(root, "user", "is empty; expected a user name such as tocsin");
			free(text);
		} else {
			c->user = text;
		}
	}
	config_read_rrdcached(root, c);
	config_read_rule_settings(root, c);
	shard_read_config(root, c);

	config_get_interval(root, "interval", &c->interval_ms);
	rc = config_get_timeout(root, "timeout", &c->timeout_ms);
	if (rc == 0 && c->timeout_ms > c->interval_ms) {
		/* The default timeout follows a short interval instead of failing the file. */
		c->timeout_ms = c->interval_ms;
	} else if (rc == 1) {
		if (c->timeout_ms > c->interval_ms) {
			char timeout[32];
			char interval[32];

			cfg_error(root, "timeout",
				  "timeout (%s) is longer than interval (%s); a probe run must end "
				  "before the next one starts",
				  units_format_duration(c->timeout_ms, timeout, sizeof timeout),
				  units_format_duration(c->interval_ms, interval, sizeof interval));
		}
	}
	config_read_retention(root, c);

	cfg_get_map(root, "archive", &archive);
	config_get_heartbeat(&archive, "heartbeat", &c->heartbeat_ms);
	cfg_map_finish(&archive);

	if (cfg_get_string(root, "log_level", &text) == 1) {
		if (log_level_parse(text, &c->log_level) == 0)
			c->log_level_set = true;
		else
			cfg_error(root, "log_level",
				  "%s is not a log level (accepted: error, warn, notice, info, "
				  "debug)",
				  cfg_quote(text, quoted, sizeof quoted));
		free(text);
	}
	d->interval_ms = c->interval_ms;
	d->timeout_ms = c->timeout_ms;
	d->heartbeat_ms = c->heartbeat_ms;
}

/*
 * A probe name becomes the `probe` label value and appears in logs, both of which escape
 * it, so any printable text is accepted ("Disk Usage C:\\" is a real check name). Control
 * characters and surrounding spaces are rejected because they cannot be told apart when
 * an operator reads a log line or a dashboard.
 */
static bool config_is_probe_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > CONFIG_PROBE_NAME_MAX || s[0] == ' ' || s[len - 1] == ' ')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
	}
	return true;
}

static int config_label_compare(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

static void config_read_labels(struct cfg_map *probe, struct config_probe *p)
{
	char quoted[CFG_QUOTE_SIZE];
	struct cfg_map labels;
	size_t count;

	if (cfg_get_map(probe, "labels", &labels) != 1) {
		cfg_map_finish(&labels);
		return;
	}
	count = cfg_map_size(&labels);
	p->labels = xcalloc(count + 1, sizeof *p->labels);
	for (size_t i = 0; i < count; i++) {
		const char *name = cfg_map_key(&labels, i);
		char *value;

		/* Non-string keys were reported when the file was read. */
		if (name == NULL || cfg_get_string(&labels, name, &value) != 1)
			continue;
		cfg_quote(name, quoted, sizeof quoted);
		if (!series_valid_label_name(name)) {
			cfg_error(&labels, name,
				  "invalid label name %s (accepted: letters, digits and \"_\", not "
				  "starting with a digit)",
				  quoted);
		} else if (strncmp(name, "__", 2) == 0) {
			cfg_error(&labels, name,
				  "label name %s is reserved: names starting with \"__\" are for "
				  "internal use",
				  quoted);
		} else if (strcmp(name, "probe") == 0) {
			cfg_error(&labels, name,
				  "label name \"probe\" is reserved: tocsin sets it to the probe's "
				  "name");
		} else if (value[0] == '\0') {
			cfg_error(
			    &labels, name,
			    "label value is empty; remove the label instead, because an empty "
			    "value means no label in Prometheus");
		} else {
			p->labels[p->label_count].name = xstrdup(name);
			p->labels[p->label_count].value = value;
			p->label_count++;
			continue;
		}
		free(value);
	}
	qsort(p->labels, p->label_count, sizeof *p->labels, config_label_compare);
	cfg_map_finish(&labels);
}

/*
 * Open-addressing set of the probe names read so far, so that a config with many probes is
 * checked for duplicate names in linear time. A slot contains the index of a probe in
 * config.probes plus one, and 0 marks an empty slot.
 */
struct config_name_index {
	size_t *slots;
	size_t mask;
};

/* Sizes the set for count names at a load factor of at most one half. */
static void config_name_index_init(struct config_name_index *index, size_t count)
{
	size_t size = 16;

	while (size < 2 * count)
		size *= 2;
	index->slots = xcalloc(size, sizeof(*index->slots));
	index->mask = size - 1;
}

static void config_name_index_free(struct config_name_index *index)
{
	free(index->slots);
}

/*
 * Returns the probe named name, or records c->probes[position] under name and returns NULL.
 */
static const struct config_probe *config_name_index_add(struct config_name_index *index,
							const struct config *c, const char *name,
							size_t position)
{
	size_t slot = (size_t)hash_string(HASH_FNV_OFFSET, name) & index->mask;

	while (index->slots[slot] != 0) {
		const struct config_probe *other = &c->probes[index->slots[slot] - 1];

		if (strcmp(other->name, name) == 0)
			return other;
		slot = (slot + 1) & index->mask;
	}
	index->slots[slot] = position + 1;
	return NULL;
}

/* Reads the name of the probe at c->probes[c->probe_count]. names is NULL for a probe made
 * from a template for one target, which is not checked against the others here. */
static void config_read_name(struct cfg_map *m, const struct config *c, struct config_probe *p,
			     struct config_name_index *names)
{
	const struct config_probe *other;
	char quoted[CFG_QUOTE_SIZE];

	if (!cfg_has(m, "name")) {
		cfg_error(m, NULL, "missing required key \"name\"");
		return;
	}
	if (cfg_get_string(m, "name", &p->name) != 1)
		return;
	if (!config_is_probe_name(p->name)) {
		cfg_error(
		    m, "name",
		    "invalid probe name %s (accepted: up to %d bytes of printable text, without "
		    "control characters or leading and trailing spaces)",
		    cfg_quote(p->name, quoted, sizeof quoted), CONFIG_PROBE_NAME_MAX);
		return;
	}
	if (names == NULL)
		return;
	other = config_name_index_add(names, c, p->name, c->probe_count);
	if (other != NULL)
		cfg_error(m, "name", "duplicate probe name %s (first defined at %s)",
			  cfg_quote(p->name, quoted, sizeof quoted), other->location);
}

static void config_read_type(struct cfg_map *m, struct config_probe *p)
{
	char quoted[CFG_QUOTE_SIZE];
	char *name;

	if (!cfg_has(m, "type")) {
		cfg_error(m, NULL, "missing required key \"type\" (known types: %s)",
			  probe_type_names());
		return;
	}
	if (cfg_get_string(m, "type", &name) != 1)
		return;
	p->type = probe_type_find(name);
	if (p->type == NULL)
		cfg_error(m, "type", "unknown probe type %s (known types: %s)",
			  cfg_quote(name, quoted, sizeof quoted), probe_type_names());
	free(name);
}

/* Health-check keys: rise, fall and fast_interval (a shorter interval while failing). */
static void config_read_health(struct cfg_map *m, struct config_probe *p)
{
	char a[32];
	char b[32];
	int64_t n;

	p->rise = 1;
	p->fall = 1;
	if (cfg_get_int(m, "rise", 1, 1000, &n) == 1)
		p->rise = (unsigned)n;
	if (cfg_get_int(m, "fall", 1, 1000, &n) == 1)
		p->fall = (unsigned)n;

	if (cfg_get_duration_ms(m, "fast_interval", &p->fast_interval_ms) != 1) {
		p->fast_interval_ms = 0;
		return;
	}
	if (p->fast_interval_ms > p->interval_ms) {
		cfg_error(m, "fast_interval",
			  "fast_interval (%s) is longer than the probe interval (%s); it is the "
			  "shorter interval used while the probe is failing",
			  units_format_duration(p->fast_interval_ms, a, sizeof a),
			  units_format_duration(p->interval_ms, b, sizeof b));
	} else if (p->fast_interval_ms < p->timeout_ms) {
		cfg_error(m, "fast_interval",
			  "fast_interval (%s) is shorter than the timeout (%s); a run must end "
			  "before the next one starts, so lower the timeout or raise fast_interval",
			  units_format_duration(p->fast_interval_ms, a, sizeof a),
			  units_format_duration(p->timeout_ms, b, sizeof b));
	}
}

/* Timeout and heartbeat rules; they need the probe's final interval. */
static void config_read_timing(struct cfg_map *m, const struct config_defaults *d,
			       struct config_probe *p)
{
	char a[32];
	char b[32];
	char c[32];
	uint64_t heartbeat_ms = 0;
	int rc;

	p->interval_ms = d->interval_ms;
	config_get_interval(m, "interval", &p->interval_ms);

	p->timeout_ms = d->timeout_ms < p->interval_ms ? d->timeout_ms : p->interval_ms;
	if (config_get_timeout(m, "timeout", &p->timeout_ms) == 1 && p->timeout_ms > p->interval_ms)
		cfg_error(m, "timeout",
			  "timeout (%s) is longer than probe interval (%s); a run must end before "
			  "the next one starts",
			  units_format_duration(p->timeout_ms, a, sizeof a),
			  units_format_duration(p->interval_ms, b, sizeof b));

	/* RRD stores unknown for a gap longer than the heartbeat; 2x tolerates one miss. */
	p->heartbeat_s = (uint32_t)(2 * (p->interval_ms / 1000));
	rc = config_get_heartbeat(m, "heartbeat", &heartbeat_ms);
	if (rc == 1 && heartbeat_ms < p->interval_ms) {
		cfg_error(m, "heartbeat",
			  "heartbeat (%s) is shorter than probe interval (%s); use at least 2x the "
			  "interval (%s), or omit it for that default",
			  units_format_duration(heartbeat_ms, a, sizeof a),
			  units_format_duration(p->interval_ms, b, sizeof b),
			  units_format_duration(2 * p->interval_ms, c, sizeof c));
	} else if (rc == 1) {
		p->heartbeat_s = (uint32_t)(heartbeat_ms / 1000);
	} else if (rc == 0 && d->heartbeat_ms != 0 && d->heartbeat_ms < p->interval_ms) {
		cfg_error(m, cfg_has(m, "interval") ? "interval" : NULL,
			  "heartbeat (%s, from archive.heartbeat) is shorter than probe interval "
			  "(%s); give this probe a heartbeat of at least 2x the interval (%s), or "
			  "raise archive.heartbeat",
			  units_format_duration(d->heartbeat_ms, a, sizeof a),
			  units_format_duration(p->interval_ms, b, sizeof b),
			  units_format_duration(2 * p->interval_ms, c, sizeof c));
	} else if (rc == 0 && d->heartbeat_ms != 0) {
		p->heartbeat_s = (uint32_t)(d->heartbeat_ms / 1000);
	}

	config_read_health(m, p);
}

/* Hash of the probe's own YAML and of every inherited setting that changes its runs. */
static uint64_t config_probe_fingerprint(const struct cfg_map *m, const struct config *c,
					 const struct config_probe *p)
{
	uint64_t h = cfg_map_fingerprint(m);

	h = hash_bytes(h, &p->interval_ms, sizeof p->interval_ms);
	h = hash_bytes(h, &p->timeout_ms, sizeof p->timeout_ms);
	h = hash_bytes(h, &p->heartbeat_s, sizeof p->heartbeat_s);
	for (size_t i = 0; i < c->retention.count; i++) {
		h = hash_bytes(h, &c->retention.tier[i].step_s, sizeof c->retention.tier[i].step_s);
		h = hash_bytes(h, &c->retention.tier[i].keep_s, sizeof c->retention.tier[i].keep_s);
	}
	return h;
}

static void config_read_refresh(struct cfg_map *m, struct config_discovery *dc)
{
	if (cfg_get_duration_ms(m, "refresh_interval", &dc->refresh_ms) == 1 &&
	    dc->refresh_ms < 1000)
		cfg_error(m, "refresh_interval",
			  "must be at least 1s: the targets are read again at this interval");
}

static void config_read_file_sd(struct cfg_map *dm, struct config_discovery *dc)
{
	struct cfg_map fm;

	dc->kind = CONFIG_DISCOVERY_FILE;
	if (cfg_get_map(dm, "file_sd", &fm) != 1) {
		cfg_map_discard(&fm);
		return;
	}
	if (cfg_get_string_list(&fm, "files", &dc->files, &dc->file_count) != 1 ||
	    dc->file_count == 0) {
		if (!cfg_has(&fm, "files"))
			cfg_error(&fm, NULL,
				  "missing required key \"files\" (a list of paths or globs of "
				  "target files)");
		else if (dc->files != NULL && dc->file_count == 0)
			cfg_error(&fm, "files", "the list is empty; name at least one target file");
	}
	config_read_refresh(&fm, dc);
	cfg_map_finish(&fm);
}

static void config_read_dns_sd(struct cfg_map *dm, struct config_discovery *dc)
{
	struct cfg_map nm;
	char *type = NULL;
	int64_t port = 0;

	dc->kind = CONFIG_DISCOVERY_DNS;
	dc->dns_type = 33;
	if (cfg_get_map(dm, "dns_sd", &nm) != 1) {
		cfg_map_discard(&nm);
		return;
	}
	if (cfg_get_string_list(&nm, "names", &dc->names, &dc->name_count) != 1 ||
	    dc->name_count == 0)
		cfg_error(&nm, cfg_has(&nm, "names") ? "names" : NULL,
			  "give at least one name to query, e.g. names: [_http._tcp.example.com]");
	if (cfg_get_string(&nm, "type", &type) == 1) {
		if (strcmp(type, "SRV") == 0)
			dc->dns_type = 33;
		else if (strcmp(type, "A") == 0)
			dc->dns_type = 1;
		else if (strcmp(type, "AAAA") == 0)
			dc->dns_type = 28;
		else
			cfg_error(&nm, "type", "\"%s\" is not accepted; use SRV, A or AAAA", type);
		free(type);
	}
	if (cfg_get_int(&nm, "port", 1, 65535, &port) == 1)
		dc->port = (uint16_t)port;
	if (dc->dns_type == 33 && dc->port != 0)
		cfg_error(&nm, "port", "SRV records carry their own port; port is for A and AAAA");
	cfg_get_string(&nm, "server", &dc->server);
	config_read_refresh(&nm, dc);
	cfg_map_finish(&nm);
}

/*
 * Reads `discovery:` of a probe. Returns 1 when the probe is a template (p->discovery
 * set), 0 when it has no discovery, -1 when the key is invalid (errors recorded; the
 * probe is then treated as a template so that its options are not misreported).
 */
static int config_read_discovery(struct cfg_map *m, const struct config *c, struct config_probe *p)
{
	struct cfg_map dm;
	struct config_discovery *dc;
	char where[CFG_PATH_MAX + 64];
	int rc = cfg_get_map(m, "discovery", &dm);

	if (rc <= 0) {
		cfg_map_discard(&dm);
		return rc;
	}
	dc = xcalloc(1, sizeof(*dc));
	dc->refresh_ms = 30000;
	dc->source = xstrdup(c->source);
	dc->template_text = cfg_map_source(m);
	/* "FILE:LINE:COLUMN" of the probe: the line locates the template in its file. */
	cfg_location(m, NULL, where, sizeof(where));
	{
		const char *colon = strrchr(where, ':');
		const char *line = NULL;

		if (colon != NULL) {
			for (const char *q = colon - 1; q >= where && *q != ':'; q--)
				line = q;
		}
		dc->template_line = line != NULL ? strtoul(line, NULL, 10) - 1 : 0;
	}
	p->discovery = dc;

	if (cfg_has(&dm, "file_sd") == cfg_has(&dm, "dns_sd")) {
		cfg_error(&dm, NULL, "give exactly one of \"file_sd\" and \"dns_sd\"");
	} else if (cfg_has(&dm, "file_sd")) {
		config_read_file_sd(&dm, dc);
	} else {
		config_read_dns_sd(&dm, dc);
	}
	if (dc->template_text == NULL)
		cfg_error(m, NULL, "cannot read the probe's text back to use it as a template");
	cfg_map_finish(&dm);
	return 1;
}

/*
 * Reads one probe mapping into *p and closes the mapping. `instance` is true for a probe
 * made from a template for one target: its `discovery` key is then ignored and its
 * options are always checked.
 */
static void config_read_probe_fields(struct cfg_map *m, struct config *c,
				     const struct config_defaults *d, struct config_probe *p,
				     struct config_name_index *names, bool instance)
{
	char where[CFG_PATH_MAX + 64];

	p->location = xstrdup(cfg_location(m, NULL, where, sizeof where));
	config_read_name(m, c, p, names);
	config_read_type(m, p);
	config_read_timing(m, d, p);
	config_read_labels(m, p);

	if (instance) {
		struct cfg_map ignored;

		/* The template's own discovery settings, already read from the template. */
		cfg_get_map(m, "discovery", &ignored);
		cfg_map_discard(&ignored);
	} else if (config_read_discovery(m, c, p) != 0) {
		/* A template's options name ${target}: they are checked for each target when
		 * the targets are read, not here. */
		p->fingerprint = config_probe_fingerprint(m, c, p);
		cfg_map_discard(m);
		return;
	}
	if (p->type == NULL) {
		/* Without a type, its options cannot be distinguished from typos, so none is reported. */
		cfg_map_discard(m);
		return;
	}
	if (p->type->parse(m, &p->state) < 0)
		p->state = NULL;
	p->fingerprint = config_probe_fingerprint(m, c, p);
	cfg_map_finish(m);
}

static void config_read_probe(struct cfg_seq *seq, size_t index, struct config *c,
			      const struct config_defaults *d, struct config_name_index *names)
{
	struct config_probe *p;
	struct cfg_map m;

	if (cfg_seq_map(seq, index, &m) != 1) {
		cfg_map_discard(&m);
		return;
	}
	p = &c->probes[c->probe_count];
	memset(p, 0, sizeof *p);
	/* The name is checked against the probes before this one, so count it only after. */
	config_read_probe_fields(&m, c, d, p, names, false);
	c->probe_count++;
}

/* Replaces every ${target} in text. */
static char *config_substitute_target(const char *text, const char *target)
{
	static const char marker[] = "${target}";
	size_t count = 0;
	const char *p;
	char *out;
	char *w;

	for (p = strstr(text, marker); p != NULL; p = strstr(p + 1, marker))
		count++;
	out = xmalloc(strlen(text) + count * strlen(target) + 1);
	w = out;
	for (p = text;;) {
		const char *hit = strstr(p, marker);

		if (hit == NULL)
			break;
		memcpy(w, p, (size_t)(hit - p));
		w += hit - p;
		memcpy(w, target, strlen(target));
		w += strlen(target);
		p = hit + strlen(marker);
	}
	strcpy(w, p);
	return out;
}

/* Adds a label unless the probe already has one of that name (the template's win). */
static void config_add_label(struct config_probe *p, const char *name, const char *value)
{
	for (size_t i = 0; i < p->label_count; i++) {
		if (strcmp(p->labels[i].name, name) == 0)
			return;
	}
	p->labels = xrealloc(p->labels, (p->label_count + 1) * sizeof(*p->labels));
	p->labels[p->label_count].name = xstrdup(name);
	p->labels[p->label_count].value = xstrdup(value);
	p->label_count++;
}

int config_instantiate_probe(const struct config *cfg, const struct config_probe *tmpl,
			     const char *target, const struct label *labels, size_t label_count,
			     struct config_probe *out, char **errors)
{
	const struct config_discovery *dc = tmpl->discovery;
	struct config scratch = *cfg;
	struct config_defaults d = {cfg->interval_ms, cfg->timeout_ms, cfg->heartbeat_ms};
	char *body = config_substitute_target(dc->template_text, target);
	/* Blank lines in front keep line numbers those of the config file. */
	char *text = xmalloc(dc->template_line + strlen(body) + 1);
	struct cfg *parsed;
	struct cfg_map root;
	char *name;

	memset(text, '\n', dc->template_line);
	strcpy(text + dc->template_line, body);
	free(body);
	parsed = cfg_parse_string(dc->source, text, strlen(text));
	free(text);

	memset(out, 0, sizeof(*out));
	scratch.probes = NULL;
	scratch.probe_count = 0;
	if (cfg_root(parsed, &root) == 0) {
		snprintf(root.path, sizeof(root.path), "%s[target %s]", tmpl->name, target);
		config_read_probe_fields(&root, &scratch, &d, out, NULL, true);
	} else {
		cfg_map_discard(&root);
	}
	for (size_t i = 0; i < label_count; i++) {
		if (!series_valid_label_name(labels[i].name) ||
		    strncmp(labels[i].name, "__", 2) == 0 || strcmp(labels[i].name, "probe") == 0) {
			char quoted[CFG_QUOTE_SIZE];

			cfg_error(&root, NULL,
				  "target %s has the label name %s, which is invalid or reserved",
				  target, cfg_quote(labels[i].name, quoted, sizeof(quoted)));
			continue;
		}
		config_add_label(out, labels[i].name, labels[i].value);
	}
	config_add_label(out, "instance", target);
	qsort(out->labels, out->label_count, sizeof(*out->labels), config_label_compare);

	if (cfg_error_count(parsed) > 0) {
		*errors = xstrdup(cfg_errors(parsed));
		cfg_free(parsed);
		config_probe_clear(out);
		return -1;
	}
	cfg_free(parsed);
	name = xasprintf("%s/%s", tmpl->name, target);
	free(out->name);
	out->name = name;
	*errors = NULL;
	return 0;
}

static void config_read_probes(struct cfg_map *root, struct config *c,
			       const struct config_defaults *d)
{
	struct cfg_seq seq;
	struct config_name_index names;

	if (cfg_get_seq(root, "probes", &seq) != 1)
		return;
	/* Allocated once: growing the array by one probe at a time copies it for every probe
	 * where realloc() cannot extend it in place, as under AddressSanitizer. */
	c->probes = xcalloc(cfg_seq_count(&seq) + 1, sizeof(*c->probes));
	config_name_index_init(&names, cfg_seq_count(&seq));
	for (size_t i = 0; i < cfg_seq_count(&seq); i++)
		config_read_probe(&seq, i, c, d, &names);
	config_name_index_free(&names);
}

/* Decodes 64 hex digits into out; false when text is anything else. */
static bool config_parse_sha256(const char *text, unsigned char out[CONFIG_API_SHA256_SIZE])
{
	static const char digits[] = "0123456789abcdef";

	if (strlen(text) != 2 * CONFIG_API_SHA256_SIZE)
		return false;
	for (size_t i = 0; i < CONFIG_API_SHA256_SIZE; i++) {
		const char *hi = strchr(digits, tolower((unsigned char)text[2 * i]));
		const char *lo = strchr(digits, tolower((unsigned char)text[2 * i + 1]));

		if (text[2 * i] == '\0' || text[2 * i + 1] == '\0' || hi == NULL || lo == NULL)
			return false;
		out[i] = (unsigned char)((hi - digits) << 4 | (lo - digits));
	}
	return true;
}

/* One item of api.tokens: {name, sha256, role}. Returns false when it is invalid. */
static bool config_read_api_token(struct cfg_map *m, const struct config *c,
				  struct config_api_token *t)
{
	char quoted[CFG_QUOTE_SIZE];
	char *text = NULL;
	bool valid = true;

	if (cfg_get_string(m, "name", &t->name) != 1) {
		cfg_error(m, NULL, "name: missing; give each token a name for the logs");
		valid = false;
	} else if (t->name[0] == '\0') {
		cfg_error(m, "name", "is empty; give each token a name for the logs");
		valid = false;
	}
	for (size_t i = 0; valid && i < c->api_token_count; i++) {
		if (strcmp(c->api_tokens[i].name, t->name) == 0) {
			cfg_error(m, "name", "%s is used by another token; names must be unique",
				  cfg_quote(t->name, quoted, sizeof quoted));
			valid = false;
		}
	}
	if (cfg_get_string(m, "sha256", &text) != 1) {
		cfg_error(m, NULL,
			  "sha256: missing; set it to the SHA-256 of the token in hex, as printed "
			  "by: printf %%s TOKEN | sha256sum");
		valid = false;
	} else if (!config_parse_sha256(text, t->sha256)) {
		cfg_error(m, "sha256",
			  "%s is not 64 hex digits; set it to the output of: printf %%s TOKEN | "
			  "sha256sum",
			  cfg_quote(text, quoted, sizeof quoted));
		valid = false;
	}
	free(text);
	text = NULL;
	t->role = CONFIG_API_ROLE_READ;
	if (cfg_get_string(m, "role", &text) == 1) {
		if (strcmp(text, "admin") == 0) {
			t->role = CONFIG_API_ROLE_ADMIN;
		} else if (strcmp(text, "read") != 0) {
			cfg_error(m, "role", "%s is not a role (accepted: admin, read)",
				  cfg_quote(text, quoted, sizeof quoted));
			valid = false;
		}
	}
	free(text);
	return valid;
}

/* api.read: open, loopback or token. `token` without any token would reject every read. */
static void config_read_api_read(struct cfg_map *api, struct config *c)
{
	char quoted[CFG_QUOTE_SIZE];
	char *text = NULL;

	if (cfg_get_string(api, "read", &text) != 1)
		return;
	if (strcmp(text, "open") == 0) {
		c->api_read = CONFIG_API_READ_OPEN;
	} else if (strcmp(text, "loopback") == 0) {
		c->api_read = CONFIG_API_READ_LOOPBACK;
	} else if (strcmp(text, "token") == 0) {
		c->api_read = CONFIG_API_READ_TOKEN;
		if (c->api_token_count == 0)
			cfg_error(api, "read",
				  "is token, but api.tokens is empty, so every read would be "
				  "rejected; add a token of role read or admin");
	} else {
		cfg_error(api, "read", "%s is not a read access (accepted: open, loopback, token)",
			  cfg_quote(text, quoted, sizeof quoted));
	}
	free(text);
}

/*
 * api: {tokens: [{name: ops, sha256: HEX, role: admin}]}. Only the digest is stored, so
 * the config file never holds a usable token.
 */
static void config_read_api(struct cfg_map *root, struct config *c)
{
	struct cfg_map api;
	struct cfg_seq seq;

	if (cfg_get_map(root, "api", &api) != 1) {
		cfg_map_finish(&api);
		return;
	}
	if (cfg_get_seq(&api, "tokens", &seq) == 1) {
		c->api_tokens = xcalloc(cfg_seq_count(&seq) + 1, sizeof(*c->api_tokens));
		for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
			struct config_api_token t = {0};
			struct cfg_map m;

			if (cfg_seq_map(&seq, i, &m) != 1) {
				cfg_map_discard(&m);
				cfg_seq_error(&seq, i,
					      "expected a mapping {name: NAME, sha256: HEX, role: "
					      "admin|read}");
				continue;
			}
			if (config_read_api_token(&m, c, &t))
				c->api_tokens[c->api_token_count++] = t;
			else
				free(t.name);
			cfg_map_finish(&m);
		}
	}
	config_read_api_read(&api, c);
	cfg_map_finish(&api);
}

/*
 * http.tls: {cert_file, key_file, min_version}. Both files are required. The HTTP server
 * loads them at start and on each reload, so their content is checked there, not here.
 */
static void config_read_http_tls(struct cfg_map *http, struct config *c)
{
	struct config_http_tls *tls = &c->http.tls;
	struct cfg_map m;
	char *text;

	if (cfg_get_map(http, "tls", &m) != 1) {
		cfg_map_finish(&m);
		return;
	}
	if (cfg_get_string(&m, "cert_file", &tls->cert_file) == 0)
		cfg_error(&m, NULL,
			  "missing required key \"cert_file\": the PEM file with the server "
			  "certificate and its chain");
	if (cfg_get_string(&m, "key_file", &tls->key_file) == 0)
		cfg_error(&m, NULL,
			  "missing required key \"key_file\": the PEM file with the certificate's "
			  "private key");
	if (cfg_get_string(&m, "min_version", &text) == 1) {
		if (strcmp(text, "1.2") == 0)
			tls->min_version = CONFIG_TLS_VERSION_1_2;
		else if (strcmp(text, "1.3") == 0)
			tls->min_version = CONFIG_TLS_VERSION_1_3;
		else
			cfg_error(&m, "min_version",
				  "invalid TLS version %s (accepted: \"1.2\", \"1.3\")", text);
		free(text);
	}
	cfg_map_finish(&m);
}

/*
 * http: {max_header_size, max_header_count, max_body_size, max_connections, timeout, tls}.
 * Each key is optional. The lower bounds keep an ordinary request or a scrape servable.
 */
static void config_read_http(struct cfg_map *root, struct config *c)
{
	struct cfg_map http;
	uint64_t value;
	int64_t number;

	if (cfg_get_map(root, "http", &http) != 1) {
		cfg_map_finish(&http);
		return;
	}
	if (cfg_get_size(&http, "max_header_size", &value) == 1) {
		if (value < 1024 || value > 1024 * 1024)
			cfg_error(&http, "max_header_size",
				  "%" PRIu64 " bytes is out of range (accepted: 1KiB to 1MiB)",
				  value);
		else
			c->http.max_header_size = value;
	}
	if (cfg_get_int(&http, "max_header_count", 8, 10000, &number) == 1)
		c->http.max_header_count = (uint64_t)number;
	if (cfg_get_size(&http, "max_body_size", &value) == 1) {
		if (value < 1024 || value > 1024ULL * 1024 * 1024)
			cfg_error(&http, "max_body_size",
				  "%" PRIu64 " bytes is out of range (accepted: 1KiB to 1GiB)",
				  value);
		else
			c->http.max_body_size = value;
	}
	if (cfg_get_int(&http, "max_connections", 1, 100000, &number) == 1)
		c->http.max_connections = (uint64_t)number;
	if (cfg_get_duration_ms(&http, "timeout", &value) == 1) {
		if (value < 1000 || value > 3600 * 1000)
			cfg_error(&http, "timeout",
				  "%" PRIu64 "ms is out of range (accepted: 1s to 1h)", value);
		else
			c->http.timeout_ms = value;
	}
	config_read_http_tls(&http, c);
	cfg_map_finish(&http);
}

static struct config *config_load(struct cfg *parsed, char **errors)
{
	struct config *c = config_new_defaults(cfg_file_name(parsed));
	struct config_defaults defaults = {0};
	struct cfg_map root;

	/* After a syntax error there is no document, and cfg_root returns an empty mapping. */
	if (cfg_root(parsed, &root) == 0) {
		config_read_globals(&root, c, &defaults);
		config_read_probes(&root, c, &defaults);
		c->alerting = alerting_config_read(&root);
		c->remote_write = remote_write_config_read(&root);
		config_read_api(&root, c);
		config_read_http(&root, c);
	}
	cfg_map_finish(&root);
	c->hash = cfg_source_hash(parsed);

	if (cfg_error_count(parsed) > 0) {
		*errors = xstrdup(cfg_errors(parsed));
		config_free(c);
		cfg_free(parsed);
		return NULL;
	}
	*errors = NULL;
	cfg_free(parsed);
	return c;
}

/*
 * TODO: reject a file that others can read once a key contains a secret (passwords, tokens);
 * no key read here does yet, so the file's mode is not checked.
 */
struct config *config_load_file(const char *path, char **errors)
{
	return config_load(cfg_parse_file(path), errors);
}

struct config *config_load_string(const char *name, const char *text, char **errors)
{
	return config_load(cfg_parse_string(name, text, strlen(text)), errors);
}

const struct config_probe *config_find_probe(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->probe_count; i++)
		if (strcmp(cfg->probes[i].name, name) == 0)
			return &cfg->probes[i];
	return NULL;
}

/* Discovered targets are not known here; they are split by name as they are found. */
static void config_print_shard_summary(const struct config *cfg, FILE *out)
{
	size_t own = 0;
	size_t total = 0;
	size_t templates = 0;

	for (size_t i = 0; i < cfg->probe_count; i++) {
		const struct config_probe *p = &cfg->probes[i];

		if (p->discovery != NULL) {
			templates++;
			continue;
		}
		total++;
		if (shard_owns(cfg->shard_index, cfg->shard_count, p->name))
			own++;
	}
	fprintf(out, "shard %u/%u: runs %zu of %zu probes", cfg->shard_index, cfg->shard_count, own,
		total);
	if (templates > 0)
		fprintf(out, ", and its share of the targets of %zu discovery template%s",
			templates, templates == 1 ? "" : "s");
	fputc('\n', out);
}

void config_print_summary(const struct config *cfg, FILE *out)
{
	char a[32];
	char b[32];
	char retention[256];
	bool v6 = strchr(cfg->listen_host, ':') != NULL;

	fprintf(out, "config: %s\n", cfg->source);
	fprintf(out, "listen: %s%s%s:%u\n", v6 ? "[" : "", cfg->listen_host, v6 ? "]" : "",
		cfg->listen_port);
	fprintf(out, "data_dir: %s\n", cfg->data_dir);
	if (cfg->rrdcached != NULL)
		fprintf(out, "archives: through rrdcached at %s\n", cfg->rrdcached);
	else
		fprintf(out, "archives: written by tocsind\n");
	fprintf(out, "retention: %s\n",
		units_format_retention(&cfg->retention, retention, sizeof retention));
	fprintf(out, "defaults: interval %s, timeout %s",
		units_format_duration(cfg->interval_ms, a, sizeof a),
		units_format_duration(cfg->timeout_ms, b, sizeof b));
	if (cfg->heartbeat_ms != 0)
		fprintf(out, ", heartbeat %s\n",
			units_format_duration(cfg->heartbeat_ms, a, sizeof a));
	else
		fprintf(out, ", heartbeat 2x interval\n");
	fprintf(out, "log_level: %s\n", log_level_name(cfg->log_level));
	/* Without rule files nothing is evaluated, so the rule settings would only be noise. */
	if (cfg->rule_file_count > 0) {
		fprintf(out, "rule_files:");
		for (size_t i = 0; i < cfg->rule_file_count; i++)
			fprintf(out, "%s%s", i == 0 ? " " : ", ", cfg->rule_files[i]);
		fprintf(out, "\nevaluation_interval: %s\n",
			units_format_duration(cfg->evaluation_interval_ms, a, sizeof a));
		fprintf(out, "state_dir: %s\n", cfg->state_dir);
	}
	fprintf(out, "probes: %zu\n", cfg->probe_count);
	for (size_t i = 0; i < cfg->probe_count; i++) {
		const struct config_probe *p = &cfg->probes[i];
		char c[32];

		fprintf(out, "  %s: type %s, interval %s, timeout %s, heartbeat %s", p->name,
			p->type->name, units_format_duration(p->interval_ms, a, sizeof a),
			units_format_duration(p->timeout_ms, b, sizeof b),
			units_format_duration((uint64_t)p->heartbeat_s * 1000, c, sizeof c));
		for (size_t j = 0; j < p->label_count; j++) {
			char quoted[CFG_QUOTE_SIZE];

			fprintf(out, "%s%s=%s", j == 0 ? ", labels " : ",", p->labels[j].name,
				cfg_quote(p->labels[j].value, quoted, sizeof quoted));
		}
		fputc('\n', out);
	}
	if (cfg->shard_count > 0)
		config_print_shard_summary(cfg, out);
	if (cfg->alerting != NULL)
		alerting_config_summary(cfg->alerting, out);
	remote_write_config_summary(cfg->remote_write, out);
}
