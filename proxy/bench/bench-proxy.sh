#!/usr/bin/env bash
# bench-proxy.sh: paas-proxy against the nginx it replaces, under the same
# load. Both forward wrk's absolute-form scrapes to one local HTTPS upstream
# (proxy/bench/upstream) that answers 200 only when the scrape headers are
# right; the script fails unless every response of both runs was a 2xx.
#
# Usage (from the repository root): proxy/bench/bench-proxy.sh
# Environment: BENCH_DURATION (10s), BENCH_THREADS (2), BENCH_CONNECTIONS (32),
# BENCH_WARMUP (2s), BENCH_BODY_BYTES (0: a ~250-byte metrics body),
# BENCH_ROUNDS (5: nginx and paas-proxy alternate, medians compared), GO (go),
# PAAS_PROXY_BIN (a paas-proxy binary to measure instead of building this
# checkout's, e.g. one built from an earlier commit),
# PAAS_PROXY_ENV (extra NAME=value words for paas-proxy only, e.g.
# GOMAXPROCS=1, for tuning experiments).
set -euo pipefail

DURATION=${BENCH_DURATION:-10s}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
WARMUP=${BENCH_WARMUP:-2s}
BODY_BYTES=${BENCH_BODY_BYTES:-0}
ROUNDS=${BENCH_ROUNDS:-5}
GO=${GO:-go}
PAAS_PROXY_ENV=${PAAS_PROXY_ENV:-}
PAAS_PROXY_BIN=${PAAS_PROXY_BIN:-}
HOST=my-app.bench.local
GUID=4f8e1c2a-9b3d-4e5f-8a7b-6c5d4e3f2a1b
SCRAPE_PATH="http://$HOST/metrics?cf_app_guid=$GUID&cf_app_instance=$GUID%3A0&cf_app_instance_index=0"

PATH=$PATH:/usr/sbin:/sbin
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
	echo "installing wrk and nginx from Debian"
	SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q wrk nginx
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-proxy.XXXXXX")
chmod 755 "$tmp" # nginx workers may run as another user when started by root
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # wait_for DESCRIPTION COMMAND...: retry COMMAND for up to 10 s
	local what=$1
	shift
	for _ in $(seq 100); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "bench-proxy: $what did not come up" >&2
	return 1
}

echo "building paas-proxy and the fake upstream"
if [ -n "$PAAS_PROXY_BIN" ]; then
	cp "$PAAS_PROXY_BIN" "$tmp/paas-proxy"
else
	"$GO" build -o "$tmp/paas-proxy" ./cmd/paas-proxy
fi
"$GO" build -o "$tmp/upstream" ./proxy/bench/upstream

"$tmp/upstream" -dir "$tmp" -host "$HOST" -guid "$GUID" -body-bytes "$BODY_BYTES" 2>"$tmp/upstream.log" &
pids+=($!)
wait_for "the upstream" test -s "$tmp/upstream.addr"
upstream_addr=$(cat "$tmp/upstream.addr")
nginx_port=$("$tmp/upstream" -free-port)
proxy_port=$("$tmp/upstream" -free-port)

# nginx as the Ruby service configured it, with two differences the bench
# needs: its upstream is named after the scrape host so that it dials the
# local upstream (as UPSTREAM_ADDR does) and keeps connections alive, and it
# verifies the upstream certificate, as paas-proxy does.
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $tmp/nginx/client_body;
	proxy_temp_path $tmp/nginx/proxy;
	fastcgi_temp_path $tmp/nginx/fastcgi;
	uwsgi_temp_path $tmp/nginx/uwsgi;
	scgi_temp_path $tmp/nginx/scgi;

	map \$arg_cf_app_instance \$cf_app_instance {
		"~^(?<guid>.*)%3[Aa](?<index>.*)\$" "\$guid:\$index";
		default \$arg_cf_app_instance;
	}
	upstream $HOST {
		server $upstream_addr;
		keepalive 64;
	}
	server {
		listen 127.0.0.1:$nginx_port;
		location / {
			proxy_pass https://\$host\$uri;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_ssl_server_name on;
			proxy_ssl_name \$host;
			proxy_ssl_verify on;
			proxy_ssl_trusted_certificate $tmp/cert.pem;
			proxy_ssl_session_reuse on;
			proxy_set_header X-CF-APP-INSTANCE \$cf_app_instance;
			proxy_set_header XX-CF-APP-INSTANCE \$cf_app_instance;
			proxy_set_header Authorization "Bearer \$arg_cf_app_guid";
		}
		location = /health {
			return 200;
		}
	}
}
EOF
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
pids+=($!)
nginx_pid=$!

# shellcheck disable=SC2086 # PAAS_PROXY_ENV is a list of NAME=value words
env $PAAS_PROXY_ENV SSL_CERT_FILE="$tmp/cert.pem" LISTEN_ADDR="127.0.0.1:$proxy_port" ALLOWED_DOMAINS=bench.local \
	UPSTREAM_ADDR="$upstream_addr" LOG_LEVEL=error "$tmp/paas-proxy" >"$tmp/paas-proxy.log" 2>&1 &
