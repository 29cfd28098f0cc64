#!/usr/bin/env bash
# scripts/bench-admit.sh — router admission throughput on loopback, under wrk:
#
#   /v1/admit   ragparity's API answering from a fixed signed verdict
#               (ragparity-bench admit-server --mode admit)
#   bare        a net/http handler that only returns 200 (--mode bare)
#   bare+header the same, plus the X-Route-Region header a 200 from
#               /v1/admit carries (--mode bare-header): net/http's own
#               cost for that header, apart from the admission logic
#   nginx       nginx returning a static 200 (worker_processes 1)
#
# Target: /v1/admit >= 0.9x the bare handler's requests/s, p99 < 1.5 ms.
# Each round runs the three one after the other; the table shows the median
# round (by requests/s) of each, and as the ratio the median over rounds of
# admit/bare within a round (this machine's throughput drifts by 20% over a
# minute, so only back-to-back runs compare).
#
# On a machine of two or more cores the server under test is pinned to core 0
# and wrk (one thread) to core 1 (taskset), so the load generator does not
# take the server's core: without it, p99 on 2 cores is mostly the kernel
# scheduler moving wrk's threads onto the server's core, for every server
# alike. BENCH_ADMIT_PIN=0 turns that off.
#
# Also printed: the admission logic alone, in process (go test -bench
# AdmitHandler: ns and allocations per request, no network).
#
# Settings (environment): BENCH_ADMIT_DURATION (5s), BENCH_ADMIT_ROUNDS (5),
# BENCH_ADMIT_CONNS (32), BENCH_ADMIT_THREADS (1 pinned, else 2),
# BENCH_ADMIT_GOMAXPROCS (1, for both Go servers), BENCH_ADMIT_PIN (1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${BENCH_ADMIT_DURATION:-5s}
ROUNDS=${BENCH_ADMIT_ROUNDS:-5}
CONNS=${BENCH_ADMIT_CONNS:-32}
PROCS=${BENCH_ADMIT_GOMAXPROCS:-1}
PIN=${BENCH_ADMIT_PIN:-1}
SRV=() LOAD=()
if [[ "$PIN" == 1 ]] && command -v taskset >/dev/null 2>&1 && [[ $(nproc) -ge 2 ]]; then
	SRV=(taskset -c 0) LOAD=(taskset -c 1)
	THREADS=${BENCH_ADMIT_THREADS:-1}
else
	PIN=0
	THREADS=${BENCH_ADMIT_THREADS:-2}
fi

die() { echo "bench-admit: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
if ! have go && [[ -x /usr/local/go/bin/go ]]; then PATH="$PATH:/usr/local/go/bin"; fi

NGINX=$(command -v nginx || true)
[[ -z "$NGINX" && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
if ! have wrk || [[ -z "$NGINX" ]]; then
	[[ $(id -u) -eq 0 ]] || die "wrk and nginx are needed: sudo apt-get install -y wrk nginx-light"
	echo "installing wrk and nginx-light (apt-get)" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q wrk nginx-light >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1; apt-get install -y -q wrk nginx-light >/dev/null; } ||
		die "apt-get install wrk nginx-light failed"
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi

mkdir -p bin
go build -o bin/ragparity-bench ./cmd/ragparity-bench

. scripts/bench-work.sh

# start_go MODE: starts admit-server, prints its address.
start_go() {
	local out="$WORK/$1.addr" i
	GOMAXPROCS=$PROCS "${SRV[@]}" bin/ragparity-bench admit-server --mode "$1" >"$out" 2>"$WORK/$1.log" &
	echo $! >"$WORK/$1.pid"
	for i in $(seq 1 100); do [[ -s "$out" ]] && break; sleep 0.05; done
	[[ -s "$out" ]] || { cat "$WORK/$1.log" >&2; die "admit-server --mode $1 did not start (is the admit-server case in cmd/ragparity-bench/main.go?)"; }
	head -n1 "$out"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
	echo $((20000 + RANDOM % 20000)); }

start_nginx() {
	local port; port=$(free_port)
	mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp"
	chmod -R 0777 "$WORK/nginx/tmp"
	cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$port; location / { return 200; } }
}
EOF
	"${SRV[@]}" "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/logs/error.log" -c "$WORK/nginx/nginx.conf" >/dev/null 2>&1 &
	echo $! >"$WORK/nginx.pid"
	local i
	for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.05; done
	echo "127.0.0.1:$port"
}

