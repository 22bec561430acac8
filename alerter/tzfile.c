/*
 * TZif reader: transition times and local time types from the file, and the POSIX TZ
 * rule of the footer for instants after the last transition (files built with "zic -b
 * slim" list few transitions and rely on that rule). Only the UTC offset is kept, since
 * time intervals need nothing else.
 */
#include "alerter/tzfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/xalloc.h"

/* The largest zone in tzdata 2024 is about 3 KiB; the cap only stops a wrong path. */
#define TZFILE_MAX_SIZE (256 * 1024)
#define TZFILE_HEADER   44

enum tzfile_rule_kind {
	TZFILE_RULE_JULIAN,     /* Jn: day 1 to 365, February 29 never counted */
	TZFILE_RULE_ZERO_BASED, /* n: day 0 to 365, February 29 counted */
	TZFILE_RULE_MONTH_WEEK, /* Mm.w.d: day d of week w (5: the last) of month m */
};

struct tzfile_rule {
	enum tzfile_rule_kind kind;
	int day;      /* Jn or n; for Mm.w.d the weekday, 0 = Sunday */
	int week;     /* 1 to 5 */
	int month;    /* 1 to 12 */
	int32_t time; /* seconds after local midnight, may be negative or past 24h */
};

struct tzfile {
	char *name;
	int64_t *times; /* transition instants, increasing */
	uint8_t *types; /* local time type after each transition */
	size_t count;
	int32_t *offsets; /* UTC offset of each local time type */
	size_t type_count;
	bool has_footer;    /* the POSIX rule below applies after the last transition */
	int32_t std_offset; /* seconds east */
	int32_t dst_offset;
	bool has_dst;
	struct tzfile_rule start; /* switch to DST, in standard local time */
	struct tzfile_rule end;   /* switch back, in DST local time */
};

void tzfile_free(struct tzfile *z)
{
	if (z == NULL)
		return;
	free(z->name);
	free(z->times);
	free(z->types);
	free(z->offsets);
	free(z);
}

const char *tzfile_name(const struct tzfile *z)
{
	return z->name;
}

static uint32_t tzfile_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t tzfile_be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)tzfile_be32(p) << 32 | tzfile_be32(p + 4));
}

struct tzfile_counts {
	uint32_t isut, isstd, leap, time, type, chars;
};

static void tzfile_read_counts(const unsigned char *h, struct tzfile_counts *c)
{
	c->isut = tzfile_be32(h + 20);
	c->isstd = tzfile_be32(h + 24);
	c->leap = tzfile_be32(h + 28);
	c->time = tzfile_be32(h + 32);
	c->type = tzfile_be32(h + 36);
	c->chars = tzfile_be32(h + 40);
}

/* Size of the data block after a header, with `tsize` bytes per time (4 or 8). */
static size_t tzfile_block_size(const struct tzfile_counts *c, size_t tsize)
{
	return (size_t)c->time * tsize + c->time + (size_t)c->type * 6 + c->chars +
	       (size_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

/* ---- the POSIX TZ rule of the footer ---- */

/* Reads [+-]hh[:mm[:ss]] into seconds; `max_hours` is 24 for offsets, 167 for times. */
static const char *tzfile_parse_seconds(const char *s, int max_hours, int32_t *out)
{
	int sign = 1;
	long parts[3] = {0, 0, 0};

	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	for (int i = 0; i < 3; i++) {
		char *end;

		if (!isdigit((unsigned char)*s))
			return NULL;
		parts[i] = strtol(s, &end, 10);
		s = end;
		if (*s != ':' || i == 2)
			break;
		s++;
	}
	if (parts[0] > max_hours || parts[1] > 59 || parts[2] > 59)
		return NULL;
	*out = (int32_t)(sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]));
	return s;
}

