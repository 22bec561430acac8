/*
 * Formatting for alert templates, following Prometheus 2.42 and the Go fmt and strconv
 * packages it uses: the humanize functions, float64 as %v prints it, printf, Unicode case
 * mapping, and the text buffers and UTF-8 helpers the other template files share.
 */
#include "collector/template_impl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wctype.h>

#include "collector/cfg.h"
#include "collector/xalloc.h"

/* Largest printf width or precision, so that a format cannot ask for megabytes. */
#define MAX_PRINTF_WIDTH 1000

/* ---- strings ---------------------------------------------------------------------------- */

void template_buf_append(struct template_buf *b, const char *s, size_t n)
{
	b->data = xreallocarray_grow(b->data, &b->cap, b->len + n + 1, 1);
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void template_buf_puts(struct template_buf *b, const char *s)
{
	template_buf_append(b, s, strlen(s));
}

void template_buf_putc(struct template_buf *b, char c)
{
	template_buf_append(b, &c, 1);
}

static void buf_repeat(struct template_buf *b, char c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		template_buf_putc(b, c);
}

char *template_buf_finish(struct template_buf *b)
{
	if (b->data == NULL)
		return xstrdup("");
	return b->data;
}

/* The text is NUL-terminated and NUL is no continuation byte, so no read passes its end. */
size_t template_utf8_decode(const char *text, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n;
	uint32_t min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		min = 0x80;
		*cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		min = 0x800;
		*cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		min = 0x10000;
		*cp = s[0] & 0x07;
	} else {
		*cp = 0xfffd;
		return 1;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*cp = 0xfffd;
			return 1;
		}
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) {
		*cp = 0xfffd;
		return 1;
	}
	return n;
}

