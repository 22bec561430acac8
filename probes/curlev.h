/*
 * libcurl's multi socket interface driven by the libevent loop. One multi handle serves
 * every transfer of the process (HTTP probes now, webhook delivery later): curl tells us
 * which sockets to watch and when to wake it, and libevent calls back into
 * curl_multi_socket_action(). Loop thread only.
 *
 * The multi handle is created on the first curlev_add() and bound to that call's event
 * base. Users hold a reference (curlev_ref) for as long as they may add transfers; the
 * last curlev_unref() frees the multi handle and its events, so call it before the event
 * base is freed.
 */
#ifndef TOCSIN_CURLEV_H
#define TOCSIN_CURLEV_H

#include <curl/curl.h>

struct event_base;

/*
 * Called once when a transfer ends, with curl's result code. The easy handle has already
 * been removed from the multi handle, so the callback may free it, reuse it, or add it
 * again.
 */
typedef void curlev_done_fn(CURL *easy, CURLcode result, void *arg);

void curlev_ref(void);
void curlev_unref(void);

/*
 * Starts a transfer on `easy`, which the caller keeps owning. Returns 0, or -1 when curl
 * rejects the handle (the callback is then never called) or when `base` differs from the
 * base the multi handle is bound to while transfers are in flight.
 */
int curlev_add(struct event_base *base, CURL *easy, curlev_done_fn *done, void *arg);

/*
 * Stops a transfer without calling its callback. Safe for a handle that already
 * finished. Must not be called from inside one of curl's own callbacks for `easy`.
 */
void curlev_remove(CURL *easy);

/* Transfers in flight, for tests and self-monitoring. */
unsigned curlev_active(void);

#endif
