/*
 * /alerts, /silences and /acks: the alerter's alert store with what keeps each alert
 * quiet, the evaluator's pending alerts, and the silence and acknowledgement sets that
 * operators change through POST and DELETE.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerter/ack.h"
#include "alerter/alerter.h"
#include "alerter/matcher.h"
#include "alerter/silence.h"
#include "collector/alert.h"
#include "collector/audit.h"
#include "collector/evaluator.h"
#include "collector/log.h"
#include "collector/xalloc.h"
#include "web/api_impl.h"

/* Replies 503 and returns false when the alerter is not running. */
static bool require_alerter(struct api_request *r)
{
	if (r->api->src.al != NULL)
		return true;
	api_reply_error(r->req, 503, "alerting is not running",
			"the alerter needs the state database, which did not open; fix the "
			"state_dir error in the log and restart");
	return false;
}

/* ---- alerts -------------------------------------------------------------------------- */

struct alert_listing {
	struct matcher_set filter;
	json_t *list;
	bool include_firing; /* evaluator alerts: firing ones too, when there is no alerter */
};

static void add_alerter_alert(void *arg, const struct alerter_alert_view *v)
{
	struct alert_listing *l = arg;
	const char *state;
	char reason[512];
	json_t *ack = json_null();

	if (!matcher_set_matches(&l->filter, v->labels, v->label_count))
		return;
	if (v->silenced_by != NULL) {
		state = "silenced";
		snprintf(reason, sizeof(reason), "silenced by %s", v->silenced_by);
	} else if (v->inhibited) {
		state = "inhibited";
		snprintf(reason, sizeof(reason), "inhibited by alert %016" PRIx64, v->inhibited_by);
	} else if (v->ack != NULL) {
		state = "acknowledged";
		snprintf(reason, sizeof(reason), "acknowledged by %s: %s", v->ack->created_by,
			 v->ack->comment != NULL ? v->ack->comment : "");
	} else if (v->firing) {
		state = "active";
		snprintf(reason, sizeof(reason), "firing");
	} else {
		state = "resolved";
		snprintf(reason, sizeof(reason),
			 "resolved; kept until the resolved notification is sent, and for "
			 "Alertmanager re-sends until resolved_keep has passed");
	}
	if (v->ack != NULL)
		ack = json_pack("{s:s, s:s?, s:o, s:o}", "createdBy", v->ack->created_by, "comment",
				v->ack->comment, "createdAt", api_json_time(v->ack->created_at_ms),
				"expiresAt", api_json_time(v->ack->expires_at_ms));
	json_array_append_new(
	    l->list,
	    json_pack(
		"{s:s, s:o, s:o, s:o, s:s, s:s, s:b, s:o, s:o, s:s?, s:o, s:o}", "rule", v->rule,
		"fingerprint", api_json_fingerprint(v->fingerprint), "labels",
		api_json_labels(v->labels, v->label_count), "annotations",
		api_json_labels(v->annotations, v->annotation_count), "state", state, "reason",
		reason, "firing", v->firing, "startsAt", api_json_time(v->starts_at_ms), "endsAt",
		api_json_time(v->ends_at_ms), "silencedBy", v->silenced_by, "inhibitedBy",
		v->inhibited ? api_json_fingerprint(v->inhibited_by) : json_null(), "ack", ack));
}

static void add_evaluator_alert(void *arg, const struct evaluator_alert *a)
{
	struct alert_listing *l = arg;
	const struct alert_instance *inst = a->inst;
	char value[40];
	const char *state;
	char reason[160];

	if (inst->state == ALERT_PENDING) {
		state = "pending";
		snprintf(reason, sizeof(reason),
			 "pending: the condition holds, `for` has not passed");
	} else if (inst->state == ALERT_FIRING && l->include_firing) {
		state = "active";
		snprintf(reason, sizeof(reason),
			 "firing; not notified, because alerting is not running");
	} else {
		return;
	}
	if (!matcher_set_matches(&l->filter, a->labels, a->label_count))
		return;
	json_array_append_new(
	    l->list,
	    json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:b, s:o, s:s}", "rule", a->rule_key, "group",
		      a->group, "labels", api_json_labels(a->labels, a->label_count), "annotations",
		      api_json_labels(a->annotations, a->annotation_count), "state", state,
		      "reason", reason, "firing", inst->state == ALERT_FIRING, "activeAt",
		      api_json_time(inst->active_at_ms), "value",
		      api_format_value(inst->value, value, sizeof(value))));
}

