/*
 * Unit tests of the remote-write request body: the output is decompressed with snappy and
 * decoded with protobuf-c's generated unpacker, and every series, label and sample is
 * checked against the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>
#include <snappy-c.h>

#include "collector/remote_write.pb-c.h"
#include "collector/remote_write_encode.h"

#define T0 1700000000000

static const struct label up_a[] = {
    {"__name__", "probe_success"}, {"probe", "a"}, {"tocsin_instance", "host1"}};
static const struct label up_b[] = {
    {"__name__", "probe_success"}, {"probe", "b"}, {"tocsin_instance", "host1"}};
static const struct label dur_a[] = {
    {"__name__", "probe_duration_seconds"}, {"probe", "a"}, {"type", "tcp"}};

/* Encodes, decompresses and decodes; the caller frees with the unpacker's free. */
static Prometheus__WriteRequest *round_trip(const struct remote_write_sample *s, size_t n)
{
	char *body = NULL;
	size_t body_len = 0, raw_len = 0;
	char *raw;
	Prometheus__WriteRequest *req;

	assert_int_equal(remote_write_encode(s, n, &body, &body_len), 0);
	assert_non_null(body);
	assert_int_equal(snappy_validate_compressed_buffer(body, body_len), SNAPPY_OK);
	assert_int_equal(snappy_uncompressed_length(body, body_len, &raw_len), SNAPPY_OK);
	raw = malloc(raw_len + 1);
	assert_int_equal(snappy_uncompress(body, body_len, raw, &raw_len), SNAPPY_OK);
	req = prometheus__write_request__unpack(NULL, raw_len, (const uint8_t *)raw);
	assert_non_null(req);
	free(raw);
	free(body);
	return req;
}

static void assert_labels(const Prometheus__TimeSeries *ts, const struct label *want, size_t n)
{
	assert_int_equal(ts->n_labels, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(ts->labels[i]->name, want[i].name);
		assert_string_equal(ts->labels[i]->value, want[i].value);
	}
}

static void encode_groups_by_series(void **state)
{
	const struct remote_write_sample in[] = {
	    {T0, 1, up_a, 3},        {T0 + 1, 0.25, dur_a, 3},   {T0 + 2, 0, up_b, 3},
	    {T0 + 1000, 0, up_a, 3}, {T0 + 1001, 0.5, dur_a, 3},
	};
	Prometheus__WriteRequest *req = round_trip(in, 5);

	(void)state;
	assert_int_equal(req->n_timeseries, 3);
	/* Series in the order of their first sample; samples in input order. */
	assert_labels(req->timeseries[0], up_a, 3);
	assert_labels(req->timeseries[1], dur_a, 3);
	assert_labels(req->timeseries[2], up_b, 3);
	assert_int_equal(req->timeseries[0]->n_samples, 2);
	assert_int_equal(req->timeseries[0]->samples[0]->timestamp, T0);
	assert_true(req->timeseries[0]->samples[0]->value == 1);
	assert_int_equal(req->timeseries[0]->samples[1]->timestamp, T0 + 1000);
	assert_true(req->timeseries[0]->samples[1]->value == 0);
	assert_int_equal(req->timeseries[1]->n_samples, 2);
	assert_true(req->timeseries[1]->samples[0]->value == 0.25);
	assert_int_equal(req->timeseries[1]->samples[1]->timestamp, T0 + 1001);
	assert_true(req->timeseries[1]->samples[1]->value == 0.5);
	assert_int_equal(req->timeseries[2]->n_samples, 1);
	assert_int_equal(req->timeseries[2]->samples[0]->timestamp, T0 + 2);
	prometheus__write_request__free_unpacked(req, NULL);
}

static void encode_keeps_special_values(void **state)
{
	const struct remote_write_sample in[] = {
	    {T0, NAN, up_a, 3},
	    {T0 + 1, INFINITY, up_a, 3},
	    {T0 + 2, -1e300, up_a, 3},
	    {-5, 42, up_a, 3}, /* before 1970: negative timestamps are valid int64 */
	};
	Prometheus__WriteRequest *req = round_trip(in, 4);

	(void)state;
	assert_int_equal(req->n_timeseries, 1);
	assert_int_equal(req->timeseries[0]->n_samples, 4);
	assert_true(isnan(req->timeseries[0]->samples[0]->value));
	assert_true(isinf(req->timeseries[0]->samples[1]->value));
	assert_true(req->timeseries[0]->samples[2]->value == -1e300);
	assert_int_equal(req->timeseries[0]->samples[3]->timestamp, -5);
	prometheus__write_request__free_unpacked(req, NULL);
}

/* Label sets that concatenate to the same text must stay two series. */
static void encode_distinct_label_boundaries(void **state)
{
	const struct label x[] = {{"__name__", "m"}, {"ab", "c"}};
	const struct label y[] = {{"__name__", "m"}, {"a", "bc"}};
	const struct remote_write_sample in[] = {{T0, 1, x, 2}, {T0, 2, y, 2}};
	Prometheus__WriteRequest *req = round_trip(in, 2);

	(void)state;
	assert_int_equal(req->n_timeseries, 2);
	assert_string_equal(req->timeseries[0]->labels[1]->name, "ab");
	assert_string_equal(req->timeseries[1]->labels[1]->name, "a");
	prometheus__write_request__free_unpacked(req, NULL);
}

static void encode_many_samples(void **state)
{
	enum { N = 2000, SERIES = 37 };
	struct remote_write_sample *in = calloc(N, sizeof(*in));
	struct label(*labels)[2] = calloc(SERIES, sizeof(*labels));
	char(*values)[16] = calloc(SERIES, sizeof(*values));
	Prometheus__WriteRequest *req;
	size_t total = 0;

	(void)state;
	for (size_t s = 0; s < SERIES; s++) {
		snprintf(values[s], sizeof(values[s]), "p%zu", s);
		labels[s][0] = (struct label){"__name__", "probe_success"};
		labels[s][1] = (struct label){"probe", values[s]};
	}
	for (size_t i = 0; i < N; i++)
		in[i] =
		    (struct remote_write_sample){T0 + (int64_t)i, (double)i, labels[i % SERIES], 2};
	req = round_trip(in, N);
	assert_int_equal(req->n_timeseries, SERIES);
	for (size_t s = 0; s < SERIES; s++) {
		const Prometheus__TimeSeries *ts = req->timeseries[s];

		assert_string_equal(ts->labels[1]->value, values[s]);
		for (size_t k = 0; k < ts->n_samples; k++) {
			assert_int_equal(ts->samples[k]->timestamp, T0 + (int64_t)(s + k * SERIES));
			assert_true(ts->samples[k]->value == (double)(s + k * SERIES));
		}
		total += ts->n_samples;
	}
	assert_int_equal(total, N);
	prometheus__write_request__free_unpacked(req, NULL);
	free(in);
	free(labels);
	free(values);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(encode_groups_by_series),
	    cmocka_unit_test(encode_keeps_special_values),
	    cmocka_unit_test(encode_distinct_label_boundaries),
	    cmocka_unit_test(encode_many_samples),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
