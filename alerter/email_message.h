/*
 * The message the `email` receiver sends: an RFC 5322 message with a multipart/alternative
 * body (text/plain and text/html), built from a notification without any network I/O so
 * that every header and every line is tested on its own. The output uses CRLF line ends
 * only and is 7-bit: headers with non-ASCII text use RFC 2047 encoded-words (UTF-8, "B"
 * encoding) folded at 78 columns, and both bodies are quoted-printable with lines of at
 * most 76 characters. No line can therefore exceed SMTP's 998-octet limit, whatever the
 * annotations hold.
 */
#ifndef TOCSIN_EMAIL_MESSAGE_H
#define TOCSIN_EMAIL_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "alerter/notification.h"

struct template;

/* A mailbox from the config: an optional display name and an addr-spec "local@domain". */
struct email_address {
	char *display_name; /* UTF-8, NULL when absent */
	char *address;      /* the addr-spec, used in the envelope and between angle brackets */
};

/*
 * Parses "local@domain" or "Display Name <local@domain>" (the display name may be quoted
 * with "..."). Rejects control characters (so no text can inject a header), spaces and
 * angle brackets in the addr-spec, an addr-spec without exactly one "@" between non-empty
 * parts, and IP-literal domains. Returns 0 and fills *out, or -1 with *error set (caller
 * frees) to a sentence naming what is wrong.
 */
int email_address_parse(const char *text, struct email_address *out, char **error);
void email_address_clear(struct email_address *a);
/* The part after the "@" of the addr-spec. */
const char *email_address_domain(const struct email_address *a);

struct email_message_options {
	const struct email_address *from;
	const struct email_address *to; /* at least one */
	size_t to_count;
	const struct email_address *cc;
	size_t cc_count;
	/*
	 * Templates rendered with $labels set to the notification's common labels and $value
	 * to the number of firing alerts; NULL selects the built-in format. Values given to
	 * the html template are HTML-escaped first.
	 */
	const struct template *subject;
	const struct template *text;
	const struct template *html;
	int64_t date_ms; /* the Date header, Unix milliseconds */
};

/*
 * Builds the whole message: From, To, Cc, Subject, Date, Message-ID, MIME-Version,
 * X-Tocsin-Idempotency-Key and the two body parts. A template that fails to render falls
 * back to the built-in format, and *warning (caller frees; NULL otherwise) names the
 * template and the error. Returns a NUL-terminated string the caller frees.
 */
char *email_message_build(const struct notification *n, const struct email_message_options *o,
			  char **warning);

/*
 * Renders one unstructured header field, "Name: value" followed by CRLF. Printable ASCII
 * is folded at spaces so that lines stay within 78 columns. Text with other bytes, with
 * "=?", or with a word too long to fold, becomes a run of UTF-8 "B" encoded-words of at
 * most 75 characters each, one per line, that never split a UTF-8 character. Line breaks
 * in the value become spaces. Returns a string the caller frees.
 */
char *email_message_header(const char *name, const char *value);
/*
 * The same for a value that programs read, such as the idempotency key: printable ASCII
 * without spaces is sent as it is on one line (up to SMTP's 998 octets, past the 78
 * recommended for text), so a script that reads the raw header sees the value.
 * Anything else is encoded as email_message_header() does.
 */
char *email_message_token_header(const char *name, const char *value);

/*
 * Encodes text as quoted-printable (RFC 2045, section 6.7). Line breaks in the input ("\n",
 * "\r\n" or a lone "\r") become CRLF hard breaks, and long lines get soft breaks so that no
 * encoded line exceeds 76 characters. "=", control characters, bytes above 126, and spaces
 * or tabs at the end of a line are escaped as =XX. Returns a string the caller frees.
 */
char *email_message_qp_encode(const char *text);

/* Writes an RFC 5322 date in UTC, "Thu, 04 Dec 2025 20:00:00 +0000", into buf. */
const char *email_message_date(int64_t ms, char *buf, size_t size);

/*
 * Writes the Message-ID, "<tocsin.SEQUENCE.HASH@DOMAIN>" with the angle brackets, into buf.
 * HASH covers the receiver, the group key, the sequence and the creation time. So the ID
 * is unique per notification and stays the same when a failed delivery is retried, which
 * lets mail stores that merge messages by ID drop a duplicate.
 */
const char *email_message_id(const struct notification *n, const char *domain, char *buf,
			     size_t size);

/* The built-in subject: "[FIRING:2] GROUP VALUES (OTHER COMMON VALUES)" or "[RESOLVED] ...",
 * as Alertmanager's default email subject reads. Returns a string the caller frees. */
char *email_message_default_subject(const struct notification *n);

#endif
