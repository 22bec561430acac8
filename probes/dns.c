/*
 * The `dns` probe: sends one query to a DNS server and checks the response's rcode and
 * records, as blackbox_exporter's dns prober does. c-ares sends the query (over UDP, or
 * TCP when asked or when the answer was truncated) on a channel driven by the loop; the
 * query is built here and the raw response is parsed by dns_message.c, so every rcode
 * and every section is seen, not only the addresses.
 */
#include <arpa/inet.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ares.h>

#include "collector/cfg.h"
#include "collector/log.h"
#include "collector/xalloc.h"
#include "probes/cares_loop.h"
#include "probes/dns.h"
#include "probes/dns_message.h"
#include "probes/probe.h"

/* Wait for one try of a query; c-ares tries DNS_TRIES times before ARES_ETIMEOUT. */
#define DNS_TRY_TIMEOUT_MS 2000
#define DNS_TRIES          2

struct dns_state {
	char *query_name;
	int query_type;
	char *server;      /* "ip:port" or "[ip6]:port" for c-ares, NULL: system resolver */
	int server_family; /* AF_INET or AF_INET6 when `server` is set */
	bool tcp;
	bool recursion_desired;
	uint32_t valid_rcodes; /* bit per rcode 0..15 */
	struct dns_validation validate[DNS_SECTION_COUNT];
	char target[300]; /* "A api.example @127.0.0.1:53" for logs */

	struct cares_loop *loop; /* created on the first run, on that run's loop */
	struct event_base *loop_base;
	struct probe_run *run; /* the run in flight, NULL when idle or cancelled */
	uint64_t sent_us;
};

static const struct metric_desc m_success = {
    "probe_success", "Whether the probe succeeded (1) or failed (0).", METRIC_GAUGE};
static const struct metric_desc m_duration = {
    "probe_duration_seconds", "How long the probe took to complete, in seconds.", METRIC_GAUGE};
static const struct metric_desc m_lookup = {
    "probe_dns_lookup_time_seconds", "Seconds from sending the query to reading the response.",
    METRIC_GAUGE};
static const struct metric_desc m_section[DNS_SECTION_COUNT] = {
    {"probe_dns_answer_rrs", "Records in the answer section.", METRIC_GAUGE},
    {"probe_dns_authority_rrs", "Records in the authority section.", METRIC_GAUGE},
    {"probe_dns_additional_rrs", "Records in the additional section.", METRIC_GAUGE},
};
static const struct metric_desc m_rcode = {
    "probe_dns_rcode", "Response code of the answer (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...).",
    METRIC_GAUGE};
static const struct metric_desc m_query_succeeded = {
    "probe_dns_query_succeeded", "Whether a response with an accepted rcode arrived (1) or not.",
    METRIC_GAUGE};
static const struct metric_desc m_serial = {
    "probe_dns_serial", "Serial of the SOA record in the answer.", METRIC_GAUGE};
static const struct metric_desc m_ip_protocol = {
    "probe_ip_protocol", "IP version of the server address: 4 or 6.", METRIC_GAUGE};

static const char *const query_type_names = "A, AAAA, CNAME, MX, TXT, SRV, NS, SOA, PTR";

/* Options */

static int parse_query_type(struct cfg_map *options, struct dns_state *st)
{
	static const char *const accepted[] = {"A",   "AAAA", "CNAME", "MX", "TXT",
					       "SRV", "NS",   "SOA",   "PTR"};
	char *value = NULL;
	char quoted[CFG_QUOTE_SIZE];
	int got = cfg_get_string(options, "query_type", &value);

	st->query_type = 1;
	if (got <= 0)
		return got;
	for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
		if (strcasecmp(value, accepted[i]) == 0) {
			st->query_type = dns_type_parse(accepted[i]);
			free(value);
			return 0;
		}
	}
	cfg_error(options, "query_type", "invalid query type %s: expected one of %s",
		  cfg_quote(value, quoted, sizeof quoted), query_type_names);
	free(value);
	return -1;
}

