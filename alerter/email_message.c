/*
 * Building the `email` receiver's message (see email_message.h): address parsing, header
 * encoding and folding, quoted-printable bodies and the built-in text and HTML formats.
 * Everything here is a pure function of its arguments.
 */
#include "alerter/email_message.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/hash.h"
#include "collector/template.h"
#include "collector/utf8.h"
#include "collector/xalloc.h"

/* RFC 5322 recommends lines of at most 78 characters; RFC 2047 limits a line that contains
 * encoded-words to 76. Header folding uses the stricter one for encoded-words. */
#define EMAIL_HEADER_WIDTH  78
#define EMAIL_ENCODED_WIDTH 76
/* RFC 2045: an encoded line is at most 76 characters, including a soft break's "=". */
#define EMAIL_QP_WIDTH 76

/* ---- a growing string ---- */

struct em_buf {
	char *data;
	size_t length;
	size_t capacity;
};

static void buf_append(struct em_buf *b, const char *s, size_t n)
{
	if (b->length + n + 1 > b->capacity) {
		size_t capacity = b->capacity > 0 ? b->capacity : 256;

		while (b->length + n + 1 > capacity)
			capacity *= 2;
		b->data = xrealloc(b->data, capacity);
		b->capacity = capacity;
	}
	memcpy(b->data + b->length, s, n);
	b->length += n;
	b->data[b->length] = '\0';
}

