/*
 * The `remote_write:` section; see remote_write_config.h.
 */
#include "collector/remote_write_config.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/cfg.h"
#include "collector/hash.h"
#include "collector/secret.h"
#include "collector/xalloc.h"

/* Maximum length of a password or bearer token read from its file. */
#define REMOTE_WRITE_SECRET_MAX 4096

static bool is_name_char(char c)
{
	return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '.' || c == '-';
}

/* A name is a directory name under DATA_DIR/remote-write, so "." and ".." are invalid. */
static bool is_endpoint_name(const char *s)
{
	if (*s == '\0' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s != '\0'; s++)
		if (!is_name_char(*s))
			return false;
	return true;
}

/* Checks the URL and derives the default name HOST_PORT from it. Returns false (error
 * recorded) when the URL is not http:// or https://. */
static bool check_url(struct cfg_map *m, const char *url, char **default_name)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
	char q[CFG_QUOTE_SIZE];
	bool ok = false;

	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		cfg_error(m, "url",
			  "%s is not a valid URL; expected http://HOST[:PORT]/PATH or https://...",
			  cfg_quote(url, q, sizeof(q)));
		goto out;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		cfg_error(m, "url", "scheme %s is not supported; use http or https",
			  cfg_quote(scheme, q, sizeof(q)));
		goto out;
	}
	/* The URL is logged and shown in messages, so it must not carry a password. */
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
		cfg_error(m, "url",
			  "the URL contains a user name or password; move them to basic_auth "
			  "(username and password_file)");
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	*default_name = xasprintf("%s_%s", host, port != NULL ? port : "");
	for (char *p = *default_name; *p != '\0'; p++)
		if (!is_name_char(*p))
			*p = '_';
	ok = true;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_url_cleanup(u);
	return ok;
}

static void read_auth(struct cfg_map *m, struct remote_write_endpoint_config *e)
{
	struct cfg_map auth;
	char *path = NULL;
	int rc = cfg_get_map(m, "basic_auth", &auth);

	if (rc == 1) {
		if (cfg_get_string(&auth, "username", &e->username) != 1 &&
		    !cfg_has(&auth, "username"))
			cfg_error(&auth, NULL, "username is missing");
		rc = cfg_get_string(&auth, "password_file", &path);
		if (rc == 1)
			e->password =
			    secret_read_file(&auth, "password_file", path, REMOTE_WRITE_SECRET_MAX);
		else if (rc == 0)
			e->password = xstrdup(""); /* a user name alone is valid basic auth */
		free(path);
		path = NULL;
	}
	cfg_map_finish(&auth);

	if (cfg_get_string(m, "bearer_token_file", &path) == 1) {
		e->bearer_token =
		    secret_read_file(m, "bearer_token_file", path, REMOTE_WRITE_SECRET_MAX);
		if (cfg_has(m, "basic_auth"))
			cfg_error(m, "bearer_token_file",
				  "basic_auth and bearer_token_file are mutually exclusive; keep "
				  "one of them");
	}
	free(path);
}

