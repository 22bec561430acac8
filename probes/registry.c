/*
 * The list of probe types compiled into tocsind, looked up by config name. Adding a type
 * means adding its descriptor here and nowhere else.
 */
#include "probes/probe.h"

#include <string.h>

extern const struct probe_type probe_type_host;
extern const struct probe_type probe_type_exec;
extern const struct probe_type probe_type_dns;
extern const struct probe_type probe_type_icmp;
extern const struct probe_type probe_type_tcp;
extern const struct probe_type probe_type_http;
extern const struct probe_type probe_type_postgres;
extern const struct probe_type probe_type_libvirt;

static const struct probe_type *const probe_types[] = {
    &probe_type_host, &probe_type_exec, &probe_type_dns,      &probe_type_icmp,
    &probe_type_tcp,  &probe_type_http, &probe_type_postgres, &probe_type_libvirt,
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
