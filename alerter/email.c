/*
 * The `email` receiver: one message per notification, submitted to a smarthost with
 * libesmtp (Debian 12 ships 1.1.0). libesmtp's calls block, so each receiver has a small
 * pool of worker threads that run the SMTP sessions. send() builds the message on the loop
 * thread, queues a job and arms a timer. A worker runs the session, classifies the result
 * and wakes the loop through an eventfd, and the loop calls done(). When the timer fires
 * first, the loop reports a timeout and the worker's late result is dropped.
 *
 * smtp_start_session() returning success only means that the protocol ran to its end: the
 * outcome comes from the reverse-path, recipient and message statuses, and from what the
 * event and monitor callbacks saw (TLS failures, the AUTH exchange, the last reply).
 * libesmtp does the SMTP dot-stuffing itself (protocol.c, cmd_data2, adds a "." to every
 * line that starts with one), and it splits the message into lines at CRLF only, which is
 * why email_message.c writes CRLF everywhere.
 */
#include "alerter/email.h"

#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <auth-client.h>
#include <libesmtp.h>

#include "alerter/email_message.h"
#include "alerter/receiver.h"
#include "collector/cfg.h"
#include "collector/log.h"
#include "collector/secret.h"
#include "collector/template.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"

/* Worker threads per receiver: a server that hangs blocks one thread, not every delivery. */
#define EMAIL_WORKERS_MAX 4
/* Deliveries waiting for a worker; send() fails with reason "queue_full" beyond this. */
#define EMAIL_QUEUE_MAX 64
/* Used when neither the `timeout` option nor the dispatcher bounds an attempt. */
#define EMAIL_DEFAULT_TIMEOUT_MS 30000
/* Maximum length of the password read from password_file. */
#define EMAIL_SECRET_MAX 4096
/* Server reply text kept for an outcome's detail. */
#define EMAIL_REPLY_MAX 200

enum email_tls {
	EMAIL_TLS_STARTTLS,      /* STARTTLS required, the certificate verified */
	EMAIL_TLS_OPPORTUNISTIC, /* STARTTLS when offered, the certificate not verified */
	EMAIL_TLS_NONE,          /* never STARTTLS */
};

/* The parsed options of one `email:` mapping. Loop thread only. */
struct email_state {
	char *host;
	char *server; /* "host:port", as smtp_set_server() takes it */
	enum email_tls tls;
	char *ca_file;
	char *username;
	char *password;
	char *hello;
	struct email_address from;
	struct email_address *to;
	size_t to_count;
	struct email_address *cc;
	size_t cc_count;
	struct template *subject;
	struct template *text;
	struct template *html;
	uint64_t timeout_ms; /* 0 when not set */
	char ids[256];
	struct throttle template_log; /* throttles the "template failed" warning */

	struct email_pool *pool; /* created at the first send() */
	struct event *notify;    /* the pool's eventfd, on `base` */
	struct event_base *base;
	struct email_job *jobs; /* deliveries in flight whose done() is still due */
};

/* ---- jobs and the worker pool ---- */

enum email_job_phase {
	EMAIL_JOB_QUEUED,
	EMAIL_JOB_RUNNING,
	EMAIL_JOB_DONE,
};

/*
 * One delivery. The first group of fields is written before the job is queued and only
 * read afterwards. The second group is under the pool's lock, and the third belongs to the
 * loop thread.
 */
struct email_job {
	char *host;
	char *server;
	enum email_tls tls;
	char *ca_file;
	char *hello;
	char *username;
	char *password;
	char *sender;
	char **recipients;
	size_t recipient_count;
	char *message;
	long step_timeout_ms;
	char ids[256];

	struct email_job *link; /* in the pool's queue or done list */
	enum email_job_phase phase;
	bool abandoned;   /* cancelled or timed out: the worker's outcome is dropped */
	const char *step; /* a string literal naming the SMTP command in progress */
	struct delivery_outcome outcome;

	struct email_state *st;
	struct email_job *prev;
	struct email_job *next;
	struct event *timer;
	receiver_done_fn *done;
	void *arg;
	int64_t timeout_ms;
};

/*
 * Shared by the loop and the workers, under `lock`. It outlives the receiver's state while
 * a worker is still in a session: `refs` counts the state and each thread, and the one
 * that drops the last reference destroys the pool.
 */
struct email_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int notify_fd; /* eventfd the workers increment when a job is done */
	unsigned refs;
	unsigned threads;
	unsigned idle;
	bool stopping;
	struct email_job *queue_head;
	struct email_job *queue_tail;
	size_t queued;
	struct email_job *done_head;
	struct email_job *done_tail;
	char ids[256];
};

static void strv_free_n(char **v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

static void secret_wipe_free(char *secret)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}

static void job_free(struct email_job *job)
{
	if (job == NULL)
		return;
	free(job->host);
	free(job->server);
	free(job->ca_file);
	free(job->hello);
	free(job->username);
	secret_wipe_free(job->password);
	free(job->sender);
	strv_free_n(job->recipients, job->recipient_count);
	free(job->message);
	free(job);
}

