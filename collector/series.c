/*
 * The series registry: a chained hash table of series keyed by name and sorted labels,
 * and a name-sorted array of families so that the exposition writer can emit each family
 * contiguously without sorting on every scrape.
 */
#include "collector/series.h"

#include <stdlib.h>
#include <string.h>

#include "collector/hash.h"
#include "collector/log.h"
#include "collector/utf8.h"
#include "collector/xalloc.h"

struct series_registry {
	struct series **buckets;
	size_t bucket_count; /* a power of two */
	size_t count;
	uint64_t next_id;
	struct series_family **families; /* sorted by name */
	size_t family_count;
	size_t family_capacity;
	series_remove_fn *on_remove;
	void *on_remove_arg;
};

struct series_registry *series_registry_new(void)
{
	struct series_registry *reg = xcalloc(1, sizeof(*reg));

	reg->bucket_count = 1024;
	reg->buckets = xcalloc(reg->bucket_count, sizeof(*reg->buckets));
	reg->next_id = 1;
	return reg;
}

/* A series, its labels and their strings are one allocation (see series_alloc()). */
static void series_free(struct series *s)
{
	free(s);
}

/*
 * Allocates a series with copies of `sorted` in the same block, right behind the struct:
 * one malloc and one free per series, and label matching reads the lines next to the
 * series instead of two scattered strings per label. The block also holds the labels with
 * "__name__" (value `name`, the family's) at its sorted place, which expressions read for
 * every series they select.
 */
static struct series *series_alloc(const char *name, const struct label *sorted, size_t count)
{
	size_t size = sizeof(struct series) + (2 * count + 1) * sizeof(struct label);
	struct series *s;
	struct label *named;
	char *text;
	size_t k = 0;

	for (size_t i = 0; i < count; i++)
		size += strlen(sorted[i].name) + strlen(sorted[i].value) + 2;
	s = xcalloc(1, size);
	s->labels = (struct label *)(s + 1);
	s->label_count = count;
	named = s->labels + count;
	text = (char *)(named + count + 1);
	for (size_t i = 0; i < count; i++) {
		size_t n = strlen(sorted[i].name) + 1;
		size_t v = strlen(sorted[i].value) + 1;

		s->labels[i].name = memcpy(text, sorted[i].name, n);
		s->labels[i].value = memcpy(text + n, sorted[i].value, v);
		text += n + v;
	}
	for (size_t i = 0; i < count; i++) {
		if (k == i && strcmp(s->labels[i].name, "__name__") > 0)
			named[k++] = (struct label){"__name__", name};
		named[k++] = s->labels[i];
	}
	if (k == count)
		named[k++] = (struct label){"__name__", name};
	s->named_labels = named;
	return s;
}

static void family_free(struct series_family *fam)
{
	series_family_index_drop(fam);
	free(fam->name);
	free(fam->help);
	free(fam->series);
	free(fam);
}

void series_registry_free(struct series_registry *reg)
{
	if (reg == NULL)
		return;
	for (size_t i = 0; i < reg->bucket_count; i++) {
		struct series *s = reg->buckets[i];

		while (s != NULL) {
			struct series *next = s->hash_next;

			series_free(s);
			s = next;
		}
	}
	for (size_t i = 0; i < reg->family_count; i++)
		family_free(reg->families[i]);
	free(reg->families);
	free(reg->buckets);
	free(reg);
}

