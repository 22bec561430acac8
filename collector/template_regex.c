/*
 * reReplaceAll for alert templates: Go's RE2 patterns rewritten as POSIX extended regexes
 * (glibc), matched in the C.UTF-8 locale so that ., [...] and quantifiers work on
 * characters, with Go's ReplaceAllString rules for empty matches and $1/${name} expansion.
 */
#include "collector/template_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/cfg.h"
#include "collector/posix_regex.h"
#include "collector/xalloc.h"

#define REGEX_ACCEPTED                                                                             \
	"a POSIX extended regular expression (plus (?i), (?:...), (?P<name>...), \\d, \\w, \\s)"

/* Characters that a POSIX extended regex treats as operators outside brackets. */
static bool ere_special(int c)
{
	return c != '\0' && strchr(".[]()*+?{}|^$\\", c) != NULL;
}

static void regex_add_group(struct template_regex *rx, size_t posix_index, const char *name,
			    size_t len)
{
	size_t k = rx->group_count + 1;
	size_t cap = rx->capacity;

	/* Both arrays start and grow with the same capacity. */
	rx->group_index = xreallocarray_grow(rx->group_index, &cap, k + 1, sizeof(size_t));
	rx->group_names = xreallocarray_grow(rx->group_names, &rx->capacity, k + 1, sizeof(char *));
	rx->group_index[0] = 0;
	rx->group_names[0] = NULL;
	rx->group_index[k] = posix_index;
	rx->group_names[k] = name != NULL ? xstrndup(name, len) : NULL;
	rx->group_count = k;
}

/* Reads \xHH or \x{H...} at re (just after the x); returns the length read, 0 if invalid. */
static size_t read_hex_escape(const char *re, uint32_t *cp)
{
	size_t i = 0;
	bool brace = re[0] == '{';
	size_t digits = 0;

	*cp = 0;
	i += brace;
	while (isxdigit((unsigned char)re[i]) && (brace || digits < 2) && *cp <= 0x10ffff) {
		char hex[2] = {re[i], '\0'};

		*cp = *cp * 16 + (uint32_t)strtoul(hex, NULL, 16);
		i++;
		digits++;
	}
	if (digits == 0 || (!brace && digits != 2) || (brace && re[i++] != '}') || *cp > 0x10ffff ||
	    *cp == 0)
		return 0;
	return i;
}

/* Character of a one-letter escape (\t \n \r \f \v \a), or 0. */
static char control_escape(char c)
{
	static const char from[] = "tnrfva";
	static const char to[] = "\t\n\r\f\v\a";
	const char *p = c != '\0' ? strchr(from, c) : NULL;

	return p != NULL ? to[p - from] : '\0';
}

struct bracket {
	struct template_buf members;
	bool negated, rbracket, lbracket, caret, dash;
};

/*
 * Adds one escape inside [...] (re points after the backslash). POSIX has no escapes in
 * brackets, so ] ^ - [ are placed where they are literal when the bracket is written.
 */
static int bracket_escape(struct bracket *b, const char *re, size_t *used,
			  struct template_problem *pb)
{
	char c = re[0];
	uint32_t cp;
	char enc[4];

	*used = 1;
	if (c == 'd') {
		template_buf_puts(&b->members, "0-9");
	} else if (c == 'w') {
		template_buf_puts(&b->members, "0-9A-Za-z_");
	} else if (c == 's') {
		template_buf_puts(&b->members, "\t\n\f\r ");
	} else if (c == ']') {
		b->rbracket = true;
	} else if (c == '^') {
		b->caret = true;
	} else if (c == '-') {
		b->dash = true;
	} else if (c == '[') {
		b->lbracket = true;
	} else if (control_escape(c) != '\0') {
		template_buf_putc(&b->members, control_escape(c));
	} else if (c == 'x' && (*used = 1 + read_hex_escape(re + 1, &cp)) > 1) {
		template_buf_append(&b->members, enc, template_utf8_encode(cp, enc));
	} else if (c != '\0' && ispunct((unsigned char)c)) {
		template_buf_putc(&b->members, c);
	} else {
		return template_problem_set(pb, REGEX_ACCEPTED,
					    "unsupported escape \\%c inside [...]", c);
	}
	return 0;
}

