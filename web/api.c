/*
 * The API's router: it maps a path under /api/v1 and a method to one handler, checks the
 * bearer token of writes, and owns the JSON reply helpers and the parameter parsers that
 * every resource file uses.
 */
#include "web/api.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "collector/audit.h"
#include "collector/clock.h"
#include "collector/config.h"
#include "collector/log.h"
#include "collector/units.h"
#include "collector/xalloc.h"
#include "web/api_impl.h"
#include "web/http.h"

#define API_PREFIX "/api/v1"

/* ---- replies ------------------------------------------------------------------------- */

void api_reply_json(struct evhttp_request *req, int code, json_t *body)
{
	/* 15 significant digits print Unix times with milliseconds and ratios exactly
	 * enough, without the noise of %.17g. */
	char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
	const char *reason = code == 200 ? "OK" : NULL;

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	if (text != NULL) {
		evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
		evbuffer_add(evhttp_request_get_output_buffer(req), "\n", 1);
	}
	free(text);
	json_decref(body);
	http_send_reply(req, code, reason);
}

void api_reply_data(struct evhttp_request *req, json_t *data)
{
	api_reply_json(req, 200, json_pack("{s:s, s:o}", "status", "success", "data", data));
}

static const char *error_type(int code)
{
	switch (code) {
	case 400:
	case 413:
		return "bad_data";
	case 401:
	case 403:
		return "unauthorized";
	case 404:
		return "not_found";
	case 405:
		return "method_not_allowed";
	case 422:
		return "execution";
	case 503:
		return "unavailable";
	default:
		return "internal";
	}
}

static void reply_error_v(struct evhttp_request *req, int code, const char *error, const char *fmt,
			  va_list ap)
{
	char detail[2048];

	vsnprintf(detail, sizeof(detail), fmt, ap);
	api_reply_json(req, code,
		       json_pack("{s:s, s:s, s:s, s:s}", "status", "error", "errorType",
				 error_type(code), "error", error, "detail", detail));
}

void api_reply_error(struct evhttp_request *req, int code, const char *error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_error_v(req, code, error, fmt, ap);
	va_end(ap);
}

void api_reply_bad_param(struct evhttp_request *req, const char *name, const char *fmt, ...)
{
	char error[160];
	va_list ap;

	snprintf(error, sizeof(error), "invalid parameter \"%s\"", name);
	va_start(ap, fmt);
	reply_error_v(req, 400, error, fmt, ap);
	va_end(ap);
}

/* ---- parameters ---------------------------------------------------------------------- */

const char *api_param(const struct api_request *r, const char *name)
{
	return evhttp_find_header(&r->params, name);
}

/* Parses "[+-]HH:MM" or "Z" at *p; returns the offset in seconds, or -1 with *ok false. */
static long parse_offset(const char *p, bool *ok)
{
	int hours, minutes;
	int consumed = 0;

	*ok = true;
	if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0')
		return 0;
	if ((p[0] == '+' || p[0] == '-') &&
	    sscanf(p + 1, "%2d:%2d%n", &hours, &minutes, &consumed) == 2 && consumed == 5 &&
	    p[6] == '\0' && hours < 24 && minutes < 60)
		return (p[0] == '-' ? -1 : 1) * (long)(hours * 3600 + minutes * 60);
	*ok = false;
	return -1;
}

static int parse_rfc3339(const char *text, int64_t *out_ms)
{
	struct tm tm = {0};
	const char *p = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	int64_t ms = 0;
	long offset;
	bool ok;
	time_t t;

	if (p == NULL)
		return -1;
	if (*p == '.') {
		int64_t scale = 100;

		if (!isdigit((unsigned char)p[1]))
			return -1;
		for (p++; isdigit((unsigned char)*p); p++) {
			ms += (*p - '0') * scale;
			scale /= 10;
		}
	}
	offset = parse_offset(p, &ok);
	if (!ok)
		return -1;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*out_ms = ((int64_t)t - offset) * 1000 + ms;
	return 0;
}