static void buf_puts(struct em_buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

static void buf_printf(struct em_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void buf_printf(struct em_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_append(b, "", 0);
	if (b->length + (size_t)n + 1 > b->capacity) {
		b->capacity = b->length + (size_t)n + 1;
		b->data = xrealloc(b->data, b->capacity);
	}
	va_start(ap, fmt);
	vsnprintf(b->data + b->length, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->length += (size_t)n;
}

/* Returns the text (never NULL) and leaves the buffer empty. */
static char *buf_finish(struct em_buf *b)
{
	char *data = b->data != NULL ? b->data : xstrdup("");

	b->data = NULL;
	b->length = b->capacity = 0;
	return data;
}

/* ---- addresses ---- */

static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static char *trimmed_copy(const char *start, const char *end)
{
	while (start < end && (*start == ' ' || *start == '\t'))
		start++;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return xstrndup(start, (size_t)(end - start));
}

/* Checks an addr-spec; returns NULL when valid, else what is wrong. */
static const char *addr_spec_problem(const char *addr)
{
	const char *at = strchr(addr, '@');
	const char *domain;

	if (addr[0] == '\0')
		return "the address is empty";
	for (const char *p = addr; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c >= 0x80)
			return "the address has non-ASCII characters, which need SMTPUTF8 and "
			       "libesmtp does not support it";
		if (strchr(" <>()[],;:\\\"", c) != NULL)
			return "the address has a space or one of <>()[],;:\\\" in it";
	}
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return "the address needs exactly one \"@\"";
	if (at == addr)
		return "the part before \"@\" is empty";
	domain = at + 1;
	if (domain[0] == '\0' || domain[0] == '.' || domain[strlen(domain) - 1] == '.' ||
	    strstr(domain, "..") != NULL)
		return "the domain after \"@\" is empty or has an empty label";
	return NULL;
}

/* Removes the quotes of a quoted display name and its backslash escapes. */
static char *unquote_display(char *name)
{
	size_t n = strlen(name);
	size_t out = 0;

	if (n < 2 || name[0] != '"' || name[n - 1] != '"')
		return name;
	for (size_t i = 1; i + 1 < n; i++) {
		if (name[i] == '\\' && i + 2 < n)
			i++;
		name[out++] = name[i];
	}
	name[out] = '\0';
	return name;
}

int email_address_parse(const char *text, struct email_address *out, char **error)
{
	const char *open = strrchr(text, '<');
	const char *problem;
	char *display = NULL;
	char *addr;

	memset(out, 0, sizeof *out);
	for (const char *p = text; *p != '\0'; p++) {
		if (is_control((unsigned char)*p)) {
			*error = xstrdup("the address has a control character (such as a line "
					 "break) in it");
			return -1;
		}
	}
	if (!utf8_valid(text)) {
		*error = xstrdup("the address is not valid UTF-8");
		return -1;
	}
	if (open != NULL) {
		const char *close = strchr(open, '>');
		const char *end = text + strlen(text);

		while (end > text && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (close == NULL || close + 1 != end) {
			*error =
			    xstrdup("the address has a \"<\" without a \">\" at its end; write "
				    "\"Name <local@domain>\" or \"local@domain\"");
			return -1;
		}
		display = unquote_display(trimmed_copy(text, open));
		addr = trimmed_copy(open + 1, close);
	} else {
		addr = trimmed_copy(text, text + strlen(text));
	}
	problem = addr_spec_problem(addr);
	if (problem != NULL) {
		*error = xstrdup(problem);
		free(display);
		free(addr);
		return -1;
	}
	if (display != NULL && display[0] == '\0') {
		free(display);
		display = NULL;
	}
	out->display_name = display;
	out->address = addr;
	return 0;
}

void email_address_clear(struct email_address *a)
{
	free(a->display_name);
	free(a->address);
	a->display_name = NULL;
	a->address = NULL;
}

const char *email_address_domain(const struct email_address *a)
{
	const char *at = strrchr(a->address, '@');

	return at != NULL ? at + 1 : a->address;
}

/* ---- headers ---- */

static const char base64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64_append(struct em_buf *b, const unsigned char *data, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)data[i] << 16;
		char out[4];

		if (i + 1 < n)
			v |= (unsigned)data[i + 1] << 8;
		if (i + 2 < n)
			v |= data[i + 2];
		out[0] = base64_digits[(v >> 18) & 63];
		out[1] = base64_digits[(v >> 12) & 63];
		out[2] = i + 1 < n ? base64_digits[(v >> 6) & 63] : '=';
		out[3] = i + 2 < n ? base64_digits[v & 63] : '=';
		buf_append(b, out, 4);
	}
}

/* Copies text with line breaks and tabs turned into spaces, the ends trimmed and bad UTF-8
 * repaired. */
static char *header_text(const char *value)
{
	const char *start = value != NULL ? value : "";
	const char *end;
	char *copy;

	while (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n')
		start++;
	end = start + strlen(start);
	while (end > start &&
	       (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	copy = xstrndup(start, (size_t)(end - start));
	for (char *p = copy; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
	}
	utf8_repair(copy);
	return copy;
}

/* True when the text can be sent as it is and folded at its spaces: printable ASCII, no
 * "=?" (which a reader would take for an encoded-word) and no word too long for a line. */
static bool header_plain(const char *text, size_t name_length)
{
	bool first = true;

	if (strstr(text, "=?") != NULL)
		return false;
	for (const char *p = text; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c >= 0x80 || is_control(c))
			return false;
	}
	for (const char *p = text;; first = false) {
		size_t n = strcspn(p, " ");
		/* The first word shares its line with "Name: ", later ones start with a space. */
		size_t line = first ? name_length + 2 + n : 1 + n;

		if (line > EMAIL_HEADER_WIDTH)
			return false;
		if (p[n] == '\0')
			return true;
		p += n + 1;
	}
}

/* Appends text, folding before a word that would pass the width; `column` is the length
 * of the line so far. A fold never comes before an empty word (two spaces in a row), which
 * would leave a line of white space only. */
static void fold_words(struct em_buf *b, const char *text, size_t column)
{
	const char *p = text;

	for (;;) {
		size_t n = strcspn(p, " ");
		size_t next;

		buf_append(b, p, n);
		column += n;
		if (p[n] == '\0')
			return;
		p += n + 1;
		next = strcspn(p, " ");
		if (next > 0 && column + 1 + next > EMAIL_HEADER_WIDTH) {
			buf_puts(b, "\r\n");
			column = 0;
		}
		buf_puts(b, " ");
		column++;
	}
}

/* Bytes of UTF-8 text that fit into one "B" encoded-word on a line with `room` columns. */
static size_t encoded_word_bytes(size_t room)
{
	/* "=?UTF-8?B?" and "?=" around the base64 text. */
	size_t overhead = 10 + 2;

	if (room < overhead + 4)
		return 0;
	return (room - overhead) / 4 * 3;
}

/* Appends text as encoded-words, one per line; `column` is the length of the first line
 * before its space. */
static void encode_words(struct em_buf *b, const char *text, size_t column)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t left = strlen(text);
	bool first = true;

	while (left > 0) {
		size_t used = first ? column + 1 : 1;
		size_t n =
		    used < EMAIL_ENCODED_WIDTH ? encoded_word_bytes(EMAIL_ENCODED_WIDTH - used) : 0;

		/* Room for a 4-byte character at least, or start on a continuation line. */
		if (first && n < 4) {
			first = false;
			continue;
		}
		if (n > left)
			n = left;
		/* Never split a character: back off to the start of one. */
		while (n < left && (p[n] & 0xc0) == 0x80)
			n--;
		buf_puts(b, first ? " " : "\r\n ");
		buf_puts(b, "=?UTF-8?B?");
		base64_append(b, p, n);
		buf_puts(b, "?=");
		p += n;
		left -= n;
		first = false;
	}
}

char *email_message_header(const char *name, const char *value)
{
	struct em_buf b = {0};
	char *text = header_text(value);
	size_t name_length = strlen(name);

	buf_puts(&b, name);
	buf_puts(&b, ":");
	if (text[0] == '\0') {
		/* Nothing after the colon: an empty unstructured field. */
	} else if (header_plain(text, name_length)) {
		buf_puts(&b, " ");
		fold_words(&b, text, name_length + 2);
	} else {
		encode_words(&b, text, name_length + 1);
	}
	buf_puts(&b, "\r\n");
	free(text);
	return buf_finish(&b);
}

/* "atext" of RFC 5322 plus space: a display name made of these needs no quotes. */
static bool display_atext(const char *name)
{
	for (const char *p = name; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c >= 0x80 || is_control(c) ||
		    (strchr("!#$%&'*+-/=?^_`{|}~ ", c) == NULL && !(c >= '0' && c <= '9') &&
		     !(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z')))
			return false;
	}
	return true;
}

static bool ascii_printable(const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		if ((unsigned char)*p >= 0x80 || is_control((unsigned char)*p))
			return false;
	}
	return true;
}

/* Adds one token to an address list header, folding before it when the line is full. */
static void add_token(struct em_buf *b, size_t *column, const char *token, bool first)
{
	size_t n = strlen(token);

	if (!first && *column + 1 + n > EMAIL_ENCODED_WIDTH) {
		buf_puts(b, "\r\n");
		*column = 0;
	}
	buf_puts(b, " ");
	buf_puts(b, token);
	*column += 1 + n;
}

/* Appends the display name as tokens: as is, quoted, or as encoded-words of up to 75. */
static void add_display(struct em_buf *b, size_t *column, const char *name, bool *first)
{
	struct em_buf token = {0};

	if (display_atext(name) && name[0] != ' ' && name[strlen(name) - 1] != ' ' &&
	    strstr(name, "  ") == NULL && strstr(name, "=?") == NULL) {
		buf_puts(&token, name);
	} else if (ascii_printable(name) && strstr(name, "=?") == NULL) {
		buf_puts(&token, "\"");
		for (const char *p = name; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				buf_puts(&token, "\\");
			buf_append(&token, p, 1);
		}
		buf_puts(&token, "\"");
	} else {
		const unsigned char *p = (const unsigned char *)name;
		size_t left = strlen(name);
		size_t max = encoded_word_bytes(EMAIL_ENCODED_WIDTH - 1);

		while (left > 0) {
			size_t n = left < max ? left : max;

			while (n < left && n > 0 && (p[n] & 0xc0) == 0x80)
				n--;
			buf_puts(&token, "=?UTF-8?B?");
			base64_append(&token, p, n);
			buf_puts(&token, "?=");
			add_token(b, column, token.data, *first);
			*first = false;
			token.length = 0;
			p += n;
			left -= n;
		}
		free(token.data);
		return;
	}
	add_token(b, column, token.data, *first);
	*first = false;
	free(token.data);
}

/* Appends "Name: mailbox, mailbox\r\n", folded between tokens. */
static void address_header(struct em_buf *b, const char *name, const struct email_address *v,
			   size_t count)
{
	size_t column = strlen(name) + 1;
	bool first = true;

	buf_puts(b, name);
	buf_puts(b, ":");
	for (size_t i = 0; i < count; i++) {
		char *angle;

		if (v[i].display_name != NULL)
			add_display(b, &column, v[i].display_name, &first);
		if (v[i].display_name != NULL)
			angle = xasprintf("<%s>%s", v[i].address, i + 1 < count ? "," : "");
		else
			angle = xasprintf("%s%s", v[i].address, i + 1 < count ? "," : "");
		add_token(b, &column, angle, first);
		first = false;
		free(angle);
	}
	buf_puts(b, "\r\n");
}

/* ---- quoted-printable ---- */

static bool qp_literal(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '=';
}

char *email_message_qp_encode(const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	struct em_buf b = {0};
	size_t column = 0;

	for (const char *p = text; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		char token[4];
		size_t n;

		if (c == '\r' || c == '\n') {
			if (c == '\r' && p[1] == '\n')
				p++;
			buf_puts(&b, "\r\n");
			column = 0;
			continue;
		}
		/* A space or tab is literal unless a line break or the end follows it. */
		if (qp_literal(c) ||
		    ((c == ' ' || c == '\t') && p[1] != '\0' && p[1] != '\r' && p[1] != '\n')) {
			token[0] = (char)c;
			n = 1;
		} else {
			token[0] = '=';
			token[1] = hex[c >> 4];
			token[2] = hex[c & 15];
			n = 3;
		}
		/* Keep room for the "=" of a soft break at the end of the line. */
		if (column + n > EMAIL_QP_WIDTH - 1) {
			buf_puts(&b, "=\r\n");
			column = 0;
		}
		buf_append(&b, token, n);
		column += n;
	}
	if (b.length > 0 && (b.length < 2 || strcmp(b.data + b.length - 2, "\r\n") != 0))
		buf_puts(&b, "\r\n");
	return buf_finish(&b);
}

/* ---- dates and IDs ---- */

const char *email_message_date(int64_t ms, char *buf, size_t size)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	/* Month and day names are fixed by RFC 5322, so strftime's locale is not used. */
	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof tm);
	snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
		 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
	return buf;
}

static uint64_t notification_hash(const struct notification *n)
{
	uint64_t h = hash_string(HASH_FNV_OFFSET, n->receiver != NULL ? n->receiver : "");

	h = hash_bytes(h, "\0", 1);
	h = hash_string(h, n->group_key != NULL ? n->group_key : "");
	h = hash_bytes(h, "\0", 1);
	h = hash_bytes(h, &n->sequence, sizeof n->sequence);
	return hash_bytes(h, &n->created_ms, sizeof n->created_ms);
}

const char *email_message_id(const struct notification *n, const char *domain, char *buf,
			     size_t size)
{
	snprintf(buf, size, "<tocsin.%" PRIu64 ".%016" PRIx64 "@%s>", n->sequence,
		 notification_hash(n), domain);
	return buf;
}

/* ---- the built-in formats ---- */

static size_t firing_count(const struct notification *n)
{
	size_t count = 0;

	for (size_t i = 0; i < n->alert_count; i++)
		count += n->alerts[i].firing;
	return count;
}

static bool labels_have(const struct label *v, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(v[i].name, name) == 0)
			return true;
	}
	return false;
}

