/*
 * The remote-write 1.0 request body: samples grouped into TimeSeries by label set, packed
 * as a prometheus.WriteRequest protobuf message (collector/remote_write.proto) and
 * compressed with snappy's block format, as the specification requires.
 */
#ifndef TOCSIN_REMOTE_WRITE_ENCODE_H
#define TOCSIN_REMOTE_WRITE_ENCODE_H

#include <stddef.h>

#include "collector/remote_write_queue.h"

/*
 * Encodes `count` samples. Each sample's labels must be the full set, sorted by name in
 * byte order, with __name__ among them; the caller keeps them. Samples with equal label
 * sets become one TimeSeries whose samples keep the input order, and series appear in the
 * order of their first sample. Returns 0 and sets *out (caller frees) and *out_len, or -1
 * when snappy fails.
 */
int remote_write_encode(const struct remote_write_sample *samples, size_t count, char **out,
			size_t *out_len);

#endif
