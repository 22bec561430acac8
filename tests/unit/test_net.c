/*
 * Pure logic of the tcp, dns and icmp probes: option errors with their positions, DNS
 * response parsing and record rendering, regular-expression validation of sections,
 * ICMP echo packets with and without an IPv4 header, and tcp targets and send steps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "collector/cfg.h"
#include "probes/dns.h"
#include "probes/dns_message.h"
#include "probes/icmp_packet.h"
#include "probes/probe.h"
#include "probes/tcp.h"

/* Parses `text` as the options of a probe of `type`; returns the errors ("" if none). */
static char *parse_options(const char *type, const char *text)
{
	const struct probe_type *t = probe_type_find(type);
	struct cfg *cfg = cfg_parse_string("t.yml", text, strlen(text));
	struct cfg_map root;
	void *state = NULL;
	char *errors;

	assert_non_null(t);
	assert_int_equal(cfg_root(cfg, &root), 0);
	if (t->parse(&root, &state) == 0) {
		assert_non_null(state);
		t->free(state);
	}
	cfg_map_finish(&root);
	errors = strdup(cfg_errors(cfg));
	cfg_free(cfg);
	return errors;
}

static void expect_error(const char *type, const char *text, const char *message)
{
	char *errors = parse_options(type, text);

	if (strstr(errors, message) == NULL)
		fail_msg("expected error containing \"%s\", got \"%s\"", message, errors);
	free(errors);
}

static void expect_valid(const char *type, const char *text)
{
	char *errors = parse_options(type, text);

	if (errors[0] != '\0')
		fail_msg("expected no error for %s, got \"%s\"", text, errors);
	free(errors);
}

static void test_dns_options(void **state)
{
	(void)state;
	expect_valid("dns", "query_name: api.example\n");
	expect_valid("dns", "query_name: example\nquery_type: mx\nserver: \"[::1]:5353\"\n"
			    "transport: tcp\nrecursion_desired: false\n"
			    "valid_rcodes: [NOERROR, NXDOMAIN]\n"
			    "validate_answer_rrs: {fail_if_matches_regexp: [\"A\\t10\\\\.\"]}\n");
	expect_error("dns", "query_type: A\n", "t.yml:1:1: query_name: missing");
	expect_error(
	    "dns", "query_name: x\nquery_type: AXFR\n",
	    "t.yml:2:13: query_type: invalid query type \"AXFR\": expected one of A, AAAA");
	expect_error("dns", "query_name: x\nserver: ns1.example\n",
		     "t.yml:2:9: server: invalid server \"ns1.example\": expected an IP address");
	expect_error("dns", "query_name: x\nserver: 127.0.0.1:70000\n", "invalid server");
	expect_error("dns", "query_name: x\ntransport: quic\n",
		     "transport: invalid transport \"quic\": expected udp or tcp");
	expect_error("dns", "query_name: x\nvalid_rcodes: [NOERROR, NOPE]\n",
		     "valid_rcodes: invalid rcode \"NOPE\"");
	expect_error("dns",
		     "query_name: x\nvalidate_answer_rrs: {fail_if_matches_regexp: [\"(\"]}\n",
		     "validate_answer_rrs.fail_if_matches_regexp: invalid regular expression");
	expect_error("dns", "query_name: x\nvalidate_answer_rrs: {fail_if_match: [a]}\n",
		     "validate_answer_rrs.fail_if_match");
}

static void test_icmp_options(void **state)
{
	(void)state;
	expect_valid("icmp", "target: 127.0.0.1\ncount: 5\nspacing: 10ms\npayload_size: 8\n");
	expect_valid("icmp", "target: ::1\nip_protocol: ip6\n");
	expect_error("icmp", "count: 2\n", "t.yml:1:1: target: missing");
	expect_error("icmp", "target: 127.0.0.1\nip_protocol: ip6\n",
		     "contradicts the IPv4 target");
	expect_error("icmp", "target: localhost\nip_protocol: ipx\n",
		     "ip_protocol: invalid ip_protocol \"ipx\": expected ip4 or ip6");
	expect_error("icmp", "target: 127.0.0.1\ncount: 0\n", "t.yml:2:8: count:");
	expect_error("icmp", "target: 127.0.0.1\npayload_size: 4\n", "payload_size");
}

