/*
 * The `tcp` probe: connects to HOST:PORT, optionally starts TLS, and walks a list of
 * query_response steps (send a line, expect a line matching a regular expression,
 * switch to TLS), as blackbox_exporter's tcp prober does. That is enough to check the
 * banners and greetings of SMTP (with STARTTLS), IMAP, POP3, Redis or SSH. Names are
 * resolved through c-ares and all I/O runs on libevent bufferevents, TLS through
 * bufferevent_openssl, so a run never blocks the loop.
 */
#include "probes/tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/cfg.h"
#include "collector/log.h"
#include "collector/posix_regex.h"
#include "collector/xalloc.h"
#include "probes/cares_loop.h"
#include "probes/probe.h"

#define TCP_HOST_MAX 256
/* Maximum length of the line quoted in the reason of a failed expect step. */
#define TCP_LINE_KEEP 80

enum tcp_step_kind {
	TCP_STEP_SEND,
	TCP_STEP_EXPECT,
	TCP_STEP_STARTTLS,
};

struct tcp_step {
	enum tcp_step_kind kind;
	char *text; /* send: the bytes to write; expect: the expression's source */
	regex_t regex;
	bool compiled;
};

struct tcp_state {
	char host[TCP_HOST_MAX];
	unsigned port;
	bool literal;
	int family; /* preferred: AF_INET or AF_INET6 */
	bool fallback;
	bool tls;
	bool insecure_skip_verify;
	char *server_name; /* for SNI and verification; NULL: the host unless it is an IP */
	SSL_CTX *ssl_ctx;  /* when `tls` or a starttls step is configured */
	struct tcp_step *steps;
	size_t step_count;
	uint64_t expect_idle_ms;
	char target[TCP_HOST_MAX + 16];

	struct cares_loop *resolver;
	struct event_base *resolver_base;

	/* The run in flight. */
	struct probe_run *run;
	struct bufferevent *bev;
	struct event *idle_timer;
	size_t step;
	bool handshaking;
	bool finishing; /* all steps done; waiting for the output to drain */
	bool tls_done;
	int address_family;
	uint64_t start_us;
	unsigned lines_seen; /* in the current expect step */
	char last_line[TCP_LINE_KEEP + 4];
};

static const struct metric_desc m_success = {
    "probe_success", "Whether the probe succeeded (1) or failed (0).", METRIC_GAUGE};
static const struct metric_desc m_duration = {
    "probe_duration_seconds", "How long the probe took to complete, in seconds.", METRIC_GAUGE};
static const struct metric_desc m_ip_protocol = {
    "probe_ip_protocol", "IP version of the address connected to: 4 or 6.", METRIC_GAUGE};
static const struct metric_desc m_regex = {"probe_failed_due_to_regex",
					   "1 when an expect step did not match.", METRIC_GAUGE};
static const struct metric_desc m_expiry = {
    "probe_ssl_earliest_cert_expiry",
    "Earliest not-after time of the certificates the server sent, in seconds since the Unix "
    "epoch.",
    METRIC_GAUGE};
static const struct metric_desc m_tls_version = {
    "probe_tls_version_info", "TLS version negotiated, as the `version` label.", METRIC_GAUGE};

/* Options */

int tcp_parse_target(const char *text, char *host, size_t host_size, unsigned *port)
{
	const char *colon;
	size_t length;
	char *end;
	unsigned long value;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		length = (size_t)(close - text - 1);
		text++;
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL || memchr(text, ':', (size_t)(colon - text)) != NULL)
			return -1; /* no port, or an IPv6 address without brackets */
		length = (size_t)(colon - text);
	}
	if (length == 0 || length >= host_size)
		return -1;
	if (colon[1] < '0' || colon[1] > '9')
		return -1;
	errno = 0;
	value = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || value == 0 || value > 65535)
		return -1;
	memcpy(host, text, length);
	host[length] = '\0';
	*port = (unsigned)value;
	return 0;
}

char *tcp_send_text(const char *text)
{
	size_t length = strlen(text);

	if (length > 0 && text[length - 1] == '\n')
		return xstrdup(text);
	return xasprintf("%s\r\n", text);
}

