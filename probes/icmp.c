/*
 * The `icmp` probe: sends `count` echo requests to a target, `spacing` apart, and
 * reports round-trip times and loss. Requests go out on one socket per address family
 * shared by every icmp probe in the process: an unprivileged ping socket (SOCK_DGRAM,
 * IPPROTO_ICMP or IPPROTO_ICMPV6) when net.ipv4.ping_group_range admits the process's
 * group, else a raw socket when the process has CAP_NET_RAW. When neither is allowed,
 * the run fails with not_permitted and a reason that names the setting to change.
 *
 * The kernel replaces the echo identifier of a ping socket with the socket's own, so
 * replies are matched by sequence number (unique per socket) and by a random cookie
 * at the start of the payload (unique per run), never by the identifier alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "collector/cfg.h"
#include "collector/log.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"
#include "probes/cares_loop.h"
#include "probes/icmp_packet.h"
#include "probes/probe.h"

#define ICMP_COUNT_MAX       1000
#define ICMP_PENDING_BUCKETS 256
#define ICMP_DEFAULT_PAYLOAD 56

struct icmp_state;

/* One request waiting for its reply, found by sequence number. */
struct icmp_pending {
	uint16_t sequence;
	struct icmp_state *owner;
	unsigned index; /* position in the owner's run */
	struct icmp_pending *next;
};

/* The shared socket of one address family. */
struct icmp_socket {
	int family;
	int fd; /* -1 when closed */
	bool raw;
	uint16_t id; /* echo identifier: the kernel's on ping sockets, ours on raw ones */
	struct event *event;
	struct event_base *base;
	uint16_t next_sequence;
	struct icmp_pending *buckets[ICMP_PENDING_BUCKETS];
	struct throttle permission; /* "not permitted" is logged once, then throttled */
};

static struct icmp_socket icmp_sockets[2] = {
    {.family = AF_INET, .fd = -1},
    {.family = AF_INET6, .fd = -1},
};
/* Parsed icmp probes alive; the shared sockets close when the last one is freed. */
static unsigned icmp_state_count;

struct icmp_state {
	char *target;
	bool literal; /* target is an IP address: no resolution */
	int family;   /* AF_INET or AF_INET6: ip_protocol, or the literal's family */
	bool fallback;
	unsigned count;
	uint64_t spacing_ms;
	uint64_t reply_timeout_ms;
	size_t payload_size;

	struct cares_loop *resolver;
	struct event_base *resolver_base;
	struct event *timer;
	struct event_base *timer_base;

	/* The run in flight. */
	struct probe_run *run;
	struct icmp_socket *socket;
	struct sockaddr_storage address;
	socklen_t address_length;
	uint8_t cookie[ICMP_COOKIE_SIZE];
	uint64_t start_us;
	uint64_t resolved_us;
	uint64_t setup_us;
	unsigned sent;
	unsigned received;
	uint64_t *sent_us;            /* per request */
	double *rtt;                  /* per request, < 0 while unanswered */
	struct icmp_pending *pending; /* per request */
};

static const struct metric_desc m_success = {
    "probe_success", "Whether the probe succeeded (1) or failed (0).", METRIC_GAUGE};
static const struct metric_desc m_duration = {
    "probe_duration_seconds", "How long the probe took to complete, in seconds.", METRIC_GAUGE};
static const struct metric_desc m_ip_protocol = {
    "probe_ip_protocol", "IP version of the target address: 4 or 6.", METRIC_GAUGE};
static const struct metric_desc m_phase = {
    "probe_icmp_duration_seconds",
    "Seconds per phase: resolve, setup (socket), rtt (mean round trip of the replies).",
    METRIC_GAUGE};
static const struct metric_desc m_rtt = {
    "tocsin_icmp_rtt_seconds", "Round-trip time of the replies: min, avg or max.", METRIC_GAUGE};
static const struct metric_desc m_sent = {"probe_icmp_packets_sent",
					  "Echo requests sent in the run.", METRIC_GAUGE};
static const struct metric_desc m_received = {"probe_icmp_packets_received",
					      "Echo replies matched in the run.", METRIC_GAUGE};
static const struct metric_desc m_loss = {"probe_icmp_packet_loss_ratio",
					  "Share of the requests without a reply, from 0 to 1.",
					  METRIC_GAUGE};