int api_parse_time(const char *text, int64_t *out_ms)
{
	char *end;
	double seconds;

	if (text == NULL || text[0] == '\0')
		return -1;
	if (strchr(text, 'T') != NULL)
		return parse_rfc3339(text, out_ms);
	errno = 0;
	seconds = strtod(text, &end);
	/* Until the year 10000, the range Prometheus accepts, and not before 1970. */
	if (errno != 0 || *end != '\0' || !isfinite(seconds) || seconds < 0 ||
	    seconds > 253402300799.0 || !(isdigit((unsigned char)text[0])))
		return -1;
	*out_ms = (int64_t)llround(seconds * 1000.0);
	return 0;
}

int api_parse_duration(const char *text, int64_t *out_ms)
{
	uint64_t ms;
	char *end;
	double seconds;

	if (text == NULL || text[0] == '\0')
		return -1;
	errno = 0;
	seconds = strtod(text, &end);
	if (*end == '\0' && isdigit((unsigned char)text[0])) {
		if (errno != 0 || !isfinite(seconds) || seconds > 1e12)
			return -1;
		*out_ms = (int64_t)llround(seconds * 1000.0);
		return 0;
	}
	if (units_parse_duration_ms(text, &ms) < 0 || ms > (uint64_t)1e15)
		return -1;
	*out_ms = (int64_t)ms;
	return 0;
}

const char *api_format_time(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int millis = (int)(ms - (int64_t)t * 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
	return buf;
}

const char *api_format_value(double v, char *buf, size_t size)
{
	if (isnan(v)) {
		snprintf(buf, size, "NaN");
	} else if (isinf(v)) {
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
	} else {
		/* The shortest precision that reads back to the same double. */
		for (int precision = 1; precision <= 17; precision++) {
			snprintf(buf, size, "%.*g", precision, v);
			if (strtod(buf, NULL) == v)
				break;
		}
	}
	return buf;
}

json_t *api_json_time(int64_t ms)
{
	char buf[40];

	if (ms == 0)
		return json_null();
	return json_string(api_format_time(ms, buf, sizeof(buf)));
}

json_t *api_json_labels(const struct label *labels, size_t count)
{
	json_t *o = json_object();

	for (size_t i = 0; i < count; i++)
		json_object_set_new(o, labels[i].name, json_string(labels[i].value));
	return o;
}

json_t *api_json_fingerprint(uint64_t fp)
{
	char hex[17];

	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)fp);
	return json_string(hex);
}

json_t *api_read_json_body(struct api_request *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t length = evbuffer_get_length(in);
	json_error_t err;
	json_t *body;

	if (length > API_MAX_BODY_SIZE) {
		http_server_reject(r->api->srv, r->req, HTTP_REJECT_BODY_TOO_LARGE, 413,
				   "the JSON body is larger than the API's 64 KiB");
		api_reply_error(r->req, 413, "request body too large",
				"the body has %zu bytes; the API accepts at most %d", length,
				API_MAX_BODY_SIZE);
		return NULL;
	}
	body = json_loadb((const char *)evbuffer_pullup(in, -1), length, 0, &err);
	if (body == NULL) {
		api_reply_error(r->req, 400, "invalid JSON body",
				"line %d, column %d: %s; send a JSON object", err.line, err.column,
				err.text);
		return NULL;
	}
	if (!json_is_object(body)) {
		json_decref(body);
		api_reply_error(r->req, 400, "invalid JSON body", "expected a JSON object");
		return NULL;
	}
	return body;
}

/* ---- authorization ------------------------------------------------------------------- */

/*
 * Finds the configured token whose digest equals the digest of `token`. Every token is
 * compared in constant time and the loop does not stop at a match, so the reply time does
 * not tell how many bytes or tokens matched.
 */