int dns_parse_server(const char *text, char *host, size_t host_size, unsigned *port, int *family)
{
	const char *port_text = NULL;
	unsigned char addr[16];
	size_t length;
	char *end;
	unsigned long value;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL)
			return -1;
		length = (size_t)(close - text - 1);
		if (close[1] == ':')
			port_text = close + 2;
		else if (close[1] != '\0')
			return -1;
		text++;
	} else {
		const char *colon = strchr(text, ':');

		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			/* A bare IPv6 address: no port. */
			length = strlen(text);
		} else {
			length = colon != NULL ? (size_t)(colon - text) : strlen(text);
			if (colon != NULL)
				port_text = colon + 1;
		}
	}
	if (length == 0 || length >= host_size)
		return -1;
	memcpy(host, text, length);
	host[length] = '\0';
	if (inet_pton(AF_INET, host, addr) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, host, addr) == 1)
		*family = AF_INET6;
	else
		return -1;
	*port = 53;
	if (port_text != NULL) {
		if (*port_text < '0' || *port_text > '9')
			return -1;
		value = strtoul(port_text, &end, 10);
		if (*end != '\0' || value == 0 || value > 65535)
			return -1;
		*port = (unsigned)value;
	}
	return 0;
}

static int parse_server(struct cfg_map *options, struct dns_state *st)
{
	char *value = NULL;
	char host[INET6_ADDRSTRLEN];
	char quoted[CFG_QUOTE_SIZE];
	unsigned port;
	int got = cfg_get_string(options, "server", &value);

	if (got <= 0)
		return got;
	if (dns_parse_server(value, host, sizeof host, &port, &st->server_family) < 0) {
		cfg_error(options, "server",
			  "invalid server %s: expected an IP address with an optional port, "
			  "such as 127.0.0.1, 127.0.0.1:5353 or [::1]:5353",
			  cfg_quote(value, quoted, sizeof quoted));
		free(value);
		return -1;
	}
	free(value);
	if (st->server_family == AF_INET6)
		st->server = xasprintf("[%s]:%u", host, port);
	else
		st->server = xasprintf("%s:%u", host, port);
	return 0;
}

static int parse_transport(struct cfg_map *options, struct dns_state *st)
{
	char *value = NULL;
	char quoted[CFG_QUOTE_SIZE];
	int got = cfg_get_string(options, "transport", &value);
	int rc = 0;

	if (got <= 0)
		return got;
	if (strcmp(value, "tcp") == 0) {
		st->tcp = true;
	} else if (strcmp(value, "udp") != 0) {
		cfg_error(options, "transport", "invalid transport %s: expected udp or tcp",
			  cfg_quote(value, quoted, sizeof quoted));
		rc = -1;
	}
	free(value);
	return rc;
}

static int parse_rcodes(struct cfg_map *options, struct dns_state *st)
{
	char **values = NULL;
	size_t count = 0;
	char quoted[CFG_QUOTE_SIZE];
	int got = cfg_get_string_list(options, "valid_rcodes", &values, &count);
	int rc = 0;

	st->valid_rcodes = 1u << 0;
	if (got <= 0)
		return got;
	st->valid_rcodes = 0;
	for (size_t i = 0; i < count; i++) {
		int code = dns_rcode_parse(values[i]);

		if (code < 0) {
			cfg_error(options, "valid_rcodes",
				  "invalid rcode %s: expected names such as NOERROR, FORMERR, "
				  "SERVFAIL, NXDOMAIN, NOTIMP, REFUSED",
				  cfg_quote(values[i], quoted, sizeof quoted));
			rc = -1;
			continue;
		}
		st->valid_rcodes |= 1u << code;
	}
	if (count == 0) {
		cfg_error(options, "valid_rcodes", "empty list: expected at least one rcode");
		rc = -1;
	}
	cfg_strv_free(values);
	return rc;
}

