/*
 * Unit tests of the shard assignment: fixed names map to fixed shards in every release
 * (the expected values were computed once, outside tocsin, from the definitions of FNV-1a
 * and MurmurHash3's fmix64),
 * every name belongs to exactly one shard, and "I/N" parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "collector/hash.h"
#include "collector/shard.h"

struct shard_case {
	const char *name;
	uint64_t hash;
	unsigned of2;
	unsigned of3;
	unsigned of7;
};

static const struct shard_case shard_cases[] = {
    {"web", 0x3d7d6ef619ea9383ULL, 0, 0, 6},
    {"db", 0xca897a18f45414b9ULL, 0, 1, 4},
    {"dns/a.example.org:53", 0xe78f462f9d97cddeULL, 0, 0, 2},
    {"cpu", 0x2135c190944c518bULL, 1, 2, 2},
    {"Disk Usage C:\\", 0x3b607019e8953420ULL, 0, 1, 2},
    {"api/10.0.0.1:443", 0x93c4a636e902e4a1ULL, 0, 2, 3},
    {"ping", 0x1314606615b6042bULL, 1, 1, 6},
};

static void fixed_names_map_to_fixed_shards(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(shard_cases) / sizeof(shard_cases[0]); i++) {
		const struct shard_case *c = &shard_cases[i];

		/* The documented hash starts from FNV-1a over the name and a zero byte. */
		assert_int_equal(hash_string(HASH_FNV_OFFSET, c->name), c->hash);
		assert_int_equal(shard_of(c->name, 2), c->of2);
		assert_int_equal(shard_of(c->name, 3), c->of3);
		assert_int_equal(shard_of(c->name, 7), c->of7);
	}
}

static void no_sharding_owns_everything(void **state)
{
	(void)state;
	assert_int_equal(shard_of("web", 0), 0);
	assert_int_equal(shard_of("web", 1), 0);
	assert_true(shard_owns(0, 0, "web"));
	assert_true(shard_owns(0, 1, "web"));
}

static void every_name_has_one_shard(void **state)
{
	char name[32];

	(void)state;
	for (unsigned count = 1; count <= 9; count++) {
		unsigned per_shard[9] = {0};

		for (unsigned n = 0; n < 500; n++) {
			unsigned owners = 0;

			snprintf(name, sizeof name, "probe-%u", n);
			for (unsigned index = 0; index < count; index++) {
				if (shard_owns(index, count, name)) {
					owners++;
					per_shard[index]++;
				}
			}
			assert_int_equal(owners, 1);
			assert_true(shard_of(name, count) < count);
		}
		/* The hash spreads names: no shard of up to nine is left empty by 500 names. */
		for (unsigned index = 0; index < count; index++)
			assert_true(per_shard[index] > 0);
	}
}

/* Plain FNV-1a modulo 3, or modulo 5, puts all of these names in one shard. */
static void numbered_names_spread(void **state)
{
	char name[32];

	(void)state;
	for (unsigned count = 3; count <= 5; count += 2) {
		unsigned per_shard[5] = {0};

		for (unsigned n = 1; n <= 30; n++) {
			snprintf(name, sizeof name, "probe-%02u", n);
			per_shard[shard_of(name, count)]++;
		}
		for (unsigned index = 0; index < count; index++)
			assert_true(per_shard[index] > 0);
	}
}

static void parse_accepts_valid_values(void **state)
{
	unsigned index = 99;
	unsigned count = 99;

	(void)state;
	assert_null(shard_parse("0/1", &index, &count));
	assert_int_equal(index, 0);
	assert_int_equal(count, 1);
	assert_null(shard_parse("2/3", &index, &count));
	assert_int_equal(index, 2);
	assert_int_equal(count, 3);
	assert_null(shard_parse("65535/65536", &index, &count));
	assert_int_equal(index, 65535);
	assert_int_equal(count, SHARD_COUNT_MAX);
}

static void parse_rejects_invalid_values(void **state)
{
	static const char *const invalid[] = {
	    "",     "3",    "/3",   "1/",   "3/3",   "4/3", "0/0",   "-1/3",    "1/-3",
	    "+1/3", " 1/3", "1/3 ", "1 /3", "1/3/4", "a/3", "1/0x3", "0/65537", "99999999999/3",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		unsigned index = 7;
		unsigned count = 8;

		assert_non_null(shard_parse(invalid[i], &index, &count));
		/* A rejected value leaves the outputs alone. */
		assert_int_equal(index, 7);
		assert_int_equal(count, 8);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(fixed_names_map_to_fixed_shards),
	    cmocka_unit_test(no_sharding_owns_everything),
	    cmocka_unit_test(every_name_has_one_shard),
	    cmocka_unit_test(numbered_names_spread),
	    cmocka_unit_test(parse_accepts_valid_values),
	    cmocka_unit_test(parse_rejects_invalid_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
