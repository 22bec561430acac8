/*
 * Parsing and formatting of durations, byte sizes and retention tiers. Every parser reads
 * the whole string or fails, accepts only ASCII digits (no sign, no fraction, no spaces)
 * and checks each multiplication and addition for overflow.
 */
#include "collector/units.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct unit {
	const char *suffix;
	uint64_t factor;
};

/* Longest suffix first within each letter, so that "ms" is tried before "m". */
static const struct unit duration_units[] = {
    {"w", 7ull * 24 * 3600 * 1000},
    {"d", 24ull * 3600 * 1000},
    {"h", 3600ull * 1000},
    {"ms", 1},
    {"m", 60ull * 1000},
    {"s", 1000},
};

static const struct unit size_units[] = {
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"TiB", 1ull << 40},
    {"kB", 1000ull},
    {"KB", 1000ull},
    {"MB", 1000ull * 1000},
    {"GB", 1000ull * 1000 * 1000},
    {"TB", 1000ull * 1000 * 1000 * 1000},
    {"B", 1},
};

/* Reads a run of ASCII digits at *p; -1 when there is none or it overflows. */
static int units_read_number(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t n = 0;

	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		uint64_t digit = (uint64_t)(*s - '0');

		if (n > (UINT64_MAX - digit) / 10)
			return -1;
		n = n * 10 + digit;
		s++;
	}
	*p = s;
	*out = n;
	return 0;
}

static bool units_mul_add(uint64_t *total, uint64_t n, uint64_t factor)
{
	if (factor != 0 && n > UINT64_MAX / factor)
		return false;
	if (*total > UINT64_MAX - n * factor)
		return false;
	*total += n * factor;
	return true;
}

int units_parse_duration_ms(const char *text, uint64_t *out_ms)
{
	size_t unit_count = sizeof duration_units / sizeof duration_units[0];
	uint64_t prev_factor = UINT64_MAX;
	uint64_t total = 0;
	const char *p = text;

	if (text == NULL || *text == '\0')
		return -1;
	/* A bare "0" is the one unitless duration: zero means the same in every unit. */
	if (strcmp(text, "0") == 0) {
		*out_ms = 0;
		return 0;
	}
	while (*p != '\0') {
		const struct unit *unit = NULL;
		uint64_t n;

		if (units_read_number(&p, &n) < 0)
			return -1;
		for (size_t i = 0; i < unit_count; i++) {
			size_t len = strlen(duration_units[i].suffix);

			if (strncmp(p, duration_units[i].suffix, len) == 0) {
				unit = &duration_units[i];
				break;
			}
		}
		if (unit == NULL)
			return -1;
		p += strlen(unit->suffix);
		/* Components go from the largest unit to the smallest, each unit once: "1h30m". */
		if (unit->factor >= prev_factor)
			return -1;
		prev_factor = unit->factor;
		if (!units_mul_add(&total, n, unit->factor))
			return -1;
	}
	*out_ms = total;
	return 0;
}

int units_parse_size(const char *text, uint64_t *out_bytes)
{
	size_t unit_count = sizeof size_units / sizeof size_units[0];
	const char *p = text;
	uint64_t n;
	uint64_t total = 0;

	if (text == NULL || units_read_number(&p, &n) < 0)
		return -1;
	if (*p == '\0') {
		*out_bytes = n;
		return 0;
	}
	for (size_t i = 0; i < unit_count; i++) {
		if (strcmp(p, size_units[i].suffix) == 0) {
			if (!units_mul_add(&total, n, size_units[i].factor))
				return -1;
			*out_bytes = total;
			return 0;
		}
	}
	return -1;
}

char *units_format_duration(uint64_t ms, char *buf, size_t size)
{
	/* Weeks are left out: "400d" reads better than "57w1d". */
	static const struct unit parts[] = {
	    {"d", 24ull * 3600 * 1000},
	    {"h", 3600ull * 1000},
	    {"m", 60ull * 1000},
	    {"s", 1000},
	    {"ms", 1},
	};
	size_t used = 0;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	if (ms == 0) {
		snprintf(buf, size, "0s");
		return buf;
	}
	for (size_t i = 0; i < sizeof parts / sizeof parts[0] && ms > 0; i++) {
		uint64_t n = ms / parts[i].factor;
		int written;

		if (n == 0)
			continue;
		ms -= n * parts[i].factor;
		written = snprintf(buf + used, size - used, "%llu%s", (unsigned long long)n,
				   parts[i].suffix);
		if (written < 0 || (size_t)written >= size - used) {
			buf[used] = '\0';
			break;
		}
		used += (size_t)written;
	}
	return buf;
}

