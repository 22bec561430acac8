/*
 * Aligned text tables for tocsinctl: a header row and data rows whose columns are as wide
 * as their widest cell, separated by two spaces. Widths count UTF-8 code points, so label
 * values outside ASCII stay aligned as long as the terminal shows one cell per code point.
 */
#ifndef TOCSIN_CTL_TABLE_H
#define TOCSIN_CTL_TABLE_H

#include <stddef.h>
#include <stdio.h>

struct ctl_table;

/* Creates a table with `columns` columns named by `headers` (copied). Never returns NULL:
 * allocation failure aborts (collector/xalloc.h). */
struct ctl_table *ctl_table_new(size_t columns, const char *const *headers);
/* Appends a row of `columns` cells (copied). A NULL cell prints as "-", and control
 * characters print as spaces. */
void ctl_table_add_row(struct ctl_table *t, const char *const *cells);
/* Prints the header and every row to `out`. The last column is not padded. */
void ctl_table_print(const struct ctl_table *t, FILE *out);
void ctl_table_free(struct ctl_table *t);

#endif
