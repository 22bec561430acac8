/*
 * Internals shared by the API's files: the request context, JSON replies and parameter
 * parsing. api.c routes a request to one handler, which replies exactly once.
 */
#ifndef TOCSIN_API_IMPL_H
#define TOCSIN_API_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "collector/series.h"
#include "web/api.h"

/* Largest request body the API reads; a larger one gets 413. */
#define API_MAX_BODY_SIZE (64 * 1024)
/* Most points a range query computes per series, as Prometheus limits it. */
#define API_MAX_RANGE_POINTS 11000

struct api {
	struct api_sources src;
	struct http_server *srv;
	int64_t start_ms;
};

struct api_request {
	struct api *api;
	struct evhttp_request *req;
	const char *path; /* percent-decoded, after "/api/v1" */
	enum evhttp_cmd_type method;
	struct evkeyvalq params; /* query string, plus a form-encoded POST body */
	const char *token_name;  /* the bearer token that authorized a write, else NULL */
	int64_t now_ms;
};

/* Send `body` (reference taken) as the reply with this status code. */
void api_reply_json(struct evhttp_request *req, int code, json_t *body);
/* Send {"status":"success","data":data} (reference taken) with 200. */
void api_reply_data(struct evhttp_request *req, json_t *data);
/*
 * Send {"status":"error","errorType":..,"error":error,"detail":detail} with `code`;
 * the error type follows from the code as Prometheus's clients expect it.
 */
void api_reply_error(struct evhttp_request *req, int code, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 400 for an invalid parameter: error names the parameter, detail the problem. */
void api_reply_bad_param(struct evhttp_request *req, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The value of parameter `name`, or NULL. */
const char *api_param(const struct api_request *r, const char *name);

/*
 * Parse a time as Prometheus's API accepts it: RFC 3339 ("2024-05-01T10:00:00Z", with
 * fraction and offset) or Unix seconds with an optional fraction. Returns 0 with
 * milliseconds in *out_ms, or -1.
 */
int api_parse_time(const char *text, int64_t *out_ms);
/* Parse a step or duration: "15s", "1m30s" or seconds as a number. 0 or -1. */
int api_parse_duration(const char *text, int64_t *out_ms);
/* Write a time as RFC 3339 with milliseconds, in UTC. buf needs 32 bytes. */
const char *api_format_time(int64_t ms, char *buf, size_t size);
/* Write a sample value as Prometheus does: shortest text that reads back, "NaN", "+Inf". */
const char *api_format_value(double v, char *buf, size_t size);

/* JSON helpers: a time string (null for 0), a label object, a hex fingerprint. */
json_t *api_json_time(int64_t ms);
json_t *api_json_labels(const struct label *labels, size_t count);
json_t *api_json_fingerprint(uint64_t fp);

/*
 * Parse the request body as a JSON object. Returns it (caller decrefs), or NULL after
 * replying 400 (invalid JSON) or 413 (larger than API_MAX_BODY_SIZE).
 */
json_t *api_read_json_body(struct api_request *r);

struct silence_matcher;
/*
 * Reads matchers[index] of a silence request: an object {name, value, isRegex, isEqual}
 * or a string that silence_matcher_parse() reads. Fills *m (free with
 * silence_matcher_clear), or returns -1 with *error (caller frees) naming the index.
 * Pure: no reply is sent, so the fuzz target in tests/fuzz/ can call it.
 */
int api_read_silence_matcher(json_t *item, size_t index, struct silence_matcher *m, char **error);

/*
 * Returns the client's address of req ("" when unknown). The connection owns the text, so
 * copy it to keep it past the request.
 */
const char *api_remote_address(struct evhttp_request *req);

/*
 * Opens the state database transaction that a write and its audit record share, so that
 * neither lands without the other. Returns 0, also when the daemon has no audit trail (then
 * no transaction is opened and the write is committed by itself), or -1 after replying 500.
 */
int api_audit_begin(struct api_request *r);
/*
 * Writes the audit record of the change made since api_audit_begin() and commits the change
 * with it. actor is the token's name and remote the client's address. Takes ownership of
 * detail (a JSON object's text, or NULL for {}). Returns
 * 0, or -1 after rolling both back: the caller then reloads the in-memory copy of what it
 * changed and replies with api_reply_audit_failed().
 */
int api_audit_commit(struct api_request *r, const char *action, char *detail);
/* Rolls back the transaction of api_audit_begin() after the change itself failed. */
void api_audit_rollback(struct api_request *r);
/* Replies 500 to a write whose audit record could not be written, naming `action`. */
void api_reply_audit_failed(struct api_request *r, const char *action);

/* The handlers, one per resource. Each replies once. */
void api_handle_status(struct api_request *r);
void api_handle_buildinfo(struct api_request *r);
void api_handle_probes(struct api_request *r, const char *name);
void api_handle_series(struct api_request *r);
void api_handle_labels(struct api_request *r, const char *name);
void api_handle_query(struct api_request *r);
void api_handle_query_range(struct api_request *r);

/* Most series a range query reads from the archive (web/api_archive.c). */
#define API_ARCHIVE_MAX_SERIES 50

struct expr_selector;
/*
 * Answers a range query of a plain instant selector from the RRD archive when its start
 * is before the oldest window sample of the selected series (or no series has one).
 * Returns 0 when the windows cover the range and nothing was sent, 1 after replying.
 */
int api_archive_query_range(struct api_request *r, const struct expr_selector *sel,
			    int64_t start_ms, int64_t end_ms, int64_t step_ms);
void api_handle_alerts(struct api_request *r);
void api_handle_silences(struct api_request *r, const char *id);
void api_handle_acks(struct api_request *r);
void api_handle_rules(struct api_request *r);
void api_handle_slos(struct api_request *r);
void api_handle_reload(struct api_request *r);
void api_handle_audit(struct api_request *r);
void api_handle_audit_verify(struct api_request *r);

#endif
