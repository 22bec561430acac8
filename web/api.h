/*
 * The JSON REST API under /api/v1: status, probes, series, instant and range queries in
 * Prometheus's response shape, alerts, silences, acknowledgements, rules, SLOs, reload and the audit trail.
 * The HTTP server checks reads against api.read. Writes (POST and DELETE, except the query
 * endpoints' POST form) need a bearer token from the config's `api.tokens`. docs/api.md
 * describes every endpoint.
 */
#ifndef TOCSIN_API_H
#define TOCSIN_API_H

#include <stdint.h>

struct alerter;
struct audit;
struct config;
struct evaluator;
struct event_base;
struct http_server;
struct scheduler;
struct series_registry;
struct window_store;

/*
 * Runs the daemon's reload (as SIGHUP does). Returns 0, or -1 with *errors set to the
 * reasons, one per line (caller frees).
 */
typedef int api_reload_fn(void *arg, char **errors);

/* The daemon modules the API reads. Each must outlive the api; alerter and audit may be
 * NULL. */
struct api_sources {
	struct event_base *base;
	struct config *const *cfg; /* the daemon's current config: replaced on reload */
	struct series_registry *reg;
	struct window_store *ws;
	struct scheduler *sched;
	struct evaluator *ev;
	struct alerter *al;
	struct audit *audit; /* records each write; NULL without the state database */
	api_reload_fn *reload;
	void *reload_arg;
};

struct api;

/* Copies *src. Returns the API; nothing is served until api_attach(). */
struct api *api_new(const struct api_sources *src);

/*
 * Registers the /api/v1/ routes on srv. Call it again for the new server when the daemon
 * rebinds its listener; the api then stops using the old one.
 */
void api_attach(struct api *api, struct http_server *srv);

/* Frees the api. Call it after the HTTP server that serves it is freed. */
void api_free(struct api *api);

#endif