static const struct config_api_token *find_token(const struct config *cfg, const char *token)
{
	unsigned char digest[CONFIG_API_SHA256_SIZE];
	unsigned int digest_length = 0;
	const struct config_api_token *found = NULL;

	if (EVP_Digest(token, strlen(token), digest, &digest_length, EVP_sha256(), NULL) != 1 ||
	    digest_length != sizeof(digest))
		return NULL;
	for (size_t i = 0; i < cfg->api_token_count; i++) {
		if (CRYPTO_memcmp(digest, cfg->api_tokens[i].sha256, sizeof(digest)) == 0)
			found = &cfg->api_tokens[i];
	}
	return found;
}

static void reply_unauthorized(struct api_request *r, const char *log_detail, const char *detail)
{
	http_server_reject(r->api->srv, r->req, HTTP_REJECT_UNAUTHORIZED, 401, log_detail);
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate",
			  "Bearer realm=\"tocsin\"");
	api_reply_error(r->req, 401, "unauthorized", "%s", detail);
}

/* Checks the bearer token of a write. Returns true, or false after replying 401 or 403. */
static bool authorize_write(struct api_request *r)
{
	const struct config *cfg = *r->api->src.cfg;
	const char *header =
	    evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
	const struct config_api_token *token;

	if (cfg->api_token_count == 0) {
		http_server_reject(r->api->srv, r->req, HTTP_REJECT_FORBIDDEN, 403,
				   "write while api.tokens is empty");
		api_reply_error(r->req, 403, "writes are disabled",
				"no API token is configured; add api: {tokens: [{name: NAME, "
				"sha256: HEX, role: admin}]} to the config, with HEX from "
				"`printf %%s TOKEN | sha256sum`, reload, and send "
				"`Authorization: Bearer TOKEN`");
		return false;
	}
	if (header == NULL) {
		reply_unauthorized(r, "write without an Authorization header",
				   "this request changes state and needs the header "
				   "`Authorization: Bearer TOKEN` with a token of role admin");
		return false;
	}
	if (strncasecmp(header, "Bearer ", 7) != 0 || header[7] == '\0') {
		reply_unauthorized(r,
				   "write with an Authorization header that is not a bearer token",
				   "the Authorization header is not `Bearer TOKEN`");
		return false;
	}
	token = find_token(cfg, header + 7);
	if (token == NULL) {
		reply_unauthorized(r,
				   "write with a bearer token that matches no token in api.tokens",
				   "the bearer token matches no token in api.tokens");
		return false;
	}
	if (token->role != CONFIG_API_ROLE_ADMIN) {
		char detail[160];

		snprintf(detail, sizeof(detail), "write with token \"%s\" of role read",
			 token->name);
		http_server_reject(r->api->srv, r->req, HTTP_REJECT_FORBIDDEN, 403, detail);
		api_reply_error(r->req, 403, "forbidden",
				"token \"%s\" has role read; writes need a token of role admin",
				token->name);
		return false;
	}
	r->token_name = token->name;
	return true;
}

/* ---- routing ------------------------------------------------------------------------- */

enum api_method_bits {
	API_GET = 1,
	API_POST = 2,
	API_DELETE = 4,
};

struct api_route {
	const char *path;
	bool has_tail;          /* path is a prefix ending in '/', the rest is an id */
	unsigned methods;       /* API_* bits; GET includes HEAD */
	unsigned write_methods; /* methods that need an admin token */
	void (*handle)(struct api_request *r, const char *tail);
	const char *allow; /* the Allow header for 405 */
};

