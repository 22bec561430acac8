/*
 * 64-bit FNV-1a. Chosen for stability (the same input gives the same value on every
 * platform and release, so file names and schedule offsets never move), not for
 * resistance to crafted input: no table here is keyed by untrusted data alone.
 */
#include "collector/hash.h"

#define FNV_PRIME 0x100000001b3ULL

uint64_t hash_bytes(uint64_t seed, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

uint64_t hash_string(uint64_t seed, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint64_t h = seed;

	/* Include the terminator so that ("ab","c") and ("a","bc") hash differently; one pass
	 * instead of strlen() and hash_bytes(), with the same value. */
	do {
		h ^= *p;
		h *= FNV_PRIME;
	} while (*p++ != '\0');
	return h;
}
