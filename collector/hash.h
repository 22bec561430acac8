/*
 * Stable, non-cryptographic hashing (64-bit FNV-1a). Used where a value must not change
 * between runs or builds: probe schedule offsets, RRD file names, sharding.
 */
#ifndef TOCSIN_HASH_H
#define TOCSIN_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_OFFSET 0xcbf29ce484222325ULL

uint64_t hash_bytes(uint64_t seed, const void *data, size_t len);
uint64_t hash_string(uint64_t seed, const char *s);

#endif
