/*
 * Unit tests of the rise/fall health state machine, as tables of result sequences and
 * the state after each result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "collector/health.h"

struct health_case {
	const char *name;
	unsigned rise;
	unsigned fall;
	const char *results; /* '+' success, '-' failure */
	const char *states;  /* after each result: 'u' up, 'd' down, '?' unknown */
	const char *changes; /* after each result: '*' state changed, '.' not */
};

static const struct health_case cases[] = {
    {"defaults follow every result", 1, 1, "+-+-", "udud", "****"},
    {"unknown until rise reached", 3, 1, "++++", "??uu", "..*."},
    {"unknown until fall reached", 1, 2, "--", "?d", ".*"},
    {"one failure does not drop an up probe", 1, 3, "+--+--", "uuuuuu", "*....."},
    {"fall needs consecutive failures", 1, 3, "+--+---", "uuuuuud", "*.....*"},
    {"rise needs consecutive successes", 2, 1, "-+-++", "ddddu", "*...*"},
    {"flapping around one threshold stays down", 3, 1, "-+-+-+", "dddddd", "*....."},
    {"long run of failures saturates", 2, 2, "------++", "?ddddddu", ".*.....*"},
};

static void health_transitions_table(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct health_case *tc = &cases[c];
		struct health h;

		health_init(&h, tc->rise, tc->fall);
		for (size_t i = 0; tc->results[i] != '\0'; i++) {
			bool changed = health_update(&h, tc->results[i] == '+');
			char want = tc->states[i];
			enum health_state expected = want == 'u'   ? HEALTH_UP
						     : want == 'd' ? HEALTH_DOWN
								   : HEALTH_UNKNOWN;

			if (h.state != expected || changed != (tc->changes[i] == '*'))
				fail_msg(
				    "case \"%s\", result %zu: state %s changed=%d, expected %c %c",
				    tc->name, i + 1, health_state_name(h.state), changed, want,
				    tc->changes[i]);
		}
	}
}

static void zero_rise_and_fall_mean_one(void **state)
{
	struct health h;

	(void)state;
	health_init(&h, 0, 0);
	assert_int_equal(h.rise, 1);
	assert_int_equal(h.fall, 1);
	assert_true(health_update(&h, true));
	assert_int_equal(h.state, HEALTH_UP);
}

static void position_counts_towards_threshold(void **state)
{
	struct health h;
	char buf[32];

	(void)state;
	health_init(&h, 3, 2);
	health_update(&h, true);
	health_position(&h, true, buf, sizeof(buf));
	assert_string_equal(buf, "rise 1/3");
	health_update(&h, false);
	health_position(&h, false, buf, sizeof(buf));
	assert_string_equal(buf, "fall 1/2");
	health_update(&h, false);
	health_position(&h, false, buf, sizeof(buf));
	assert_string_equal(buf, "fall 2/2");
	assert_string_equal(health_state_name(h.state), "down");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(health_transitions_table),
	    cmocka_unit_test(zero_rise_and_fall_mean_one),
	    cmocka_unit_test(position_counts_towards_threshold),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
