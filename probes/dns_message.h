/*
 * DNS messages (RFC 1035) for the dns probe: record type and rcode names, and a parser
 * that reads a response's header and renders every resource record of the answer,
 * authority and additional sections as one line of presentation format,
 *   "example.org.\t300\tIN\tMX\t10 mail.example.org."
 * (owner, TTL, class, type and data separated by tabs, names fully qualified), so
 * that configured regular expressions see the same text as in zone files and dig.
 * Pure functions: no I/O.
 */
#ifndef TOCSIN_DNS_MESSAGE_H
#define TOCSIN_DNS_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

enum dns_section {
	DNS_SECTION_ANSWER,
	DNS_SECTION_AUTHORITY,
	DNS_SECTION_ADDITIONAL,
	DNS_SECTION_COUNT,
};

struct dns_response {
	uint16_t id;
	uint16_t flags; /* header bits 16..31: QR, opcode, AA, TC, RD, RA, Z, rcode */
	unsigned rcode; /* low four bits of flags (no EDNS extension) */
	unsigned counts[DNS_SECTION_COUNT]; /* record counts from the header */
	char **records[DNS_SECTION_COUNT];  /* rendered records, counts[s] of each */
	int has_soa_serial;                 /* 1 when the answer holds an SOA record */
	uint32_t soa_serial;
};

/*
 * Parses a response of `length` bytes. Returns 0 and fills `out` (release it with
 * dns_response_free), or -1 with a short reason in `error` ("truncated header",
 * "record 2 of the answer section runs past the end") and `out` left empty.
 */
int dns_response_parse(const uint8_t *message, size_t length, struct dns_response *out, char *error,
		       size_t error_size);
void dns_response_free(struct dns_response *response);

/* Kind of a message read from the server's socket, judged against the query sent. */
enum dns_reply_kind {
	DNS_REPLY_FOREIGN,   /* too short to hold an ID, or another query's ID: not ours */
	DNS_REPLY_TRUNCATED, /* TC set over UDP with the question echoed: TCP comes next */
	DNS_REPLY_MALFORMED, /* ours, but cannot be read: `error` says why */
	DNS_REPLY_VALID,
};

/*
 * Classifies `reply` as an answer to `query` (both as sent on the wire, without the TCP
 * length prefix). A reply is ours when its ID is the query's; it is malformed when its
 * header is cut short, its QR bit is clear, its question section is not the query's,
 * or (except for a truncated UDP answer, whose records may be cut) its records cannot
 * be parsed. c-ares silently drops most of these, so the probe checks them itself.
 */
enum dns_reply_kind dns_reply_classify(const uint8_t *query, size_t query_length,
				       const uint8_t *reply, size_t reply_length, int over_tcp,
				       char *error, size_t error_size);

/* Type number for a mnemonic ("MX", case-insensitive); -1 when unknown. */
int dns_type_parse(const char *name);
/* Mnemonic for a type number; NULL when not one of the known types. */
const char *dns_type_name(unsigned type);

/* Rcode number for a name ("NXDOMAIN", case-insensitive); -1 when unknown. */
int dns_rcode_parse(const char *name);
/* Name of an rcode 0..15 ("SERVFAIL"); "RCODE<n>" style names are written into `buf`. */
const char *dns_rcode_name(unsigned rcode, char *buf, size_t size);

/* Section names as in dig output and option names: "answer", "authority", "additional". */
const char *dns_section_name(enum dns_section section);

#endif
