/*
 * Allocation wrappers. tocsin's out-of-memory policy: an allocation failure is not
 * recoverable for a monitoring daemon (partial state is worse than a restart by the
 * service manager), so these log one line at error level and abort().
 */
#ifndef TOCSIN_XALLOC_H
#define TOCSIN_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grows an array to hold at least `need` elements of `size` bytes, doubling its capacity. */
void *xreallocarray_grow(void *ptr, size_t *capacity, size_t need, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