static int parse_target(struct cfg_map *options, struct tcp_state *st)
{
	char *value = NULL;
	char quoted[CFG_QUOTE_SIZE];
	unsigned char addr[16];
	int got = cfg_get_string(options, "target", &value);
	int rc = 0;

	if (got == 0)
		cfg_error(options, NULL,
			  "target: missing: expected HOST:PORT such as db.example:6379");
	if (got <= 0)
		return -1;
	if (tcp_parse_target(value, st->host, sizeof st->host, &st->port) < 0) {
		cfg_error(options, "target",
			  "invalid target %s: expected HOST:PORT or [IPV6]:PORT with a port from 1 "
			  "to 65535",
			  cfg_quote(value, quoted, sizeof quoted));
		rc = -1;
	} else if (inet_pton(AF_INET, st->host, addr) == 1) {
		st->literal = true;
		st->family = AF_INET;
	} else if (inet_pton(AF_INET6, st->host, addr) == 1) {
		st->literal = true;
		st->family = AF_INET6;
	}
	snprintf(st->target, sizeof st->target, "%s", value);
	free(value);
	return rc;
}

static int parse_ip_protocol(struct cfg_map *options, struct tcp_state *st)
{
	char *value = NULL;
	char quoted[CFG_QUOTE_SIZE];
	int got = cfg_get_string(options, "ip_protocol", &value);
	int rc = 0;

	if (!st->literal)
		st->family = AF_INET;
	if (got > 0) {
		int family = strcmp(value, "ip4") == 0   ? AF_INET
			     : strcmp(value, "ip6") == 0 ? AF_INET6
							 : 0;

		if (family == 0) {
			cfg_error(options, "ip_protocol",
				  "invalid ip_protocol %s: expected ip4 or ip6",
				  cfg_quote(value, quoted, sizeof quoted));
			rc = -1;
		} else if (st->literal && family != st->family) {
			cfg_error(options, "ip_protocol",
				  "ip_protocol %s contradicts the address in target %s",
				  cfg_quote(value, quoted, sizeof quoted), st->target);
			rc = -1;
		} else {
			st->family = family;
		}
	} else if (got < 0) {
		rc = -1;
	}
	free(value);
	st->fallback = true;
	if (cfg_get_bool(options, "ip_protocol_fallback", &st->fallback) < 0)
		rc = -1;
	return rc;
}

static int parse_step(struct cfg_seq *seq, size_t index, struct tcp_step *step)
{
	struct cfg_map item;
	char message[128];
	char quoted[CFG_QUOTE_SIZE];
	char *text = NULL;
	bool starttls = false;
	int kinds = 0;
	int rc = 0;
	int got;

	if (cfg_seq_map(seq, index, &item) != 1) {
		cfg_map_discard(&item);
		return -1;
	}
	if ((got = cfg_get_string(&item, "send", &text)) > 0) {
		step->kind = TCP_STEP_SEND;
		step->text = tcp_send_text(text);
		free(text);
		kinds++;
	} else if (got < 0) {
		rc = -1;
	}
	if ((got = cfg_get_string(&item, "expect", &text)) > 0) {
		int err = posix_regex_compile(&step->regex, text, REG_EXTENDED | REG_NOSUB, message,
					      sizeof message);

		step->kind = TCP_STEP_EXPECT;
		if (err != 0) {
			cfg_error(
			    &item, "expect",
			    "invalid regular expression %s: %s (POSIX extended syntax expected)",
			    cfg_quote(text, quoted, sizeof quoted), message);
			rc = -1;
		}
		step->compiled = err == 0;
		free(step->text);
		step->text = text;
		kinds++;
	} else if (got < 0) {
		rc = -1;
	}
	if ((got = cfg_get_bool(&item, "starttls", &starttls)) > 0 && starttls) {
		step->kind = TCP_STEP_STARTTLS;
		kinds++;
	} else if (got < 0) {
		rc = -1;
	}
	if (rc == 0 && kinds != 1)
		cfg_error(&item, NULL,
			  "a step needs exactly one of send: TEXT, expect: REGEX or starttls: true "
			  "(found %d)",
			  kinds);
	cfg_map_finish(&item);
	return rc == 0 && kinds == 1 ? 0 : -1;
}