void api_handle_alerts(struct api_request *r)
{
	struct alert_listing l = {.list = json_array()};
	struct evkeyval *kv;

	TAILQ_FOREACH(kv, &r->params, next)
	{
		char error[256];

		if (strcmp(kv->key, "filter") != 0)
			continue;
		if (matcher_parse(kv->value, &l.filter, error, sizeof(error)) < 0) {
			api_reply_bad_param(r->req, "filter",
					    "%s: %s; expected a matcher such as severity=\"page\"",
					    kv->value, error);
			matcher_set_clear(&l.filter);
			json_decref(l.list);
			return;
		}
	}
	if (r->api->src.al != NULL) {
		silence_set_refresh(alerter_silences(r->api->src.al));
		ack_set_refresh(alerter_acks(r->api->src.al));
		alerter_list_alerts(r->api->src.al, r->now_ms, add_alerter_alert, &l);
	}
	l.include_firing = r->api->src.al == NULL;
	evaluator_alerts(r->api->src.ev, add_evaluator_alert, &l);
	matcher_set_clear(&l.filter);
	api_reply_data(r->req, l.list);
}

/* ---- silences ------------------------------------------------------------------------ */

static json_t *silence_json(const struct silence *s, int64_t now_ms)
{
	json_t *matchers = json_array();

	for (size_t i = 0; i < s->matcher_count; i++) {
		const struct silence_matcher *m = &s->matchers[i];

		json_array_append_new(
		    matchers,
		    json_pack("{s:s, s:s, s:b, s:b}", "name", m->name, "value", m->value, "isRegex",
			      m->op == EXPR_MATCH_REGEX || m->op == EXPR_MATCH_NOT_REGEX, "isEqual",
			      m->op == EXPR_MATCH_EQUAL || m->op == EXPR_MATCH_REGEX));
	}
	return json_pack("{s:s, s:o, s:o, s:o, s:s, s:s, s:o, s:o, s:{s:s}}", "id", s->id,
			 "matchers", matchers, "startsAt", api_json_time(s->starts_at_ms), "endsAt",
			 api_json_time(s->ends_at_ms), "createdBy", s->created_by, "comment",
			 s->comment, "createdAt", api_json_time(s->created_at_ms), "updatedAt",
			 api_json_time(s->updated_at_ms), "status", "state",
			 silence_state_name(silence_state(s, now_ms)));
}

struct silence_listing {
	json_t *list;
	int64_t now_ms;
};

static void add_silence(void *arg, const struct silence *s)
{
	struct silence_listing *l = arg;

	json_array_append_new(l->list, silence_json(s, l->now_ms));
}

int api_read_silence_matcher(json_t *item, size_t index, struct silence_matcher *m, char **error)
{
	const char *name, *value;
	int is_regex = 0, is_equal = 1;
	json_error_t err;

	if (json_is_string(item)) {
		char *why = NULL;

		if (silence_matcher_parse(json_string_value(item), m, &why) == 0)
			return 0;
		*error = xasprintf("matchers[%zu]: %s", index, why);
		free(why);
		return -1;
	}
	if (json_unpack_ex(item, &err, 0, "{s:s, s:s, s?b, s?b}", "name", &name, "value", &value,
			   "isRegex", &is_regex, "isEqual", &is_equal) < 0) {
		*error =
		    xasprintf("matchers[%zu]: %s; expected {\"name\": ..., \"value\": ..., "
			      "\"isRegex\": false, \"isEqual\": true} or \"name=\\\"value\\\"\"",
			      index, err.text);
		return -1;
	}
	m->name = xstrdup(name);
	m->value = xstrdup(value);
	if (is_regex)
		m->op = is_equal ? EXPR_MATCH_REGEX : EXPR_MATCH_NOT_REGEX;
	else
		m->op = is_equal ? EXPR_MATCH_EQUAL : EXPR_MATCH_NOT_EQUAL;
	return 0;
}

/* Reads an optional time field of the body; -1 after replying 400. */
static int body_time(struct api_request *r, json_t *body, const char *field, int64_t *out_ms)
{
	json_t *v = json_object_get(body, field);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || api_parse_time(json_string_value(v), out_ms) < 0) {
		api_reply_bad_param(r->req, field,
				    "expected an RFC 3339 time such as \"2024-05-01T10:00:00Z\"");
		return -1;
	}
	return 0;
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		break;
	}
	return "null";
}

/*
 * Reads a text field of the body into *out, NULL when it is absent or null; -1 after
 * replying 400 when it has another type, or when a required field is absent or blank. The
 * reply names the field as the API spells it, with hint saying what to give.
 */