/* Skips a zone abbreviation: three or more letters, or anything between < and >. */
static const char *tzfile_skip_abbreviation(const char *s)
{
	const char *start = s;

	if (*s == '<') {
		s = strchr(s, '>');
		return s != NULL && s - start >= 4 ? s + 1 : NULL;
	}
	while (isalpha((unsigned char)*s))
		s++;
	return s - start >= 3 ? s : NULL;
}

static const char *tzfile_parse_rule(const char *s, struct tzfile_rule *r)
{
	char *end;

	r->time = 2 * 3600;
	if (*s == 'M') {
		r->kind = TZFILE_RULE_MONTH_WEEK;
		r->month = (int)strtol(s + 1, &end, 10);
		if (end == s + 1 || *end != '.')
			return NULL;
		s = end + 1;
		r->week = (int)strtol(s, &end, 10);
		if (end == s || *end != '.')
			return NULL;
		s = end + 1;
		r->day = (int)strtol(s, &end, 10);
		if (end == s || r->month < 1 || r->month > 12 || r->week < 1 || r->week > 5 ||
		    r->day < 0 || r->day > 6)
			return NULL;
	} else {
		bool julian = *s == 'J';

		if (julian)
			s++;
		if (!isdigit((unsigned char)*s))
			return NULL;
		r->kind = julian ? TZFILE_RULE_JULIAN : TZFILE_RULE_ZERO_BASED;
		r->day = (int)strtol(s, &end, 10);
		if ((julian && (r->day < 1 || r->day > 365)) || (!julian && r->day > 365))
			return NULL;
	}
	s = end;
	if (*s == '/')
		s = tzfile_parse_seconds(s + 1, 167, &r->time);
	return s;
}

/* Parses a footer such as "CET-1CEST,M3.5.0,M10.5.0/3"; POSIX offsets count west. */
static int tzfile_parse_footer(struct tzfile *z, const char *s)
{
	int32_t west;

	s = tzfile_skip_abbreviation(s);
	if (s == NULL || (s = tzfile_parse_seconds(s, 24, &west)) == NULL)
		return -1;
	z->std_offset = -west;
	z->has_footer = true;
	if (*s == '\0')
		return 0;
	s = tzfile_skip_abbreviation(s);
	if (s == NULL)
		return -1;
	z->has_dst = true;
	z->dst_offset = z->std_offset + 3600;
	if (*s != ',' && *s != '\0') {
		if ((s = tzfile_parse_seconds(s, 24, &west)) == NULL)
			return -1;
		z->dst_offset = -west;
	}
	if (*s == '\0') {
		/* POSIX leaves the default rule to the implementation; zic always writes one,
		 * so this is only reached with hand-made data. The US rule is glibc's choice. */
		s = "M3.2.0,M11.1.0";
	} else {
		s++;
	}
	if ((s = tzfile_parse_rule(s, &z->start)) == NULL || *s != ',')
		return -1;
	if ((s = tzfile_parse_rule(s + 1, &z->end)) == NULL || *s != '\0')
		return -1;
	return 0;
}

