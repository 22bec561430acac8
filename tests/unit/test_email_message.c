/*
 * Unit tests of the email receiver's message. They cover address parsing, header folding
 * and RFC 2047 encoded-words, quoted-printable bodies (decoded again here), the Date and
 * Message-ID headers, the built-in subject and templates. For the whole message they check
 * line ends, line lengths and the multipart structure, with an annotation that contains a
 * 1322-character URL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alerter/email_message.h"
#include "collector/template.h"
#include "collector/utf8.h"

/* ---- decoders, written independently of the encoders under test ---- */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes quoted-printable with CRLF line ends into text with "\n" line ends. */
static char *qp_decode(const char *encoded)
{
	char *out = calloc(strlen(encoded) + 1, 1);
	size_t n = 0;

	assert_non_null(out);
	for (const char *p = encoded; *p != '\0'; p++) {
		if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
			p += 2; /* soft line break */
		} else if (p[0] == '=') {
			assert_true(hex_value(p[1]) >= 0 && hex_value(p[2]) >= 0);
			out[n++] = (char)(hex_value(p[1]) * 16 + hex_value(p[2]));
			p += 2;
		} else if (p[0] == '\r' && p[1] == '\n') {
			out[n++] = '\n';
			p++;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
	return out;
}

static int base64_value(char c)
{
	const char *digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = strchr(digits, c);

	return c != '\0' && p != NULL ? (int)(p - digits) : -1;
}

static size_t base64_decode(const char *text, size_t length, char *out)
{
	size_t n = 0;
	unsigned bits = 0;
	int count = 0;

	for (size_t i = 0; i < length && text[i] != '='; i++) {
		int v = base64_value(text[i]);

		assert_true(v >= 0);
		bits = (bits << 6) | (unsigned)v;
		count += 6;
		if (count >= 8) {
			count -= 8;
			out[n++] = (char)((bits >> count) & 0xff);
		}
	}
	return n;
}

/*
 * Decodes an unfolded header value made of "B" encoded-words separated by white space;
 * each word must hold whole UTF-8 characters on its own.
 */
static char *encoded_words_decode(const char *value)
{
	char *out = calloc(strlen(value) + 1, 1);
	size_t n = 0;
	const char *p = value;

	assert_non_null(out);
	while (*p != '\0') {
		const char *end;
		char word[128];
		size_t w;

		while (*p == ' ' || *p == '\r' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		assert_true(strncmp(p, "=?UTF-8?B?", 10) == 0);
		p += 10;
		end = strstr(p, "?=");
		assert_non_null(end);
		w = base64_decode(p, (size_t)(end - p), word);
		word[w] = '\0';
		assert_true(utf8_valid(word));
		memcpy(out + n, word, w);
		n += w;
		p = end + 2;
	}
	out[n] = '\0';
	return out;
}

/* Removes the "Name: " prefix and the folds of a rendered header line. */
static char *unfold_value(const char *header)
{
	const char *colon = strchr(header, ':');
	char *out = calloc(strlen(header) + 1, 1);
	size_t n = 0;

	assert_non_null(colon);
	assert_non_null(out);
	for (const char *p = colon + 1; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n') {
			p++;
			continue;
		}
		out[n++] = *p;
	}
	out[n] = '\0';
	/* Drop the single space after the colon. */
	if (out[0] == ' ')
		memmove(out, out + 1, n);
	return out;
}

/* Checks CRLF line ends only and returns the longest line's length. */
static size_t check_crlf_lines(const char *text)
{
	size_t longest = 0;
	size_t line = 0;

	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\r') {
			assert_int_equal(p[1], '\n');
			p++;
			longest = line > longest ? line : longest;
			line = 0;
			continue;
		}
		assert_int_not_equal(*p, '\n');
		line++;
	}
	assert_int_equal(line, 0); /* the text ends with CRLF */
	return longest;
}

/* ---- a notification built on the stack ---- */

static char long_url[1400];

static const char *make_long_url(void)
{
	const char *prefix = "https://grafana.example.org/d/abc/overview?orgId=1&var-host=web1";
	size_t n = strlen(prefix);

	memcpy(long_url, prefix, n);
	while (n < 1322) {
		const char *part = "&var-x=a%20b";
		size_t m = strlen(part);

		if (n + m > 1322)
			m = 1322 - n;
		memcpy(long_url + n, part, m);
		n += m;
	}
	long_url[n] = '\0';
	assert_int_equal(strlen(long_url), 1322);
	return long_url;
}