static int compile_regexes(struct cfg_map *m, const char *key, regex_t **out, char ***sources,
			   size_t *count)
{
	char message[128];
	char quoted[CFG_QUOTE_SIZE];
	int got = cfg_get_string_list(m, key, sources, count);
	int rc = 0;

	if (got <= 0)
		return got;
	*out = xcalloc(*count + 1, sizeof **out);
	for (size_t i = 0; i < *count; i++) {
		int err = regcomp(&(*out)[i], (*sources)[i], REG_EXTENDED | REG_NOSUB);

		if (err != 0) {
			regerror(err, &(*out)[i], message, sizeof message);
			cfg_error(m, key,
				  "invalid regular expression %s: %s (POSIX extended syntax "
				  "expected)",
				  cfg_quote((*sources)[i], quoted, sizeof quoted), message);
			/* Keep a valid expression in the slot so that freeing stays uniform. */
			regcomp(&(*out)[i], "x", REG_EXTENDED | REG_NOSUB);
			rc = -1;
		}
	}
	return rc;
}

static int parse_validation(struct cfg_map *options, const char *key, struct dns_validation *v)
{
	struct cfg_map sub;
	int got = cfg_get_map(options, key, &sub);
	int rc = 0;

	if (got == 1) {
		if (compile_regexes(&sub, "fail_if_matches_regexp", &v->fail_if_matches,
				    &v->fail_if_matches_source, &v->fail_if_matches_count) < 0)
			rc = -1;
		if (compile_regexes(&sub, "fail_if_not_matches_regexp", &v->fail_if_not_matches,
				    &v->fail_if_not_matches_source,
				    &v->fail_if_not_matches_count) < 0)
			rc = -1;
	}
	cfg_map_finish(&sub);
	return got < 0 ? -1 : rc;
}

static void validation_free(struct dns_validation *v)
{
	for (size_t i = 0; i < v->fail_if_matches_count; i++)
		regfree(&v->fail_if_matches[i]);
	for (size_t i = 0; i < v->fail_if_not_matches_count; i++)
		regfree(&v->fail_if_not_matches[i]);
	free(v->fail_if_matches);
	free(v->fail_if_not_matches);
	cfg_strv_free(v->fail_if_matches_source);
	cfg_strv_free(v->fail_if_not_matches_source);
}

static void dns_free(void *state)
{
	struct dns_state *st = state;

	if (st == NULL)
		return;
	st->run = NULL;
	cares_loop_free(st->loop);
	for (int s = 0; s < DNS_SECTION_COUNT; s++)
		validation_free(&st->validate[s]);
	free(st->query_name);
	free(st->server);
	free(st);
}

static int dns_parse(struct cfg_map *options, void **state)
{
	static const char *const validation_keys[DNS_SECTION_COUNT] = {
	    "validate_answer_rrs", "validate_authority_rrs", "validate_additional_rrs"};
	struct dns_state *st = xcalloc(1, sizeof *st);
	int got;
	int rc = 0;

	got = cfg_get_string(options, "query_name", &st->query_name);
	if (got == 0)
		cfg_error(options, NULL, "query_name: missing: the name to query is required");
	if (got <= 0)
		rc = -1;
	if (parse_query_type(options, st) < 0)
		rc = -1;
	if (parse_server(options, st) < 0)
		rc = -1;
	if (parse_transport(options, st) < 0)
		rc = -1;
	st->recursion_desired = true;
	if (cfg_get_bool(options, "recursion_desired", &st->recursion_desired) < 0)
		rc = -1;
	if (parse_rcodes(options, st) < 0)
		rc = -1;
	for (int s = 0; s < DNS_SECTION_COUNT; s++) {
		if (parse_validation(options, validation_keys[s], &st->validate[s]) < 0)
			rc = -1;
	}
	if (rc < 0) {
		dns_free(st);
		return -1;
	}
	snprintf(st->target, sizeof st->target, "%s %s @%s",
		 dns_type_name((unsigned)st->query_type), st->query_name,
		 st->server != NULL ? st->server : "system resolver");
	*state = st;
	return 0;
}

