/* Building and reading ICMP echo messages; see icmp_packet.h. */
#include "probes/icmp_packet.h"

#include <string.h>
#include <sys/socket.h>

#define ICMP_ECHO_REQUEST   8
#define ICMP_ECHO_REPLY     0
#define ICMP6_ECHO_REQUEST_ 128
#define ICMP6_ECHO_REPLY_   129

uint16_t icmp_checksum(const void *data, size_t length)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	while (length > 1) {
		sum += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		length -= 2;
	}
	if (length == 1)
		sum += (uint32_t)p[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

size_t icmp_echo_build(uint8_t *buf, size_t size, int family, uint16_t id, uint16_t sequence,
		       const uint8_t cookie[ICMP_COOKIE_SIZE], size_t payload_size)
{
	size_t length = ICMP_HEADER_SIZE + payload_size;
	uint16_t sum;

	if (payload_size < ICMP_PAYLOAD_MIN || length > size)
		return 0;
	buf[0] = family == AF_INET6 ? ICMP6_ECHO_REQUEST_ : ICMP_ECHO_REQUEST;
	buf[1] = 0;
	buf[2] = 0;
	buf[3] = 0;
	buf[4] = (uint8_t)(id >> 8);
	buf[5] = (uint8_t)id;
	buf[6] = (uint8_t)(sequence >> 8);
	buf[7] = (uint8_t)sequence;
	memcpy(buf + ICMP_HEADER_SIZE, cookie, ICMP_COOKIE_SIZE);
	for (size_t i = ICMP_COOKIE_SIZE; i < payload_size; i++)
		buf[ICMP_HEADER_SIZE + i] = (uint8_t)(i & 0xff);
	if (family != AF_INET6) {
		sum = icmp_checksum(buf, length);
		buf[2] = (uint8_t)(sum >> 8);
		buf[3] = (uint8_t)sum;
	}
	return length;
}

int icmp_echo_parse(const uint8_t *buf, size_t length, int family, bool with_ip_header,
		    struct icmp_echo *echo)
{
	uint8_t expected = family == AF_INET6 ? ICMP6_ECHO_REPLY_ : ICMP_ECHO_REPLY;

	if (with_ip_header) {
		size_t header_length;

		if (length < 20 || (buf[0] >> 4) != 4)
			return -1;
		header_length = (size_t)(buf[0] & 0x0f) * 4;
		if (header_length < 20 || header_length > length)
			return -1;
		buf += header_length;
		length -= header_length;
	}
	if (length < ICMP_HEADER_SIZE || buf[0] != expected || buf[1] != 0)
		return -1;
	echo->id = (uint16_t)(buf[4] << 8 | buf[5]);
	echo->sequence = (uint16_t)(buf[6] << 8 | buf[7]);
	echo->payload = buf + ICMP_HEADER_SIZE;
	echo->payload_size = length - ICMP_HEADER_SIZE;
	return 0;
}

bool icmp_echo_has_cookie(const struct icmp_echo *echo, const uint8_t cookie[ICMP_COOKIE_SIZE])
{
	return echo->payload_size >= ICMP_COOKIE_SIZE &&
	       memcmp(echo->payload, cookie, ICMP_COOKIE_SIZE) == 0;
}