struct fixture {
	struct label group[1];
	struct label labels[2][3];
	struct label annotations[2][3];
	struct notification_alert alerts[2];
	struct notification n;
	struct email_address from;
	struct email_address to[2];
	struct email_address cc[1];
	struct email_message_options options;
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof *f);
	f->group[0] = (struct label){"alertname", "DiskFull"};
	f->labels[0][0] = (struct label){"alertname", "DiskFull"};
	f->labels[0][1] = (struct label){"instance", "web1:9100"};
	f->labels[0][2] = (struct label){"job", "node"};
	f->labels[1][0] = (struct label){"alertname", "DiskFull"};
	f->labels[1][1] = (struct label){"instance", "web2:9100"};
	f->labels[1][2] = (struct label){"job", "node"};
	f->annotations[0][0] = (struct label){"dashboard", make_long_url()};
	f->annotations[0][1] = (struct label){"description", "Disk /var is full.\n.hidden line "
							     "starts with a dot\nlast line"};
	f->annotations[0][2] = (struct label){"summary", "Disk plein \xc3\xa0 95 %"};
	f->annotations[1][0] = (struct label){"summary", "Disk ok"};
	for (int i = 0; i < 2; i++) {
		f->alerts[i].labels = f->labels[i];
		f->alerts[i].label_count = 3;
		f->alerts[i].annotations = f->annotations[i];
		f->alerts[i].annotation_count = i == 0 ? 3 : 1;
		f->alerts[i].starts_at_ms = 1764878400000;
	}
	f->alerts[0].firing = true;
	f->alerts[0].generator_url = "http://prometheus:9090/graph?g0.expr=up";
	f->alerts[1].firing = false;
	f->alerts[1].ends_at_ms = 1764878460000;
	f->n.receiver = "ops";
	f->n.group_key = "{}:{alertname=\"DiskFull\"}";
	f->n.sequence = 7;
	f->n.idempotency_key = "{}:{alertname=\"DiskFull\"}/7";
	f->n.group_labels = f->group;
	f->n.group_label_count = 1;
	f->n.firing = true;
	f->n.alerts = f->alerts;
	f->n.alert_count = 2;
	f->n.external_url = "http://tocsin.example.org:9517/";
	f->n.created_ms = 1764878470000;
	f->from = (struct email_address){"tocsin", "alerts@example.org"};
	f->to[0] = (struct email_address){NULL, "ops@example.org"};
	f->to[1] = (struct email_address){"\xc3\x89quipe Nuit", "night@example.org"};
	f->cc[0] = (struct email_address){"Boss, The", "boss@example.org"};
	f->options.from = &f->from;
	f->options.to = f->to;
	f->options.to_count = 2;
	f->options.cc = f->cc;
	f->options.cc_count = 1;
	f->options.date_ms = 1764878470000;
}

/* Returns a copy of the first header named `name` (folded lines included), or NULL. */
static char *find_header(const char *message, const char *name)
{
	size_t n = strlen(name);
	const char *end_of_headers = strstr(message, "\r\n\r\n");

	for (const char *p = message; p != NULL && p < end_of_headers;
	     p = strstr(p, "\r\n") != NULL ? strstr(p, "\r\n") + 2 : NULL) {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *end = p;

			do {
				end = strstr(end, "\r\n") + 2;
			} while (*end == ' ' || *end == '\t');
			return strndup(p, (size_t)(end - p));
		}
	}
	return NULL;
}

static size_t count_headers(const char *message, const char *name)
{
	size_t count = 0;
	size_t n = strlen(name);
	const char *end_of_headers = strstr(message, "\r\n\r\n");

	if (strncasecmp(message, name, n) == 0 && message[n] == ':')
		count++;
	for (const char *p = strstr(message, "\r\n"); p != NULL && p < end_of_headers;
	     p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
			count++;
	}
	return count;
}

/* The decoded body of the part whose Content-Type starts with `type`. */
static char *part_body(const char *message, const char *type)
{
	char header[64];
	const char *part;
	const char *body;
	const char *end;
	char *encoded;
	char *decoded;

	snprintf(header, sizeof header, "Content-Type: %s;", type);
	part = strstr(message, header);
	assert_non_null(part);
	body = strstr(part, "\r\n\r\n");
	assert_non_null(body);
	body += 4;
	end = strstr(body, "\r\n--=_tocsin_");
	assert_non_null(end);
	encoded = strndup(body, (size_t)(end - body) + 2);
	/* Every encoded line stays within quoted-printable's 76 characters. */
	assert_true(check_crlf_lines(encoded) <= 76);
	decoded = qp_decode(encoded);
	free(encoded);
	return decoded;
}

