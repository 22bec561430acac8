/*
 * Formatting helpers shared by tocsinctl's commands: JSON output for --json, label sets
 * in the rule language's notation, and the RFC 3339 deadline for a duration from now.
 */
#ifndef TOCSIN_CTL_FORMAT_H
#define TOCSIN_CTL_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Size of a buffer for ctl_format_deadline: "2024-05-01T10:00:00.000Z" and a NUL. */
#define CTL_TIME_SIZE 32

/* Prints `data` as indented JSON and a newline to stdout. Returns 0, or -1 when it
 * cannot be encoded (out of memory). */
int ctl_print_json(const json_t *data);

/* Returns the string member `key` of `object`, or NULL when it is missing or not a string. */
const char *ctl_json_string(const json_t *object, const char *key);

/*
 * Returns a label object as `{name="value", ...}` in the object's order, with `"`, `\` and
 * newlines escaped. With `metric_name` set, a `__name__` label is written before the braces
 * as in `up{job="x"}` and the braces are left out when no other label remains. The caller
 * frees the result.
 */
char *ctl_format_labels(const json_t *labels, bool metric_name);

/* Returns `"value"` with `"`, `\` and newlines escaped; the caller frees it. */
char *ctl_quote(const char *value);

/*
 * Writes the UTC time `duration` from now as RFC 3339 with milliseconds into `buf` of at
 * least CTL_TIME_SIZE bytes. `duration` is written as in the config ("30m", "1h30m", "2d").
 * Returns 0, or -1 when `duration` is not a positive duration.
 */
int ctl_format_deadline(const char *duration, char *buf, size_t size);

/* Writes `seconds` as a duration such as "3h25m10s" (rounded to whole seconds above a
 * minute) into `buf`. */
void ctl_format_seconds(double seconds, char *buf, size_t size);

#endif