static void pool_destroy(struct email_pool *pool)
{
	close(pool->notify_fd);
	pthread_cond_destroy(&pool->wake);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

static void outcome_set(struct delivery_outcome *out, enum delivery_result result,
			const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void outcome_set(struct delivery_outcome *out, enum delivery_result result,
			const char *reason, const char *fmt, ...)
{
	va_list ap;

	memset(out, 0, sizeof *out);
	out->result = result;
	snprintf(out->reason, sizeof out->reason, "%s", reason);
	va_start(ap, fmt);
	vsnprintf(out->detail, sizeof out->detail, fmt, ap);
	va_end(ap);
}

/* ---- one SMTP session, on a worker thread ---- */

struct email_recipient_status {
	char mailbox[256];
	int code;
	char text[EMAIL_REPLY_MAX];
};

/* What the callbacks saw during one session. Worker thread only. */
struct email_session {
	struct email_job *job;
	struct email_pool *pool;
	char read_line[1024]; /* a server line not yet complete */
	size_t read_length;
	char last_reply[EMAIL_REPLY_MAX]; /* last complete reply line, "250 2.0.0 Ok" */
	bool auth_pending;                /* an AUTH command waits for its final reply */
	bool auth_attempted;
	bool auth_ok;
	char auth_reply[EMAIL_REPLY_MAX];
	char auth_mechanisms[128]; /* from the EHLO reply */
	char tls_problem[320];
	bool tls_active;
	bool tls_verify; /* the certificate and name were checked by OpenSSL */
	struct email_recipient_status *recipients;
	size_t recipient_count;
};

static void session_set_step(struct email_session *s, const char *step)
{
	pthread_mutex_lock(&s->pool->lock);
	s->job->step = step;
	pthread_mutex_unlock(&s->pool->lock);
}

/* Copies server text for a detail: printable ASCII only, CR and LF dropped at the end. */
static void copy_reply(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	for (; src != NULL && *src != '\0' && n + 1 < size; src++) {
		unsigned char c = (unsigned char)*src;

		if (c == '\r' || c == '\n')
			c = ' ';
		dst[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
}

/* One complete line from the server, CRLF removed. */
static void session_server_line(struct email_session *s, const char *line)
{
	bool final;
	int code;

	if (strlen(line) < 3 || line[0] < '0' || line[0] > '9')
		return;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	final = line[3] != '-';
	if (code == 250 && strlen(line) > 9 && strncasecmp(line + 4, "AUTH ", 5) == 0)
		copy_reply(s->auth_mechanisms, sizeof s->auth_mechanisms, line + 9);
	if (!final)
		return;
	/* The reply to QUIT says nothing about the delivery. */
	if (s->job->step == NULL || strcmp(s->job->step, "QUIT") != 0)
		copy_reply(s->last_reply, sizeof s->last_reply, line);
	if (!s->auth_pending || code == 334)
		return;
	s->auth_pending = false;
	s->auth_ok = code == 235;
	if (!s->auth_ok)
		copy_reply(s->auth_reply, sizeof s->auth_reply, line);
}

/* Names the command a client line starts; credentials are never copied. */
static void session_client_line(struct email_session *s, const char *line, size_t length)
{
	static const char *const verbs[] = {"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL",
					    "RCPT", "DATA", "RSET",     "QUIT"};

	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
		size_t n = strlen(verbs[i]);

		if (length >= n && strncasecmp(line, verbs[i], n) == 0 &&
		    (length == n || line[n] == ' ' || line[n] == '\r')) {
			session_set_step(s, verbs[i]);
			if (strcmp(verbs[i], "AUTH") == 0) {
				s->auth_pending = true;
				s->auth_attempted = true;
			}
			return;
		}
	}
}

/*
 * libesmtp's protocol monitor: the plain text of what is written and read, outside the
 * message data. Only reply lines and command names are kept; AUTH's arguments are not.
 */
static void session_monitor(const char *buf, int length, int writing, void *arg)
{
	struct email_session *s = arg;

	if (writing == SMTP_CB_HEADERS)
		return;
	if (writing) {
		for (int i = 0; i < length;) {
			const char *end = memchr(buf + i, '\n', (size_t)(length - i));
			int n = end != NULL ? (int)(end - (buf + i)) + 1 : length - i;

			session_client_line(s, buf + i, (size_t)n);
			i += n;
		}
		return;
	}
	for (int i = 0; i < length; i++) {
		if (buf[i] == '\n') {
			if (s->read_length > 0 && s->read_line[s->read_length - 1] == '\r')
				s->read_length--;
			s->read_line[s->read_length] = '\0';
			session_server_line(s, s->read_line);
			s->read_length = 0;
		} else if (s->read_length + 1 < sizeof s->read_line) {
			s->read_line[s->read_length++] = buf[i];
		}
	}
}

static void session_event(smtp_session_t session, int event, void *arg, ...)
{
	struct email_session *s = arg;
	va_list ap;
	int *ok;
	long result;

	(void)session;
	va_start(ap, arg);
	switch (event) {
	case SMTP_EV_STARTTLS_OK:
		s->tls_active = true;
		break;
	case SMTP_EV_EXTNA_STARTTLS:
		snprintf(s->tls_problem, sizeof s->tls_problem,
			 "the server does not offer STARTTLS, which tls: starttls requires "
			 "(last reply: %s)",
			 s->last_reply);
		break;
	case SMTP_EV_INVALID_PEER_CERTIFICATE:
		result = va_arg(ap, long);
		ok = va_arg(ap, int *);
		*ok = !s->tls_verify;
		if (s->tls_verify)
			snprintf(s->tls_problem, sizeof s->tls_problem,
				 "certificate verification failed: %s",
				 X509_verify_cert_error_string(result));
		break;
	case SMTP_EV_NO_PEER_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = !s->tls_verify;
		if (s->tls_verify)
			snprintf(s->tls_problem, sizeof s->tls_problem,
				 "the server sent no certificate");
		break;
	case SMTP_EV_WRONG_PEER_CERTIFICATE:
		/*
		 * libesmtp's own name check matches DNS names only. OpenSSL has already
		 * checked the name (or IP address) against the certificate, because the
		 * host is set on the verification parameters: a mismatch arrives above as
		 * an invalid certificate.
		 */
		ok = va_arg(ap, int *);
		*ok = 1;
		break;
	case SMTP_EV_WEAK_CIPHER:
		(void)va_arg(ap, int);
		ok = va_arg(ap, int *);
		*ok = 0;
		snprintf(s->tls_problem, sizeof s->tls_problem,
			 "the server chose a cipher of 40 bits or less");
		break;
	case SMTP_EV_NO_CLIENT_CERTIFICATE:
		ok = va_arg(ap, int *);
		*ok = 1;
		break;
	case SMTP_EV_UNUSABLE_CLIENT_CERTIFICATE:
		snprintf(s->tls_problem, sizeof s->tls_problem,
			 "libesmtp found an unusable client certificate under "
			 "~/.config/libesmtp/private/");
		break;
	default:
		break;
	}
	va_end(ap);
}

/* Sets the server name (SNI) before the ClientHello: libesmtp does not. */
static void session_tls_info(const SSL *ssl, int where, int ret)
{
	const char *host = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	(void)ret;
	if ((where & SSL_CB_HANDSHAKE_START) != 0 && host != NULL)
		SSL_set_tlsext_host_name((SSL *)ssl, host);
}

static bool host_is_ip(const char *host)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/* A TLS context for one session; NULL with the reason in s->tls_problem. */
static SSL_CTX *session_tls_context(struct email_session *s)
{
	const struct email_job *job = s->job;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	X509_VERIFY_PARAM *param;
	int loaded;

	if (ctx == NULL) {
		snprintf(s->tls_problem, sizeof s->tls_problem, "cannot create a TLS context: %s",
			 ERR_reason_error_string(ERR_get_error()));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/*
	 * NOTE: TLS 1.3 is off because libesmtp 1.1.0 deadlocks with it. A TLS 1.3 server
	 * sends session tickets right after the handshake; libesmtp sees the socket readable
	 * before it has flushed its EHLO, blocks reading a reply, and the server waits for
	 * the EHLO (reproduced with aiosmtpd in tests/integration/test_email.py). TLS 1.2
	 * has no such messages after the handshake.
	 */
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	/* The handshake completes either way; libesmtp then reports the verification. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (!host_is_ip(job->host)) {
		SSL_CTX_set_app_data(ctx, job->host);
		SSL_CTX_set_info_callback(ctx, session_tls_info);
	}
	s->tls_verify = job->tls == EMAIL_TLS_STARTTLS;
	if (!s->tls_verify)
		return ctx;
	param = SSL_CTX_get0_param(ctx);
	if (host_is_ip(job->host))
		X509_VERIFY_PARAM_set1_ip_asc(param, job->host);
	else
		X509_VERIFY_PARAM_set1_host(param, job->host, 0);
	if (job->ca_file != NULL)
		loaded = SSL_CTX_load_verify_locations(ctx, job->ca_file, NULL);
	else
		loaded = SSL_CTX_set_default_verify_paths(ctx);
	if (loaded != 1) {
		snprintf(
		    s->tls_problem, sizeof s->tls_problem, "cannot load CA certificates%s%s: %s",
		    job->ca_file != NULL ? " from " : "", job->ca_file != NULL ? job->ca_file : "",
		    ERR_reason_error_string(ERR_get_error()));
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int session_auth_interact(auth_client_request_t request, char **result, int fields,
				 void *arg)
{
	struct email_job *job = arg;
	static char empty[] = "";

	for (int i = 0; i < fields; i++) {
		if ((request[i].flags & AUTH_USER) != 0)
			result[i] = job->username;
		else if ((request[i].flags & AUTH_PASS) != 0)
			result[i] = job->password;
		else if ((request[i].flags & AUTH_REALM) != 0)
			result[i] = empty;
		else
			return 0;
	}
	return 1;
}

static void session_collect_recipient(smtp_recipient_t recipient, const char *mailbox, void *arg)
{
	struct email_session *s = arg;
	const smtp_status_t *status = smtp_recipient_status(recipient);
	struct email_recipient_status *r = &s->recipients[s->recipient_count++];

	snprintf(r->mailbox, sizeof r->mailbox, "%s", mailbox);
	r->code = status != NULL ? status->code : 0;
	copy_reply(r->text, sizeof r->text, status != NULL ? status->text : NULL);
}

static const char *class_reason(int code)
{
	return code >= 500 ? "smtp_5xx" : "smtp_4xx";
}

/* The outcome when smtp_start_session() failed: no server, or no usable session. */
static void classify_connection(struct email_session *s, struct delivery_outcome *out)
{
	const struct email_job *job = s->job;
	int err = smtp_errno();
	char text[256];

	smtp_strerror(err, text, sizeof text);
	if (err == -ECONNREFUSED) {
		outcome_set(out, DELIVERY_RETRY, "refused", "connection to %s refused",
			    job->server);
	} else if (err == -ETIMEDOUT) {
		outcome_set(out, DELIVERY_RETRY, "timeout", "connecting to %s timed out",
			    job->server);
	} else if (err == -ECONNRESET || err == -EPIPE) {
		outcome_set(out, DELIVERY_RETRY, "reset", "connection to %s reset during %s",
			    job->server, job->step != NULL ? job->step : "the greeting");
	} else if (err >= SMTP_ERR_EAI_ADDRFAMILY && err <= SMTP_ERR_EAI_SOCKTYPE) {
		outcome_set(out, DELIVERY_RETRY, "dns", "cannot resolve %s: %s", job->host, text);
	} else if (s->last_reply[0] >= '4' && s->last_reply[0] <= '5') {
		/* Before any transaction: about the connection, so a later attempt may work. */
		outcome_set(out, DELIVERY_RETRY, class_reason(atoi(s->last_reply)),
			    "%s rejected the session: %s", job->server, s->last_reply);
	} else if (err == SMTP_ERR_DROPPED_CONNECTION) {
		outcome_set(out, DELIVERY_RETRY, "reset", "%s closed the connection during %s",
			    job->server, job->step != NULL ? job->step : "the greeting");
	} else {
		outcome_set(out, DELIVERY_RETRY, "connect", "session with %s failed: %s",
			    job->server, text);
	}
}

/* The outcome of an AUTH that did not succeed, when the server then refused the mail. */
static void classify_auth(struct email_session *s, struct delivery_outcome *out)
{
	const struct email_job *job = s->job;

	if (s->auth_attempted)
		outcome_set(out, DELIVERY_RETRY, "auth", "authentication as %s failed: %s",
			    job->username,
			    s->auth_reply[0] != '\0' ? s->auth_reply : "no reply to AUTH");
	else if (s->auth_mechanisms[0] == '\0')
		outcome_set(out, DELIVERY_RETRY, "auth",
			    "%s offered no AUTH extension, so %s could not authenticate (last "
			    "reply: %s)",
			    job->server, job->username, s->last_reply);
	else
		outcome_set(out, DELIVERY_RETRY, "auth",
			    "no AUTH mechanism in common with %s, which offers %s (libesmtp has "
			    "PLAIN, LOGIN and CRAM-MD5)",
			    job->server, s->auth_mechanisms);
}

/* Appends "mailbox: reply" of each rejected recipient to buf. */
static void rejected_list(const struct email_session *s, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->recipient_count && used + 1 < size; i++) {
		const struct email_recipient_status *r = &s->recipients[i];
		int n;

		if (r->code >= 200 && r->code < 300)
			continue;
		if (r->code == 0)
			n = snprintf(buf + used, size - used, "%s<%s> (no reply)",
				     used > 0 ? "; " : "", r->mailbox);
		else
			n = snprintf(buf + used, size - used, "%s<%s> %d %s", used > 0 ? "; " : "",
				     r->mailbox, r->code, r->text);
		if (n < 0)
			break;
		used += (size_t)n < size - used ? (size_t)n : size - used - 1;
	}
}

/*
 * The outcome of a session that ran: MAIL, RCPT and DATA replies in that order. Replies to
 * the transaction map 4xx to RETRY and 5xx to PERMANENT. When some recipients accepted the
 * message and others rejected it, the outcome is OK with reason "smtp_partial": a retry
 * would send the message again to those who have it, and cannot help a 5xx recipient.
 */
static void classify_transaction(struct email_session *s, smtp_message_t message,
				 struct delivery_outcome *out)
{
	const struct email_job *job = s->job;
	const smtp_status_t *mail = smtp_reverse_path_status(message);
	const smtp_status_t *data = smtp_message_transfer_status(message);
	size_t accepted = 0;
	size_t temporary = 0;
	char reply[EMAIL_REPLY_MAX];
	char rejected[400];

	if (job->username != NULL && !s->auth_ok && (mail->code < 200 || mail->code >= 300)) {
		classify_auth(s, out);
		return;
	}
	if (mail->code == 0) {
		classify_connection(s, out);
		return;
	}
	if (mail->code >= 400) {
		copy_reply(reply, sizeof reply, mail->text);
		outcome_set(out, mail->code >= 500 ? DELIVERY_PERMANENT : DELIVERY_RETRY,
			    class_reason(mail->code), "MAIL FROM:<%s> rejected: %d %s", job->sender,
			    mail->code, reply);
		return;
	}
	smtp_enumerate_recipients(message, session_collect_recipient, s);
	for (size_t i = 0; i < s->recipient_count; i++) {
		int code = s->recipients[i].code;

		accepted += code >= 200 && code < 300;
		temporary += code == 0 || (code >= 400 && code < 500);
	}
	rejected_list(s, rejected, sizeof rejected);
	if (accepted == 0) {
		if (s->recipients[0].code == 0)
			classify_connection(s, out);
		else
			outcome_set(out, temporary > 0 ? DELIVERY_RETRY : DELIVERY_PERMANENT,
				    temporary > 0 ? "smtp_4xx" : "smtp_5xx",
				    "every recipient was rejected: %s", rejected);
		return;
	}
	copy_reply(reply, sizeof reply, data->text);
	if (data->code >= 200 && data->code < 300) {
		if (accepted < s->recipient_count)
			outcome_set(out, DELIVERY_OK, "smtp_partial",
				    "accepted for %zu of %zu recipients (%d %s); rejected: %s",
				    accepted, s->recipient_count, data->code, reply, rejected);
		else
			outcome_set(out, DELIVERY_OK, "smtp_2xx", "%d %s", data->code, reply);
	} else if (data->code >= 400) {
		outcome_set(out, data->code >= 500 ? DELIVERY_PERMANENT : DELIVERY_RETRY,
			    class_reason(data->code), "message rejected: %d %s", data->code, reply);
	} else {
		classify_connection(s, out);
	}
}

static void session_configure(struct email_session *s, smtp_session_t session, auth_context_t *auth,
			      SSL_CTX **ctx)
{
	struct email_job *job = s->job;
	static const int timeouts[] = {Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA,
				       Timeout_TRANSFER, Timeout_DATA2};

	smtp_set_server(session, job->server);
	if (job->hello != NULL)
		smtp_set_hostname(session, job->hello);
	/* Longer than the loop's own timer, which therefore decides; these end the session. */
	for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++)
		smtp_set_timeout(session, timeouts[i] | Timeout_OVERRIDE_RFC2822_MINIMUM,
				 job->step_timeout_ms);
	smtp_set_eventcb(session, session_event, s);
	smtp_set_monitorcb(session, session_monitor, s, 0);
	if (job->tls == EMAIL_TLS_NONE) {
		smtp_starttls_enable(session, Starttls_DISABLED);
	} else {
		*ctx = session_tls_context(s);
		if (*ctx != NULL)
			smtp_starttls_set_ctx(session, *ctx);
		smtp_starttls_enable(session, job->tls == EMAIL_TLS_STARTTLS ? Starttls_REQUIRED
									     : Starttls_ENABLED);
	}
	if (job->username != NULL) {
		*auth = auth_create_context();
		auth_set_mechanism_flags(*auth, AUTH_PLUGIN_PLAIN, 0);
		auth_set_interact_cb(*auth, session_auth_interact, job);
		smtp_auth_set_context(session, *auth);
	}
}

static pthread_once_t auth_once = PTHREAD_ONCE_INIT;

static void auth_init(void)
{
	/* Loads nothing yet: the SASL plugins are opened on first use. Never undone. */
	auth_client_init();
}

/* Runs one SMTP session for the job and writes its outcome. */
static void job_deliver(struct email_pool *pool, struct email_job *job)
{
	struct email_session s = {.job = job, .pool = pool};
	smtp_session_t session = smtp_create_session();
	auth_context_t auth = NULL;
	SSL_CTX *ctx = NULL;
	smtp_message_t message;

	pthread_once(&auth_once, auth_init);
	if (session == NULL) {
		outcome_set(&job->outcome, DELIVERY_RETRY, "internal",
			    "cannot create an SMTP session (out of memory)");
		return;
	}
	s.recipients = xcalloc(job->recipient_count, sizeof *s.recipients);
	session_configure(&s, session, &auth, &ctx);
	message = smtp_add_message(session);
	smtp_set_reverse_path(message, job->sender);
	smtp_set_message_str(message, job->message);
	for (size_t i = 0; i < job->recipient_count; i++)
		smtp_add_recipient(message, job->recipients[i]);
	session_set_step(&s, "connect");

	if (s.tls_problem[0] != '\0' && ctx == NULL)
		outcome_set(&job->outcome, DELIVERY_RETRY, "tls", "%s", s.tls_problem);
	else if (!smtp_start_session(session))
		classify_connection(&s, &job->outcome);
	else
		classify_transaction(&s, message, &job->outcome);
	/* A TLS failure ends the session quietly, whatever the statuses then say. */
	if (s.tls_problem[0] != '\0' && job->outcome.result != DELIVERY_OK)
		outcome_set(&job->outcome, DELIVERY_RETRY, "tls", "STARTTLS with %s: %s",
			    job->server, s.tls_problem);

	smtp_destroy_session(session);
	if (auth != NULL)
		auth_destroy_context(auth);
	SSL_CTX_free(ctx);
	free(s.recipients);
}

static void *worker_main(void *arg)
{
	struct email_pool *pool = arg;
	bool last;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		struct email_job *job;
		uint64_t one = 1;

		while (pool->queue_head == NULL && !pool->stopping) {
			pool->idle++;
			pthread_cond_wait(&pool->wake, &pool->lock);
			pool->idle--;
		}
		if (pool->stopping)
			break;
		job = pool->queue_head;
		pool->queue_head = job->link;
		if (pool->queue_head == NULL)
			pool->queue_tail = NULL;
		pool->queued--;
		job->link = NULL;
		job->phase = EMAIL_JOB_RUNNING;
		pthread_mutex_unlock(&pool->lock);

		job_deliver(pool, job);

		pthread_mutex_lock(&pool->lock);
		if (pool->stopping) {
			/* The receiver is gone: nobody waits for this outcome. */
			job_free(job);
			continue;
		}
		job->phase = EMAIL_JOB_DONE;
		if (pool->done_tail != NULL)
			pool->done_tail->link = job;
		else
			pool->done_head = job;
		pool->done_tail = job;
		if (write(pool->notify_fd, &one, sizeof one) < 0 && errno != EAGAIN)
			log_warn_errno("email", pool->ids, "cannot wake the event loop");
	}
	pool->threads--;
	last = --pool->refs == 0;
	pthread_mutex_unlock(&pool->lock);
	if (last)
		pool_destroy(pool);
	/* OpenSSL keeps random generator state per thread that used TLS; a detached thread
	 * must hand it back itself. */
	OPENSSL_thread_stop();
	return NULL;
}

/* Starts one more worker; called with the pool's lock held. Returns 0 or an errno. */
static int pool_spawn(struct email_pool *pool)
{
	pthread_attr_t attr;
	pthread_t thread;
	sigset_t all;
	sigset_t old;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Signals stay with the loop thread; a write to a closed socket then gets EPIPE. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&thread, &attr, worker_main, pool);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc == 0) {
		pool->threads++;
		pool->refs++;
	}
	return rc;
}

