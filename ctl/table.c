/*
 * Aligned text tables (see table.h). Cells are stored as copies until the table is printed,
 * because every column's width depends on all of its rows.
 */
#include "ctl/table.h"

#include <stdlib.h>
#include <string.h>

#include "collector/xalloc.h"

struct ctl_table {
	size_t columns;
	char **cells; /* row-major; row 0 is the header */
	size_t rows;
	size_t capacity; /* in rows */
};

/* Counts UTF-8 code points: every byte that is not a continuation byte starts one. */
static size_t display_width(const char *s)
{
	size_t width = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p & 0xC0) != 0x80)
			width++;
	}
	return width;
}

struct ctl_table *ctl_table_new(size_t columns, const char *const *headers)
{
	struct ctl_table *t = xcalloc(1, sizeof(*t));
	t->columns = columns;
	ctl_table_add_row(t, headers);
	return t;
}

void ctl_table_add_row(struct ctl_table *t, const char *const *cells)
{
	t->cells =
	    xreallocarray_grow(t->cells, &t->capacity, t->rows + 1, t->columns * sizeof(*t->cells));
	char **row = t->cells + t->rows * t->columns;
	for (size_t c = 0; c < t->columns; c++) {
		row[c] = xstrdup(cells[c] != NULL ? cells[c] : "-");
		/* A newline or tab in a comment or label value would break the alignment. */
		for (char *p = row[c]; *p != '\0'; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7F)
				*p = ' ';
		}
	}
	t->rows++;
}

void ctl_table_print(const struct ctl_table *t, FILE *out)
{
	size_t *widths = xcalloc(t->columns, sizeof(*widths));
	for (size_t r = 0; r < t->rows; r++) {
		for (size_t c = 0; c < t->columns; c++) {
			size_t w = display_width(t->cells[r * t->columns + c]);
			if (w > widths[c])
				widths[c] = w;
		}
	}

	for (size_t r = 0; r < t->rows; r++) {
		for (size_t c = 0; c < t->columns; c++) {
			const char *cell = t->cells[r * t->columns + c];
			fputs(cell, out);
			if (c + 1 == t->columns)
				break;
			for (size_t pad = display_width(cell); pad < widths[c] + 2; pad++)
				fputc(' ', out);
		}
		fputc('\n', out);
	}
	free(widths);
}

void ctl_table_free(struct ctl_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->rows * t->columns; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
