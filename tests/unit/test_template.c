/*
 * Unit tests of alert templates. A table of templates is rendered with fixed labels and
 * values, and the expected text is what Prometheus 2.42 renders for the same alert
 * (collected with `promtool test rules`). Other tables hold every parse error with its
 * exact message and position, and run-time errors. The humanize functions are tested on
 * their own, and so are constant templates.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/template.h"

static const struct expr_location rules_yml = {"rules.yml", 12, 19};

/* An alert's labels, sorted by name as the evaluator passes them. */
static const struct label labels[] = {
    {"code", "503"},    {"instance", "host:9100"}, {"job", "api server"},
    {"path", "/a/b/c"}, {"ratio", "0.25"},
};
static const struct label external[] = {{"region", "eu-1"}};

static struct template_data data_with_value(double value)
{
	return (struct template_data){
	    .labels = labels,
	    .label_count = sizeof(labels) / sizeof(labels[0]),
	    .value = value,
	    .external_labels = external,
	    .external_label_count = 1,
	};
}

/* Parses and renders text; fails the test when either step fails. Caller frees. */
static char *render_ok(const char *text, const struct template_data *d)
{
	char *error = NULL;
	struct template *t = template_parse(text, &rules_yml, &error);
	char *out;

	if (t == NULL)
		fail_msg("%s: parse failed: %s", text, error);
	out = template_render(t, d, &error);
	if (out == NULL)
		fail_msg("%s: render failed: %s", text, error);
	template_free(t);
	return out;
}

struct render_case {
	const char *text;
	double value;
	const char *expected;
};

/*
 * Expected outputs: what promtool test rules (Prometheus 2.42) gives for an alert with the
 * labels above, the external label region="eu-1" and the value in the table.
 */