char *email_message_default_subject(const struct notification *n)
{
	struct em_buf b = {0};
	struct label *common;
	size_t common_count;
	bool opened = false;

	if (n->firing)
		buf_printf(&b, "[FIRING:%zu]", firing_count(n));
	else
		buf_puts(&b, "[RESOLVED]");
	for (size_t i = 0; i < n->group_label_count; i++)
		buf_printf(&b, " %s", n->group_labels[i].value);
	notification_common_labels(n, &common, &common_count);
	for (size_t i = 0; i < common_count; i++) {
		if (labels_have(n->group_labels, n->group_label_count, common[i].name))
			continue;
		buf_printf(&b, "%s%s", opened ? " " : " (", common[i].value);
		opened = true;
	}
	if (opened)
		buf_puts(&b, ")");
	notification_labels_release(common);
	return buf_finish(&b);
}

static const char *label_value(const struct label *v, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(v[i].name, name) == 0)
			return v[i].value;
	}
	return NULL;
}

/* Appends a possibly multi-line value, indenting its continuation lines. */
static void text_value(struct em_buf *b, const char *value, const char *indent)
{
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;
		if (*p == '\r' || *p == '\n') {
			buf_puts(b, "\n");
			buf_puts(b, indent);
			continue;
		}
		buf_append(b, p, 1);
	}
}