static int body_text(struct api_request *r, json_t *body, const char *field, bool required,
		     const char *hint, const char **out)
{
	json_t *v = json_object_get(body, field);

	*out = NULL;
	if (v != NULL && !json_is_null(v) && !json_is_string(v)) {
		api_reply_bad_param(r->req, field, "expected a string, found %s; %s",
				    json_type_name(v), hint);
		return -1;
	}
	if (v != NULL)
		*out = json_string_value(v);
	if (required && (*out == NULL || (*out)[strspn(*out, " \t\r\n")] == '\0')) {
		api_reply_bad_param(r->req, field, "missing; %s", hint);
		return -1;
	}
	return 0;
}

/* The audit detail of silence id after a change, or NULL ({}) when it is gone. */
static char *silence_detail(struct silence_set *set, const char *id)
{
	const struct silence *s = silence_get(set, id);

	return s != NULL ? audit_silence_detail(s) : NULL;
}

static void create_silence(struct api_request *r, struct silence_set *set)
{
	json_t *body = api_read_json_body(r);
	json_t *list;
	struct silence_matcher *matchers = NULL;
	struct silence_spec spec = {0};
	char id[SILENCE_ID_SIZE];
	char *error = NULL;
	size_t count = 0;

	if (body == NULL)
		return;
	list = json_object_get(body, "matchers");
	if (!json_is_array(list) || json_array_size(list) == 0) {
		api_reply_bad_param(r->req, "matchers",
				    "missing or empty; give a list of matchers");
		goto out;
	}
	matchers = xcalloc(json_array_size(list), sizeof(*matchers));
	for (; count < json_array_size(list); count++) {
		if (api_read_silence_matcher(json_array_get(list, count), count, &matchers[count],
					     &error) < 0) {
			api_reply_bad_param(r->req, "matchers", "%s", error);
			goto out;
		}
	}
	if (body_time(r, body, "startsAt", &spec.starts_at_ms) < 0 ||
	    body_time(r, body, "endsAt", &spec.ends_at_ms) < 0)
		goto out;
	if (spec.ends_at_ms == 0) {
		api_reply_bad_param(r->req, "endsAt", "missing; give an RFC 3339 time");
		goto out;
	}
	if (body_text(r, body, "createdBy", true, "give who creates the silence",
		      &spec.created_by) < 0)
		goto out;
	if (body_text(r, body, "comment", true, "give the silence's reason", &spec.comment) < 0)
		goto out;
	spec.matchers = matchers;
	spec.matcher_count = count;
	if (api_audit_begin(r) < 0)
		goto out;
	if (silence_create(set, &spec, r->now_ms, id, &error) < 0) {
		api_audit_rollback(r);
		/* silence_create's message starts with the field: "created_by: missing". */
		api_reply_error(r->req, 400, "invalid silence", "%s", error);
		goto out;
	}
	if (api_audit_commit(r, "api.silence.create", silence_detail(set, id)) < 0) {
		/* The set in memory still has the new silence, which the rollback removed from the
		 * table. */
		silence_set_reload(set);
		api_reply_audit_failed(r, "the silence");
		goto out;
	}
	log_notice("api", NULL, "silence %s created by token %s for %s", id, r->token_name,
		   spec.created_by);
	api_reply_data(r->req, json_pack("{s:s}", "silenceID", id));
out:
	for (size_t i = 0; i < count; i++)
		silence_matcher_clear(&matchers[i]);
	free(matchers);
	free(error);
	json_decref(body);
}

static void expire_silence(struct api_request *r, struct silence_set *set, const char *id)
{
	char *error = NULL;

	if (api_audit_begin(r) < 0)
		return;
	if (silence_expire(set, id, r->now_ms, &error) < 0) {
		api_audit_rollback(r);
		api_reply_error(r->req, 400, "cannot expire the silence", "%s", error);
		free(error);
		return;
	}
	if (api_audit_commit(r, "api.silence.expire", silence_detail(set, id)) < 0) {
		/* The set in memory still has the new end time, which the rollback undid in the
		 * table. */
		silence_set_reload(set);
		api_reply_audit_failed(r, "the expiry of the silence");
		return;
	}
	log_notice("api", NULL, "silence %s expired by token %s", id, r->token_name);
	api_reply_data(r->req, json_pack("{s:s}", "silenceID", id));
}

