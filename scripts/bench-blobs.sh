#!/usr/bin/env bash
# scripts/bench-blobs.sh — blob manifest parity: ragparity against `rclone check`,
# measured in one run against the same two versitygw buckets per data set.
#
#   bash scripts/bench-blobs.sh   (WORKERS=16 SMALL_N=10000 LARGE_N=200 REPS=2 KEEP=0 by default)
#
# Data sets: small = SMALL_N objects of 1 KiB, large = LARGE_N objects of 4 MiB, the
# same bytes in bucket a and bucket b. For each it times:
#   ragparity diff --blobs --mode etag            vs  rclone check            (size + hash from the listing)
#   ragparity diff --blobs --mode content (cold)  vs  rclone check --download (both sides read)
# and the same ragparity runs again with a warm content-hash cache; rclone gets
# --checkers $WORKERS, ragparity --workers $WORKERS; each time is the best of REPS
# runs, the tools alternating, after a sync. Prints times, ratios and the
# targets (small: content <= 0.5x, etag <= 1.0x; large: content <= 1.5x; warm
# re-run <= 0.2x its first run). Exit 1 if a target is missed or a tool gave a
# wrong answer. rclone's S3 backend fails when AWS_CA_BUNDLE is set: it runs
# without it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WORKERS=${WORKERS:-16}
SMALL_N=${SMALL_N:-10000}
LARGE_N=${LARGE_N:-200}
REPS=${REPS:-2} # each timing is the best of REPS runs
KEEP=${KEEP:-0} # 1: keep the buckets for another run

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then PATH="$PATH:/usr/local/go/bin"; fi

echo "==> S3 server (scripts/services.sh s3)"
bash scripts/services.sh s3 >/tmp/ragparity-bench-services.log 2>&1 ||
	{ tail -n 20 /tmp/ragparity-bench-services.log >&2; echo "ERROR: scripts/services.sh s3 failed" >&2; exit 1; }
env_file="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ragparity/services.env"
set -a; . "$env_file"; set +a

if ! command -v rclone >/dev/null 2>&1; then
	echo "==> installing rclone (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q rclone >/tmp/ragparity-bench-apt.log 2>&1 ||
		{ apt-get update -q >>/tmp/ragparity-bench-apt.log 2>&1 && apt-get install -y -q rclone >>/tmp/ragparity-bench-apt.log 2>&1; } ||
		{ tail -n 20 /tmp/ragparity-bench-apt.log >&2; echo "ERROR: apt-get install rclone failed" >&2; exit 1; }
fi

work=$(mktemp -d /tmp/ragparity-bench-blobs.XXXXXX)
cleanup_dirs() { rm -rf "$work"; }
trap cleanup_dirs EXIT

echo "==> building ragparity"
go build -o "$work/ragparity" ./cmd/ragparity

# rclone remote "rp" from the environment, no config file.
export RCLONE_CONFIG_RP_TYPE=s3 RCLONE_CONFIG_RP_PROVIDER=Other RCLONE_CONFIG_RP_ENDPOINT="$RAGPARITY_S3_ENDPOINT" \
	RCLONE_CONFIG_RP_ACCESS_KEY_ID="$RAGPARITY_S3_ACCESS_KEY" RCLONE_CONFIG_RP_SECRET_ACCESS_KEY="$RAGPARITY_S3_SECRET_KEY" \
	RCLONE_CONFIG_RP_REGION=us-east-1 RCLONE_CONFIG_RP_FORCE_PATH_STYLE=true RCLONE_CONFIG=/dev/null
rcl() { env -u AWS_CA_BUNDLE rclone -q "$@"; }

