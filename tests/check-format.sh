#!/bin/sh
# Fails (TAP "not ok") when a C file in the tree differs from clang-format's output.
# Skips when clang-format is not installed.
top=${TOCSIN_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
echo "1..1"
if ! command -v clang-format >/dev/null 2>&1; then
	echo "ok 1 - source formatting # SKIP clang-format is not installed"
	exit 0
fi
cd "$top" || exit 1
bad=""
for f in $(find alerter collector probes web tests -name '*.[ch]' ! -name default_config.c | sort); do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		bad="$bad $f"
	fi
done
if [ -n "$bad" ]; then
	echo "not ok 1 - source formatting"
	for f in $bad; do echo "# not formatted: $f (run: clang-format -i $f)"; done
	exit 1
fi
echo "ok 1 - source formatting"