/* Run */

static void emit(struct probe_run *run, const struct metric_desc *desc, double value)
{
	probe_run_emit(run, desc, NULL, 0, value);
}

static void run_end(struct dns_state *st, enum probe_status status, const char *reason)
{
	struct probe_run *run = st->run;

	st->run = NULL;
	emit(run, &m_success, status == PROBE_STATUS_OK ? 1 : 0);
	emit(run, &m_duration, (double)(probe_now_us() - st->sent_us) / 1e6);
	if (st->server != NULL)
		emit(run, &m_ip_protocol, st->server_family == AF_INET6 ? 6 : 4);
	probe_run_finish(run, status, "%s", reason);
}

int dns_validate_section(const struct dns_validation *v, char *const *records, size_t count,
			 const char *section, char *reason, size_t reason_size)
{
	char quoted[CFG_QUOTE_SIZE];

	for (size_t r = 0; r < count; r++) {
		for (size_t i = 0; i < v->fail_if_matches_count; i++) {
			if (regexec(&v->fail_if_matches[i], records[r], 0, NULL, 0) == 0) {
				snprintf(reason, reason_size, "dns: %s record %s matched /%s/",
					 section, cfg_quote(records[r], quoted, sizeof quoted),
					 v->fail_if_matches_source[i]);
				return -1;
			}
		}
	}
	for (size_t i = 0; i < v->fail_if_not_matches_count; i++) {
		size_t r = 0;

		while (r < count &&
		       regexec(&v->fail_if_not_matches[i], records[r], 0, NULL, 0) != 0)
			r++;
		if (r == count) {
			snprintf(reason, reason_size,
				 "dns: no %s record matched /%s/ (%zu records)", section,
				 v->fail_if_not_matches_source[i], count);
			return -1;
		}
	}
	return 0;
}

static void check_response(struct dns_state *st, const uint8_t *buf, size_t length)
{
	struct probe_run *run = st->run;
	struct dns_response resp;
	char error[128];
	char reason[512];
	char rcode_buf[16];

	if (dns_response_parse(buf, length, &resp, error, sizeof error) < 0) {
		snprintf(reason, sizeof reason, "dns: malformed response from %s: %s",
			 st->server != NULL ? st->server : "the system resolver", error);
		run_end(st, PROBE_STATUS_PROTOCOL_ERROR, reason);
		return;
	}
	for (int s = 0; s < DNS_SECTION_COUNT; s++)
		emit(run, &m_section[s], resp.counts[s]);
	emit(run, &m_rcode, resp.rcode);
	if (resp.has_soa_serial)
		emit(run, &m_serial, resp.soa_serial);
	if ((st->valid_rcodes & (1u << resp.rcode)) == 0) {
		emit(run, &m_query_succeeded, 0);
		snprintf(reason, sizeof reason, "dns: %s for %s",
			 dns_rcode_name(resp.rcode, rcode_buf, sizeof rcode_buf), st->query_name);
		dns_response_free(&resp);
		run_end(st, PROBE_STATUS_DNS_RCODE, reason);
		return;
	}
	emit(run, &m_query_succeeded, 1);
	for (int s = 0; s < DNS_SECTION_COUNT; s++) {
		if (dns_validate_section(&st->validate[s], resp.records[s], resp.counts[s],
					 dns_section_name((enum dns_section)s), reason,
					 sizeof reason) < 0) {
			dns_response_free(&resp);
			run_end(st, PROBE_STATUS_CONTENT_MISMATCH, reason);
			return;
		}
	}
	snprintf(reason, sizeof reason, "dns: %s, %u answer records",
		 dns_rcode_name(resp.rcode, rcode_buf, sizeof rcode_buf), resp.counts[0]);
	dns_response_free(&resp);
	run_end(st, PROBE_STATUS_OK, reason);
}

