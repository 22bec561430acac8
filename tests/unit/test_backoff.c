/*
 * Unit tests of the retry delays: full-jitter bounds over many draws, the exponential cap
 * and its overflow, Retry-After capped at the policy's maximum, the max_age deadline, and
 * the seeded generator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "alerter/backoff.h"

static const struct backoff_policy policy = {
    .initial_ms = 1000,
    .max_ms = 60000,
    .max_age_ms = 3600000,
};

/* A random source that returns the value arg points to. */
static uint64_t fixed_random(void *arg)
{
	return *(const uint64_t *)arg;
}

static void delay_extremes_are_zero_and_cap(void **state)
{
	uint64_t draw;

	(void)state;
	draw = 0;
	assert_int_equal(backoff_delay(&policy, 0, fixed_random, &draw), 0);
	assert_int_equal(backoff_delay(&policy, 5, fixed_random, &draw), 0);
	draw = UINT64_MAX;
	assert_int_equal(backoff_delay(&policy, 0, fixed_random, &draw), 1000);
	assert_int_equal(backoff_delay(&policy, 1, fixed_random, &draw), 2000);
	assert_int_equal(backoff_delay(&policy, 2, fixed_random, &draw), 4000);
	assert_int_equal(backoff_delay(&policy, 5, fixed_random, &draw), 32000);
	/* 1000 * 2^6 = 64000 passes max_ms. */
	assert_int_equal(backoff_delay(&policy, 6, fixed_random, &draw), 60000);
	draw = UINT64_MAX / 2 + 1; /* the middle of the range */
	assert_int_equal(backoff_delay(&policy, 1, fixed_random, &draw), 1000);
}

static void delay_cap_survives_huge_retries(void **state)
{
	struct backoff_policy huge = {.initial_ms = INT64_MAX / 4, .max_ms = INT64_MAX, 0};
	uint64_t draw = UINT64_MAX;

	(void)state;
	assert_int_equal(backoff_delay(&policy, 63, fixed_random, &draw), 60000);
	assert_int_equal(backoff_delay(&policy, 64, fixed_random, &draw), 60000);
	assert_int_equal(backoff_delay(&policy, 1000000, fixed_random, &draw), 60000);
	/* initial * 2^retry overflows int64 here: the cap is max_ms, not a negative value. */
	assert_int_equal(backoff_delay(&huge, 3, fixed_random, &draw), INT64_MAX);
}

/* Over many draws each delay stays in [0, cap], and the draws spread over that range. */
static void jitter_bounds_over_many_draws(void **state)
{
	struct backoff_random random;

	(void)state;
	backoff_random_seed(&random, 42);
	for (unsigned retry = 0; retry < 10; retry++) {
		int64_t cap = retry < 6 ? 1000 << retry : 60000;
		int64_t min = INT64_MAX;
		int64_t max = -1;
		double sum = 0;
		const int draws = 20000;

		for (int i = 0; i < draws; i++) {
			int64_t d = backoff_delay(&policy, retry, backoff_random_next, &random);

			assert_true(d >= 0);
			assert_true(d <= cap);
			min = d < min ? d : min;
			max = d > max ? d : max;
			sum += (double)d;
		}
		/* Full jitter: both ends of the range are reached, the mean is cap / 2. */
		assert_true(min < cap / 100);
		assert_true(max > cap - cap / 100);
		assert_true(sum / draws > cap * 0.47);
		assert_true(sum / draws < cap * 0.53);
	}
}

static void retry_after_capped_at_max(void **state)
{
	(void)state;
	assert_int_equal(backoff_retry_after(&policy, 2000), 2000);
	assert_int_equal(backoff_retry_after(&policy, 60000), 60000);
	assert_int_equal(backoff_retry_after(&policy, 86400000), 60000);
	assert_int_equal(backoff_retry_after(&policy, 0), 0);
	assert_int_equal(backoff_retry_after(&policy, -5), 0);
}

static void next_attempt_stops_at_deadline(void **state)
{
	const int64_t created = 1000000;
	const int64_t deadline = created + policy.max_age_ms;

	(void)state;
	assert_int_equal(backoff_next_attempt(&policy, created, created + 10, 500), created + 510);
	/* A delay past the deadline is cut to the deadline: one last attempt there. */
	assert_int_equal(backoff_next_attempt(&policy, created, deadline - 100, 60000), deadline);
	assert_int_equal(backoff_next_attempt(&policy, created, deadline - 100, 100), deadline);
	/* Never before now, even past the deadline or with a negative delay. */
	assert_int_equal(backoff_next_attempt(&policy, created, deadline + 5, 1000), deadline + 5);
	assert_int_equal(backoff_next_attempt(&policy, created, created, -1), created);
}

static void no_deadline_without_max_age(void **state)
{
	struct backoff_policy forever = {.initial_ms = 1000, .max_ms = 60000, .max_age_ms = 0};

	(void)state;
	assert_int_equal(backoff_next_attempt(&forever, 0, 1000000000000, 60000), 1000000060000);
	assert_false(backoff_expired(&forever, 0, INT64_MAX / 2));
}

static void expired_at_max_age(void **state)
{
	(void)state;
	assert_false(backoff_expired(&policy, 5000, 5000));
	assert_false(backoff_expired(&policy, 5000, 5000 + policy.max_age_ms - 1));
	assert_true(backoff_expired(&policy, 5000, 5000 + policy.max_age_ms));
	assert_true(backoff_expired(&policy, 5000, 5000 + policy.max_age_ms + 1));
}

static void seeded_generator_repeats(void **state)
{
	struct backoff_random a;
	struct backoff_random b;
	struct backoff_random c;
	uint64_t first;

	(void)state;
	backoff_random_seed(&a, 7);
	backoff_random_seed(&b, 7);
	backoff_random_seed(&c, 8);
	first = backoff_random_next(&a);
	assert_int_equal(first, backoff_random_next(&b));
	assert_int_not_equal(first, backoff_random_next(&c));
	assert_int_not_equal(first, backoff_random_next(&a));
	/* The system seed works on any kernel with getrandom(2) (Linux 3.17 and later). */
	assert_int_equal(backoff_random_seed_system(&a), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(delay_extremes_are_zero_and_cap),
	    cmocka_unit_test(delay_cap_survives_huge_retries),
	    cmocka_unit_test(jitter_bounds_over_many_draws),
	    cmocka_unit_test(retry_after_capped_at_max),
	    cmocka_unit_test(next_attempt_stops_at_deadline),
	    cmocka_unit_test(no_deadline_without_max_age),
	    cmocka_unit_test(expired_at_max_age),
	    cmocka_unit_test(seeded_generator_repeats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