static const struct render_case render_cases[] = {
    {"plain text", 1, "plain text"},
    {"a }} b { c", 1, "a }} b { c"},
    {"a  {{- 3 -}}  b", 1, "a3b"},
    {"a \n {{- /* note */ -}} \n b", 1, "ab"},
    {"a {{/* note */}} b", 1, "a  b"},
    {"{{-3}}", 1, "-3"},
    {"x {{- $labels.job}}", 1, "xapi server"},
    {"{{ \"}}\" }}{{ \"{{\" }}", 1, "}}{{"},
    {"{{ $value\n| humanize }}", 1, "1"},
    {"{{ $value }} {{ .Value }}", 2.5, "2.5 2.5"},
    {"{{ $labels.job }}|{{ .Labels.instance }}|{{ $labels.missing }}|", 1,
     "api server|host:9100||"},
    {"{{ $externalLabels.region }} {{ .ExternalLabels.region }} [{{ $externalLabels.zone }}]", 1,
     "eu-1 eu-1 []"},
    {"{{ $value }}", 1000000, "1e+06"},
    {"{{ $value }}", 123456, "123456"},
    {"{{ $value }}", 123456789, "1.23456789e+08"},
    {"{{ $value }}", 0.1, "0.1"},
    {"{{ $value }}", 0.0001, "0.0001"},
    {"{{ $value }}", 0.00001, "1e-05"},
    {"{{ $value }}", -0.5, "-0.5"},
    {"{{ $value }}", 0.3333333333333333, "0.3333333333333333"},
    {"{{ $value }}", 1e21, "1e+21"},
    {"{{ $value }}", 5e-324, "5e-324"},
    {"{{ $value }}", 1.7976931348623157e308, "1.7976931348623157e+308"},
    {"{{ $value }}", NAN, "NaN"},
    {"{{ $value }}", INFINITY, "+Inf"},
    {"{{ $value }}", -INFINITY, "-Inf"},
    {"{{ $value }}", 0, "0"},
    {"{{ 3 }} {{ 3.0 }} {{ 1e3 }} {{ 0x1F }} {{ 017 }} {{ 0o17 }} {{ 0b101 }} {{ +5 }} {{ .5 }} {{ "
     "-0.0 }} {{ 1.5e-7 }}",
     1, "3 3 1000 31 15 15 5 5 0.5 -0 1.5e-07"},
    {"{{ -9223372036854775808 }} {{ 9223372036854775807 }}", 1,
     "-9223372036854775808 9223372036854775807"},
    {"{{ \"a\\tb\\u00e9\\x41\\101\\U0001F600\\\"\\\\\" }}", 1,
     "a\tb\xc3"
     "\xa9"
     "AA\xf0"
     "\x9f"
     "\x98"
     "\x80"
     "\"\\"},
    {"{{ `raw\\n` }}", 1, "raw\\n"},
    {"{{ humanize $value }}", 1234567, "1.235M"},
    {"{{ humanize $value }}", 0.001234, "1.234m"},
    {"{{ humanize $value }}", 0, "0"},
    {"{{ humanize $value }}", -1, "-1"},
    {"{{ humanize $value }}", 0.12, "120m"},
    {"{{ humanize $value }}", 999.99, "1000"},
    {"{{ humanize $value }}", 999999, "1000k"},
    {"{{ humanize $value }}", 1e-30, "1e-06y"},
    {"{{ humanize $value }}", 1.5e300, "1.5e+276Y"},
    {"{{ humanize $value }} {{ humanize1024 $value }} {{ humanizeDuration $value }} {{ "
     "humanizePercentage $value }} {{ humanizeTimestamp $value }}",
     NAN, "NaN NaN NaN NaN% NaN"},
    {"{{ humanize $value }} {{ humanize1024 $value }} {{ humanizeDuration $value }} {{ "
     "humanizePercentage $value }} {{ humanizeTimestamp $value }}",
     INFINITY, "+Inf +Inf +Inf +Inf% +Inf"},
    {"{{ humanize $value }} {{ humanize1024 $value }} {{ humanizeDuration $value }} {{ "
     "humanizePercentage $value }} {{ humanizeTimestamp $value }}",
     -INFINITY, "-Inf -Inf -Inf -Inf% -Inf"},
    {"{{ humanize \"1234\" }} {{ \"1e3\" | humanize }} {{ humanize \"1_000\" }} {{ humanize "
     "\"-Infinity\" }} {{ humanize 3 }}",
     1, "1.234k 1k 1k -Inf 3"},
    {"{{ humanize $labels.code }} {{ $labels.ratio | humanizePercentage }}", 1, "503 25%"},
    {"{{ humanize1024 $value }}", 1048576, "1Mi"},
    {"{{ humanize1024 $value }}", 1000000, "976.6ki"},
    {"{{ humanize1024 $value }}", 1024, "1ki"},
    {"{{ humanize1024 $value }}", -2048, "-2ki"},
    {"{{ humanize1024 $value }}", 0.12, "0.12"},
    {"{{ humanize1024 $value }}", 1, "1"},
    {"{{ humanize1024 $value }}", 1e21, "867.4Ei"},
    {"{{ humanizeDuration $value }}", 3723, "1h 2m 3s"},
    {"{{ humanizeDuration $value }}", 0.25, "250ms"},
    {"{{ humanizeDuration $value }}", 0, "0s"},
    {"{{ humanizeDuration $value }}", 1, "1s"},
    {"{{ humanizeDuration $value }}", 60, "1m 0s"},
    {"{{ humanizeDuration $value }}", 86400, "1d 0h 0m 0s"},
    {"{{ humanizeDuration $value }}", -183845, "-2d 3h 4m 5s"},
    {"{{ humanizeDuration $value }}", 899.99, "14m 59s"},
    {"{{ humanizeDuration $value }}", 0.0001, "100us"},
    {"{{ humanizeDuration $value }}", 0.12345, "123.5ms"},
    {"{{ humanizeDuration $value }}", 12.345, "12.35s"},
    {"{{ humanizeDuration $value }}", 59.99999, "60s"},
    {"{{ humanizeDuration $value }}", -0.001, "-1ms"},
    {"{{ humanizeDuration $value }}", 1e21, "-106751991167300d -15h -30m -8s"},
    {"{{ humanizeDuration $value }}", -1e21, "--106751991167300d -15h -30m -8s"},
    {"{{ humanizePercentage $value }}", 0.5, "50%"},
    {"{{ humanizePercentage $value }}", 0.1234567, "12.35%"},
    {"{{ humanizePercentage $value }}", -0.22222, "-22.22%"},
    {"{{ humanizePercentage $value }}", 1.23456, "123.5%"},
    {"{{ humanizePercentage $value }}", 1234567, "1.235e+08%"},
    {"{{ humanizeTimestamp $value }}", 1435065584.128, "2015-06-23 13:19:44.128 +0000 UTC"},
    {"{{ humanizeTimestamp $value }}", 0, "1970-01-01 00:00:00 +0000 UTC"},
    {"{{ humanizeTimestamp $value }}", -1.5, "1969-12-31 23:59:58.5 +0000 UTC"},
    {"{{ humanizeTimestamp $value }}", 0.1, "1970-01-01 00:00:00.1 +0000 UTC"},
    {"{{ humanizeTimestamp $value }}", -0.0001, "1970-01-01 00:00:00 +0000 UTC"},
    {"{{ humanizeTimestamp $value }}", 9223372036, "2262-04-11 23:47:16 +0000 UTC"},
    {"{{ humanizeTimestamp $value }}", -9223372036.854775, "1677-09-21 00:12:43.146 +0000 UTC"},
    {"{{ printf \"%.2f|%g|%v|%e|%5.1f|%-8g|%+.3e|%08.2f|% g|%.3g|%10.4v|%+v|%06v\" $value $value "
     "$value $value $value $value $value $value $value $value $value $value $value }}",
     2.5,
     "2.50|2.5|2.5|2.500000e+00|  2.5|2.5     |+2.500e+00|00002.50| 2.5|2.5|       2.5|2.5|0002.5"},
    {"{{ printf \"%g %v %.1f %e\" $value $value $value $value }}", 1234567.891,
     "1.234567891e+06 1.234567891e+06 1234567.9 1.234568e+06"},
    {"{{ printf \"%+v|%06v|% f|%-6g|%06.2f|%+f\" $value $value $value $value $value $value }}", NAN,
     "NaN|   NaN| NaN|NaN   |   NaN|+NaN"},
    {"{{ printf \"%+v|%06v|% f|%-6g|%06.2f|% v\" $value $value $value $value $value $value }}",
     INFINITY, "+Inf|  +Inf| Inf|+Inf  |  +Inf| Inf"},
    {"{{ printf \"%v|%06v\" $value $value }}", -0.0, "-0|-00000"},
    {"{{ printf \"%d|%5d|%-5d|%05d|%+d|%.3d|% d|%-08d|%.0d|%v|%+v|%06v|%d\" 3 3 3 3 3 7 5 -4 0 -12 "
     "5 -7 -9223372036854775808 }}",
     1, "3|    3|3    |00003|+3|007| 5|-4      ||-12|5|-00007|-9223372036854775808"},
    {"{{ printf \"%s|%5s|%-5s|%.2s|%v|%05s|%-05s|%.0s|%3.1v\" \"h\xc3"
     "\xa9"
     "llo\" \"\xc3"
     "\xa9"
     "\" \"ab\" \"h\xc3"
     "\xa9"
     "llo\" \"x\" \"ab\" \"ab\" \"abc\" \"xyz\" }}",
     1,
     "h\xc3"
     "\xa9"
     "llo|    \xc3"
     "\xa9"
     "|ab   |h\xc3"
     "\xa9"
     "|x|000ab|ab   ||  x"},
    {"{{ printf \"%%|%v|%v|100%%\" 3 1.5 }}", 1, "%|3|1.5|100%"},
    {"{{ printf \"%s is %s\" $labels.job $labels.instance }}", 1, "api server is host:9100"},
    {"{{ $value | printf \"%.1f\" }} {{ 3 | printf \"%d%d\" 4 }}", 12.3456, "12.3 43"},
    {"{{ printf \"no verbs\" }}", 1, "no verbs"},
    {"{{ printf $labels.path }}", 1, "/a/b/c"},
    {"{{ toUpper \"stra\xc3"
     "\x9f"
     "e \xc4"
     "\xb1"
     " \xc7"
     "\x86"
     " abc\" }}",
     1,
     "STRA\xc3"
     "\x9f"
     "E I \xc7"
     "\x84"
     " ABC"},
    {"{{ toLower \"\xc3"
     "\x80"
     "\xc3"
     "\x89"
     "\xc3"
     "\x8e"
     " ABC\" }}",
     1,
     "\xc3"
     "\xa0"
     "\xc3"
     "\xa9"
     "\xc3"
     "\xae"
     " abc"},
    {"{{ \"aa bb-cc o'neil 3am \xc3"
     "\xbc"
     "nder _x x_y\" | title }}",
     1,
     "Aa Bb-Cc O'Neil 3am \xc3"
     "\x9c"
     "nder _x X_y"},
    {"{{ title \"\xc7"
     "\x86"
     "emal h\xc3"
     "\xa9"
     "llo w\xc3"
     "\xb6"
     "rld\" }}",
     1,
     "\xc7"
     "\x85"
     "emal H\xc3"
     "\xa9"
     "llo W\xc3"
     "\xb6"
     "rld"},
    {"{{ $labels.job | title }} {{ $labels.job | toUpper }}", 1, "Api Server API SERVER"},
    {"{{ reReplaceAll \"(a)b\" \"x$1\" \"abab\" }}", 1, "xaxa"},
    {"{{ reReplaceAll \":[0-9]+$\" \"\" $labels.instance }}", 1, "host"},
    {"{{ $labels.instance | reReplaceAll \"(.*):(.*)\" \"$2\" }}", 1, "9100"},
    {"{{ reReplaceAll \"(a)(b)\" \"$2$1x$1x${1}x$$\" \"ab\" }}", 1, "bax$"},
    {"{{ reReplaceAll \"a*\" \"-\" \"baaac\" }}", 1, "-b-c-"},
    {"{{ reReplaceAll \"\" \"-\" \"abc\" }}", 1, "-a-b-c-"},
    {"{{ reReplaceAll \"^\" \"-\" \"abc\" }}", 1, "-abc"},
    {"{{ reReplaceAll \"$\" \"!\" \"ab\" }}", 1, "ab!"},
    {"{{ reReplaceAll \"x*\" \"-\" \"h\xc3"
     "\xa9"
     "llo\" }}",
     1,
     "-h-\xc3"
     "\xa9"
     "-l-l-o-"},
    {"{{ reReplaceAll \"b*\" \"X\" \"abc\" }}", 1, "XaXcX"},
    {"{{ reReplaceAll \"(?i)HOST\" \"h\" $labels.instance }}", 1, "h:9100"},
    {"{{ reReplaceAll \"(?P<h>[^:]+):(?P<p>\\\\d+)\" \"${p}/$h\" $labels.instance }}", 1,
     "9100/host"},
    {"{{ reReplaceAll \"(?:a)(b)\" \"[$1]\" \"abab\" }}", 1, "[b][b]"},
    {"{{ reReplaceAll \"[\\\\]\\\\-^]\" \"_\" \"a]b-c^d\" }}", 1, "a_b_c_d"},
    {"{{ reReplaceAll \"[\\\\^]\" \"_\" \"a^b\" }} {{ reReplaceAll \"[-a]\" \"_\" \"-ab\" }} {{ "
     "reReplaceAll \"[a-]\" \"_\" \"-ab\" }} {{ reReplaceAll \"[]a]\" \"_\" \"]ab\" }}",
     1, "a_b __b __b __b"},
    {"{{ reReplaceAll \"[[:digit:]x]\" \"_\" \"1x2y\" }} {{ reReplaceAll \"[\\\\d.]+\" \"#\" "
     "\"v1.2.3-x\" }} {{ reReplaceAll \"[^\\\\w]\" \"\" \"a-b.c\" }}",
     1, "___y v#-x abc"},
    {"{{ reReplaceAll \"\\\\d+\" \"N\" \"a1b22c333\" }} {{ reReplaceAll \"\\\\s+\" \" \" \"a  \\t "
     "b\" }} {{ reReplaceAll \"\\\\w+\" \"W\" \"ab-cd_e\" }}",
     1, "aNbNcN a b W-W"},
    {"{{ reReplaceAll \"\\\\bb\" \"X\" \"ab b\" }} {{ reReplaceAll \"\\\\Aab\" \"_\" \"abab\" }} "
     "{{ reReplaceAll \"\\\\.\" \"_\" \"a.b\" }} {{ reReplaceAll \"\\\\x41\" \"X\" \"BAB\" }}",
     1, "ab X _ab a_b BXB"},
    {"{{ reReplaceAll \"a{2}\" \"X\" \"aaaaa\" }} {{ reReplaceAll \"a{\" \"X\" \"a{b\" }}", 1,
     "XXa Xb"},
    {"{{ reReplaceAll \"\xc3"
     "\xa9"
     ".\" \"E\" \"\xc3"
     "\xa9"
     "a\xc3"
     "\xa9"
     "b\xc3"
     "\xa9"
     "\" }} {{ reReplaceAll \"[\xc3"
     "\xa9"
     "]+\" \"E\" \"a\xc3"
     "\xa9"
     "\xc3"
     "\xa9"
     "b\" }}",
     1,
     "EE\xc3"
     "\xa9"
     " aEb"},
    {"{{ reReplaceAll \"(a)(b)?\" \"[$2]\" \"a\" }} {{ reReplaceAll \"(a)\" "
     "\"$10|${1}0|$|$-|${x|$01|$0$0\" \"a\" }}",
     1, "[] |a0|$|$-|${x||aa"},
    {"{{ reReplaceAll $labels.path \"X\" \"a/a/b/c\" }}", 1, "aX"},
    {"{{ ($value) }} {{ humanize ( $value ) }} {{ .Value | humanize | toUpper }}", 2.5,
     "2.5 2.5 2.5"},
    {"{{ printf \"%s\" ( printf \"%.1f\" ( $value ) ) | title }}", 2.5, "2.5"},
    {"{{ printf \"%v%%\" (humanize1024 $value) }}", 2048, "2ki%"},
    {"{{ $labels.job | reReplaceAll \" \" \"-\" | toUpper | printf \"<%s>\" }}", 1, "<API-SERVER>"},
};

