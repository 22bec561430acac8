/*
 * Reading DNS responses and rendering their records as text. Every offset is checked
 * against the message length, and compression pointers may only point backwards, which
 * bounds the work on hostile input.
 */
#include "probes/dns_message.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collector/xalloc.h"

#define DNS_HEADER_SIZE 12
/* Presentation text of one name: 255 octets, each escaped as \DDD at worst. */
#define DNS_NAME_TEXT_MAX   (255 * 4 + 2)
#define DNS_RECORD_TEXT_MAX 4096

static const struct {
	const char *name;
	unsigned type;
} dns_types[] = {
    {"A", 1},      {"NS", 2},     {"CNAME", 5},   {"SOA", 6},   {"PTR", 12},
    {"MX", 15},    {"TXT", 16},   {"AAAA", 28},   {"SRV", 33},  {"NAPTR", 35},
    {"DS", 43},    {"RRSIG", 46}, {"DNSKEY", 48}, {"CAA", 257}, {"OPT", 41},
    {"HINFO", 13}, {"DNAME", 39}, {"TLSA", 52},   {"SVCB", 64}, {"HTTPS", 65},
};

static const char *const dns_rcodes[] = {
    "NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED",
    "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE", "DSOTYPENI",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

int dns_type_parse(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(dns_types); i++) {
		if (strcasecmp(dns_types[i].name, name) == 0)
			return (int)dns_types[i].type;
	}
	return -1;
}

const char *dns_type_name(unsigned type)
{
	for (size_t i = 0; i < ARRAY_SIZE(dns_types); i++) {
		if (dns_types[i].type == type)
			return dns_types[i].name;
	}
	return NULL;
}

int dns_rcode_parse(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(dns_rcodes); i++) {
		if (strcasecmp(dns_rcodes[i], name) == 0)
			return (int)i;
	}
	return -1;
}

const char *dns_rcode_name(unsigned rcode, char *buf, size_t size)
{
	if (rcode < ARRAY_SIZE(dns_rcodes))
		return dns_rcodes[rcode];
	snprintf(buf, size, "RCODE%u", rcode);
	return buf;
}

const char *dns_section_name(enum dns_section section)
{
	static const char *const names[] = {"answer", "authority", "additional"};

	return (unsigned)section < DNS_SECTION_COUNT ? names[section] : "?";
}

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A growing text buffer with a fixed maximum; overflow is tracked, not written. */
struct text {
	char *buf;
	size_t size;
	size_t length;
	int overflow;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->length, t->size - t->length, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->size - t->length) {
		t->overflow = 1;
		return;
	}
	t->length += (size_t)n;
}

/* Appends one label octet in presentation form: dots, backslashes and quotes escaped. */
static void text_add_octet(struct text *t, uint8_t c, int quoted)
{
	if (c < 0x21 && !(quoted && c == ' '))
		text_add(t, "\\%03u", c);
	else if (c > 0x7e)
		text_add(t, "\\%03u", c);
	else if (c == '\\' || c == '"' ||
		 (!quoted && (c == '.' || c == ';' || c == '(' || c == ')')))
		text_add(t, "\\%c", c);
	else
		text_add(t, "%c", c);
}

/*
 * Renders the name at *offset and moves *offset past it. Returns -1 when the name runs
 * past the end, is longer than 255 octets, or has a pointer that does not point back.
 */
static int read_name(const uint8_t *msg, size_t length, size_t *offset, struct text *t)
{
	size_t pos = *offset;
	size_t end = 0; /* where the name ends in the record, set at the first pointer */
	size_t wire_length = 1;
	int labels = 0;

	for (;;) {
		unsigned len;

		if (pos >= length)
			return -1;
		len = msg[pos];
		if ((len & 0xc0) == 0xc0) {
			size_t target;

			if (pos + 1 >= length)
				return -1;
			target = (len & 0x3f) << 8 | msg[pos + 1];
			if (target >= pos)
				return -1;
			if (end == 0)
				end = pos + 2;
			pos = target;
			continue;
		}
		if ((len & 0xc0) != 0)
			return -1;
		if (len == 0) {
			pos++;
			break;
		}
		wire_length += len + 1;
		if (wire_length > 255 || pos + 1 + len > length)
			return -1;
		for (unsigned i = 0; i < len; i++)
			text_add_octet(t, msg[pos + 1 + i], 0);
		text_add(t, ".");
		labels++;
		pos += 1 + len;
	}
	if (labels == 0)
		text_add(t, ".");
	*offset = end != 0 ? end : pos;
	return 0;
}

static void render_hex(struct text *t, const uint8_t *p, size_t n)
{
	/* RFC 3597 generic form for types without a known presentation format. */
	text_add(t, "\\# %zu", n);
	if (n > 0)
		text_add(t, " ");
	for (size_t i = 0; i < n; i++)
		text_add(t, "%02x", p[i]);
}