static void test_tcp_options(void **state)
{
	(void)state;
	expect_valid("tcp", "target: db.example:6379\nquery_response:\n"
			    "  - send: PING\n  - expect: \"^\\\\+PONG\"\n");
	expect_valid("tcp", "target: \"[::1]:25\"\nquery_response: [{expect: \"^220\"}, "
			    "{starttls: true}]\ntls_config: {insecure_skip_verify: true}\n");
	expect_error("tcp", "tls: true\n", "t.yml:1:1: target: missing");
	expect_error("tcp", "target: db.example\n",
		     "t.yml:1:9: target: invalid target \"db.example\": expected HOST:PORT");
	expect_error("tcp", "target: \"::1:25\"\n", "invalid target");
	expect_error("tcp", "target: a:1\nquery_response: [{send: a, expect: b}]\n",
		     "query_response[0]: a step needs exactly one of send");
	expect_error("tcp", "target: a:1\nquery_response: [{expect: \"(\"}]\n",
		     "query_response[0].expect: invalid regular expression \"(\"");
	expect_error("tcp", "target: a:1\nquery_response: [{sned: x}]\n", "query_response[0]");
	expect_error(
	    "tcp", "target: a:1\ntls: true\ntls_config: {ca_file: /nonexistent/ca.pem}\n",
	    "tls_config.ca_file: cannot load CA certificates from \"/nonexistent/ca.pem\"");
	expect_error("tcp", "target: a:1\ntls_config: {cert_file: /c.pem}\n",
		     "cert_file and key_file must be given together");
	expect_error("tcp", "target: 127.0.0.1:1\nip_protocol: ip6\n", "contradicts the address");
}

static void test_tcp_target_split(void **state)
{
	static const struct {
		const char *text;
		int rc;
		const char *host;
		unsigned port;
	} cases[] = {
	    {"db.example:6379", 0, "db.example", 6379},
	    {"127.0.0.1:25", 0, "127.0.0.1", 25},
	    {"[::1]:993", 0, "::1", 993},
	    {"db.example", -1, NULL, 0},
	    {"db.example:", -1, NULL, 0},
	    {"db.example:0", -1, NULL, 0},
	    {"db.example:65536", -1, NULL, 0},
	    {"db.example:22x", -1, NULL, 0},
	    {":22", -1, NULL, 0},
	    {"::1:22", -1, NULL, 0},
	    {"[::1]", -1, NULL, 0},
	};
	char host[256];
	unsigned port;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = tcp_parse_target(cases[i].text, host, sizeof host, &port);

		assert_int_equal(rc, cases[i].rc);
		if (rc == 0) {
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
		}
	}
}

static void test_tcp_send_line_ending(void **state)
{
	char *a = tcp_send_text("PING");
	char *b = tcp_send_text("EHLO x\n");
	char *c = tcp_send_text("");

	(void)state;
	assert_string_equal(a, "PING\r\n");
	assert_string_equal(b, "EHLO x\n");
	assert_string_equal(c, "\r\n");
	free(a);
	free(b);
	free(c);
}

/* A response to "example. MX" with compressed names, TXT, SOA and an unknown type. */
static const uint8_t response_mx[] = {
    0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x01, 0x00, 0x02,
    /* question: example. MX IN */
    7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0x00, 0x0f, 0x00, 0x01,
    /* answer 1: example. 300 IN MX 10 mail.example. (pointer to offset 12) */
    0xc0, 0x0c, 0x00, 0x0f, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x09, 0x00, 0x0a, 4, 'm', 'a',
    'i', 'l', 0xc0, 0x0c,
    /* answer 2: example. 60 IN TXT "v=spf1 -all" "a\"b" */
    0xc0, 0x0c, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x10, 11, 'v', '=', 's', 'p',
    'f', '1', ' ', '-', 'a', 'l', 'l', 3, 'a', '"', 'b',
    /* authority: example. 3600 IN SOA ns.example. host.example. 2024 7200 900 1209600 300 */
    0xc0, 0x0c, 0x00, 0x06, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x20, 2, 'n', 's', 0xc0, 0x0c,
    4, 'h', 'o', 's', 't', 0xc0, 0x0c, 0x00, 0x00, 0x07, 0xe8, 0x00, 0x00, 0x1c, 0x20, 0x00, 0x00,
    0x03, 0x84, 0x00, 0x12, 0x75, 0x00, 0x00, 0x00, 0x01, 0x2c,
    /* additional 1: mail.example. 300 IN A 192.0.2.25 (pointer to the MX target) */
    0xc0, 0x27, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x04, 192, 0, 2, 25,
    /* additional 2: mail.example. 300 IN TYPE999 \# 2 abcd */
    0xc0, 0x27, 0x03, 0xe7, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x02, 0xab, 0xcd};