static void text_alert(struct em_buf *b, const struct notification_alert *a)
{
	const char *name = label_value(a->labels, a->label_count, "alertname");
	char time_text[40];

	buf_printf(b, "- %s\n", name != NULL ? name : "(no alertname)");
	buf_puts(b, "  Labels:");
	for (size_t i = 0; i < a->label_count; i++)
		buf_printf(b, "%s %s=%s", i > 0 ? "," : "", a->labels[i].name, a->labels[i].value);
	buf_puts(b, "\n");
	for (size_t i = 0; i < a->annotation_count; i++) {
		buf_printf(b, "  %s: ", a->annotations[i].name);
		text_value(b, a->annotations[i].value, "    ");
		buf_puts(b, "\n");
	}
	buf_printf(b, "  Started: %s\n",
		   notification_time(a->starts_at_ms, time_text, sizeof time_text));
	if (!a->firing)
		buf_printf(b, "  Ended: %s\n",
			   notification_time(a->ends_at_ms, time_text, sizeof time_text));
	if (a->generator_url != NULL && a->generator_url[0] != '\0')
		buf_printf(b, "  Source: %s\n", a->generator_url);
	buf_puts(b, "\n");
}

static void text_section(struct em_buf *b, const struct notification *n, bool firing)
{
	size_t count = 0;

	for (size_t i = 0; i < n->alert_count; i++)
		count += n->alerts[i].firing == firing;
	if (count == 0)
		return;
	buf_printf(b, "%s (%zu):\n\n", firing ? "Firing" : "Resolved", count);
	for (size_t i = 0; i < n->alert_count; i++) {
		if (n->alerts[i].firing == firing)
			text_alert(b, &n->alerts[i]);
	}
}