/* ---- the loop side ---- */

static void job_unlink(struct email_job *job)
{
	struct email_state *st = job->st;

	if (job->prev != NULL)
		job->prev->next = job->next;
	else
		st->jobs = job->next;
	if (job->next != NULL)
		job->next->prev = job->prev;
	job->prev = job->next = NULL;
	if (job->timer != NULL)
		event_free(job->timer);
	job->timer = NULL;
}

/* Removes a job still queued from the queue; called with the lock held. */
static void queue_remove(struct email_pool *pool, struct email_job *job)
{
	struct email_job *previous = NULL;

	for (struct email_job *j = pool->queue_head; j != NULL; previous = j, j = j->link) {
		if (j != job)
			continue;
		if (previous != NULL)
			previous->link = j->link;
		else
			pool->queue_head = j->link;
		if (pool->queue_tail == j)
			pool->queue_tail = previous;
		pool->queued--;
		return;
	}
}

/*
 * Detaches a job from the loop's list and from the pool. A queued job is freed at once;
 * a running or finished one is marked abandoned, and on_notify() frees it when the worker
 * hands it back.
 */
static void job_abandon(struct email_job *job)
{
	struct email_pool *pool = job->st->pool;
	bool free_now = false;

	job_unlink(job);
	pthread_mutex_lock(&pool->lock);
	if (job->phase == EMAIL_JOB_QUEUED) {
		queue_remove(pool, job);
		free_now = true;
	} else {
		job->abandoned = true;
	}
	pthread_mutex_unlock(&pool->lock);
	if (free_now)
		job_free(job);
}