/* Converts the bracket expression at re[0] == '['; returns the length read, 0 on error. */
static size_t convert_bracket(const char *re, struct template_buf *out, struct template_problem *pb)
{
	struct bracket b = {.negated = re[1] == '^'};
	size_t i = 1 + b.negated;
	bool first = true;

	for (; re[i] != '\0' && (re[i] != ']' || first); first = false) {
		size_t used = 1;

		if (re[i] == '\\' && bracket_escape(&b, re + i + 1, &used, pb) < 0) {
			free(b.members.data);
			return 0;
		} else if (re[i] == '\\') {
			i += 1 + used;
			continue;
		}
		if (re[i] == '[' && re[i + 1] == ':' && strstr(re + i + 2, ":]") != NULL) {
			used = (size_t)(strstr(re + i + 2, ":]") - (re + i)) + 2;
			template_buf_append(&b.members, re + i, used);
		} else if (re[i] == ']') {
			b.rbracket = true;
		} else if (re[i] == '[') {
			b.lbracket = true;
		} else if (re[i] == '-' && (first || re[i + 1] == ']')) {
			b.dash = true;
		} else {
			template_buf_putc(&b.members, re[i]);
		}
		i += used;
	}
	if (re[i] != ']') {
		free(b.members.data);
		template_problem_set(pb, REGEX_ACCEPTED, "missing ] after [");
		return 0;
	}
	if (!b.negated && !b.rbracket && b.members.len == 0 && !b.lbracket && b.caret) {
		/* [\^] alone: a caret first in a POSIX bracket would negate it. */
		template_buf_puts(out, b.dash ? "[-^]" : "\\^");
	} else {
		template_buf_puts(out, b.negated ? "[^" : "[");
		if (b.rbracket)
			template_buf_putc(out, ']');
		if (b.members.data != NULL)
			template_buf_puts(out, b.members.data);
		if (b.lbracket)
			template_buf_putc(out, '[');
		if (b.caret)
			template_buf_putc(out, '^');
		template_buf_puts(out, b.dash ? "-]" : "]");
	}
	free(b.members.data);
	return i + 1;
}

/* State of the RE2 to POSIX conversion. */
struct regex_conv {
	const char *re;
	size_t i;
	struct template_buf out;
	size_t posix_groups;
	bool atom;       /* a quantifier may follow */
	bool quantified; /* the last item was a quantifier */
};

/* Converts the group opening at re[i] == '('. */
static int convert_group(struct regex_conv *c, struct template_regex *rx,
			 struct template_problem *pb)
{
	const char *p = c->re + c->i;
	size_t name_len = 0;
	const char *name = NULL;

	c->posix_groups++;
	template_buf_putc(&c->out, '(');
	c->atom = false;
	if (p[1] != '?') {
		regex_add_group(rx, c->posix_groups, NULL, 0);
		c->i++;
		return 0;
	}
	if (p[2] == ':') {
		c->i += 3;
		return 0;
	}
	if (p[2] == 'P' && p[3] == '<')
		name = p + 4;
	else if (p[2] == '<' && p[3] != '=' && p[3] != '!')
		name = p + 3;
	if (name == NULL)
		return template_problem_set(pb, REGEX_ACCEPTED, "unsupported group \"%.3s\"", p);
	while (isalnum((unsigned char)name[name_len]) || name[name_len] == '_')
		name_len++;
	if (name_len == 0 || name[name_len] != '>')
		return template_problem_set(pb, REGEX_ACCEPTED, "invalid group name after \"%.*s\"",
					    (int)(name - p), p);
	regex_add_group(rx, c->posix_groups, name, name_len);
	c->i = (size_t)(name + name_len + 1 - c->re);
	return 0;
}