static char *default_text(const struct notification *n, const char *subject)
{
	struct em_buf b = {0};

	buf_printf(&b, "%s\n\n", subject);
	text_section(&b, n, true);
	text_section(&b, n, false);
	if (n->truncated_alerts > 0)
		buf_printf(&b, "%zu more alerts were left out of this message.\n\n",
			   n->truncated_alerts);
	if (n->external_url != NULL && n->external_url[0] != '\0')
		buf_printf(&b, "Sent by tocsin: %s\n", n->external_url);
	return buf_finish(&b);
}

static void html_escape(struct em_buf *b, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		switch (*p) {
		case '&':
			buf_puts(b, "&amp;");
			break;
		case '<':
			buf_puts(b, "&lt;");
			break;
		case '>':
			buf_puts(b, "&gt;");
			break;
		case '"':
			buf_puts(b, "&quot;");
			break;
		case '\'':
			buf_puts(b, "&#39;");
			break;
		default:
			buf_append(b, p, 1);
		}
	}
}

static char *html_escaped(const char *text)
{
	struct em_buf b = {0};

	html_escape(&b, text);
	return buf_finish(&b);
}

/* True for a value that is one http or https URL, which the HTML format links. */
static bool is_url(const char *value)
{
	if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
		return false;
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == ' ' || is_control((unsigned char)*p))
			return false;
	}
	return true;
}

