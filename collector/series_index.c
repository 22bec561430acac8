/*
 * Label indexes of a family: for a label name, a hash table from each value to the
 * family's series that carry it, in the family's order. An index is built on the first lookup
 * of its name and dropped whenever the family gains or loses a series. That is cheap
 * because families change far less often than rules read them.
 */
#include <stdlib.h>
#include <string.h>

#include "collector/hash.h"
#include "collector/series.h"
#include "collector/xalloc.h"

struct posting {
	const char *value; /* the label value of the series, owned by them */
	uint64_t hash;
	struct series **series;
	size_t count;
	size_t capacity;
};

struct label_table {
	char *name;
	struct posting *slots; /* open addressing; slot_count is a power of two */
	size_t slot_count;
	struct label_table *next;
};

struct series_label_index {
	struct label_table *tables;
};

static struct posting *find_slot(struct label_table *t, const char *value, uint64_t hash)
{
	size_t mask = t->slot_count - 1;

	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		struct posting *p = &t->slots[i];

		if (p->value == NULL || (p->hash == hash && strcmp(p->value, value) == 0))
			return p;
	}
}

/* Builds the index of `name`. Series without the label, or with it empty, are left out:
 * an equality matcher on "" selects those, and callers scan the family for it. */
static struct label_table *table_build(const struct series_family *fam, const char *name)
{
	struct label_table *t = xcalloc(1, sizeof(*t));
	size_t slots = 16;

	while (slots < 2 * fam->count)
		slots *= 2;
	t->name = xstrdup(name);
	t->slots = xcalloc(slots, sizeof(*t->slots));
	t->slot_count = slots;

	for (size_t i = 0; i < fam->count; i++) {
		struct series *s = fam->series[i];
		const char *value = series_label(s, name);
		uint64_t hash;
		struct posting *p;

		if (value == NULL || *value == '\0')
			continue;
		hash = hash_string(HASH_FNV_OFFSET, value);
		p = find_slot(t, value, hash);
		if (p->value == NULL) {
			p->value = value;
			p->hash = hash;
		}
		p->series =
		    xreallocarray_grow(p->series, &p->capacity, p->count + 1, sizeof(*p->series));
		p->series[p->count++] = s;
	}
	return t;
}

size_t series_family_with_label(struct series_family *fam, const char *name, const char *value,
				struct series *const **out)
{
	struct label_table *t;
	struct posting *p;

	if (fam->index == NULL)
		fam->index = xcalloc(1, sizeof(*fam->index));
	for (t = fam->index->tables; t != NULL; t = t->next)
		if (strcmp(t->name, name) == 0)
			break;
	if (t == NULL) {
		t = table_build(fam, name);
		t->next = fam->index->tables;
		fam->index->tables = t;
	}

	p = find_slot(t, value, hash_string(HASH_FNV_OFFSET, value));
	*out = p->series;
	return p->value != NULL ? p->count : 0;
}

void series_family_index_drop(struct series_family *fam)
{
	struct series_label_index *index = fam->index;

	if (index == NULL)
		return;
	while (index->tables != NULL) {
		struct label_table *t = index->tables;

		index->tables = t->next;
		for (size_t i = 0; i < t->slot_count; i++)
			free(t->slots[i].series);
		free(t->slots);
		free(t->name);
		free(t);
	}
	free(index);
	fam->index = NULL;
}