static void log_outcome(const struct email_job *job, const struct delivery_outcome *o)
{
	static const char *const names[] = {
	    [DELIVERY_OK] = "ok", [DELIVERY_RETRY] = "retry", [DELIVERY_PERMANENT] = "permanent"};

	log_debug("email", job->ids, "delivery %s: %s (%s)", names[o->result], o->reason,
		  o->detail);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct email_job *job = arg;
	struct email_pool *pool = job->st->pool;
	receiver_done_fn *done = job->done;
	void *done_arg = job->arg;
	struct delivery_outcome outcome;
	const char *step;
	bool queued;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&pool->lock);
	step = job->step;
	queued = job->phase == EMAIL_JOB_QUEUED;
	pthread_mutex_unlock(&pool->lock);
	if (queued)
		outcome_set(&outcome, DELIVERY_RETRY, "timeout",
			    "no worker was free for %s within %lld ms (every worker is in a "
			    "session with the server)",
			    job->server, (long long)job->timeout_ms);
	else
		outcome_set(&outcome, DELIVERY_RETRY, "timeout",
			    "no reply from %s within %lld ms (during %s)", job->server,
			    (long long)job->timeout_ms, step != NULL ? step : "connect");
	log_outcome(job, &outcome);
	job_abandon(job);
	done(done_arg, &outcome);
}

