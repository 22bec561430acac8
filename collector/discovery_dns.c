/*
 * dns_sd: targets from DNS records, resolved with c-ares on an event loop. SRV records
 * give "HOST:PORT" targets; A and AAAA records give addresses, with the configured port
 * when there is one. A name that does not exist, or has no record of the type, gives no
 * targets; any other failure is an error, and the caller keeps the last good targets.
 */
#include "collector/discovery_dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <event2/event.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/config.h"
#include "collector/discovery.h"
#include "collector/xalloc.h"
#include "probes/cares_loop.h"

#define DNS_CLASS_IN  1
#define DNS_TYPE_A    1
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_SRV  33

struct discovery_dns {
	const struct config_discovery *dc;
	struct cares_loop *loop;
	discovery_dns_done_fn *done;
	void *arg;
	size_t pending;
	struct discovery_target *targets;
	size_t count;
	size_t capacity;
	char *errors;
};

static void add_target(struct discovery_dns *q, const char *target)
{
	struct discovery_target *t;

	for (size_t i = 0; i < q->count; i++) {
		if (strcmp(q->targets[i].target, target) == 0)
			return;
	}
	q->targets = xreallocarray_grow(q->targets, &q->capacity, q->count + 1, sizeof(*t));
	t = &q->targets[q->count++];
	memset(t, 0, sizeof(*t));
	t->target = xstrdup(target);
	t->labels = xcalloc(1, sizeof(*t->labels));
}

static void add_error(struct discovery_dns *q, const char *name, const char *problem)
{
	char *line = xasprintf("dns_sd: %s: %s", name, problem);
	char *joined = q->errors == NULL ? line : xasprintf("%s\n%s", q->errors, line);

	if (joined != line)
		free(line);
	free(q->errors);
	q->errors = joined;
}

/* Host names in SRV records end with the root dot; targets read better without it. */
static void add_host_port(struct discovery_dns *q, const char *host, unsigned port)
{
	size_t len = strlen(host);
	char target[300];

	if (len > 0 && host[len - 1] == '.')
		len--;
	snprintf(target, sizeof(target), "%.*s:%u", (int)len, host, port);
	add_target(q, target);
}

static void add_address(struct discovery_dns *q, int family, const void *addr)
{
	char ip[INET6_ADDRSTRLEN];
	char target[INET6_ADDRSTRLEN + 8];

	inet_ntop(family, addr, ip, sizeof(ip));
	if (q->dc->port == 0)
		snprintf(target, sizeof(target), "%s", ip);
	else if (family == AF_INET6)
		snprintf(target, sizeof(target), "[%s]:%u", ip, q->dc->port);
	else
		snprintf(target, sizeof(target), "%s:%u", ip, q->dc->port);
	add_target(q, target);
}

static int parse_answer(struct discovery_dns *q, const unsigned char *abuf, int alen)
{
	if (q->dc->dns_type == DNS_TYPE_SRV) {
		struct ares_srv_reply *srv = NULL;
		int rc = ares_parse_srv_reply(abuf, alen, &srv);

		for (struct ares_srv_reply *r = srv; r != NULL; r = r->next)
			add_host_port(q, r->host, r->port);
		ares_free_data(srv);
		return rc;
	}
	if (q->dc->dns_type == DNS_TYPE_A) {
		struct ares_addrttl ttls[64];
		int n = 64;
		int rc = ares_parse_a_reply(abuf, alen, NULL, ttls, &n);

		for (int i = 0; rc == ARES_SUCCESS && i < n; i++)
			add_address(q, AF_INET, &ttls[i].ipaddr);
		return rc;
	}
	{
		struct ares_addr6ttl ttls[64];
		int n = 64;
		int rc = ares_parse_aaaa_reply(abuf, alen, NULL, ttls, &n);

		for (int i = 0; rc == ARES_SUCCESS && i < n; i++)
			add_address(q, AF_INET6, &ttls[i].ip6addr);
		return rc;
	}
}