static int parse_steps(struct cfg_map *options, struct tcp_state *st)
{
	struct cfg_seq seq;
	int got = cfg_get_seq(options, "query_response", &seq);
	int rc = 0;

	if (got <= 0)
		return got;
	st->step_count = cfg_seq_count(&seq);
	st->steps = xcalloc(st->step_count + 1, sizeof *st->steps);
	for (size_t i = 0; i < st->step_count; i++) {
		if (parse_step(&seq, i, &st->steps[i]) < 0)
			rc = -1;
	}
	return rc;
}

/* Records the OpenSSL error queue's first entry as a config error on `key`. */
static void tls_option_error(struct cfg_map *m, const char *key, const char *what, const char *path)
{
	char message[160];
	char quoted[CFG_QUOTE_SIZE];

	ERR_error_string_n(ERR_get_error(), message, sizeof message);
	ERR_clear_error();
	cfg_error(m, key, "cannot load %s from %s: %s", what,
		  cfg_quote(path, quoted, sizeof quoted), message);
}

static int parse_tls(struct cfg_map *options, struct tcp_state *st, bool needed)
{
	struct cfg_map sub;
	char *ca_file = NULL;
	char *cert_file = NULL;
	char *key_file = NULL;
	int rc = 0;
	int got;

	if (cfg_get_bool(options, "tls", &st->tls) < 0)
		rc = -1;
	got = cfg_get_map(options, "tls_config", &sub);
	if (got == 1) {
		if (cfg_get_string(&sub, "ca_file", &ca_file) < 0 ||
		    cfg_get_string(&sub, "cert_file", &cert_file) < 0 ||
		    cfg_get_string(&sub, "key_file", &key_file) < 0 ||
		    cfg_get_string(&sub, "server_name", &st->server_name) < 0 ||
		    cfg_get_bool(&sub, "insecure_skip_verify", &st->insecure_skip_verify) < 0)
			rc = -1;
		if ((cert_file == NULL) != (key_file == NULL)) {
			cfg_error(&sub, cert_file == NULL ? "key_file" : "cert_file",
				  "cert_file and key_file must be given together");
			rc = -1;
		}
	} else if (got < 0) {
		rc = -1;
	}
	if (rc == 0 && (st->tls || needed)) {
		st->ssl_ctx = SSL_CTX_new(TLS_client_method());
		/* Verification runs but never aborts the handshake: the run then reads the
		 * certificates (their expiry is exported either way) and decides itself. */
		SSL_CTX_set_verify(st->ssl_ctx, SSL_VERIFY_NONE, NULL);
		if (ca_file != NULL) {
			if (SSL_CTX_load_verify_locations(st->ssl_ctx, ca_file, NULL) != 1) {
				tls_option_error(&sub, "ca_file", "CA certificates", ca_file);
				rc = -1;
			}
		} else {
			SSL_CTX_set_default_verify_paths(st->ssl_ctx);
		}
		if (cert_file != NULL && key_file != NULL) {
			if (SSL_CTX_use_certificate_chain_file(st->ssl_ctx, cert_file) != 1) {
				tls_option_error(&sub, "cert_file", "a certificate", cert_file);
				rc = -1;
			} else if (SSL_CTX_use_PrivateKey_file(st->ssl_ctx, key_file,
							       SSL_FILETYPE_PEM) != 1) {
				tls_option_error(&sub, "key_file", "a private key", key_file);
				rc = -1;
			}
		}
	}
	cfg_map_finish(&sub);
	free(ca_file);
	free(cert_file);
	free(key_file);
	return rc;
}

