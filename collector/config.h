/*
 * The configuration model and its loader. A config is loaded and validated completely
 * (every error in the file collected) before anything uses it; a running daemon swaps
 * configs only when the new one loaded without errors.
 */
#ifndef TOCSIN_CONFIG_H
#define TOCSIN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "collector/log.h"
#include "collector/series.h"
#include "collector/units.h"

struct alerting_config;
struct remote_write_config;
struct probe_type;

#define CONFIG_DEFAULT_LISTEN      "127.0.0.1:9517"
#define CONFIG_DEFAULT_INTERVAL_MS 10000u
#define CONFIG_DEFAULT_TIMEOUT_MS  5000u
#define CONFIG_DEFAULT_RETENTION   "10s:2d, 1m:30d, 1h:400d"
/* Prometheus's default evaluation_interval. */
#define CONFIG_DEFAULT_EVALUATION_INTERVAL_MS 60000u

enum config_discovery_kind {
	CONFIG_DISCOVERY_FILE, /* file_sd */
	CONFIG_DISCOVERY_DNS,  /* dns_sd */
};

/*
 * Targets of a probe template: from files in Prometheus's file_sd format (a list of
 * {targets: [...], labels: {...}}), or from DNS records (SRV, A or AAAA) of the names
 * listed. Each target becomes a probe named TEMPLATE/TARGET whose YAML is the
 * template's with ${target} replaced.
 */
struct config_discovery {
	enum config_discovery_kind kind;
	char **files; /* file_sd: glob patterns, NULL-terminated */
	size_t file_count;
	char **names; /* dns_sd: names to query, NULL-terminated */
	size_t name_count;
	int dns_type;         /* dns_sd: 33 (SRV), 1 (A) or 28 (AAAA) */
	uint16_t port;        /* dns_sd: port added to A and AAAA targets, 0 for none */
	char *server;         /* dns_sd: "IP[:PORT]" to ask, NULL for the system resolver */
	uint64_t refresh_ms;  /* how often the targets are read again */
	char *template_text;  /* the probe's mapping, ${target} not yet replaced */
	size_t template_line; /* 0-based line of the mapping in its file, for messages */
	char *source;         /* the config file's name */
};

struct config_probe {
	char *name;
	const struct probe_type *type;
	void *state; /* the type's parsed options, freed with type->free */
	uint64_t interval_ms;
	uint64_t timeout_ms;       /* at most interval_ms */
	uint32_t heartbeat_s;      /* RRD heartbeat: 2 x interval unless configured */
	uint64_t fast_interval_ms; /* interval while failing, 0 when not set */
	unsigned rise;             /* consecutive successes that make the probe up */
	unsigned fall;             /* consecutive failures that make the probe down */
	struct label *labels;      /* user labels, owned, sorted by name */
	size_t label_count;
	uint64_t fingerprint; /* hash of the probe's YAML and the global defaults it uses */
	char *location;       /* "file:line:column" of the probe's entry */
	struct config_discovery *discovery; /* a template: not run itself, NULL otherwise */
};

enum config_api_role {
	CONFIG_API_ROLE_READ,  /* may read, which api.read may require a token for */
	CONFIG_API_ROLE_ADMIN, /* may also write: POST and DELETE */
};

/* A bearer token of the HTTP API, stored as the SHA-256 of the token text. */
#define CONFIG_API_SHA256_SIZE 32
struct config_api_token {
	char *name;
	unsigned char sha256[CONFIG_API_SHA256_SIZE];
	enum config_api_role role;
};

/* Who may read (GET, HEAD and the query endpoints' POST form) without a bearer token. */
enum config_api_read {
	CONFIG_API_READ_LOOPBACK, /* peers on 127.0.0.0/8 and ::1; others need a token */
	CONFIG_API_READ_OPEN,     /* everyone */
	CONFIG_API_READ_TOKEN,    /* nobody: every read needs a token of role read or admin */
};

/* The TLS protocol versions http.tls.min_version accepts. */
enum config_tls_version {
	CONFIG_TLS_VERSION_1_2,
	CONFIG_TLS_VERSION_1_3,
};

