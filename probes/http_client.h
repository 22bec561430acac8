/*
 * The parts of an HTTP client that the `http` probe and the alerter's webhook delivery
 * share: the options of the `tls:` mapping, read from the config and set on a curl easy
 * handle, the request URL for tls.server_name, and the form of a URL that is safe to log.
 */
#ifndef TOCSIN_HTTP_CLIENT_H
#define TOCSIN_HTTP_CLIENT_H

#include <curl/curl.h>
#include <stdbool.h>

struct cfg_map;

/* Client TLS options. Each file was readable when the config was loaded. */
struct http_client_tls {
	char *ca_file;     /* CA certificates for verifying the server; NULL: curl's default */
	char *cert_file;   /* client certificate; set exactly when key_file is set */
	char *key_file;    /* the client certificate's private key */
	char *server_name; /* TLS name (SNI, certificate) when it differs from the URL's host */
	bool insecure_skip_verify;
};

/*
 * Reads the optional `tls` mapping of m: ca_file, cert_file and key_file (each a readable
 * file, cert_file and key_file only together), server_name and insecure_skip_verify.
 * Records each error with its position. Returns 0, or -1 when an option was invalid;
 * http_client_tls_clear() is needed in both cases.
 */
int http_client_tls_parse(struct cfg_map *m, struct http_client_tls *tls);
void http_client_tls_clear(struct http_client_tls *tls);

/* True when name is a non-empty HTTP token (RFC 9110), as header names and methods are. */
bool http_client_valid_token(const char *name);

/*
 * Checks one entry of m's `headers` mapping: the name must be an HTTP token and the value
 * must not contain a line break. Returns 0, or -1 with the error recorded at `headers`.
 */
int http_client_check_header(struct cfg_map *m, const char *name, const char *value);

/*
 * Sets the CA file, client certificate and key, and insecure_skip_verify of tls on easy.
 * server_name is not set here: it changes the request URL, see below.
 */
void http_client_tls_apply(CURL *easy, const struct http_client_tls *tls);

/*
 * Prepares a request whose TLS name (SNI, certificate) is server_name while curl still
 * connects to the host of the URL in u. Sets *request_url to the URL with server_name as
 * its host, *connect_to to "server_name:port:host:port" for CURLOPT_CONNECT_TO, and
 * *host_header to "Host: host[:port]", which keeps the URL's authority. The caller frees
 * all three. u's host is replaced. Returns 0, or -1 with the three outputs left unset when
 * server_name is not a valid host name.
 */
int http_client_apply_server_name(CURLU *u, const char *server_name, char **request_url,
				  char **connect_to, char **host_header);

/*
 * Returns a copy of url (caller frees) whose credentials, as in scheme://user:password@host,
 * are replaced by "REDACTED", so that a password in a URL never reaches a log line.
 */
char *http_client_redact_url(const char *url);

#endif
