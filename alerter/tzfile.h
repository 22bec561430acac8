/*
 * Time zones for time intervals: a reader of the TZif files of the IANA time zone
 * database (RFC 8536, versions 1 to 4) and of the POSIX TZ rule in their footer. It gives
 * the UTC offset of a zone at any instant without touching the process's TZ, which
 * tzset() would change for every thread and every other module.
 */
#ifndef TOCSIN_TZFILE_H
#define TOCSIN_TZFILE_H

#include <stddef.h>
#include <stdint.h>

struct tzfile;

/*
 * Loads zone `name`: "UTC", "Local" (the file /etc/localtime, or UTC when there is none)
 * or an IANA name such as "Europe/Berlin", read from $TZDIR or /usr/share/zoneinfo.
 * Names that are absolute or contain ".." are rejected. Returns NULL with the problem in
 * error when the zone cannot be read. Reads a file: call it at config load, not per alert.
 */
struct tzfile *tzfile_load(const char *name, char *error, size_t size);

/* Parses TZif data already in memory (for tests and for tzfile_load). */
struct tzfile *tzfile_parse(const char *name, const unsigned char *data, size_t length, char *error,
			    size_t size);

void tzfile_free(struct tzfile *z);

/* The name it was loaded with. */
const char *tzfile_name(const struct tzfile *z);

/* Offset of local time from UTC, in seconds east (Berlin in summer: 7200), at unix_s. */
int32_t tzfile_offset(const struct tzfile *z, int64_t unix_s);

#endif
