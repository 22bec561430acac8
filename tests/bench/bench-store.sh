#!/bin/sh
# Archive store benchmark (make bench-store): FILES series x STEPS steps written
#   1. through the store, direct librrd writes (one rrd_update_r per file per drain),
#   2. with stock librrd, one rrd_update_r call per update,
#   3. through the store and rrdcached (BATCH exchanges),
#   4. with stock librrd's client, one rrdc_update call per update,
# in one run, each on fresh files in a temporary directory. rrdcached listens on a unix
# socket in that directory and is stopped by its PID. Rates count updates from the first
# call until they are written to the files (for rrdcached: after FLUSHALL, when STATS
# reports every data set written).
#
# usage: bench-store.sh PATH/TO/bench_store   (BENCH_FILES, BENCH_STEPS override 10000, 30)
set -eu

bin=${1:?usage: bench-store.sh PATH/TO/bench_store}
files=${BENCH_FILES:-10000}
steps=${BENCH_STEPS:-30}
rrdcached=${RRDCACHED:-$(PATH="$PATH:/usr/sbin:/usr/bin" command -v rrdcached || true)}
work=$(mktemp -d "${TMPDIR:-/tmp}/tocsin-bench-store.XXXXXX")
daemon_pid=""

stop_daemon() {
	if [ -n "$daemon_pid" ]; then
		kill "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
		daemon_pid=""
	fi
}

cleanup() {
	stop_daemon
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

# start_daemon DIR: rrdcached with the same options as a large installation would use:
# values cached for an hour (-w 3600), 4 writer threads, paths limited to DIR.
start_daemon() {
	rm -f "$work/rrdcached.sock"
	"$rrdcached" -g -l "unix:$work/rrdcached.sock" -b "$1" -B -w 3600 -z 1 -f 7200 -t 4 \
		-p "$work/rrdcached.pid" >"$work/rrdcached.log" 2>&1 &
	daemon_pid=$!
	i=0
	while [ ! -S "$work/rrdcached.sock" ]; do
		i=$((i + 1))
		if [ "$i" -gt 200 ] || ! kill -0 "$daemon_pid" 2>/dev/null; then
			echo "bench-store: rrdcached did not start:" >&2
			cat "$work/rrdcached.log" >&2
			exit 1
		fi
		sleep 0.05
	done
}

# run NAME MODE [ADDRESS]: runs one phase on fresh files and keeps its RESULT line.
run() {
	name=$1
	mode=$2
	dir="$work/$name"
	mkdir -p "$dir"
	if [ $# -ge 3 ]; then
		start_daemon "$dir"
		"$bin" -m "$mode" -d "$dir" -a "$3" -n "$files" -s "$steps" >"$work/$name.out"
		stop_daemon
	else
		"$bin" -m "$mode" -d "$dir" -n "$files" -s "$steps" >"$work/$name.out"
	fi
	cat "$work/$name.out"
	rm -rf "$dir"
}

# field NAME KEY: a value from a phase's RESULT line.
field() {
	sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$work/$1.out"
}

echo "bench-store: $files series x $steps steps, $(nproc) CPUs, rrdtool $(rrdtool --version 2>/dev/null | sed -n '1s/^RRDtool \([^ ]*\).*/\1/p')"
run direct store
run stock_update rrd_update
if [ -n "$rrdcached" ]; then
	run cached store "unix:$work/rrdcached.sock"
	run stock_rrdc rrdc_update "unix:$work/rrdcached.sock"
	cached=$(field cached updates_per_s)
	stock_rrdc=$(field stock_rrdc updates_per_s)
else
	echo "bench-store: rrdcached is not installed; rrdcached phases skipped" >&2
	cached=0
	stock_rrdc=0
fi
direct=$(field direct updates_per_s)
stock_update=$(field stock_update updates_per_s)
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}
echo "bench-store: store direct / stock rrd_update_r = $(ratio "$direct" "$stock_update");" \
	"store rrdcached / stock rrdc_update = $(ratio "$cached" "$stock_rrdc")"
echo "bench-store: stock_rrd_update_r_updates_per_s=$stock_update"
echo "bench-store: direct_updates_per_s=$direct rrdcached_updates_per_s=$cached" \
	"stock_rrdc_updates_per_s=$stock_rrdc"
