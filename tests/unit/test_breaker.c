/*
 * Unit tests of the circuit breaker on a virtual clock: opening after N consecutive
 * temporary failures, the cool-down, the single half-open trial, closing and reopening,
 * and permanent failures left uncounted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alerter/breaker.h"

#define COOLDOWN_MS 30000

static void closed_allows_everything(void **state)
{
	struct breaker b;

	(void)state;
	breaker_init(&b, 3, COOLDOWN_MS);
	assert_int_equal(b.state, BREAKER_CLOSED);
	for (int i = 0; i < 10; i++)
		assert_true(breaker_allow(&b, 1000 + i));
	assert_int_equal(breaker_retry_at(&b), 0);
}

static void opens_after_threshold_failures(void **state)
{
	struct breaker b;
	int64_t now = 1000;

	(void)state;
	breaker_init(&b, 3, COOLDOWN_MS);
	breaker_record(&b, DELIVERY_RETRY, now++);
	breaker_record(&b, DELIVERY_RETRY, now++);
	assert_int_equal(b.state, BREAKER_CLOSED);
	assert_true(breaker_allow(&b, now));
	breaker_record(&b, DELIVERY_RETRY, now);
	assert_int_equal(b.state, BREAKER_OPEN);
	assert_int_equal(b.opened_total, 1);
	assert_int_equal(breaker_retry_at(&b), now + COOLDOWN_MS);
	assert_false(breaker_allow(&b, now));
	assert_false(breaker_allow(&b, now + COOLDOWN_MS - 1));
}

static void success_resets_failure_count(void **state)
{
	struct breaker b;

	(void)state;
	breaker_init(&b, 3, COOLDOWN_MS);
	breaker_record(&b, DELIVERY_RETRY, 1);
	breaker_record(&b, DELIVERY_RETRY, 2);
	breaker_record(&b, DELIVERY_OK, 3);
	breaker_record(&b, DELIVERY_RETRY, 4);
	breaker_record(&b, DELIVERY_RETRY, 5);
	assert_int_equal(b.state, BREAKER_CLOSED);
	breaker_record(&b, DELIVERY_RETRY, 6);
	assert_int_equal(b.state, BREAKER_OPEN);
}

/* A 4xx concerns one payload: it neither counts as a failure nor resets the count. */
static void permanent_failures_not_counted(void **state)
{
	struct breaker b;

	(void)state;
	breaker_init(&b, 2, COOLDOWN_MS);
	for (int i = 0; i < 10; i++)
		breaker_record(&b, DELIVERY_PERMANENT, i);
	assert_int_equal(b.state, BREAKER_CLOSED);
	assert_int_equal(b.failures, 0);
	breaker_record(&b, DELIVERY_RETRY, 20);
	breaker_record(&b, DELIVERY_PERMANENT, 21);
	assert_int_equal(b.failures, 1);
	breaker_record(&b, DELIVERY_RETRY, 22);
	assert_int_equal(b.state, BREAKER_OPEN);
}

static void half_open_allows_one_trial(void **state)
{
	struct breaker b;
	int64_t opened = 5000;

	(void)state;
	breaker_init(&b, 1, COOLDOWN_MS);
	breaker_record(&b, DELIVERY_RETRY, opened);
	assert_int_equal(b.state, BREAKER_OPEN);
	assert_false(breaker_allow(&b, opened + COOLDOWN_MS - 1));
	assert_int_equal(b.state, BREAKER_OPEN);

	assert_true(breaker_allow(&b, opened + COOLDOWN_MS));
	assert_int_equal(b.state, BREAKER_HALF_OPEN);
	/* The trial is in flight: nothing else starts, however long it takes. */
	assert_false(breaker_allow(&b, opened + COOLDOWN_MS));
	assert_false(breaker_allow(&b, opened + 10 * COOLDOWN_MS));
	assert_int_equal(breaker_retry_at(&b), 0);
}

static void trial_success_closes(void **state)
{
	struct breaker b;

	(void)state;
	breaker_init(&b, 1, COOLDOWN_MS);
	breaker_record(&b, DELIVERY_RETRY, 0);
	assert_true(breaker_allow(&b, COOLDOWN_MS));
	breaker_record(&b, DELIVERY_OK, COOLDOWN_MS + 200);
	assert_int_equal(b.state, BREAKER_CLOSED);
	assert_true(breaker_allow(&b, COOLDOWN_MS + 201));
	assert_true(breaker_allow(&b, COOLDOWN_MS + 201));
	assert_int_equal(b.opened_total, 1);
}

