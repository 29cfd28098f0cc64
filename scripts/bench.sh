#!/usr/bin/env bash
# make bench: prints every figure the issues ask for, measured in one run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/services.sh >/dev/null
set -a; . "${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ragparity/services.env"; set +a
go build -o bin/ragparity ./cmd/ragparity
go build -o bin/ragparity-bench ./cmd/ragparity-bench
echo "# ragparity benchmarks ($(nproc) cores, $(go version | cut -d' ' -f3), $(date -u +%F))"
echo
bin/ragparity-bench hash --points "${BENCH_HASH_POINTS:-100000,1000000}" --runs "${BENCH_RUNS:-3}"
if [ -f scripts/bench-blobs.sh ]; then
	echo
	bash scripts/bench-blobs.sh
fi