size_t template_utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static size_t utf8_count(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

/* ---- numbers ---------------------------------------------------------------------------- */

/*
 * Formats v as Go's strconv.FormatFloat(v, 'g', -1, 64), which is how fmt's %v prints a
 * float64. That is the fewest digits that read back as v, in exponent form when the
 * exponent is below -4 or at least 6: "1e+06", "123456", "0.0001", "1e-05", "+Inf", "NaN".
 * NOTE: the digits are found by trying precisions from 1 up with glibc's correctly rounded
 * %e; Go's shortest algorithm can pick other digits of the same length in rare halfway cases.
 */
void template_format_float(double v, char *buf, size_t size)
{
	char e[40];
	char digits[24];
	size_t nd = 0;
	long exp;
	const char *p;
	bool neg = signbit(v);

	if (isnan(v) || isinf(v) || v == 0) {
		snprintf(buf, size, "%s",
			 isnan(v)   ? "NaN"
			 : isinf(v) ? (neg ? "-Inf" : "+Inf")
				    : (neg ? "-0" : "0"));
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec - 1, v);
		if (strtod(e, NULL) == v)
			break;
	}
	for (p = e + neg; *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	exp = strtol(p + 1, NULL, 10);
	if (exp < -4 || exp >= 6) {
		snprintf(buf, size, "%s%c%s%se%c%02ld", neg ? "-" : "", digits[0],
			 nd > 1 ? "." : "", digits + 1, exp < 0 ? '-' : '+', labs(exp));
		return;
	}
	/* Fixed notation: "0.000ddd", "ddd000" or "dd.ddd", exp being between -4 and 5. */
	if (exp < 0)
		snprintf(buf, size, "%s0.%.*s%s", neg ? "-" : "", (int)(-exp - 1), "000", digits);
	else if ((size_t)exp + 1 >= nd)
		snprintf(buf, size, "%s%s%.*s", neg ? "-" : "", digits, (int)(exp + 1 - (long)nd),
			 "00000");
	else
		snprintf(buf, size, "%s%.*s.%s", neg ? "-" : "", (int)exp + 1, digits,
			 digits + exp + 1);
}

/* Go's "%.4g" followed by suffix: C's %.4g, with Go's spelling of infinities and NaN. */
static void format_g4(double v, const char *suffix, char *buf, size_t size)
{
	if (isnan(v))
		snprintf(buf, size, "NaN%s", suffix);
	else if (isinf(v))
		snprintf(buf, size, "%sInf%s", v > 0 ? "+" : "-", suffix);
	else
		snprintf(buf, size, "%.4g%s", v, suffix);
}

static const char *const small_prefixes[] = {"m", "u", "n", "p", "f", "a", "z", "y"};

/* Scales 0 < |v| < 1 by 1000 per SI prefix until |v| >= 1, as Prometheus does. */
static const char *scale_small(double *v)
{
	const char *prefix = "";

	for (size_t i = 0; i < 8 && fabs(*v) < 1; i++) {
		prefix = small_prefixes[i];
		*v *= 1000;
	}
	return prefix;
}

const char *template_humanize(double v, char *buf, size_t size)
{
	static const char *const big[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
	const char *prefix = "";

	if (v == 0 || isnan(v) || isinf(v)) {
		format_g4(v, "", buf, size);
	} else if (fabs(v) >= 1) {
		for (size_t i = 0; i < 8 && fabs(v) >= 1000; i++) {
			prefix = big[i];
			v /= 1000;
		}
		format_g4(v, prefix, buf, size);
	} else {
		prefix = scale_small(&v);
		format_g4(v, prefix, buf, size);
	}
	return buf;
}

const char *template_humanize1024(double v, char *buf, size_t size)
{
	/* Prometheus writes "ki", with a lower-case k, where IEC writes "Ki". */
	static const char *const big[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
	const char *prefix = "";

	if (fabs(v) <= 1 || isnan(v) || isinf(v)) {
		format_g4(v, "", buf, size);
		return buf;
	}
	for (size_t i = 0; i < 8 && fabs(v) >= 1024; i++) {
		prefix = big[i];
		v /= 1024;
	}
	format_g4(v, prefix, buf, size);
	return buf;
}

const char *template_humanize_duration(double v, char *buf, size_t size)
{
	const char *sign = "";
	long long d;

	if (isnan(v) || isinf(v)) {
		format_g4(v, "", buf, size);
		return buf;
	}
	if (v == 0 || fabs(v) < 1) {
		const char *prefix = v == 0 ? "" : scale_small(&v);
		char unit[4];

		snprintf(unit, sizeof(unit), "%ss", prefix);
		format_g4(v, unit, buf, size);
		return buf;
	}
	if (v < 0) {
		sign = "-";
		v = -v;
	}
	/*
	 * Go converts with int64(v). For v >= 2^63 that gives the minimum int64 on amd64, so
	 * Prometheus prints a negative day count there; tocsin prints the same text.
	 */
	d = v >= 9223372036854775808.0 ? LLONG_MIN : (long long)v;
	if (d / 86400 != 0) {
		snprintf(buf, size, "%s%lldd %lldh %lldm %llds", sign, d / 86400, d / 3600 % 24,
			 d / 60 % 60, d % 60);
	} else if (d / 3600 != 0) {
		snprintf(buf, size, "%s%lldh %lldm %llds", sign, d / 3600, d / 60 % 60, d % 60);
	} else if (d / 60 != 0) {
		snprintf(buf, size, "%s%lldm %llds", sign, d / 60, d % 60);
	} else {
		char seconds[32];

		format_g4(v, "s", seconds, sizeof(seconds));
		snprintf(buf, size, "%s%s", sign, seconds);
	}
	return buf;
}

const char *template_humanize_percentage(double ratio, char *buf, size_t size)
{
	format_g4(ratio * 100, "%", buf, size);
	return buf;
}

/*
 * Formats Unix seconds as Go prints a time.Time in UTC, after Prometheus truncates it to
 * milliseconds: "2015-06-23 13:19:44.128 +0000 UTC", without trailing zeros in the fraction.
 * Returns -1 when v * 1e9 does not fit in an int64 (1677-09-21 to 2262-04-11).
 */
int template_format_timestamp(double v, char *buf, size_t size)
{
	double ns = v * 1e9;
	long long ms;
	time_t seconds;
	int frac;
	struct tm tm;
	char date[64];
	char fraction[8] = "";

	if (isnan(v) || isinf(v)) {
		format_g4(v, "", buf, size);
		return 0;
	}
	if (!(ns >= -9223372036854775808.0 && ns < 9223372036854775808.0))
		return -1;
	ms = (long long)ns / 1000000;
	seconds = (time_t)(ms / 1000);
	frac = (int)(ms % 1000);
	if (frac < 0) {
		frac += 1000;
		seconds--;
	}
	if (gmtime_r(&seconds, &tm) == NULL)
		return -1;
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	if (frac != 0) {
		snprintf(fraction, sizeof(fraction), ".%03d", frac);
		for (size_t n = strlen(fraction); fraction[n - 1] == '0'; n--)
			fraction[n - 1] = '\0';
	}
	snprintf(buf, size, "%s%s +0000 UTC", date, fraction);
	return 0;
}

/*
 * Parses text as Go's strconv.ParseFloat does for the humanize functions: decimal numbers
 * with an optional exponent, "_" between digits, Inf, Infinity and NaN in any case. No
 * white space is allowed, and a value beyond the float64 range is an error.
 */
bool template_parse_float(const char *text, double *out)
{
	size_t len = strlen(text);
	char *copy;
	char *end;
	size_t n = 0;
	bool ok;

	if (len == 0 || strpbrk(text, "xX( \t\n\r\f\v") != NULL)
		return false;
	copy = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		if (text[i] != '_') {
			copy[n++] = text[i];
			continue;
		}
		if (i == 0 || !isdigit((unsigned char)text[i - 1]) ||
		    !isdigit((unsigned char)text[i + 1])) {
			free(copy);
			return false;
		}
	}
	copy[n] = '\0';
	errno = 0;
	*out = strtod(copy, &end);
	ok = end != copy && *end == '\0' && !(errno == ERANGE && isinf(*out));
	free(copy);
	return ok;
}

/* ---- case mapping ----------------------------------------------------------------------- */

/* Go's strings.Title word boundaries: ASCII other than letters, digits and "_", and spaces. */
static bool is_title_separator(uint32_t cp, locale_t loc)
{
	if (cp < 0x80)
		return !(isalnum((int)cp) || cp == '_');
	if (loc == (locale_t)0)
		return false;
	if (iswalnum_l((wint_t)cp, loc))
		return false;
	return iswspace_l((wint_t)cp, loc);
}

static uint32_t map_rune(uint32_t cp, enum template_case mode, locale_t loc)
{
	if (loc == (locale_t)0) {
		if (cp >= 0x80)
			return cp;
		return (uint32_t)(mode == TEMPLATE_CASE_LOWER ? tolower((int)cp)
							      : toupper((int)cp));
	}
	switch (mode) {
	case TEMPLATE_CASE_UPPER:
		return (uint32_t)towupper_l((wint_t)cp, loc);
	case TEMPLATE_CASE_LOWER:
		return (uint32_t)towlower_l((wint_t)cp, loc);
	case TEMPLATE_CASE_TITLE:
		return (uint32_t)towctrans_l((wint_t)cp, wctrans_l("totitle", loc), loc);
	}
	return cp;
}

/*
 * toUpper, toLower and title, with Go's simple (one rune to one rune) Unicode case mapping.
 * Text that is not ASCII is mapped with the C.UTF-8 locale, created for the call because
 * tocsind runs in the C locale. Invalid UTF-8 becomes U+FFFD, as in Go.
 * NOTE: without C.UTF-8 (a libc that lacks it), only ASCII letters change case.
 */
char *template_map_case(const char *s, enum template_case mode)
{
	struct template_buf out = {0};
	locale_t loc = (locale_t)0;
	uint32_t prev = ' ';

	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80) {
			loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
			break;
		}
	while (*s != '\0') {
		uint32_t cp;
		size_t n = template_utf8_decode(s, &cp);
		char enc[4];
		uint32_t mapped = cp;

		if (mode != TEMPLATE_CASE_TITLE || is_title_separator(prev, loc))
			mapped = map_rune(cp, mode, loc);
		prev = cp;
		template_buf_append(&out, enc, template_utf8_encode(mapped, enc));
		s += n;
	}
	if (loc != (locale_t)0)
		freelocale(loc);
	return template_buf_finish(&out);
}

/* ---- problems --------------------------------------------------------------------------- */

int template_problem_set(struct template_problem *pb, const char *expected, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pb->text, sizeof(pb->text), fmt, ap);
	va_end(ap);
	snprintf(pb->expected, sizeof(pb->expected), "%s", expected != NULL ? expected : "");
	return -1;
}

