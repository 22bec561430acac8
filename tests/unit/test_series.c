/*
 * Unit tests of the series registry: interning, label order, families, validation and
 * removal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "collector/log.h"
#include "collector/series.h"

static const struct metric_desc load1 = {"node_load1", "1m load average.", METRIC_GAUGE};
static const struct metric_desc rx = {"node_network_receive_bytes_total", "Received bytes.",
				      METRIC_COUNTER};

static void same_labels_any_order_same_series(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct label a[] = {{"probe", "p"}, {"device", "eth0"}};
	struct label b[] = {{"device", "eth0"}, {"probe", "p"}};
	struct series *s1 = series_intern(reg, &rx, a, 2);
	struct series *s2 = series_intern(reg, &rx, b, 2);

	(void)state;
	assert_non_null(s1);
	assert_ptr_equal(s1, s2);
	assert_string_equal(s1->labels[0].name, "device");
	assert_string_equal(s1->labels[1].name, "probe");
	assert_int_equal(series_registry_count(reg), 1);
	series_registry_free(reg);
}

static void labels_copied_not_borrowed(void **state)
{
	struct series_registry *reg = series_registry_new();
	char value[16] = "eth0";
	struct label l = {"device", value};
	struct series *s = series_intern(reg, &rx, &l, 1);

	(void)state;
	strcpy(value, "XXXX");
	assert_string_equal(series_label(s, "device"), "eth0");
	assert_null(series_label(s, "nope"));
	series_registry_free(reg);
}

static void families_sorted_and_grouped(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct label l1 = {"device", "a"};
	struct label l2 = {"device", "b"};

	(void)state;
	series_intern(reg, &rx, &l1, 1);
	series_intern(reg, &load1, NULL, 0);
	series_intern(reg, &rx, &l2, 1);
	assert_int_equal(series_registry_family_count(reg), 2);
	assert_string_equal(series_registry_family(reg, 0)->name, "node_load1");
	assert_string_equal(series_registry_family(reg, 1)->name,
			    "node_network_receive_bytes_total");
	assert_int_equal(series_registry_family(reg, 1)->count, 2);
	assert_null(series_registry_family(reg, 2));
	series_registry_free(reg);
}

static void new_series_stale_until_set(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct series *s = series_intern(reg, &load1, NULL, 0);

	(void)state;
	assert_true(s->stale);
	series_set(s, 0.5, 1000);
	assert_false(s->stale);
	assert_true(s->value == 0.5);
	assert_int_equal(s->time_ms, 1000);
	series_registry_free(reg);
}

static void invalid_names_rejected(void **state)
{
	struct series_registry *reg = series_registry_new();
	static const struct metric_desc bad = {"9bad", "x", METRIC_GAUGE};
	static const struct metric_desc dash = {"bad-name", "x", METRIC_GAUGE};
	struct label bad_label = {"a-b", "x"};
	struct label twice[] = {{"x", "1"}, {"x", "2"}};

	(void)state;
	assert_null(series_intern(reg, &bad, NULL, 0));
	assert_null(series_intern(reg, &dash, NULL, 0));
	assert_null(series_intern(reg, &load1, &bad_label, 1));
	assert_null(series_intern(reg, &load1, twice, 2));
	assert_int_equal(series_registry_count(reg), 0);
	assert_true(series_valid_metric_name("a:b_c9"));
	assert_false(series_valid_label_name("a:b"));
	assert_false(series_valid_label_name(""));
	series_registry_free(reg);
}

static void invalid_utf8_values_repaired(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct label bad = {"label", "\xc3(lab\xff"};
	struct series *s1 = series_intern(reg, &load1, &bad, 1);
	struct series *s2 = series_intern(reg, &load1, &bad, 1);

	(void)state;
	assert_non_null(s1);
	assert_string_equal(series_label(s1, "label"), "?(lab?");
	/* The same raw bytes find the same series: no new series per run. */
	assert_ptr_equal(s1, s2);
	assert_int_equal(series_registry_count(reg), 1);
	series_registry_free(reg);
}

static void type_conflict_rejected(void **state)
{
	struct series_registry *reg = series_registry_new();
	static const struct metric_desc as_counter = {"node_load1", "x", METRIC_COUNTER};
	struct label l = {"a", "b"};

	(void)state;
	assert_non_null(series_intern(reg, &load1, NULL, 0));
	assert_null(series_intern(reg, &as_counter, &l, 1));
	assert_null(series_intern(reg, &as_counter, &l, 1));
	assert_int_equal(series_registry_family(reg, 0)->type, METRIC_GAUGE);
	series_registry_free(reg);
}

static void remove_drops_empty_family(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct label l1 = {"device", "a"};
	struct label l2 = {"device", "b"};
	struct series *a = series_intern(reg, &rx, &l1, 1);
	struct series *b = series_intern(reg, &rx, &l2, 1);

	(void)state;
	series_intern(reg, &load1, NULL, 0);
	series_remove(reg, a);
	assert_int_equal(series_registry_family_count(reg), 2);
	assert_int_equal(series_registry_family(reg, 1)->count, 1);
	series_remove(reg, b);
	assert_int_equal(series_registry_family_count(reg), 1);
	assert_string_equal(series_registry_family(reg, 0)->name, "node_load1");
	/* Interning again after removal creates a fresh series. */
	assert_non_null(series_intern(reg, &rx, &l1, 1));
	assert_int_equal(series_registry_count(reg), 2);
	series_registry_free(reg);
}

