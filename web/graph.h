/*
 * The graph endpoint: GET /graph renders archived series as a PNG or SVG image with
 * librrd's rrd_graph_v. The loop thread parses the query, selects series from the
 * registry and replies from a short cache. One worker thread renders, one graph at a
 * time, and hands the image back to the loop. The parameters are described in
 * docs/graphs.md.
 */
#ifndef TOCSIN_GRAPH_H
#define TOCSIN_GRAPH_H

struct event_base;
struct evaluator;
struct http_server;
struct series_registry;

struct graph;

struct graph_options {
	struct series_registry *reg;
	/* Source of threshold rules whose lines are drawn; NULL draws none. */
	const struct evaluator *ev;
	/* The archive store's rrdcached address (store_options.rrdcached), or NULL. */
	const char *rrdcached;
};

/*
 * Starts the render worker and its wake-up event on `base`. The registry and evaluator
 * must outlive the graph; the address is copied. Returns NULL, with the error logged,
 * when the worker cannot be started. Loop thread only.
 */
struct graph *graph_new(struct event_base *base, const struct graph_options *opts);

/*
 * Registers /graph on srv; does nothing when g is NULL. Call it again for every new HTTP
 * server (a reload that changes the listen address creates one). Requests still waiting for a render when their server
 * or connection goes away are dropped without a reply.
 */
void graph_route(struct graph *g, struct http_server *srv);

/*
 * Waits for the render in progress, drops queued requests without replying, and frees
 * everything. Call it before freeing the HTTP server. NULL is accepted.
 */
void graph_free(struct graph *g);

#endif
