/*
 * Pieces of the dns probe that are pure logic, exposed for its unit tests and for other
 * probes that take a DNS server: reading the `server` option and checking a section's records against the configured regular
 * expressions.
 */
#ifndef TOCSIN_DNS_H
#define TOCSIN_DNS_H

#include <regex.h>
#include <stddef.h>

struct cfg_map;

/* The regular expressions of one validate_*_rrs option (POSIX extended, unanchored). */
struct dns_validation {
	regex_t *fail_if_matches;
	size_t fail_if_matches_count;
	char **fail_if_matches_source;
	regex_t *fail_if_not_matches;
	size_t fail_if_not_matches_count;
	char **fail_if_not_matches_source;
};

/*
 * Splits "IP", "IP:PORT", "IPV6", "[IPV6]" or "[IPV6]:PORT" (an address, never a name,
 * so that a DNS check does not depend on DNS). Returns 0 and sets host (at least
 * INET6_ADDRSTRLEN bytes), *port (53 when absent) and *family, or -1.
 */
int dns_parse_server(const char *text, char *host, size_t host_size, unsigned *port, int *family);
/*
 * Reads option `key` of `options` as a DNS server (dns_parse_server()) into *server, in the
 * "host:port" form c-ares takes ("[addr]:port" for IPv6). Returns 1, 0 when the option is
 * absent, or -1 after reporting an error at the option.
 */
int dns_server_option(struct cfg_map *options, const char *key, char **server, int *family);

/*
 * Checks the rendered records of one section. A record matching any fail_if_matches
 * expression fails, and so does a fail_if_not_matches expression that no record
 * matches. Returns 0, or -1 with a reason naming the record or expression.
 */
int dns_validate_section(const struct dns_validation *v, char *const *records, size_t count,
			 const char *section, char *reason, size_t reason_size);

#endif