static bool tzfile_is_leap(int64_t year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/* Unix time of January 1, 00:00 UTC, of year. */
static int64_t tzfile_year_start(int64_t year)
{
	struct tm tm = {.tm_year = (int)(year - 1900), .tm_mday = 1};

	return (int64_t)timegm(&tm);
}

/* Seconds from January 1, 00:00 local to the rule's moment in year, in local time. */
static int64_t tzfile_rule_seconds(const struct tzfile_rule *r, int64_t year)
{
	static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int64_t day;

	switch (r->kind) {
	case TZFILE_RULE_JULIAN:
		day = r->day - 1 + (tzfile_is_leap(year) && r->day >= 60 ? 1 : 0);
		break;
	case TZFILE_RULE_ZERO_BASED:
		day = r->day;
		break;
	default: {
		int first_weekday;
		int mday;
		int length = month_days[r->month - 1] + (r->month == 2 && tzfile_is_leap(year));

		day = 0;
		for (int m = 1; m < r->month; m++)
			day += month_days[m - 1] + (m == 2 && tzfile_is_leap(year));
		/* 1970-01-01 was a Thursday (weekday 4). */
		first_weekday = (int)(((tzfile_year_start(year) / 86400 + day) % 7 + 11) % 7);
		mday = 1 + (r->day - first_weekday + 7) % 7 + 7 * (r->week - 1);
		while (mday > length)
			mday -= 7;
		day += mday - 1;
		break;
	}
	}
	return day * 86400 + r->time;
}

static int32_t tzfile_footer_offset(const struct tzfile *z, int64_t t)
{
	struct tm tm;
	time_t local = (time_t)(t + z->std_offset);
	int64_t year;
	int64_t start;
	int64_t end;

	if (!z->has_dst || gmtime_r(&local, &tm) == NULL)
		return z->std_offset;
	year = (int64_t)tm.tm_year + 1900;
	start = tzfile_year_start(year) + tzfile_rule_seconds(&z->start, year) - z->std_offset;
	end = tzfile_year_start(year) + tzfile_rule_seconds(&z->end, year) - z->dst_offset;
	if (start < end)
		return t >= start && t < end ? z->dst_offset : z->std_offset;
	/* Southern hemisphere: DST spans the new year. */
	return t >= end && t < start ? z->std_offset : z->dst_offset;
}

int32_t tzfile_offset(const struct tzfile *z, int64_t unix_s)
{
	size_t lo = 0;
	size_t hi;

	if (z->count == 0)
		return z->has_footer ? tzfile_footer_offset(z, unix_s) : z->offsets[0];
	/* Before the first transition the first local time type applies (RFC 8536). */
	if (unix_s < z->times[0])
		return z->offsets[0];
	if (unix_s >= z->times[z->count - 1] && z->has_footer)
		return tzfile_footer_offset(z, unix_s);
	hi = z->count;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (z->times[mid] <= unix_s)
			lo = mid;
		else
			hi = mid;
	}
	return z->offsets[z->types[lo]];
}

/* ---- the file ---- */

static struct tzfile *tzfile_fail(struct tzfile *z, char *error, size_t size, const char *why)
{
	snprintf(error, size, "time zone %s: invalid TZif data (%s)", z->name, why);
	tzfile_free(z);
	return NULL;
}

/* Reads the transitions and types of the block at p, `tsize` bytes per time. */
static void tzfile_read_block(struct tzfile *z, const unsigned char *p,
			      const struct tzfile_counts *c, size_t tsize)
{
	z->count = c->time;
	z->type_count = c->type;
	z->times = xcalloc(c->time + 1, sizeof(*z->times));
	z->types = xcalloc(c->time + 1, 1);
	z->offsets = xcalloc(c->type, sizeof(*z->offsets));
	for (size_t i = 0; i < c->time; i++)
		z->times[i] = tsize == 8 ? tzfile_be64(p + i * 8) : (int32_t)tzfile_be32(p + i * 4);
	p += (size_t)c->time * tsize;
	memcpy(z->types, p, c->time);
	p += c->time;
	for (size_t i = 0; i < c->type; i++)
		z->offsets[i] = (int32_t)tzfile_be32(p + i * 6);
}