# measure NAME URL [wrk -H args...]: one wrk run; appends "rps p99ms" to $WORK/res.NAME.
measure() {
	local name=$1 url=$2; shift 2
	local out
	out=$("${LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "$url")
	echo "$out" >>"$WORK/res.$name.wrk"
	if grep -q "Non-2xx" <<<"$out"; then
		echo "$out" >&2
		die "$name answered non-2xx under load"
	fi
	awk '
		function ms(v) {
			if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
			if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
			if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
			return v
		}
		/^ *99%/ { p99 = ms($2) }
		/^Requests\/sec:/ { rps = $2 }
		END { printf "%s %s\n", rps, p99 }' <<<"$out" >>"$WORK/res.$name"
}

# median_row NAME: the round with the median requests/s, as "rps p99".
median_row() { sort -n "$WORK/res.$1" | awk '{ r[NR] = $0 } END { print r[int((NR + 1) / 2)] }'; }

BARE=$(start_go bare)
BHDR=$(start_go bare-header)
ADMIT=$(start_go admit)
NGX=$(start_nginx)
ADMIT_HDR=(-H "X-Region-Pin: eu-west" -H "X-Client-Region: eu" -H "X-Release: r-bench" -H "X-Index-Hash: h1" -H "X-Ragparity-Fallback: route")

# Sanity: the admit server routes the pinned-but-drifted request to its fallback.
hdrs=$(curl -s -o /dev/null -D - -H "X-Region-Pin: eu-west" -H "X-Client-Region: eu" -H "X-Release: r-bench" \
	-H "X-Index-Hash: h1" -H "X-Ragparity-Fallback: route" "http://$ADMIT/v1/admit" | tr -d '\r')
route=$(awk -F': ' 'tolower($1) == "x-route-region" { print $2 }' <<<"$hdrs")
[[ "$(head -n1 <<<"$hdrs")" == *" 200"* && -n "$route" ]] || die "/v1/admit did not route: $hdrs"

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
# Warm-up (not counted).
for u in "http://$BARE/v1/admit" "http://$BHDR/v1/admit" "http://$ADMIT/v1/admit" "http://$NGX/v1/admit"; do
	"${LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d1s "${ADMIT_HDR[@]}" "$u" >/dev/null
done
for r in $(seq 1 "$ROUNDS"); do
	# The same request to all three: only the answering code differs.
	measure bare "http://$BARE/v1/admit" "${ADMIT_HDR[@]}"
	measure bhdr "http://$BHDR/v1/admit" "${ADMIT_HDR[@]}"
	measure admit "http://$ADMIT/v1/admit" "${ADMIT_HDR[@]}"
	measure nginx "http://$NGX/v1/admit" "${ADMIT_HDR[@]}"
done

read -r bare_rps bare_p99 < <(median_row bare)
read -r admit_rps admit_p99 < <(median_row admit)
read -r nginx_rps nginx_p99 < <(median_row nginx)
read -r bhdr_rps bhdr_p99 < <(median_row bhdr)
# median over rounds of the within-round ratio NAME/bare
median_ratio() { paste -d' ' "$WORK/res.$1" "$WORK/res.bare" | awk '{ print $1 / $3 }' | sort -n | awk '{ r[NR] = $0 } END { print r[int((NR + 1) / 2)] }'; }
admit_ratio=$(median_ratio admit)
nginx_ratio=$(median_ratio nginx)
bhdr_ratio=$(median_ratio bhdr)

pinned="not pinned"
[[ "$PIN" == 1 ]] && pinned="server on core 0, wrk on core 1"
echo "## router admission: /v1/admit under wrk ($(nproc) cores, wrk -t$THREADS -c$CONNS -d$DURATION, $pinned, median of $ROUNDS rounds, GOMAXPROCS=$PROCS for Go)"
echo
echo "| server | requests/s | p99 ms | vs bare handler | target |"
echo "|---|---|---|---|---|"
awk -v br="$bare_rps" -v bp="$bare_p99" -v ar="$admit_rps" -v ap="$admit_p99" -v nr="$nginx_rps" -v np="$nginx_p99" -v route="${route:-?}" -v ratio="$admit_ratio" -v nratio="$nginx_ratio" -v hr="$bhdr_rps" -v hp="$bhdr_p99" -v hratio="$bhdr_ratio" 'BEGIN {
	ok = (ratio >= 0.9 && ap < 1.5) ? "MET" : "MISSED"
	printf "| ragparity /v1/admit (pin drifted -> %s) | %.0f | %.2f | %.2fx | >= 0.90x, p99 < 1.5 ms: %s |\n", route, ar, ap, ratio, ok
	printf "| bare net/http handler (200) | %.0f | %.2f | 1.00x | |\n", br, bp
	printf "| bare handler + X-Route-Region header | %.0f | %.2f | %.2fx | |\n", hr, hp, hratio
	printf "| nginx static 200 (1 worker) | %.0f | %.2f | %.2fx | |\n", nr, np, nratio
}'
echo
for n in admit bare bhdr nginx; do
	printf '%-5s rounds (requests/s, p99 ms): %s\n' "$n" "$(awk '{ printf "%s%.0f/%.2f", (NR > 1 ? ", " : ""), $1, $2 }' "$WORK/res.$n")"
done
echo "load average before/after: $LOAD0 / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews p99 most)"
inproc=$(go test ./gate/server -run '^$' -bench 'BenchmarkAdmitHandler$' -benchmem -count 1 2>/dev/null | awk '/^BenchmarkAdmitHandler/ { print $3 " ns/op, " $5 " B/op, " $7 " allocs/op" }')
echo "admission logic alone, in process (go test -bench AdmitHandler): ${inproc:-not measured}"
awk -v r="$admit_ratio" -v p="$admit_p99" 'BEGIN { exit !(r >= 0.9 && p < 1.5) }' ||
	{ echo "bench-admit: target missed (>= 0.90x the bare handler, p99 < 1.5 ms)"; exit 1; }
