/*
 * tocsinctl's HTTP client for tocsind's JSON API under /api/v1 (docs/api.md), on libcurl's
 * easy interface: one blocking request at a time, connect timeout 5 s, total 30 s. It
 * turns every outcome into one of tocsinctl's exit codes and prints the error itself, so
 * the commands only handle the success case. The token is sent in the Authorization
 * header and never printed.
 */
#ifndef TOCSIN_CTL_CLIENT_H
#define TOCSIN_CTL_CLIENT_H

#include <jansson.h>
#include <stddef.h>

/* Exit codes of tocsinctl; docs/tocsinctl.md and --help list them for scripts. */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_SERVER =
	    1,              /* the server replied with an error, or a reply that is not the API's */
	CTL_EXIT_USAGE = 2, /* invalid command line */
	CTL_EXIT_CONNECT = 3, /* no connection, or no reply within the timeout */
	CTL_EXIT_FIRING = 4,  /* `alerts --fail-if-firing` found an active firing alert */
};

#define CTL_DEFAULT_SERVER "http://127.0.0.1:9517"

struct ctl_client {
	char *base;    /* the server URL without trailing slashes */
	char *display; /* the same URL without user:password, for messages */
	char *token;   /* NULL when no token was given */
	void *curl;    /* CURL * */
};

/* One query parameter; the client escapes name and value. */
struct ctl_param {
	const char *name;
	const char *value;
};

/*
 * Sets up `c` for `server` (http:// or https://) and `token` (NULL or "" for none); both are
 * copied. Returns CTL_EXIT_OK, or prints why to stderr and returns CTL_EXIT_USAGE for a URL
 * of another scheme or a token with control characters, or CTL_EXIT_SERVER when libcurl
 * cannot start.
 */
int ctl_client_init(struct ctl_client *c, const char *server, const char *token);
void ctl_client_cleanup(struct ctl_client *c);

/*
 * Sends `method` to /api/v1`path` with `params` in the query string and `body` (NULL for
 * none, otherwise sent as application/json). `path` must already be escaped (see
 * ctl_client_escape). On a success reply stores its "data" member in *data (a new
 * reference for the caller) and returns CTL_EXIT_OK. Otherwise prints the failure to stderr
 * (the server's error, detail and error list, or the connection problem and its fix) and
 * returns CTL_EXIT_SERVER or CTL_EXIT_CONNECT.
 */
int ctl_client_call(struct ctl_client *c, const char *method, const char *path,
		    const struct ctl_param *params, size_t param_count, json_t *body,
		    json_t **data);

/* Returns `text` percent-encoded for a path segment or query value; the caller frees it. */
char *ctl_client_escape(const char *text);

#endif
