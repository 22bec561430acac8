/*
 * ICMP and ICMPv6 echo packets for the icmp probe: building requests and reading
 * replies. A request's payload starts with an 8-byte cookie chosen per run, so a reply
 * is matched by its sequence number and that cookie rather than by the echo identifier,
 * which the kernel replaces on ping sockets. Pure functions: no I/O.
 */
#ifndef TOCSIN_ICMP_PACKET_H
#define TOCSIN_ICMP_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ICMP_COOKIE_SIZE 8
#define ICMP_HEADER_SIZE 8
#define ICMP_PAYLOAD_MIN ICMP_COOKIE_SIZE
#define ICMP_PAYLOAD_MAX 9000

/* An echo reply read from a socket. `payload` points into the caller's buffer. */
struct icmp_echo {
	uint16_t id;
	uint16_t sequence;
	const uint8_t *payload;
	size_t payload_size;
};

/* Internet checksum (RFC 1071) of `length` bytes. */
uint16_t icmp_checksum(const void *data, size_t length);

/*
 * Writes an echo request for `family` (AF_INET: type 8 with its checksum; AF_INET6:
 * type 128 with checksum 0, which the kernel fills in) with `payload_size` payload bytes:
 * the cookie, then a fill pattern. Returns the packet length, or 0 when `size` is too
 * small or payload_size is below ICMP_PAYLOAD_MIN.
 */
size_t icmp_echo_build(uint8_t *buf, size_t size, int family, uint16_t id, uint16_t sequence,
		       const uint8_t cookie[ICMP_COOKIE_SIZE], size_t payload_size);

/*
 * Reads an echo reply of `family`. `with_ip_header` is true for what an IPv4 raw socket
 * returns (an IPv4 header first); IPv4 ping sockets and every IPv6 socket return the
 * ICMP message alone. Returns 0 and fills `echo`, or -1 when the buffer is not an echo
 * reply (another ICMP type, a truncated packet, a bad IPv4 header).
 */
int icmp_echo_parse(const uint8_t *buf, size_t length, int family, bool with_ip_header,
		    struct icmp_echo *echo);

/* True when the reply's payload starts with `cookie`. */
bool icmp_echo_has_cookie(const struct icmp_echo *echo, const uint8_t cookie[ICMP_COOKIE_SIZE]);

#endif
