/*
 * The OpenSSL side of the `http` probe's certificate metrics; see http_tls.h.
 *
 * libcurl calls ssl_ctx_ready() for each new connection after it configured the
 * SSL_CTX (verify mode included), so the callback installed here keeps libcurl's verify
 * mode and only observes. The info pointer travels in the SSL_CTX's own ex_data slot.
 * TLS session resumption would skip the certificate exchange, so the probe turns
 * libcurl's session cache off.
 */
#include "probes/http_tls.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <string.h>
#include <time.h>

static int info_index = -1;

static bool cert_not_after(X509 *cert, double *out)
{
	const ASN1_TIME *t = X509_get0_notAfter(cert);
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return false;
	*out = (double)timegm(&tm);
	return true;
}

/* Earliest not-after of a stack of certificates; false when none has a readable one. */
static bool earliest_not_after(STACK_OF(X509) * certs, double *out)
{
	bool found = false;

	for (int i = 0; certs != NULL && i < sk_X509_num(certs); i++) {
		double t;

		if (cert_not_after(sk_X509_value(certs, i), &t) && (!found || t < *out)) {
			*out = t;
			found = true;
		}
	}
	return found;
}

static int verify_observer(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct http_tls_info *info =
	    ssl != NULL ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), info_index) : NULL;
	int depth = X509_STORE_CTX_get_error_depth(store);

	if (info == NULL)
		return ok;
	if (!info->seen) {
		X509 *leaf = X509_STORE_CTX_get0_cert(store);

		info->seen = leaf != NULL && cert_not_after(leaf, &info->leaf_not_after);
		if (!earliest_not_after(X509_STORE_CTX_get0_untrusted(store),
					&info->earliest_not_after))
			info->earliest_not_after = info->leaf_not_after;
	}
	if (!ok) {
		int err = X509_STORE_CTX_get_error(store);
		X509 *cert = X509_STORE_CTX_get_current_cert(store);

		if (info->verify_error == 0)
			info->verify_error = err;
		if (err == X509_V_ERR_CERT_HAS_EXPIRED && !info->expired && cert != NULL)
			info->expired = cert_not_after(cert, &info->expired_not_after);
		if (err == X509_V_ERR_CERT_NOT_YET_VALID)
			info->not_yet_valid = true;
	} else if (depth == 0 && info->verify_error == 0) {
		/* The last call, for the leaf, after every check of the chain passed. */
		info->chain_verified =
		    earliest_not_after(X509_STORE_CTX_get0_chain(store), &info->chain_not_after);
	}
	return ok;
}

static CURLcode ssl_ctx_ready(CURL *easy, void *ssl_ctx, void *userp)
{
	SSL_CTX *ctx = ssl_ctx;
	struct http_tls_info *info = userp;

	(void)easy;
	memset(info, 0, sizeof(*info));
	SSL_CTX_set_ex_data(ctx, info_index, info);
	SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), verify_observer);
	return CURLE_OK;
}

int http_tls_watch(CURL *easy, struct http_tls_info *info)
{
	static int usable = -1;

	if (usable < 0) {
		const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

		usable = v->ssl_version != NULL && strncmp(v->ssl_version, "OpenSSL/", 8) == 0;
		if (usable)
			info_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
		usable = usable && info_index >= 0;
	}
	if (!usable)
		return -1;
	if (curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_ready) != CURLE_OK ||
	    curl_easy_setopt(easy, CURLOPT_SSL_CTX_DATA, info) != CURLE_OK)
		return -1;
	curl_easy_setopt(easy, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	return 0;
}

const char *http_tls_error_text(int verify_error)
{
	return X509_verify_cert_error_string(verify_error);
}