static void tcp_free(void *state)
{
	struct tcp_state *st = state;

	if (st == NULL)
		return;
	cares_loop_free(st->resolver);
	if (st->bev != NULL)
		bufferevent_free(st->bev);
	if (st->idle_timer != NULL)
		event_free(st->idle_timer);
	for (size_t i = 0; i < st->step_count; i++) {
		if (st->steps[i].compiled)
			regfree(&st->steps[i].regex);
		free(st->steps[i].text);
	}
	free(st->steps);
	free(st->server_name);
	if (st->ssl_ctx != NULL)
		SSL_CTX_free(st->ssl_ctx);
	free(st);
}

static int tcp_parse(struct cfg_map *options, void **state)
{
	struct tcp_state *st = xcalloc(1, sizeof *st);
	bool starttls = false;
	int rc = 0;

	if (parse_target(options, st) < 0)
		rc = -1;
	if (parse_ip_protocol(options, st) < 0)
		rc = -1;
	if (parse_steps(options, st) < 0)
		rc = -1;
	for (size_t i = 0; i < st->step_count; i++)
		starttls = starttls || st->steps[i].kind == TCP_STEP_STARTTLS;
	if (parse_tls(options, st, starttls) < 0)
		rc = -1;
	st->expect_idle_ms = 1000;
	if (cfg_get_duration_ms(options, "expect_idle_timeout", &st->expect_idle_ms) < 0)
		rc = -1;
	if (rc < 0) {
		tcp_free(st);
		return -1;
	}
	*state = st;
	return 0;
}

/* Run */

static void emit(struct probe_run *run, const struct metric_desc *desc, double value)
{
	probe_run_emit(run, desc, NULL, 0, value);
}

static void run_clear(struct tcp_state *st)
{
	if (st->bev != NULL) {
		bufferevent_free(st->bev);
		st->bev = NULL;
	}
	if (st->idle_timer != NULL)
		evtimer_del(st->idle_timer);
	st->run = NULL;
}

static void run_end(struct tcp_state *st, enum probe_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void run_end(struct tcp_state *st, enum probe_status status, const char *fmt, ...)
{
	struct probe_run *run = st->run;
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	run_clear(st);
	emit(run, &m_success, status == PROBE_STATUS_OK ? 1 : 0);
	emit(run, &m_duration, (double)(probe_now_us() - st->start_us) / 1e6);
	if (st->address_family != 0)
		emit(run, &m_ip_protocol, st->address_family == AF_INET6 ? 6 : 4);
	emit(run, &m_regex, status == PROBE_STATUS_CONTENT_MISMATCH ? 1 : 0);
	probe_run_finish(run, status, "%s", reason);
}

static void run_steps(struct tcp_state *st);
static void start_tls(struct tcp_state *st);

/* Converts an ASN.1 time to seconds since the epoch; -1 when it cannot be read. */
static int64_t asn1_time_seconds(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	return (int64_t)timegm(&tm);
}

/* Exports the certificate expiry and TLS version, then checks the verification result. */
static void tls_established(struct tcp_state *st, SSL *ssl)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	int64_t earliest = -1;
	const char *version = SSL_get_version(ssl);
	struct label label = {"version", NULL};
	char version_label[16];
	long verify;

	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		int64_t t = asn1_time_seconds(X509_get0_notAfter(sk_X509_value(chain, i)));

		if (t >= 0 && (earliest < 0 || t < earliest))
			earliest = t;
	}
	if (earliest >= 0)
		emit(st->run, &m_expiry, (double)earliest);
	/* "TLSv1.3" becomes "TLS 1.3", the label value blackbox_exporter uses. */
	if (strncmp(version, "TLSv", 4) == 0)
		snprintf(version_label, sizeof version_label, "TLS %s", version + 4);
	else
		snprintf(version_label, sizeof version_label, "%s", version);
	label.value = version_label;
	probe_run_emit(st->run, &m_tls_version, &label, 1, 1);
	st->tls_done = true;

	verify = SSL_get_verify_result(ssl);
	if (st->insecure_skip_verify || verify == X509_V_OK) {
		run_steps(st);
		return;
	}
	if (verify == X509_V_ERR_CERT_HAS_EXPIRED && earliest >= 0) {
		char date[32];
		time_t t = (time_t)earliest;
		struct tm tm;

		strftime(date, sizeof date, "%Y-%m-%d", gmtime_r(&t, &tm));
		run_end(st, PROBE_STATUS_TLS_EXPIRED, "tls: certificate expired on %s", date);
		return;
	}
	run_end(st, PROBE_STATUS_TLS_ERROR, "tls: certificate verification failed: %s",
		X509_verify_cert_error_string(verify));
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_state *st = arg;
	const struct tcp_step *step = &st->steps[st->step];

	(void)fd;
	(void)what;
	if (st->run == NULL)
		return;
	run_end(st, PROBE_STATUS_CONTENT_MISMATCH, "expect /%s/ not matched; got \"%s\"",
		step->text, st->last_line);
}

