/*
 * Pieces of the tcp probe that are pure logic, exposed for its unit tests.
 */
#ifndef TOCSIN_TCP_H
#define TOCSIN_TCP_H

#include <stddef.h>

/*
 * Splits a target "HOST:PORT" or "[IPV6]:PORT" into host and port. Returns 0, or -1 when
 * the port is missing or not in 1..65535 or the host is empty or too long.
 */
int tcp_parse_target(const char *text, char *host, size_t host_size, unsigned *port);

/*
 * Returns the bytes a `send` step puts on the wire, in a new string: the text followed
 * by "\r\n", unless it already ends with "\n".
 */
char *tcp_send_text(const char *text);

#endif
