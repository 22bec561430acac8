/*
 * Allocation wrappers that abort on failure; see xalloc.h for the policy.
 */
#include "collector/xalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/log.h"

static void xalloc_die(size_t size)
{
	log_error("xalloc", NULL, "out of memory allocating %zu bytes; aborting", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL)
		xalloc_die(size);
	return p;
}

void *xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);

	if (p == NULL)
		xalloc_die(count * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
		xalloc_die(size);
	return p;
}

void *xreallocarray_grow(void *ptr, size_t *capacity, size_t need, size_t size)
{
	size_t cap = *capacity;

	if (need <= cap)
		return ptr;
	if (cap == 0)
		cap = 8;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			xalloc_die(SIZE_MAX);
		cap *= 2;
	}
	if (size != 0 && cap > SIZE_MAX / size)
		xalloc_die(SIZE_MAX);
	ptr = xrealloc(ptr, cap * size);
	*capacity = cap;
	return ptr;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		xalloc_die(strlen(fmt));
	va_end(ap);
	return p;
}
