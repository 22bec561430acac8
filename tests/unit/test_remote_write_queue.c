/*
 * Unit tests of the remote-write on-disk queue in a temporary directory. They cover
 * append and read back, re-reading until acknowledged, the checkpoint across a reopen, a
 * torn record at the end of a segment, reads across segments, and the size limit, which
 * drops the oldest segments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/log.h"
#include "collector/remote_write_queue.h"

#define T0 1700000000000

struct fixture {
	char dir[64];
	char qdir[96];
};

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_rwq.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	/* Two levels below the temporary directory: open creates the parents. */
	snprintf(f->qdir, sizeof(f->qdir), "%s/remote-write/ep", f->dir);
	log_set_level(LOG_LEVEL_ERROR);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct remote_write_queue *open_queue(const struct fixture *f, uint64_t max_bytes)
{
	char *error = NULL;
	struct remote_write_queue *q = remote_write_queue_open(f->qdir, max_bytes, &error);

	if (q == NULL)
		fail_msg("remote_write_queue_open: %s", error);
	return q;
}

/* Appends sample number i: series "p<i % 3>", time T0 + i * 1000, value i / 2. */
static void append_sample(struct remote_write_queue *q, unsigned i)
{
	char probe[16];
	struct label labels[] = {
	    {"__name__", "probe_success"}, {"probe", probe}, {"tocsin_instance", "host1"}};
	struct remote_write_sample s = {T0 + (int64_t)i * 1000, i / 2.0, labels, 3};

	snprintf(probe, sizeof(probe), "p%u", i % 3);
	assert_int_equal(remote_write_queue_append(q, &s), 0);
}

static void assert_sample(const struct remote_write_sample *s, unsigned i)
{
	char probe[16];

	snprintf(probe, sizeof(probe), "p%u", i % 3);
	assert_int_equal(s->time_ms, T0 + (int64_t)i * 1000);
	assert_true(s->value == i / 2.0);
	assert_int_equal(s->label_count, 3);
	assert_string_equal(s->labels[0].name, "__name__");
	assert_string_equal(s->labels[0].value, "probe_success");
	assert_string_equal(s->labels[1].name, "probe");
	assert_string_equal(s->labels[1].value, probe);
	assert_string_equal(s->labels[2].value, "host1");
}

static uint64_t queued_samples(const struct remote_write_queue *q)
{
	struct remote_write_queue_stats st;

	remote_write_queue_get_stats(q, &st);
	return st.samples;
}

static size_t count_segments(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strstr(e->d_name, ".seg") != NULL;
	closedir(d);
	return n;
}

static void queue_append_read_ack(void **state)
{
	struct fixture *f = *state;
	struct remote_write_queue *q = open_queue(f, 1024 * 1024);
	struct remote_write_batch b = {0};

	for (unsigned i = 0; i < 10; i++)
		append_sample(q, i);
	assert_int_equal(queued_samples(q), 10);

	assert_int_equal(remote_write_queue_read(q, 4, &b), 4);
	for (unsigned i = 0; i < 4; i++)
		assert_sample(&b.samples[i], i);
	/* Not acknowledged: the same samples again. */
	assert_int_equal(remote_write_queue_read(q, 4, &b), 4);
	assert_sample(&b.samples[0], 0);
	assert_int_equal(remote_write_queue_ack(q, &b), 0);
	assert_int_equal(queued_samples(q), 6);

	assert_int_equal(remote_write_queue_read(q, 100, &b), 6);
	for (unsigned i = 0; i < 6; i++)
		assert_sample(&b.samples[i], 4 + i);
	assert_int_equal(remote_write_queue_ack(q, &b), 0);
	assert_int_equal(queued_samples(q), 0);
	assert_int_equal(remote_write_queue_read(q, 100, &b), 0);

	remote_write_batch_free(&b);
	remote_write_queue_close(q);
}

static void queue_restart_resumes_at_checkpoint(void **state)
{
	struct fixture *f = *state;
	struct remote_write_queue *q = open_queue(f, 1024 * 1024);
	struct remote_write_batch b = {0};

	for (unsigned i = 0; i < 10; i++)
		append_sample(q, i);
	assert_int_equal(remote_write_queue_read(q, 3, &b), 3);
	assert_int_equal(remote_write_queue_ack(q, &b), 0);
	/* Read but not acknowledged when the process stops: sent again after the restart. */
	assert_int_equal(remote_write_queue_read(q, 2, &b), 2);
	remote_write_queue_close(q);

	q = open_queue(f, 1024 * 1024);
	assert_int_equal(queued_samples(q), 7);
	for (unsigned i = 10; i < 12; i++)
		append_sample(q, i);
	assert_int_equal(remote_write_queue_read(q, 100, &b), 9);
	for (unsigned i = 0; i < 9; i++)
		assert_sample(&b.samples[i], 3 + i);
	assert_int_equal(remote_write_queue_ack(q, &b), 0);
	remote_write_queue_close(q);

	/* Everything acknowledged: a reopen finds nothing, and no segment stays behind. */
	q = open_queue(f, 1024 * 1024);
	assert_int_equal(queued_samples(q), 0);
	assert_int_equal(remote_write_queue_read(q, 100, &b), 0);
	remote_write_queue_close(q);
	assert_int_equal(count_segments(f->qdir), 0);
	remote_write_batch_free(&b);
}