static void keep_line(struct tcp_state *st, const char *line, size_t length)
{
	size_t n = 0;

	for (size_t i = 0; i < length && n < TCP_LINE_KEEP; i++) {
		unsigned char c = (unsigned char)line[i];

		st->last_line[n++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
	}
	if (length > TCP_LINE_KEEP) {
		memcpy(st->last_line + n, "...", 3);
		n += 3;
	}
	st->last_line[n] = '\0';
}

/*
 * Reads complete lines for the current expect step. Returns 1 when a line matched, 0
 * when more input is needed. At end of file, a last line without newline counts too.
 */
static int expect_lines(struct tcp_state *st, bool eof)
{
	const struct tcp_step *step = &st->steps[st->step];
	struct evbuffer *input = bufferevent_get_input(st->bev);
	struct timeval tv;

	for (;;) {
		size_t length;
		char *line = evbuffer_readln(input, &length, EVBUFFER_EOL_CRLF);

		if (line == NULL && eof && evbuffer_get_length(input) > 0) {
			length = evbuffer_get_length(input);
			line = xmalloc(length + 1);
			evbuffer_remove(input, line, length);
			line[length] = '\0';
		}
		if (line == NULL)
			break;
		st->lines_seen++;
		keep_line(st, line, length);
		if (regexec(&step->regex, line, 0, NULL, 0) == 0) {
			free(line);
			evtimer_del(st->idle_timer);
			return 1;
		}
		free(line);
	}
	if (st->lines_seen > 0 && !eof) {
		/* A non-matching reply followed by silence means the server sent all it will send. */
		tv.tv_sec = (time_t)(st->expect_idle_ms / 1000);
		tv.tv_usec = (suseconds_t)(st->expect_idle_ms % 1000) * 1000;
		evtimer_add(st->idle_timer, &tv);
	}
	return 0;
}

static void run_steps(struct tcp_state *st)
{
	while (st->run != NULL && st->step < st->step_count) {
		struct tcp_step *step = &st->steps[st->step];

		probe_run_set_phase(st->run, step->kind == TCP_STEP_EXPECT ? "expect" : "send");
		switch (step->kind) {
		case TCP_STEP_SEND:
			bufferevent_write(st->bev, step->text, strlen(step->text));
			st->step++;
			break;
		case TCP_STEP_EXPECT:
			if (!expect_lines(st, false))
				return;
			st->lines_seen = 0;
			st->step++;
			break;
		case TCP_STEP_STARTTLS:
			st->step++;
			start_tls(st);
			return;
		}
	}
	if (st->run == NULL)
		return;
	if (evbuffer_get_length(bufferevent_get_output(st->bev)) > 0) {
		/* The write callback ends the run once the last send step is on the wire. */
		st->finishing = true;
		return;
	}
	run_end(st, PROBE_STATUS_OK, "tcp: %s%s, %zu steps passed", st->target,
		st->tls_done ? " over TLS" : "", st->step_count);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct tcp_state *st = arg;

	(void)bev;
	if (st->run != NULL && !st->handshaking)
		run_steps(st);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct tcp_state *st = arg;

	(void)bev;
	if (st->run != NULL && st->finishing)
		run_end(st, PROBE_STATUS_OK, "tcp: %s%s, %zu steps passed", st->target,
			st->tls_done ? " over TLS" : "", st->step_count);
}

static void tls_failed(struct tcp_state *st)
{
	unsigned long err = bufferevent_get_openssl_error(st->bev);
	char message[160] = "handshake failed";
	int saved = EVUTIL_SOCKET_ERROR();

	if (err != 0)
		ERR_error_string_n(err, message, sizeof message);
	else if (saved != 0)
		snprintf(message, sizeof message, "%s", evutil_socket_error_to_string(saved));
	while (bufferevent_get_openssl_error(st->bev) != 0)
		;
	ERR_clear_error();
	run_end(st, PROBE_STATUS_TLS_ERROR, "tls: handshake with %s failed: %s", st->target,
		message);
}

static enum probe_status connect_status(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return PROBE_STATUS_REFUSED;
	case EHOSTUNREACH:
	case ENETUNREACH:
		return PROBE_STATUS_UNREACHABLE;
	case ETIMEDOUT:
		return PROBE_STATUS_TIMEOUT;
	default:
		return PROBE_STATUS_IO_ERROR;
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct tcp_state *st = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if (st->run == NULL)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		if (st->handshaking) {
			st->handshaking = false;
			tls_established(st, bufferevent_openssl_get_ssl(st->bev));
		} else if (st->tls) {
			start_tls(st);
		} else {
			run_steps(st);
		}
		return;
	}
	if (st->handshaking) {
		tls_failed(st);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		if (st->step < st->step_count && st->steps[st->step].kind == TCP_STEP_EXPECT) {
			const struct tcp_step *step = &st->steps[st->step];

			if (expect_lines(st, true)) {
				st->lines_seen = 0;
				st->step++;
				run_steps(st);
				if (st->run == NULL)
					return;
			} else if (st->lines_seen > 0) {
				run_end(st, PROBE_STATUS_CONTENT_MISMATCH,
					"expect /%s/ not matched; got \"%s\"", step->text,
					st->last_line);
				return;
			} else {
				run_end(st, PROBE_STATUS_CONNECTION_LOST,
					"tcp: connection closed by %s before /%s/ matched",
					st->target, step->text);
				return;
			}
		}
		run_end(st, PROBE_STATUS_CONNECTION_LOST,
			"tcp: connection closed by %s at step %zu", st->target, st->step + 1);
		return;
	}
	if (st->step == 0 && !st->tls_done && (what & BEV_EVENT_ERROR) && st->lines_seen == 0 &&
	    evbuffer_get_length(bufferevent_get_input(st->bev)) == 0 &&
	    connect_status(err) != PROBE_STATUS_IO_ERROR) {
		run_end(st, connect_status(err), "connect: %s: %s", st->target,
			evutil_socket_error_to_string(err));
		return;
	}
	run_end(st, err == ECONNREFUSED ? PROBE_STATUS_REFUSED : PROBE_STATUS_CONNECTION_LOST,
		"tcp: %s: %s", st->target, evutil_socket_error_to_string(err));
}