struct tzfile *tzfile_parse(const char *name, const unsigned char *data, size_t length, char *error,
			    size_t size)
{
	struct tzfile *z = xcalloc(1, sizeof(*z));
	struct tzfile_counts c;
	size_t tsize = 4;
	const unsigned char *p = data;
	size_t block;

	z->name = xstrdup(name);
	if (length < TZFILE_HEADER || memcmp(data, "TZif", 4) != 0)
		return tzfile_fail(z, error, size, "no TZif header");
	tzfile_read_counts(p, &c);
	if (data[4] >= '2') {
		/* Version 2 and later repeat the data with 64-bit times after the v1 block. */
		block = tzfile_block_size(&c, 4);
		if (length - TZFILE_HEADER < block ||
		    length - TZFILE_HEADER - block < TZFILE_HEADER)
			return tzfile_fail(z, error, size, "truncated");
		p += TZFILE_HEADER + block;
		if (memcmp(p, "TZif", 4) != 0)
			return tzfile_fail(z, error, size, "no second header");
		tzfile_read_counts(p, &c);
		tsize = 8;
	}
	p += TZFILE_HEADER;
	block = tzfile_block_size(&c, tsize);
	if (c.type == 0 || c.type > 256 || c.time > 100000 || (size_t)(data + length - p) < block)
		return tzfile_fail(z, error, size, "bad counts");
	for (size_t i = 0; i < c.time; i++)
		if (p[(size_t)c.time * tsize + i] >= c.type)
			return tzfile_fail(z, error, size, "bad type index");
	/* NOTE: leap second records ("right/" zones) are ignored, so such a zone reads up to
	 * 27 seconds off; the usual zones have none. */
	tzfile_read_block(z, p, &c, tsize);
	p += block;
	if (tsize == 8 && p < data + length && *p == '\n') {
		const unsigned char *nl = memchr(p + 1, '\n', (size_t)(data + length - p - 1));
		char *footer;
		int rc;

		if (nl == NULL)
			return tzfile_fail(z, error, size, "unterminated footer");
		footer = xstrndup((const char *)p + 1, (size_t)(nl - p - 1));
		rc = footer[0] == '\0' ? 0 : tzfile_parse_footer(z, footer);
		free(footer);
		if (rc < 0)
			return tzfile_fail(z, error, size, "unsupported TZ rule in the footer");
	}
	return z;
}

static bool tzfile_valid_name(const char *name)
{
	if (name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL)
		return false;
	return name[strspn(name,
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_+-")] ==
	       '\0';
}

static struct tzfile *tzfile_utc(const char *name)
{
	struct tzfile *z = xcalloc(1, sizeof(*z));

	z->name = xstrdup(name);
	z->type_count = 1;
	z->offsets = xcalloc(1, sizeof(*z->offsets));
	return z;
}

/* Reads a whole file of at most TZFILE_MAX_SIZE bytes; NULL with errno set on failure. */
static unsigned char *tzfile_read_file(const char *path, size_t *length)
{
	FILE *f = fopen(path, "rb");
	unsigned char *data;
	size_t n;

	if (f == NULL)
		return NULL;
	data = xmalloc(TZFILE_MAX_SIZE);
	n = fread(data, 1, TZFILE_MAX_SIZE, f);
	if (ferror(f) || n == TZFILE_MAX_SIZE) {
		int saved = ferror(f) ? EIO : EFBIG;

		fclose(f);
		free(data);
		errno = saved;
		return NULL;
	}
	fclose(f);
	*length = n;
	return data;
}

struct tzfile *tzfile_load(const char *name, char *error, size_t size)
{
	const char *dir = getenv("TZDIR");
	struct tzfile *z;
	unsigned char *data;
	size_t length = 0;
	char *path;

	if (strcmp(name, "UTC") == 0)
		return tzfile_utc(name);
	if (strcmp(name, "Local") == 0) {
		path = xstrdup("/etc/localtime");
	} else if (!tzfile_valid_name(name)) {
		snprintf(error, size,
			 "invalid time zone name \"%s\"; expected an IANA name such as "
			 "\"Europe/Berlin\", \"UTC\" or \"Local\"",
			 name);
		return NULL;
	} else {
		path = xasprintf("%s/%s",
				 dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo", name);
	}
	data = tzfile_read_file(path, &length);
	if (data == NULL) {
		if (errno == ENOENT && strcmp(name, "Local") == 0) {
			/* Without /etc/localtime, the C library's local time is UTC as well. */
			free(path);
			return tzfile_utc(name);
		}
		snprintf(error, size, "unknown time zone \"%s\": cannot read %s (%s)", name, path,
			 strerror(errno));
		free(path);
		return NULL;
	}
	free(path);
	z = tzfile_parse(name, data, length, error, size);
	free(data);
	return z;
}
