#!/bin/sh
# Rule evaluation benchmark (make bench-rules; not part of the test command), in one run:
#   1. tocsin: tests/bench/bench_rules evaluates 10,000 rules over 100,000 series in its
#      in-memory sample windows on a virtual clock (see that file) and prints its own
#      figures. /usr/bin/time reads the process's peak RSS.
#   2. Prometheus: Debian's prometheus evaluates the same rules (bench_rules --write-rules,
#      where tocsin's threshold rules become plain comparisons) over the same series. It
#      scrapes them every 10 s from a small HTTP server on 127.0.0.1, which serves
#      bench_rules's exposition and moves every value by a random step in [-5, 5] (kept in
#      [0, 100]) per scrape, as bench_rules does per step. After a warm-up that fills the
#      5-minute ranges, the script reads /api/v1/rules every 10 s. The sum over all
#      groups of each group's latest evaluationTime is one cycle's wall time. The sum
#      over all rules of each rule's latest evaluationTime is the rules' own share of it.
#      Prometheus runs each group in its own goroutine at its own offset within the
#      interval, so these include waiting for a CPU. Its own metrics around the readings
#      split a cycle into waiting for a query slot, preparing and evaluating queries.
#   3. Prometheus's CPU time for the rules: the process's CPU time over the readings
#      minus its CPU time over as long again after SIGHUP with a configuration without
#      the rules (scraping and storage alone), per cycle. tocsin's CPU figure is the
#      evaluating thread's CPU time. Peak RSS is VmRSS at the readings.
# Prometheus reads its samples from its TSDB head, tocsin from its windows: each cycle
# is what each tool does to evaluate the rules. The last line is bench_rules's summary:
#   bench-rules: series=N rules=N ms_per_cycle=X bytes_per_series=N
# and the line before it gives Prometheus's figures and the ratios.
#
# usage: bench-rules.sh PATH/TO/bench_rules
#   BENCH_RULES_WARMUP (seconds before the first reading, default 300),
#   BENCH_RULES_SECONDS (seconds of readings, and of the run without rules; default 60),
#   PROMETHEUS (/usr/bin/prometheus)
set -eu

bin=${1:?usage: bench-rules.sh PATH/TO/bench_rules}
warmup=${BENCH_RULES_WARMUP:-300}
measure=${BENCH_RULES_SECONDS:-60}
prometheus=${PROMETHEUS:-/usr/bin/prometheus}
work=$(mktemp -d "${TMPDIR:-/tmp}/tocsin-bench-rules.XXXXXX")
server_pid=""
prometheus_pid=""

# running PID: the child has not exited (it is neither gone nor a zombie waiting for wait).
running() {
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ]
}