tag=$(date +%s)
buckets=()
make_set() { # name count size
	local name=$1 n=$2 size=$3 dir="$work/$1"
	mkdir -p "$dir"
	echo "==> data set $name: $n objects of $size bytes"
	head -c $((n * size)) /dev/urandom | (cd "$dir" && split -b "$size" -a 6 -d - obj-)
	local b
	for b in "rp-bench-$name-a-$tag" "rp-bench-$name-b-$tag"; do
		rcl mkdir "rp:$b"
		rcl copy --transfers "$WORKERS" --checkers "$WORKERS" --s3-upload-cutoff 64M "$dir" "rp:$b"
		buckets+=("$b")
	done
	rm -rf "$dir"
}
remove_buckets() {
	[[ "$KEEP" == 1 ]] && { echo "KEEP=1: buckets kept: ${buckets[*]}"; return; }
	local b
	for b in "${buckets[@]}"; do rcl purge "rp:$b" || echo "warning: could not remove bucket $b" >&2; done
}
trap 'remove_buckets; cleanup_dirs' EXIT

make_set small "$SMALL_N" 1024
make_set large "$LARGE_N" $((4 * 1024 * 1024))

ep=$RAGPARITY_S3_ENDPOINT
cat >"$work/regions.yaml" <<EOF
release: bench
timeout: 30m
regions:
  - name: small-a
    blobs: "s3://rp-bench-small-a-$tag?endpoint=$ep&region=us-east-1&access_key=\${RAGPARITY_S3_ACCESS_KEY}&secret_key=\${RAGPARITY_S3_SECRET_KEY}"
  - name: small-b
    blobs: "s3://rp-bench-small-b-$tag?endpoint=$ep&region=us-east-1&access_key=\${RAGPARITY_S3_ACCESS_KEY}&secret_key=\${RAGPARITY_S3_SECRET_KEY}"
  - name: large-a
    blobs: "s3://rp-bench-large-a-$tag?endpoint=$ep&region=us-east-1&access_key=\${RAGPARITY_S3_ACCESS_KEY}&secret_key=\${RAGPARITY_S3_SECRET_KEY}"
  - name: large-b
    blobs: "s3://rp-bench-large-b-$tag?endpoint=$ep&region=us-east-1&access_key=\${RAGPARITY_S3_ACCESS_KEY}&secret_key=\${RAGPARITY_S3_SECRET_KEY}"
EOF

# CPU seconds versitygw has used (its pid file is written by scripts/services.sh).
vgw_pid=$(cat /tmp/ragparity-s3/versitygw.pid 2>/dev/null || true)
srv_cpu() {
	if [[ -n "$vgw_pid" && -r /proc/$vgw_pid/stat ]]; then
		awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$vgw_pid/stat"
	else echo 0; fi
}
# timed WANT_EXIT cmd... : prints seconds; fails the bench on an unexpected exit code.
# Leaves "client_cpu server_cpu" of the run in $work/cpu.last.
bad=0
timed() {
	local want=$1; shift
	local t0 t1 s0 s1 rc=0
	s0=$(srv_cpu)
	t0=$(date +%s.%N)
	"$@" >"$work/out.log" 2>&1 || rc=$?
	t1=$(date +%s.%N)
	s1=$(srv_cpu)
	# CPU of this subshell's children: the command (date and awk are negligible).
	# (times must run in this shell, not in a pipeline's subshell.)
	times >"$work/times.out"
	printf '%s %.2f\n' "$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$work/times.out")" \
		"$(echo "$s1 - $s0" | bc -l)" >"$work/cpu.last"
	if [[ $rc -ne $want ]]; then
		echo "ERROR: '$*' exited $rc, want $want:" >&2
		tail -n 15 "$work/out.log" >&2
		bad=1
	fi
	echo "$t1 - $t0" | bc -l
}
rp() { "$work/ragparity" diff --blobs --config "$work/regions.yaml" --workers "$WORKERS" --cache-dir "$work/cache" --json "$@"; }

rows=()
notes=()
fail_targets=0
row() { # label ragparity_s ref_label ref_s target
	local ratio ok
	ratio=$(echo "$2 / $4" | bc -l)
	ok=$(echo "$ratio <= $5" | bc -l)
	[[ "$ok" == 1 ]] || fail_targets=1
	rows+=("$(printf '%-38s %8.2fs   %-24s %8.2fs   %6.2fx   <= %-4s %s' "$1" "$2" "$3" "$4" "$ratio" "$5" "$([[ $ok == 1 ]] && echo ok || echo MISSED)")")
}