/* Length of a valid repetition {n}, {n,} or {n,m} at p, or 0 when { is a literal. */
static size_t repetition_length(const char *p)
{
	size_t i = 1;

	if (!isdigit((unsigned char)p[i]))
		return 0;
	while (isdigit((unsigned char)p[i]))
		i++;
	if (p[i] == ',')
		for (i++; isdigit((unsigned char)p[i]);)
			i++;
	return p[i] == '}' ? i + 1 : 0;
}

/* Converts the escape at re[i] == '\\' outside brackets. */
static int convert_escape(struct regex_conv *c, struct template_problem *pb)
{
	/* The escape letter, then its POSIX form. */
	static const char *const classes[] = {
	    "d[0-9]", "D[^0-9]", "w[0-9A-Za-z_]", "W[^0-9A-Za-z_]", "s[\t\n\f\r ]", "S[^\t\n\f\r ]",
	};
	/* glibc has \b and \B, and ^ and $ match only at the ends without REG_NEWLINE. */
	static const char *const anchors[] = {"b\\b", "B\\B", "A^", "z$"};
	char e = c->re[c->i + 1];
	uint32_t cp;
	size_t n;
	char enc[4];

	c->atom = true;
	c->i += 2;
	for (size_t k = 0; k < sizeof(classes) / sizeof(classes[0]); k++)
		if (classes[k][0] == e) {
			template_buf_puts(&c->out, classes[k] + 1);
			return 0;
		}
	for (size_t k = 0; k < sizeof(anchors) / sizeof(anchors[0]); k++)
		if (anchors[k][0] == e) {
			template_buf_puts(&c->out, anchors[k] + 1);
			c->atom = false;
			return 0;
		}
	if (control_escape(e) != '\0') {
		template_buf_putc(&c->out, control_escape(e));
	} else if (e == 'x' && (n = read_hex_escape(c->re + c->i, &cp)) > 0) {
		if (cp < 0x80 && ere_special((int)cp))
			template_buf_putc(&c->out, '\\');
		template_buf_append(&c->out, enc, template_utf8_encode(cp, enc));
		c->i += n;
	} else if (e != '\0' && ispunct((unsigned char)e)) {
		if (ere_special(e))
			template_buf_putc(&c->out, '\\');
		template_buf_putc(&c->out, e);
	} else if (isdigit((unsigned char)e)) {
		return template_problem_set(pb, REGEX_ACCEPTED,
					    "backreference \\%c is not supported", e);
	} else if (e == '\0') {
		return template_problem_set(pb, REGEX_ACCEPTED, "trailing backslash");
	} else {
		return template_problem_set(pb, REGEX_ACCEPTED, "unsupported escape \\%c", e);
	}
	return 0;
}

/* Converts a quantifier (* + ? or {n,m}) of length len at re[i]. */
static int convert_quantifier(struct regex_conv *c, size_t len, struct template_problem *pb)
{
	const char *q = c->re + c->i;

	if (c->quantified)
		return template_problem_set(pb, REGEX_ACCEPTED,
					    "quantifier %.*s after a quantifier", (int)len, q);
	if (!c->atom)
		return template_problem_set(pb, REGEX_ACCEPTED,
					    "quantifier %.*s without an expression before it",
					    (int)len, q);
	if (q[len] == '?')
		return template_problem_set(pb, REGEX_ACCEPTED,
					    "lazy quantifier %.*s? is not supported", (int)len, q);
	template_buf_append(&c->out, q, len);
	c->i += len;
	c->quantified = true;
	return 0;
}

/*
 * Rewrites an RE2 pattern (Go's regexp syntax) as a POSIX extended regex and records where
 * each RE2 capturing group went, because (?:...) becomes a POSIX group too. Returns the
 * pattern (caller frees) or NULL with the problem.
 */
static char *regex_convert(const char *re, struct template_regex *rx, int *flags,
			   struct template_problem *pb)
{
	struct regex_conv c = {.re = re};
	int rc = 0;

