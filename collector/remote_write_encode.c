/*
 * The remote-write request body; see remote_write_encode.h.
 */
#include "collector/remote_write_encode.h"

#include <snappy-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/hash.h"
#include "collector/remote_write.pb-c.h"
#include "collector/xalloc.h"

static uint64_t hash_labels(const struct remote_write_sample *s)
{
	return label_set_hash(HASH_FNV_OFFSET, s->labels, s->label_count);
}

static bool same_labels(const struct remote_write_sample *a, const struct remote_write_sample *b)
{
	if (a->label_count != b->label_count)
		return false;
	for (size_t i = 0; i < a->label_count; i++)
		if (strcmp(a->labels[i].name, b->labels[i].name) != 0 ||
		    strcmp(a->labels[i].value, b->labels[i].value) != 0)
			return false;
	return true;
}

/*
 * Sets series_of[i] to the index of sample i's series (numbered by first appearance) and
 * returns the number of series. An open-addressing table of first samples finds them.
 */
static size_t group_series(const struct remote_write_sample *samples, size_t count,
			   size_t *series_of, size_t *first_of)
{
	size_t slots = 16;
	size_t *table;
	uint64_t *hashes;
	size_t series = 0;

	while (slots < 2 * count)
		slots *= 2;
	table = xmalloc(slots * sizeof(*table));
	hashes = xmalloc(count * sizeof(*hashes));
	for (size_t i = 0; i < slots; i++)
		table[i] = SIZE_MAX;
	for (size_t i = 0; i < count; i++) {
		size_t slot;

		hashes[i] = hash_labels(&samples[i]);
		slot = (size_t)hashes[i] & (slots - 1);
		while (table[slot] != SIZE_MAX) {
			size_t first = table[slot];

			if (hashes[first] == hashes[i] && same_labels(&samples[first], &samples[i]))
				break;
			slot = (slot + 1) & (slots - 1);
		}
		if (table[slot] == SIZE_MAX) {
			table[slot] = i;
			first_of[series] = i;
			series_of[i] = series++;
		} else {
			series_of[i] = series_of[table[slot]];
		}
	}
	free(table);
	free(hashes);
	return series;
}

int remote_write_encode(const struct remote_write_sample *samples, size_t count, char **out,
			size_t *out_len)
{
	Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
	size_t *series_of = xcalloc(count + 1, sizeof(*series_of));
	size_t *first_of = xcalloc(count + 1, sizeof(*first_of));
	size_t nseries = group_series(samples, count, series_of, first_of);
	Prometheus__TimeSeries *ts = xcalloc(nseries + 1, sizeof(*ts));
	Prometheus__TimeSeries **ts_ptrs = xcalloc(nseries + 1, sizeof(*ts_ptrs));
	Prometheus__Sample *sample_msgs = xcalloc(count + 1, sizeof(*sample_msgs));
	Prometheus__Sample **sample_ptrs = xcalloc(count + 1, sizeof(*sample_ptrs));
	size_t nlabels = 0;
	Prometheus__Label *label_msgs;
	Prometheus__Label **label_ptrs;
	unsigned char *packed;
	size_t packed_len, max_len, used_samples = 0, used_labels = 0;
	int rc = 0;

	for (size_t s = 0; s < nseries; s++)
		nlabels += samples[first_of[s]].label_count;
	label_msgs = xcalloc(nlabels + 1, sizeof(*label_msgs));
	label_ptrs = xcalloc(nlabels + 1, sizeof(*label_ptrs));

	for (size_t s = 0; s < nseries; s++) {
		const struct remote_write_sample *first = &samples[first_of[s]];

		prometheus__time_series__init(&ts[s]);
		ts_ptrs[s] = &ts[s];
		ts[s].labels = &label_ptrs[used_labels];
		ts[s].n_labels = first->label_count;
		for (size_t k = 0; k < first->label_count; k++) {
			Prometheus__Label *l = &label_msgs[used_labels];

			prometheus__label__init(l);
			/* protobuf-c only reads these while packing. */
			l->name = (char *)first->labels[k].name;
			l->value = (char *)first->labels[k].value;
			label_ptrs[used_labels++] = l;
		}
	}
	/* Each series' samples are one slice of sample_ptrs. first_of, no longer needed,
	 * counts them first. Then n_samples counts up again while the slices are filled. */
	memset(first_of, 0, nseries * sizeof(*first_of));
	for (size_t i = 0; i < count; i++)
		first_of[series_of[i]]++;
	for (size_t s = 0; s < nseries; s++) {
		ts[s].samples = &sample_ptrs[used_samples];
		used_samples += first_of[s];
	}
	for (size_t i = 0; i < count; i++) {
		Prometheus__TimeSeries *t = &ts[series_of[i]];
		Prometheus__Sample *m = &sample_msgs[i];

		prometheus__sample__init(m);
		m->value = samples[i].value;
		m->timestamp = samples[i].time_ms;
		t->samples[t->n_samples++] = m;
	}
	req.timeseries = ts_ptrs;
	req.n_timeseries = nseries;

	packed_len = prometheus__write_request__get_packed_size(&req);
	packed = xmalloc(packed_len + 1);
	prometheus__write_request__pack(&req, packed);
	max_len = snappy_max_compressed_length(packed_len);
	*out = xmalloc(max_len + 1);
	*out_len = max_len;
	if (snappy_compress((const char *)packed, packed_len, *out, out_len) != SNAPPY_OK) {
		free(*out);
		*out = NULL;
		rc = -1;
	}
	free(packed);
	free(label_msgs);
	free(label_ptrs);
	free(sample_msgs);
	free(sample_ptrs);
	free(ts);
	free(ts_ptrs);
	free(first_of);
	free(series_of);
	return rc;
}