/*
 * Hands finished jobs to their done() callbacks. A done() may send or cancel other
 * deliveries, but must not free the receiver's state.
 */
static void on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct email_state *st = arg;
	struct email_pool *pool = st->pool;
	struct email_job *ready;
	uint64_t count;

	(void)what;
	if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN)
		log_warn_errno("email", st->ids, "cannot read the workers' eventfd");
	pthread_mutex_lock(&pool->lock);
	ready = pool->done_head;
	pool->done_head = pool->done_tail = NULL;
	pthread_mutex_unlock(&pool->lock);
	while (ready != NULL) {
		struct email_job *job = ready;
		bool abandoned;

		ready = job->link;
		pthread_mutex_lock(&pool->lock);
		abandoned = job->abandoned;
		pthread_mutex_unlock(&pool->lock);
		if (!abandoned) {
			job_unlink(job);
			log_outcome(job, &job->outcome);
			job->done(job->arg, &job->outcome);
		}
		job_free(job);
	}
}

/* Creates the pool and its wake-up event on `base`; -1 with the reason in *failed. */
static int pool_ensure(struct email_state *st, struct event_base *base,
		       struct delivery_outcome *failed)
{
	struct email_pool *pool;

	if (st->pool != NULL && st->base == base)
		return 0;
	if (st->pool != NULL && st->jobs != NULL) {
		outcome_set(failed, DELIVERY_RETRY, "internal",
			    "deliveries are still in flight on another event loop");
		return -1;
	}
	if (st->notify != NULL) {
		event_free(st->notify);
		st->notify = NULL;
	}
	if (st->pool == NULL) {
		pool = xcalloc(1, sizeof *pool);
		pool->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (pool->notify_fd < 0) {
			outcome_set(failed, DELIVERY_RETRY, "internal",
				    "cannot create an eventfd: %s", strerror(errno));
			free(pool);
			return -1;
		}
		pthread_mutex_init(&pool->lock, NULL);
		pthread_cond_init(&pool->wake, NULL);
		pool->refs = 1;
		snprintf(pool->ids, sizeof pool->ids, "%s", st->ids);
		st->pool = pool;
	}
	st->notify = event_new(base, st->pool->notify_fd, EV_READ | EV_PERSIST, on_notify, st);
	if (st->notify == NULL || event_add(st->notify, NULL) < 0) {
		if (st->notify != NULL)
			event_free(st->notify);
		st->notify = NULL;
		outcome_set(failed, DELIVERY_RETRY, "internal",
			    "cannot register the workers' eventfd with the event loop");
		return -1;
	}
	st->base = base;
	return 0;
}

