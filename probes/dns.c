/*
 * The `dns` probe: sends one query to a DNS server and checks the response's rcode and
 * records, as blackbox_exporter's dns prober does. c-ares sends the query (over UDP, or
 * TCP when asked or when the answer was truncated) on a channel driven by the loop; the
 * query is built here and the raw response is parsed by dns_message.c, so every rcode
 * and every section is seen, not only the addresses.
 *
 * c-ares drops replies it cannot match to a query (a header cut short, a question
 * section that is not the query's) and reports a TCP connection closed by the server
 * with the same ARES_ECONNREFUSED as a refused one. To report those accurately the
 * channel's sockets go through the socket functions below, which watch the bytes and
 * errors on the wire: a malformed reply ends the run as soon as it is read, and the
 * last transport event decides between "refused" and "connection lost".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/event.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ares.h>

#include "collector/cfg.h"
#include "collector/log.h"
#include "collector/posix_regex.h"
#include "collector/xalloc.h"
#include "probes/cares_loop.h"
#include "probes/dns.h"
#include "probes/dns_message.h"
#include "probes/probe.h"

/*
 * Wait for one try of a query over UDP; c-ares tries DNS_TRIES times, doubling the wait
 * (2 s, then 4 s), before ARES_ETIMEOUT. Over TCP c-ares (1.18) does not resend a query
 * on a connection that is still open, so a TCP query is sent once and waits as long as both
 * UDP tries together; it is sent again only on a new connection after the server closed
 * the first one.
 */
#define DNS_TRY_TIMEOUT_MS 2000
#define DNS_TCP_TIMEOUT_MS 6000
#define DNS_TRIES          2
/* Sockets watched at once: c-ares opens one UDP and one TCP socket per server. */
#define DNS_WIRE_SOCKETS 4
/* Longest query kept for matching replies; ares_create_query makes at most 271 bytes. */
#define DNS_QUERY_MAX 512

/* The last thing seen on the wire that explains an ARES_ECONNREFUSED. */
enum dns_wire_event {
	DNS_WIRE_NONE,
	DNS_WIRE_REFUSED, /* connect, send or receive failed with ECONNREFUSED */
	DNS_WIRE_CLOSED,  /* the server closed the TCP connection before a full reply */
	DNS_WIRE_RESET,   /* the TCP connection was reset or broke */
	DNS_WIRE_EMPTY,   /* an empty UDP datagram came back */
};

/* A DNS message on a TCP stream: a two-byte length, then the message. */
struct dns_frame {
	uint8_t length[2];
	size_t length_have;
	uint8_t *data;
	size_t need;
	size_t have;
};

struct dns_socket {
	ares_socket_t fd; /* ARES_SOCKET_BAD for a free slot */
	bool stream;
	struct dns_frame in, out;
};

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

	/* What the socket functions saw during the run in flight. */
	struct dns_socket sockets[DNS_WIRE_SOCKETS];
	uint8_t query[DNS_QUERY_MAX]; /* the last query sent, with the ID c-ares chose */
	size_t query_length;
	enum dns_wire_event wire_event;
	bool saw_truncated;     /* a UDP answer had TC set: the query went on over TCP */
	char malformed[160];    /* why the reply read is malformed; "" when none was */
	struct event *finisher; /* ends the run on a malformed reply, outside c-ares */
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

int dns_server_option(struct cfg_map *options, const char *key, char **server, int *family)
{
	char *value = NULL;
	char host[INET6_ADDRSTRLEN];
	char quoted[CFG_QUOTE_SIZE];
	unsigned port;
	int got = cfg_get_string(options, key, &value);

	if (got <= 0)
		return got;
	if (dns_parse_server(value, host, sizeof host, &port, family) < 0) {
		cfg_error(options, key,
			  "invalid %s %s: expected an IP address with an optional port, "
			  "such as 127.0.0.1, 127.0.0.1:5353 or [::1]:5353",
			  key, cfg_quote(value, quoted, sizeof quoted));
		free(value);
		return -1;
	}
	free(value);
	/* The form ares_set_servers_ports_csv() reads. */
	if (*family == AF_INET6)
		*server = xasprintf("[%s]:%u", host, port);
	else
		*server = xasprintf("%s:%u", host, port);
	return 1;
}