/* A failed trial reopens the breaker and the cool-down starts again from the failure. */
static void trial_failure_reopens(void **state)
{
	struct breaker b;
	int64_t failed_at = COOLDOWN_MS + 700;

	(void)state;
	breaker_init(&b, 2, COOLDOWN_MS);
	breaker_record(&b, DELIVERY_RETRY, 0);
	breaker_record(&b, DELIVERY_RETRY, 0);
	assert_true(breaker_allow(&b, COOLDOWN_MS));
	breaker_record(&b, DELIVERY_RETRY, failed_at);
	assert_int_equal(b.state, BREAKER_OPEN);
	assert_int_equal(b.opened_total, 2);
	assert_int_equal(breaker_retry_at(&b), failed_at + COOLDOWN_MS);
	assert_false(breaker_allow(&b, failed_at + COOLDOWN_MS - 1));
	assert_true(breaker_allow(&b, failed_at + COOLDOWN_MS));
	assert_int_equal(b.state, BREAKER_HALF_OPEN);
}

/* A permanent trial outcome tells nothing about the endpoint, so another trial may start. */
static void trial_permanent_allows_next_trial(void **state)
{
	struct breaker b;

	(void)state;
	breaker_init(&b, 1, COOLDOWN_MS);
	breaker_record(&b, DELIVERY_RETRY, 0);
	assert_true(breaker_allow(&b, COOLDOWN_MS));
	breaker_record(&b, DELIVERY_PERMANENT, COOLDOWN_MS + 10);
	assert_int_equal(b.state, BREAKER_HALF_OPEN);
	assert_true(breaker_allow(&b, COOLDOWN_MS + 11));
	assert_false(breaker_allow(&b, COOLDOWN_MS + 12));
}

static void cancelled_trial_allows_next_trial(void **state)
{
	struct breaker b;

	(void)state;
	breaker_init(&b, 1, COOLDOWN_MS);
	breaker_record(&b, DELIVERY_RETRY, 0);
	assert_true(breaker_allow(&b, COOLDOWN_MS));
	breaker_cancel(&b);
	assert_int_equal(b.state, BREAKER_HALF_OPEN);
	assert_true(breaker_allow(&b, COOLDOWN_MS + 1));
	assert_false(breaker_allow(&b, COOLDOWN_MS + 2));
}

/* Outcomes of attempts started before the breaker opened leave it open. */
static void outcomes_while_open_ignored(void **state)
{
	struct breaker b;

	(void)state;
	breaker_init(&b, 1, COOLDOWN_MS);
	breaker_record(&b, DELIVERY_RETRY, 100);
	breaker_record(&b, DELIVERY_OK, 200);
	assert_int_equal(b.state, BREAKER_OPEN);
	breaker_record(&b, DELIVERY_RETRY, 300);
	assert_int_equal(breaker_retry_at(&b), 100 + COOLDOWN_MS);
	assert_int_equal(b.opened_total, 1);
}

static void zero_threshold_means_one(void **state)
{
	struct breaker b;

	(void)state;
	breaker_init(&b, 0, COOLDOWN_MS);
	breaker_record(&b, DELIVERY_RETRY, 0);
	assert_int_equal(b.state, BREAKER_OPEN);
}

static void state_names_for_metrics(void **state)
{
	(void)state;
	assert_string_equal(breaker_state_name(BREAKER_CLOSED), "closed");
	assert_string_equal(breaker_state_name(BREAKER_OPEN), "open");
	assert_string_equal(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(closed_allows_everything),
	    cmocka_unit_test(opens_after_threshold_failures),
	    cmocka_unit_test(success_resets_failure_count),
	    cmocka_unit_test(permanent_failures_not_counted),
	    cmocka_unit_test(half_open_allows_one_trial),
	    cmocka_unit_test(trial_success_closes),
	    cmocka_unit_test(trial_failure_reopens),
	    cmocka_unit_test(trial_permanent_allows_next_trial),
	    cmocka_unit_test(cancelled_trial_allows_next_trial),
	    cmocka_unit_test(outcomes_while_open_ignored),
	    cmocka_unit_test(zero_threshold_means_one),
	    cmocka_unit_test(state_names_for_metrics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
