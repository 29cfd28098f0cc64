# Sourced by the bench scripts (from the repository root): $WORK is a
# fresh folder; on exit every server whose pid is in $WORK/*.pid is
# stopped (servers start inside $(...) subshells, so their pids go to
# files) and the folder is removed.
WORK=$(mktemp -d)
cleanup() {
	local f p
	for f in "$WORK"/*.pid; do
		[[ -f "$f" ]] || continue
		p=$(cat "$f")
		kill "$p" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