static int compare_label(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

/* tocsin_instance (the host name unless external_labels sets it) plus external_labels. */
static void read_external_labels(struct cfg_map *m, struct remote_write_endpoint_config *e)
{
	char **names = NULL, **values = NULL;
	size_t count = 0;
	bool has_instance = false;
	char q[CFG_QUOTE_SIZE];

	if (cfg_get_string_map(m, "external_labels", &names, &values, &count) < 0)
		return;
	e->external_labels = xcalloc(count + 1, sizeof(*e->external_labels));
	for (size_t i = 0; i < count; i++) {
		if (!series_valid_label_name(names[i]) || strncmp(names[i], "__", 2) == 0) {
			cfg_error(m, "external_labels",
				  "label name %s is invalid; expected [a-zA-Z_][a-zA-Z0-9_]* not "
				  "starting with __",
				  cfg_quote(names[i], q, sizeof(q)));
			continue;
		}
		has_instance |= strcmp(names[i], REMOTE_WRITE_INSTANCE_LABEL) == 0;
		e->external_labels[e->external_label_count++] =
		    (struct label){xstrdup(names[i]), xstrdup(values[i])};
	}
	if (!has_instance) {
		char host[256] = "localhost";

		if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		e->external_labels[e->external_label_count++] =
		    (struct label){xstrdup(REMOTE_WRITE_INSTANCE_LABEL), xstrdup(host)};
	}
	qsort(e->external_labels, e->external_label_count, sizeof(*e->external_labels),
	      compare_label);
	cfg_strv_free(names);
	cfg_strv_free(values);
}

/* Reads a duration into *out when present, checking min_ms <= value <= max_ms. */
static void read_duration(struct cfg_map *m, const char *key, uint64_t min_ms, uint64_t max_ms,
			  const char *range, uint64_t *out)
{
	uint64_t value;

	if (cfg_get_duration_ms(m, key, &value) != 1)
		return;
	if (value < min_ms || value > max_ms)
		cfg_error(m, key, "%" PRIu64 "ms is out of range (accepted: %s)", value, range);
	else
		*out = value;
}

static void read_queue(struct cfg_map *m, struct remote_write_endpoint_config *e)
{
	uint64_t size;
	int64_t number;

	if (cfg_get_int(m, "batch_size", 1, 100000, &number) == 1)
		e->batch_size = (uint64_t)number;
	read_duration(m, "flush_interval", 10, 3600 * 1000, "10ms to 1h", &e->flush_interval_ms);
	cfg_get_string(m, "queue_dir", &e->queue_dir);
	if (e->queue_dir != NULL && e->queue_dir[0] == '\0')
		cfg_error(m, "queue_dir", "is empty; name a directory or remove the key");
	if (cfg_get_size(m, "queue_max_size", &size) == 1) {
		if (size < 64 * 1024 || size > 1024ULL * 1024 * 1024 * 1024)
			cfg_error(m, "queue_max_size",
				  "%" PRIu64 " bytes is out of range (accepted: 64KiB to 1TiB)",
				  size);
		else
			e->queue_max_bytes = size;
	}
}

static void read_retry(struct cfg_map *m, struct remote_write_endpoint_config *e)
{
	struct cfg_map retry;

	if (cfg_get_map(m, "retry_backoff", &retry) == 1) {
		read_duration(&retry, "initial", 1, 3600 * 1000, "1ms to 1h", &e->retry_initial_ms);
		read_duration(&retry, "max", 1, 24 * 3600 * 1000, "1ms to 1d", &e->retry_max_ms);
		if (e->retry_max_ms < e->retry_initial_ms)
			cfg_error(&retry, "max",
				  "%" PRIu64 "ms is shorter than initial (%" PRIu64
				  "ms); make max at least initial",
				  e->retry_max_ms, e->retry_initial_ms);
	}
	cfg_map_finish(&retry);
}

static void read_endpoint(struct cfg_map *m, struct remote_write_endpoint_config *e)
{
	char *default_name = NULL;
	char q[CFG_QUOTE_SIZE];

	e->timeout_ms = REMOTE_WRITE_DEFAULT_TIMEOUT_MS;
	e->batch_size = REMOTE_WRITE_DEFAULT_BATCH_SIZE;
	e->flush_interval_ms = REMOTE_WRITE_DEFAULT_FLUSH_INTERVAL_MS;
	e->queue_max_bytes = REMOTE_WRITE_DEFAULT_QUEUE_MAX_BYTES;
	e->retry_initial_ms = REMOTE_WRITE_DEFAULT_RETRY_INITIAL_MS;
	e->retry_max_ms = REMOTE_WRITE_DEFAULT_RETRY_MAX_MS;

	if (cfg_get_string(m, "url", &e->url) == 1)
		check_url(m, e->url, &default_name);
	else if (!cfg_has(m, "url"))
		cfg_error(m, NULL,
			  "url is missing; set the receiver's write URL, for example "
			  "http://127.0.0.1:8428/api/v1/write");
	if (cfg_get_string(m, "name", &e->name) == 1 && !is_endpoint_name(e->name))
		cfg_error(m, "name", "%s is not a valid name; use letters, digits, _, . and -",
			  cfg_quote(e->name, q, sizeof(q)));
	if (e->name == NULL && default_name != NULL)
		e->name = default_name;
	else
		free(default_name);

	read_external_labels(m, e);
	read_auth(m, e);
	read_duration(m, "timeout", 100, 3600 * 1000, "100ms to 1h", &e->timeout_ms);
	read_queue(m, e);
	read_retry(m, e);
}

static void free_endpoint(struct remote_write_endpoint_config *e)
{
	free(e->name);
	free(e->url);
	for (size_t i = 0; i < e->external_label_count; i++) {
		free((char *)e->external_labels[i].name);
		free((char *)e->external_labels[i].value);
	}
	free(e->external_labels);
	free(e->username);
	secret_free(e->password);
	secret_free(e->bearer_token);
	free(e->queue_dir);
}

struct remote_write_config *remote_write_config_read(struct cfg_map *root)
{
	size_t errors = cfg_error_count(root->cfg);
	struct remote_write_config *rc;
	struct cfg_seq seq;
	size_t count;

	if (cfg_get_seq(root, "remote_write", &seq) != 1)
		return NULL;
	count = cfg_seq_count(&seq);
	if (count == 0)
		return NULL;
	rc = xcalloc(1, sizeof(*rc));
	rc->endpoints = xcalloc(count, sizeof(*rc->endpoints));
	rc->fingerprint = HASH_FNV_OFFSET;
	for (size_t i = 0; i < count; i++) {
		struct remote_write_endpoint_config *e = &rc->endpoints[rc->endpoint_count];
		struct cfg_map m;
		uint64_t fp;

		if (cfg_seq_map(&seq, i, &m) != 1) {
			cfg_map_finish(&m);
			continue;
		}
		rc->endpoint_count++;
		read_endpoint(&m, e);
		fp = cfg_map_fingerprint(&m);
		rc->fingerprint = hash_bytes(rc->fingerprint, &fp, sizeof(fp));
		for (size_t j = 0; e->name != NULL && j + 1 < rc->endpoint_count; j++)
			if (rc->endpoints[j].name != NULL &&
			    strcmp(rc->endpoints[j].name, e->name) == 0)
				cfg_error(
				    &m, cfg_has(&m, "name") ? "name" : "url",
				    "endpoint name \"%s\" is already used by remote_write[%zu]; "
				    "give each endpoint its own name",
				    e->name, j);
		cfg_map_finish(&m);
	}
	if (cfg_error_count(root->cfg) > errors) {
		remote_write_config_free(rc);
		return NULL;
	}
	return rc;
}

void remote_write_config_summary(const struct remote_write_config *rc, FILE *out)
{
	if (rc == NULL)
		return;
	for (size_t i = 0; i < rc->endpoint_count; i++)
		fprintf(out,
			"remote_write %s: %s, batches of %" PRIu64 " samples every %" PRIu64
			" ms, queue of at most %" PRIu64 " bytes\n",
			rc->endpoints[i].name, rc->endpoints[i].url, rc->endpoints[i].batch_size,
			rc->endpoints[i].flush_interval_ms, rc->endpoints[i].queue_max_bytes);
}

void remote_write_config_free(struct remote_write_config *rc)
{
	if (rc == NULL)
		return;
	for (size_t i = 0; i < rc->endpoint_count; i++)
		free_endpoint(&rc->endpoints[i]);
	free(rc->endpoints);
	free(rc);
}