static void start_tls(struct tcp_state *st)
{
	struct event_base *base = probe_run_base(st->run);
	const char *name = st->server_name;
	unsigned char addr[16];
	SSL *ssl = SSL_new(st->ssl_ctx);
	struct bufferevent *tls;

	probe_run_set_phase(st->run, "tls");

	if (name == NULL && inet_pton(AF_INET, st->host, addr) != 1 &&
	    inet_pton(AF_INET6, st->host, addr) != 1)
		name = st->host;
	if (name != NULL) {
		SSL_set_tlsext_host_name(ssl, name);
		SSL_set1_host(ssl, name);
	} else if (!st->insecure_skip_verify) {
		/* An IP target without server_name is verified against the address. */
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), st->host);
	}
	tls = bufferevent_openssl_filter_new(base, st->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		run_end(st, PROBE_STATUS_INTERNAL_ERROR, "tls: cannot start TLS on %s", st->target);
		return;
	}
	st->bev = tls;
	st->handshaking = true;
	bufferevent_setcb(tls, on_read, on_write, on_event, st);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
}

static void start_connect(struct tcp_state *st, const struct sockaddr *address, socklen_t length)
{
	struct event_base *base = probe_run_base(st->run);

	probe_run_set_phase(st->run, "connect");
	st->address_family = address->sa_family;
	st->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(st->bev, on_read, on_write, on_event, st);
	bufferevent_enable(st->bev, EV_READ | EV_WRITE);
	if (st->idle_timer == NULL)
		st->idle_timer = evtimer_new(base, on_idle, st);
	if (bufferevent_socket_connect(st->bev, address, (int)length) < 0) {
		int err = EVUTIL_SOCKET_ERROR();

		run_end(st, connect_status(err), "connect: %s: %s", st->target,
			evutil_socket_error_to_string(err));
	}
}

