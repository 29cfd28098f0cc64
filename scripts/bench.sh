#!/usr/bin/env bash
# make bench: prints every figure the issues ask for, measured in one run.
# BENCH_ONLY=hash,rebuild,probe,blobs,admit limits what runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/services.sh >/dev/null
bash scripts/services.sh bench-tools >/dev/null
set -a; . "${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ragparity/services.env"; set +a
go build -o bin/ragparity ./cmd/ragparity
go build -o bin/ragparity-bench ./cmd/ragparity-bench
only="${BENCH_ONLY:-hash,rebuild,probe,blobs,admit}"
want() { [[ ",$only," == *",$1,"* ]]; }
echo "# ragparity benchmarks ($(nproc) cores, $(go version | cut -d' ' -f3), $(date -u +%F))"
if want hash; then
	echo
	bin/ragparity-bench hash --points "${BENCH_HASH_POINTS:-100000,1000000}" --runs "${BENCH_RUNS:-3}"
fi
if want rebuild; then
	echo
	bin/ragparity-bench rebuild
fi
if want probe && bin/ragparity-bench 2>&1 | grep -q probe; then
	echo
	bin/ragparity-bench probe
fi
if want blobs; then
	echo
	bash scripts/bench-blobs.sh
fi
if want admit && [ -f scripts/bench-admit.sh ]; then
	echo
	bash scripts/bench-admit.sh
fi