	*flags = REG_EXTENDED;
	if (strncmp(re, "(?i)", 4) == 0) {
		*flags |= REG_ICASE;
		c.i = 4;
	}
	while (rc == 0 && re[c.i] != '\0') {
		char ch = re[c.i];
		size_t rep = ch == '{' ? repetition_length(re + c.i) : 0;
		bool quantifier = ch == '*' || ch == '+' || ch == '?' || rep > 0;

		if (!quantifier)
			c.quantified = false;
		if (quantifier) {
			rc = convert_quantifier(&c, rep > 0 ? rep : 1, pb);
		} else if (ch == '(') {
			rc = convert_group(&c, rx, pb);
		} else if (ch == '\\') {
			rc = convert_escape(&c, pb);
		} else if (ch == '[') {
			size_t n = convert_bracket(re + c.i, &c.out, pb);

			rc = n == 0 ? -1 : 0;
			c.i += n;
			c.atom = true;
		} else {
			template_buf_puts(&c.out, ch == '{' || ch == '}' ? "\\" : "");
			template_buf_putc(&c.out, ch);
			c.atom = ch != '|' && ch != '^' && ch != '$';
			c.i++;
		}
	}
	if (rc < 0) {
		free(c.out.data);
		return NULL;
	}
	return template_buf_finish(&c.out);
}

void template_regex_free(struct template_regex *rx)
{
	if (rx == NULL)
		return;
	if (rx->compiled)
		regfree(&rx->re);
	if (rx->locale != (locale_t)0)
		freelocale(rx->locale);
	for (size_t k = 1; k <= rx->group_count; k++)
		free(rx->group_names[k]);
	free(rx->group_names);
	free(rx->group_index);
	free(rx);
}

/*
 * Compiles a reReplaceAll pattern. Matching runs in the C.UTF-8 locale, so that ., [...]
 * and quantifiers apply to characters rather than bytes. A regex must be executed in the
 * locale it was compiled in, so the regex keeps its locale.
 */
struct template_regex *template_regex_compile(const char *pattern, struct template_problem *pb)
{
	struct template_regex *rx = xcalloc(1, sizeof(*rx));
	char quoted[CFG_QUOTE_SIZE];
	locale_t old;
	int flags;
	int rc;
	char why[128];
	char *posix;

	if (posix_regex_check_depth(pattern, why, sizeof(why)) < 0) {
		template_problem_set(pb, REGEX_ACCEPTED, "invalid regex %s (%s)",
				     cfg_quote(pattern, quoted, sizeof(quoted)), why);
		template_regex_free(rx);
		return NULL;
	}
	posix = regex_convert(pattern, rx, &flags, pb);
	if (posix == NULL) {
		size_t len = strlen(pb->text);

		snprintf(pb->text + len, sizeof(pb->text) - len, " in regex %s",
			 cfg_quote(pattern, quoted, sizeof(quoted)));
		template_regex_free(rx);
		return NULL;
	}
	rx->locale = newlocale(LC_CTYPE_MASK | LC_COLLATE_MASK, "C.UTF-8", (locale_t)0);
	old = uselocale(rx->locale != (locale_t)0 ? rx->locale : LC_GLOBAL_LOCALE);
	rc = regcomp(&rx->re, posix, flags);
	uselocale(old);
	free(posix);
	if (rc != 0) {
		regerror(rc, &rx->re, why, sizeof(why));
		template_problem_set(pb, REGEX_ACCEPTED, "invalid regex %s (%s)",
				     cfg_quote(pattern, quoted, sizeof(quoted)), why);
		template_regex_free(rx);
		return NULL;
	}
	rx->compiled = true;
	return rx;
}

