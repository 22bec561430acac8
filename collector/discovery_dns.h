/*
 * dns_sd target discovery: the targets of a template from SRV, A or AAAA records,
 * resolved without blocking the loop. Used by collector/discovery.c.
 */
#ifndef TOCSIN_DISCOVERY_DNS_H
#define TOCSIN_DISCOVERY_DNS_H

#include <stdbool.h>
#include <stddef.h>

struct config_discovery;
struct discovery_target;
struct event_base;

struct discovery_dns;
typedef void discovery_dns_done_fn(struct discovery_dns *q, void *arg);

/* A resolver for dc's names on `base`; NULL with *error (caller frees) on failure. */
struct discovery_dns *discovery_dns_new(struct event_base *base, const struct config_discovery *dc,
					char **error);
/* Queries every name; `done` runs on the loop once all have answered or failed. */
void discovery_dns_start(struct discovery_dns *q, discovery_dns_done_fn *done, void *arg);
bool discovery_dns_busy(const struct discovery_dns *q);
/* Hands over the last lookup's targets and errors (NULL when none); both caller-owned. */
struct discovery_target *discovery_dns_result(struct discovery_dns *q, size_t *count,
					      char **errors);
void discovery_dns_free(struct discovery_dns *q);

/* Resolves dc's names on a private loop and waits (for --once); -1 with *errors. */
int discovery_dns_resolve_now(const struct config_discovery *dc, struct discovery_target **out,
			      size_t *count, char **errors);

#endif