/* Options */

static int parse_target(struct cfg_map *options, struct icmp_state *st)
{
	char *protocol = NULL;
	char quoted[CFG_QUOTE_SIZE];
	unsigned char addr[16];
	int literal_family = 0;
	int rc = 0;
	int got;

	got = cfg_get_string(options, "target", &st->target);
	if (got == 0)
		cfg_error(options, NULL, "target: missing: the host name or IP address to ping");
	if (got <= 0)
		rc = -1;
	if (got > 0) {
		if (inet_pton(AF_INET, st->target, addr) == 1)
			literal_family = AF_INET;
		else if (inet_pton(AF_INET6, st->target, addr) == 1)
			literal_family = AF_INET6;
		else if (st->target[0] == '\0' || strchr(st->target, ' ') != NULL) {
			cfg_error(options, "target",
				  "invalid target %s: expected a host name or an IP address",
				  cfg_quote(st->target, quoted, sizeof quoted));
			rc = -1;
		}
	}
	st->literal = literal_family != 0;
	st->family = AF_INET;
	got = cfg_get_string(options, "ip_protocol", &protocol);
	if (got > 0) {
		if (strcmp(protocol, "ip6") == 0) {
			st->family = AF_INET6;
		} else if (strcmp(protocol, "ip4") != 0) {
			cfg_error(options, "ip_protocol",
				  "invalid ip_protocol %s: expected ip4 or ip6",
				  cfg_quote(protocol, quoted, sizeof quoted));
			rc = -1;
		} else if (literal_family == AF_INET6) {
			cfg_error(options, "ip_protocol",
				  "ip_protocol \"ip4\" contradicts the IPv6 target %s",
				  cfg_quote(st->target, quoted, sizeof quoted));
			rc = -1;
		}
		if (st->family == AF_INET6 && literal_family == AF_INET) {
			cfg_error(options, "ip_protocol",
				  "ip_protocol \"ip6\" contradicts the IPv4 target %s",
				  cfg_quote(st->target, quoted, sizeof quoted));
			rc = -1;
		}
	} else if (got < 0) {
		rc = -1;
	}
	if (literal_family != 0)
		st->family = literal_family;
	free(protocol);
	st->fallback = true;
	if (cfg_get_bool(options, "ip_protocol_fallback", &st->fallback) < 0)
		rc = -1;
	return rc;
}

static int parse_timing(struct cfg_map *options, struct icmp_state *st)
{
	int64_t count = 1;
	int64_t payload = ICMP_DEFAULT_PAYLOAD;
	int rc = 0;

	if (cfg_get_int(options, "count", 1, ICMP_COUNT_MAX, &count) < 0)
		rc = -1;
	st->count = (unsigned)count;
	st->spacing_ms = 100;
	if (cfg_get_duration_ms(options, "spacing", &st->spacing_ms) < 0)
		rc = -1;
	st->reply_timeout_ms = 1000;
	if (cfg_get_duration_ms(options, "reply_timeout", &st->reply_timeout_ms) < 0)
		rc = -1;
	if (cfg_get_int(options, "payload_size", ICMP_PAYLOAD_MIN, ICMP_PAYLOAD_MAX, &payload) < 0)
		rc = -1;
	st->payload_size = (size_t)payload;
	return rc;
}

static void icmp_socket_close(struct icmp_socket *s)
{
	if (s->fd < 0)
		return;
	event_free(s->event);
	s->event = NULL;
	close(s->fd);
	s->fd = -1;
	s->base = NULL;
}

static void icmp_free(void *state)
{
	struct icmp_state *st = state;

	if (st == NULL)
		return;
	cares_loop_free(st->resolver);
	if (st->timer != NULL)
		event_free(st->timer);
	free(st->sent_us);
	free(st->rtt);
	free(st->pending);
	free(st->target);
	free(st);
	if (--icmp_state_count == 0) {
		icmp_socket_close(&icmp_sockets[0]);
		icmp_socket_close(&icmp_sockets[1]);
	}
}

