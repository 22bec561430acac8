/*
 * The `remote_write:` section: a list of Prometheus remote-write endpoints that receive
 * every sample the probes and recording rules produce. It is validated with the rest of
 * the config, every error with file:line:column. Secrets are read from their files at
 * load time and never appear in a message.
 */
#ifndef TOCSIN_REMOTE_WRITE_CONFIG_H
#define TOCSIN_REMOTE_WRITE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "collector/series.h"

struct cfg_map;

#define REMOTE_WRITE_DEFAULT_TIMEOUT_MS        30000u
#define REMOTE_WRITE_DEFAULT_BATCH_SIZE        2000u
#define REMOTE_WRITE_DEFAULT_FLUSH_INTERVAL_MS 5000u
#define REMOTE_WRITE_DEFAULT_QUEUE_MAX_BYTES   (256ULL * 1024 * 1024)
#define REMOTE_WRITE_DEFAULT_RETRY_INITIAL_MS  500u
#define REMOTE_WRITE_DEFAULT_RETRY_MAX_MS      30000u
/* The label that names this tocsind in every series sent; the host name by default. */
#define REMOTE_WRITE_INSTANCE_LABEL "tocsin_instance"

struct remote_write_endpoint_config {
	char *name; /* unique, [A-Za-z0-9_.-]+: the queue directory's name and metric label */
	char *url;  /* http:// or https:// */
	/* tocsin_instance plus the user's external_labels, sorted by name. A series' own
	 * label of the same name wins over these, as in Prometheus. */
	struct label *external_labels;
	size_t external_label_count;
	char *username;     /* basic auth, NULL for none */
	char *password;     /* from password_file; "" with a user name alone */
	char *bearer_token; /* from bearer_token_file, NULL for none */
	uint64_t timeout_ms;
	uint64_t batch_size; /* max samples per request */
	uint64_t flush_interval_ms;
	char *queue_dir; /* NULL: DATA_DIR/remote-write/NAME */
	uint64_t queue_max_bytes;
	uint64_t retry_initial_ms; /* cap of the first retry's delay (full jitter) */
	uint64_t retry_max_ms;     /* cap of every retry delay, Retry-After included */
};

struct remote_write_config {
	struct remote_write_endpoint_config *endpoints;
	size_t endpoint_count;
	uint64_t fingerprint; /* of the section's YAML, to tell a changed section on reload */
};

/*
 * Reads the `remote_write` key of the root mapping. Returns NULL when the key is absent,
 * an empty list, or has errors (then recorded in the config, positioned).
 */
struct remote_write_config *remote_write_config_read(struct cfg_map *root);

/* Writes one line per endpoint for --check-config; NULL is accepted. */
void remote_write_config_summary(const struct remote_write_config *rc, FILE *out);

/* Frees the section, overwriting the secrets first; NULL is accepted. */
void remote_write_config_free(struct remote_write_config *rc);

#endif