static void render_matches_prometheus(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(render_cases) / sizeof(render_cases[0]); i++) {
		const struct render_case *c = &render_cases[i];
		struct template_data d = data_with_value(c->value);
		char *out = render_ok(c->text, &d);

		if (strcmp(out, c->expected) != 0)
			fail_msg("%s (value %g): got \"%s\", expected \"%s\"", c->text, c->value,
				 out, c->expected);
		free(out);
	}
}

struct error_case {
	const char *text;
	const char *message;
};

#define FUNCTIONS                                                                                  \
	"humanize, humanize1024, humanizeDuration, humanizePercentage, humanizeTimestamp, "        \
	"printf, toUpper, toLower, title or reReplaceAll"
#define REGEXES                                                                                    \
	"a POSIX extended regular expression (plus (?i), (?:...), (?P<name>...), \\d, \\w, \\s)"
#define VARIABLES "$value, $labels.NAME or $externalLabels.NAME"
#define FIELDS    ".Value, .Labels.NAME or .ExternalLabels.NAME"
#define AT        "rules.yml:12:19: "

static const struct error_case error_cases[] = {
    /* delimiters and comments */
    {"{{", AT "unclosed action at column 1 of template, expected }}"},
    {"ab {{ $value", AT "unclosed action at column 4 of template, expected }}"},
    {"{{ humanize (", AT "unclosed action at column 1 of template, expected }}"},
    {"{{ humanize $value }", AT "unexpected \"}\" at column 20 of template, expected a value"},
    /* As in Go, "{{- -}}" is the number "-": the right marker needs white space before it. */
    {"{{- -}}", AT "invalid number \"-\" at column 5 of template, expected a decimal, 0x "
		   "hexadecimal, 0o octal or 0b binary number"},
    {"{{ }}", AT "empty action at column 1 of template, expected a value or a function call"},
    {"{{-  -}}", AT "empty action at column 1 of template, expected a value or a function call"},
    {"{{/* note", AT "unclosed comment at column 1 of template, expected */}} at the end of the "
		     "comment"},
    {"{{/* note */ }}", AT "text after the end of a comment at column 13 of template, expected "
			   "}} right after */"},
    /* data */
    {"{{ $foo }}", AT "unknown variable $foo at column 4 of template, expected " VARIABLES},
    {"{{ $labels }}", AT "$labels needs a label name at column 4 of template, expected "
			 "$labels.NAME"},
    {"{{ .Labels }}", AT ".Labels needs a label name at column 4 of template, expected "
			 ".Labels.NAME"},
    {"{{ $externalLabels }}", AT "$externalLabels needs a label name at column 4 of template, "
				 "expected $externalLabels.NAME"},
    {"{{ $labels.a.b }}", AT "the value of label a has no fields at column 13 of template, "
			     "expected " VARIABLES},
    {"{{ $value.x }}", AT "the alert value has no fields at column 10 of template, expected "
			  "$value"},
    {"{{ .Foo }}", AT "unknown field .Foo at column 4 of template, expected " FIELDS},
    {"{{ . }}", AT ". (the whole data) is not supported at column 4 of template, expected " FIELDS},
    {"{{ $ }}",
     AT "$ (the whole data) is not supported at column 4 of template, expected " VARIABLES},
    {"{{ $externalURL }}",
     AT "$externalURL is not supported at column 4 of template, expected " VARIABLES},
    {"{{ .ExternalURL }}",
     AT ".ExternalURL is not supported at column 4 of template, expected " FIELDS},
    {"{{ $x := 1 }}", AT "variable declarations are not supported at column 4 of template, "
			 "expected a value or a function call"},
    {"{{ $value = 1 }}", AT "variable declarations are not supported at column 4 of template, "
			    "expected a value or a function call"},
    /* unsupported constructs */
    {"{{ if $value }}x{{ end }}", AT "if is not supported at column 4 of template, expected a "
				     "value or a function call"},
    {"{{ range $labels }}", AT "range is not supported at column 4 of template, expected a "
			       "value or a function call"},
    {"{{ with $value }}", AT "with is not supported at column 4 of template, expected a value "
			     "or a function call"},
    {"{{ define \"x\" }}", AT "define is not supported at column 4 of template, expected a "
			      "value or a function call"},
    {"{{ template \"x\" }}", AT "template is not supported at column 4 of template, expected a "
				"value or a function call"},
    {"{{ block \"x\" . }}", AT "block is not supported at column 4 of template, expected a "
			       "value or a function call"},
    {"{{ else }}", AT "else is not supported at column 4 of template, expected a value or a "
		      "function call"},
    {"{{ end }}", AT "end is not supported at column 4 of template, expected a value or a "
		     "function call"},
    {"{{ true }}", AT "true is not supported at column 4 of template, expected a string or a "
		      "number"},
    {"{{ nil }}", AT "nil is not supported at column 4 of template, expected a string or a number"},
    {"{{ 'a' }}", AT "character literal \"'a'\" is not supported at column 4 of template, "
		     "expected a string in double quotes"},
    /* functions */
    {"{{ foo 1 }}", AT "unknown function foo at column 4 of template, expected " FUNCTIONS},
    {"{{ query \"up\" }}", AT "function query is not supported at column 4 of template, "
			      "expected " FUNCTIONS},
    {"{{ index $labels \"a\" }}", AT "function index is not supported at column 4 of "
				     "template, expected " FUNCTIONS},
    {"{{ humanize toUpper \"x\" }}",
     AT "function toUpper as an argument needs parentheses at "
	"column 13 of template, expected (FUNCTION ARGUMENTS...) in "
	"parentheses"},
    {"{{ humanize }}", AT "humanize called with 0 arguments at column 4 of template, expected 1 "
			  "argument"},
    {"{{ humanize 1 2 }}", AT "humanize called with 2 arguments at column 4 of template, "
			      "expected 1 argument"},
    {"{{ 1 | humanizeDuration 2 }}",
     AT "humanizeDuration called with 2 arguments (the piped "
	"value is the last one) at column 8 of template, expected 1 "
	"argument"},
    {"{{ reReplaceAll \"a\" \"b\" }}", AT "reReplaceAll called with 2 arguments at column 4 of "
					  "template, expected 3 arguments"},
    {"{{ printf }}", AT "printf called with 0 arguments at column 4 of template, expected a "
			"format and the values it formats"},
    /* argument types */
    {"{{ toUpper $value }}", AT "argument 1 of toUpper is a float at column 12 of template, "
				"expected a string (printf \"%v\" formats a number as one)"},
    {"{{ $value | toLower }}", AT "the value piped into toLower is a float at column 13 of "
				  "template, expected a string (printf \"%v\" formats a number as "
				  "one)"},
    {"{{ title 3 }}", AT "argument 1 of title is an integer at column 10 of template, expected a "
			 "string (printf \"%v\" formats a number as one)"},
    {"{{ reReplaceAll \"a\" \"b\" $value }}", AT "argument 3 of reReplaceAll is a float at "
						 "column 25 of template, expected a string "
						 "(printf \"%v\" formats a number as one)"},
    {"{{ humanize \"abc\" }}", AT "argument of humanize is not a number: \"abc\" at column 13 of "
				  "template, expected a number, or a string that contains one"},
    {"{{ printf 3 }}", AT "the format of printf is an integer at column 11 of template, expected "
			  "a format string"},
    /* printf formats */
    {"{{ printf \"%d\" $value }}", AT "printf verb %d gets a float at column 16 of template, "
				      "expected %f, %e, %g or %v for a float (%.0f prints no "
				      "decimals)"},
    {"{{ $value | printf \"%s\" }}", AT "printf verb %s gets a float at column 13 of template, "
					"expected %f, %e, %g or %v for a float (%.0f prints no "
					"decimals)"},
    {"{{ printf \"%s %d\" 1 }}", AT "printf verb %s gets an integer at column 19 of template, "
				    "expected %d or %v for an integer"},
    {"{{ printf \"%f\" \"x\" }}", AT "printf verb %f gets a string at column 16 of template, "
				     "expected %s or %v for a string"},
    {"{{ printf \"%x\" 3 }}", AT "printf verb %x is not supported at column 11 of template, "
				 "expected %v, %s, %d, %f, %e, %g or %%"},
    {"{{ printf \"%d %d\" 3 }}", AT "printf format \"%d %d\" has 2 verbs for 1 argument at "
				    "column 11 of template"},
    {"{{ printf \"%d\" 3 4 }}", AT "printf format \"%d\" has 1 verb for 2 arguments at column "
				   "11 of template"},
    {"{{ printf \"100%\" }}", AT "printf format ends in the middle of a verb at column 11 of "
				 "template, expected a verb after %, or %% for a percent sign"},
    {"{{ printf \"%#v\" 3 }}", AT "printf flag # is not supported at column 11 of template, "
				  "expected the flags - + space 0, a width and a .precision"},
    {"{{ printf \"%*d\" 3 }}", AT "printf width * is not supported at column 11 of template, "
				  "expected the flags - + space 0, a width and a .precision"},
    {"{{ printf \"%.*f\" 3 }}", AT "printf .* is not supported at column 11 of template, "
				   "expected a number after ."},
    {"{{ printf \"%[1]d\" 3 }}", AT "printf argument indexes [n] are not supported at column 11 "
				    "of template, expected the flags - + space 0, a width and a "
				    ".precision"},
    {"{{ printf \"%5000d\" 3 }}", AT "printf width too large at column 11 of template, expected "
				     "at most 1000"},
    {"{{ printf \"%.5000f\" 3.0 }}", AT "printf precision too large at column 11 of template, "
					"expected at most 1000"},
    /* regexes */
    {"{{ reReplaceAll \"(\" \"\" \"\" }}", AT "invalid regex \"(\" (Unmatched ( or \\() at "
					      "column 17 of template, expected " REGEXES},
    {"{{ reReplaceAll \"a*?\" \"\" \"\" }}",
     AT "lazy quantifier *? is not supported in regex "
	"\"a*?\" at column 17 of template, expected " REGEXES},
    {"{{ reReplaceAll \"a{2}?\" \"\" \"\" }}", AT "lazy quantifier {2}? is not supported in "
						  "regex \"a{2}?\" at column 17 of template, "
						  "expected " REGEXES},
    {"{{ reReplaceAll \"a**\" \"\" \"\" }}",
     AT "quantifier * after a quantifier in regex "
	"\"a**\" at column 17 of template, expected " REGEXES},
    {"{{ reReplaceAll \"*a\" \"\" \"\" }}",
     AT "quantifier * without an expression before it "
	"in regex \"*a\" at column 17 of template, expected " REGEXES},
    {"{{ reReplaceAll `\\pL` \"\" \"\" }}", AT "unsupported escape \\p in regex \"\\\\pL\" at "
					       "column 17 of template, expected " REGEXES},
    {"{{ reReplaceAll `[\\D]` \"\" \"\" }}",
     AT "unsupported escape \\D inside [...] in regex "
	"\"[\\\\D]\" at column 17 of template, expected " REGEXES},
    {"{{ reReplaceAll `(a)\\1` \"\" \"\" }}",
     AT "backreference \\1 is not supported in regex "
	"\"(a)\\\\1\" at column 17 of template, expected " REGEXES},
    {"{{ reReplaceAll `a\\` \"\" \"\" }}", AT "trailing backslash in regex \"a\\\\\" at column "
					      "17 of template, expected " REGEXES},
    {"{{ reReplaceAll \"(?=a)\" \"\" \"\" }}", AT "unsupported group \"(?=\" in regex \"(?=a)\" "
						  "at column 17 of template, expected " REGEXES},
    {"{{ reReplaceAll \"(?P<>a)\" \"\" \"\" }}", AT "invalid group name after \"(?P<\" in regex "
						    "\"(?P<>a)\" at column 17 of template, "
						    "expected " REGEXES},
    {"{{ reReplaceAll \"[a\" \"\" \"\" }}", AT "missing ] after [ in regex \"[a\" at column 17 "
					       "of template, expected " REGEXES},
    /* literals */
    {"{{ \"abc }}", AT "unterminated string at column 4 of template, expected a closing \" on "
		       "the same line"},
    {"{{ \"a\nb\" }}", AT "unterminated string at column 4 of template, expected a closing \" "
			  "on the same line"},
    {"{{ `abc }}", AT "unterminated raw string at column 4 of template, expected a closing `"},
    {"{{ \"a\\qb\" }}", AT "invalid escape \\q in string at column 6 of template, expected "
			   "\\\\, \\\", \\a, \\b, \\f, \\n, \\r, \\t, \\v, \\NNN (octal), \\xHH, "
			   "\\uHHHH or \\UHHHHHHHH"},
    {"{{ \"\\'\" }}",
     AT "invalid escape \\' in string at column 5 of template, expected \\\\, "
	"\\\", \\a, \\b, \\f, \\n, \\r, \\t, \\v, \\NNN (octal), \\xHH, \\uHHHH or "
	"\\UHHHHHHHH"},
    {"{{ \"\\ud800\" }}", AT "invalid escape \\u in string at column 5 of template, expected "
			     "\\\\, \\\", \\a, \\b, \\f, \\n, \\r, \\t, \\v, \\NNN (octal), \\xHH, "
			     "\\uHHHH or \\UHHHHHHHH"},
    {"{{ \"a\\x00b\" }}", AT "NUL character in string is not supported at column 6 of template, "
			     "expected a character other than NUL"},
    {"{{ 1x }}", AT "invalid number \"1x\" at column 4 of template, expected a decimal, 0x "
		    "hexadecimal, 0o octal or 0b binary number"},
    {"{{ 019 }}", AT "invalid number \"019\" at column 4 of template, expected a decimal, 0x "
		     "hexadecimal, 0o octal or 0b binary number"},
    {"{{ 9223372036854775808 }}", AT "invalid number \"9223372036854775808\" at column 4 of "
				     "template, expected a decimal, 0x hexadecimal, 0o octal or 0b "
				     "binary number"},
    {"{{ 1e999 }}", AT "number \"1e999\" is out of range at column 4 of template, expected a "
		       "number within the range of a float64"},
    /* pipelines */
    {"{{ @ }}", AT "unexpected \"@\" at column 4 of template, expected a value"},
    {"{{ $value | 3 }}", AT "cannot pipe a value into \"3\" at column 13 of template, expected a "
			    "function"},
    {"{{ $value 3 }}", AT "unexpected \"3\" at column 11 of template, expected | or }}"},
    {"{{ ($value 3) }}", AT "unexpected \"3\" at column 12 of template, expected | or )"},
    {"{{ $labels.job, $value }}", AT "unexpected \",\" at column 15 of template, expected | or }}"},
    {"{{ | humanize }}", AT "missing value before | at column 4 of template, expected a value "
			    "before |"},
    {"{{ $value | }}", AT "missing function after | at column 13 of template, expected a "
			  "function after |"},
    {"{{ (humanize $value }}", AT "unclosed ( at column 4 of template, expected )"},
    {"{{ humanize $value) }}", AT "unexpected \")\" without ( at column 19 of template, expected "
				  "| or }}"},
    {"{{ () }}", AT "empty parentheses at column 4 of template, expected a value or a function "
		    "call"},
    {"{{ ((((((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))))))) }}",
     AT "parentheses nested deeper than 32 at column 36 of template"},
    /* positions count characters and lines */
    {"\xc3\xa9t\xc3\xa9 {{ $foo }}",
     AT "unknown variable $foo at column 8 of template, expected " VARIABLES},
    {"line 1\n{{ humanize\n  $foo }}", AT "unknown variable $foo at line 3, column 3 of template, "
					  "expected " VARIABLES},
};

