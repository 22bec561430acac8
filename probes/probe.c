/*
 * Run handles and the status table. A run collects its samples in memory; the owner
 * (scheduler or --once runner) reads them in its done callback, so probes never touch
 * the registry or the store.
 */
#include "probes/probe.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/clock.h"
#include "collector/utf8.h"
#include "collector/xalloc.h"

#define PROBE_REASON_MAX 256

struct probe_run {
	struct event_base *base;
	char *probe_name;
	probe_run_done_fn *done;
	void *done_arg;
	bool finished;
	const char *phase; /* a string literal, NULL when the probe names no phase */
	enum probe_status status;
	char reason[PROBE_REASON_MAX];
	uint64_t started_us;
	uint64_t finished_us;
	struct probe_sample *samples;
	size_t sample_count;
	size_t sample_capacity;
};

static const struct probe_status_info probe_status_table[PROBE_STATUS_COUNT] = {
    [PROBE_STATUS_OK] = {"ok", PROBE_CLASS_OK, "succeeded"},
    [PROBE_STATUS_TIMEOUT] = {"timeout", PROBE_CLASS_DOWN, "timed out"},
    [PROBE_STATUS_CANCELLED] = {"cancelled", PROBE_CLASS_ERROR, "cancelled"},
    [PROBE_STATUS_IO_ERROR] = {"io_error", PROBE_CLASS_ERROR, "I/O error"},
    [PROBE_STATUS_PARSE_ERROR] = {"parse_error", PROBE_CLASS_ERROR, "could not parse"},
    [PROBE_STATUS_NOT_PERMITTED] = {"not_permitted", PROBE_CLASS_ERROR, "not permitted"},
    [PROBE_STATUS_RESOLVE_ERROR] = {"resolve_error", PROBE_CLASS_DOWN, "name not resolved"},
    [PROBE_STATUS_REFUSED] = {"refused", PROBE_CLASS_DOWN, "connection refused"},
    [PROBE_STATUS_UNREACHABLE] = {"unreachable", PROBE_CLASS_DOWN, "host unreachable"},
    [PROBE_STATUS_CONNECTION_LOST] = {"connection_lost", PROBE_CLASS_DOWN, "connection lost"},
    [PROBE_STATUS_TLS_ERROR] = {"tls_error", PROBE_CLASS_DOWN, "TLS handshake failed"},
    [PROBE_STATUS_TLS_EXPIRED] = {"tls_expired", PROBE_CLASS_DOWN, "certificate expired"},
    [PROBE_STATUS_PROTOCOL_ERROR] = {"protocol_error", PROBE_CLASS_DOWN, "protocol error"},
    [PROBE_STATUS_STATUS_MISMATCH] = {"status_mismatch", PROBE_CLASS_DOWN, "unexpected status"},
    [PROBE_STATUS_CONTENT_MISMATCH] = {"content_mismatch", PROBE_CLASS_DOWN, "unexpected content"},
    [PROBE_STATUS_INTERNAL_ERROR] = {"internal_error", PROBE_CLASS_ERROR, "internal error"},
    [PROBE_STATUS_AUTH_FAILED] = {"auth_failed", PROBE_CLASS_DOWN, "authentication failed"},
    [PROBE_STATUS_NOT_FOUND] = {"not_found", PROBE_CLASS_DOWN, "not found"},
    [PROBE_STATUS_LIMIT_REACHED] = {"limit_reached", PROBE_CLASS_DOWN, "limit reached"},
    [PROBE_STATUS_UNAVAILABLE] = {"unavailable", PROBE_CLASS_DOWN, "service unavailable"},
    [PROBE_STATUS_DNS_RCODE] = {"dns_rcode", PROBE_CLASS_DOWN, "unexpected DNS rcode"},
    [PROBE_STATUS_WARNING] = {"warning", PROBE_CLASS_WARNING, "warning"},
    [PROBE_STATUS_CRITICAL] = {"critical", PROBE_CLASS_DOWN, "critical"},
    [PROBE_STATUS_UNKNOWN] = {"unknown", PROBE_CLASS_ERROR, "unknown"},
};

const struct probe_status_info *probe_status_info(enum probe_status status)
{
	if ((unsigned)status >= PROBE_STATUS_COUNT)
		status = PROBE_STATUS_INTERNAL_ERROR;
	return &probe_status_table[status];
}