void api_handle_silences(struct api_request *r, const char *id)
{
	struct silence_set *set;

	if (!require_alerter(r))
		return;
	set = alerter_silences(r->api->src.al);
	silence_set_refresh(set);
	if (r->method == EVHTTP_REQ_POST) {
		create_silence(r, set);
	} else if (r->method == EVHTTP_REQ_DELETE) {
		if (silence_get(set, id) == NULL) {
			api_reply_error(r->req, 404, "silence not found", "no silence has id %s",
					id);
		} else {
			expire_silence(r, set, id);
		}
	} else if (id != NULL) {
		const struct silence *s = silence_get(set, id);

		if (s == NULL)
			api_reply_error(r->req, 404, "silence not found", "no silence has id %s",
					id);
		else
			api_reply_data(r->req, silence_json(s, r->now_ms));
	} else {
		struct silence_listing l = {json_array(), r->now_ms};

		silence_list(set, SILENCE_FILTER_ALL, r->now_ms, add_silence, &l);
		api_reply_data(r->req, l.list);
	}
}

/* ---- acknowledgements ---------------------------------------------------------------- */

static json_t *ack_json(const struct ack *a)
{
	return json_pack("{s:s, s:o, s:s, s:s?, s:o, s:o}", "rule", a->rule, "fingerprint",
			 api_json_fingerprint(a->fingerprint), "createdBy", a->created_by,
			 "comment", a->comment, "createdAt", api_json_time(a->created_at_ms),
			 "expiresAt", api_json_time(a->expires_at_ms));
}

static void add_ack(void *arg, const struct ack *a)
{
	json_array_append_new(arg, ack_json(a));
}

/* The fingerprint as /alerts shows it (16 hex digits) or as a JSON integer. */
static int read_fingerprint(json_t *v, uint64_t *out)
{
	char *end;

	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 16)
		return -1;
	*out = strtoull(json_string_value(v), &end, 16);
	return *end == '\0' ? 0 : -1;
}

static void create_ack(struct api_request *r, struct ack_set *set)
{
	json_t *body = api_read_json_body(r);
	const char *rule;
	const char *created_by;
	const char *comment;
	uint64_t fingerprint;
	int64_t expires_at_ms = 0;
	char *error = NULL;

	if (body == NULL)
		return;
	if (body_text(r, body, "rule", true, "give the alert's rule as /api/v1/alerts shows it",
		      &rule) < 0)
		goto out;
	if (read_fingerprint(json_object_get(body, "fingerprint"), &fingerprint) < 0) {
		api_reply_bad_param(r->req, "fingerprint",
				    "missing or invalid; give the 16 hex digits /api/v1/alerts "
				    "shows");
		goto out;
	}
	if (body_time(r, body, "expiresAt", &expires_at_ms) < 0)
		goto out;
	if (body_text(r, body, "createdBy", true, "give who acknowledges it", &created_by) < 0)
		goto out;
	if (body_text(r, body, "comment", false, "give a note for the other on-call engineers",
		      &comment) < 0)
		goto out;
	if (expires_at_ms != 0 && expires_at_ms <= r->now_ms) {
		api_reply_bad_param(r->req, "expiresAt",
				    "is not in the future; give a later time, or leave it out to "
				    "keep the acknowledgement until the alert resolves");
		goto out;
	}
	if (!alerter_alert_firing(r->api->src.al, rule, fingerprint)) {
		api_reply_error(r->req, 404, "alert not found",
				"no firing alert of rule %s has fingerprint %016" PRIx64
				"; GET /api/v1/alerts lists the firing alerts with their rule and "
				"fingerprint",
				rule, fingerprint);
		goto out;
	}
	if (api_audit_begin(r) < 0)
		goto out;
	if (ack_create(set, rule, fingerprint, created_by, comment, expires_at_ms, r->now_ms,
		       &error) < 0) {
		api_audit_rollback(r);
		api_reply_error(r->req, 400, "invalid acknowledgement", "%s", error);
		free(error);
		goto out;
	}
	if (api_audit_commit(r, "api.ack.create",
			     audit_ack_detail(ack_get(set, rule, fingerprint))) < 0) {
		/* The set in memory still has the acknowledgement, which the rollback removed from
		 * the table. */
		ack_set_reload(set);
		api_reply_audit_failed(r, "the acknowledgement");
		goto out;
	}
	log_notice("api", NULL, "alert %s %016" PRIx64 " acknowledged by token %s", rule,
		   fingerprint, r->token_name);
	api_reply_data(r->req, ack_json(ack_get(set, rule, fingerprint)));
out:
	json_decref(body);
}

void api_handle_acks(struct api_request *r)
{
	struct ack_set *set;
	json_t *list;

	if (!require_alerter(r))
		return;
	set = alerter_acks(r->api->src.al);
	ack_set_refresh(set);
	if (r->method == EVHTTP_REQ_POST) {
		create_ack(r, set);
		return;
	}
	list = json_array();
	ack_list(set, add_ack, list);
	api_reply_data(r->req, list);
}
