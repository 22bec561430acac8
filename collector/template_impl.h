/*
 * Internals of the alert templates shared by template.c (lexer, parser and rendering),
 * template_format.c (numbers, printf, case mapping, text buffers) and template_regex.c
 * (reReplaceAll). Not for other modules: they use template.h.
 */
#ifndef TOCSIN_TEMPLATE_IMPL_H
#define TOCSIN_TEMPLATE_IMPL_H

#include <locale.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/template.h"

/* Type of a value; every operand's type is known when the template is parsed. */
enum template_type {
	TEMPLATE_TYPE_STRING,
	TEMPLATE_TYPE_FLOAT,
	TEMPLATE_TYPE_INT, /* integer literals only, as Go's templates type them */
};

/* "a string", "a float" or "an integer", for messages. */
const char *template_type_name(enum template_type type);

/* A value while rendering. Its text is borrowed (text), owned (owned) or in small. */
struct template_value {
	enum template_type type;
	double number;
	long long integer;
	const char *text;
	char *owned;
	char small[64];
};

const char *template_value_text(const struct template_value *v);

/* A growing NUL-terminated string. */
struct template_buf {
	char *data;
	size_t len;
	size_t cap;
};

void template_buf_append(struct template_buf *b, const char *s, size_t n);
void template_buf_puts(struct template_buf *b, const char *s);
void template_buf_putc(struct template_buf *b, char c);
/* Returns the text, which the caller frees; an empty buffer gives "". */
char *template_buf_finish(struct template_buf *b);

/*
 * Decodes the UTF-8 sequence at text as Go's utf8.DecodeRune does: an invalid, overlong or
 * surrogate sequence gives U+FFFD and a width of 1. Returns the width.
 */
size_t template_utf8_decode(const char *text, uint32_t *cp);
/* Writes cp as 1 to 4 bytes of UTF-8; returns the count. */
size_t template_utf8_encode(uint32_t cp, char *out);

/* A problem found in a template, a printf format or a regex: message and accepted forms. */
struct template_problem {
	char text[320];
	char expected[200];
};

/* Fills pb (expected may be NULL); returns -1. */
int template_problem_set(struct template_problem *pb, const char *expected, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats v as Go's fmt %v prints a float64: "1e+06", "0.1", "+Inf", "NaN". */
void template_format_float(double v, char *buf, size_t size);
/*
 * Formats Unix seconds as Prometheus's humanizeTimestamp. Returns -1 when the time does not
 * fit in int64 nanoseconds.
 */
int template_format_timestamp(double v, char *buf, size_t size);
/* Parses a number as Go's strconv.ParseFloat; false when text is not one. */
bool template_parse_float(const char *text, double *out);

enum template_case {
	TEMPLATE_CASE_UPPER,
	TEMPLATE_CASE_LOWER,
	TEMPLATE_CASE_TITLE,
};

/* toUpper, toLower and title; returns a new string (caller frees). */
char *template_map_case(const char *s, enum template_case mode);

/*
 * Checks a printf format against the types of its `count` arguments. Returns 0, or -1 with
 * the problem and, in *bad_arg, the index of the argument concerned (count when the problem
 * is the format itself).
 */
int template_printf_check(const char *format, const enum template_type *types, size_t count,
			  struct template_problem *pb, size_t *bad_arg);
/* Formats args[1..count) with the format args[0], already checked; caller frees. */
char *template_printf_render(const struct template_value *args, size_t count);

/* A reReplaceAll pattern: RE2 syntax rewritten as a POSIX extended regex. */
struct template_regex {
	regex_t re;
	bool compiled;
	locale_t locale;     /* C.UTF-8, so that . and [...] match characters; 0 if missing */
	size_t group_count;  /* capturing groups of the RE2 pattern */
	size_t *group_index; /* [k]: POSIX subexpression of RE2 group k */
	char **group_names;  /* [k]: name of RE2 group k, or NULL */
	size_t capacity;
};

/* Compiles an RE2 pattern; NULL with the problem when it is invalid or unsupported. */
struct template_regex *template_regex_compile(const char *pattern, struct template_problem *pb);
void template_regex_free(struct template_regex *rx);
/* Go's Regexp.ReplaceAllString(src, repl); returns a new string (caller frees). */
char *template_regex_replace(const struct template_regex *rx, const char *src, const char *repl);

#endif