static void route_status(struct api_request *r, const char *tail)
{
	api_handle_status(r);
}
static void route_buildinfo(struct api_request *r, const char *tail)
{
	api_handle_buildinfo(r);
}
static void route_probes(struct api_request *r, const char *tail)
{
	api_handle_probes(r, tail);
}
static void route_series(struct api_request *r, const char *tail)
{
	api_handle_series(r);
}
static void route_labels(struct api_request *r, const char *tail)
{
	api_handle_labels(r, NULL);
}
static void route_label_values(struct api_request *r, const char *tail)
{
	size_t length = strlen(tail);

	if (length < 8 || strcmp(tail + length - 7, "/values") != 0) {
		api_reply_error(r->req, 404, "not found",
				"expected /api/v1/label/NAME/values; see docs/api.md");
		return;
	}
	{
		char *name = xstrndup(tail, length - 7);

		api_handle_labels(r, name);
		free(name);
	}
}
static void route_query(struct api_request *r, const char *tail)
{
	api_handle_query(r);
}
static void route_query_range(struct api_request *r, const char *tail)
{
	api_handle_query_range(r);
}
static void route_alerts(struct api_request *r, const char *tail)
{
	api_handle_alerts(r);
}
static void route_silences(struct api_request *r, const char *tail)
{
	api_handle_silences(r, tail);
}
static void route_acks(struct api_request *r, const char *tail)
{
	api_handle_acks(r);
}
static void route_rules(struct api_request *r, const char *tail)
{
	api_handle_rules(r);
}
static void route_slos(struct api_request *r, const char *tail)
{
	api_handle_slos(r);
}
static void route_reload(struct api_request *r, const char *tail)
{
	api_handle_reload(r);
}
static void route_audit(struct api_request *r, const char *tail)
{
	api_handle_audit(r);
}
static void route_audit_verify(struct api_request *r, const char *tail)
{
	api_handle_audit_verify(r);
}

/* The query endpoints take POST as a read, because Grafana sends long queries as forms. */
static const struct api_route api_routes[] = {
    {"/status", false, API_GET, 0, route_status, "GET, HEAD"},
    {"/status/buildinfo", false, API_GET, 0, route_buildinfo, "GET, HEAD"},
    {"/probes", false, API_GET, 0, route_probes, "GET, HEAD"},
    {"/probes/", true, API_GET, 0, route_probes, "GET, HEAD"},
    {"/series", false, API_GET | API_POST, 0, route_series, "GET, HEAD, POST"},
    {"/labels", false, API_GET | API_POST, 0, route_labels, "GET, HEAD, POST"},
    {"/label/", true, API_GET, 0, route_label_values, "GET, HEAD"},
    {"/query", false, API_GET | API_POST, 0, route_query, "GET, HEAD, POST"},
    {"/query_range", false, API_GET | API_POST, 0, route_query_range, "GET, HEAD, POST"},
    {"/alerts", false, API_GET, 0, route_alerts, "GET, HEAD"},
    {"/silences", false, API_GET | API_POST, API_POST, route_silences, "GET, HEAD, POST"},
    {"/silences/", true, API_GET | API_DELETE, API_DELETE, route_silences, "GET, HEAD, DELETE"},
    {"/acks", false, API_GET | API_POST, API_POST, route_acks, "GET, HEAD, POST"},
    {"/rules", false, API_GET, 0, route_rules, "GET, HEAD"},
    {"/slos", false, API_GET, 0, route_slos, "GET, HEAD"},
    {"/reload", false, API_POST, API_POST, route_reload, "POST"},
    {"/audit", false, API_GET, 0, route_audit, "GET, HEAD"},
    {"/audit/verify", false, API_GET, 0, route_audit_verify, "GET, HEAD"},
};

static const struct api_route *find_api_route(const char *path, const char **tail)
{
	for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
		const struct api_route *route = &api_routes[i];
		size_t length = strlen(route->path);

		if (!route->has_tail && strcmp(path, route->path) == 0) {
			*tail = NULL;
			return route;
		}
		if (route->has_tail && strncmp(path, route->path, length) == 0 &&
		    path[length] != '\0') {
			*tail = path + length;
			return route;
		}
	}
	return NULL;
}

static unsigned method_bit(enum evhttp_cmd_type method)
{
	switch (method) {
	case EVHTTP_REQ_GET:
	case EVHTTP_REQ_HEAD:
		return API_GET;
	case EVHTTP_REQ_POST:
		return API_POST;
	case EVHTTP_REQ_DELETE:
		return API_DELETE;
	default:
		return 0;
	}
}

