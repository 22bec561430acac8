/*
 * Reading YAML configuration with positions. A `struct cfg` holds one parsed file and
 * the errors found in it; `struct cfg_map` and `struct cfg_seq` walk its mappings and
 * sequences while tracking the key path ("probes[2].interval") for messages.
 *
 * Every error is recorded, never printed, in the form
 *   FILE:LINE:COLUMN: KEY.PATH: PROBLEM
 * with 1-based line and column of the offending value, so that a loader can walk the
 * whole file and report every error in one run.
 *
 * Getters return 1 when the key is present and valid (and set *out), 0 when it is absent
 * (and leave *out alone), and -1 when it is present but invalid (error recorded).
 * Every key a getter asks for counts as known; cfg_map_finish() then reports each key of
 * the mapping that no getter asked for as unknown, with the closest known key as a hint.
 * Key arguments are kept by pointer until cfg_map_finish(), so pass string literals.
 *
 * A YAML null (a key with nothing after the colon, "~" or "null") counts as absent for the
 * mapping, sequence, list and map getters, and as an error for the scalar getters.
 * cfg_get_map(), cfg_get_seq() and cfg_seq_map() always initialize their output, so
 * closing it with cfg_map_finish() is safe whatever they return.
 */
#ifndef TOCSIN_CFG_H
#define TOCSIN_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;

#define CFG_PATH_MAX 256

struct cfg_map {
	struct cfg *cfg;
	int node;                /* libyaml node index of the mapping, 0 if none */
	char path[CFG_PATH_MAX]; /* key path of the mapping itself, "" for the root */
	bool *used;              /* per pair: asked for by a getter */
	const char **known;      /* keys asked for, for the "did you mean" hint */
	size_t known_count;
	size_t known_capacity;
};

struct cfg_seq {
	struct cfg *cfg;
	int node;
	char path[CFG_PATH_MAX];
};

/* Parses a file or a string (`name` is used in messages). Never NULL; check the errors. */
struct cfg *cfg_parse_file(const char *path);
struct cfg *cfg_parse_string(const char *name, const char *text, size_t length);
void cfg_free(struct cfg *cfg);

size_t cfg_error_count(const struct cfg *cfg);
/* hash_bytes() of the whole source text, for telling a changed file from a reread one. */
uint64_t cfg_source_hash(const struct cfg *cfg);
/* All errors recorded so far, one per line, in the order found; "" when none. */
const char *cfg_errors(const struct cfg *cfg);
const char *cfg_file_name(const struct cfg *cfg);

/* Opens the document's root mapping; -1 (error recorded) when the root is not a mapping. */
int cfg_root(struct cfg *cfg, struct cfg_map *root);

/* Opens the document's root sequence (an empty document is an empty one); -1 (error
 * recorded) when the root is something else. */
int cfg_root_seq(struct cfg *cfg, struct cfg_seq *root);

/* Records an error at the value of `key` in `m` (or at the mapping when key is NULL). */
void cfg_error(struct cfg_map *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records an error at item `index` of `s`. */
void cfg_seq_error(struct cfg_seq *s, size_t index, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes "FILE:LINE:COLUMN" of the value of `key` (or of the mapping) into buf. */
const char *cfg_location(const struct cfg_map *m, const char *key, char *buf, size_t size);
/*
 * Sets the 1-based *line and *column of the first character of the text of the scalar
 * value of `key`: past the opening quote of a quoted scalar, and on the line after the
 * "|" or ">" of a block scalar, at its indentation. Expression parsers count their own
 * positions from there. Returns false, leaving both alone, when the key is absent or its
 * value is not a scalar.
 */
bool cfg_value_position(const struct cfg_map *m, const char *key, int *line, int *column);

/* True when the mapping has `key`; marks it known but not used. */
bool cfg_has(struct cfg_map *m, const char *key);

enum cfg_kind {
	CFG_KIND_ABSENT,
	CFG_KIND_NULL,
	CFG_KIND_SCALAR,
	CFG_KIND_SEQUENCE,
	CFG_KIND_MAPPING,
};

/* Kind of the value of `key`, for keys that accept several forms; marks it known only. */
enum cfg_kind cfg_kind(struct cfg_map *m, const char *key);

/* Number of keys in the mapping, and key `index` in file order (NULL if not a string). */
size_t cfg_map_size(const struct cfg_map *m);
const char *cfg_map_key(const struct cfg_map *m, size_t index);

int cfg_get_string(struct cfg_map *m, const char *key, char **out);
int cfg_get_bool(struct cfg_map *m, const char *key, bool *out);
int cfg_get_int(struct cfg_map *m, const char *key, int64_t min, int64_t max, int64_t *out);
int cfg_get_double(struct cfg_map *m, const char *key, double *out);
int cfg_get_duration_ms(struct cfg_map *m, const char *key, uint64_t *out);
int cfg_get_size(struct cfg_map *m, const char *key, uint64_t *out);
/* A sequence of scalars. *out is a NULL-terminated array of copies. */
int cfg_get_string_list(struct cfg_map *m, const char *key, char ***out, size_t *count);
/* A mapping of scalar to scalar, in file order: *names and *values are parallel arrays. */
int cfg_get_string_map(struct cfg_map *m, const char *key, char ***names, char ***values,
		       size_t *count);
/* Opens a nested mapping; close it with cfg_map_finish(). */
int cfg_get_map(struct cfg_map *m, const char *key, struct cfg_map *sub);
int cfg_get_seq(struct cfg_map *m, const char *key, struct cfg_seq *seq);

size_t cfg_seq_count(const struct cfg_seq *s);
/* Item `index` as a mapping (close with cfg_map_finish) or as a scalar copy. */
int cfg_seq_map(struct cfg_seq *s, size_t index, struct cfg_map *item);
int cfg_seq_string(struct cfg_seq *s, size_t index, char **out);

/*
 * The mapping's source text, re-indented so that it parses on its own as a document
 * (probe templates are instantiated from it). NULL when unknown. The caller frees it.
 */
char *cfg_map_source(const struct cfg_map *m);

/* Hash of the YAML subtree under the mapping (keys, values, order): detects changes. */
uint64_t cfg_map_fingerprint(const struct cfg_map *m);

/* Reports every key no getter asked for, frees the tracking arrays. Always call it. */
void cfg_map_finish(struct cfg_map *m);
/*
 * Frees the tracking arrays without reporting unknown keys: for a mapping whose keys
 * cannot be known, such as a probe whose type is missing or invalid.
 */
void cfg_map_discard(struct cfg_map *m);

/* Size of a buffer for cfg_quote(); longer values are shortened with "...". */
#define CFG_QUOTE_SIZE 96
/*
 * Writes `value` in double quotes for a message, escaping quotes, backslashes and control
 * characters. Returns buf.
 */
const char *cfg_quote(const char *value, char *buf, size_t size);

/* Frees arrays returned by cfg_get_string_list / cfg_get_string_map. */
void cfg_strv_free(char **v);

#endif
