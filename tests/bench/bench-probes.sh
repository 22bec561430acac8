#!/bin/sh
# HTTP probe throughput (make bench-probes), in one run against one local nginx
# (Debian nginx-light, 1 worker, a new connection per request):
#   1. ceiling: a bare libcurl multi loop on tocsin's libevent driver, CONCURRENCY
#      transfers in flight;
#   2. tocsin: PROBES http probes at a 1 s interval through the real config loader and
#      scheduler (bench_http probes), so PROBES runs are due each second;
#   3. blackbox: prometheus-blackbox-exporter's /probe endpoint driven by wrk with
#      CONCURRENCY connections, one HTTP probe per request.
# CPU per probe is the process's user+system time divided by the probes it finished.
# Packages that only the benchmark needs are installed here, with services kept stopped.
#
# usage: bench-probes.sh PATH/TO/bench_http
#   BENCH_PROBES (default 15000), BENCH_SECONDS (10), BENCH_CONCURRENCY (64)
set -eu

bin=${1:?usage: bench-probes.sh PATH/TO/bench_http}
probes=${BENCH_PROBES:-15000}
seconds=${BENCH_SECONDS:-10}
concurrency=${BENCH_CONCURRENCY:-64}
work=$(mktemp -d "${TMPDIR:-/tmp}/tocsin-bench-probes.XXXXXX")
nginx_pid=""
blackbox_pid=""

cleanup() {
	for pid in $blackbox_pid $nginx_pid; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT: polls for up to 10 s until something accepts on 127.0.0.1:PORT.
wait_port() {
	i=0
	while ! python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -ge 100 ]; then
			echo "bench-probes: nothing listens on port $1" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# cpu_ticks PID: user + system clock ticks of a process.
cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}

field() {
	echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

"$(dirname "$0")/../../scripts/install-deps.sh" packages nginx-light prometheus-blackbox-exporter wrk

nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 8192; multi_accept on; }
http {
    access_log off;
    keepalive_timeout 0;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port backlog=8192;
        location / { return 200 "ok\n"; }
    }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
nginx_pid=$!
wait_port "$nginx_port"
target="http://127.0.0.1:$nginx_port/"

echo "bench-probes: nginx on $target; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
ceiling=$("$bin" ceiling "$target" "$concurrency" "$seconds")
echo "bench-probes: $ceiling"
tocsin=$("$bin" probes "$target" "$probes" "$seconds")
echo "bench-probes: $tocsin"

blackbox_port=$(free_port)
cat >"$work/blackbox.yml" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
EOF
prometheus-blackbox-exporter --config.file="$work/blackbox.yml" \
	--web.listen-address="127.0.0.1:$blackbox_port" --log.level=error &
blackbox_pid=$!
wait_port "$blackbox_port"
url="http://127.0.0.1:$blackbox_port/probe?module=http_2xx&target=$target"
wrk -t1 -c"$concurrency" -d2s "$url" >/dev/null # warm-up
ticks0=$(cpu_ticks "$blackbox_pid")
wrk_out=$(wrk -t1 -c"$concurrency" -d"${seconds}s" "$url")
ticks1=$(cpu_ticks "$blackbox_pid")
hz=$(getconf CLK_TCK)
requests=$(echo "$wrk_out" | awk '/requests in/ {print $1}')
blackbox_rate=$(echo "$wrk_out" | awk '/^Requests\/sec:/ {printf "%.0f", $2}')
blackbox_cpu=$(awk -v t=$((ticks1 - ticks0)) -v hz="$hz" -v n="$requests" \
	'BEGIN {printf "%.4f", (n > 0 ? t * 1000 / hz / n : 0)}')
echo "bench-probes: mode=blackbox concurrency=$concurrency probes_per_s=$blackbox_rate" \
	"cpu_ms_per_probe=$blackbox_cpu requests=$requests"

echo "bench-probes: tocsin_probes_per_s=$(field "$tocsin" probes_per_s)" \
	"tocsin_cpu_ms_per_probe=$(field "$tocsin" cpu_ms_per_probe)" \
	"blackbox_probes_per_s=$blackbox_rate blackbox_cpu_ms_per_probe=$blackbox_cpu"