static struct email_job *job_create(struct email_state *st, const struct notification *n,
				    int64_t timeout_ms)
{
	struct email_job *job = xcalloc(1, sizeof *job);
	struct email_message_options o = {
	    .from = &st->from,
	    .to = st->to,
	    .to_count = st->to_count,
	    .cc = st->cc,
	    .cc_count = st->cc_count,
	    .subject = st->subject,
	    .text = st->text,
	    .html = st->html,
	};
	struct timespec now;
	char *warning = NULL;
	uint64_t suppressed = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	o.date_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	log_ids(job->ids, sizeof job->ids, "receiver", n->receiver != NULL ? n->receiver : "",
		"smarthost", st->server, NULL);
	job->message = email_message_build(n, &o, &warning);
	if (warning != NULL) {
		struct timespec mono;

		clock_gettime(CLOCK_MONOTONIC, &mono);
		if (throttle_fail(&st->template_log,
				  (uint64_t)mono.tv_sec * 1000 + (uint64_t)mono.tv_nsec / 1000000,
				  &suppressed))
			log_warn("email", job->ids, "%s (%llu similar suppressed)", warning,
				 (unsigned long long)suppressed);
		free(warning);
	}
	job->host = xstrdup(st->host);
	job->server = xstrdup(st->server);
	job->tls = st->tls;
	job->ca_file = st->ca_file != NULL ? xstrdup(st->ca_file) : NULL;
	job->hello = st->hello != NULL ? xstrdup(st->hello) : NULL;
	job->username = st->username != NULL ? xstrdup(st->username) : NULL;
	job->password = st->password != NULL ? xstrdup(st->password) : NULL;
	job->sender = xstrdup(st->from.address);
	job->recipient_count = st->to_count + st->cc_count;
	job->recipients = xcalloc(job->recipient_count, sizeof *job->recipients);
	for (size_t i = 0; i < st->to_count; i++)
		job->recipients[i] = xstrdup(st->to[i].address);
	for (size_t i = 0; i < st->cc_count; i++)
		job->recipients[st->to_count + i] = xstrdup(st->cc[i].address);
	job->timeout_ms = timeout_ms;
	job->step_timeout_ms = (long)(timeout_ms + 1000);
	job->phase = EMAIL_JOB_QUEUED;
	job->st = st;
	return job;
}

static struct receiver_op *email_send(void *state, struct event_base *base,
				      const struct notification *n, int64_t timeout_ms,
				      receiver_done_fn *done, void *arg,
				      struct delivery_outcome *failed)
{
	struct email_state *st = state;
	struct email_pool *pool;
	struct email_job *job;
	struct timeval tv;
	int rc = 0;

	if (pool_ensure(st, base, failed) < 0)
		return NULL;
	pool = st->pool;
	if (st->timeout_ms > 0 && (timeout_ms <= 0 || (int64_t)st->timeout_ms < timeout_ms))
		timeout_ms = (int64_t)st->timeout_ms;
	if (timeout_ms <= 0)
		timeout_ms = EMAIL_DEFAULT_TIMEOUT_MS;

	pthread_mutex_lock(&pool->lock);
	if (pool->queued >= EMAIL_QUEUE_MAX) {
		pthread_mutex_unlock(&pool->lock);
		outcome_set(failed, DELIVERY_RETRY, "queue_full",
			    "%d deliveries to %s are already waiting for a worker", EMAIL_QUEUE_MAX,
			    st->server);
		return NULL;
	}
	pthread_mutex_unlock(&pool->lock);