/* ---- tests ---- */

static void address_forms(void **state)
{
	struct email_address a;
	char *error = NULL;

	(void)state;
	assert_int_equal(email_address_parse("ops@example.org", &a, &error), 0);
	assert_null(a.display_name);
	assert_string_equal(a.address, "ops@example.org");
	assert_string_equal(email_address_domain(&a), "example.org");
	email_address_clear(&a);

	assert_int_equal(
	    email_address_parse("  tocsin alerts <alerts@mail.example.org> ", &a, &error), 0);
	assert_string_equal(a.display_name, "tocsin alerts");
	assert_string_equal(a.address, "alerts@mail.example.org");
	assert_string_equal(email_address_domain(&a), "mail.example.org");
	email_address_clear(&a);

	assert_int_equal(email_address_parse("\"Doe, \\\"J\\\"\" <j@example.org>", &a, &error), 0);
	assert_string_equal(a.display_name, "Doe, \"J\"");
	email_address_clear(&a);

	assert_int_equal(email_address_parse("<j@example.org>", &a, &error), 0);
	assert_null(a.display_name);
	email_address_clear(&a);
}

static void address_errors(void **state)
{
	static const char *bad[] = {
	    "",
	    "ops",
	    "ops@",
	    "@example.org",
	    "a@b@example.org",
	    "ops@example..org",
	    "ops @example.org",
	    "Name <ops@example.org",
	    "ops@example.org\r\nBcc: evil@example.org",
	    "Name\n <ops@example.org>",
	    "op\xc3\xa9@example.org",
	    "ops@[127.0.0.1]",
	};
	struct email_address a;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *error = NULL;

		assert_int_equal(email_address_parse(bad[i], &a, &error), -1);
		assert_non_null(error);
		assert_null(a.address);
		free(error);
	}
}

static void header_ascii_folds_at_spaces(void **state)
{
	const char *value = "[FIRING:3] HighLatency api production eu-west-1 (checkout frontend "
			    "payment gateway with a rather long explanation of what broke)";
	char *header = email_message_header("Subject", value);
	char *unfolded;

	(void)state;
	assert_true(check_crlf_lines(header) <= 78);
	assert_non_null(strstr(header, "\r\n "));
	assert_null(strstr(header, "=?"));
	unfolded = unfold_value(header);
	assert_string_equal(unfolded, value);
	free(unfolded);
	free(header);

	header = email_message_header("Subject", "short");
	assert_string_equal(header, "Subject: short\r\n");
	free(header);
}

static void header_utf8_uses_encoded_words(void **state)
{
	/* 3 ASCII bytes per repetition and one 2-byte and one 4-byte character. */
	char value[1024] = "Disque plein \xc3\xa0 95 % sur srv-\xc3\xa9 ";
	char *header;
	char *unfolded;
	char *decoded;

	(void)state;
	for (int i = 0; i < 20; i++)
		strcat(value, "\xf0\x9f\x94\xa5 d\xc3\xa9j\xc3\xa0 ");
	strcat(value, "fin");
	header = email_message_header("Subject", value);
	assert_true(check_crlf_lines(header) <= 76);
	assert_true(strncmp(header, "Subject: =?UTF-8?B?", 19) == 0);
	for (const char *p = header; *p != '\0'; p++)
		assert_true((unsigned char)*p < 0x80);
	unfolded = unfold_value(header);
	decoded = encoded_words_decode(unfolded);
	assert_string_equal(decoded, value);
	free(decoded);
	free(unfolded);
	free(header);
}

static void header_strips_line_breaks(void **state)
{
	char *header = email_message_header("Subject", "a\r\nBcc: evil@example.org\nb");

	(void)state;
	assert_string_equal(header, "Subject: a  Bcc: evil@example.org b\r\n");
	free(header);
}