# Let the uploads' dirty pages reach the disk so that writeback does not eat
# into whichever tool runs first.
sync
sleep 2
min() { echo "if ($1 < $2) $1 else $2" | bc -l; }
for set in small large; do
	a="rp-bench-$set-a-$tag" b="rp-bench-$set-b-$tag"
	echo "==> measuring $set (best of $REPS, tools alternating)"
	t_rcl=999999 t_rcl_dl=999999 t_etag=999999 t_content=999999 t_content_warm=999999
	for ((rep = 0; rep < REPS; rep++)); do
		t_rcl=$(min "$t_rcl" "$(timed 0 rcl check --checkers "$WORKERS" "rp:$a" "rp:$b")")
		# ETag mode never passes on its own: exit 2 ("could not tell") is the right answer.
		t_etag=$(min "$t_etag" "$(timed 2 rp --from "$set-a" --to "$set-b" --mode etag)")
		t_rcl_dl=$(min "$t_rcl_dl" "$(timed 0 rcl check --download --checkers "$WORKERS" "rp:$a" "rp:$b")")
		read -r c_rcl s_rcl <"$work/cpu.last"
		rm -rf "$work/cache"
		t_content=$(min "$t_content" "$(timed 0 rp --from "$set-a" --to "$set-b" --mode content)")
		read -r c_rp s_rp <"$work/cpu.last"
		t_content_warm=$(min "$t_content_warm" "$(timed 0 rp --from "$set-a" --to "$set-b" --mode content)")
		grep -q '"equal": true' "$work/out.log" || { echo "ERROR: warm content run did not report equal" >&2; bad=1; }
	done
	if [[ $set == small ]]; then
		row "$set: ragparity etag" "$t_etag" "rclone check" "$t_rcl" 1.0
		row "$set: ragparity content (cold)" "$t_content" "rclone check --download" "$t_rcl_dl" 0.5
	else
		rows+=("$(printf '%-38s %8.2fs   %-24s %8.2fs   %6.2fx   (no target)' "$set: ragparity etag" "$t_etag" "rclone check" "$t_rcl" "$(echo "$t_etag / $t_rcl" | bc -l)")")
		row "$set: ragparity content (cold)" "$t_content" "rclone check --download" "$t_rcl_dl" 1.5
	fi
	row "$set: ragparity content (warm cache)" "$t_content_warm" "its cold run" "$t_content" 0.2
	notes+=("$set, last cold content run vs rclone check --download: CPU seconds client + server (versitygw): ragparity $c_rp + $s_rp, rclone $c_rcl + $s_rcl")
done

echo
echo "blob parity: ragparity vs rclone $(rclone version 2>/dev/null | head -n1 | awk '{print $2}') on versitygw ($RAGPARITY_S3_ENDPOINT), workers/checkers=$WORKERS, $(nproc) CPUs"
echo "small = $SMALL_N x 1 KiB, large = $LARGE_N x 4 MiB, two buckets each"
printf '%-38s %9s   %-24s %9s   %7s   %s\n' "run" "time" "against" "time" "ratio" "target"
printf '%s\n' "${rows[@]}"
echo "(ETag mode reads no content, so it has no cache to warm; it exits 2 by design: a pre-filter never passes.)"
printf '%s\n' "${notes[@]}"
echo "(client and server share the $(nproc) CPUs: when their sum is about CPUs x wall time, the run is CPU-bound and the server's share bounds any client)"
if [[ $bad -ne 0 ]]; then echo "FAIL: a tool gave an unexpected answer (see above)"; exit 1; fi
if [[ $fail_targets -ne 0 ]]; then echo "FAIL: a target was missed"; exit 1; fi
echo "all targets met"