static void parse_errors_exact(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *c = &error_cases[i];
		char *error = NULL;
		struct template *t = template_parse(c->text, &rules_yml, &error);

		if (t != NULL)
			fail_msg("%s: parsed, expected error %s", c->text, c->message);
		if (error == NULL || strcmp(error, c->message) != 0)
			fail_msg("%s:\n got      %s\n expected %s", c->text, error, c->message);
		free(error);
	}
}

/* A reReplaceAll regex nested 30,000 groups deep is a parse error, not a stack overflow
 * inside regcomp(). */
static void deeply_nested_regex_rejected(void **state)
{
	size_t depth = 30000;
	char *text = malloc(2 * depth + 64);
	size_t n = 0;
	char *error = NULL;

	(void)state;
	n += (size_t)sprintf(text, "{{ reReplaceAll \"");
	memset(text + n, '(', depth);
	n += depth;
	text[n++] = 'x';
	memset(text + n, ')', depth);
	n += depth;
	strcpy(text + n, "\" \"y\" \"z\" }}");
	assert_null(template_parse(text, &rules_yml, &error));
	assert_non_null(error);
	if (strstr(error, "groups nested deeper than 1000 at offset 1000") == NULL)
		fail_msg("%.300s", error);
	free(error);
	free(text);
}

