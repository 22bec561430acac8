/*
 * The http probe's pure parts: option parsing and its error messages, status code sets,
 * body regexes on raw bytes, Accept-Encoding mapping, and the verdict and reason for each
 * way a transfer can end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/cfg.h"
#include "probes/http_check.h"
#include "probes/http_options.h"

/* Parses `yaml` (the options mapping) as "t.yml"; returns options or NULL, with errors. */
static struct http_options *parse(const char *yaml, char *errors, size_t size)
{
	struct cfg *cfg = cfg_parse_string("t.yml", yaml, strlen(yaml));
	struct cfg_map root;
	struct http_options *o = NULL;

	if (cfg_root(cfg, &root) == 0)
		o = http_options_parse(&root);
	cfg_map_finish(&root);
	snprintf(errors, size, "%s", cfg_errors(cfg));
	cfg_free(cfg);
	return o;
}

static struct http_options *parse_ok(const char *yaml)
{
	char errors[2048];
	struct http_options *o = parse(yaml, errors, sizeof(errors));

	if (o == NULL || errors[0] != '\0')
		print_error("unexpected errors:\n%s\n", errors);
	assert_non_null(o);
	assert_string_equal(errors, "");
	return o;
}

static void options_defaults(void **state)
{
	struct http_options *o = parse_ok("url: http://127.0.0.1:8080/health\n");

	(void)state;
	assert_string_equal(o->method, "GET");
	assert_string_equal(o->request_url, "http://127.0.0.1:8080/health");
	assert_string_equal(o->accept_encoding, "");
	assert_true(o->follow_redirects);
	assert_int_equal(o->max_redirects, 10);
	assert_int_equal(o->max_body_bytes, 10 * 1024 * 1024);
	assert_false(o->reuse_connections);
	assert_int_equal(o->ip_family, HTTP_IP4);
	assert_true(o->ip_fallback);
	assert_true(o->host_is_address);
	assert_string_equal(o->valid_status.text, "2xx");
	assert_true(http_status_set_contains(&o->valid_status, 200));
	assert_false(http_status_set_contains(&o->valid_status, 301));
	assert_null(o->connect_to);
	http_options_free(o);
}

static void options_all_accepted(void **state)
{
	struct http_options *o =
	    parse_ok("url: https://example.test:8443/x\nmethod: post\nbody: hi\n"
		     "headers: { X-A: b, Accept-Encoding: \"gzip, br;q=0.5\" }\n"
		     "valid_status_codes: [200, 3xx]\nfollow_redirects: false\nmax_redirects: 3\n"
		     "body_must_match: [ok]\nbody_must_not_match: [error, fail]\n"
		     "tls: { server_name: real.test, insecure_skip_verify: true }\n"
		     "ip_protocol: ip6\nip_protocol_fallback: false\nproxy: http://127.0.0.1:3128\n"
		     "http_version: \"2\"\nmax_body_bytes: 1KiB\nreuse_connections: true\n"
		     "fail_if_not_ssl: true\n");

	(void)state;
	assert_string_equal(o->method, "POST");
	assert_int_equal(o->header_count, 2);
	assert_string_equal(o->headers[0], "X-A: b");
	assert_string_equal(o->headers[1], "Host: example.test:8443");
	assert_string_equal(o->accept_encoding, "gzip, br;q=0.5");
	assert_string_equal(o->valid_status.text, "200, 3xx");
	assert_false(o->follow_redirects);
	assert_int_equal(o->max_redirects, 3);
	assert_int_equal(o->must_match_count, 1);
	assert_int_equal(o->must_not_match_count, 2);
	assert_string_equal(o->request_url, "https://real.test:8443/x");
	assert_string_equal(o->connect_to, "real.test:8443:example.test:8443");
	assert_true(o->tls.insecure_skip_verify);
	assert_int_equal(o->ip_family, HTTP_IP6);
	assert_false(o->ip_fallback);
	assert_int_equal(o->version, HTTP_VERSION_2);
	assert_int_equal(o->max_body_bytes, 1024);
	assert_true(o->reuse_connections);
	assert_true(o->fail_if_not_ssl);
	assert_false(o->host_is_address);
	http_options_free(o);
}