static void token_header_stays_plain(void **state)
{
	char value[300];
	char *header;

	(void)state;
	memset(value, 'k', 150);
	value[150] = '\0';
	header = email_message_token_header("X-Tocsin-Idempotency-Key", value);
	assert_true(strncmp(header, "X-Tocsin-Idempotency-Key: kkkk", 30) == 0);
	assert_int_equal(strlen(header), strlen("X-Tocsin-Idempotency-Key: ") + 150 + 2);
	free(header);
	header = email_message_token_header("X-Tocsin-Idempotency-Key", "caf\xc3\xa9/1");
	assert_non_null(strstr(header, "=?UTF-8?B?"));
	free(header);
}

static void header_long_word_is_encoded(void **state)
{
	char value[300];
	char *header;
	char *decoded;
	char *unfolded;

	(void)state;
	memset(value, 'x', 200);
	value[200] = '\0';
	header = email_message_header("X-Tocsin-Idempotency-Key", value);
	assert_true(check_crlf_lines(header) <= 76);
	unfolded = unfold_value(header);
	decoded = encoded_words_decode(unfolded);
	assert_string_equal(decoded, value);
	free(decoded);
	free(unfolded);
	free(header);

	header = email_message_header("Subject", "looks like =?UTF-8?B?eA==?= an encoded-word");
	unfolded = unfold_value(header);
	decoded = encoded_words_decode(unfolded);
	assert_string_equal(decoded, "looks like =?UTF-8?B?eA==?= an encoded-word");
	free(decoded);
	free(unfolded);
	free(header);
}

static void qp_round_trips_long_url(void **state)
{
	const char *url = make_long_url();
	char *text = malloc(strlen(url) + 64);
	char *encoded;
	char *decoded;

	(void)state;
	sprintf(text, "dashboard: %s\nnext line\n", url);
	encoded = email_message_qp_encode(text);
	assert_true(check_crlf_lines(encoded) <= 76);
	decoded = qp_decode(encoded);
	assert_string_equal(decoded, text);
	assert_non_null(strstr(decoded, url));
	free(decoded);
	free(encoded);
	free(text);
}

