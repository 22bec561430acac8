/*
 * Certificate facts of the `http` probe's TLS connections, read with OpenSSL while the
 * handshake verifies the server's chain. libcurl's own certificate info is only gathered
 * after a successful verification, but an expired certificate must still show its
 * not-after time, so a verify callback on the connection's SSL_CTX records what it sees
 * and then returns OpenSSL's own verdict unchanged.
 */
#ifndef TOCSIN_HTTP_TLS_H
#define TOCSIN_HTTP_TLS_H

#include <curl/curl.h>
#include <stdbool.h>

/* What the last TLS handshake of a transfer showed; times are Unix seconds. */
struct http_tls_info {
	bool seen;                 /* a certificate chain was presented and checked */
	double leaf_not_after;     /* the server's own certificate */
	double earliest_not_after; /* earliest not-after among the certificates sent */
	bool chain_verified;       /* OpenSSL built and verified a chain to a trusted root */
	double chain_not_after;    /* earliest not-after of the verified chain */
	int verify_error;          /* first X509_V_ERR_* seen, 0 when none */
	bool expired;              /* a certificate in the chain has expired */
	double expired_not_after;  /* not-after of the first expired certificate */
	bool not_yet_valid;
};

/*
 * Makes every new TLS connection of `easy` fill `info` (reset at each handshake, so after
 * a redirect it describes the last server). Returns 0, or -1 when libcurl does not use
 * OpenSSL; the transfer then works without certificate metrics.
 */
int http_tls_watch(CURL *easy, struct http_tls_info *info);

/* Text of an X509_V_ERR_* code, such as "self-signed certificate". */
const char *http_tls_error_text(int verify_error);

#endif