static int parse_server(struct cfg_map *options, struct dns_state *st)
{
	return dns_server_option(options, "server", &st->server, &st->server_family) < 0 ? -1 : 0;
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
		int err = posix_regex_compile(&(*out)[i], (*sources)[i], REG_EXTENDED | REG_NOSUB,
					      message, sizeof message);

		if (err != 0) {
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
	/* Closes the sockets through wire_close, which needs `st` whole. */
	cares_loop_free(st->loop);
	if (st->finisher != NULL)
		event_free(st->finisher);
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

	for (int i = 0; i < DNS_WIRE_SOCKETS; i++)
		st->sockets[i].fd = ARES_SOCKET_BAD;
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
	if (st->finisher != NULL)
		event_del(st->finisher);
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

static const char *server_name(const struct dns_state *st)
{
	return st->server != NULL ? st->server : "the system resolver";
}

static void emit_lookup_time(struct dns_state *st)
{
	emit(st->run, &m_lookup, (double)(probe_now_us() - st->sent_us) / 1e6);
}

/* Ends the run on the malformed reply the socket functions read. */
static void end_malformed(struct dns_state *st)
{
	char reason[256];

	emit_lookup_time(st);
	snprintf(reason, sizeof reason, "dns: malformed response from %s: %s", server_name(st),
		 st->malformed);
	run_end(st, PROBE_STATUS_PROTOCOL_ERROR, reason);
}

/* ARES_ECONNREFUSED covers every transport failure; the wire tells which it was. */
static void end_transport_error(struct dns_state *st)
{
	const char *server = server_name(st);
	char reason[256];

	switch (st->wire_event) {
	case DNS_WIRE_CLOSED:
		snprintf(reason, sizeof reason,
			 "dns: %s closed the TCP connection without a response%s", server,
			 st->saw_truncated ? " (the UDP answer was truncated)" : "");
		run_end(st, PROBE_STATUS_CONNECTION_LOST, reason);
		return;
	case DNS_WIRE_RESET:
		snprintf(reason, sizeof reason,
			 "dns: TCP connection to %s broke before a response%s", server,
			 st->saw_truncated ? " (the UDP answer was truncated)" : "");
		run_end(st, PROBE_STATUS_CONNECTION_LOST, reason);
		return;
	case DNS_WIRE_EMPTY:
		snprintf(reason, sizeof reason, "dns: malformed response from %s: empty datagram",
			 server);
		run_end(st, PROBE_STATUS_PROTOCOL_ERROR, reason);
		return;
	case DNS_WIRE_REFUSED:
	case DNS_WIRE_NONE:
		break;
	}
	snprintf(reason, sizeof reason, "dns: connection refused by %s", server);
	run_end(st, PROBE_STATUS_REFUSED, reason);
}

static void on_response(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_state *st = arg;
	const char *server = server_name(st);
	char reason[256];

	if (st->run == NULL)
		return; /* cancelled: ARES_ECANCELLED or ARES_EDESTRUCTION */
	if (st->malformed[0] != '\0') {
		/* c-ares took a reply that the wire check already rejected. */
		end_malformed(st);
		return;
	}
	switch (status) {
	case ARES_SUCCESS:
		emit_lookup_time(st);
		check_response(st, abuf, (size_t)alen);
		return;
	case ARES_ETIMEOUT:
		if (st->tcp)
			snprintf(reason, sizeof reason,
				 "dns: no response from %s over TCP within %ds", server,
				 DNS_TCP_TIMEOUT_MS / 1000);
		else
			snprintf(reason, sizeof reason, "dns: no response from %s after %d %s",
				 server, timeouts, timeouts == 1 ? "try" : "tries");
		run_end(st, PROBE_STATUS_TIMEOUT, reason);
		return;
	case ARES_ECONNREFUSED:
		end_transport_error(st);
		return;
	case ARES_EBADRESP:
		snprintf(reason, sizeof reason, "dns: malformed response from %s", server);
		run_end(st, PROBE_STATUS_PROTOCOL_ERROR, reason);
		return;
	default:
		snprintf(reason, sizeof reason, "dns: query to %s failed: %s", server,
			 ares_strerror(status));
		run_end(st, PROBE_STATUS_IO_ERROR, reason);
		return;
	}
}

/* Socket functions: plain system calls, with what they see noted in the probe's state. */

static struct dns_socket *wire_find(struct dns_state *st, ares_socket_t fd)
{
	for (int i = 0; i < DNS_WIRE_SOCKETS; i++) {
		if (st->sockets[i].fd == fd)
			return &st->sockets[i];
	}
	return NULL;
}

static void frame_reset(struct dns_frame *f)
{
	free(f->data);
	memset(f, 0, sizeof *f);
}

/* Feeds stream bytes in; returns the length of a message completed in f->data, or -1. */
static long frame_feed(struct dns_frame *f, const uint8_t **p, size_t *n)
{
	while (*n > 0) {
		size_t take;

		if (f->length_have < 2) {
			f->length[f->length_have++] = *(*p)++;
			(*n)--;
			if (f->length_have < 2)
				continue;
			f->need = (size_t)f->length[0] << 8 | f->length[1];
			f->have = 0;
			free(f->data);
			f->data = xmalloc(f->need + 1);
			if (f->need > 0)
				continue;
		}
		take = f->need - f->have < *n ? f->need - f->have : *n;
		memcpy(f->data + f->have, *p, take);
		f->have += take;
		*p += take;
		*n -= take;
		if (f->have == f->need) {
			f->length_have = 0;
			return (long)f->need;
		}
	}
	return -1;
}

static void wire_sent(struct dns_state *st, const uint8_t *message, size_t length)
{
	if (length > sizeof st->query)
		return;
	memcpy(st->query, message, length);
	st->query_length = length;
}

static void wire_received(struct dns_state *st, const uint8_t *message, size_t length, bool stream)
{
	char error[sizeof st->malformed];

	if (st->run == NULL || st->malformed[0] != '\0')
		return;
	switch (dns_reply_classify(st->query, st->query_length, message, length, stream, error,
				   sizeof error)) {
	case DNS_REPLY_TRUNCATED:
		st->saw_truncated = true;
		return;
	case DNS_REPLY_MALFORMED:
		snprintf(st->malformed, sizeof st->malformed, "%s", error);
		/* Called from inside c-ares: finish from the loop, where cancelling is allowed. */
		event_active(st->finisher, EV_TIMEOUT, 1);
		return;
	case DNS_REPLY_FOREIGN:
	case DNS_REPLY_VALID:
		return;
	}
}

static void wire_note_error(struct dns_state *st, int error)
{
	if (error == ECONNREFUSED)
		st->wire_event = DNS_WIRE_REFUSED;
	else if (error == ECONNRESET || error == EPIPE || error == ECONNABORTED)
		st->wire_event = DNS_WIRE_RESET;
}

static ares_socket_t wire_socket(int domain, int type, int protocol, void *data)
{
	struct dns_state *st = data;
	/* With socket functions set, c-ares leaves making the socket non-blocking to them. */
	ares_socket_t fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
	struct dns_socket *slot;
	int one = 1;

	if (fd == ARES_SOCKET_BAD)
		return fd;
	if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	slot = wire_find(st, ARES_SOCKET_BAD);
	if (slot != NULL) {
		/* Sockets beyond the slots still work; only their checks are lost. */
		slot->fd = fd;
		slot->stream = (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM;
	}
	return fd;
}

static int wire_close(ares_socket_t fd, void *data)
{
	struct dns_socket *slot = wire_find(data, fd);

	if (slot != NULL) {
		frame_reset(&slot->in);
		frame_reset(&slot->out);
		slot->fd = ARES_SOCKET_BAD;
	}
	return close(fd);
}

static int wire_connect(ares_socket_t fd, const struct sockaddr *addr, ares_socklen_t length,
			void *data)
{
	int rc = connect(fd, addr, length);
	int saved = errno;

	if (rc < 0)
		wire_note_error(data, saved);
	errno = saved;
	return rc;
}

static ares_ssize_t wire_recvfrom(ares_socket_t fd, void *buf, size_t size, int flags,
				  struct sockaddr *from, ares_socklen_t *from_length, void *data)
{
	struct dns_state *st = data;
	struct dns_socket *slot = wire_find(st, fd);
	ares_ssize_t got = recvfrom(fd, buf, size, flags, from, from_length);
	int saved = errno;

	if (got < 0) {
		wire_note_error(st, saved);
	} else if (slot != NULL && slot->stream) {
		const uint8_t *p = buf;
		size_t n = (size_t)got;
		long length;

		if (got == 0)
			st->wire_event = DNS_WIRE_CLOSED;
		while ((length = frame_feed(&slot->in, &p, &n)) >= 0)
			wire_received(st, slot->in.data, (size_t)length, true);
	} else if (slot != NULL) {
		if (got == 0)
			st->wire_event = DNS_WIRE_EMPTY;
		else
			wire_received(st, buf, (size_t)got, false);
	}
	errno = saved;
	return got;
}

static ares_ssize_t wire_sendv(ares_socket_t fd, const struct iovec *iov, int count, void *data)
{
	struct dns_state *st = data;
	struct dns_socket *slot = wire_find(st, fd);
	ares_ssize_t sent = writev(fd, iov, count);
	int saved = errno;
	uint8_t datagram[DNS_QUERY_MAX];
	size_t left = sent > 0 ? (size_t)sent : 0;
	size_t copied = 0;

	if (sent < 0)
		wire_note_error(st, saved);
	for (int i = 0; i < count && left > 0 && slot != NULL; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
		long length;

		left -= n;
		if (!slot->stream) {
			if (copied + n <= sizeof datagram)
				memcpy(datagram + copied, p, n);
			copied += n;
			continue;
		}
		while ((length = frame_feed(&slot->out, &p, &n)) >= 0)
			wire_sent(st, slot->out.data, (size_t)length);
	}
	if (slot != NULL && !slot->stream && copied > 0 && copied <= sizeof datagram)
		wire_sent(st, datagram, copied);
	errno = saved;
	return sent;
}

static const struct ares_socket_functions wire_functions = {
    .asocket = wire_socket,
    .aclose = wire_close,
    .aconnect = wire_connect,
    .arecvfrom = wire_recvfrom,
    .asendv = wire_sendv,
};

static void on_finisher(evutil_socket_t fd, short what, void *arg)
{
	struct dns_state *st = arg;
	struct probe_run *run = st->run;

	(void)fd;
	(void)what;
	if (run == NULL || st->malformed[0] == '\0')
		return;
	/* Drop the query c-ares still waits on; its callback sees no run and returns. */
	st->run = NULL;
	cares_loop_cancel(st->loop);
	st->run = run;
	end_malformed(st);
}

static int ensure_channel(struct dns_state *st, struct event_base *base, char *reason,
			  size_t reason_size)
{
	struct ares_options options;
	int status;

	if (st->loop != NULL && st->loop_base == base)
		return 0;
	cares_loop_free(st->loop);
	st->loop = NULL;
	if (st->finisher != NULL)
		event_free(st->finisher);
	st->finisher = event_new(base, -1, 0, on_finisher, st);
	memset(&options, 0, sizeof options);
	/* NOCHECKRESP hands SERVFAIL and REFUSED answers over instead of trying the next
	 * server, so their rcode can be checked. */
	options.flags = ARES_FLAG_NOCHECKRESP | (st->tcp ? ARES_FLAG_USEVC : 0);
	options.timeout = st->tcp ? DNS_TCP_TIMEOUT_MS : DNS_TRY_TIMEOUT_MS;
	options.tries = DNS_TRIES;
	st->loop = cares_loop_new(base, &options,
				  ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES, &status);
	if (st->loop == NULL) {
		snprintf(reason, reason_size, "dns: cannot create a resolver channel: %s",
			 ares_strerror(status));
		return -1;
	}
	st->loop_base = base;
	ares_set_socket_functions(cares_loop_channel(st->loop), &wire_functions, st);
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
	st->wire_event = DNS_WIRE_NONE;
	st->saw_truncated = false;
	st->malformed[0] = '\0';
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
	if (st->finisher != NULL)
		event_del(st->finisher);
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