static void on_resolved(void *arg, int status, int timeouts, struct ares_addrinfo *result)
{
	struct tcp_state *st = arg;
	struct ares_addrinfo_node *chosen = NULL;

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
		run_end(st, PROBE_STATUS_RESOLVE_ERROR, "resolve: %s: %s", st->host,
			status != ARES_SUCCESS ? ares_strerror(status)
					       : "no address of the requested family");
		ares_freeaddrinfo(result);
		return;
	}
	if (chosen->ai_family == AF_INET6)
		((struct sockaddr_in6 *)chosen->ai_addr)->sin6_port = htons((uint16_t)st->port);
	else
		((struct sockaddr_in *)chosen->ai_addr)->sin_port = htons((uint16_t)st->port);
	start_connect(st, chosen->ai_addr, chosen->ai_addrlen);
	ares_freeaddrinfo(result);
}

static void tcp_start(struct probe_run *run, void *state)
{
	struct tcp_state *st = state;
	struct event_base *base = probe_run_base(run);
	int status;

	st->run = run;
	probe_run_set_phase(run, "resolve");
	st->start_us = probe_now_us();
	st->step = 0;
	st->handshaking = false;
	st->finishing = false;
	st->tls_done = false;
	st->address_family = 0;
	st->lines_seen = 0;
	st->last_line[0] = '\0';
	if (st->idle_timer != NULL && event_get_base(st->idle_timer) != base) {
		event_free(st->idle_timer);
		st->idle_timer = NULL;
	}

	if (st->literal) {
		struct sockaddr_storage address;
		struct sockaddr_in *in = (struct sockaddr_in *)&address;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&address;

		memset(&address, 0, sizeof address);
		if (st->family == AF_INET6) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)st->port);
			inet_pton(AF_INET6, st->host, &in6->sin6_addr);
			start_connect(st, (struct sockaddr *)in6, sizeof *in6);
		} else {
			in->sin_family = AF_INET;
			in->sin_port = htons((uint16_t)st->port);
			inet_pton(AF_INET, st->host, &in->sin_addr);
			start_connect(st, (struct sockaddr *)in, sizeof *in);
		}
		return;
	}
	if (st->resolver == NULL || st->resolver_base != base) {
		cares_loop_free(st->resolver);
		st->resolver = cares_loop_new(base, NULL, 0, &status);
		st->resolver_base = base;
		if (st->resolver == NULL) {
			run_end(st, PROBE_STATUS_INTERNAL_ERROR,
				"resolve: cannot create a resolver: %s", ares_strerror(status));
			return;
		}
	}
	cares_loop_getaddrinfo(st->resolver, st->host, st->fallback ? AF_UNSPEC : st->family,
			       on_resolved, st);
}

static void tcp_cancel(struct probe_run *run, void *state)
{
	struct tcp_state *st = state;

	(void)run;
	if (st->run == NULL)
		return;
	run_clear(st);
	if (st->resolver != NULL)
		cares_loop_cancel(st->resolver);
}

static const char *tcp_target(const void *state)
{
	const struct tcp_state *st = state;

	return st->target;
}

const struct probe_type probe_type_tcp = {
    .name = "tcp",
    .parse = tcp_parse,
    .start = tcp_start,
    .cancel = tcp_cancel,
    .free = tcp_free,
    .target = tcp_target,
};
