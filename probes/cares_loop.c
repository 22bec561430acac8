/*
 * Glue between a c-ares channel and a libevent loop. c-ares reports each socket it opens
 * or closes, and whether it wants to read or write it, through the socket-state
 * callback; each such socket gets one persistent event here that hands readiness back
 * to ares_process_fd(). Query timeouts and retries come from one timer set to
 * ares_timeout() after every call into c-ares.
 */
#include "probes/cares_loop.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "collector/xalloc.h"

struct cares_socket {
	ares_socket_t fd;
	struct event *event;
	struct cares_loop *loop;
};

struct cares_loop {
	struct event_base *base;
	ares_channel channel;
	struct event *timer;
	struct cares_socket **sockets;
	size_t socket_count;
	size_t socket_capacity;
};

static void loop_arm_timer(struct cares_loop *loop)
{
	struct timeval max = {3600, 0};
	struct timeval tv;

	if (loop->channel == NULL)
		return;
	if (ares_timeout(loop->channel, &max, &tv) == &max) {
		/* Nothing pending: no timer needed. */
		evtimer_del(loop->timer);
		return;
	}
	evtimer_add(loop->timer, &tv);
}

static void loop_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct cares_loop *loop = arg;

	(void)fd;
	(void)what;
	ares_process_fd(loop->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	loop_arm_timer(loop);
}

static void loop_on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct cares_socket *s = arg;
	struct cares_loop *loop = s->loop;
	ares_socket_t readable = (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD;
	ares_socket_t writable = (what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD;

	/* `s` may be freed inside ares_process_fd when c-ares closes the socket. */
	ares_process_fd(loop->channel, readable, writable);
	loop_arm_timer(loop);
}

static size_t loop_find(const struct cares_loop *loop, ares_socket_t fd)
{
	for (size_t i = 0; i < loop->socket_count; i++) {
		if (loop->sockets[i]->fd == fd)
			return i;
	}
	return loop->socket_count;
}

static void loop_remove(struct cares_loop *loop, size_t index)
{
	struct cares_socket *s = loop->sockets[index];

	event_free(s->event);
	free(s);
	loop->sockets[index] = loop->sockets[--loop->socket_count];
}

/* c-ares socket-state callback: (readable, writable) = (0, 0) means the socket closes. */
static void loop_on_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct cares_loop *loop = data;
	size_t i = loop_find(loop, fd);
	struct cares_socket *s;
	short what = EV_PERSIST;

	if (!readable && !writable) {
		if (i < loop->socket_count)
			loop_remove(loop, i);
		return;
	}
	if (readable)
		what |= EV_READ;
	if (writable)
		what |= EV_WRITE;
	if (i < loop->socket_count) {
		s = loop->sockets[i];
		event_del(s->event);
		event_assign(s->event, loop->base, fd, what, loop_on_socket, s);
		event_add(s->event, NULL);
		return;
	}
	s = xcalloc(1, sizeof *s);
	s->fd = fd;
	s->loop = loop;
	s->event = event_new(loop->base, fd, what, loop_on_socket, s);
	event_add(s->event, NULL);
	loop->sockets = xreallocarray_grow(loop->sockets, &loop->socket_capacity,
					   loop->socket_count + 1, sizeof *loop->sockets);
	loop->sockets[loop->socket_count++] = s;
}

struct cares_loop *cares_loop_new(struct event_base *base, struct ares_options *options,
				  int optmask, int *status)
{
	struct cares_loop *loop = xcalloc(1, sizeof *loop);
	struct ares_options copy;

	memset(&copy, 0, sizeof copy);
	if (options != NULL)
		copy = *options;
	copy.sock_state_cb = loop_on_state;
	copy.sock_state_cb_data = loop;
	loop->base = base;
	*status = ares_init_options(&loop->channel, &copy, optmask | ARES_OPT_SOCK_STATE_CB);
	if (*status != ARES_SUCCESS) {
		loop->channel = NULL;
		free(loop);
		return NULL;
	}
	loop->timer = evtimer_new(base, loop_on_timer, loop);
	return loop;
}

ares_channel cares_loop_channel(struct cares_loop *loop)
{
	return loop->channel;
}

void cares_loop_update(struct cares_loop *loop)
{
	loop_arm_timer(loop);
}

void cares_loop_cancel(struct cares_loop *loop)
{
	ares_cancel(loop->channel);
	loop_arm_timer(loop);
}

void cares_loop_getaddrinfo(struct cares_loop *loop, const char *host, int family,
			    ares_addrinfo_callback callback, void *arg)
{
	struct ares_addrinfo_hints hints;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	ares_getaddrinfo(loop->channel, host, NULL, &hints, callback, arg);
	loop_arm_timer(loop);
}

void cares_loop_free(struct cares_loop *loop)
{
	if (loop == NULL)
		return;
	/* ares_destroy reports each closed socket through loop_on_state, freeing its event. */
	ares_destroy(loop->channel);
	loop->channel = NULL;
	while (loop->socket_count > 0)
		loop_remove(loop, loop->socket_count - 1);
	free(loop->sockets);
	event_free(loop->timer);
	free(loop);
}
