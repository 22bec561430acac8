/*
 * The curl multi handle on the libevent loop; see curlev.h for the contract.
 *
 * curl calls socket_changed() to say which events a socket needs and timer_changed() to
 * say when it wants to be woken; both only (re)arm libevent events, because curl forbids
 * calling back into the multi handle from inside them. The libevent callbacks then call
 * curl_multi_socket_action() and collect finished transfers with curl_multi_info_read().
 * A finished easy handle is removed from the multi handle before its owner's callback
 * runs, so the owner never frees a handle that curl still holds.
 */
#include "probes/curlev.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>

#include "collector/log.h"
#include "collector/xalloc.h"

/* What curlev stores in each easy handle's CURLOPT_PRIVATE while it is added. */
struct curlev_transfer {
	curlev_done_fn *done;
	void *arg;
};

/* A socket curl asked us to watch; attached to the socket with curl_multi_assign(). */
struct curlev_socket {
	struct event *ev;
	curl_socket_t fd;
};

static struct {
	CURLM *multi;
	struct event_base *base;
	struct event *timer;
	unsigned refs;
	unsigned active;
	bool dispatching;   /* inside collect_finished(): cleanup must wait */
	bool cleanup_later; /* the last reference went away while dispatching */
} curlev;

static void collect_finished(void)
{
	CURLMsg *msg;
	int left;

	curlev.dispatching = true;
	while ((msg = curl_multi_info_read(curlev.multi, &left)) != NULL) {
		struct curlev_transfer *t = NULL;
		CURL *easy = msg->easy_handle;
		CURLcode result = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
		curl_multi_remove_handle(curlev.multi, easy);
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		curlev.active--;
		if (t == NULL)
			continue;
		/* The owner may add, remove or free handles here, this one included. */
		t->done(easy, result, t->arg);
		free(t);
	}
	curlev.dispatching = false;
}

static void socket_ready(evutil_socket_t fd, short what, void *arg)
{
	int flags = 0;
	int running;

	(void)arg;
	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(curlev.multi, fd, flags, &running);
	collect_finished();
	if (curlev.cleanup_later && curlev.refs == 0)
		curlev_unref();
}

static void timer_fired(evutil_socket_t fd, short what, void *arg)
{
	int running;

	(void)fd;
	(void)what;
	(void)arg;
	curl_multi_socket_action(curlev.multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect_finished();
	if (curlev.cleanup_later && curlev.refs == 0)
		curlev_unref();
}

static int socket_changed(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
	struct curlev_socket *s = socketp;
	short kind = EV_PERSIST;

	(void)easy;
	(void)userp;
	if (action == CURL_POLL_REMOVE) {
		if (s != NULL) {
			event_free(s->ev);
			free(s);
			curl_multi_assign(curlev.multi, fd, NULL);
		}
		return 0;
	}
	if (action & CURL_POLL_IN)
		kind |= EV_READ;
	if (action & CURL_POLL_OUT)
		kind |= EV_WRITE;

	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->ev = event_new(curlev.base, fd, kind, socket_ready, NULL);
		curl_multi_assign(curlev.multi, fd, s);
	} else {
		/* Reassigning in place saves an allocation per change of interest. */
		event_del(s->ev);
		event_assign(s->ev, curlev.base, fd, kind, socket_ready, NULL);
	}
	event_add(s->ev, NULL);
	return 0;
}

static int timer_changed(CURLM *multi, long timeout_ms, void *userp)
{
	struct timeval tv;

	(void)multi;
	(void)userp;
	if (timeout_ms < 0) {
		evtimer_del(curlev.timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(curlev.timer, &tv);
	return 0;
}

static void curlev_cleanup(void)
{
	if (curlev.multi == NULL)
		return;
	/* curl_multi_cleanup() closes the cached connections and reports each socket removal. */
	curl_multi_cleanup(curlev.multi);
	event_free(curlev.timer);
	curlev.multi = NULL;
	curlev.timer = NULL;
	curlev.base = NULL;
	curlev.active = 0;
}

static int curlev_setup(struct event_base *base)
{
	static bool global_done;

	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			log_error("curlev", NULL, "curl_global_init failed");
			return -1;
		}
		global_done = true;
	}
	curlev.multi = curl_multi_init();
	if (curlev.multi == NULL) {
		log_error("curlev", NULL, "curl_multi_init failed");
		return -1;
	}
	curlev.base = base;
	curlev.timer = evtimer_new(base, timer_fired, NULL);
	curl_multi_setopt(curlev.multi, CURLMOPT_SOCKETFUNCTION, socket_changed);
	curl_multi_setopt(curlev.multi, CURLMOPT_TIMERFUNCTION, timer_changed);
	return 0;
}

void curlev_ref(void)
{
	curlev.refs++;
}

void curlev_unref(void)
{
	if (curlev.refs > 0)
		curlev.refs--;
	if (curlev.refs > 0)
		return;
	if (curlev.dispatching) {
		curlev.cleanup_later = true;
		return;
	}
	curlev.cleanup_later = false;
	curlev_cleanup();
}

int curlev_add(struct event_base *base, CURL *easy, curlev_done_fn *done, void *arg)
{
	struct curlev_transfer *t;

	if (curlev.multi != NULL && curlev.base != base) {
		if (curlev.active > 0) {
			log_error("curlev", NULL,
				  "transfer started on a second event base; rejected");
			return -1;
		}
		curlev_cleanup();
	}
	if (curlev.multi == NULL && curlev_setup(base) < 0)
		return -1;

	t = xcalloc(1, sizeof(*t));
	t->done = done;
	t->arg = arg;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
	if (curl_multi_add_handle(curlev.multi, easy) != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(t);
		return -1;
	}
	curlev.active++;
	return 0;
}

void curlev_remove(CURL *easy)
{
	struct curlev_transfer *t = NULL;

	if (curlev.multi == NULL)
		return;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
	if (t == NULL)
		return; /* finished already, or never added */
	curl_multi_remove_handle(curlev.multi, easy);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	curlev.active--;
	free(t);
}

unsigned curlev_active(void)
{
	return curlev.active;
}