static void html_value(struct em_buf *b, const char *value)
{
	if (is_url(value)) {
		buf_puts(b, "<a href=\"");
		html_escape(b, value);
		buf_puts(b, "\">");
		html_escape(b, value);
		buf_puts(b, "</a>");
		return;
	}
	for (const char *p = value; *p != '\0'; p++) {
		char one[2] = {*p, '\0'};

		if (*p == '\r' && p[1] == '\n')
			continue;
		if (*p == '\r' || *p == '\n')
			buf_puts(b, "<br>\n");
		else
			html_escape(b, one);
	}
}

static void html_alert(struct em_buf *b, const struct notification_alert *a)
{
	const char *name = label_value(a->labels, a->label_count, "alertname");
	char time_text[40];

	buf_printf(b,
		   "<div style=\"border-left: 4px solid %s; padding-left: 8px; "
		   "margin-bottom: 16px;\">\n",
		   a->firing ? "#c9302c" : "#449d44");
	buf_puts(b, "<p><strong>");
	html_escape(b, name != NULL ? name : "(no alertname)");
	buf_puts(b, "</strong></p>\n<table>\n");
	buf_puts(b, "<tr><td valign=\"top\">Labels</td><td>");
	for (size_t i = 0; i < a->label_count; i++) {
		buf_puts(b, i > 0 ? ", <code>" : "<code>");
		html_escape(b, a->labels[i].name);
		buf_puts(b, "=");
		html_escape(b, a->labels[i].value);
		buf_puts(b, "</code>");
	}
	buf_puts(b, "</td></tr>\n");
	for (size_t i = 0; i < a->annotation_count; i++) {
		buf_puts(b, "<tr><td valign=\"top\">");
		html_escape(b, a->annotations[i].name);
		buf_puts(b, "</td><td>");
		html_value(b, a->annotations[i].value);
		buf_puts(b, "</td></tr>\n");
	}
	buf_printf(b, "<tr><td>Started</td><td>%s</td></tr>\n",
		   notification_time(a->starts_at_ms, time_text, sizeof time_text));
	if (!a->firing)
		buf_printf(b, "<tr><td>Ended</td><td>%s</td></tr>\n",
			   notification_time(a->ends_at_ms, time_text, sizeof time_text));
	if (a->generator_url != NULL && a->generator_url[0] != '\0') {
		buf_puts(b, "<tr><td>Source</td><td><a href=\"");
		html_escape(b, a->generator_url);
		buf_puts(b, "\">graph</a></td></tr>\n");
	}
	buf_puts(b, "</table>\n</div>\n");
}

static void html_section(struct em_buf *b, const struct notification *n, bool firing)
{
	size_t count = 0;

	for (size_t i = 0; i < n->alert_count; i++)
		count += n->alerts[i].firing == firing;
	if (count == 0)
		return;
	buf_printf(b, "<h3>%s (%zu)</h3>\n", firing ? "Firing" : "Resolved", count);
	for (size_t i = 0; i < n->alert_count; i++) {
		if (n->alerts[i].firing == firing)
			html_alert(b, &n->alerts[i]);
	}
}

static char *default_html(const struct notification *n, const char *subject)
{
	struct em_buf b = {0};

	buf_puts(&b, "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>");
	html_escape(&b, subject);
	buf_puts(&b, "</title>\n</head>\n<body style=\"font-family: sans-serif;\">\n<h2>");
	html_escape(&b, subject);
	buf_puts(&b, "</h2>\n");
	html_section(&b, n, true);
	html_section(&b, n, false);
	if (n->truncated_alerts > 0)
		buf_printf(&b, "<p>%zu more alerts were left out of this message.</p>\n",
			   n->truncated_alerts);
	if (n->external_url != NULL && n->external_url[0] != '\0') {
		buf_puts(&b, "<p>Sent by <a href=\"");
		html_escape(&b, n->external_url);
		buf_puts(&b, "\">tocsin</a></p>\n");
	}
	buf_puts(&b, "</body>\n</html>\n");
	return buf_finish(&b);
}

/* ---- templates ---- */

/*
 * Renders t with the common labels (HTML-escaped when `html`) and the firing count. Returns
 * NULL and appends to *warning when rendering fails, so the caller uses its default.
 */
