/*
 * Unit tests of the log format: one logfmt line per call, ids rendered and quoted, the
 * level filter applied before formatting, errno preserved and appended on request.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "collector/log.h"

/* The log is sent to a pipe between capture_start and capture_end. */
static char captured[8192];

static const char *capture_start(int fds[2])
{
	assert_int_equal(pipe(fds), 0);
	log_set_fd(fds[1]);
	return captured;
}

static const char *capture_end(int fds[2])
{
	ssize_t n;

	log_set_fd(2);
	close(fds[1]);
	n = read(fds[0], captured, sizeof(captured) - 1);
	close(fds[0]);
	captured[n > 0 ? n : 0] = '\0';
	return captured;
}

static void line_has_fields_in_order(void **state)
{
	int fds[2];
	char ids[128];
	const char *out;

	(void)state;
	log_set_level(LOG_LEVEL_INFO);
	capture_start(fds);
	log_warn("store", log_ids(ids, sizeof(ids), "probe", "host", NULL), "queue %d%% full", 90);
	out = capture_end(fds);
	assert_non_null(strstr(out, "ts="));
	assert_non_null(
	    strstr(out, " level=warn module=store probe=host msg=\"queue 90% full\"\n"));
	/* Exactly one line. */
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
}

static void ids_quoted_when_needed(void **state)
{
	char ids[256];

	(void)state;
	log_ids(ids, sizeof(ids), "probe", "Disk Usage C:\\", "target", "a=b", "plain", "x",
		"empty", "", NULL);
	assert_string_equal(ids, "probe=\"Disk Usage C:\\\\\" target=\"a=b\" plain=x empty=\"\"");
	log_ids(ids, sizeof(ids), "detail", "line1\nline2 \"q\"", NULL);
	assert_string_equal(ids, "detail=\"line1\\nline2 \\\"q\\\"\"");
}

static void ids_truncated_safely(void **state)
{
	char ids[16];

	(void)state;
	log_ids(ids, sizeof(ids), "probe", "a very long probe name indeed", NULL);
	assert_true(strlen(ids) < sizeof(ids));
}

static void level_filter_suppresses_lines(void **state)
{
	int fds[2];
	const char *out;

	(void)state;
	log_set_level(LOG_LEVEL_WARN);
	capture_start(fds);
	log_info("x", NULL, "hidden");
	log_debug("x", NULL, "hidden");
	log_notice("x", NULL, "hidden");
	log_error("x", NULL, "shown");
	out = capture_end(fds);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "level=error module=x msg=\"shown\""));
	assert_true(log_enabled(LOG_LEVEL_WARN));
	assert_false(log_enabled(LOG_LEVEL_INFO));
	log_set_level(LOG_LEVEL_INFO);
}

static void errno_appended_and_preserved(void **state)
{
	int fds[2];
	const char *out;

	(void)state;
	capture_start(fds);
	errno = ENOENT;
	log_warn_errno("store", NULL, "cannot open %s", "/x");
	assert_int_equal(errno, ENOENT);
	log_warn("store", NULL, "no errno here");
	assert_int_equal(errno, ENOENT);
	out = capture_end(fds);
	assert_non_null(strstr(out, "msg=\"cannot open /x: No such file or directory\""));
	assert_non_null(strstr(out, "msg=\"no errno here\""));
}

static void level_names_round_trip(void **state)
{
	enum log_level level;

	(void)state;
	for (int i = LOG_LEVEL_ERROR; i <= LOG_LEVEL_DEBUG; i++) {
		assert_int_equal(log_level_parse(log_level_name((enum log_level)i), &level), 0);
		assert_int_equal(level, i);
	}
	assert_int_equal(log_level_parse("verbose", &level), -1);
	assert_int_equal(log_level_parse("WARN", &level), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(line_has_fields_in_order),
	    cmocka_unit_test(ids_quoted_when_needed),
	    cmocka_unit_test(ids_truncated_safely),
	    cmocka_unit_test(level_filter_suppresses_lines),
	    cmocka_unit_test(errno_appended_and_preserved),
	    cmocka_unit_test(level_names_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