static bool is_form(struct evhttp_request *req)
{
	const char *type =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");

	return type != NULL && strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0;
}

/*
 * Parses name=value pairs into params. libevent 2.1 decodes only the values, so the names
 * are decoded here: clients send match[] as match%5B%5D. Returns -1 when malformed.
 */
static int parse_pairs(const char *text, struct evkeyvalq *params)
{
	struct evkeyvalq raw;
	struct evkeyval *kv;
	int rc = 0;

	TAILQ_INIT(&raw);
	if (evhttp_parse_query_str(text, &raw) < 0) {
		evhttp_clear_headers(&raw);
		return -1;
	}
	TAILQ_FOREACH(kv, &raw, next)
	{
		size_t length = 0;
		char *name = evhttp_uridecode(kv->key, 1, &length);

		if (name == NULL || strlen(name) != length ||
		    evhttp_add_header(params, name, kv->value) < 0)
			rc = -1;
		free(name);
	}
	evhttp_clear_headers(&raw);
	return rc;
}

/*
 * Reads the query string and, for a form-encoded POST, the body into r->params. Returns
 * false after replying 400 or 413.
 */
static bool read_params(struct api_request *r, const struct evhttp_uri *uri)
{
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;

	if (query != NULL && parse_pairs(query, &r->params) < 0) {
		api_reply_error(r->req, 400, "invalid query string",
				"the query string is not valid percent-encoded name=value pairs");
		return false;
	}
	if (r->method == EVHTTP_REQ_POST && is_form(r->req)) {
		struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
		size_t length = evbuffer_get_length(in);
		char *body;
		int rc;

		/* `curl -d '{...}'` labels a JSON body as a form: a body that opens a JSON
		 * object or array is left to the JSON endpoints. */
		if (length > 0) {
			const unsigned char *first = evbuffer_pullup(in, 1);

			if (first != NULL && (first[0] == '{' || first[0] == '['))
				return true;
		}

		if (length > API_MAX_BODY_SIZE) {
			http_server_reject(r->api->srv, r->req, HTTP_REJECT_BODY_TOO_LARGE, 413,
					   "the form body is larger than the API's 64 KiB");
			api_reply_error(r->req, 413, "request body too large",
					"the body has %zu bytes; the API accepts at most %d",
					length, API_MAX_BODY_SIZE);
			return false;
		}
		/* evbuffer_pullup() returns NULL for an empty body. */
		body = length > 0 ? xstrndup((const char *)evbuffer_pullup(in, -1), length)
				  : xstrdup("");
		rc = parse_pairs(body, &r->params);
		free(body);
		if (rc < 0) {
			api_reply_error(r->req, 400, "invalid form body",
					"the body is not valid application/x-www-form-urlencoded");
			return false;
		}
	}
	return true;
}

static void dispatch(struct api_request *r, const struct evhttp_uri *uri)
{
	const char *tail = NULL;
	const struct api_route *route = find_api_route(r->path, &tail);
	unsigned bit = method_bit(r->method);

	if (route == NULL) {
		api_reply_error(r->req, 404, "not found",
				"no endpoint %s%s; docs/api.md lists the endpoints", API_PREFIX,
				r->path);
		return;
	}
	if ((route->methods & bit) == 0) {
		evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", route->allow);
		api_reply_error(r->req, 405, "method not allowed", "%s%s accepts %s", API_PREFIX,
				route->path, route->allow);
		return;
	}
	if ((route->write_methods & bit) != 0 && !authorize_write(r))
		return;
	if (!read_params(r, uri))
		return;
	route->handle(r, tail);
}