static void test_dns_response_render(void **state)
{
	struct dns_response r;
	char error[128];

	(void)state;
	assert_int_equal(
	    dns_response_parse(response_mx, sizeof response_mx, &r, error, sizeof error), 0);
	assert_int_equal(r.id, 0x1234);
	assert_int_equal(r.rcode, 0);
	assert_int_equal(r.counts[DNS_SECTION_ANSWER], 2);
	assert_int_equal(r.counts[DNS_SECTION_AUTHORITY], 1);
	assert_int_equal(r.counts[DNS_SECTION_ADDITIONAL], 2);
	assert_string_equal(r.records[0][0], "example.\t300\tIN\tMX\t10 mail.example.");
	assert_string_equal(r.records[0][1], "example.\t60\tIN\tTXT\t\"v=spf1 -all\" \"a\\\"b\"");
	assert_string_equal(r.records[1][0], "example.\t3600\tIN\tSOA\tns.example. host.example. "
					     "2024 7200 900 1209600 300");
	assert_string_equal(r.records[2][0], "mail.example.\t300\tIN\tA\t192.0.2.25");
	assert_string_equal(r.records[2][1], "mail.example.\t300\tIN\tTYPE999\t\\# 2 abcd");
	/* The SOA sits in the authority section, so there is no answer serial. */
	assert_int_equal(r.has_soa_serial, 0);
	dns_response_free(&r);
}

static void test_dns_response_malformed(void **state)
{
	uint8_t copy[sizeof response_mx];
	struct dns_response r;
	char error[128];

	(void)state;
	assert_int_equal(dns_response_parse(response_mx, 11, &r, error, sizeof error), -1);
	assert_string_equal(error, "truncated header (11 bytes)");

	/* Cut inside the TXT record. */
	assert_int_equal(dns_response_parse(response_mx, 60, &r, error, sizeof error), -1);
	assert_string_equal(error, "record 2 of the answer section is malformed");

	/* A compression pointer that points forward (to itself) would loop. */
	memcpy(copy, response_mx, sizeof copy);
	copy[26] = 25;
	assert_int_equal(dns_response_parse(copy, sizeof copy, &r, error, sizeof error), -1);
	assert_string_equal(error, "record 1 of the answer section is malformed");
}

/* A query for api.example A IN with ID 0x4242, as c-ares sends it. */
static const uint8_t query_api[] = {0x42, 0x42, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
				    0x00, 0x00, 3,    'a',  'p',  'i',  7,    'e',  'x',  'a',
				    'm',  'p',  'l',  'e',  0,    0x00, 0x01, 0x00, 0x01};

/* The answer to query_api with one A record, 192.0.2.10. */
static const uint8_t reply_api[] = {
    0x42, 0x42, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 3,    'a',  'p',
    'i',  7,    'e',  'x',  'a',  'm',  'p',  'l',  'e',  0,    0x00, 0x01, 0x00, 0x01, 0xc0,
    0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x04, 192,  0,    2,    10};