static int icmp_parse(struct cfg_map *options, void **state)
{
	struct icmp_state *st = xcalloc(1, sizeof *st);
	int rc = 0;

	icmp_state_count++;
	if (parse_target(options, st) < 0)
		rc = -1;
	if (parse_timing(options, st) < 0)
		rc = -1;
	if (rc < 0) {
		icmp_free(st);
		return -1;
	}
	st->sent_us = xcalloc(st->count, sizeof *st->sent_us);
	st->rtt = xcalloc(st->count, sizeof *st->rtt);
	st->pending = xcalloc(st->count, sizeof *st->pending);
	*state = st;
	return 0;
}

/* Shared sockets */

static struct icmp_socket *socket_for(int family)
{
	return &icmp_sockets[family == AF_INET6 ? 1 : 0];
}

static void pending_add(struct icmp_socket *s, struct icmp_pending *p)
{
	struct icmp_pending **bucket = &s->buckets[p->sequence % ICMP_PENDING_BUCKETS];

	p->next = *bucket;
	*bucket = p;
}

static void pending_remove(struct icmp_socket *s, struct icmp_pending *p)
{
	struct icmp_pending **link = &s->buckets[p->sequence % ICMP_PENDING_BUCKETS];

	while (*link != NULL && *link != p)
		link = &(*link)->next;
	if (*link == p)
		*link = p->next;
	p->owner = NULL;
}

static struct icmp_pending *pending_find(struct icmp_socket *s, uint16_t sequence)
{
	struct icmp_pending *p = s->buckets[sequence % ICMP_PENDING_BUCKETS];

	while (p != NULL && p->sequence != sequence)
		p = p->next;
	return p;
}

static void run_finish(struct icmp_state *st);

static bool same_address(const struct icmp_state *st, const struct sockaddr_storage *from)
{
	if (from->ss_family != st->address.ss_family)
		return false;
	if (from->ss_family == AF_INET)
		return ((const struct sockaddr_in *)from)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)&st->address)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)from)->sin6_addr,
		      &((const struct sockaddr_in6 *)&st->address)->sin6_addr,
		      sizeof(struct in6_addr)) == 0;
}

static void handle_packet(struct icmp_socket *s, const uint8_t *buf, size_t length,
			  const struct sockaddr_storage *from, uint64_t now_us)
{
	struct icmp_echo echo;
	struct icmp_pending *p;
	struct icmp_state *st;

	if (icmp_echo_parse(buf, length, s->family, s->raw && s->family == AF_INET, &echo) < 0)
		return;
	/* A raw socket receives every echo reply on the host, other programs' included. */
	if (s->raw && echo.id != s->id)
		return;
	p = pending_find(s, echo.sequence);
	if (p == NULL || p->owner == NULL)
		return;
	st = p->owner;
	if (!icmp_echo_has_cookie(&echo, st->cookie) || !same_address(st, from))
		return;
	pending_remove(s, p);
	st->rtt[p->index] = (double)(now_us - st->sent_us[p->index]) / 1e6;
	st->received++;
	if (st->received == st->count)
		run_finish(st);
}

static void socket_readable(evutil_socket_t fd, short what, void *arg)
{
	struct icmp_socket *s = arg;
	uint8_t buf[ICMP_PAYLOAD_MAX + 128];

	(void)what;
	/* Bounded: a flood of foreign replies on a raw socket cannot hold the loop. */
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage from;
		socklen_t from_length = sizeof from;
		ssize_t n =
		    recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_length);

		if (n < 0)
			return;
		handle_packet(s, buf, (size_t)n, &from, probe_now_us());
	}
}