static void handle_request(struct evhttp_request *req, void *arg)
{
	struct api *api = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *raw = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct api_request r = {.api = api, .req = req};
	size_t length = 0;
	char *path;

	TAILQ_INIT(&r.params);
	r.method = evhttp_request_get_command(req);
	r.now_ms = clock_wall_ms();
	/* http.c already rejected paths that decode to an embedded NUL. */
	path = evhttp_uridecode(raw != NULL ? raw : "", 0, &length);
	if (path == NULL || strncmp(path, API_PREFIX, strlen(API_PREFIX)) != 0) {
		api_reply_error(req, 404, "not found", "docs/api.md lists the endpoints");
		free(path);
		return;
	}
	r.path = path + strlen(API_PREFIX);
	dispatch(&r, uri);
	evhttp_clear_headers(&r.params);
	free(path);
}

/* ---- reload -------------------------------------------------------------------------- */

struct api_pending_reload {
	struct api *api;
	struct evhttp_request *req;
	struct http_server *srv;
	char *token_name;
};

/*
 * Runs outside of any HTTP callback, because a reload that changes the listen address
 * frees the server that received the request. In that case the connection is already
 * closed and the request freed, so nothing is replied.
 */
static void run_reload(evutil_socket_t fd, short what, void *arg)
{
	struct api_pending_reload *p = arg;
	struct api *api = p->api;
	char *errors = NULL;
	int rc;

	log_notice("api", NULL, "reload requested by token %s", p->token_name);
	rc = api->src.reload(api->src.reload_arg, &errors);
	if (api->srv != p->srv) {
		log_notice("api", NULL,
			   "the reload moved the listener, so the request that asked for it got "
			   "no reply");
	} else if (rc == 0) {
		api_reply_data(p->req, json_pack("{s:b}", "reloaded", 1));
	} else {
		json_t *list = json_array();
		const char *line = errors != NULL ? errors : "";

		while (*line != '\0') {
			size_t n = strcspn(line, "\n");

			json_array_append_new(list, json_stringn(line, n));
			line += n + (line[n] == '\n');
		}
		api_reply_json(p->req, 500,
			       json_pack("{s:s, s:s, s:s, s:s, s:o}", "status", "error",
					 "errorType", "internal", "error", "reload rejected",
					 "detail",
					 errors != NULL ? errors : "the reload failed; see the log",
					 "errors", list));
	}
	free(errors);
	free(p->token_name);
	free(p);
}

void api_handle_reload(struct api_request *r)
{
	struct api_pending_reload *p;
	struct timeval now = {0, 0};

	if (r->api->src.reload == NULL) {
		api_reply_error(r->req, 503, "reload unavailable", "this daemon cannot reload");
		return;
	}
	/*
	 * NOTE: a reload changes the daemon's memory, not the state database, so it cannot share
	 * a transaction with its audit record. The record is written first, with result
	 * "requested", and a reload whose record fails is not run. The daemon's own
	 * config.reload or config.reload_rejected record that follows records the outcome. A crash
	 * in between loses only the in-memory change; the restart records its config.load.
	 */
	if (r->api->src.audit != NULL &&
	    audit_record(r->api->src.audit, r->token_name != NULL ? r->token_name : "-",
			 api_remote_address(r->req), "api.reload",
			 "{\"result\":\"requested\"}") < 0) {
		api_reply_audit_failed(r, "the reload");
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->api = r->api;
	p->req = r->req;
	p->srv = r->api->srv;
	p->token_name = xstrdup(r->token_name != NULL ? r->token_name : "-");
	if (event_base_once(r->api->src.base, -1, EV_TIMEOUT, run_reload, p, &now) < 0) {
		free(p->token_name);
		free(p);
		api_reply_error(r->req, 500, "reload failed", "cannot schedule the reload");
	}
}

/* ---- lifecycle ----------------------------------------------------------------------- */

struct api *api_new(const struct api_sources *src)
{
	struct api *api = xcalloc(1, sizeof(*api));

	api->src = *src;
	api->start_ms = clock_wall_ms();
	return api;
}

void api_attach(struct api *api, struct http_server *srv)
{
	api->srv = srv;
	http_server_route_prefix(srv, API_PREFIX "/", handle_request, api);
	http_server_route(srv, API_PREFIX, handle_request, api);
}

void api_free(struct api *api)
{
	free(api);
}
