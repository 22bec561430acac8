/*
 * Secrets read from files named in the config (password_file, bearer_token_file): the
 * config itself then holds no secret and can stay world-readable, while the file is
 * checked like ~/.pgpass is by libpq.
 */
#ifndef TOCSIN_SECRET_H
#define TOCSIN_SECRET_H

#include <stddef.h>

struct cfg_map;

/*
 * Reads the one-line secret in `path`, named by `key` of `m` in error messages. The file
 * must be a regular file that others cannot read, write or execute (group read is fine,
 * so a package can give tocsind's group a root-owned file), at most `max` bytes, and one
 * line of text (a trailing line break is dropped). Returns an allocated copy, or NULL
 * with the error recorded in the config. The secret itself is never part of a message.
 */
char *secret_read_file(struct cfg_map *m, const char *key, const char *path, size_t max);

/* Overwrites and frees a secret returned by secret_read_file; NULL is accepted. */
void secret_free(char *secret);

#endif