static void on_response(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_state *st = arg;
	const char *server = st->server != NULL ? st->server : "the system resolver";
	char reason[256];

	if (st->run == NULL)
		return; /* cancelled: ARES_ECANCELLED or ARES_EDESTRUCTION */
	emit(st->run, &m_lookup, (double)(probe_now_us() - st->sent_us) / 1e6);
	switch (status) {
	case ARES_SUCCESS:
		check_response(st, abuf, (size_t)alen);
		return;
	case ARES_ETIMEOUT:
		snprintf(reason, sizeof reason, "dns: no response from %s after %d tries", server,
			 timeouts);
		run_end(st, PROBE_STATUS_TIMEOUT, reason);
		return;
	case ARES_ECONNREFUSED:
		snprintf(reason, sizeof reason, "dns: connection refused by %s", server);
		run_end(st, PROBE_STATUS_REFUSED, reason);
		return;
	default:
		snprintf(reason, sizeof reason, "dns: query to %s failed: %s", server,
			 ares_strerror(status));
		run_end(st, PROBE_STATUS_IO_ERROR, reason);
		return;
	}
}

static int ensure_channel(struct dns_state *st, struct event_base *base, char *reason,
			  size_t reason_size)
{
	struct ares_options options;
	int status;

	if (st->loop != NULL && st->loop_base == base)
		return 0;
	cares_loop_free(st->loop);
	memset(&options, 0, sizeof options);
	/* NOCHECKRESP hands SERVFAIL and REFUSED answers over instead of trying the next
	 * server, so their rcode can be checked. */
	options.flags = ARES_FLAG_NOCHECKRESP | (st->tcp ? ARES_FLAG_USEVC : 0);
	options.timeout = DNS_TRY_TIMEOUT_MS;
	options.tries = DNS_TRIES;
	st->loop = cares_loop_new(base, &options,
				  ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES, &status);
	if (st->loop == NULL) {
		snprintf(reason, reason_size, "dns: cannot create a resolver channel: %s",
			 ares_strerror(status));
		return -1;
	}
	st->loop_base = base;
	if (st->server != NULL) {
		status = ares_set_servers_ports_csv(cares_loop_channel(st->loop), st->server);
		if (status != ARES_SUCCESS) {
			snprintf(reason, reason_size, "dns: cannot use server %s: %s", st->server,
				 ares_strerror(status));
			cares_loop_free(st->loop);
			st->loop = NULL;
			return -1;
		}
	}
	return 0;
}

static void dns_start(struct probe_run *run, void *state)
{
	struct dns_state *st = state;
	unsigned char *query = NULL;
	int query_length = 0;
	char reason[256];
	int status;

	st->run = run;
	st->sent_us = probe_now_us();
	if (ensure_channel(st, probe_run_base(run), reason, sizeof reason) < 0) {
		run_end(st, PROBE_STATUS_INTERNAL_ERROR, reason);
		return;
	}
	status = ares_create_query(st->query_name, 1 /* class IN */, st->query_type, 0,
				   st->recursion_desired ? 1 : 0, &query, &query_length, 0);
	if (status != ARES_SUCCESS) {
		snprintf(reason, sizeof reason, "dns: cannot build a query for %s: %s",
			 st->query_name, ares_strerror(status));
		run_end(st, PROBE_STATUS_INTERNAL_ERROR, reason);
		return;
	}
	/* The callback may run before ares_send returns (no usable server). */
	ares_send(cares_loop_channel(st->loop), query, query_length, on_response, st);
	ares_free_string(query);
	if (st->loop != NULL)
		cares_loop_update(st->loop);
}

static void dns_cancel(struct probe_run *run, void *state)
{
	struct dns_state *st = state;

	(void)run;
	st->run = NULL;
	if (st->loop != NULL)
		cares_loop_cancel(st->loop);
}

static const char *dns_target(const void *state)
{
	const struct dns_state *st = state;

	return st->target;
}

const struct probe_type probe_type_dns = {
    .name = "dns",
    .parse = dns_parse,
    .start = dns_start,
    .cancel = dns_cancel,
    .free = dns_free,
    .target = dns_target,
};
