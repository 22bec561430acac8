/*
 * Nagios plugin output: splitting it into the status text and the performance data, and
 * parsing performance data items of the form
 *   'label'=value[UOM];[warn];[crit];[min];[max]
 * as the Monitoring Plugins development guidelines define them. Pure functions with no
 * I/O, so they are tested with tables.
 */
#ifndef TOCSIN_PERFDATA_H
#define TOCSIN_PERFDATA_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A threshold in Nagios range syntax: "10" (0..10), "10:" (10..+inf), "~:10" (-inf..10),
 * "10:20", and any of these after "@". A value outside start..end raises the alert; with
 * "@" a value inside it does (both ends inclusive).
 */
struct perfdata_range {
	bool present;        /* false when the field was empty or omitted */
	bool inside;         /* written with a leading '@' */
	bool start_explicit; /* written with a ':', so the start is not the implied 0 */
	double start;        /* -INFINITY for '~' */
	double end;          /* +INFINITY when nothing follows the ':' */
};

/* Size of perfdata_item.uom, with its NUL; longer units are an item error. */
#define PERFDATA_UOM_SIZE 16

struct perfdata_item {
	char *label;  /* without quotes, '' turned into ' (owned) */
	double value; /* NAN when the plugin wrote U */
	bool unknown; /* the plugin wrote U */
	char uom[PERFDATA_UOM_SIZE];
	struct perfdata_range warn;
	struct perfdata_range crit;
	bool has_min;
	bool has_max;
	double min;
	double max;
};

/* Size of perfdata_list.first_error, with its NUL. */
#define PERFDATA_ERROR_SIZE 160

/* Items parsed from one output, and the items that could not be parsed. */
struct perfdata_list {
	struct perfdata_item *items;
	size_t count;
	size_t capacity;
	size_t errors;                         /* items skipped as invalid */
	char first_error[PERFDATA_ERROR_SIZE]; /* "" when errors == 0 */
};

/* The parts of a plugin's output, as offsets into it. */
struct perfdata_output {
	char *summary;  /* first line's text before any '|', trimmed (owned) */
	char *perfdata; /* every perfdata part joined with spaces, "" when none (owned) */
};

/*
 * Splits plugin output (`length` bytes, NUL bytes treated as spaces) into the first line's
 * text and the performance data: the first line's text after '|', and, from the first
 * later line holding a '|', the text after that '|' plus every line after it. Free the
 * result with perfdata_output_free().
 */
void perfdata_split_output(const char *output, size_t length, struct perfdata_output *out);
void perfdata_output_free(struct perfdata_output *out);

/*
 * Parses whitespace-separated items from `text` and appends them to `list` (zero it before
 * the first call). An invalid item is skipped and counted in list->errors, the first such
 * error kept in list->first_error, and parsing goes on with the next item. Returns the
 * number of items appended.
 */
size_t perfdata_parse(const char *text, struct perfdata_list *list);
void perfdata_list_free(struct perfdata_list *list);

/*
 * Parses one range ("10", "10:", "~:10", "10:20", "@10:20"; an empty string is an absent
 * range). A unit equal to `uom` may follow each number, as some plugins write it. Returns
 * 0, or -1 when the text is not a range or its start is above its end.
 */
int perfdata_parse_range(const char *text, const char *uom, struct perfdata_range *out);

/* How a unit of measurement is exported. */
struct perfdata_unit {
	/*
	 * value * scale / divisor is the value in the base unit. Fractional factors are
	 * divisors because 0.01 has no exact binary form: 94 * 0.01 is 0.9400000000000001,
	 * while 94 / 100.0 is the double nearest 0.94.
	 */
	double scale;
	double divisor;
	const char *name; /* base unit for the uom label: "seconds", "bytes", "ratio", "" */
	bool counter;     /* the unit was "c": a continuous counter */
};

/*
 * Looks up a unit: s, ms, us (to seconds), % (to a ratio from 0 to 1), B, KB, MB, GB, TB
 * (to bytes, in powers of 1024), c (a counter) and "" (a plain number). Units are case
 * sensitive; any other unit is returned with scale 1 and its own text as the name.
 */
struct perfdata_unit perfdata_unit_lookup(const char *uom);

/* Converts a value, threshold or bound written in `unit` to the base unit. */
double perfdata_unit_convert(const struct perfdata_unit *unit, double value);

#endif
