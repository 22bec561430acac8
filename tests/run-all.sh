#!/bin/sh
# The test command: installs what the tests need, builds tocsin twice (normal, and with
# AddressSanitizer + UndefinedBehaviorSanitizer), runs the unit tests of both builds,
# `make distcheck`, a short run of the fuzz targets, and the integration tests against
# both daemons. Ends with one line
#   N passed, N failed, N skipped
# and exits non-zero when anything failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/test-results
rm -rf "$out"
mkdir -p "$out"

"$top/scripts/install-deps.sh" test || {
	echo "0 passed, 1 failed"
	exit 1
}

passed=0
failed=0
skipped=0

# Adds the counts of automake's test-suite.log (one TAP line is one test).
count_automake() {
	log=$1
	if [ ! -f "$log" ]; then
		failed=$((failed + 1))
		return
	fi
	p=$(sed -n 's/^# PASS: *//p' "$log" | head -n1)
	f=$(sed -n 's/^# FAIL: *//p' "$log" | head -n1)
	e=$(sed -n 's/^# ERROR: *//p' "$log" | head -n1)
	x=$(sed -n 's/^# XPASS: *//p' "$log" | head -n1)
	s=$(sed -n 's/^# SKIP: *//p' "$log" | head -n1)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0} + ${e:-0} + ${x:-0}))
	skipped=$((skipped + ${s:-0}))
}

# Adds the counts of a pytest JUnit XML report.
count_junit() {
	xml=$1
	if [ ! -f "$xml" ]; then
		failed=$((failed + 1))
		return
	fi
	set -- $(/usr/bin/python3 - "$xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
t = f = s = 0
for suite in suites:
    t += int(suite.get("tests", 0))
    f += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    s += int(suite.get("skipped", 0))
print(t - f - s, f, s)
PY
)
	passed=$((passed + $1))
	failed=$((failed + $2))
	skipped=$((skipped + $3))
}

step() {
	echo
	echo "=== $*"
}

build_ok=1
step "build: normal"
"$top/scripts/build.sh" "$top/build/ci-normal" || build_ok=0
step "build: AddressSanitizer + UndefinedBehaviorSanitizer"
"$top/scripts/build.sh" "$top/build/ci-asan" --enable-sanitizers CFLAGS="-g -O1" || build_ok=0
if [ "$build_ok" = 0 ]; then
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:suppressions=$top/tests/asan.supp"
export LSAN_OPTIONS="suppressions=$top/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

for kind in normal asan; do
	step "unit tests: $kind build"
	(cd "$top/build/ci-$kind" && make -s check -j2) || true
	cp "$top/build/ci-$kind/test-suite.log" "$out/unit-$kind.log" 2>/dev/null
	count_automake "$top/build/ci-$kind/test-suite.log"
	grep -h -E '^(FAIL|ERROR|XPASS):' "$top/build/ci-$kind/test-suite.log" 2>/dev/null || true
done

step "make distcheck"
if (cd "$top/build/ci-normal" && make -s distcheck >"$out/distcheck.log" 2>&1); then
	passed=$((passed + 1))
	echo "distcheck passed"
else
	failed=$((failed + 1))
	tail -n 40 "$out/distcheck.log"
fi

# Each libFuzzer target runs 10 s from its seed corpus, and counts as one test. Building
# and running all of them took 1.5 to 2.5 minutes on 2 cores (docs/fuzzing.md).
step "fuzz targets (clang, 10 s each)"
fuzz_log=$out/fuzz.log
# A fixed seed, so that the test command explores the same inputs each run and a failure
# repeats; `make fuzz` without FUZZ_SEED explores new ones.
(cd "$top/build/ci-normal" && FUZZ_SEED=1 make -s fuzz FUZZ_SECONDS=10) >"$fuzz_log" 2>&1
fuzz_passed=$(grep -c '^fuzz .*: passed' "$fuzz_log")
fuzz_failed=$(grep -c '^fuzz .*: FAILED' "$fuzz_log")
passed=$((passed + fuzz_passed))
failed=$((failed + fuzz_failed))
if [ "$fuzz_passed" = 0 ] && [ "$fuzz_failed" = 0 ]; then
	# No target line means the targets did not build, which counts as one failure.
	failed=$((failed + 1))
	tail -n 20 "$fuzz_log"
else
	grep -A 4 '^fuzz ' "$fuzz_log" | grep -v '^fuzz .*: passed'
	echo "fuzz: $fuzz_passed passed, $fuzz_failed failed"
fi

for kind in normal asan; do
	step "integration tests: $kind build"
	TOCSIND="$top/build/ci-$kind/tocsind" TOCSIN_BUILD_KIND=$kind \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$out/integration-$kind.xml" \
		"$top/tests/integration" || true
	count_junit "$out/integration-$kind.xml"
done

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
