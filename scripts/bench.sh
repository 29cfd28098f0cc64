#!/usr/bin/env bash
# make bench: prints every figure the issues ask for, measured in one run.
# BENCH_ONLY=hash,agent,rebuild,rebuild-rss,fence,probe,probe-exact,blobs,admit,authz,admit-verify limits what runs. Every section
# runs even when an earlier one misses its target or fails; the last line
# names those, and the exit status is non-zero if there are any.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/services.sh >/dev/null
bash scripts/services.sh bench-tools >/dev/null
set -a; . "${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ragparity/services.env"; set +a
go build -o bin/ragparity ./cmd/ragparity
go build -o bin/ragparity-bench ./cmd/ragparity-bench
only="${BENCH_ONLY:-hash,agent,rebuild,rebuild-rss,fence,probe,probe-exact,blobs,admit,authz,admit-verify}"
want() { [[ ",$only," == *",$1,"* ]]; }
missed=()
section() {
	# section NAME CMD...: runs one benchmark; a non-zero exit is recorded.
	local name=$1; shift
	want "$name" || return 0
	echo
	"$@" || missed+=("$name (exit $?)")
}
echo "# ragparity benchmarks ($(nproc) cores, $(go version | cut -d' ' -f3), $(date -u +%F))"
section hash bin/ragparity-bench hash --points "${BENCH_HASH_POINTS:-100000,1000000}" --runs "${BENCH_RUNS:-3}"
section agent bin/ragparity-bench agent --points "${BENCH_AGENT_POINTS:-1000000}"
section rebuild bin/ragparity-bench rebuild
section rebuild-rss bin/ragparity-bench rebuild-rss --mb "${BENCH_RSS_MB:-100}"
section fence bin/ragparity-bench fence
section probe bin/ragparity-bench probe
section probe-exact bin/ragparity-bench probe-exact --points "${BENCH_PROBE_POINTS:-100000}"
section blobs bash scripts/bench-blobs.sh
section admit bash scripts/bench-admit.sh
section authz bin/ragparity-bench authz
section admit-verify bash scripts/bench-admit-verify.sh
echo
if [[ ${#missed[@]} -gt 0 ]]; then
	echo "bench: sections that missed a target or failed: ${missed[*]}"
	exit 1
fi
echo "bench: every section ran and met its targets"
