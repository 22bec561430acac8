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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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

static void target_names_parse(void **state)
{
	enum log_target target;

	(void)state;
	assert_int_equal(log_target_parse("stderr", &target), 0);
	assert_int_equal(target, LOG_TARGET_STDERR);
	assert_int_equal(log_target_parse("syslog", &target), 0);
	assert_int_equal(target, LOG_TARGET_SYSLOG);
	assert_int_equal(log_target_parse("journal", &target), 0);
	assert_int_equal(target, LOG_TARGET_JOURNAL);
	assert_int_equal(log_target_parse("Journal", &target), -1);
	assert_int_equal(log_target_parse("", &target), -1);
}

/* A journal entry carries the line without ts= and one field per id, unquoted. */
static void journal_entry_has_fields(void **state)
{
	char dir[] = "/tmp/test_log.XXXXXX";
	char path[sizeof(dir) + 16];
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char ids[256];
	char entry[8192];
	ssize_t n;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/journal", dir);
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
	setenv("TOCSIN_JOURNAL_SOCKET", path, 1);
	assert_int_equal(log_set_target(LOG_TARGET_JOURNAL), 0);

	errno = ENOENT;
	log_error_errno("store",
			log_ids(ids, sizeof ids, "probe", "disk \"C\"", "target", "a=b", NULL),
			"cannot open");
	n = recv(fd, entry, sizeof entry - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	entry[n] = '\0';
	assert_non_null(strstr(entry, "PRIORITY=3\n"));
	assert_non_null(strstr(entry, "SYSLOG_IDENTIFIER=test_log\n"));
	assert_non_null(strstr(entry, "TOCSIN_MODULE=store\n"));
	assert_non_null(strstr(entry, "ERRNO=2\n"));
	assert_non_null(strstr(entry, "TOCSIN_PROBE=disk \"C\"\n"));
	assert_non_null(strstr(entry, "TOCSIN_TARGET=a=b\n"));
	assert_non_null(strstr(entry,
			       "\nMESSAGE=level=error module=store probe=\"disk \\\"C\\\"\" "
			       "target=\"a=b\" msg=\"cannot open: No such file or directory\"\n"));
	assert_null(strstr(entry, "ts="));

	/* A journal that went away: the line reaches stderr's replacement instead. */
	{
		int fds[2];
		const char *out = capture_start(fds);

		unlink(path);
		close(fd);
		log_notice("daemon", NULL, "after the journal");
		out = capture_end(fds);
		assert_non_null(
		    strstr(out, "level=notice module=daemon msg=\"after the journal\""));
	}
	log_set_target(LOG_TARGET_STDERR);
	unsetenv("TOCSIN_JOURNAL_SOCKET");
	rmdir(dir);
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
	    cmocka_unit_test(target_names_parse),
	    cmocka_unit_test(journal_entry_has_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
