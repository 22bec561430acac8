/*
 * A parser for the Prometheus text exposition format, version 0.0.4, as a command prints
 * it: HELP and TYPE comments, samples with optional labels (values escaped with \\, \"
 * and \n), values including NaN, +Inf and -Inf, and optional timestamps, which are read
 * and ignored. Pure functions with no I/O.
 *
 * A document is accepted whole or not at all: the first error ends the parse, names its
 * line and column, and leaves nothing behind.
 */
#ifndef TOCSIN_EXPOSITION_PARSE_H
#define TOCSIN_EXPOSITION_PARSE_H

#include <stddef.h>

#include "collector/series.h"

/*
 * One metric name as samples use it. Samples of counter families are counters; samples
 * of gauge and untyped families, and the _bucket, _sum and _count samples and quantiles
 * of histograms and summaries, are gauges.
 */
struct exposition_metric {
	char *name;
	char *help; /* the family's HELP text, unescaped; "" when none */
	enum metric_type type;
};

struct exposition_sample {
	size_t metric;        /* index into exposition_doc.metrics */
	struct label *labels; /* in input order, names and values owned */
	size_t label_count;
	double value;
};

struct exposition_doc {
	struct exposition_metric *metrics;
	size_t metric_count;
	size_t metric_capacity;
	struct exposition_sample *samples;
	size_t sample_count;
	size_t sample_capacity;
};

/* Maximum samples in one document; more is an error, so one run cannot flood the registry. */
#define EXPOSITION_PARSE_MAX_SAMPLES 20000

/* Size of an error buffer that fits every message, with its NUL. */
#define EXPOSITION_PARSE_ERROR_SIZE 160

/*
 * Parses `length` bytes of `text` into `doc` (zero it first). Returns 0, or -1 with `doc`
 * empty and "line L, column C: PROBLEM" in `error` (1-based, columns in bytes). Free the
 * result with exposition_doc_free().
 */
int exposition_parse(const char *text, size_t length, struct exposition_doc *doc, char *error,
		     size_t error_size);
void exposition_doc_free(struct exposition_doc *doc);

#endif
