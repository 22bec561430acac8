/*
 * Unit tests of the error throttle: first failure reported, repeats suppressed with a
 * doubling interval up to the cap, one recovery report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "collector/throttle.h"

static void first_failure_is_reported(void **state)
{
	struct throttle t;
	uint64_t suppressed = 99;

	(void)state;
	throttle_init(&t, 1000, 8000);
	assert_true(throttle_fail(&t, 0, &suppressed));
	assert_int_equal(suppressed, 0);
}

static void repeats_suppressed_with_doubling_interval(void **state)
{
	struct throttle t;
	uint64_t suppressed = 0;

	(void)state;
	throttle_init(&t, 1000, 8000);
	assert_true(throttle_fail(&t, 0, NULL));
	/* Quiet for 1 s. */
	assert_false(throttle_fail(&t, 10, NULL));
	assert_false(throttle_fail(&t, 999, NULL));
	assert_true(throttle_fail(&t, 1000, &suppressed));
	assert_int_equal(suppressed, 2);
	/* Then 2 s, 4 s, 8 s, and 8 s again at the cap. */
	assert_false(throttle_fail(&t, 2999, NULL));
	assert_true(throttle_fail(&t, 3000, &suppressed));
	assert_int_equal(suppressed, 1);
	assert_false(throttle_fail(&t, 6999, NULL));
	assert_true(throttle_fail(&t, 7000, NULL));
	assert_false(throttle_fail(&t, 14999, NULL));
	assert_true(throttle_fail(&t, 15000, NULL));
	assert_false(throttle_fail(&t, 22999, NULL));
	assert_true(throttle_fail(&t, 23000, NULL));
	assert_int_equal(t.interval_ms, 8000);
}

static void recovery_reported_once(void **state)
{
	struct throttle t;
	uint64_t failures = 0;

	(void)state;
	throttle_init(&t, 1000, 8000);
	assert_false(throttle_ok(&t, &failures));
	assert_true(throttle_fail(&t, 0, NULL));
	assert_false(throttle_fail(&t, 1, NULL));
	assert_false(throttle_fail(&t, 2, NULL));
	assert_true(throttle_ok(&t, &failures));
	assert_int_equal(failures, 3);
	assert_false(throttle_ok(&t, &failures));
}

static void failure_after_recovery_restarts_interval(void **state)
{
	struct throttle t;

	(void)state;
	throttle_init(&t, 1000, 8000);
	throttle_fail(&t, 0, NULL);
	throttle_fail(&t, 1000, NULL);
	throttle_fail(&t, 3000, NULL);
	assert_true(throttle_ok(&t, NULL));
	assert_true(throttle_fail(&t, 3001, NULL));
	assert_false(throttle_fail(&t, 4000, NULL));
	assert_true(throttle_fail(&t, 4001, NULL));
}

static void zero_initial_uses_default(void **state)
{
	struct throttle t;

	(void)state;
	throttle_init(&t, 0, 0);
	assert_int_equal(t.initial_ms, THROTTLE_DEFAULT_INITIAL_MS);
	assert_int_equal(t.max_ms, THROTTLE_DEFAULT_INITIAL_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(first_failure_is_reported),
	    cmocka_unit_test(repeats_suppressed_with_doubling_interval),
	    cmocka_unit_test(recovery_reported_once),
	    cmocka_unit_test(failure_after_recovery_restarts_interval),
	    cmocka_unit_test(zero_initial_uses_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