struct name_query {
	struct discovery_dns *q;
	char *name;
};

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct name_query *nq = arg;
	struct discovery_dns *q = nq->q;

	(void)timeouts;
	if (status == ARES_SUCCESS)
		status = parse_answer(q, abuf, alen);
	/* No such name, or no record of that type: no targets, not an error. */
	if (status != ARES_SUCCESS && status != ARES_ENOTFOUND && status != ARES_ENODATA &&
	    status != ARES_ECANCELLED && status != ARES_EDESTRUCTION)
		add_error(q, nq->name, ares_strerror(status));
	free(nq->name);
	free(nq);

	if (--q->pending == 0 && status != ARES_EDESTRUCTION && q->done != NULL)
		q->done(q, q->arg);
}

struct discovery_dns *discovery_dns_new(struct event_base *base, const struct config_discovery *dc,
					char **error)
{
	struct discovery_dns *q = xcalloc(1, sizeof(*q));
	struct ares_options opts = {0};
	int status = ARES_SUCCESS;

	q->dc = dc;
	opts.timeout = 2000;
	opts.tries = 2;
	q->loop = cares_loop_new(base, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES, &status);
	if (q->loop == NULL) {
		*error = xasprintf("dns_sd: cannot start a resolver: %s", ares_strerror(status));
		free(q);
		return NULL;
	}
	if (dc->server != NULL) {
		status = ares_set_servers_ports_csv(cares_loop_channel(q->loop), dc->server);
		if (status != ARES_SUCCESS) {
			*error = xasprintf("dns_sd: server \"%s\": %s", dc->server,
					   ares_strerror(status));
			cares_loop_free(q->loop);
			free(q);
			return NULL;
		}
	}
	return q;
}

bool discovery_dns_busy(const struct discovery_dns *q)
{
	return q->pending > 0;
}

void discovery_dns_start(struct discovery_dns *q, discovery_dns_done_fn *done, void *arg)
{
	const struct config_discovery *dc = q->dc;

	discovery_targets_free(q->targets, q->count);
	q->targets = NULL;
	q->count = 0;
	q->capacity = 0;
	free(q->errors);
	q->errors = NULL;
	q->done = done;
	q->arg = arg;
	q->pending = dc->name_count;
	for (size_t i = 0; i < dc->name_count; i++) {
		struct name_query *nq = xcalloc(1, sizeof(*nq));

		nq->q = q;
		nq->name = xstrdup(dc->names[i]);
		/* The callback may run before ares_query returns. */
		ares_query(cares_loop_channel(q->loop), dc->names[i], DNS_CLASS_IN, dc->dns_type,
			   on_answer, nq);
	}
	cares_loop_update(q->loop);
}

struct discovery_target *discovery_dns_result(struct discovery_dns *q, size_t *count, char **errors)
{
	struct discovery_target *out = q->targets;

	*count = q->count;
	*errors = q->errors;
	q->targets = NULL;
	q->count = 0;
	q->capacity = 0;
	q->errors = NULL;
	return out;
}

void discovery_dns_free(struct discovery_dns *q)
{
	if (q == NULL)
		return;
	q->done = NULL;
	cares_loop_free(q->loop);
	discovery_targets_free(q->targets, q->count);
	free(q->errors);
	free(q);
}

static void stop_loop(struct discovery_dns *q, void *arg)
{
	(void)q;
	event_base_loopbreak(arg);
}

int discovery_dns_resolve_now(const struct config_discovery *dc, struct discovery_target **out,
			      size_t *count, char **errors)
{
	struct event_base *base = event_base_new();
	struct discovery_dns *q = discovery_dns_new(base, dc, errors);

	*out = NULL;
	*count = 0;
	if (q == NULL) {
		event_base_free(base);
		return -1;
	}
	*errors = NULL;
	if (dc->name_count > 0) {
		discovery_dns_start(q, stop_loop, base);
		/* Bounded by c-ares: two tries of 2 s per server for each name. */
		event_base_dispatch(base);
	}
	*out = discovery_dns_result(q, count, errors);
	discovery_dns_free(q);
	event_base_free(base);
	if (*errors != NULL) {
		discovery_targets_free(*out, *count);
		*out = NULL;
		*count = 0;
		return -1;
	}
	return 0;
}
