/*
 * The `email` receiver (alerter/email.c): one multipart message per notification,
 * submitted to a smarthost over SMTP with libesmtp on worker threads. Options and outcomes
 * are described in docs/alerting-receivers.md, section "email".
 */
#ifndef TOCSIN_EMAIL_H
#define TOCSIN_EMAIL_H

#include "alerter/receiver.h"

/* The `email` receiver type, listed in alerter/receiver.c. */
extern const struct receiver_type receiver_email;

#endif