static void options_errors_name_location_and_value(void **state)
{
	static const struct {
		const char *yaml;
		const char *error;
	} cases[] = {
	    {"method: GET\n", "t.yml:1:1: url is missing; an http probe needs url: "
			      "http://HOST/PATH"},
	    {"url: ftp://x/\n", "t.yml:1:6: url: scheme \"ftp\" is not supported; use http or "
				"https"},
	    {"url: http://x/\nvalid_status_codes: [200, 7xx]\n",
	     "t.yml:2:21: valid_status_codes: \"7xx\" is not a status code; use codes from 100 to "
	     "599 or classes such as 2xx"},
	    {"url: http://x/\nvalid_status_codes: [99]\n",
	     "t.yml:2:21: valid_status_codes: \"99\" is not a status code; use codes from 100 to "
	     "599 or classes such as 2xx"},
	    {"url: http://x/\nbody_must_match: [\"a(\"]\n",
	     "t.yml:2:18: body_must_match: regex \"a(\" is invalid: Unmatched ( or \\( (POSIX "
	     "extended "
	     "syntax)"},
	    {"url: http://x/\nheaders: { Accept-Encoding: compress }\n",
	     "t.yml:2:10: headers: Accept-Encoding \"compress\": coding compress cannot be "
	     "decoded; "
	     "bodies are always decoded, so omit the header or list identity, gzip, deflate, br "
	     "or zstd"},
	    {"url: http://x/\nip_protocol: ip5\n",
	     "t.yml:2:14: ip_protocol: \"ip5\" is not accepted; use ip4 or ip6"},
	    {"url: http://x/\nhttp_version: \"3\"\n",
	     "t.yml:2:15: http_version: \"3\" is not accepted; use \"1.1\" or \"2\""},
	    {"url: http://x/\nmethod: HEAD\nbody: x\n",
	     "t.yml:3:7: body: a HEAD request cannot carry a body"},
	    {"url: http://x/\nbearer_token_file: /nonexistent/t\n",
	     "t.yml:2:20: bearer_token_file: cannot open \"/nonexistent/t\": No such file or "
	     "directory"},
	    {"url: http://x/\nfail_if_ssl: true\nfail_if_not_ssl: true\n",
	     "t.yml:3:18: fail_if_not_ssl: fail_if_ssl and fail_if_not_ssl cannot both be true"},
	    {"url: http://x/\ntls: { cert_file: /dev/null }\n",
	     "t.yml:2:6: tls: cert_file and key_file must be given together"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char errors[2048];
		struct http_options *o = parse(cases[i].yaml, errors, sizeof(errors));

		if (strcmp(errors, cases[i].error) != 0)
			print_error("case %zu: got:\n%s", i, errors);
		assert_null(o);
		assert_string_equal(errors, cases[i].error);
	}
}

static void secret_file_is_read_and_trimmed(void **state)
{
	char path[] = "/tmp/tocsin-test-secret-XXXXXX";
	int fd = mkstemp(path);
	char yaml[256];
	struct http_options *o;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hunter2\n", 8), 8);
	close(fd);
	snprintf(yaml, sizeof(yaml),
		 "url: http://x/\nbasic_auth: { username: u, password_file: %s }\n", path);
	o = parse_ok(yaml);
	assert_string_equal(o->username, "u");
	assert_string_equal(o->password, "hunter2");
	http_options_free(o);
	unlink(path);
}

static void secret_file_readable_by_others_rejected(void **state)
{
	char path[] = "/tmp/tocsin-test-secret-XXXXXX";
	int fd = mkstemp(path);
	char yaml[256];
	char expected[512];

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hunter2\n", 8), 8);
	close(fd);
	assert_int_equal(chmod(path, 0644), 0);
	snprintf(yaml, sizeof(yaml), "url: http://x/\nbearer_token_file: %s\n", path);
	snprintf(expected, sizeof(expected),
		 "t.yml:2:20: bearer_token_file: \"%s\" is accessible by others (mode 0644); run "
		 "chmod o-rwx on it",
		 path);
	{
		char errors[2048];
		struct http_options *o = parse(yaml, errors, sizeof(errors));

		if (o != NULL)
			http_options_free(o);
		assert_null(o);
		assert_string_equal(errors, expected);
	}
	unlink(path);
}

static void status_classes_and_codes(void **state)
{
	static const struct {
		const char *items[3];
		long code;
		bool contained;
	} cases[] = {
	    {{"2xx"}, 200, true},        {{"2xx"}, 299, true},        {{"2xx"}, 300, false},
	    {{"2xx"}, 199, false},       {{"5XX"}, 503, true},        {{"404"}, 404, true},
	    {{"404"}, 405, false},       {{"200", "3xx"}, 302, true}, {{"200", "3xx"}, 201, false},
	    {{"1xx", "599"}, 599, true}, {{"2xx"}, 0, false},         {{"2xx"}, 600, false},
	    {{"2xx"}, -200, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_status_set set = {0};

		for (size_t j = 0; j < 3 && cases[i].items[j] != NULL; j++)
			assert_int_equal(http_status_set_add(&set, cases[i].items[j]), 0);
		if (http_status_set_contains(&set, cases[i].code) != cases[i].contained)
			print_error("case %zu: code %ld\n", i, cases[i].code);
		assert_int_equal(http_status_set_contains(&set, cases[i].code), cases[i].contained);
	}
}

static void status_items_rejected(void **state)
{
	static const char *const bad[] = {"",    "2",  "20",  "2000", "6xx", "0xx",
					  "x2x", "2x", "abc", "099",  "600", "-20"};
	struct http_status_set set = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (http_status_set_add(&set, bad[i]) != -1)
			print_error("accepted \"%s\"\n", bad[i]);
		assert_int_equal(http_status_set_add(&set, bad[i]), -1);
	}
}

static void compile(struct http_regex *r, const char *source)
{
	assert_int_equal(regcomp(&r->compiled, source, REG_EXTENDED | REG_NOSUB), 0);
	r->source = (char *)source;
}

static void regexes_match_raw_bodies(void **state)
{
	struct http_regex list[3];
	static const char body[] = "\x00\x01<html>\nStatus: OK\x00tail";

	(void)state;
	compile(&list[0], "^absent$");
	compile(&list[1], "Status: (OK|FAIL)");
	compile(&list[2], "tail$");
	/* NUL bytes inside the body do not end it. */
	assert_int_equal(http_regex_first_match(list, 3, body, sizeof(body) - 1), 1);
	assert_int_equal(http_regex_first_match(&list[2], 1, body, sizeof(body) - 1), 0);
	assert_int_equal(http_regex_first_match(list, 1, body, sizeof(body) - 1), -1);
	/* The length bounds the match: "tail" is cut off here. */
	assert_int_equal(http_regex_first_match(&list[2], 1, body, sizeof(body) - 3), -1);
	assert_int_equal(http_regex_first_match(list, 3, NULL, 0), -1);
	for (size_t i = 0; i < 3; i++)
		regfree(&list[i].compiled);
}

static void accept_encoding_codings(void **state)
{
	static const struct {
		const char *value;
		int rc;
		const char *bad;
	} cases[] = {
	    {"gzip", 0, ""},   {"gzip, deflate", 0, ""},     {"GZIP;q=1.0, identity;q=0.1", 0, ""},
	    {"x-gzip", 0, ""}, {"compress", -1, "compress"}, {"gzip, lzma", -1, "lzma"},
	    {"", -1, ""},      {" , ", -1, " , "},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char bad[64] = "";

		assert_int_equal(http_accept_encoding_check(cases[i].value, bad, sizeof(bad)),
				 cases[i].rc);
		if (cases[i].rc < 0)
			assert_string_equal(bad, cases[i].bad);
	}
}

static void transfer_verdicts_and_reasons(void **state)
{
	struct http_options *o = parse_ok("url: http://x/\nbody_must_not_match: [\"<!DOCTYPE\"]\n"
					  "body_must_match: [\"Status: OK\"]\n");
	struct http_tls_info expired = {.seen = true,
					.verify_error = 10, /* X509_V_ERR_CERT_HAS_EXPIRED */
					.expired = true,
					.expired_not_after = 1428883199};
	struct http_tls_info untrusted = {.seen = true, .verify_error = 18};
	static const char ok_body[] = "<p>Status: OK</p>";
	static const char doctype_body[] = "<!DOCTYPE html>\n<p>Status: OK</p>\n";
	const struct {
		struct http_transfer t;
		enum probe_status status;
		enum http_failure failure;
		const char *reason;
	} cases[] = {
	    {{.code = CURLE_OK, .status = 200, .body = ok_body, .body_length = sizeof(ok_body) - 1},
	     PROBE_STATUS_OK,
	     HTTP_FAILURE_NONE,
	     ""},
	    {{.code = CURLE_OK, .status = 503, .body = ok_body, .body_length = 17},
	     PROBE_STATUS_STATUS_MISMATCH,
	     HTTP_FAILURE_STATUS,
	     "http: status 503 not in 2xx"},
	    {{.code = CURLE_OK, .status = 200, .body = doctype_body, .body_length = 34},
	     PROBE_STATUS_CONTENT_MISMATCH,
	     HTTP_FAILURE_REGEX,
	     "body matched forbidden pattern /<!DOCTYPE/"},
	    {{.code = CURLE_OK, .status = 200, .body = "nothing", .body_length = 7},
	     PROBE_STATUS_CONTENT_MISMATCH,
	     HTTP_FAILURE_REGEX,
	     "body did not match /Status: OK/"},
	    {{.code = CURLE_COULDNT_CONNECT, .os_errno = 111},
	     PROBE_STATUS_REFUSED,
	     HTTP_FAILURE_TRANSPORT,
	     "connect: refused"},
	    {{.code = CURLE_COULDNT_CONNECT, .os_errno = 113},
	     PROBE_STATUS_UNREACHABLE,
	     HTTP_FAILURE_TRANSPORT,
	     "connect: host unreachable"},
	    {{.code = CURLE_COULDNT_RESOLVE_HOST, .host = "api.example"},
	     PROBE_STATUS_RESOLVE_ERROR,
	     HTTP_FAILURE_TRANSPORT,
	     "dns: cannot resolve api.example"},
	    {{.code = CURLE_PEER_FAILED_VERIFICATION, .tls = &expired},
	     PROBE_STATUS_TLS_EXPIRED,
	     HTTP_FAILURE_TRANSPORT,
	     "tls: certificate expired on 2015-04-12"},
	    {{.code = CURLE_PEER_FAILED_VERIFICATION, .tls = &untrusted},
	     PROBE_STATUS_TLS_ERROR,
	     HTTP_FAILURE_TRANSPORT,
	     "tls: self-signed certificate"},
	    {{.code = CURLE_SSL_CONNECT_ERROR, .curl_error = "handshake failure"},
	     PROBE_STATUS_TLS_ERROR,
	     HTTP_FAILURE_TRANSPORT,
	     "tls: handshake failure"},
	    {{.code = CURLE_BAD_CONTENT_ENCODING,
	      .curl_error = "Error while processing content "
			    "unencoding: incorrect header check"},
	     PROBE_STATUS_PROTOCOL_ERROR,
	     HTTP_FAILURE_TRANSPORT,
	     "http: content decoding error: Error while processing content unencoding: incorrect "
	     "header check"},
	    {{.code = CURLE_TOO_MANY_REDIRECTS},
	     PROBE_STATUS_PROTOCOL_ERROR,
	     HTTP_FAILURE_TRANSPORT,
	     "http: more than 10 redirects"},
	    {{.code = CURLE_WRITE_ERROR, .body_too_large = true},
	     PROBE_STATUS_LIMIT_REACHED,
	     HTTP_FAILURE_TRANSPORT,
	     "http: body larger than max_body_bytes (10485760 bytes)"},
	    {{.code = CURLE_GOT_NOTHING},
	     PROBE_STATUS_CONNECTION_LOST,
	     HTTP_FAILURE_TRANSPORT,
	     "http: connection closed without a response"},
	    {{.code = CURLE_RECV_ERROR,
	      .curl_error = "Too large response headers: 307957 > 307200"},
	     PROBE_STATUS_PROTOCOL_ERROR,
	     HTTP_FAILURE_TRANSPORT,
	     "http: Too large response headers: 307957 > 307200"},
	    {{.code = CURLE_RECV_ERROR, .curl_error = "Recv failure: Connection reset by peer"},
	     PROBE_STATUS_CONNECTION_LOST,
	     HTTP_FAILURE_TRANSPORT,
	     "http: Recv failure: Connection reset by peer"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum http_failure failure;
		char reason[256];
		enum probe_status status =
		    http_check_transfer(o, &cases[i].t, &failure, reason, sizeof(reason));

		if (strcmp(reason, cases[i].reason) != 0)
			print_error("case %zu: reason \"%s\"\n", i, reason);
		assert_string_equal(reason, cases[i].reason);
		assert_int_equal(status, cases[i].status);
		assert_int_equal(failure, cases[i].failure);
	}
	http_options_free(o);
}

static void tls_policy_verdicts(void **state)
{
	struct http_options *need = parse_ok("url: http://x/\nfail_if_not_ssl: true\n");
	struct http_options *forbid = parse_ok("url: https://x/\nfail_if_ssl: true\n");
	struct http_transfer plain = {.code = CURLE_OK, .status = 200};
	struct http_transfer secure = {.code = CURLE_OK, .status = 200, .over_tls = true};
	enum http_failure failure;
	char reason[256];

	(void)state;
	assert_int_equal(http_check_transfer(need, &plain, &failure, reason, sizeof(reason)),
			 PROBE_STATUS_PROTOCOL_ERROR);
	assert_string_equal(reason,
			    "http: response came over plain HTTP and fail_if_not_ssl is set");
	assert_int_equal(failure, HTTP_FAILURE_SSL_POLICY);
	assert_int_equal(http_check_transfer(need, &secure, &failure, reason, sizeof(reason)),
			 PROBE_STATUS_OK);
	assert_int_equal(http_check_transfer(forbid, &secure, &failure, reason, sizeof(reason)),
			 PROBE_STATUS_PROTOCOL_ERROR);
	assert_string_equal(reason, "http: response came over TLS and fail_if_ssl is set");
	http_options_free(need);
	http_options_free(forbid);
}

static void dates_are_utc(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(http_format_date(1428883199, buf, sizeof(buf)), "2015-04-12");
	assert_string_equal(http_format_date(1428883200, buf, sizeof(buf)), "2015-04-13");
	assert_string_equal(http_format_date(0, buf, sizeof(buf)), "1970-01-01");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(options_defaults),
	    cmocka_unit_test(options_all_accepted),
	    cmocka_unit_test(options_errors_name_location_and_value),
	    cmocka_unit_test(secret_file_is_read_and_trimmed),
	    cmocka_unit_test(secret_file_readable_by_others_rejected),
	    cmocka_unit_test(status_classes_and_codes),
	    cmocka_unit_test(status_items_rejected),
	    cmocka_unit_test(regexes_match_raw_bodies),
	    cmocka_unit_test(accept_encoding_codings),
	    cmocka_unit_test(transfer_verdicts_and_reasons),
	    cmocka_unit_test(tls_policy_verdicts),
	    cmocka_unit_test(dates_are_utc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