static void qp_escapes(void **state)
{
	char *encoded;

	(void)state;
	encoded = email_message_qp_encode("a=b caf\xc3\xa9 \ntab\t\r\n.dot\rend ");
	assert_string_equal(encoded, "a=3Db caf=C3=A9=20\r\ntab=09\r\n.dot\r\nend=20\r\n");
	free(encoded);

	/* An escape sequence is never split by a soft break. */
	encoded = email_message_qp_encode("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
					  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
					  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	assert_true(check_crlf_lines(encoded) <= 76);
	/* 25 escapes fill a line to 75 characters; the 26th starts the next one. */
	assert_non_null(strstr(encoded, "=A9=C3=\r\n=A9"));
	free(encoded);
}

static void date_is_rfc5322(void **state)
{
	char buf[64];

	(void)state;
	assert_string_equal(email_message_date(1764878470123, buf, sizeof buf),
			    "Thu, 04 Dec 2025 20:01:10 +0000");
	assert_string_equal(email_message_date(0, buf, sizeof buf),
			    "Thu, 01 Jan 1970 00:00:00 +0000");
}

static void message_id_stable_and_unique(void **state)
{
	struct fixture f;
	char a[128];
	char b[128];

	(void)state;
	fixture_init(&f);
	email_message_id(&f.n, "example.org", a, sizeof a);
	assert_true(strncmp(a, "<tocsin.7.", 10) == 0);
	assert_non_null(strstr(a, "@example.org>"));
	email_message_id(&f.n, "example.org", b, sizeof b);
	assert_string_equal(a, b);
	f.n.sequence = 8;
	email_message_id(&f.n, "example.org", b, sizeof b);
	assert_string_not_equal(a, b);
	f.n.sequence = 7;
	f.n.receiver = "other";
	email_message_id(&f.n, "example.org", b, sizeof b);
	assert_string_not_equal(a, b);
}

static void default_subject_counts_firing(void **state)
{
	struct fixture f;
	char *subject;

	(void)state;
	fixture_init(&f);
	subject = email_message_default_subject(&f.n);
	assert_string_equal(subject, "[FIRING:1] DiskFull (node)");
	free(subject);

	f.n.firing = false;
	f.alerts[0].firing = false;
	subject = email_message_default_subject(&f.n);
	assert_string_equal(subject, "[RESOLVED] DiskFull (node)");
	free(subject);
}

static void message_headers(void **state)
{
	struct fixture f;
	char *warning = NULL;
	char *message;
	char *h;
	char *value;
	char *decoded;

	(void)state;
	fixture_init(&f);
	message = email_message_build(&f.n, &f.options, &warning);
	assert_null(warning);

	h = find_header(message, "From");
	assert_string_equal(h, "From: tocsin <alerts@example.org>\r\n");
	free(h);
	h = find_header(message, "To");
	assert_non_null(strstr(h, "ops@example.org,"));
	assert_non_null(strstr(h, "=?UTF-8?B?"));
	assert_non_null(strstr(h, "<night@example.org>"));
	free(h);
	h = find_header(message, "Cc");
	assert_string_equal(h, "Cc: \"Boss, The\" <boss@example.org>\r\n");
	free(h);
	h = find_header(message, "Subject");
	assert_string_equal(h, "Subject: [FIRING:1] DiskFull (node)\r\n");
	free(h);
	h = find_header(message, "Date");
	assert_string_equal(h, "Date: Thu, 04 Dec 2025 20:01:10 +0000\r\n");
	free(h);
	h = find_header(message, "Message-ID");
	assert_true(strncmp(h, "Message-ID: <tocsin.7.", 22) == 0);
	assert_non_null(strstr(h, "@example.org>\r\n"));
	free(h);
	h = find_header(message, "MIME-Version");
	assert_string_equal(h, "MIME-Version: 1.0\r\n");
	free(h);
	h = find_header(message, "X-Tocsin-Idempotency-Key");
	value = unfold_value(h);
	assert_string_equal(value, "{}:{alertname=\"DiskFull\"}/7");
	free(value);
	free(h);
	h = find_header(message, "Content-Type");
	assert_true(strncmp(h, "Content-Type: multipart/alternative; boundary=\"=_tocsin_", 56) ==
		    0);
	free(h);

	static const char *once[] = {
	    "From",        "To",         "Cc",           "Subject",
	    "Date",        "Message-ID", "MIME-Version", "X-Tocsin-Idempotency-Key",
	    "Content-Type"};
	for (size_t i = 0; i < sizeof once / sizeof once[0]; i++)
		assert_int_equal(count_headers(message, once[i]), 1);

	/* The second To mailbox's display name decodes to the configured UTF-8 text. */
	h = find_header(message, "To");
	value = strstr(h, "=?UTF-8?B?");
	*strstr(value, "?=") = '\0';
	decoded = calloc(64, 1);
	base64_decode(value + 10, strlen(value + 10), decoded);
	assert_string_equal(decoded, "\xc3\x89quipe Nuit");
	free(decoded);
	free(h);
	free(message);
}

static void message_lines_and_encoding(void **state)
{
	struct fixture f;
	char *warning = NULL;
	char *message;
	size_t longest;

	(void)state;
	fixture_init(&f);
	message = email_message_build(&f.n, &f.options, &warning);
	longest = check_crlf_lines(message);
	assert_true(longest <= 998);
	/* Headers within 78, bodies within quoted-printable's 76. */
	assert_true(longest <= 78);
	for (const char *p = message; *p != '\0'; p++)
		assert_true((unsigned char)*p < 0x80 && *p != '\0');
	free(message);
}

static void message_multipart_structure(void **state)
{
	struct fixture f;
	char *warning = NULL;
	char *message;
	char boundary[64];
	char delimiter[80];
	const char *start;
	const char *p;
	int parts = 0;

	(void)state;
	fixture_init(&f);
	message = email_message_build(&f.n, &f.options, &warning);
	start = strstr(message, "boundary=\"") + 10;
	snprintf(boundary, sizeof boundary, "%.*s", (int)(strchr(start, '"') - start), start);
	snprintf(delimiter, sizeof delimiter, "\r\n--%s\r\n", boundary);
	for (p = strstr(message, delimiter); p != NULL; p = strstr(p + 1, delimiter))
		parts++;
	assert_int_equal(parts, 2);
	snprintf(delimiter, sizeof delimiter, "\r\n--%s--\r\n", boundary);
	p = strstr(message, delimiter);
	assert_non_null(p);
	assert_int_equal(strlen(p), strlen(delimiter));

	p = strstr(message, "Content-Type: text/plain; charset=utf-8\r\n"
			    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	assert_non_null(p);
	assert_non_null(strstr(p, "Content-Type: text/html; charset=utf-8\r\n"
				  "Content-Transfer-Encoding: quoted-printable\r\n\r\n"));
	free(message);
}

static void message_bodies_decode(void **state)
{
	struct fixture f;
	char *warning = NULL;
	char *message;
	char *text;
	char *html;

	(void)state;
	fixture_init(&f);
	message = email_message_build(&f.n, &f.options, &warning);
	text = part_body(message, "text/plain");
	html = part_body(message, "text/html");

	/* The 1322-character URL survives, on one line of the decoded text. */
	assert_non_null(strstr(text, long_url));
	assert_non_null(strstr(text, "  dashboard: "));
	assert_true(utf8_valid(text));
	assert_non_null(strstr(text, "Disk plein \xc3\xa0 95 %"));
	/* A line of an annotation that starts with "." keeps it. */
	assert_non_null(strstr(text, "\n    .hidden line starts with a dot\n"));
	assert_non_null(strstr(text, "Firing (1):"));
	assert_non_null(strstr(text, "Resolved (1):"));
	assert_non_null(strstr(text, "instance=web1:9100"));

	assert_non_null(strstr(html,
			       "<a href=\"https://grafana.example.org/d/abc/overview?orgId=1&amp;"
			       "var-host=web1&amp;var-x=a%20b"));
	assert_non_null(strstr(html, "Disk /var is full.<br>\n.hidden line"));
	assert_null(strstr(html, "\r"));
	free(text);
	free(html);
	free(message);
}

static void message_templates(void **state)
{
	struct fixture f;
	char *error = NULL;
	struct template *subject = template_parse(
	    "{{ $value }} firing on {{ $labels.job }}\nBcc: x@example.org", NULL, &error);
	struct template *text = template_parse("Job {{ $labels.job }} is <down>", NULL, &error);
	struct template *html = template_parse("<p>{{ $labels.job }}</p>", NULL, &error);
	char *warning = NULL;
	char *message;
	char *h;
	char *body;

	(void)state;
	assert_non_null(subject);
	assert_non_null(text);
	assert_non_null(html);
	fixture_init(&f);
	f.labels[0][2].value = "a&b";
	f.labels[1][2].value = "a&b";
	f.options.subject = subject;
	f.options.text = text;
	f.options.html = html;
	message = email_message_build(&f.n, &f.options, &warning);
	assert_null(warning);
	h = find_header(message, "Subject");
	assert_string_equal(h, "Subject: 1 firing on a&b Bcc: x@example.org\r\n");
	assert_int_equal(count_headers(message, "Bcc"), 0);
	free(h);
	body = part_body(message, "text/plain");
	assert_string_equal(body, "Job a&b is <down>\n");
	free(body);
	body = part_body(message, "text/html");
	assert_string_equal(body, "<p>a&amp;b</p>\n");
	free(body);
	free(message);
	template_free(subject);
	template_free(text);
	template_free(html);
}

static void message_template_failure_falls_back(void **state)
{
	struct fixture f;
	char *error = NULL;
	struct template *subject = template_parse("{{ $labels.job | humanize }}", NULL, &error);
	char *warning = NULL;
	char *message;
	char *h;

	(void)state;
	assert_non_null(subject);
	fixture_init(&f);
	f.options.subject = subject;
	message = email_message_build(&f.n, &f.options, &warning);
	assert_non_null(warning);
	assert_non_null(strstr(warning, "subject template failed"));
	h = find_header(message, "Subject");
	assert_string_equal(h, "Subject: [FIRING:1] DiskFull (node)\r\n");
	free(h);
	free(warning);
	free(message);
	template_free(subject);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(address_forms),
	    cmocka_unit_test(address_errors),
	    cmocka_unit_test(header_ascii_folds_at_spaces),
	    cmocka_unit_test(header_utf8_uses_encoded_words),
	    cmocka_unit_test(header_strips_line_breaks),
	    cmocka_unit_test(header_long_word_is_encoded),
	    cmocka_unit_test(token_header_stays_plain),
	    cmocka_unit_test(qp_round_trips_long_url),
	    cmocka_unit_test(qp_escapes),
	    cmocka_unit_test(date_is_rfc5322),
	    cmocka_unit_test(message_id_stable_and_unique),
	    cmocka_unit_test(default_subject_counts_firing),
	    cmocka_unit_test(message_headers),
	    cmocka_unit_test(message_lines_and_encoding),
	    cmocka_unit_test(message_multipart_structure),
	    cmocka_unit_test(message_bodies_decode),
	    cmocka_unit_test(message_templates),
	    cmocka_unit_test(message_template_failure_falls_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