static void parse_error_without_location(void **state)
{
	char *error = NULL;

	(void)state;
	assert_null(template_parse("{{ $foo }}", NULL, &error));
	assert_string_equal(error,
			    "unknown variable $foo at column 4 of template, expected " VARIABLES);
	free(error);
}

struct runtime_case {
	const char *text;
	double value;
	const char *message;
};

/* Failures on data: Prometheus renders an error text for these as well. */
static const struct runtime_case runtime_cases[] = {
    {"{{ humanize $labels.job }}", 1,
     "humanize: \"api server\" is not a number at column 4 of template"},
    {"x {{ $labels.job | humanizeDuration }}", 1,
     "humanizeDuration: \"api server\" is not a number at column 20 of template"},
    {"{{ humanizePercentage $labels.missing }}", 1,
     "humanizePercentage: \"\" is not a number at column 4 of template"},
    {"{{ humanizeTimestamp $value }}", 1e21,
     "humanizeTimestamp: 1e+21 is outside the range of timestamps (1677-09-21 to 2262-04-11) at "
     "column 4 of template"},
    {"{{ humanizeTimestamp $value }}", -1e12,
     "humanizeTimestamp: -1e+12 is outside the range of timestamps (1677-09-21 to 2262-04-11) at "
     "column 4 of template"},
    {"{{ printf $labels.instance 3 }}", 1,
     "printf format \"host:9100\" has 0 verbs for 1 argument at column 4 of template"},
    {"{{ printf $labels.code $value }}", 1,
     "printf format \"503\" has 0 verbs for 1 argument at column 4 of template"},
    {"{{ reReplaceAll ($labels.job | printf \"(%s\") \"X\" \"a\" }}", 1,
     "reReplaceAll: invalid regex \"(api server\" (Unmatched ( or \\() at column 4 of template"},
    {"{{ toUpper (humanize $labels.path) }}", 1,
     "humanize: \"/a/b/c\" is not a number at column 13 of template"},
};

