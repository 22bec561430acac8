#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz/ with clang and runs each one for a while.
#   run.sh SRCDIR BUILDDIR [TARGET...]
# `make fuzz` calls it and sets the environment below from the configured build, so the
# library sources, include paths and libraries are those of tocsind:
#   FUZZ_SOURCES   the .c files of libtocsin.a, relative to SRCDIR or BUILDDIR
#   FUZZ_CPPFLAGS  preprocessor flags (AM_CPPFLAGS and DEFS)
#   FUZZ_CFLAGS    the dependencies' compiler flags (pkg-config --cflags)
#   FUZZ_LIBS      the dependencies' linker flags (pkg-config --libs)
#   FUZZ_SECONDS   run time per target in seconds (default 10; 0 builds without running)
#   FUZZ_SEED      libFuzzer's random seed; unset, each run explores from a new one
#   FUZZ_CC        the compiler (default clang)
#   FUZZ_JOBS      targets run at once, and compile jobs (default: nproc)
# Objects and targets go to BUILDDIR/fuzz/; each run works on a copy of the target's seed
# corpus in BUILDDIR/fuzz/corpus/NAME/, so tests/fuzz/corpus/ never changes. A crash, a
# leak, a sanitizer report or an input slower than 10 s fails the target; the input that
# did it is saved as BUILDDIR/fuzz/crashes/NAME-crash-HASH (or leak-, timeout-).
# Prints one "fuzz NAME: passed|FAILED" line per target and exits 1 when any failed.
set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 SRCDIR BUILDDIR [TARGET...]" >&2
	exit 2
fi
srcdir=$(cd "$1" && pwd)
builddir=$(cd "$2" && pwd)
shift 2
cc=${FUZZ_CC:-clang}
seconds=${FUZZ_SECONDS:-10}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
out=$builddir/fuzz

if ! command -v "$cc" >/dev/null 2>&1; then
	echo "fuzz: $cc not found; install clang (scripts/install-deps.sh packages clang)" >&2
	exit 1
fi
if [ -z "${FUZZ_SOURCES:-}" ]; then
	echo "fuzz: FUZZ_SOURCES is empty; run this script through \`make fuzz\`" >&2
	exit 2
fi

targets="$*"
if [ -z "$targets" ]; then
	for f in "$srcdir"/tests/fuzz/fuzz_*.c; do
		name=$(basename "$f" .c)
		targets="$targets ${name#fuzz_}"
	done
fi

# -O1 with frame pointers keeps the sanitizers' stack traces readable. UBSan aborts on
# its first report so that libFuzzer counts it as a crash.
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
common="-std=c17 -g -O1 -fno-omit-frame-pointer -pthread $sanitize"
common="$common -I$srcdir -I$builddir ${FUZZ_CPPFLAGS:-} ${FUZZ_CFLAGS:-}"

mkdir -p "$out/obj" "$out/bin" "$out/crashes" "$out/logs"

# The helper scripts below read these. FUZZ_COMMON is split on white space but never
# parsed again, so quotes in a -D value (-DTOCSIN_SYSCONFDIR="/etc") reach the compiler.
export FUZZ_OUT="$out" FUZZ_SRCDIR="$srcdir" FUZZ_BUILDDIR="$builddir" FUZZ_CC="$cc"
export FUZZ_COMMON="$common" FUZZ_SECONDS="$seconds" FUZZ_SEED="${FUZZ_SEED:-}"

# Compiles one library source (the argument) into $out/obj with coverage instrumentation.
# Built sources (default_config.c, static_assets.c) are found in the build directory.
cat >"$out/compile.sh" <<'COMPILE'
#!/bin/sh
src=$1
path=$FUZZ_SRCDIR/$src
[ -f "$FUZZ_BUILDDIR/$src" ] && path=$FUZZ_BUILDDIR/$src
obj=$FUZZ_OUT/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')
# shellcheck disable=SC2086
exec $FUZZ_CC $FUZZ_COMMON -fsanitize=fuzzer-no-link -w -c "$path" -o "$obj"
COMPILE
chmod +x "$out/compile.sh"

echo "fuzz: compiling the library with $cc ($jobs jobs)"
rm -f "$out"/obj/*.o "$out/libtocsin-fuzz.a"
# shellcheck disable=SC2086 # the source list is split on white space on purpose
if ! printf '%s\n' $FUZZ_SOURCES | grep '\.c$' | xargs -P "$jobs" -n 1 "$out/compile.sh"; then
	echo "fuzz: compiling the library failed; the compiler output above names the file" >&2
	exit 1
fi
ar cr "$out/libtocsin-fuzz.a" "$out"/obj/*.o

for name in $targets; do
	# shellcheck disable=SC2086
	if ! $cc $common -Wall -Wextra -Werror -fsanitize=fuzzer \
		"$srcdir/tests/fuzz/fuzz_$name.c" "$out/libtocsin-fuzz.a" ${FUZZ_LIBS:-} -lm \
		-o "$out/bin/fuzz_$name"; then
		echo "fuzz: building target $name failed; see the compiler output above" >&2
		exit 1
	fi
done
[ "$seconds" = 0 ] && exit 0

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:suppressions=$srcdir/tests/asan.supp}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$srcdir/tests/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Runs one target (the argument) on a fresh copy of its corpus and writes its exit code to
# logs/NAME.rc. The work directory is a scratch one, because the config loader reads
# files named in its input.
cat >"$out/run-one.sh" <<'RUN'
#!/bin/sh
name=$1
rm -rf "$FUZZ_OUT/corpus/$name" "$FUZZ_OUT/work/$name"
mkdir -p "$FUZZ_OUT/corpus/$name" "$FUZZ_OUT/work/$name"
cp "$FUZZ_SRCDIR/tests/fuzz/corpus/$name"/* "$FUZZ_OUT/corpus/$name/"
cd "$FUZZ_OUT/work/$name" || exit 1
"$FUZZ_OUT/bin/fuzz_$name" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
	${FUZZ_SEED:+-seed="$FUZZ_SEED"} -print_final_stats=1 -artifact_prefix="$FUZZ_OUT/crashes/$name-" "$FUZZ_OUT/corpus/$name" \
	>"$FUZZ_OUT/logs/$name.log" 2>&1
echo $? >"$FUZZ_OUT/logs/$name.rc"
RUN
chmod +x "$out/run-one.sh"

# shellcheck disable=SC2086
echo "fuzz: running $(printf '%s\n' $targets | wc -l) targets for $seconds s each"
rm -f "$out"/logs/*.rc
# shellcheck disable=SC2086
printf '%s\n' $targets | xargs -P "$jobs" -n 1 "$out/run-one.sh"

status=0
for name in $targets; do
	rc=$(cat "$out/logs/$name.rc" 2>/dev/null || echo missing)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/logs/$name.log" | tail -n1)
	if [ "$rc" = 0 ]; then
		echo "fuzz $name: passed (${runs:-?} inputs)"
	else
		echo "fuzz $name: FAILED (exit $rc); see $out/logs/$name.log"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$out/logs/$name.log" | head -n 5
		ls "$out/crashes/$name-"* 2>/dev/null
		status=1
	fi
done
exit $status
