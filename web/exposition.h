/*
 * The Prometheus text exposition format, version 0.0.4: one HELP and one TYPE line per
 * family, the family's samples right after them, label values escaped (backslash, double
 * quote and line feed), and the special values spelled NaN, +Inf and -Inf.
 */
#ifndef TOCSIN_EXPOSITION_H
#define TOCSIN_EXPOSITION_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;
struct series_registry;

#define EXPOSITION_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

bool exposition_valid_metric_name(const char *name);
bool exposition_valid_label_name(const char *name);

/* Appends a label value with \\, \" and \n escaped. */
void exposition_escape_label_value(struct evbuffer *out, const char *value);
/* Appends HELP text with \\ and \n escaped. */
void exposition_escape_help(struct evbuffer *out, const char *help);

/* Size of a buffer that fits any value exposition_format_value writes, with its NUL. */
#define EXPOSITION_VALUE_SIZE 32

/*
 * Formats a sample value: NaN, +Inf, -Inf, or the first of %.15g, %.16g and %.17g that
 * reads back exactly. `size` should be EXPOSITION_VALUE_SIZE.
 */
void exposition_format_value(char *buf, size_t size, double value);

/* Writes every family of the registry (stale series left out; empty families too). */
void exposition_write_registry(struct evbuffer *out, const struct series_registry *reg);

#endif
