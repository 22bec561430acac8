/*
 * --test-rules: rule unit tests in the file format of `promtool test rules`, run on a
 * virtual clock. Each test group loads its input series (collector/series_notation.h)
 * into a fresh series registry and window store. It evaluates every rule group at every
 * multiple of evaluation_interval from 0 up to the group's largest eval_time. At each
 * test's eval_time it compares the firing alerts or the result of an instant query.
 * docs/rules.md ("Testing rules") describes the format and where tocsin differs from
 * promtool.
 */
#ifndef TOCSIN_RULETEST_H
#define TOCSIN_RULETEST_H

#include <stddef.h>
#include <stdio.h>

/*
 * Runs the test files in order. Writes "Unit testing: FILE", then "  SUCCESS" or
 * "  FAILED:" with one entry per failed check (location, test, time, expected and
 * actual results) to `out`. Errors in a test file or in the rule files it names (each
 * "FILE:LINE:COLUMN: KEY.PATH: PROBLEM") go to `err`, and that file fails. Returns the
 * exit status: 0 when every file passed, 1 otherwise.
 */
int ruletest_run(char *const *paths, size_t count, FILE *out, FILE *err);

#endif
