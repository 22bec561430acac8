/*
 * /audit and /audit/verify: pages of the hash-chained audit trail (collector/audit.h),
 * newest first, and a check of the whole chain. Also writes the audit records of the
 * API's own writes, in the transaction of each write, for the other resource files.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "collector/audit.h"
#include "collector/log.h"
#include "collector/statedb.h"
#include "web/api_impl.h"

/* Records per page when the request has no limit, and the max it may ask for. */
#define API_AUDIT_DEFAULT_LIMIT 100
#define API_AUDIT_MAX_LIMIT     1000

const char *api_remote_address(struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	char *address = NULL;
	ev_uint16_t port = 0;

	if (conn == NULL)
		return "";
	evhttp_connection_get_peer(conn, &address, &port);
	return address != NULL ? address : "";
}

int api_audit_begin(struct api_request *r)
{
	if (r->api->src.audit == NULL)
		return 0;
	if (statedb_begin(audit_statedb(r->api->src.audit)) == 0)
		return 0;
	api_reply_error(r->req, 500, "cannot write to the state database",
			"the transaction for the change and its audit record did not begin; see "
			"the log of tocsind for the SQLite error, and retry");
	return -1;
}

int api_audit_commit(struct api_request *r, const char *action, char *detail)
{
	struct audit *audit = r->api->src.audit;
	struct statedb *db;
	int rc;

	if (audit == NULL) {
		free(detail);
		return 0;
	}
	db = audit_statedb(audit);
	/* audit_record() joins the open transaction, so the commit below covers both. */
	rc = audit_record(audit, r->token_name != NULL ? r->token_name : "-",
			  api_remote_address(r->req), action, detail);
	free(detail);
	if (rc == 0 && statedb_commit(db) == 0)
		return 0;
	/* statedb_commit() already rolled back when the COMMIT failed. */
	statedb_rollback(db);
	log_error("api", NULL,
		  "%s by token %s rolled back, because its audit record was not written "
		  "(see the audit error above)",
		  action, r->token_name != NULL ? r->token_name : "-");
	return -1;
}

void api_audit_rollback(struct api_request *r)
{
	if (r->api->src.audit != NULL)
		statedb_rollback(audit_statedb(r->api->src.audit));
}

void api_reply_audit_failed(struct api_request *r, const char *action)
{
	api_reply_error(r->req, 500, "audit record not written",
			"%s was not made, because its audit record could not be written to the "
			"state database; see the log of tocsind for the SQLite error, and retry",
			action);
}

/* Replies 503 and returns false when the daemon has no audit trail. */
static bool require_audit(struct api_request *r)
{
	if (r->api->src.audit != NULL)
		return true;
	api_reply_error(r->req, 503, "the audit trail is not available",
			"the audit trail lives in the state database, which did not open; fix "
			"the state_dir error in the log and restart");
	return false;
}

/*
 * Reads the optional parameter `name` as an integer from min to max into *out (left
 * unchanged when the parameter is missing). Returns -1 after replying 400.
 */
static int read_count_param(struct api_request *r, const char *name, uint64_t min, uint64_t max,
			    uint64_t *out)
{
	const char *text = api_param(r, name);
	char *end;
	unsigned long long value;

	if (text == NULL)
		return 0;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || value < min ||
	    value > max) {
		api_reply_bad_param(r->req, name,
				    "\"%s\": expected an integer from %" PRIu64 " to %" PRIu64,
				    text, min, max);
		return -1;
	}
	*out = value;
	return 0;
}

/* The stored detail as a JSON value: the object, or the raw text when it no longer parses
 * (an edited record), or null when that text is not UTF-8 either. */
static json_t *detail_value(const char *text)
{
	json_t *value = json_loads(text, JSON_DECODE_ANY, NULL);

	if (value != NULL)
		return value;
	value = json_string(text);
	return value != NULL ? value : json_null();
}

static void add_entry(void *arg, const struct audit_entry *e)
{
	json_t *list = arg;
	char time[40];

	json_array_append_new(list, json_pack("{s:I, s:s, s:I, s:s?, s:s?, s:s?, s:o, s:s?, s:s?}",
					      "id", (json_int_t)e->id, "time",
					      api_format_time(e->time_ms, time, sizeof(time)),
					      "timeMs", (json_int_t)e->time_ms, "actor", e->actor,
					      "remote", e->remote, "action", e->action, "detail",
					      detail_value(e->detail), "prevHash", e->prev_hash,
					      "hash", e->hash));
}

void api_handle_audit(struct api_request *r)
{
	uint64_t limit = API_AUDIT_DEFAULT_LIMIT;
	uint64_t offset = 0;
	json_t *list;

	if (!require_audit(r))
		return;
	/* limit=0 would mean "every record" to audit_list(), so the API starts at 1. */
	if (read_count_param(r, "limit", 1, API_AUDIT_MAX_LIMIT, &limit) < 0 ||
	    read_count_param(r, "offset", 0, INT64_MAX, &offset) < 0)
		return;
	list = json_array();
	if (audit_list(r->api->src.audit, (size_t)limit, (size_t)offset, add_entry, list) < 0) {
		json_decref(list);
		api_reply_error(r->req, 500, "reading the audit trail failed",
				"the state database returned an error; see the daemon's log");
		return;
	}
	api_reply_data(r->req, list);
}

void api_handle_audit_verify(struct api_request *r)
{
	int64_t first_bad_id = 0;
	char *error = NULL;
	int64_t count;

	if (!require_audit(r))
		return;
	count = audit_verify(r->api->src.audit, &first_bad_id, &error);
	if (count >= 0) {
		api_reply_data(r->req,
			       json_pack("{s:b, s:I}", "intact", 1, "records", (json_int_t)count));
	} else if (first_bad_id == 0) {
		log_error("api", NULL, "verifying the audit trail failed: %s",
			  error != NULL ? error : "no detail");
		api_reply_error(r->req, 500, "reading the audit trail failed", "%s",
				error != NULL ? error : "see the daemon's log");
	} else {
		log_warn("api", NULL, "audit trail broken at record %" PRId64 ": %s", first_bad_id,
			 error != NULL ? error : "");
		api_reply_data(r->req, json_pack("{s:b, s:I, s:s}", "intact", 0, "firstBadId",
						 (json_int_t)first_bad_id, "detail",
						 error != NULL ? error : ""));
	}
	free(error);
}