/* ---- printf ----------------------------------------------------------------------------- */

#define PRINTF_VERBS "%v, %s, %d, %f, %e, %g or %%"
#define PRINTF_FLAGS "the flags - + space 0, a width and a .precision"

struct printf_spec {
	bool minus, plus, space, zero;
	int width;     /* -1 when absent */
	int precision; /* -1 when absent */
	char verb;
};

const char *template_type_name(enum template_type type)
{
	switch (type) {
	case TEMPLATE_TYPE_STRING:
		return "a string";
	case TEMPLATE_TYPE_FLOAT:
		return "a float";
	case TEMPLATE_TYPE_INT:
		return "an integer";
	}
	return "?";
}

static int read_printf_number(const char *format, size_t *i, int *out, const char *what,
			      struct template_problem *pb)
{
	long n = 0;

	while (isdigit((unsigned char)format[*i])) {
		n = n * 10 + (format[(*i)++] - '0');
		if (n > MAX_PRINTF_WIDTH)
			return template_problem_set(pb, "at most 1000", "printf %s too large",
						    what);
	}
	*out = (int)n;
	return 0;
}

/*
 * Parses the directive after the % at format[*i - 1], as Go's fmt reads it: flags, width,
 * .precision and the verb. Returns 0, or -1 with the problem.
 */
