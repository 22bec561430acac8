/*
 * HTTP client pieces shared by the `http` probe and the webhook receivers; see
 * http_client.h.
 */
#include "probes/http_client.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector/cfg.h"
#include "collector/xalloc.h"

bool http_client_valid_token(const char *name)
{
	if (*name == '\0')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && strchr("!#$%&'*+-.^_`|~", *p) == NULL)
			return false;
	}
	return true;
}

int http_client_check_header(struct cfg_map *m, const char *name, const char *value)
{
	char q[CFG_QUOTE_SIZE];

	if (!http_client_valid_token(name)) {
		cfg_error(m, "headers", "header name %s is not a valid HTTP token",
			  cfg_quote(name, q, sizeof(q)));
		return -1;
	}
	if (strpbrk(value, "\r\n") != NULL) {
		cfg_error(m, "headers", "value of header %s contains a line break", name);
		return -1;
	}
	return 0;
}

int http_client_tls_parse(struct cfg_map *m, struct http_client_tls *tls)
{
	struct cfg_map sub;
	const char *files[] = {"ca_file", "cert_file", "key_file"};
	char **targets[] = {&tls->ca_file, &tls->cert_file, &tls->key_file};
	char q[CFG_QUOTE_SIZE];
	bool failed = false;
	int rc = cfg_get_map(m, "tls", &sub);

	if (rc < 0)
		failed = true;
	if (rc == 1) {
		for (size_t i = 0; i < 3; i++) {
			rc = cfg_get_string(&sub, files[i], targets[i]);
			if (rc < 0) {
				failed = true;
			} else if (rc == 1 && access(*targets[i], R_OK) != 0) {
				cfg_error(&sub, files[i], "cannot read %s: %s",
					  cfg_quote(*targets[i], q, sizeof(q)), strerror(errno));
				failed = true;
			}
		}
		if (cfg_get_string(&sub, "server_name", &tls->server_name) < 0)
			failed = true;
		if (cfg_get_bool(&sub, "insecure_skip_verify", &tls->insecure_skip_verify) < 0)
			failed = true;
		if ((tls->cert_file == NULL) != (tls->key_file == NULL)) {
			cfg_error(&sub, NULL, "cert_file and key_file must be given together");
			failed = true;
		}
	}
	cfg_map_finish(&sub);
	return failed ? -1 : 0;
}

void http_client_tls_clear(struct http_client_tls *tls)
{
	free(tls->ca_file);
	free(tls->cert_file);
	free(tls->key_file);
	free(tls->server_name);
	memset(tls, 0, sizeof(*tls));
}

void http_client_tls_apply(CURL *easy, const struct http_client_tls *tls)
{
	if (tls->ca_file != NULL)
		curl_easy_setopt(easy, CURLOPT_CAINFO, tls->ca_file);
	if (tls->cert_file != NULL)
		curl_easy_setopt(easy, CURLOPT_SSLCERT, tls->cert_file);
	if (tls->key_file != NULL)
		curl_easy_setopt(easy, CURLOPT_SSLKEY, tls->key_file);
	if (tls->insecure_skip_verify) {
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

int http_client_apply_server_name(CURLU *u, const char *server_name, char **request_url,
				  char **connect_to, char **host_header)
{
	char *host = NULL, *port = NULL, *explicit_port = NULL, *full = NULL;
	int rc = -1;

	curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	if (curl_url_get(u, CURLUPART_PORT, &explicit_port, 0) != CURLUE_OK)
		explicit_port = NULL;
	if (curl_url_set(u, CURLUPART_HOST, server_name, 0) != CURLUE_OK)
		goto out;
	curl_url_get(u, CURLUPART_URL, &full, 0);
	*request_url = xstrdup(full);
	*connect_to = xasprintf("%s:%s:%s:%s", server_name, port, host, port);
	*host_header = xasprintf("Host: %s%s%s", host, explicit_port ? ":" : "",
				 explicit_port ? explicit_port : "");
	rc = 0;
out:
	curl_free(host);
	curl_free(port);
	curl_free(explicit_port);
	curl_free(full);
	return rc;
}

char *http_client_redact_url(const char *url)
{
	const char *scheme_end = strstr(url, "://");
	const char *authority;
	const char *at = NULL;

	if (scheme_end == NULL)
		return xstrdup(url);
	authority = scheme_end + 3;
	for (const char *p = authority; *p != '\0' && strchr("/?#", *p) == NULL; p++) {
		if (*p == '@')
			at = p;
	}
	if (at == NULL)
		return xstrdup(url);
	return xasprintf("%.*sREDACTED%s", (int)(authority - url), url, at);
}