const char *units_retention_tier_problem(const char *text)
{
	const char *colon = text != NULL ? strchr(text, ':') : NULL;
	char step_text[64];
	uint64_t step_ms;
	uint64_t keep_ms;
	size_t step_len;

	if (colon == NULL)
		return "is not STEP:KEEP";
	step_len = (size_t)(colon - text);
	if (step_len >= sizeof step_text)
		return "has a STEP that is not a duration";
	memcpy(step_text, text, step_len);
	step_text[step_len] = '\0';
	if (units_parse_duration_ms(step_text, &step_ms) < 0)
		return "has a STEP that is not a duration";
	if (units_parse_duration_ms(colon + 1, &keep_ms) < 0)
		return "has a KEEP that is not a duration";
	if (step_ms < 1000 || step_ms % 1000 != 0)
		return "has a STEP that is not a whole number of seconds of at least 1s";
	if (step_ms / 1000 > UINT32_MAX)
		return "has a STEP longer than an RRD step can be (4294967295s)";
	if (keep_ms <= step_ms)
		return "has a KEEP that is not longer than its STEP";
	if (keep_ms % step_ms != 0)
		return "has a KEEP that is not a multiple of its STEP";
	if (keep_ms / step_ms > RETENTION_MAX_ROWS)
		return "keeps more than 1000000 rows (each RRD file would hold over 22 MiB per "
		       "tier); use a coarser STEP or a shorter KEEP, e.g. 10s:100d or 1m:1y";
	return NULL;
}

int units_parse_retention_tier(const char *text, struct retention_tier *tier)
{
	const char *colon;
	char step_text[64];
	uint64_t step_ms;
	uint64_t keep_ms;

	if (units_retention_tier_problem(text) != NULL)
		return -1;
	colon = strchr(text, ':');
	memcpy(step_text, text, (size_t)(colon - text));
	step_text[colon - text] = '\0';
	if (units_parse_duration_ms(step_text, &step_ms) < 0 ||
	    units_parse_duration_ms(colon + 1, &keep_ms) < 0)
		return -1;
	tier->step_s = (uint32_t)(step_ms / 1000);
	tier->keep_s = keep_ms / 1000;
	return 0;
}

int units_parse_retention(const char *text, struct retention *out)
{
	struct retention result = {0};
	const char *p = text;

	if (text == NULL)
		return -1;
	for (;;) {
		char item[64];
		size_t len;

		while (*p == ' ')
			p++;
		len = strcspn(p, ",");
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == 0 || len >= sizeof item || result.count == RETENTION_MAX_TIERS)
			return -1;
		memcpy(item, p, len);
		item[len] = '\0';
		if (units_parse_retention_tier(item, &result.tier[result.count]) < 0)
			return -1;
		if (result.count > 0 &&
		    result.tier[result.count].step_s <= result.tier[result.count - 1].step_s)
			return -1;
		result.count++;
		p += strcspn(p, ",");
		if (*p == '\0')
			break;
		p++;
	}
	*out = result;
	return 0;
}

char *units_format_retention(const struct retention *r, char *buf, size_t size)
{
	size_t used = 0;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < r->count; i++) {
		char step[32];
		char keep[32];
		int written;

		units_format_duration((uint64_t)r->tier[i].step_s * 1000, step, sizeof step);
		units_format_duration(r->tier[i].keep_s * 1000, keep, sizeof keep);
		written =
		    snprintf(buf + used, size - used, "%s%s:%s", i > 0 ? ", " : "", step, keep);
		if (written < 0 || (size_t)written >= size - used) {
			buf[used] = '\0';
			break;
		}
		used += (size_t)written;
	}
	return buf;
}