static void render_errors_exact(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(runtime_cases) / sizeof(runtime_cases[0]); i++) {
		const struct runtime_case *c = &runtime_cases[i];
		struct template_data d = data_with_value(c->value);
		char *error = NULL;
		struct template *t = template_parse(c->text, &rules_yml, &error);
		char *out;

		if (t == NULL)
			fail_msg("%s: parse failed: %s", c->text, error);
		out = template_render(t, &d, &error);
		if (out != NULL)
			fail_msg("%s: rendered \"%s\", expected error %s", c->text, out,
				 c->message);
		if (error == NULL || strcmp(error, c->message) != 0)
			fail_msg("%s:\n got      %s\n expected %s", c->text, error, c->message);
		free(error);
		template_free(t);
	}
}

static void humanize_functions_alone(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(template_humanize(1234567, buf, sizeof(buf)), "1.235M");
	assert_string_equal(template_humanize(0.001234, buf, sizeof(buf)), "1.234m");
	assert_string_equal(template_humanize(-2e-9, buf, sizeof(buf)), "-2n");
	assert_string_equal(template_humanize1024(1048576, buf, sizeof(buf)), "1Mi");
	assert_string_equal(template_humanize1024(1536, buf, sizeof(buf)), "1.5ki");
	assert_string_equal(template_humanize_duration(3723, buf, sizeof(buf)), "1h 2m 3s");
	assert_string_equal(template_humanize_duration(93784, buf, sizeof(buf)), "1d 2h 3m 4s");
	assert_string_equal(template_humanize_duration(1.5, buf, sizeof(buf)), "1.5s");
	assert_string_equal(template_humanize_duration(0.25, buf, sizeof(buf)), "250ms");
	assert_string_equal(template_humanize_duration(0.15, buf, sizeof(buf)), "150ms");
	assert_string_equal(template_humanize_percentage(0.5, buf, sizeof(buf)), "50%");
	assert_string_equal(template_humanize_percentage(0.1234, buf, sizeof(buf)), "12.34%");
	/* A short buffer is truncated, never overrun. */
	assert_string_equal(template_humanize(1234567, buf, 4), "1.2");
}