/* Appends the text of RE2 group k (a number or a name) of the match, if it matched. */
static void append_group(struct template_buf *out, const struct template_regex *rx, const char *src,
			 const regmatch_t *m, const char *name, size_t len)
{
	long k = 0;
	size_t posix;

	/* Go reads $name as a group number only when it is all digits without a leading 0. */
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)name[i]) || k >= 100000000 ||
		    (i == 0 && len > 1 && name[0] == '0'))
			k = -1;
		else if (k >= 0)
			k = k * 10 + (name[i] - '0');
	for (size_t g = 1; k < 0 && g <= rx->group_count; g++)
		if (rx->group_names[g] != NULL && strlen(rx->group_names[g]) == len &&
		    strncmp(rx->group_names[g], name, len) == 0)
			k = (long)g;
	if (k < 0 || (size_t)k > rx->group_count)
		return;
	posix = k == 0 ? 0 : rx->group_index[k];
	if (m[posix].rm_so >= 0)
		template_buf_append(out, src + m[posix].rm_so,
				    (size_t)(m[posix].rm_eo - m[posix].rm_so));
}

/*
 * Appends repl with Go's Regexp.Expand rules: $1, ${1}, $name and ${name} insert a group
 * ("" when it did not match or does not exist), the name being the longest run of letters,
 * digits and "_" ("$1x" is the group named "1x"), $$ is "$", and any other $ is kept.
 */
static void expand_replacement(struct template_buf *out, const struct template_regex *rx,
			       const char *src, const regmatch_t *m, const char *repl)
{
	while (*repl != '\0') {
		const char *dollar = strchr(repl, '$');
		const char *name;
		size_t len = 0;
		bool brace;

		if (dollar == NULL) {
			template_buf_puts(out, repl);
			return;
		}
		template_buf_append(out, repl, (size_t)(dollar - repl));
		repl = dollar + 1;
		if (*repl == '$') {
			template_buf_putc(out, '$');
			repl++;
			continue;
		}
		brace = *repl == '{';
		name = repl + brace;
		while (isalnum((unsigned char)name[len]) || name[len] == '_')
			len++;
		if (len == 0 || (brace && name[len] != '}')) {
			template_buf_putc(out, '$');
			continue;
		}
		append_group(out, rx, src, m, name, len);
		repl = name + len + brace;
	}
}

/*
 * Go's Regexp.ReplaceAllString: replaces every non-overlapping match, leftmost first. An
 * empty match right after a match is not replaced, and the search moves on by at least one
 * UTF-8 character.
 * NOTE: POSIX picks the longest of the matches that start at one place, where Go picks the
 * first alternative: "a|ab" on "abc" matches "ab" here and "a" in Go.
 */
char *template_regex_replace(const struct template_regex *rx, const char *src, const char *repl)
{
	struct template_buf out = {0};
	size_t len = strlen(src);
	size_t search = 0;
	size_t last_end = 0;
	size_t nmatch = rx->re.re_nsub + 1;
	regmatch_t *m = xcalloc(nmatch, sizeof(*m));
	locale_t old = uselocale(rx->locale != (locale_t)0 ? rx->locale : LC_GLOBAL_LOCALE);

	while (search <= len) {
		size_t start, end;
		uint32_t cp;
		size_t width = search < len ? template_utf8_decode(src + search, &cp) : 0;

		/* REG_STARTEND keeps the text before `search` as context for ^ and \b. */
		m[0].rm_so = (regoff_t)search;
		m[0].rm_eo = (regoff_t)len;
		if (regexec(&rx->re, src, nmatch, m, REG_STARTEND) != 0)
			break;
		start = (size_t)m[0].rm_so;
		end = (size_t)m[0].rm_eo;
		template_buf_append(&out, src + last_end, start - last_end);
		if (end > last_end || start == 0)
			expand_replacement(&out, rx, src, m, repl);
		last_end = end;
		if (search + width > end)
			search += width;
		else if (search + 1 > end)
			search++;
		else
			search = end;
	}
	uselocale(old);
	free(m);
	template_buf_append(&out, src + last_end, len - last_end);
	return template_buf_finish(&out);
}