static int render_strings(struct text *t, const uint8_t *p, size_t n)
{
	size_t i = 0;
	int first = 1;

	while (i < n) {
		size_t len = p[i];

		if (i + 1 + len > n)
			return -1;
		text_add(t, first ? "\"" : " \"");
		for (size_t k = 0; k < len; k++)
			text_add_octet(t, p[i + 1 + k], 1);
		text_add(t, "\"");
		first = 0;
		i += 1 + len;
	}
	return 0;
}

/* Renders the data of one record at msg[start..start+rdlength). */
static int render_rdata(const uint8_t *msg, size_t length, unsigned type, size_t start,
			size_t rdlength, struct text *t, struct dns_response *out, int in_answer)
{
	const uint8_t *p = msg + start;
	size_t pos = start;
	size_t end = start + rdlength;
	char addr[INET6_ADDRSTRLEN];

	switch (type) {
	case 1: /* A */
		if (rdlength != 4)
			return -1;
		text_add(t, "%s", inet_ntop(AF_INET, p, addr, sizeof addr));
		return 0;
	case 28: /* AAAA */
		if (rdlength != 16)
			return -1;
		text_add(t, "%s", inet_ntop(AF_INET6, p, addr, sizeof addr));
		return 0;
	case 2:  /* NS */
	case 5:  /* CNAME */
	case 12: /* PTR */
	case 39: /* DNAME */
		if (read_name(msg, end, &pos, t) < 0 || pos != end)
			return -1;
		return 0;
	case 15: /* MX */
		if (rdlength < 3)
			return -1;
		text_add(t, "%u ", get16(p));
		pos += 2;
		if (read_name(msg, end, &pos, t) < 0 || pos != end)
			return -1;
		return 0;
	case 16: /* TXT */
		return render_strings(t, p, rdlength);
	case 33: /* SRV */
		if (rdlength < 7)
			return -1;
		text_add(t, "%u %u %u ", get16(p), get16(p + 2), get16(p + 4));
		pos += 6;
		if (read_name(msg, end, &pos, t) < 0 || pos != end)
			return -1;
		return 0;
	case 6: /* SOA */
		if (read_name(msg, end, &pos, t) < 0)
			return -1;
		text_add(t, " ");
		if (read_name(msg, end, &pos, t) < 0 || end - pos != 20)
			return -1;
		p = msg + pos;
		text_add(t, " %u %u %u %u %u", get32(p), get32(p + 4), get32(p + 8), get32(p + 12),
			 get32(p + 16));
		if (in_answer && !out->has_soa_serial) {
			out->has_soa_serial = 1;
			out->soa_serial = get32(p);
		}
		return 0;
	default:
		render_hex(t, p, rdlength);
		return 0;
	}
}

/* Renders one record at *offset into a new string and moves *offset past it. */
static int read_record(const uint8_t *msg, size_t length, size_t *offset, char **record,
		       struct dns_response *out, int in_answer)
{
	char buf[DNS_RECORD_TEXT_MAX];
	struct text t = {buf, sizeof buf, 0, 0};
	char type_buf[16];
	const char *type_name;
	unsigned type;
	unsigned rclass;
	size_t rdlength;

	if (read_name(msg, length, offset, &t) < 0 || *offset + 10 > length)
		return -1;
	type = get16(msg + *offset);
	rclass = get16(msg + *offset + 2);
	rdlength = get16(msg + *offset + 8);
	type_name = dns_type_name(type);
	if (type_name == NULL) {
		snprintf(type_buf, sizeof type_buf, "TYPE%u", type);
		type_name = type_buf;
	}
	if (type == 41) {
		/* OPT pseudo-record: the class is a UDP size and the TTL contains flags. */
		text_add(&t, "\t%u\t%u\tOPT\t", get32(msg + *offset + 4), rclass);
	} else if (rclass == 1) {
		text_add(&t, "\t%u\tIN\t%s\t", get32(msg + *offset + 4), type_name);
	} else {
		text_add(&t, "\t%u\tCLASS%u\t%s\t", get32(msg + *offset + 4), rclass, type_name);
	}
	*offset += 10;
	if (*offset + rdlength > length)
		return -1;
	if (render_rdata(msg, length, type, *offset, rdlength, &t, out, in_answer) < 0)
		return -1;
	*offset += rdlength;
	if (t.overflow)
		memcpy(buf + sizeof buf - 4, "...", 4);
	*record = xstrdup(buf);
	return 0;
}

static int skip_question(const uint8_t *msg, size_t length, size_t *offset)
{
	char buf[DNS_NAME_TEXT_MAX];
	struct text t = {buf, sizeof buf, 0, 0};

	if (read_name(msg, length, offset, &t) < 0 || *offset + 4 > length)
		return -1;
	*offset += 4;
	return 0;
}