/* The labels with "__name__" sit in the series' block, "__name__" at its sorted place. */
static void named_labels_sorted_with_name(void **state)
{
	struct label l[] = {{"b", "2"}, {"A", "1"}, {"_a", "3"}};
	struct series_registry *reg = series_registry_new();
	struct series *s = series_intern(reg, &load1, l, 3);
	struct series *bare = series_intern(reg, &load1, NULL, 0);
	const char *names[] = {"A", "__name__", "_a", "b"};

	(void)state;
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(s->named_labels[i].name, names[i]);
	assert_string_equal(s->named_labels[1].value, "node_load1");
	assert_string_equal(s->named_labels[3].value, "2");
	assert_string_equal(bare->named_labels[0].name, "__name__");
	series_registry_free(reg);
}

/* Removal moves the family's last series into the gap; every position stays right. */
static void remove_keeps_family_positions(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct series *made[6];
	struct series_family *fam;

	(void)state;
	for (int i = 0; i < 6; i++) {
		char device[16];
		struct label l = {"device", device};

		snprintf(device, sizeof(device), "d%d", i);
		made[i] = series_intern(reg, &rx, &l, 1);
	}
	fam = made[0]->family;
	series_remove(reg, made[1]);
	series_remove(reg, made[5]); /* now at position 1 */
	series_remove(reg, made[0]);
	assert_int_equal(fam->count, 3);
	for (size_t k = 0; k < fam->count; k++) {
		assert_int_equal(fam->series[k]->family_pos, k);
		assert_true(fam->series[k] == made[2] || fam->series[k] == made[3] ||
			    fam->series[k] == made[4]);
	}
	series_remove(reg, made[3]);
	series_remove(reg, made[2]);
	assert_int_equal(fam->count, 1);
	assert_ptr_equal(fam->series[0], made[4]);
	assert_int_equal(made[4]->family_pos, 0);
	series_registry_free(reg);
}

static void label_index_follows_family_changes(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct series *made[40];
	struct series *const *found;
	struct series *extra;
	struct series_family *fam;
	size_t n;
	int extra_seen = 0;

	(void)state;
	/* 40 series over four jobs; job j3 carries an empty value instead. */
	for (int i = 0; i < 40; i++) {
		char job[16];
		char instance[16];
		struct label l[] = {{"job", job}, {"instance", instance}};

		snprintf(job, sizeof(job), i % 4 == 3 ? "" : "j%d", i % 4);
		snprintf(instance, sizeof(instance), "i%d", i);
		made[i] = series_intern(reg, &load1, l, 2);
	}
	fam = made[0]->family;

	n = series_family_with_label(fam, "job", "j1", &found);
	assert_int_equal(n, 10);
	for (size_t k = 0; k < n; k++)
		assert_ptr_equal(found[k], made[1 + 4 * k]);
	assert_int_equal(series_family_with_label(fam, "job", "", &found), 0);
	assert_int_equal(series_family_with_label(fam, "job", "j9", &found), 0);
	assert_int_equal(series_family_with_label(fam, "nolabel", "x", &found), 0);
	assert_int_equal(series_family_with_label(fam, "instance", "i7", &found), 1);
	assert_ptr_equal(found[0], made[7]);

	/* A new series and a removed one are seen by the next lookup. */
	extra = series_intern(reg, &load1, (struct label[]){{"job", "j1"}}, 1);
	series_remove(reg, made[1]);
	n = series_family_with_label(fam, "job", "j1", &found);
	assert_int_equal(n, 10);
	for (size_t k = 0; k < n; k++) {
		assert_ptr_not_equal(found[k], made[1]);
		extra_seen += found[k] == extra;
	}
	assert_int_equal(extra_seen, 1);
	series_registry_free(reg);
}

static void many_series_survive_growth(void **state)
{
	struct series_registry *reg = series_registry_new();
	struct series *first[5000];
	char name[32];

	(void)state;
	for (int i = 0; i < 5000; i++) {
		struct label l = {"device", name};

		snprintf(name, sizeof(name), "dev%d", i);
		first[i] = series_intern(reg, &rx, &l, 1);
	}
	assert_int_equal(series_registry_count(reg), 5000);
	for (int i = 0; i < 5000; i++) {
		struct label l = {"device", name};

		snprintf(name, sizeof(name), "dev%d", i);
		assert_ptr_equal(series_intern(reg, &rx, &l, 1), first[i]);
	}
	series_registry_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(same_labels_any_order_same_series),
	    cmocka_unit_test(labels_copied_not_borrowed),
	    cmocka_unit_test(families_sorted_and_grouped),
	    cmocka_unit_test(new_series_stale_until_set),
	    cmocka_unit_test(invalid_names_rejected),
	    cmocka_unit_test(invalid_utf8_values_repaired),
	    cmocka_unit_test(type_conflict_rejected),
	    cmocka_unit_test(remove_drops_empty_family),
	    cmocka_unit_test(named_labels_sorted_with_name),
	    cmocka_unit_test(remove_keeps_family_positions),
	    cmocka_unit_test(label_index_follows_family_changes),
	    cmocka_unit_test(many_series_survive_growth),
	};

	log_set_level(LOG_LEVEL_ERROR);
	log_set_fd(-1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