pids+=($!)
proxy_pid=$!
upstream_pid=${pids[0]}

cat >"$tmp/scrape.lua" <<EOF
wrk.method = "GET"
wrk.path = "$SCRAPE_PATH"
wrk.headers["Host"] = "$HOST"
EOF

# One scrape through each proxy must succeed before the load starts.
for port in "$nginx_port" "$proxy_port"; do
	wait_for "the proxy on port $port" curl -fsS "http://127.0.0.1:$port/health"
	if ! out=$(curl -fsS -x "http://127.0.0.1:$port" "$SCRAPE_PATH" 2>&1); then
		echo "bench-proxy: a scrape through port $port failed: $out" >&2
		cat "$tmp/nginx/error.log" "$tmp/paas-proxy.log" >&2
		exit 1
	fi
done

# cpu_ticks PID: user + system CPU ticks of PID and its children (nginx's
# workers).
cpu_ticks() {
	local total=0 pid
	for pid in "$1" $(pgrep -P "$1" || true); do
		total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
	done
	echo "$total"
}

# run NAME PORT PID: prints "NAME requests/s p99-ms proxy-cpu-us/request
# upstream-cpu-us/request" after checking every response was a 2xx.
run() {
	local name=$1 port=$2 pid=$3 out cpu0 cpu1 up0 up1 hz
	hz=$(getconf CLK_TCK)
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$tmp/scrape.lua" "http://127.0.0.1:$port" >/dev/null
	cpu0=$(cpu_ticks "$pid")
	up0=$(cpu_ticks "$upstream_pid")
	out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$tmp/scrape.lua" "http://127.0.0.1:$port")
	cpu1=$(cpu_ticks "$pid")
	up1=$(cpu_ticks "$upstream_pid")
	echo "--- $name (127.0.0.1:$port)" >&2
	echo "$out" >&2
	if grep -q -e "Non-2xx" -e "Socket errors" <<<"$out"; then
		echo "bench-proxy: $name answered errors or non-2xx responses" >&2
		exit 1
	fi
	local rps p99 requests
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	requests=$(awk '/requests in/ {print $1}' <<<"$out")
	p99=$(awk '$1 == "99%" {
		v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
		if (unit == "us") v /= 1000; else if (unit == "s") v *= 1000; else if (unit == "m") v *= 60000
		printf "%.3f", v }' <<<"$out")
	echo "$name $rps $p99 $(awk -v t=$((cpu1 - cpu0)) -v u=$((up1 - up0)) -v hz="$hz" -v n="$requests" \
		'BEGIN { printf "%.1f %.1f", t / hz / n * 1e6, u / hz / n * 1e6 }')"
}

echo "wrk: $THREADS threads, $CONNECTIONS connections, $DURATION each (after a $WARMUP warm-up), body $BODY_BYTES bytes (0: small), $ROUNDS rounds"
# Alternate the two, round after round, and compare the medians: a busy
# moment of the machine then spoils one round rather than one side.
results=()
for round in $(seq "$ROUNDS"); do
	results+=("$(run nginx "$nginx_port" "$nginx_pid") $round")
	results+=("$(run paas-proxy "$proxy_port" "$proxy_pid") $round")
done

echo
printf "%-12s %6s %12s %10s %22s %25s\n" "proxy" "round" "requests/s" "p99 ms" "proxy CPU us/request" "upstream CPU us/request"
for r in "${results[@]}"; do
	read -r name rps p99 cpu up round <<<"$r"
	printf "%-12s %6s %12.0f %10.3f %22.1f %25.1f\n" "$name" "$round" "$rps" "$p99" "$cpu" "$up"
done
# median NAME FIELD: the median over the rounds of NAME's field (2: requests/s,
# 3: p99, 4: proxy CPU, 5: upstream CPU).
median() {
	printf "%s\n" "${results[@]}" | awk -v n="$1" -v f="$2" '$1 == n { print $f }' | sort -g |
		awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
for name in nginx paas-proxy; do
	printf "%-12s %6s %12.0f %10.3f %22.1f %25.1f\n" "$name" median "$(median "$name" 2)" "$(median "$name" 3)" "$(median "$name" 4)" "$(median "$name" 5)"
done
awk -v p="$(median paas-proxy 2)" -v n="$(median nginx 2)" -v pp="$(median paas-proxy 3)" -v np="$(median nginx 3)" \
	-v pc="$(median paas-proxy 4)" -v nc="$(median nginx 4)" 'BEGIN {
	printf "paas-proxy/nginx throughput (medians): %.2fx; p99 difference: %+.3f ms; CPU per request: %.2fx\n", p / n, pp - np, pc / nc }'