static void test_dns_reply_classify(void **state)
{
	static const struct {
		const char *behaviour;
		size_t length; /* of the reply, after the edits below */
		size_t edit_at;
		uint8_t edit_value;
		int over_tcp;
		enum dns_reply_kind kind;
		const char *error;
	} cases[] = {
	    {"a well-formed answer is valid", sizeof reply_api, 0, 0x42, 0, DNS_REPLY_VALID, ""},
	    {"another query's ID is not ours", sizeof reply_api, 1, 0x43, 0, DNS_REPLY_FOREIGN, ""},
	    {"one byte cannot be matched to the query", 1, 0, 0x42, 0, DNS_REPLY_FOREIGN, ""},
	    {"a header cut short is malformed", 8, 0, 0x42, 0, DNS_REPLY_MALFORMED,
	     "truncated header (8 bytes)"},
	    {"a message with QR clear is malformed", sizeof reply_api, 2, 0x01, 0,
	     DNS_REPLY_MALFORMED, "QR bit clear: not a response"},
	    {"another name in the question is malformed", sizeof reply_api, 13, 'b', 0,
	     DNS_REPLY_MALFORMED, "question section does not repeat the query"},
	    {"a question count of zero is malformed", sizeof reply_api, 5, 0, 0,
	     DNS_REPLY_MALFORMED, "question section does not repeat the query"},
	    {"the question's case does not matter", sizeof reply_api, 13, 'A', 0, DNS_REPLY_VALID,
	     ""},
	    {"a record cut short is malformed", sizeof reply_api - 2, 0, 0x42, 0,
	     DNS_REPLY_MALFORMED, "record 1 of the answer section is malformed"},
	    {"a truncated UDP answer goes on over TCP", sizeof reply_api - 2, 2, 0x83, 0,
	     DNS_REPLY_TRUNCATED, ""},
	    {"TC over TCP does not excuse a cut record", sizeof reply_api - 2, 2, 0x83, 1,
	     DNS_REPLY_MALFORMED, "record 1 of the answer section is malformed"},
	    {"more records counted than present is malformed", sizeof reply_api, 7, 5, 0,
	     DNS_REPLY_MALFORMED, "record 2 of the answer section is malformed"},
	};
	uint8_t reply[sizeof reply_api];
	char error[128];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memcpy(reply, reply_api, sizeof reply);
		reply[cases[i].edit_at] = cases[i].edit_value;
		print_message("%s\n", cases[i].behaviour);
		assert_int_equal(dns_reply_classify(query_api, sizeof query_api, reply,
						    cases[i].length, cases[i].over_tcp, error,
						    sizeof error),
				 cases[i].kind);
		assert_string_equal(error, cases[i].error);
	}
	/* Nothing is known about the query yet (nothing was sent): every reply is foreign. */
	assert_int_equal(
	    dns_reply_classify(query_api, 0, reply_api, sizeof reply_api, 0, error, sizeof error),
	    DNS_REPLY_FOREIGN);
}

static void test_dns_rcode_and_type_names(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(dns_rcode_parse("nxdomain"), 3);
	assert_int_equal(dns_rcode_parse("SERVFAIL"), 2);
	assert_int_equal(dns_rcode_parse("BOGUS"), -1);
	assert_string_equal(dns_rcode_name(5, buf, sizeof buf), "REFUSED");
	assert_string_equal(dns_rcode_name(15, buf, sizeof buf), "RCODE15");
	assert_int_equal(dns_type_parse("aaaa"), 28);
	assert_int_equal(dns_type_parse("SRV"), 33);
	assert_string_equal(dns_type_name(6), "SOA");
	assert_null(dns_type_name(999));
}

static void test_dns_server_split(void **state)
{
	char host[64];
	unsigned port;
	int family;

	(void)state;
	assert_int_equal(dns_parse_server("127.0.0.1", host, sizeof host, &port, &family), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 53);
	assert_int_equal(family, AF_INET);
	assert_int_equal(dns_parse_server("127.0.0.1:5353", host, sizeof host, &port, &family), 0);
	assert_int_equal(port, 5353);
	assert_int_equal(dns_parse_server("[::1]:5353", host, sizeof host, &port, &family), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 5353);
	assert_int_equal(family, AF_INET6);
	assert_int_equal(dns_parse_server("2001:db8::1", host, sizeof host, &port, &family), 0);
	assert_int_equal(port, 53);
	assert_int_equal(dns_parse_server("ns.example", host, sizeof host, &port, &family), -1);
	assert_int_equal(dns_parse_server("127.0.0.1:0", host, sizeof host, &port, &family), -1);
	assert_int_equal(dns_parse_server("[::1]x", host, sizeof host, &port, &family), -1);
}