static void queue_cuts_torn_record(void **state)
{
	struct fixture *f = *state;
	struct remote_write_queue *q = open_queue(f, 1024 * 1024);
	struct remote_write_batch b = {0};
	char path[160];
	FILE *seg;

	for (unsigned i = 0; i < 5; i++)
		append_sample(q, i);
	remote_write_queue_close(q);

	/* Half a record, as a crash in the middle of write(2) leaves it. */
	snprintf(path, sizeof(path), "%s/0000000000000001.seg", f->qdir);
	seg = fopen(path, "ab");
	assert_non_null(seg);
	fwrite("\x40\x00\x00\x00\x12\x34", 1, 6, seg);
	fclose(seg);

	q = open_queue(f, 1024 * 1024);
	assert_int_equal(queued_samples(q), 5);
	append_sample(q, 5);
	assert_int_equal(remote_write_queue_read(q, 100, &b), 6);
	for (unsigned i = 0; i < 6; i++)
		assert_sample(&b.samples[i], i);
	remote_write_batch_free(&b);
	remote_write_queue_close(q);
}

static void queue_reads_across_segments(void **state)
{
	struct fixture *f = *state;
	/* 64 KiB: segments of 16 KiB, about 240 samples each. */
	struct remote_write_queue *q = open_queue(f, 64 * 1024);
	struct remote_write_batch b = {0};
	unsigned next = 0;

	for (unsigned i = 0; i < 400; i++)
		append_sample(q, i);
	assert_true(count_segments(f->qdir) >= 2);
	while (next < 400) {
		size_t n = remote_write_queue_read(q, 97, &b);

		assert_true(n > 0);
		for (size_t k = 0; k < n; k++)
			assert_sample(&b.samples[k], next + (unsigned)k);
		next += (unsigned)n;
		assert_int_equal(remote_write_queue_ack(q, &b), 0);
	}
	assert_int_equal(next, 400);
	assert_int_equal(queued_samples(q), 0);
	/* Only the segment being written is left. */
	assert_int_equal(count_segments(f->qdir), 1);
	remote_write_batch_free(&b);
	remote_write_queue_close(q);
}

static void queue_full_drops_oldest(void **state)
{
	struct fixture *f = *state;
	struct remote_write_queue *q = open_queue(f, 64 * 1024);
	struct remote_write_batch b = {0};
	struct remote_write_queue_stats st;
	unsigned first;
	size_t n;

	for (unsigned i = 0; i < 3000; i++)
		append_sample(q, i);
	remote_write_queue_get_stats(q, &st);
	assert_true(st.bytes <= 64 * 1024);
	assert_true(st.dropped_samples > 0);
	assert_true(st.dropped_segments > 0);
	/* Nothing is lost without being counted. */
	assert_int_equal(st.dropped_samples + st.samples, 3000);

	/* What is left is the newest samples, contiguous and in order. */
	n = remote_write_queue_read(q, 5000, &b);
	assert_int_equal(n, st.samples);
	first = 3000 - (unsigned)n;
	for (size_t k = 0; k < n; k++)
		assert_sample(&b.samples[k], first + (unsigned)k);
	remote_write_batch_free(&b);
	remote_write_queue_close(q);

	/* The limit and the counts hold after a reopen. */
	q = open_queue(f, 64 * 1024);
	assert_int_equal(queued_samples(q), n);
	remote_write_queue_close(q);
}

static void queue_open_fails_on_file(void **state)
{
	struct fixture *f = *state;
	char path[160];
	char *error = NULL;
	FILE *file;

	snprintf(path, sizeof(path), "%s/not-a-dir", f->dir);
	file = fopen(path, "w");
	assert_non_null(file);
	fclose(file);
	strcat(path, "/queue");
	assert_null(remote_write_queue_open(path, 1024 * 1024, &error));
	assert_non_null(error);
	assert_non_null(strstr(error, "not-a-dir"));
	free(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(queue_append_read_ack, setup, teardown),
	    cmocka_unit_test_setup_teardown(queue_restart_resumes_at_checkpoint, setup, teardown),
	    cmocka_unit_test_setup_teardown(queue_cuts_torn_record, setup, teardown),
	    cmocka_unit_test_setup_teardown(queue_reads_across_segments, setup, teardown),
	    cmocka_unit_test_setup_teardown(queue_full_drops_oldest, setup, teardown),
	    cmocka_unit_test_setup_teardown(queue_open_fails_on_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
