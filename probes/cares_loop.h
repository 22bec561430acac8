/*
 * A c-ares channel driven by a libevent loop: the channel's socket-state callback adds
 * and removes one event per socket, and one timer follows ares_timeout(). Used by the
 * dns probe for its queries and by the tcp and icmp probes to resolve target names
 * without blocking the loop.
 */
#ifndef TOCSIN_CARES_LOOP_H
#define TOCSIN_CARES_LOOP_H

#include <ares.h>

struct event_base;
struct cares_loop;

/*
 * Creates a channel with `options`/`optmask` as for ares_init_options(); the socket-state
 * callback is set here and must not be in `optmask`. Returns NULL with the c-ares status
 * in *status when the channel cannot be created.
 */
struct cares_loop *cares_loop_new(struct event_base *base, struct ares_options *options,
				  int optmask, int *status);

ares_channel cares_loop_channel(struct cares_loop *loop);

/* Re-arms the timer from ares_timeout(); call after queuing a query. */
void cares_loop_update(struct cares_loop *loop);

/*
 * Cancels every pending query (their callbacks run with ARES_ECANCELLED) without
 * freeing the channel. Must not be called from inside a c-ares callback.
 */
void cares_loop_cancel(struct cares_loop *loop);

/*
 * Destroys the channel (pending callbacks run with ARES_EDESTRUCTION) and its events.
 * Must not be called from inside a c-ares callback. NULL is accepted.
 */
void cares_loop_free(struct cares_loop *loop);

/*
 * Resolves `host` to addresses of `family` (AF_INET, AF_INET6 or AF_UNSPEC) through the
 * system resolver's configuration, as ares_getaddrinfo() does, and re-arms the timer.
 */
void cares_loop_getaddrinfo(struct cares_loop *loop, const char *host, int family,
			    ares_addrinfo_callback callback, void *arg);

#endif
