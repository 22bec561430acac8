/*
 * Sharding: `shard: I/N` (or --shard I/N) splits the probes among N instances that share
 * one config. Each probe, and each discovered target (by its probe name TEMPLATE/TARGET),
 * belongs to exactly one shard, chosen by a hash of its name alone, so every instance
 * agrees on the split without talking to the others.
 */
#ifndef TOCSIN_SHARD_H
#define TOCSIN_SHARD_H

#include <stdbool.h>

struct cfg_map;
struct config;

/*
 * Returns the shard (0 to count - 1) that runs the probe named `name`: the 64-bit FNV-1a
 * hash of the name's bytes followed by one zero byte (offset basis 0xcbf29ce484222325,
 * prime 0x100000001b3), passed through MurmurHash3's fmix64 finalizer, modulo count. This
 * value is an interface: operators compute it to predict where a probe runs (the
 * configuration guide shows how), so it must not change between releases. A count of 0
 * counts as 1.
 */
unsigned shard_of(const char *name, unsigned count);

/* True when the instance that is shard `index` of `count` runs `name`. With a count of
 * 0 or 1 (no sharding), every name is its own. */
bool shard_owns(unsigned index, unsigned count, const char *name);

/*
 * Parses "I/N": decimal digits only, 1 <= N <= SHARD_COUNT_MAX, 0 <= I < N. Returns NULL
 * and sets both outputs, or returns a static text saying what is wrong (for an error
 * message that names the value and its source) and leaves them alone.
 */
#define SHARD_COUNT_MAX 65536
const char *shard_parse(const char *text, unsigned *index, unsigned *count);

/* Reads the top-level `shard` key into cfg, recording an error at the value when it is
 * invalid. */
void shard_read_config(struct cfg_map *root, struct config *cfg);

/* Applies a --shard value over the config's. Returns 0, or -1 with *error set (caller
 * frees) when the text is invalid. */
int shard_set(struct config *cfg, const char *text, char **error);

#endif