static void validation_init(struct dns_validation *v, const char *matches, const char *not_matches)
{
	memset(v, 0, sizeof *v);
	if (matches != NULL) {
		v->fail_if_matches = calloc(1, sizeof(regex_t));
		assert_int_equal(regcomp(v->fail_if_matches, matches, REG_EXTENDED | REG_NOSUB), 0);
		v->fail_if_matches_count = 1;
		v->fail_if_matches_source = calloc(2, sizeof(char *));
		v->fail_if_matches_source[0] = strdup(matches);
	}
	if (not_matches != NULL) {
		v->fail_if_not_matches = calloc(1, sizeof(regex_t));
		assert_int_equal(
		    regcomp(v->fail_if_not_matches, not_matches, REG_EXTENDED | REG_NOSUB), 0);
		v->fail_if_not_matches_count = 1;
		v->fail_if_not_matches_source = calloc(2, sizeof(char *));
		v->fail_if_not_matches_source[0] = strdup(not_matches);
	}
}

static void validation_free(struct dns_validation *v)
{
	if (v->fail_if_matches != NULL)
		regfree(v->fail_if_matches);
	if (v->fail_if_not_matches != NULL)
		regfree(v->fail_if_not_matches);
	free(v->fail_if_matches);
	free(v->fail_if_not_matches);
	cfg_strv_free(v->fail_if_matches_source);
	cfg_strv_free(v->fail_if_not_matches_source);
}

static void test_dns_section_validation(void **state)
{
	char *records[] = {"api.example.\t300\tIN\tA\t192.0.2.10",
			   "api.example.\t300\tIN\tA\t192.0.2.11"};
	struct dns_validation v;
	char reason[256];

	(void)state;
	validation_init(&v, "A\t10\\.", "A\t192\\.0\\.2\\.");
	assert_int_equal(dns_validate_section(&v, records, 2, "answer", reason, sizeof reason), 0);
	validation_free(&v);

	validation_init(&v, "192\\.0\\.2\\.11$", NULL);
	assert_int_equal(dns_validate_section(&v, records, 2, "answer", reason, sizeof reason), -1);
	assert_string_equal(reason,
			    "dns: answer record \"api.example.\\t300\\tIN\\tA\\t192.0.2.11\" "
			    "matched /192\\.0\\.2\\.11$/");
	validation_free(&v);

	validation_init(&v, NULL, "AAAA");
	assert_int_equal(dns_validate_section(&v, records, 2, "answer", reason, sizeof reason), -1);
	assert_string_equal(reason, "dns: no answer record matched /AAAA/ (2 records)");
	/* An empty section fails every fail_if_not_matches expression. */
	assert_int_equal(dns_validate_section(&v, NULL, 0, "answer", reason, sizeof reason), -1);
	validation_free(&v);
}

static const uint8_t cookie[ICMP_COOKIE_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8};

static void test_icmp_echo_request(void **state)
{
	uint8_t buf[128];
	size_t n;

	(void)state;
	n = icmp_echo_build(buf, sizeof buf, AF_INET, 0x1234, 7, cookie, 56);
	assert_int_equal(n, 64);
	assert_int_equal(buf[0], 8);
	assert_int_equal(buf[4], 0x12);
	assert_int_equal(buf[5], 0x34);
	assert_int_equal(buf[7], 7);
	assert_memory_equal(buf + 8, cookie, sizeof cookie);
	/* A packet with its checksum in place sums to zero. */
	assert_int_equal(icmp_checksum(buf, n), 0);

	n = icmp_echo_build(buf, sizeof buf, AF_INET6, 1, 65535, cookie, 8);
	assert_int_equal(n, 16);
	assert_int_equal(buf[0], 128);
	assert_int_equal(buf[2] | buf[3], 0);
	assert_int_equal(buf[6], 0xff);

	assert_int_equal(icmp_echo_build(buf, sizeof buf, AF_INET, 1, 1, cookie, 7), 0);
	assert_int_equal(icmp_echo_build(buf, 20, AF_INET, 1, 1, cookie, 56), 0);
}