	job = job_create(st, n, timeout_ms);
	job->done = done;
	job->arg = arg;
	job->timer = evtimer_new(base, on_timeout, job);
	tv.tv_sec = (time_t)(timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(timeout_ms % 1000 * 1000);
	if (job->timer == NULL || evtimer_add(job->timer, &tv) < 0) {
		if (job->timer != NULL)
			event_free(job->timer);
		job_free(job);
		outcome_set(failed, DELIVERY_RETRY, "internal",
			    "cannot add a timer to the event loop");
		return NULL;
	}

	pthread_mutex_lock(&pool->lock);
	if (pool->queue_tail != NULL)
		pool->queue_tail->link = job;
	else
		pool->queue_head = job;
	pool->queue_tail = job;
	pool->queued++;
	if (pool->queued > pool->idle && pool->threads < EMAIL_WORKERS_MAX)
		rc = pool_spawn(pool);
	if (rc != 0 && pool->threads == 0) {
		queue_remove(pool, job);
		pthread_mutex_unlock(&pool->lock);
		event_free(job->timer);
		job_free(job);
		outcome_set(failed, DELIVERY_RETRY, "internal", "cannot start a worker thread: %s",
			    strerror(rc));
		return NULL;
	}
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	if (rc != 0)
		log_warn("email", st->ids, "cannot start another worker thread: %s; %u keep going",
			 strerror(rc), pool->threads);

	job->next = st->jobs;
	if (st->jobs != NULL)
		st->jobs->prev = job;
	st->jobs = job;
	/* The job is the operation; receiver_op is only a name for it outside this file. */
	return (struct receiver_op *)job;
}

static void email_cancel(struct receiver_op *op)
{
	job_abandon((struct email_job *)op);
}

static void addresses_free(struct email_address *v, size_t count)
{
	for (size_t i = 0; v != NULL && i < count; i++)
		email_address_clear(&v[i]);
	free(v);
}

static void email_free(void *state)
{
	struct email_state *st = state;

	if (st == NULL)
		return;
	if (st->notify != NULL)
		event_free(st->notify);
	if (st->pool != NULL) {
		struct email_pool *pool = st->pool;
		struct email_job *done;
		bool last;

		while (st->jobs != NULL)
			job_unlink(st->jobs);
		pthread_mutex_lock(&pool->lock);
		pool->stopping = true;
		/* Queued jobs never started; running ones are freed by their worker. */
		while (pool->queue_head != NULL) {
			struct email_job *job = pool->queue_head;

			pool->queue_head = job->link;
			job_free(job);
		}
		pool->queue_tail = NULL;
		pool->queued = 0;
		done = pool->done_head;
		pool->done_head = pool->done_tail = NULL;
		pthread_cond_broadcast(&pool->wake);
		last = --pool->refs == 0;
		pthread_mutex_unlock(&pool->lock);
		while (done != NULL) {
			struct email_job *job = done;

			done = job->link;
			job_free(job);
		}
		if (last)
			pool_destroy(pool);
	}
	free(st->host);
	free(st->server);
	free(st->ca_file);
	free(st->username);
	secret_wipe_free(st->password);
	free(st->hello);
	email_address_clear(&st->from);
	addresses_free(st->to, st->to_count);
	addresses_free(st->cc, st->cc_count);
	template_free(st->subject);
	template_free(st->text);
	template_free(st->html);
	free(st);
}

/* ---- options ---- */

/* Reads `smarthost`, HOST[:PORT]; the port defaults to 587 with STARTTLS, else 25. */
static int parse_smarthost(struct cfg_map *m, struct email_state *st)
{
	char q[CFG_QUOTE_SIZE];
	char *value = NULL;
	const char *colon;
	long port;
	int rc = cfg_get_string(m, "smarthost", &value);

	if (rc == 0)
		cfg_error(m, NULL, "missing key smarthost: the SMTP server as HOST or HOST:PORT");
	if (rc != 1)
		return -1;
	cfg_quote(value, q, sizeof q);
	colon = strchr(value, ':');
	if (value[0] == '[' || (colon != NULL && strchr(colon + 1, ':') != NULL)) {
		cfg_error(m, "smarthost",
			  "%s: IPv6 addresses are not accepted, because libesmtp splits HOST:PORT "
			  "at the first colon; use a host name that resolves to the address",
			  q);
		free(value);
		return -1;
	}
	if (colon == value || value[0] == '\0' || value[strcspn(value, " \t/@")] != '\0') {
		cfg_error(m, "smarthost",
			  "%s is not HOST or HOST:PORT (example: mail.example.org:587)", q);
		free(value);
		return -1;
	}
	if (colon != NULL) {
		char *end;

		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535) {
			cfg_error(m, "smarthost", "%s has an invalid port; accepted: 1 to 65535",
				  q);
			free(value);
			return -1;
		}
		st->host = xstrndup(value, (size_t)(colon - value));
	} else {
		port = st->tls == EMAIL_TLS_STARTTLS ? 587 : 25;
		st->host = xstrdup(value);
	}
	st->server = xasprintf("%s:%ld", st->host, port);
	free(value);
	return 0;
}

static int parse_tls(struct cfg_map *m, struct email_state *st)
{
	char q[CFG_QUOTE_SIZE];
	char *value = NULL;
	int rc = cfg_get_string(m, "tls", &value);

	st->tls = EMAIL_TLS_STARTTLS;
	if (rc != 1)
		return rc;
	if (strcmp(value, "starttls") == 0) {
		st->tls = EMAIL_TLS_STARTTLS;
	} else if (strcmp(value, "opportunistic") == 0) {
		st->tls = EMAIL_TLS_OPPORTUNISTIC;
	} else if (strcmp(value, "none") == 0) {
		st->tls = EMAIL_TLS_NONE;
	} else {
		cfg_error(m, "tls",
			  "invalid value %s; accepted: starttls, opportunistic, none (TLS from "
			  "the first byte, as on port 465, is not available: libesmtp 1.1 only "
			  "does STARTTLS)",
			  cfg_quote(value, q, sizeof q));
		rc = -1;
	}
	free(value);
	return rc;
}

/* Checks that ca_file holds at least one certificate OpenSSL can load. */
static int parse_ca_file(struct cfg_map *m, struct email_state *st)
{
	char q[CFG_QUOTE_SIZE];
	int rc = cfg_get_string(m, "ca_file", &st->ca_file);
	SSL_CTX *ctx;

	if (rc != 1)
		return rc;
	cfg_quote(st->ca_file, q, sizeof q);
	if (st->tls != EMAIL_TLS_STARTTLS) {
		cfg_error(m, "ca_file",
			  "is only used with tls: starttls, the mode that verifies the server's "
			  "certificate; remove it or set tls: starttls");
		return -1;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, st->ca_file, NULL) != 1) {
		cfg_error(m, "ca_file", "cannot load CA certificates from %s: %s", q,
			  ERR_reason_error_string(ERR_get_error()));
		SSL_CTX_free(ctx);
		ERR_clear_error();
		return -1;
	}
	SSL_CTX_free(ctx);
	return 0;
}

