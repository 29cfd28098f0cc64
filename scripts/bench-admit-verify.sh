#!/usr/bin/env bash
# scripts/bench-admit-verify.sh: /v1/admit p99 of a real 'ragparity serve'
# while it re-verifies, against the same server idle (issue 15: with
# re-verification every 1.5 s admit p99 rose from 6.6 ms to 252 ms).
#
#   idle         serve with gate.schedule 0: one verification at start, then
#                only admission
#   in process   gate.schedule 1.5s, --verify-nice 0: verification shares
#                serve's process and CPU priority
#   child        gate.schedule 1.5s, --verify-nice 19 (the default): each
#                verification runs in a child 'ragparity verify' at nice +19
#
# The verification is two embedded regions of BENCH_AV_POINTS points each
# (index_hash: scan, canonical encoding, SHA-256), the CPU-heavy part of
# the gate. serve (and its children) run on core 0 and wrk on core 1
# (taskset), as in bench-admit.sh. Target: child p99 <= 2x idle p99.
#
# Settings: BENCH_AV_POINTS (20000), BENCH_AV_DURATION (10s),
# BENCH_AV_CONNS (32), BENCH_AV_NICE (19, serve's default --verify-nice).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
POINTS=${BENCH_AV_POINTS:-20000}
DURATION=${BENCH_AV_DURATION:-10s}
CONNS=${BENCH_AV_CONNS:-32}
NICE=${BENCH_AV_NICE:-19}
die() { echo "bench-admit-verify: $*" >&2; exit 1; }
command -v wrk >/dev/null 2>&1 || die "wrk is needed (sudo apt-get install -y wrk)"
SRV=() LOAD=()
if command -v taskset >/dev/null 2>&1 && [[ $(nproc) -ge 2 ]]; then SRV=(taskset -c 0) LOAD=(taskset -c 1); fi

mkdir -p bin
go build -o bin/ragparity ./cmd/ragparity
go build -o bin/ragparity-bench ./cmd/ragparity-bench
. scripts/bench-work.sh

busy_cfg=$(bin/ragparity-bench admit-verify-setup --dir "$WORK/data" --points "$POINTS" --schedule 1500ms)
idle_cfg="$WORK/data/idle.yaml"
sed 's/^  schedule: .*/  schedule: 0/' "$busy_cfg" >"$idle_cfg"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run NAME CONFIG NICE: starts serve, waits for its first verdict, runs wrk;
# prints "p99ms rps verifications".
run() {
	local name=$1 cfg=$2 nice=$3 port out
	port=$(free_port)
	"${SRV[@]}" bin/ragparity serve --config "$cfg" --addr "127.0.0.1:$port" --verify-nice "$nice" >"$WORK/$name.out" 2>"$WORK/$name.log" &
	echo $! >"$WORK/$name.pid"
	for _ in $(seq 1 600); do
		[[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" == 200 ]] && break
		sleep 0.1
	done
	[[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" == 200 ]] || { tail -5 "$WORK/$name.log" >&2; die "$name: serve never held a verdict"; }
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Region-Pin: a' -H 'X-Release: r-bench' "http://127.0.0.1:$port/v1/admit")
	[[ "$code" == 200 ]] || die "$name: /v1/admit answered $code"
	local after
	out=$("${LOAD[@]}" wrk -t1 -c"$CONNS" -d"$DURATION" --latency -H 'X-Region-Pin: a' -H 'X-Release: r-bench' "http://127.0.0.1:$port/v1/admit")
	after=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^ragparity_gate_verification_duration_seconds_count/ { s += $NF } END { print s + 0 }')
	kill "$(cat "$WORK/$name.pid")" 2>/dev/null || true
	wait "$(cat "$WORK/$name.pid")" 2>/dev/null || true
	rm -f "$WORK/$name.pid"
	awk -v v="$after" '
		function ms(x) {
			if (x ~ /us$/) { sub(/us$/, "", x); return x / 1000 }
			if (x ~ /ms$/) { sub(/ms$/, "", x); return x + 0 }
			if (x ~ /s$/)  { sub(/s$/, "", x);  return x * 1000 }
			return x
		}
		/^ *99%/ { p99 = ms($2) }
		/^Requests\/sec:/ { rps = $2 }
		END { printf "%s %s %s\n", p99, rps, v }' <<<"$out"
}

read -r idle_p99 idle_rps idle_v < <(run idle "$idle_cfg" 10)
read -r inproc_p99 inproc_rps inproc_v < <(run inproc "$busy_cfg" 0)
read -r child_p99 child_rps child_v < <(run child "$busy_cfg" "$NICE")

echo "## admission while verifying: /v1/admit p99, idle vs re-verifying every 1.5 s ($(nproc) cores, serve on core 0, wrk -t1 -c$CONNS -d$DURATION on core 1, $POINTS points x 2 regions)"
echo
echo "| serve | verifications run (metric) | requests/s | p99 ms | vs idle | target |"
echo "|---|---|---|---|---|---|"
awk -v nice="$NICE" -v ip="$idle_p99" -v ir="$idle_rps" -v iv="$idle_v" -v pp="$inproc_p99" -v pr="$inproc_rps" -v pv="$inproc_v" -v cp="$child_p99" -v cr="$child_rps" -v cv="$child_v" 'BEGIN {
	printf "| idle (schedule 0) | %s | %.0f | %.2f | 1.00x | |\n", iv, ir, ip
	printf "| verifying in process (--verify-nice 0) | %s | %.0f | %.2f | %.2fx | |\n", pv, pr, pp, pp / ip
	printf "| verifying in a child at nice +%s (--verify-nice) | %s | %.0f | %.2f | %.2fx | <= 2x idle: %s |\n", nice, cv, cr, cp, cp / ip, (cp <= 2 * ip ? "MET" : "MISSED")
}'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews p99)"
awk -v ip="$idle_p99" -v cp="$child_p99" 'BEGIN { exit !(cp <= 2 * ip) }' || { echo "bench-admit-verify: target missed (child p99 <= 2x idle)"; exit 1; }