bool series_valid_metric_name(const char *name)
{
	if (name == NULL || *name == '\0')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		bool alpha =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';

		if (!alpha && !(p != name && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

bool series_valid_label_name(const char *name)
{
	if (name == NULL || *name == '\0')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';

		if (!alpha && !(p != name && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

static int label_compare(const void *a, const void *b)
{
	const struct label *la = a;
	const struct label *lb = b;

	return strcmp(la->name, lb->name);
}

uint64_t label_set_hash(uint64_t seed, const struct label *v, size_t count)
{
	uint64_t h = seed;

	for (size_t i = 0; i < count; i++) {
		h = hash_string(h, v[i].name);
		h = hash_string(h, v[i].value);
	}
	return h;
}

static uint64_t series_key_hash(const char *name, const struct label *sorted, size_t count)
{
	return label_set_hash(hash_string(HASH_FNV_OFFSET, name), sorted, count);
}

static bool series_matches(const struct series *s, uint64_t h, const char *name,
			   const struct label *sorted, size_t count)
{
	if (s->hash != h || s->label_count != count || strcmp(s->family->name, name) != 0)
		return false;
	for (size_t i = 0; i < count; i++) {
		if (strcmp(s->labels[i].name, sorted[i].name) != 0 ||
		    strcmp(s->labels[i].value, sorted[i].value) != 0)
			return false;
	}
	return true;
}

/* Binary search; returns the index of `name` or where it would be inserted. */
static size_t family_index(const struct series_registry *reg, const char *name, bool *found)
{
	size_t lo = 0;
	size_t hi = reg->family_count;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(reg->families[mid]->name, name);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const char *series_type_name(enum metric_type type)
{
	switch (type) {
	case METRIC_COUNTER:
		return "counter";
	case METRIC_HISTOGRAM:
		return "histogram";
	case METRIC_GAUGE:
	case METRIC_INFO:
		break;
	}
	return "gauge";
}

static struct series_family *family_get(struct series_registry *reg, const struct metric_desc *desc)
{
	bool found;
	size_t at = family_index(reg, desc->name, &found);
	struct series_family *fam;

	if (found) {
		fam = reg->families[at];
		if (fam->type != desc->type) {
			if (fam->type_conflict_logged)
				return NULL;
			fam->type_conflict_logged = true;
			log_error("series", NULL,
				  "metric %s is emitted both as %s and as %s; keeping %s and "
				  "dropping the others",
				  desc->name, series_type_name(fam->type),
				  series_type_name(desc->type), series_type_name(fam->type));
			return NULL;
		}
		return fam;
	}

	fam = xcalloc(1, sizeof(*fam));
	fam->name = xstrdup(desc->name);
	fam->help = xstrdup(desc->help != NULL ? desc->help : desc->name);
	utf8_repair(fam->help);
	fam->type = desc->type;
	reg->families = xreallocarray_grow(reg->families, &reg->family_capacity,
					   reg->family_count + 1, sizeof(*reg->families));
	memmove(&reg->families[at + 1], &reg->families[at],
		(reg->family_count - at) * sizeof(*reg->families));
	reg->families[at] = fam;
	reg->family_count++;
	return fam;
}

static void registry_grow(struct series_registry *reg)
{
	size_t n = reg->bucket_count * 2;
	struct series **b = xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < reg->bucket_count; i++) {
		struct series *s = reg->buckets[i];

		while (s != NULL) {
			struct series *next = s->hash_next;
			size_t at = s->hash & (n - 1);

			s->hash_next = b[at];
			b[at] = s;
			s = next;
		}
	}
	free(reg->buckets);
	reg->buckets = b;
	reg->bucket_count = n;
}

static bool labels_valid(const char *metric, const struct label *sorted, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (!series_valid_label_name(sorted[i].name)) {
			log_error("series", NULL, "metric %s: label name \"%s\" is not valid",
				  metric, sorted[i].name);
			return false;
		}
		if (i > 0 && strcmp(sorted[i - 1].name, sorted[i].name) == 0) {
			log_error("series", NULL, "metric %s: label %s is set twice", metric,
				  sorted[i].name);
			return false;
		}
	}
	return true;
}

/*
 * Label values must be UTF-8 in the exposition format, and one bad byte from a plugin
 * would make the whole scrape fail. Values with invalid bytes are replaced, in `sorted`,
 * by repaired copies ('?' for each bad byte) before lookup, so that the same raw value
 * always finds the same series. Returns the copies to free, or NULL when none was needed.
 */
static char **repair_values(struct label *sorted, size_t count)
{
	char **copies = NULL;

	for (size_t i = 0; i < count; i++) {
		if (utf8_valid(sorted[i].value))
			continue;
		if (copies == NULL)
			copies = xcalloc(count, sizeof(*copies));
		copies[i] = xstrdup(sorted[i].value);
		utf8_repair(copies[i]);
		sorted[i].value = copies[i];
	}
	return copies;
}

struct series *series_find_sorted(const struct series_registry *reg, const char *name,
				  const struct label *sorted, size_t label_count)
{
	uint64_t h = series_key_hash(name, sorted, label_count);

	for (struct series *s = reg->buckets[h & (reg->bucket_count - 1)]; s != NULL;
	     s = s->hash_next)
		if (series_matches(s, h, name, sorted, label_count))
			return s;
	return NULL;
}

struct series *series_intern(struct series_registry *reg, const struct metric_desc *desc,
			     const struct label *labels, size_t label_count)
{
	struct label stack[16];
	struct label *sorted = label_count <= 16 ? stack : xmalloc(label_count * sizeof(*sorted));
	struct series *s = NULL;
	struct series_family *fam;
	char **repaired = NULL;
	uint64_t h;
	size_t at;

	if (!series_valid_metric_name(desc->name)) {
		log_error("series", NULL, "metric name \"%s\" is not valid", desc->name);
		goto out;
	}
	if (label_count > 0) {
		memcpy(sorted, labels, label_count * sizeof(*sorted));
		qsort(sorted, label_count, sizeof(*sorted), label_compare);
	}
	repaired = repair_values(sorted, label_count);

	h = series_key_hash(desc->name, sorted, label_count);
	at = h & (reg->bucket_count - 1);
	for (s = reg->buckets[at]; s != NULL; s = s->hash_next) {
		if (series_matches(s, h, desc->name, sorted, label_count))
			goto out;
	}

	if (!labels_valid(desc->name, sorted, label_count))
		goto out;
	fam = family_get(reg, desc);
	if (fam == NULL)
		goto out;

	s = series_alloc(fam->name, sorted, label_count);
	s->id = reg->next_id++;
	s->family = fam;
	s->hash = h;
	s->stale = true; /* until the first value */
	s->hash_next = reg->buckets[at];
	reg->buckets[at] = s;
	reg->count++;

	fam->series =
	    xreallocarray_grow(fam->series, &fam->capacity, fam->count + 1, sizeof(*fam->series));
	s->family_pos = fam->count;
	fam->series[fam->count++] = s;
	series_family_index_drop(fam);

	if (reg->count > reg->bucket_count)
		registry_grow(reg);
out:
	if (repaired != NULL) {
		for (size_t i = 0; i < label_count; i++)
			free(repaired[i]);
		free(repaired);
	}
	if (sorted != stack)
		free(sorted);
	return s;
}

void series_set(struct series *s, double value, int64_t time_ms)
{
	s->value = value;
	s->time_ms = time_ms;
	s->stale = false;
}

void series_registry_on_remove(struct series_registry *reg, series_remove_fn *fn, void *arg)
{
	reg->on_remove = fn;
	reg->on_remove_arg = arg;
}

void series_remove(struct series_registry *reg, struct series *s)
{
	struct series_family *fam = s->family;
	struct series **pp = &reg->buckets[s->hash & (reg->bucket_count - 1)];

	if (reg->on_remove != NULL)
		reg->on_remove(reg->on_remove_arg, s);

	while (*pp != NULL && *pp != s)
		pp = &(*pp)->hash_next;
	if (*pp == s)
		*pp = s->hash_next;
	reg->count--;

	/* The family's last series takes the removed one's place: rules create and remove
	 * ALERTS series by the thousand, and keeping the order would make each removal
	 * linear in the family's size. */
	fam->series[s->family_pos] = fam->series[fam->count - 1];
	fam->series[s->family_pos]->family_pos = s->family_pos;
	fam->count--;
	series_family_index_drop(fam);
	series_free(s);

	if (fam->count == 0) {
		bool found;
		size_t at = family_index(reg, fam->name, &found);

		if (found) {
			memmove(&reg->families[at], &reg->families[at + 1],
				(reg->family_count - at - 1) * sizeof(*reg->families));
			reg->family_count--;
		}
		family_free(fam);
	}
}

size_t series_registry_count(const struct series_registry *reg)
{
	return reg->count;
}

size_t series_registry_family_count(const struct series_registry *reg)
{
	return reg->family_count;
}

struct series_family *series_registry_family(const struct series_registry *reg, size_t index)
{
	return index < reg->family_count ? reg->families[index] : NULL;
}

const char *series_label(const struct series *s, const char *name)
{
	for (size_t i = 0; i < s->label_count; i++) {
		if (label_name_equal(s->labels[i].name, name))
			return s->labels[i].value;
	}
	return NULL;
}
