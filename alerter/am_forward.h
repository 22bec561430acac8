/*
 * The `alertmanager` receiver: forwards alerts to Alertmanager instances through their
 * API (POST /api/v2/alerts), as Prometheus does, so that an existing Alertmanager keeps
 * grouping, silencing and routing them. The receiver type itself is receiver_alertmanager,
 * registered in alerter/receiver.c.
 *
 * An Alertmanager resolves a firing alert on its own once its endsAt has passed. So the
 * dispatcher must send each active alert again every resend_delay (1m by default, as
 * Prometheus's --rules.alert.resend-delay). It must also send each resolved alert again
 * until resolved_keep has passed (15m by default, as long as Prometheus keeps them).
 */
#ifndef TOCSIN_AM_FORWARD_H
#define TOCSIN_AM_FORWARD_H

#include <stdint.h>

#include "alerter/notification.h"
#include "alerter/receiver.h"

/* The `alertmanager` receiver type, listed in alerter/receiver.c. */
extern const struct receiver_type receiver_alertmanager;

#define AM_FORWARD_DEFAULT_RESEND_DELAY_MS  (60 * 1000)
#define AM_FORWARD_DEFAULT_RESOLVED_KEEP_MS (15 * 60 * 1000)
/* The maximum number of resolved alerts that one aggregation group keeps for re-sending.
 * In a larger burst the ones that resolved first are dropped early, so that memory stays
 * bounded when many alerts resolve within resolved_keep. */
#define AM_FORWARD_RESOLVED_KEEP_MAX 1000

/*
 * Builds the body of POST /api/v2/alerts: an array of {labels, annotations, startsAt,
 * endsAt, generatorURL} for every alert of n (max_alerts does not apply). startsAt is the
 * alert's start. A firing alert's endsAt is now_ms + 4 * resend_delay_ms, the validity
 * Prometheus gives it. Prometheus multiplies the larger of resend delay and evaluation
 * interval, so pass that larger value to match it. A resolved alert's endsAt is its end.
 * endsAt is never before startsAt, which Alertmanager rejects. now_ms is the wall clock in
 * Unix milliseconds. Returns a JSON string the caller frees.
 */
char *am_forward_payload(const struct notification *n, int64_t now_ms, int64_t resend_delay_ms);

/* The re-sending schedule configured for one receiver: `state` is what its parse() set. */
struct am_forward_schedule {
	int64_t resend_delay_ms;
	int64_t resolved_keep_ms;
};
void am_forward_schedule(const void *state, struct am_forward_schedule *out);

#endif