static void constant_templates(void **state)
{
	static const char *const constant[] = {"", "plain text", "a } b }} c {", "100%"};
	static const char *const templated[] = {"{{ 1 }}", "a {{/* note */}} b", "{{ \"x\" }}"};
	struct template_data d = data_with_value(1);

	(void)state;
	for (size_t i = 0; i < sizeof(constant) / sizeof(constant[0]); i++) {
		char *error = NULL;
		struct template *t = template_parse(constant[i], &rules_yml, &error);
		char *out;

		assert_non_null(t);
		assert_true(template_is_constant(t));
		out = template_render(t, &d, &error);
		assert_string_equal(out, constant[i]);
		free(out);
		template_free(t);
	}
	for (size_t i = 0; i < sizeof(templated) / sizeof(templated[0]); i++) {
		char *error = NULL;
		struct template *t = template_parse(templated[i], &rules_yml, &error);

		assert_non_null(t);
		assert_false(template_is_constant(t));
		template_free(t);
	}
}

static void missing_data_renders_empty(void **state)
{
	static const struct label one[] = {{"job", NULL}};
	struct template_data d = {.labels = one, .label_count = 1, .value = 7};
	char *out;

	(void)state;
	out = render_ok(
	    "[{{ $labels.job }}|{{ $labels.x }}|{{ $externalLabels.region }}|{{ $value }}]", &d);
	assert_string_equal(out, "[|||7]");
	free(out);
	d = (struct template_data){.value = 1};
	out = render_ok("[{{ .Labels.job }}]", &d);
	assert_string_equal(out, "[]");
	free(out);
}

/* A template renders the same twice: rendering keeps no state in the template. */
static void render_repeats(void **state)
{
	char *error = NULL;
	struct template *t = template_parse(
	    "{{ reReplaceAll \"(\\\\w+) (\\\\w+)\" \"$2 $1\" $labels.job | toUpper }} "
	    "{{ printf \"%.1f\" $value }}",
	    &rules_yml, &error);

	(void)state;
	assert_non_null(t);
	for (int i = 0; i < 3; i++) {
		struct template_data d = data_with_value(i);
		char *out = template_render(t, &d, &error);
		char expected[32];

		snprintf(expected, sizeof(expected), "SERVER API %d.0", i);
		assert_string_equal(out, expected);
		free(out);
	}
	template_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(render_matches_prometheus),
	    cmocka_unit_test(parse_errors_exact),
	    cmocka_unit_test(parse_error_without_location),
	    cmocka_unit_test(render_errors_exact),
	    cmocka_unit_test(deeply_nested_regex_rejected),
	    cmocka_unit_test(humanize_functions_alone),
	    cmocka_unit_test(constant_templates),
	    cmocka_unit_test(missing_data_renders_empty),
	    cmocka_unit_test(render_repeats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