/* Reads net.ipv4.ping_group_range for the error message; "" when unreadable. */
static void read_ping_group_range(char *buf, size_t size)
{
	int fd = open("/proc/sys/net/ipv4/ping_group_range", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	for (char *p = buf; *p != '\0'; p++) {
		if (*p == '\t' || *p == '\n')
			*p = *p == '\t' ? ' ' : '\0';
	}
}

static int socket_bind_id(struct icmp_socket *s)
{
	struct sockaddr_storage local;
	socklen_t length = sizeof local;

	memset(&local, 0, sizeof local);
	local.ss_family = (sa_family_t)s->family;
	/* Binding with port 0 makes the kernel pick the echo identifier now. */
	if (bind(s->fd, (struct sockaddr *)&local,
		 s->family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) <
	    0)
		return -1;
	if (getsockname(s->fd, (struct sockaddr *)&local, &length) < 0)
		return -1;
	s->id = ntohs(s->family == AF_INET6 ? ((struct sockaddr_in6 *)&local)->sin6_port
					    : ((struct sockaddr_in *)&local)->sin_port);
	return 0;
}

/*
 * Opens the family's shared socket on `base` unless it is open. Returns 0, or -1 with
 * the status and reason of the failure.
 */
static int socket_open(struct icmp_socket *s, struct event_base *base, enum probe_status *status,
		       char *reason, size_t size)
{
	int protocol = s->family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	const char *name = s->family == AF_INET6 ? "IPv6" : "IPv4";
	int dgram_errno;
	char range[64];
	uint64_t suppressed;

	if (s->fd >= 0 && s->base == base)
		return 0;
	/* A socket of another loop (a test's) cannot serve this one. */
	icmp_socket_close(s);
	if (s->permission.max_ms == 0)
		throttle_init(&s->permission, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	s->fd = socket(s->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
	if (s->fd >= 0) {
		s->raw = false;
		if (socket_bind_id(s) < 0) {
			snprintf(reason, size, "icmp: cannot bind the %s ping socket: %s", name,
				 strerror(errno));
			*status = PROBE_STATUS_IO_ERROR;
			close(s->fd);
			s->fd = -1;
			return -1;
		}
	} else if (errno == EACCES || errno == EPERM) {
		dgram_errno = errno;
		s->fd = socket(s->family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
		if (s->fd < 0 && (errno == EACCES || errno == EPERM)) {
			read_ping_group_range(range, sizeof range);
			snprintf(reason, size,
				 "icmp: not permitted: %s ping sockets are disabled for group %u "
				 "(net.ipv4.ping_group_range is \"%s\") and raw sockets need "
				 "CAP_NET_RAW; include the group in net.ipv4.ping_group_range or "
				 "grant CAP_NET_RAW",
				 name, (unsigned)getegid(), range);
			*status = PROBE_STATUS_NOT_PERMITTED;
			if (throttle_fail(&s->permission, probe_now_ms(), &suppressed))
				log_warn("icmp", NULL, "%s (%s; %llu similar failures suppressed)",
					 reason, strerror(dgram_errno),
					 (unsigned long long)suppressed);
			return -1;
		}
		if (s->fd >= 0) {
			s->raw = true;
			getrandom(&s->id, sizeof s->id, GRND_NONBLOCK);
			if (s->family == AF_INET6) {
				struct icmp6_filter filter;

				ICMP6_FILTER_SETBLOCKALL(&filter);
				ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
				setsockopt(s->fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter,
					   sizeof filter);
			}
		}
	}
	if (s->fd < 0) {
		snprintf(reason, size, "icmp: cannot open an %s socket: %s", name, strerror(errno));
		*status = PROBE_STATUS_IO_ERROR;
		return -1;
	}
	if (throttle_ok(&s->permission, NULL))
		log_notice("icmp", NULL, "%s echo requests are permitted again", name);
	s->base = base;
	s->event = event_new(base, s->fd, EV_READ | EV_PERSIST, socket_readable, s);
	event_add(s->event, NULL);
	log_debug("icmp", NULL, "opened the %s %s socket, echo id %u", name,
		  s->raw ? "raw" : "ping (SOCK_DGRAM)", s->id);
	return 0;
}

/* Run */

static void emit(struct probe_run *run, const struct metric_desc *desc, const char *label,
		 const char *value, double sample)
{
	struct label l = {label, value};

	probe_run_emit(run, desc, &l, label != NULL ? 1 : 0, sample);
}

static void run_clear(struct icmp_state *st)
{
	if (st->timer != NULL)
		evtimer_del(st->timer);
	for (unsigned i = 0; i < st->count; i++) {
		if (st->pending[i].owner != NULL)
			pending_remove(st->socket, &st->pending[i]);
	}
	st->run = NULL;
}

/* Ends the run with `status`, emitting the figures gathered so far. */
static void run_end(struct icmp_state *st, enum probe_status status, const char *reason)
{
	struct probe_run *run = st->run;
	uint64_t now = probe_now_us();

	run_clear(st);
	emit(run, &m_success, NULL, NULL, status == PROBE_STATUS_OK ? 1 : 0);
	emit(run, &m_duration, NULL, NULL, (double)(now - st->start_us) / 1e6);
	if (st->resolved_us != 0) {
		emit(run, &m_ip_protocol, NULL, NULL, st->address.ss_family == AF_INET6 ? 6 : 4);
		emit(run, &m_phase, "phase", "resolve",
		     (double)(st->resolved_us - st->start_us) / 1e6);
	}
	if (st->setup_us != 0)
		emit(run, &m_phase, "phase", "setup",
		     (double)(st->setup_us - st->resolved_us) / 1e6);
	probe_run_finish(run, status, "%s", reason);
}

static void run_finish(struct icmp_state *st)
{
	struct probe_run *run = st->run;
	char address[INET6_ADDRSTRLEN] = "?";
	char reason[256];
	double min = 0;
	double max = 0;
	double sum = 0;

	for (unsigned i = 0; i < st->sent; i++) {
		double rtt = st->rtt[i];

		if (rtt < 0)
			continue;
		if (sum == 0 || rtt < min)
			min = rtt;
		if (rtt > max)
			max = rtt;
		sum += rtt;
	}
	emit(run, &m_sent, NULL, NULL, st->sent);
	emit(run, &m_received, NULL, NULL, st->received);
	emit(run, &m_loss, NULL, NULL,
	     st->sent > 0 ? (double)(st->sent - st->received) / st->sent : 1);
	if (st->address.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&st->address)->sin6_addr, address,
			  sizeof address);
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&st->address)->sin_addr, address,
			  sizeof address);
	if (st->received == 0) {
		snprintf(reason, sizeof reason, "icmp: no echo reply from %s (%u sent)", address,
			 st->sent);
		run_end(st, PROBE_STATUS_TIMEOUT, reason);
		return;
	}
	emit(run, &m_phase, "phase", "rtt", sum / st->received);
	emit(run, &m_rtt, "stat", "min", min);
	emit(run, &m_rtt, "stat", "avg", sum / st->received);
	emit(run, &m_rtt, "stat", "max", max);
	snprintf(reason, sizeof reason, "icmp: %u/%u replies from %s, rtt avg %.3f ms",
		 st->received, st->sent, address, sum / st->received * 1000);
	run_end(st, PROBE_STATUS_OK, reason);
}

static void send_next(struct icmp_state *st)
{
	struct icmp_socket *s = st->socket;
	struct icmp_pending *p = &st->pending[st->sent];
	uint8_t packet[ICMP_HEADER_SIZE + ICMP_PAYLOAD_MAX];
	size_t length;
	char reason[256];

	p->sequence = s->next_sequence++;
	p->index = st->sent;
	p->owner = st;
	length = icmp_echo_build(packet, sizeof packet, s->family, s->id, p->sequence, st->cookie,
				 st->payload_size);
	st->sent_us[st->sent] = probe_now_us();
	if (sendto(s->fd, packet, length, 0, (struct sockaddr *)&st->address, st->address_length) <
	    0) {
		int err = errno;

		p->owner = NULL;
		snprintf(reason, sizeof reason, "icmp: cannot send to %s: %s", st->target,
			 strerror(err));
		run_end(st,
			err == ENETUNREACH || err == EHOSTUNREACH ? PROBE_STATUS_UNREACHABLE
			: err == EACCES || err == EPERM           ? PROBE_STATUS_NOT_PERMITTED
								  : PROBE_STATUS_IO_ERROR,
			reason);
		return;
	}
	pending_add(s, p);
	st->sent++;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct icmp_state *st = arg;
	uint64_t ms;
	struct timeval tv;

	(void)fd;
	(void)what;
	if (st->run == NULL)
		return;
	if (st->sent == st->count) {
		/* The reply timeout after the last request passed. */
		run_finish(st);
		return;
	}
	send_next(st);
	if (st->run == NULL)
		return;
	ms = st->sent < st->count ? st->spacing_ms : st->reply_timeout_ms;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(st->timer, &tv);
}

static void begin_sending(struct icmp_state *st)
{
	struct event_base *base = probe_run_base(st->run);
	enum probe_status status;
	char reason[512];

	st->socket = socket_for(st->address.ss_family);
	if (socket_open(st->socket, base, &status, reason, sizeof reason) < 0) {
		run_end(st, status, reason);
		return;
	}
	st->setup_us = probe_now_us();
	if (st->timer == NULL || st->timer_base != base) {
		if (st->timer != NULL)
			event_free(st->timer);
		st->timer = evtimer_new(base, on_timer, st);
		st->timer_base = base;
	}
	on_timer(-1, EV_TIMEOUT, st);
}

static void on_resolved(void *arg, int status, int timeouts, struct ares_addrinfo *result)
{
	struct icmp_state *st = arg;
	struct ares_addrinfo_node *chosen = NULL;
	char reason[256];

	(void)timeouts;
	if (st->run == NULL) {
		ares_freeaddrinfo(result);
		return;
	}
	for (struct ares_addrinfo_node *n = result != NULL ? result->nodes : NULL; n != NULL;
	     n = n->ai_next) {
		if (n->ai_family == st->family) {
			chosen = n;
			break;
		}
		if (chosen == NULL && st->fallback)
			chosen = n;
	}
	if (status != ARES_SUCCESS || chosen == NULL) {
		snprintf(reason, sizeof reason, "icmp: cannot resolve %s: %s", st->target,
			 status != ARES_SUCCESS ? ares_strerror(status)
						: "no address of the requested family");
		ares_freeaddrinfo(result);
		run_end(st, PROBE_STATUS_RESOLVE_ERROR, reason);
		return;
	}
	memset(&st->address, 0, sizeof st->address);
	memcpy(&st->address, chosen->ai_addr, chosen->ai_addrlen);
	st->address_length = chosen->ai_addrlen;
	ares_freeaddrinfo(result);
	st->resolved_us = probe_now_us();
	begin_sending(st);
}

static void icmp_start(struct probe_run *run, void *state)
{
	struct icmp_state *st = state;
	struct event_base *base = probe_run_base(run);
	int status;
	char reason[256];

	st->run = run;
	st->socket = NULL;
	st->start_us = probe_now_us();
	st->resolved_us = 0;
	st->setup_us = 0;
	st->sent = 0;
	st->received = 0;
	for (unsigned i = 0; i < st->count; i++) {
		st->rtt[i] = -1;
		st->pending[i].owner = NULL;
	}
	if (getrandom(st->cookie, sizeof st->cookie, GRND_NONBLOCK) != sizeof st->cookie) {
		uint64_t t = probe_now_us() ^ (uint64_t)(uintptr_t)st;

		memcpy(st->cookie, &t, sizeof st->cookie);
	}

	if (st->literal) {
		struct sockaddr_in *in = (struct sockaddr_in *)&st->address;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&st->address;

		memset(&st->address, 0, sizeof st->address);
		st->address.ss_family = (sa_family_t)st->family;
		if (st->family == AF_INET6) {
			inet_pton(AF_INET6, st->target, &in6->sin6_addr);
			st->address_length = sizeof *in6;
		} else {
			inet_pton(AF_INET, st->target, &in->sin_addr);
			st->address_length = sizeof *in;
		}
		st->resolved_us = st->start_us;
		begin_sending(st);
		return;
	}
	if (st->resolver == NULL || st->resolver_base != base) {
		cares_loop_free(st->resolver);
		st->resolver = cares_loop_new(base, NULL, 0, &status);
		st->resolver_base = base;
		if (st->resolver == NULL) {
			snprintf(reason, sizeof reason, "icmp: cannot create a resolver: %s",
				 ares_strerror(status));
			run_end(st, PROBE_STATUS_INTERNAL_ERROR, reason);
			return;
		}
	}
	cares_loop_getaddrinfo(st->resolver, st->target, st->fallback ? AF_UNSPEC : st->family,
			       on_resolved, st);
}

static void icmp_cancel(struct probe_run *run, void *state)
{
	struct icmp_state *st = state;

	(void)run;
	if (st->run == NULL)
		return;
	if (st->socket != NULL)
		run_clear(st);
	st->run = NULL;
	if (st->resolver != NULL)
		cares_loop_cancel(st->resolver);
}

static const char *icmp_target(const void *state)
{
	const struct icmp_state *st = state;

	return st->target;
}

const struct probe_type probe_type_icmp = {
    .name = "icmp",
    .parse = icmp_parse,
    .start = icmp_start,
    .cancel = icmp_cancel,
    .free = icmp_free,
    .target = icmp_target,
};
