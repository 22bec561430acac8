/*
 * Test-only hook of the receiver registry (alerter/receiver.c). Unit tests register a
 * fake receiver type with it so that configs can name one without a real notifier. The
 * daemon never calls it.
 */
#ifndef TOCSIN_RECEIVER_TESTING_H
#define TOCSIN_RECEIVER_TESTING_H

struct receiver_type;

/*
 * Adds type to what receiver_types() and receiver_type_find() return, for the rest of
 * the process. Registering the same type twice has no effect. Aborts when more than a few
 * types are registered, which only a broken test does. Not thread-safe.
 */
void receiver_register_for_tests(const struct receiver_type *type);

#endif