int dns_response_parse(const uint8_t *message, size_t length, struct dns_response *out, char *error,
		       size_t error_size)
{
	size_t offset = DNS_HEADER_SIZE;
	unsigned questions;

	memset(out, 0, sizeof *out);
	if (length < DNS_HEADER_SIZE) {
		snprintf(error, error_size, "truncated header (%zu bytes)", length);
		return -1;
	}
	out->id = (uint16_t)get16(message);
	out->flags = (uint16_t)get16(message + 2);
	out->rcode = out->flags & 0x0f;
	questions = get16(message + 4);
	for (int s = 0; s < DNS_SECTION_COUNT; s++)
		out->counts[s] = get16(message + 6 + 2 * s);

	for (unsigned i = 0; i < questions; i++) {
		if (skip_question(message, length, &offset) < 0) {
			snprintf(error, error_size, "question %u runs past the end", i + 1);
			goto bad;
		}
	}
	for (int s = 0; s < DNS_SECTION_COUNT; s++) {
		out->records[s] = xcalloc(out->counts[s] + 1, sizeof *out->records[s]);
		for (unsigned i = 0; i < out->counts[s]; i++) {
			if (read_record(message, length, &offset, &out->records[s][i], out,
					s == DNS_SECTION_ANSWER) < 0) {
				snprintf(error, error_size,
					 "record %u of the %s section is malformed", i + 1,
					 dns_section_name((enum dns_section)s));
				goto bad;
			}
		}
	}
	return 0;

bad:
	dns_response_free(out);
	return -1;
}

/* Reads one question: its name as text (lower case for comparison), type and class. */
static int read_question(const uint8_t *msg, size_t length, size_t *offset, char *name,
			 size_t name_size, unsigned *type, unsigned *rclass)
{
	struct text t = {name, name_size, 0, 0};

	name[0] = '\0';
	if (read_name(msg, length, offset, &t) < 0 || t.overflow || *offset + 4 > length)
		return -1;
	for (char *c = name; *c != '\0'; c++) {
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	}
	*type = get16(msg + *offset);
	*rclass = get16(msg + *offset + 2);
	*offset += 4;
	return 0;
}

/* 0 when `reply` repeats the questions of `query`, as RFC 1035 section 7.3 expects. */
static int same_questions(const uint8_t *query, size_t query_length, const uint8_t *reply,
			  size_t reply_length)
{
	char query_name[DNS_NAME_TEXT_MAX];
	char reply_name[DNS_NAME_TEXT_MAX];
	size_t query_offset = DNS_HEADER_SIZE;
	size_t reply_offset = DNS_HEADER_SIZE;
	unsigned count = get16(query + 4);

	if (get16(reply + 4) != count)
		return -1;
	for (unsigned i = 0; i < count; i++) {
		unsigned query_type, query_class, reply_type, reply_class;

		if (read_question(query, query_length, &query_offset, query_name, sizeof query_name,
				  &query_type, &query_class) < 0 ||
		    read_question(reply, reply_length, &reply_offset, reply_name, sizeof reply_name,
				  &reply_type, &reply_class) < 0)
			return -1;
		if (strcmp(query_name, reply_name) != 0 || query_type != reply_type ||
		    query_class != reply_class)
			return -1;
	}
	return 0;
}

enum dns_reply_kind dns_reply_classify(const uint8_t *query, size_t query_length,
				       const uint8_t *reply, size_t reply_length, int over_tcp,
				       char *error, size_t error_size)
{
	struct dns_response response;
	unsigned flags;

	error[0] = '\0';
	if (query_length < DNS_HEADER_SIZE || reply_length < 2 || get16(query) != get16(reply))
		return DNS_REPLY_FOREIGN;
	if (reply_length < DNS_HEADER_SIZE) {
		snprintf(error, error_size, "truncated header (%zu bytes)", reply_length);
		return DNS_REPLY_MALFORMED;
	}
	flags = get16(reply + 2);
	if ((flags & 0x8000) == 0) {
		snprintf(error, error_size, "QR bit clear: not a response");
		return DNS_REPLY_MALFORMED;
	}
	if (same_questions(query, query_length, reply, reply_length) < 0) {
		snprintf(error, error_size, "question section does not repeat the query");
		return DNS_REPLY_MALFORMED;
	}
	if ((flags & 0x0200) != 0 && !over_tcp)
		return DNS_REPLY_TRUNCATED;
	if (dns_response_parse(reply, reply_length, &response, error, error_size) < 0)
		return DNS_REPLY_MALFORMED;
	dns_response_free(&response);
	return DNS_REPLY_VALID;
}

void dns_response_free(struct dns_response *response)
{
	for (int s = 0; s < DNS_SECTION_COUNT; s++) {
		if (response->records[s] != NULL) {
			for (unsigned i = 0; i < response->counts[s]; i++)
				free(response->records[s][i]);
		}
		free(response->records[s]);
	}
	memset(response, 0, sizeof *response);
}