/* The `http.tls:` section. cert_file is NULL when the section is absent, so HTTP is plain. */
struct config_http_tls {
	char *cert_file; /* PEM certificate, followed by its chain */
	char *key_file;  /* PEM private key without a passphrase */
	enum config_tls_version min_version;
};

/* The `http:` section: limits of the HTTP server, applied to every endpoint. */
struct config_http {
	uint64_t max_header_size;  /* bytes of the request line and headers together */
	uint64_t max_header_count; /* request header fields */
	uint64_t max_body_size;    /* bytes */
	uint64_t max_connections;  /* open client connections */
	uint64_t timeout_ms;       /* read and write timeout of a connection, idle ones too */
	struct config_http_tls tls;
};

struct config {
	char *source;      /* file name, or "<embedded>" */
	char *listen_host; /* "127.0.0.1", "::1" */
	uint16_t listen_port;
	char *data_dir;
	char *user; /* `user:`: the account tocsind switches to when started as root, or NULL */
	char *rrdcached; /* NULL: write archives directly */
	uint64_t interval_ms;
	uint64_t timeout_ms;
	uint64_t heartbeat_ms; /* 0: 2 x each probe's interval */
	struct retention retention;
	bool log_level_set;
	enum log_level log_level;
	struct config_probe *probes;
	size_t probe_count;
	/* `shard: I/N` or --shard: this instance runs only the probes of shard I of N (see
	 * shard.h). A count of 0 means no shard was set, and every probe runs. */
	unsigned shard_index;
	unsigned shard_count;
	/* Glob patterns of rule files, NULL-terminated. A relative pattern is joined to the
	 * directory of the config file when its name has one. */
	char **rule_files;
	size_t rule_file_count;
	uint64_t evaluation_interval_ms; /* interval of rule groups that set none */
	char *state_dir;                 /* alert state and SLO buckets; default DATA_DIR/state */
	bool state_dir_set;              /* given in the file, so --data-dir leaves it alone */
	uint64_t hash;                   /* of the source text */
	/* The `alerting:` section, NULL when absent. */
	struct alerting_config *alerting;
	/* The `remote_write:` section, NULL when absent. */
	struct remote_write_config *remote_write;
	/* The `api:` section's tokens; none means the API rejects every write. */
	struct config_api_token *api_tokens;
	size_t api_token_count;
	enum config_api_read api_read; /* api.read */
	struct config_http http;
};

/* Embedded default config text (etc/tocsin.yml compiled in). */
extern const char tocsin_default_config[];

/*
 * Loads and validates. On success returns the config and sets *errors to NULL. On failure
 * returns NULL and sets *errors to every error message, one per line (caller frees).
 */
struct config *config_load_file(const char *path, char **errors);
struct config *config_load_string(const char *name, const char *text, char **errors);
void config_free(struct config *cfg);

/* Command-line overrides; -1 and *error (caller frees) when the value is invalid.
 * config_set_data_dir() also moves the default state_dir under the new directory. */
int config_set_listen(struct config *cfg, const char *host_port, char **error);
void config_set_data_dir(struct config *cfg, const char *dir);

/*
 * Parses "HOST:PORT", "[V6]:PORT" or ":PORT" (host "0.0.0.0"), port 0 to 65535; *host is
 * allocated. Returns -1 and leaves *host and *port alone when the text is invalid.
 */
int config_parse_listen(const char *text, char **host, uint16_t *port);

/* Writes a short summary (listen address, data_dir, probes by type) for --check-config. */
void config_print_summary(const struct config *cfg, FILE *out);

const struct config_probe *config_find_probe(const struct config *cfg, const char *name);

/*
 * Makes the probe for one discovered target of template `tmpl`: its YAML with ${target}
 * replaced, named TEMPLATE/TARGET, with the target's labels, the template's labels (which
 * win) and instance=TARGET. Returns 0 and fills *out, or -1 with every error in *errors
 * (caller frees), positioned in the config file.
 */
int config_instantiate_probe(const struct config *cfg, const struct config_probe *tmpl,
			     const char *target, const struct label *labels, size_t label_count,
			     struct config_probe *out, char **errors);
void config_probe_clear(struct config_probe *p);

#endif