static int printf_parse_spec(const char *format, size_t *i, struct printf_spec *s,
			     struct template_problem *pb)
{
	*s = (struct printf_spec){.width = -1, .precision = -1};
	for (;; (*i)++) {
		char c = format[*i];

		if (c == '-')
			s->minus = true;
		else if (c == '+')
			s->plus = true;
		else if (c == ' ')
			s->space = true;
		else if (c == '0')
			s->zero = true;
		else
			break;
	}
	if (format[*i] == '#')
		return template_problem_set(pb, PRINTF_FLAGS, "printf flag # is not supported");
	if (format[*i] == '*')
		return template_problem_set(pb, PRINTF_FLAGS, "printf width * is not supported");
	if (format[*i] == '[')
		return template_problem_set(pb, PRINTF_FLAGS,
					    "printf argument indexes [n] are not supported");
	if (isdigit((unsigned char)format[*i]) &&
	    read_printf_number(format, i, &s->width, "width", pb) < 0)
		return -1;
	if (format[*i] == '.') {
		(*i)++;
		if (format[*i] == '*')
			return template_problem_set(pb, "a number after .",
						    "printf .* is not supported");
		if (read_printf_number(format, i, &s->precision, "precision", pb) < 0)
			return -1;
	}
	s->verb = format[*i];
	if (s->verb == '\0')
		return template_problem_set(pb, "a verb after %, or %% for a percent sign",
					    "printf format ends in the middle of a verb");
	if (strchr("vsdfeg%", s->verb) == NULL) {
		uint32_t cp;
		size_t n = template_utf8_decode(format + *i, &cp);

		return template_problem_set(pb, PRINTF_VERBS, "printf verb %%%.*s is not supported",
					    (int)n, format + *i);
	}
	(*i)++;
	/* Go ignores + for %v, where it would mean field names of a struct. */
	if (s->verb == 'v')
		s->plus = false;
	return 0;
}

