/*
 * Formatting helpers of tocsinctl (see format.h).
 */
#include "ctl/format.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/units.h"
#include "collector/xalloc.h"

int ctl_print_json(const json_t *data)
{
	char *text = json_dumps(data, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (text == NULL) {
		fprintf(stderr, "tocsinctl: out of memory encoding the reply as JSON\n");
		return -1;
	}
	puts(text);
	free(text);
	return 0;
}

const char *ctl_json_string(const json_t *object, const char *key)
{
	return json_string_value(json_object_get(object, key));
}

char *ctl_quote(const char *value)
{
	char *out = xmalloc(strlen(value) * 2 + 3);
	char *p = out;
	*p++ = '"';
	for (const char *s = value; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\') {
			*p++ = '\\';
			*p++ = *s;
		} else if (*s == '\n') {
			*p++ = '\\';
			*p++ = 'n';
		} else {
			*p++ = *s;
		}
	}
	*p++ = '"';
	*p = '\0';
	return out;
}

char *ctl_format_labels(const json_t *labels, bool metric_name)
{
	const char *name = metric_name ? ctl_json_string(labels, "__name__") : NULL;
	char *out = xstrdup(name != NULL ? name : "");
	size_t written = 0;
	const char *key;
	json_t *value;

	json_object_foreach((json_t *)labels, key, value)
	{
		if (name != NULL && strcmp(key, "__name__") == 0)
			continue;
		char *quoted = ctl_quote(json_is_string(value) ? json_string_value(value) : "");
		char *next = xasprintf("%s%s%s=%s", out, written == 0 ? "{" : ", ", key, quoted);
		free(quoted);
		free(out);
		out = next;
		written++;
	}
	if (written > 0 || name == NULL) {
		char *next = xasprintf("%s%s}", out, written == 0 ? "{" : "");
		free(out);
		out = next;
	}
	return out;
}

int ctl_format_deadline(const char *duration, char *buf, size_t size)
{
	uint64_t ms;
	if (units_parse_duration_ms(duration, &ms) != 0 || ms == 0)
		return -1;

	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t now_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	if (ms > UINT64_MAX - now_ms)
		return -1;
	uint64_t at_ms = now_ms + ms;
	time_t at = (time_t)(at_ms / 1000);
	struct tm tm;
	if (gmtime_r(&at, &tm) == NULL || tm.tm_year + 1900 > 9999)
		return -1;
	char seconds[24];
	strftime(seconds, sizeof(seconds), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%03" PRIu64 "Z", seconds, at_ms % 1000);
	return 0;
}

void ctl_format_seconds(double seconds, char *buf, size_t size)
{
	if (!(seconds >= 0) || seconds > 1e12) {
		snprintf(buf, size, "-");
		return;
	}
	uint64_t ms = seconds < 60 ? (uint64_t)(seconds * 1000) : (uint64_t)seconds * 1000;
	units_format_duration(ms, buf, size);
}
