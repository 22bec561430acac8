/*
 * --once: run every configured probe one time, print each run's samples and result on
 * stdout, and report whether all of them succeeded. Nothing is archived or served. With a
 * shard set, it first prints each probe's shard and then runs only its own.
 */
#ifndef TOCSIN_ONCE_H
#define TOCSIN_ONCE_H

#include <stdio.h>

struct config;

/* Returns the exit status: 0 when every probe succeeded, 1 otherwise. */
int once_run(struct config *cfg, FILE *out);

#endif