static bool verb_accepts(char verb, enum template_type type)
{
	switch (verb) {
	case 'v':
		return true;
	case 's':
		return type == TEMPLATE_TYPE_STRING;
	case 'd':
		return type == TEMPLATE_TYPE_INT;
	default:
		return type == TEMPLATE_TYPE_FLOAT;
	}
}

static const char *verbs_for(enum template_type type)
{
	switch (type) {
	case TEMPLATE_TYPE_STRING:
		return "%s or %v for a string";
	case TEMPLATE_TYPE_INT:
		return "%d or %v for an integer";
	case TEMPLATE_TYPE_FLOAT:
		return "%f, %e, %g or %v for a float (%.0f prints no decimals)";
	}
	return "?";
}

/*
 * Go prints "%!d(float64=1)", "%!d(MISSING)" or "%!(EXTRA ...)" into the text when a verb
 * does not fit its argument or the counts differ. tocsin rejects such a format instead.
 */
int template_printf_check(const char *format, const enum template_type *types, size_t count,
			  struct template_problem *pb, size_t *bad_arg)
{
	size_t verbs = 0;
	char quoted[CFG_QUOTE_SIZE];
	struct printf_spec s;

	*bad_arg = count;
	for (size_t i = 0; format[i] != '\0';) {
		if (format[i++] != '%')
			continue;
		if (printf_parse_spec(format, &i, &s, pb) < 0)
			return -1;
		if (s.verb == '%')
			continue;
		if (verbs < count && !verb_accepts(s.verb, types[verbs])) {
			*bad_arg = verbs;
			return template_problem_set(pb, verbs_for(types[verbs]),
						    "printf verb %%%c gets %s", s.verb,
						    template_type_name(types[verbs]));
		}
		verbs++;
	}
	if (verbs != count)
		return template_problem_set(pb, NULL,
					    "printf format %s has %zu verb%s for %zu argument%s",
					    cfg_quote(format, quoted, sizeof(quoted)), verbs,
					    verbs == 1 ? "" : "s", count, count == 1 ? "" : "s");
	return 0;
}

/* Pads text to the width, counting UTF-8 characters, with spaces (or zeros when allowed). */
static void pad_text(struct template_buf *out, const char *text, size_t len,
		     const struct printf_spec *s, bool zero_ok)
{
	size_t chars = utf8_count(text, len);
	size_t pad = s->width > 0 && (size_t)s->width > chars ? (size_t)s->width - chars : 0;

	if (!s->minus)
		buf_repeat(out, zero_ok && s->zero ? '0' : ' ', pad);
	template_buf_append(out, text, len);
	if (s->minus)
		buf_repeat(out, ' ', pad);
}

/* Writes a number with Go's flags: a sign for + or space, zeros after the sign for 0. */
static void pad_number(struct template_buf *out, const char *num, const struct printf_spec *s,
		       bool zero_ok)
{
	char sign = '\0';
	size_t len;
	size_t pad;

	if (*num == '-')
		sign = *num++;
	else if (s->plus)
		sign = '+';
	else if (s->space)
		sign = ' ';
	len = strlen(num) + (sign != '\0');
	pad = s->width > 0 && (size_t)s->width > len ? (size_t)s->width - len : 0;
	if (!s->minus && !(s->zero && zero_ok))
		buf_repeat(out, ' ', pad);
	if (sign != '\0')
		template_buf_putc(out, sign);
	if (!s->minus && s->zero && zero_ok)
		buf_repeat(out, '0', pad);
	template_buf_puts(out, num);
	if (s->minus)
		buf_repeat(out, ' ', pad);
}