static int parse_auth(struct cfg_map *m, struct email_state *st)
{
	struct cfg_map auth;
	char *password_file = NULL;
	int rc = cfg_get_map(m, "auth", &auth);
	int failed = 0;

	if (rc != 1) {
		cfg_map_finish(&auth);
		return rc;
	}
	if (cfg_get_string(&auth, "username", &st->username) == 0)
		cfg_error(&auth, NULL, "missing key username: the account to log in as");
	rc = cfg_get_string(&auth, "password_file", &password_file);
	if (rc == 0)
		cfg_error(&auth, NULL,
			  "missing key password_file: a file holding the password on one line");
	if (rc == 1) {
		st->password =
		    secret_read_file(&auth, "password_file", password_file, EMAIL_SECRET_MAX);
	}
	if (st->username == NULL || st->password == NULL)
		failed = -1;
	cfg_map_finish(&auth);
	free(password_file);
	if (failed == 0 && st->tls != EMAIL_TLS_STARTTLS) {
		/* PLAIN and LOGIN send the password as base64: only over verified TLS. */
		cfg_error(m, "auth",
			  "needs tls: starttls, so that the password never travels unencrypted "
			  "or to an unverified server");
		failed = -1;
	}
	return failed;
}

static int parse_address(struct cfg_map *m, const char *key, const char *text,
			 struct email_address *out)
{
	char q[CFG_QUOTE_SIZE];
	char *error = NULL;

	if (email_address_parse(text, out, &error) == 0)
		return 0;
	cfg_error(m, key, "invalid address %s: %s", cfg_quote(text, q, sizeof q), error);
	free(error);
	return -1;
}

/* Reads a list of addresses; a single string counts as a list of one. */
static int parse_address_list(struct cfg_map *m, const char *key, struct email_address **out,
			      size_t *count)
{
	char **list = NULL;
	size_t n = 0;
	int rc;
	int failed = 0;

	if (cfg_kind(m, key) == CFG_KIND_SCALAR) {
		list = xcalloc(2, sizeof *list);
		rc = cfg_get_string(m, key, &list[0]);
		n = rc == 1 ? 1 : 0;
	} else {
		rc = cfg_get_string_list(m, key, &list, &n);
	}
	if (rc != 1) {
		cfg_strv_free(list);
		return rc;
	}
	if (n == 0) {
		cfg_error(m, key, "empty list: give at least one address");
		cfg_strv_free(list);
		return -1;
	}
	*out = xcalloc(n, sizeof **out);
	for (size_t i = 0; i < n; i++) {
		if (parse_address(m, key, list[i], &(*out)[i]) < 0)
			failed = -1;
	}
	*count = n;
	cfg_strv_free(list);
	return failed < 0 ? -1 : 1;
}

static int parse_template(struct cfg_map *m, const char *key, struct template **out)
{
	struct expr_location loc = {cfg_file_name(m->cfg), 0, 0};
	char *text = NULL;
	char *error = NULL;
	int rc = cfg_get_string(m, key, &text);

	if (rc != 1)
		return rc;
	cfg_value_position(m, key, &loc.line, &loc.column);
	*out = template_parse(text, &loc, &error);
	if (*out == NULL) {
		cfg_error(m, key, "%s", error);
		rc = -1;
	}
	free(error);
	free(text);
	return rc;
}

static int parse_hello(struct cfg_map *m, struct email_state *st)
{
	char q[CFG_QUOTE_SIZE];
	int rc = cfg_get_string(m, "hello", &st->hello);

	if (rc != 1)
		return rc;
	if (st->hello[0] == '\0' || st->hello[strcspn(st->hello, " \t\r\n<>")] != '\0') {
		cfg_error(m, "hello",
			  "%s is not a host name for EHLO (example: tocsin.example.org)",
			  cfg_quote(st->hello, q, sizeof q));
		return -1;
	}
	return 1;
}

static int email_parse(struct cfg_map *options, void **state)
{
	struct email_state *st = xcalloc(1, sizeof *st);
	char *from = NULL;
	int failed = 0;
	int rc;

	throttle_init(&st->template_log, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	if (parse_tls(options, st) < 0)
		failed = -1;
	if (parse_smarthost(options, st) < 0)
		failed = -1;
	if (parse_ca_file(options, st) < 0)
		failed = -1;
	if (parse_auth(options, st) < 0)
		failed = -1;
	rc = cfg_get_string(options, "from", &from);
	if (rc == 0)
		cfg_error(options, NULL,
			  "missing key from: the sender address, such as "
			  "\"tocsin <alerts@example.org>\"");
	if (rc != 1 || parse_address(options, "from", from, &st->from) < 0)
		failed = -1;
	rc = parse_address_list(options, "to", &st->to, &st->to_count);
	if (rc == 0)
		cfg_error(options, NULL, "missing key to: the recipient addresses");
	if (rc != 1)
		failed = -1;
	if (parse_address_list(options, "cc", &st->cc, &st->cc_count) < 0)
		failed = -1;
	if (parse_template(options, "subject", &st->subject) < 0)
		failed = -1;
	if (parse_template(options, "text", &st->text) < 0)
		failed = -1;
	if (parse_template(options, "html", &st->html) < 0)
		failed = -1;
	if (parse_hello(options, st) < 0)
		failed = -1;
	rc = cfg_get_duration_ms(options, "timeout", &st->timeout_ms);
	if (rc == 1 && st->timeout_ms == 0)
		cfg_error(options, "timeout", "must be more than 0 (example: 30s)");
	if (rc < 0 || (rc == 1 && st->timeout_ms == 0))
		failed = -1;
	free(from);
	if (failed < 0) {
		email_free(st);
		return -1;
	}
	log_ids(st->ids, sizeof st->ids, "smarthost", st->server, NULL);
	*state = st;
	return 0;
}

const struct receiver_type receiver_email = {
    .name = "email",
    .parse = email_parse,
    .free = email_free,
    .send = email_send,
    .cancel = email_cancel,
};
