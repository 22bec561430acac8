/*
 * Assignment of probes to shards; see shard.h. The hash is hash.h's FNV-1a followed by a
 * fixed finalizer, both defined bit for bit, so an assignment never moves between versions
 * or machines.
 */
#include "collector/shard.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector/cfg.h"
#include "collector/config.h"
#include "collector/hash.h"
#include "collector/xalloc.h"

/*
 * MurmurHash3's 64-bit finalizer ("fmix64"). FNV-1a alone spreads names badly modulo
 * small counts because its prime is 1 modulo 3 and modulo 5: "probe-01" to "probe-30" all
 * land in one shard of three, and in one of five. The finalizer folds the well-mixed high
 * bits into the low ones, and its constants are fixed, so the result stays stable.
 */
static uint64_t shard_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

unsigned shard_of(const char *name, unsigned count)
{
	if (count <= 1)
		return 0;
	return (unsigned)(shard_mix(hash_string(HASH_FNV_OFFSET, name)) % count);
}

bool shard_owns(unsigned index, unsigned count, const char *name)
{
	return count <= 1 || shard_of(name, count) == index;
}

/* Parses a run of decimal digits up to SHARD_COUNT_MAX; NULL when there is none or the
 * value is larger. */
static const char *parse_number(const char *p, unsigned long *out)
{
	unsigned long value = 0;

	if (*p < '0' || *p > '9')
		return NULL;
	for (; *p >= '0' && *p <= '9'; p++) {
		value = value * 10 + (unsigned long)(*p - '0');
		if (value > SHARD_COUNT_MAX)
			return NULL;
	}
	*out = value;
	return p;
}

const char *shard_parse(const char *text, unsigned *index, unsigned *count)
{
	unsigned long i;
	unsigned long n;
	const char *p = parse_number(text, &i);

	if (p == NULL || *p != '/' || (p = parse_number(p + 1, &n)) == NULL || *p != '\0')
		return "is not of the form I/N (two decimal numbers, e.g. 0/3)";
	if (n == 0)
		return "has N = 0, but N is the number of instances and must be at least 1";
	if (i >= n)
		return "has I >= N, but I is this instance's number, from 0 to N - 1";
	*index = (unsigned)i;
	*count = (unsigned)n;
	return NULL;
}

void shard_read_config(struct cfg_map *root, struct config *cfg)
{
	char quoted[CFG_QUOTE_SIZE];
	const char *problem;
	char *text;

	if (cfg_get_string(root, "shard", &text) != 1)
		return;
	problem = shard_parse(text, &cfg->shard_index, &cfg->shard_count);
	if (problem != NULL)
		cfg_error(root, "shard",
			  "%s %s; expected I/N with 0 <= I < N <= %d, for example \"shard: 0/3\" "
			  "on the first of three instances",
			  cfg_quote(text, quoted, sizeof quoted), problem, SHARD_COUNT_MAX);
	free(text);
}

int shard_set(struct config *cfg, const char *text, char **error)
{
	const char *problem = shard_parse(text, &cfg->shard_index, &cfg->shard_count);

	if (problem == NULL)
		return 0;
	*error = xasprintf("\"%s\" %s; expected I/N with 0 <= I < N <= %d, for example "
			   "--shard 0/3 on the first of three instances",
			   text, problem, SHARD_COUNT_MAX);
	return -1;
}