uint64_t probe_now_ms(void)
{
	return clock_monotonic_ms();
}

uint64_t probe_now_us(void)
{
	return clock_monotonic_us();
}

int64_t probe_wall_ms(void)
{
	return clock_wall_ms();
}

struct probe_run *probe_run_new(struct event_base *base, const char *probe_name,
				probe_run_done_fn *done, void *arg)
{
	struct probe_run *run = xcalloc(1, sizeof(*run));

	run->base = base;
	run->probe_name = xstrdup(probe_name);
	run->done = done;
	run->done_arg = arg;
	run->started_us = probe_now_us();
	return run;
}

void probe_run_free(struct probe_run *run)
{
	if (run == NULL)
		return;
	for (size_t i = 0; i < run->sample_count; i++) {
		struct probe_sample *smp = &run->samples[i];

		for (size_t j = 0; j < smp->label_count; j++) {
			free((char *)smp->labels[j].name);
			free((char *)smp->labels[j].value);
		}
		free(smp->labels);
	}
	free(run->samples);
	free(run->probe_name);
	free(run);
}

struct event_base *probe_run_base(const struct probe_run *run)
{
	return run->base;
}

const char *probe_run_probe_name(const struct probe_run *run)
{
	return run->probe_name;
}

void probe_run_emit(struct probe_run *run, const struct metric_desc *desc,
		    const struct label *labels, size_t label_count, double value)
{
	if (run->finished)
		return;
	probe_run_add_sample(run, desc, labels, label_count, value);
}

void probe_run_add_sample(struct probe_run *run, const struct metric_desc *desc,
			  const struct label *labels, size_t label_count, double value)
{
	struct probe_sample *smp;

	run->samples = xreallocarray_grow(run->samples, &run->sample_capacity,
					  run->sample_count + 1, sizeof(*run->samples));
	smp = &run->samples[run->sample_count++];
	smp->desc = desc;
	smp->value = value;
	smp->label_count = label_count;
	smp->labels = label_count ? xcalloc(label_count, sizeof(*smp->labels)) : NULL;
	for (size_t i = 0; i < label_count; i++) {
		smp->labels[i].name = xstrdup(labels[i].name);
		smp->labels[i].value = xstrdup(labels[i].value != NULL ? labels[i].value : "");
	}
}

static void probe_run_end(struct probe_run *run, enum probe_status status, const char *reason)
{
	run->finished = true;
	run->status = status;
	run->finished_us = probe_now_us();
	/* An empty reason reads badly in logs and --once: fall back to the status text. */
	snprintf(run->reason, sizeof(run->reason), "%s",
		 *reason != '\0' ? reason : probe_status_info(status)->text);
	/* Reasons quote plugin output and server messages: keep logs and labels UTF-8. */
	utf8_repair(run->reason);
	if (run->done != NULL)
		run->done(run, run->done_arg);
}

void probe_run_finish(struct probe_run *run, enum probe_status status, const char *fmt, ...)
{
	char reason[PROBE_REASON_MAX];
	va_list ap;

	if (run->finished)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	probe_run_end(run, status, reason);
}

void probe_run_timeout(struct probe_run *run, const char *reason)
{
	if (run->finished)
		return;
	probe_run_end(run, PROBE_STATUS_TIMEOUT, reason);
}

void probe_run_set_phase(struct probe_run *run, const char *phase)
{
	run->phase = phase;
}

const char *probe_run_phase(const struct probe_run *run)
{
	return run->phase;
}

bool probe_run_finished(const struct probe_run *run)
{
	return run->finished;
}

enum probe_status probe_run_status(const struct probe_run *run)
{
	return run->status;
}

const char *probe_run_reason(const struct probe_run *run)
{
	return run->reason;
}

size_t probe_run_sample_count(const struct probe_run *run)
{
	return run->sample_count;
}

const struct probe_sample *probe_run_sample(const struct probe_run *run, size_t index)
{
	return index < run->sample_count ? &run->samples[index] : NULL;
}

double probe_run_duration_seconds(const struct probe_run *run)
{
	if (!run->finished)
		return 0;
	return (double)(run->finished_us - run->started_us) / 1e6;
}
