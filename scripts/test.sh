#!/usr/bin/env bash
# Runs the whole test suite against the services scripts/services.sh started.
# Prints package results, failures, and which vector-store backends the
# conformance suite actually ran against; the full log goes to test.log.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
env_file="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ragparity/services.env"
if [ -f "$env_file" ]; then set -a; . "$env_file"; set +a; fi
log=test.log
go test -count=1 -timeout 30m -v "$@" ./... >"$log" 2>&1
rc=$?
grep -E '^(ok  |FAIL|--- FAIL|panic:|\?   )|vectortest: running' "$log" | sed -E 's/^ +suite\.go:[0-9]+: //'
if [ $rc -ne 0 ]; then
	echo "--- failures (full log: $log) ---"
	grep -E -B1 -A25 -- '--- FAIL|^panic:' "$log" | head -300
fi
passed=$(grep -cE '^\s*--- PASS' "$log")
failed=$(grep -cE '^\s*--- FAIL' "$log")
skipped=$(grep -cE '^\s*--- SKIP' "$log")
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $rc