# stop PID: SIGTERM, then SIGKILL if the process is still running after 30 s.
stop() {
	kill "$1" 2>/dev/null || return 0
	i=0
	while running "$1" && [ "$i" -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

cleanup() {
	for pid in $prometheus_pid $server_pid; do
		stop "$pid"
	done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ ! -x "$prometheus" ]; then
	echo "bench-rules: $prometheus is not an executable: install Debian's prometheus" \
		"package or set PROMETHEUS to its path" >&2
	exit 2
fi

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

field() {
	echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

echo "bench-rules: $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- tocsin ----
/usr/bin/time -f %M -o "$work/tocsin-rss" "$bin" >"$work/tocsin.out"
sed '$d' "$work/tocsin.out" | sed 's/^/bench-rules: tocsin: /'
summary=$(tail -n 1 "$work/tocsin.out")
series=$(field "$summary" series)
tocsin_ms=$(field "$summary" ms_per_cycle)
tocsin_worst=$(sed -n 's/^evaluation per cycle: .*worst \([0-9.]*\) ms$/\1/p' "$work/tocsin.out")
tocsin_cpu=$(sed -n 's/^evaluation CPU time per cycle: median \([0-9.]*\) ms.*/\1/p' "$work/tocsin.out")
tocsin_rss_kib=$(tail -n 1 "$work/tocsin-rss")
# Whole heap per input series: series, windows with their rings, and the rules' state.
tocsin_heap_per_series=$(sed -n 's/^memory: \([0-9][0-9]*\) bytes .* \([0-9][0-9]*\) bytes more after .*/\1 \2/p' \
	"$work/tocsin.out" | awk -v n="$series" '{printf "%.0f", ($1 + $2) / n}')
tocsin_rss_per_series=$(awk -v k="$tocsin_rss_kib" -v n="$series" 'BEGIN {printf "%.0f", k * 1024 / n}')
echo "bench-rules: tocsin: peak RSS $((tocsin_rss_kib / 1024)) MiB," \
	"$tocsin_rss_per_series bytes per series; whole heap $tocsin_heap_per_series bytes per series"

# ---- Prometheus ----
"$bin" --write-rules "$work/rules.yml"
"$bin" --write-exposition "$work/metrics.txt"
server_port=$(free_port)
prometheus_port=$(free_port)

# The server stops by itself after the longest the run can take.
server_program=$(cat <<'PYTHON'
import http.server
import random
import sys
import time

path, port, lifetime = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + lifetime
prefixes, values = [], []
with open(path) as f:
    for line in f:
        line = line.rstrip("\n")
        if line.startswith("#"):
            prefixes.append(line)
            values.append(None)
        else:
            prefix, value = line.rsplit(" ", 1)
            prefixes.append(prefix + " ")
            values.append(int(value))
samples = [i for i, v in enumerate(values) if v is not None]
rng = random.Random(1)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        for i in samples:
            values[i] = min(100, max(0, values[i] + rng.randint(-5, 5)))
        body = "".join(p + "\n" if v is None else p + str(v) + "\n"
                       for p, v in zip(prefixes, values)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


httpd = http.server.HTTPServer(("127.0.0.1", port), Handler)
httpd.timeout = 1
while time.monotonic() < deadline:
    httpd.handle_request()
PYTHON
)
python3 -c "$server_program" "$work/metrics.txt" "$server_port" $((warmup + 2 * measure + 180)) &
server_pid=$!

# prometheus-norules.yml is the same configuration without the rules, loaded by SIGHUP
# after the readings to measure the CPU time that scraping and storage alone take.
cat >"$work/prometheus-norules.yml" <<EOF
global:
  scrape_interval: 10s
  scrape_timeout: 10s
  evaluation_interval: 10s
scrape_configs:
  - job_name: bench
    # Keep the exposition's job and instance labels: the rules select on job.
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:$server_port']
EOF
sed "s|^scrape_configs:|rule_files:\n  - $work/rules.yml\nscrape_configs:|" \
	"$work/prometheus-norules.yml" >"$work/prometheus.yml"
"$prometheus" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
	--web.listen-address="127.0.0.1:$prometheus_port" --log.level=warn \
	>"$work/prometheus.log" 2>&1 &
prometheus_pid=$!
version=$("$prometheus" --version 2>&1 | sed -n '1s/^prometheus, version \([^ ]*\).*/\1/p')
echo "bench-rules: prometheus $version on 127.0.0.1:$prometheus_port, scraping" \
	"127.0.0.1:$server_port every 10 s; ${warmup} s warm-up, readings every 10 s for ${measure} s," \
	"then ${measure} s without the rules"

poll_program=$(cat <<'PYTHON'
import json
import os
import signal
import statistics
import sys
import time
import urllib.parse
import urllib.request

port, pid, warmup, measure = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
config, config_without_rules = sys.argv[5], sys.argv[6]
base = "http://127.0.0.1:%s" % port


def fail(message):
    print("bench-rules: prometheus: " + message, file=sys.stderr)
    sys.exit(1)


def alive():
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        fail("the process exited, see its log below")


def get(path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.load(r)


def cpu_ticks():
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    fail("no VmRSS in /proc/%d/status" % pid)


# Prometheus's own metrics read around the readings, summed over their label sets:
# (metric name, a label that the line must contain).
COUNTERS = {
    "evaluations": ("prometheus_rule_evaluations_total", ""),
    "missed": ("prometheus_rule_group_iterations_missed_total", ""),
    "rule_s": ("prometheus_rule_evaluation_duration_seconds_sum", ""),
    "inner_s": ("prometheus_engine_query_duration_seconds_sum", 'slice="inner_eval"'),
    "queue_s": ("prometheus_engine_query_duration_seconds_sum", 'slice="queue_time"'),
    "prepare_s": ("prometheus_engine_query_duration_seconds_sum", 'slice="prepare_time"'),
    "reload_ok": ("prometheus_config_last_reload_successful", ""),
}


def counters():
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    sums = dict.fromkeys(COUNTERS, 0.0)
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        name = series.split("{", 1)[0]
        for key, (wanted, label) in COUNTERS.items():
            if name == wanted and label in series:
                sums[key] += float(value)
    return sums


start = time.monotonic()
while True:
    alive()
    try:
        with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() - start > 60:
        fail("not ready after 60 s")
    time.sleep(0.5)

while time.monotonic() - start < warmup:
    alive()
    time.sleep(min(10, max(0.1, warmup - (time.monotonic() - start))))

query = urllib.parse.quote('scrape_samples_scraped{job="bench"}')
result = get("/api/v1/query?query=" + query)["data"]["result"]
scraped = int(float(result[0]["value"][1])) if result else 0
cycles, rule_sums, rss = [], [], []
counters0, ticks0, time0 = counters(), cpu_ticks(), time.monotonic()
end = time0 + measure
while True:
    alive()
    groups = get("/api/v1/rules")["data"]["groups"]
    rules = sum(len(g["rules"]) for g in groups)
    errors = [r for g in groups for r in g["rules"] if r.get("health") == "err"]
    if errors:
        fail("rule %s failed: %s" % (errors[0]["name"], errors[0].get("lastError")))
    if any(g["lastEvaluation"].startswith("0001-") for g in groups):
        fail("a group was not evaluated during the warm-up; raise BENCH_RULES_WARMUP")
    cycles.append(1000 * sum(g["evaluationTime"] for g in groups))
    rule_sums.append(1000 * sum(r["evaluationTime"] for g in groups for r in g["rules"]))
    rss.append(rss_kib())
    if time.monotonic() + 10 > end:
        break
    time.sleep(10)
counters1, ticks1, time1 = counters(), cpu_ticks(), time.monotonic()
tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
cpu_per_10s = (ticks1 - ticks0) * tick_ms * 10 / (time1 - time0)
done = (counters1["evaluations"] - counters0["evaluations"]) / rules
if done <= 0:
    fail("no rule was evaluated during the readings")


def per_cycle(key):
    return (counters1[key] - counters0[key]) * 1000 / done


# The same scrapes without the rules: what is left of the CPU time is scraping and storage.
with open(config_without_rules) as f:
    text = f.read()
with open(config, "w") as f:
    f.write(text)
os.kill(pid, signal.SIGHUP)
while get("/api/v1/rules")["data"]["groups"] or counters()["reload_ok"] != 1:
    alive()
    if time.monotonic() - time1 > 60:
        fail("the rules were still loaded 60 s after SIGHUP with a configuration without them")
    time.sleep(1)
time.sleep(20)
ticks2, time2 = cpu_ticks(), time.monotonic()
time.sleep(measure)
alive()
base_per_10s = (cpu_ticks() - ticks2) * tick_ms * 10 / (time.monotonic() - time2)
cycles_per_10s = done * 10 / (time1 - time0)
print("groups=%d rules=%d scraped=%d readings=%d median_ms=%.1f worst_ms=%.1f rules_ms=%.1f "
      "cycles=%.1f missed=%d rule_wall_ms=%.1f engine_ms=%.1f queue_ms=%.1f prepare_ms=%.1f "
      "cpu_ms_per_10s=%.0f base_cpu_ms_per_10s=%.0f rules_cpu_ms=%.0f rss_kib=%d"
      % (len(groups), rules, scraped, len(cycles), statistics.median(cycles), max(cycles),
         statistics.median(rule_sums), done, counters1["missed"] - counters0["missed"],
         per_cycle("rule_s"), per_cycle("inner_s"), per_cycle("queue_s"), per_cycle("prepare_s"),
         cpu_per_10s,
         base_per_10s, (cpu_per_10s - base_per_10s) / cycles_per_10s, max(rss)))
PYTHON
)
if ! prom=$(python3 -c "$poll_program" "$prometheus_port" "$prometheus_pid" "$warmup" "$measure" \
	"$work/prometheus.yml" "$work/prometheus-norules.yml"); then
	tail -n 20 "$work/prometheus.log" >&2
	exit 1
fi
prom_ms=$(field "$prom" median_ms)
prom_worst=$(field "$prom" worst_ms)
prom_cpu=$(field "$prom" rules_cpu_ms)
prom_rss_kib=$(field "$prom" rss_kib)
prom_rss_per_series=$(awk -v k="$prom_rss_kib" -v n="$series" 'BEGIN {printf "%.0f", k * 1024 / n}')
echo "bench-rules: prometheus: $(field "$prom" groups) groups, $(field "$prom" rules) rules," \
	"$(field "$prom" scraped) samples per scrape; $(field "$prom" cycles) cycles evaluated" \
	"during the readings, $(field "$prom" missed) group iterations missed"
echo "bench-rules: prometheus: sum of the groups' evaluation times ($(field "$prom" readings)" \
	"readings): median $prom_ms ms, worst $prom_worst ms; sum of the rules' own times," \
	"median $(field "$prom" rules_ms) ms"
echo "bench-rules: prometheus: per cycle from its metrics: rule evaluations" \
	"$(field "$prom" rule_wall_ms) ms, of which waiting for a query slot" \
	"$(field "$prom" queue_ms) ms, preparing queries (selecting series)" \
	"$(field "$prom" prepare_ms) ms and evaluating them $(field "$prom" engine_ms) ms"
echo "bench-rules: prometheus: process CPU $(field "$prom" cpu_ms_per_10s) ms per 10 s with the" \
	"rules, $(field "$prom" base_cpu_ms_per_10s) ms without them: $prom_cpu ms per cycle for" \
	"the rules; peak RSS $((prom_rss_kib / 1024)) MiB"
if [ "$(field "$prom" scraped)" != "$series" ]; then
	echo "bench-rules: prometheus scraped $(field "$prom" scraped) samples, expected $series" >&2
	exit 1
fi

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {printf (b > 0 ? "%.1f" : "-"), (b > 0 ? a / b : 0)}'
}
row() {
	printf 'bench-rules: %-30s %12s %12s %16s\n' "$1" "$2" "$3" "$(ratio "$3" "$2")"
}
printf 'bench-rules: %-30s %12s %12s %16s\n' "" tocsin prometheus "prometheus/tocsin"
row "CPU ms per cycle" "$tocsin_cpu" "$prom_cpu"
row "median wall ms per cycle" "$tocsin_ms" "$prom_ms"
row "worst wall ms per cycle" "$tocsin_worst" "$prom_worst"
row "peak RSS bytes per series" "$tocsin_rss_per_series" "$prom_rss_per_series"
echo "bench-rules: prometheus_ms_per_cycle=$prom_ms prometheus_worst_ms=$prom_worst" \
	"prometheus_rules_ms=$(field "$prom" rules_ms)" \
	"prometheus_engine_ms=$(field "$prom" engine_ms)" \
	"prometheus_queue_ms=$(field "$prom" queue_ms)" \
	"prometheus_prepare_ms=$(field "$prom" prepare_ms)" \
	"prometheus_cpu_ms_per_10s=$(field "$prom" cpu_ms_per_10s)" \
	"prometheus_base_cpu_ms_per_10s=$(field "$prom" base_cpu_ms_per_10s)" \
	"prometheus_rules_cpu_ms=$prom_cpu tocsin_cpu_ms=$tocsin_cpu" \
	"prometheus_rss_bytes_per_series=$prom_rss_per_series" \
	"tocsin_rss_bytes_per_series=$tocsin_rss_per_series" \
	"cpu_ratio=$(ratio "$prom_cpu" "$tocsin_cpu")" \
	"ms_ratio=$(ratio "$prom_ms" "$tocsin_ms")" \
	"rss_ratio=$(ratio "$prom_rss_per_series" "$tocsin_rss_per_series")"
echo "$summary"
