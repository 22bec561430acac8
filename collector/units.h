/*
 * Parsing of values written in operator terms: durations ("500ms", "10s", "1h30m"),
 * byte sizes ("512KiB", "10MB", "1GiB") and retention lists ("10s:2d"). Strict: the whole
 * string must parse, no sign, no overflow. On error they return -1 and leave *out
 * unchanged; the caller words the message (see the UNITS_*_EXAMPLES strings).
 */
#ifndef TOCSIN_UNITS_H
#define TOCSIN_UNITS_H

#include <stddef.h>
#include <stdint.h>

#define UNITS_DURATION_EXAMPLES  "examples: 500ms, 10s, 5m, 1h, 1h30m, 7d"
#define UNITS_SIZE_EXAMPLES      "examples: 4096, 512KiB, 10MB, 1GiB"
#define UNITS_RETENTION_EXAMPLES "examples: 10s:2d, 1m:30d, 1h:400d"

/* Units: ms, s, m, h, d, w; components may be chained from largest to smallest. */
int units_parse_duration_ms(const char *text, uint64_t *out_ms);
/* Units: none (bytes), B, kB/KB/MB/GB/TB (powers of 1000), KiB/MiB/GiB/TiB (powers of 1024). */
int units_parse_size(const char *text, uint64_t *out_bytes);
/* Formats a duration the way units_parse_duration_ms reads it ("1m30s", "500ms"). */
char *units_format_duration(uint64_t ms, char *buf, size_t size);

#define RETENTION_MAX_TIERS 8
/* Rows one tier may keep: with AVERAGE, MIN and MAX of 8 bytes each, 1,000,000 rows are
 * 24 MB per file, and every series has its own file. */
#define RETENTION_MAX_ROWS 1000000u

/* One archive tier: a consolidated row every `step_s` seconds kept for `keep_s` seconds. */
struct retention_tier {
	uint32_t step_s;
	uint64_t keep_s;
};

struct retention {
	size_t count;
	struct retention_tier tier[RETENTION_MAX_TIERS];
};

/*
 * Parses one "STEP:KEEP" item into *tier. STEP must be at least 1s and a whole number
 * of seconds; KEEP must be a multiple of STEP and longer than it.
 */
int units_parse_retention_tier(const char *text, struct retention_tier *tier);

/*
 * Returns NULL when units_parse_retention_tier() accepts `text`, else a static phrase that
 * follows the quoted value in a message and names the rule broken ("is not STEP:KEEP",
 * "has a KEEP that is not a multiple of its STEP").
 */
const char *units_retention_tier_problem(const char *text);

/*
 * Parses a comma-separated list of tiers ("10s:2d, 1m:30d, 1h:400d"; spaces around items
 * are allowed): 1 to RETENTION_MAX_TIERS tiers with strictly increasing steps.
 */
int units_parse_retention(const char *text, struct retention *out);
/* Formats tiers the way units_parse_retention reads them. Returns buf. */
char *units_format_retention(const struct retention *r, char *buf, size_t size);

#endif