static char *render(const struct template *t, const struct notification *n, bool html,
		    const char *option, char **warning)
{
	struct template_data data = {0};
	struct label *common;
	size_t count;
	char **escaped = NULL;
	char *error = NULL;
	char *text;

	notification_common_labels(n, &common, &count);
	if (html && count > 0) {
		escaped = xcalloc(count, sizeof *escaped);
		for (size_t i = 0; i < count; i++) {
			escaped[i] = html_escaped(common[i].value);
			common[i].value = escaped[i];
		}
	}
	data.labels = common;
	data.label_count = count;
	data.value = (double)firing_count(n);
	text = template_render(t, &data, &error);
	if (text == NULL) {
		char *previous = *warning;

		*warning =
		    xasprintf("%s%sthe %s template failed (%s); the built-in format was used",
			      previous != NULL ? previous : "", previous != NULL ? "; " : "",
			      option, error != NULL ? error : "unknown error");
		free(previous);
	}
	free(error);
	for (size_t i = 0; escaped != NULL && i < count; i++)
		free(escaped[i]);
	free(escaped);
	notification_labels_release(common);
	return text;
}

/* ---- the whole message ---- */

static void append_qp_part(struct em_buf *b, const char *boundary, const char *type, char *body)
{
	char *encoded;

	utf8_repair(body);
	encoded = email_message_qp_encode(body);
	buf_printf(b, "--%s\r\n", boundary);
	buf_printf(b, "Content-Type: %s; charset=utf-8\r\n", type);
	buf_puts(b, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	buf_puts(b, encoded);
	free(encoded);
}

char *email_message_token_header(const char *name, const char *value)
{
	bool plain = strstr(value, "=?") == NULL && strlen(name) + 2 + strlen(value) <= 998;

	for (const char *p = value; plain && *p != '\0'; p++)
		plain = (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f;
	if (!plain)
		return email_message_header(name, value);
	return xasprintf("%s: %s\r\n", name, value);
}

static void append_header(struct em_buf *b, const char *name, const char *value)
{
	char *line = email_message_header(name, value);

	buf_puts(b, line);
	free(line);
}

char *email_message_build(const struct notification *n, const struct email_message_options *o,
			  char **warning)
{
	struct em_buf b = {0};
	char *subject = NULL;
	char *text = NULL;
	char *html = NULL;
	char line[512];
	char boundary[40];

	*warning = NULL;
	if (o->subject != NULL)
		subject = render(o->subject, n, false, "subject", warning);
	if (subject == NULL)
		subject = email_message_default_subject(n);
	if (o->text != NULL)
		text = render(o->text, n, false, "text", warning);
	if (text == NULL)
		text = default_text(n, subject);
	if (o->html != NULL)
		html = render(o->html, n, true, "html", warning);
	if (html == NULL)
		html = default_html(n, subject);

	address_header(&b, "From", o->from, 1);
	address_header(&b, "To", o->to, o->to_count);
	if (o->cc_count > 0)
		address_header(&b, "Cc", o->cc, o->cc_count);
	append_header(&b, "Subject", subject);
	buf_printf(&b, "Date: %s\r\n", email_message_date(o->date_ms, line, sizeof line));
	buf_printf(&b, "Message-ID: %s\r\n",
		   email_message_id(n, email_address_domain(o->from), line, sizeof line));
	buf_puts(&b, "MIME-Version: 1.0\r\n");
	if (n->idempotency_key != NULL && n->idempotency_key[0] != '\0') {
		char *key =
		    email_message_token_header("X-Tocsin-Idempotency-Key", n->idempotency_key);

		buf_puts(&b, key);
		free(key);
	}
	/* "=_" never occurs in quoted-printable text, so the bodies cannot hold the boundary. */
	snprintf(boundary, sizeof boundary, "=_tocsin_%016" PRIx64, notification_hash(n));
	buf_printf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", boundary);
	buf_puts(&b, "This is a message in MIME format, with a text and an HTML part.\r\n");
	append_qp_part(&b, boundary, "text/plain", text);
	append_qp_part(&b, boundary, "text/html", html);
	buf_printf(&b, "--%s--\r\n", boundary);
	free(subject);
	free(text);
	free(html);
	return buf_finish(&b);
}