/* Turns a request into the reply a peer would send. */
static void make_reply(uint8_t *packet, int family)
{
	packet[0] = family == AF_INET6 ? 129 : 0;
}

static void test_icmp_reply_from_ping_socket(void **state)
{
	uint8_t buf[128];
	struct icmp_echo echo;
	size_t n = icmp_echo_build(buf, sizeof buf, AF_INET, 29, 4, cookie, 56);
	uint8_t other[ICMP_COOKIE_SIZE] = {8, 7, 6, 5, 4, 3, 2, 1};

	(void)state;
	make_reply(buf, AF_INET);
	/* A ping socket returns the ICMP message alone: its first byte is the type. */
	assert_int_equal(icmp_echo_parse(buf, n, AF_INET, false, &echo), 0);
	assert_int_equal(echo.id, 29);
	assert_int_equal(echo.sequence, 4);
	assert_true(icmp_echo_has_cookie(&echo, cookie));
	assert_false(icmp_echo_has_cookie(&echo, other));
	/* Read as if it had an IP header, the same bytes are rejected, not misread. */
	assert_int_equal(icmp_echo_parse(buf, n, AF_INET, true, &echo), -1);
	/* A request (our own, looped back on a raw socket) is not a reply. */
	buf[0] = 8;
	assert_int_equal(icmp_echo_parse(buf, n, AF_INET, false, &echo), -1);
}

static void test_icmp_reply_from_raw_socket(void **state)
{
	uint8_t buf[256];
	struct icmp_echo echo;
	size_t n;

	(void)state;
	memset(buf, 0, 24);
	buf[0] = 0x46; /* IPv4 with 4 bytes of options: a 24-byte header */
	n = icmp_echo_build(buf + 24, sizeof buf - 24, AF_INET, 0xbeef, 300, cookie, 16);
	make_reply(buf + 24, AF_INET);
	assert_int_equal(icmp_echo_parse(buf, n + 24, AF_INET, true, &echo), 0);
	assert_int_equal(echo.id, 0xbeef);
	assert_int_equal(echo.sequence, 300);
	assert_int_equal(echo.payload_size, 16);
	assert_true(icmp_echo_has_cookie(&echo, cookie));
	/* Truncated after the IP header. */
	assert_int_equal(icmp_echo_parse(buf, 28, AF_INET, true, &echo), -1);
	/* Not IPv4. */
	buf[0] = 0x65;
	assert_int_equal(icmp_echo_parse(buf, n + 24, AF_INET, true, &echo), -1);
}

static void test_icmp_reply_ipv6(void **state)
{
	uint8_t buf[128];
	struct icmp_echo echo;
	size_t n = icmp_echo_build(buf, sizeof buf, AF_INET6, 5, 9, cookie, 8);

	(void)state;
	assert_int_equal(icmp_echo_parse(buf, n, AF_INET6, false, &echo), -1);
	make_reply(buf, AF_INET6);
	assert_int_equal(icmp_echo_parse(buf, n, AF_INET6, false, &echo), 0);
	assert_int_equal(echo.sequence, 9);
	assert_true(icmp_echo_has_cookie(&echo, cookie));
	/* A reply whose payload is shorter than the cookie never matches. */
	assert_int_equal(icmp_echo_parse(buf, 12, AF_INET6, false, &echo), 0);
	assert_false(icmp_echo_has_cookie(&echo, cookie));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dns_options),
	    cmocka_unit_test(test_icmp_options),
	    cmocka_unit_test(test_tcp_options),
	    cmocka_unit_test(test_tcp_target_split),
	    cmocka_unit_test(test_tcp_send_line_ending),
	    cmocka_unit_test(test_dns_response_render),
	    cmocka_unit_test(test_dns_response_malformed),
	    cmocka_unit_test(test_dns_reply_classify),
	    cmocka_unit_test(test_dns_rcode_and_type_names),
	    cmocka_unit_test(test_dns_server_split),
	    cmocka_unit_test(test_dns_section_validation),
	    cmocka_unit_test(test_icmp_echo_request),
	    cmocka_unit_test(test_icmp_reply_from_ping_socket),
	    cmocka_unit_test(test_icmp_reply_from_raw_socket),
	    cmocka_unit_test(test_icmp_reply_ipv6),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
