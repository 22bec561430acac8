/*
 * The list of probe types compiled into tocsind, looked up by config name. Adding a type
 * means adding its descriptor here and nowhere else.
 */
#include "probes/probe.h"

#include <string.h>

extern const struct probe_type probe_type_host;

static const struct probe_type *const probe_types[] = {
    &probe_type_host,
};

#define PROBE_TYPE_COUNT (sizeof(probe_types) / sizeof(probe_types[0]))

const struct probe_type *probe_type_find(const char *name)
{
	for (size_t i = 0; i < PROBE_TYPE_COUNT; i++) {
		if (strcmp(probe_types[i]->name, name) == 0)
			return probe_types[i];
	}
	return NULL;
}

const char *probe_type_names(void)
{
	static char names[256];

	if (names[0] == '\0') {
		for (size_t i = 0; i < PROBE_TYPE_COUNT; i++) {
			if (i > 0)
				strncat(names, ", ", sizeof(names) - strlen(names) - 1);
			strncat(names, probe_types[i]->name, sizeof(names) - strlen(names) - 1);
		}
	}
	return names;
}