static void format_float_arg(struct template_buf *out, const struct printf_spec *s, double v)
{
	char num[MAX_PRINTF_WIDTH + 400];

	if (isnan(v) || isinf(v)) {
		/* Go keeps the sign of an infinity and pads neither with zeros. */
		const char *text = isnan(v)               ? (s->plus    ? "+NaN"
							     : s->space ? " NaN"
									: "NaN")
				   : v < 0                ? "-Inf"
				   : s->space && !s->plus ? " Inf"
							  : "+Inf";

		pad_text(out, text, strlen(text), s, false);
		return;
	}
	if ((s->verb == 'v' || s->verb == 'g') && s->precision < 0)
		template_format_float(v, num, sizeof(num));
	else if (s->verb == 'f')
		snprintf(num, sizeof(num), "%.*f", s->precision < 0 ? 6 : s->precision, v);
	else if (s->verb == 'e')
		snprintf(num, sizeof(num), "%.*e", s->precision < 0 ? 6 : s->precision, v);
	else
		snprintf(num, sizeof(num), "%.*g", s->precision, v);
	pad_number(out, num, s, true);
}

static void format_int_arg(struct template_buf *out, const struct printf_spec *s, long long v)
{
	char digits[32];
	char num[MAX_PRINTF_WIDTH + 40];
	size_t n;
	size_t len = 0;
	size_t zeros;

	snprintf(digits, sizeof(digits), "%llu",
		 v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
	n = strlen(digits);
	if (s->precision == 0 && v == 0)
		n = 0; /* Go, like C, prints no digits for %.0d of 0 */
	zeros = s->precision > (int)n ? (size_t)s->precision - n : 0;
	if (v < 0)
		num[len++] = '-';
	memset(num + len, '0', zeros);
	len += zeros;
	memcpy(num + len, digits, n);
	num[len + n] = '\0';
	/* With a precision, the 0 flag does not pad, as in Go. */
	pad_number(out, num, s, s->precision < 0);
}

/* ---- values ----------------------------------------------------------------------------- */

const char *template_value_text(const struct template_value *v)
{
	if (v->owned != NULL)
		return v->owned;
	return v->text != NULL ? v->text : v->small;
}

static void format_arg(struct template_buf *out, const struct printf_spec *s,
		       const struct template_value *v)
{
	const char *text;
	size_t len;

	switch (v->type) {
	case TEMPLATE_TYPE_FLOAT:
		format_float_arg(out, s, v->number);
		return;
	case TEMPLATE_TYPE_INT:
		format_int_arg(out, s, v->integer);
		return;
	case TEMPLATE_TYPE_STRING:
		break;
	}
	text = template_value_text(v);
	len = strlen(text);
	if (s->precision >= 0) {
		/* The precision of %s counts characters. */
		size_t chars = 0;

		for (len = 0; text[len] != '\0'; len++)
			if (((unsigned char)text[len] & 0xc0) != 0x80 &&
			    chars++ == (size_t)s->precision)
				break;
	}
	pad_text(out, text, len, s, true);
}

/* Formats args[1..count) with the format args[0], already checked against their types. */
char *template_printf_render(const struct template_value *args, size_t count)
{
	const char *format = template_value_text(&args[0]);
	struct template_buf out = {0};
	struct printf_spec s;
	struct template_problem unused;
	size_t next = 1;

	for (size_t i = 0; format[i] != '\0';) {
		size_t start = i;

		while (format[i] != '\0' && format[i] != '%')
			i++;
		template_buf_append(&out, format + start, i - start);
		if (format[i] == '\0')
			break;
		i++;
		if (printf_parse_spec(format, &i, &s, &unused) < 0)
			break;
		if (s.verb == '%')
			template_buf_putc(&out, '%');
		else if (next < count)
			format_arg(&out, &s, &args[next++]);
	}
	return template_buf_finish(&out);
}
