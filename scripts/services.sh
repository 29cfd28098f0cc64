#!/usr/bin/env bash
# scripts/services.sh — prepare and start the local services used by ragparity's tests.
#
#   scripts/services.sh          all services (pg, redis, s3) and test tools (nginx, haproxy, caddy, chromium)
#   scripts/services.sh pg       PostgreSQL 15 + pgvector 0.8.0 (built from Debian's source package)
#   scripts/services.sh redis    Redis on 127.0.0.1:6379
#   scripts/services.sh s3       versitygw (S3 API, posix backend) on 127.0.0.1:7070
#   scripts/services.sh tools    Debian packages tests drive: nginx-light, haproxy, caddy, chromium
#   scripts/services.sh bench-tools  wrk, rclone, nginx-light (make bench)
#   scripts/services.sh stop     stop the versitygw started by this script
#
# Idempotent: what is already built/running is reused. At the end it prints the
# KEY=value lines the tests read and writes them to
# ${XDG_CACHE_HOME:-$HOME/.cache}/ragparity/services.env (source it with `set -a`).
set -euo pipefail

# ---------------------------------------------------------------- settings
CACHE_DIR="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ragparity"
ENV_FILE="$CACHE_DIR/services.env"

PG_MAJOR=15
PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
PG_HOST=127.0.0.1
PG_PORT=5432
PG_DB=test
PG_USER=postgres
PGVECTOR_VERSION=0.8.0
PGVECTOR_DEB_VERSION=0.8.0-1
PGVECTOR_SUITE=trixie
APT_DIR="$CACHE_DIR/apt"

REDIS_HOST=127.0.0.1
REDIS_PORT=6379

VGW_VERSION=v1.8.0
VGW_MODULE=github.com/versity/versitygw
BIN_DIR="$CACHE_DIR/bin"
VGW_BIN="$BIN_DIR/versitygw"
S3_ADDR=127.0.0.1:7070
S3_ENDPOINT="http://$S3_ADDR"
S3_ACCESS_KEY=ragparity
S3_SECRET_KEY=ragparity-secret
S3_REGION=us-east-1
S3_STATE_DIR=/tmp/ragparity-s3        # pid file, log, sidecar metadata (if needed)
S3_ROOT="$S3_STATE_DIR/data"          # posix backend root: one directory per bucket
S3_SIDECAR="$S3_STATE_DIR/meta"
S3_PIDFILE="$S3_STATE_DIR/versitygw.pid"
S3_LOG="$S3_STATE_DIR/versitygw.log"

# ---------------------------------------------------------------- helpers
if [[ -t 1 ]]; then B=$'\e[1m'; R=$'\e[31m'; Y=$'\e[33m'; N=$'\e[0m'; else B=; R=; Y=; N=; fi
step() { printf '%s==> %s%s\n' "$B" "$*" "$N"; }
info() { printf '    %s\n' "$*"; }
warn() { printf '%sWARNING:%s %s\n' "$Y" "$N" "$*" >&2; }
die() {
	# die "what failed" "how to fix it" ...
	printf '%sERROR:%s %s\n' "$R" "$N" "$1" >&2
	shift
	local l
	for l in "$@"; do printf '  fix: %s\n' "$l" >&2; done
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
# Run "$@" with every inherited file descriptor above 2 closed (our lock, and any
# pipe of a caller such as a CI runner, which must not wait on a daemon we leave).
close_fds_exec() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		[[ "$fd" =~ ^[0-9]+$ && "$fd" -gt 2 ]] && eval "exec $fd>&-" 2>/dev/null || true
	done
	exec "$@"
}
now() { date +%s; }

if ! have go && [[ -x /usr/local/go/bin/go ]]; then PATH="$PATH:/usr/local/go/bin"; fi
export DEBIAN_FRONTEND=noninteractive

# Serialise concurrent runs (e.g. `make services` in one shell and CI in another).
mkdir -p "$CACHE_DIR"
if have flock; then
	# (daemons started below get fd 9 closed, so the lock ends with this script)
	exec 9>"$CACHE_DIR/services.lock"
	if ! flock -w 900 9; then
		die "another scripts/services.sh held $CACHE_DIR/services.lock for 15 minutes" \
			"wait for it to finish, or remove the lock file if no such process runs"
	fi
fi

# apt-get install for the SYSTEM (normal sources). Runs `apt-get update` once if the
# first attempt fails (stale or missing package lists).
APT_UPDATED=0
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	[[ $(id -u) -eq 0 ]] || die "packages missing: ${missing[*]}, and this script is not running as root" \
		"sudo apt-get install -y ${missing[*]}   (then run this script again)"
	info "apt-get install -y ${missing[*]}"
	if ! apt-get install -y -q "${missing[@]}" >"$CACHE_DIR/apt-install.log" 2>&1; then
		if [[ $APT_UPDATED -eq 0 ]]; then
			info "install failed; running apt-get update and retrying"
			apt-get update -q >>"$CACHE_DIR/apt-install.log" 2>&1 || true
			APT_UPDATED=1
		fi
		apt-get install -y -q "${missing[@]}" >>"$CACHE_DIR/apt-install.log" 2>&1 ||
			{ tail -n 20 "$CACHE_DIR/apt-install.log" >&2
			  die "apt-get install ${missing[*]} failed (full log: $CACHE_DIR/apt-install.log)" \
				"check the Debian mirror is reachable, run 'apt-get update && apt-get install -y ${missing[*]}' by hand"; }
	fi
}

# ================================================================ PostgreSQL + pgvector
pgvector_installed() {
	local ctl="/usr/share/postgresql/$PG_MAJOR/extension/vector.control"
	[[ -f "$ctl" && -f "/usr/lib/postgresql/$PG_MAJOR/lib/vector.so" ]] || return 1
	grep -Eq "^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'$PGVECTOR_VERSION'" "$ctl"
}

# Print the Debian (non-security) mirror URL configured on this machine, read from
# /etc/apt/sources.list, sources.list.d/*.list (one-line format) and
# sources.list.d/*.sources (deb822). Falls back to deb.debian.org.
debian_mirror() {
	if [[ -n "${RAGPARITY_DEBIAN_MIRROR:-}" ]]; then echo "$RAGPARITY_DEBIAN_MIRROR"; return; fi
	local f url=""
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f "$f" ]] || continue
		url=$(sed -e 's/#.*//' -e 's/\[[^]]*\]//g' "$f" | awk '
			($1 == "deb" || $1 == "deb-src") && NF >= 3 &&
			$2 !~ /security/ && $3 !~ /(-security|\/updates)$/ && $2 ~ /\/debian\/?$|\/debian\/[0-9TZ]+\/?$/ {
				print $2; exit
			}')
		[[ -n "$url" ]] && break
	done
	if [[ -z "$url" ]]; then
		for f in /etc/apt/sources.list.d/*.sources; do
			[[ -f "$f" ]] || continue
			url=$(awk '
				function flush() {
					if (types ~ /(^| )deb(-src)?( |$)/ && enabled !~ /^(no|false)$/ && uris != "" &&
					    suites !~ /-security/ && uris !~ /security/) {
						split(uris, u, " ")
						if (u[1] ~ /\/debian\/?$|\/debian\/[0-9TZ]+\/?$/) { print u[1]; found = 1; exit }
					}
					types = uris = suites = enabled = ""
				}
				/^[[:space:]]*#/ { next }
				/^[[:space:]]*$/ { flush(); next }
				{
					line = $0
					if (line ~ /^[A-Za-z-]+:/) {
						key = tolower(substr(line, 1, index(line, ":") - 1))
						val = substr(line, index(line, ":") + 1)
					} else { val = line }   # continuation line
					gsub(/^[[:space:]]+|[[:space:]]+$/, "", val)
					if (key == "types")   types   = types " " val
					if (key == "uris")    uris    = uris " " val
					if (key == "suites")  suites  = suites " " val
					if (key == "enabled") enabled = tolower(val)
				}
				END { if (!found) flush() }' "$f")
			[[ -n "$url" ]] && break
		done
	fi
	echo "${url:-http://deb.debian.org/debian}"
}

build_pgvector() {
	local t0; t0=$(now)
	apt_install dpkg-dev build-essential "postgresql-server-dev-$PG_MAJOR"
	[[ -x "$PG_CONFIG" ]] || die "$PG_CONFIG not found after installing postgresql-server-dev-$PG_MAJOR" \
		"apt-get install -y postgresql-server-dev-$PG_MAJOR"

	local mirror opts="" keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	mirror=$(debian_mirror)
	mirror=${mirror%/}
	[[ -f "$keyring" ]] && opts="signed-by=$keyring"
	[[ "$mirror" == *snapshot* ]] && opts="${opts:+$opts }check-valid-until=no"
	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/src"
	printf 'deb-src %s %s %s main\n' "${opts:+[$opts]}" "$mirror" "$PGVECTOR_SUITE" >"$APT_DIR/sources.list"
	info "private apt source list $APT_DIR/sources.list: $(cat "$APT_DIR/sources.list")"

	# A private apt: its own source list, package lists and cache; /etc/apt and the
	# system's lists in /var/lib/apt are neither read for sources nor written.
	local apt_opts=(
		-o "Dir::Etc::SourceList=$APT_DIR/sources.list"
		-o "Dir::Etc::SourceParts=/dev/null"
		-o "Dir::State::Lists=$APT_DIR/lists"
		-o "Dir::Cache=$APT_DIR/cache"
		-o "APT::Sandbox::User=root"
		-o "Acquire::Languages=none"
		-o "APT::Get::List-Cleanup=0"
	)
	local srcdir="$APT_DIR/src/pgvector-$PGVECTOR_VERSION"
	if [[ ! -f "$srcdir/Makefile" ]]; then
		info "apt-get update (private lists, $PGVECTOR_SUITE deb-src only)"
		apt-get "${apt_opts[@]}" update -q >"$APT_DIR/update.log" 2>&1 ||
			{ tail -n 20 "$APT_DIR/update.log" >&2
			  die "private 'apt-get update' for $PGVECTOR_SUITE sources failed (log: $APT_DIR/update.log)" \
				"check that $mirror serves dists/$PGVECTOR_SUITE, or set RAGPARITY_DEBIAN_MIRROR=<debian mirror URL>"; }
		info "apt-get source pgvector=$PGVECTOR_DEB_VERSION"
		rm -rf "$APT_DIR/src" && mkdir -p "$APT_DIR/src"
		(cd "$APT_DIR/src" && apt-get "${apt_opts[@]}" source -q "pgvector=$PGVECTOR_DEB_VERSION") \
			>"$APT_DIR/source.log" 2>&1 ||
			{ tail -n 20 "$APT_DIR/source.log" >&2
			  die "apt-get source pgvector=$PGVECTOR_DEB_VERSION failed (log: $APT_DIR/source.log)" \
				"check 'apt-cache ${apt_opts[*]} showsrc pgvector' lists $PGVECTOR_DEB_VERSION; dpkg-dev must be installed"; }
		[[ -f "$srcdir/Makefile" ]] || die "pgvector source not found in $srcdir after apt-get source" \
			"look at $APT_DIR/source.log; rm -rf $APT_DIR and run again"
	else
		info "reusing source tree $srcdir"
	fi

	# OPTFLAGS= : no -march=native, as Debian builds it (portable across CPUs).
	info "make && make install (PG_CONFIG=$PG_CONFIG) — log: $APT_DIR/build.log"
	{ make -C "$srcdir" clean PG_CONFIG="$PG_CONFIG" &&
	  make -C "$srcdir" -j"$(nproc 2>/dev/null || echo 2)" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" &&
	  make -C "$srcdir" install PG_CONFIG="$PG_CONFIG" OPTFLAGS=""; } >"$APT_DIR/build.log" 2>&1 ||
		{ tail -n 30 "$APT_DIR/build.log" >&2
		  die "building pgvector $PGVECTOR_VERSION failed (log: $APT_DIR/build.log)" \
			"make sure build-essential and postgresql-server-dev-$PG_MAJOR are installed; rm -rf $APT_DIR/src and run again"; }
	pgvector_installed || die "pgvector installed but vector.control/vector.so for PG $PG_MAJOR not found" \
		"look at $APT_DIR/build.log"
	info "pgvector $PGVECTOR_VERSION built and installed in $(( $(now) - t0 ))s"
}

pg_psql() { PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$@"; }

do_pg() {
	step "PostgreSQL $PG_MAJOR + pgvector $PGVECTOR_VERSION"
	if pgvector_installed; then
		info "pgvector $PGVECTOR_VERSION already installed for PostgreSQL $PG_MAJOR"
	else
		build_pgvector
	fi

	have pg_isready || die "pg_isready not found" "apt-get install -y postgresql-$PG_MAJOR postgresql-client-$PG_MAJOR"
	if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
		info "PostgreSQL not answering on $PG_HOST:$PG_PORT; starting it"
		local ver
		ver=$(ls /etc/postgresql 2>/dev/null | head -n1 || true)
		[[ -n "$ver" ]] || die "no PostgreSQL cluster under /etc/postgresql" \
			"apt-get install -y postgresql-$PG_MAJOR (creates cluster $PG_MAJOR/main)"
		pg_ctlcluster --skip-systemctl-redirect "$ver" main start ||
			die "pg_ctlcluster $ver main start failed" "see /var/log/postgresql/postgresql-$ver-main.log"
		local i
		for i in $(seq 1 60); do pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break; sleep 1; done
		pg_isready -q -h "$PG_HOST" -p "$PG_PORT" ||
			die "PostgreSQL did not answer on $PG_HOST:$PG_PORT within 60s" \
				"see /var/log/postgresql/postgresql-$ver-main.log"
	fi
	info "PostgreSQL answers on $PG_HOST:$PG_PORT"

	if [[ -z "$(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]]; then
		info "creating database $PG_DB"
		pg_psql -d postgres -c "CREATE DATABASE $PG_DB" ||
			die "could not create database $PG_DB" "psql -h $PG_HOST -U $PG_USER -d postgres -c 'CREATE DATABASE $PG_DB'"
	fi
	pg_psql -d "$PG_DB" -c "CREATE EXTENSION IF NOT EXISTS vector" ||
		die "CREATE EXTENSION vector failed in database $PG_DB" \
			"check /usr/share/postgresql/$PG_MAJOR/extension/vector.control exists; rm -rf $APT_DIR/src and run again"
	local v
	v=$(pg_psql -d "$PG_DB" -tAc "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
	if [[ "$v" != "$PGVECTOR_VERSION" ]]; then
		info "extension vector is at $v in $PG_DB; updating to $PGVECTOR_VERSION"
		pg_psql -d "$PG_DB" -c "ALTER EXTENSION vector UPDATE TO '$PGVECTOR_VERSION'" ||
			die "ALTER EXTENSION vector UPDATE failed" "psql -h $PG_HOST -U $PG_USER -d $PG_DB -c 'DROP EXTENSION vector CASCADE' and run again"
	fi
	local d
	d=$(pg_psql -d "$PG_DB" -tAc "SELECT round(('[1,2,3]'::vector <=> '[1,2,4]'::vector)::numeric, 6)") ||
		die "pgvector self-test query failed" "see the psql error above"
	info "vector $PGVECTOR_VERSION ok in database $PG_DB ('[1,2,3]' <=> '[1,2,4]' = $d)"
}

# ================================================================ Redis
redis_ping() { [[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

do_redis() {
	step "Redis on $REDIS_HOST:$REDIS_PORT"
	have redis-cli || apt_install redis-tools
	if redis_ping; then info "Redis answers PING"; return 0; fi
	have redis-server || apt_install redis-server
	info "Redis not answering; starting redis-server"
	mkdir -p /var/lib/redis /var/log/redis
	(close_fds_exec redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/ci.log) ||
		die "redis-server failed to start" "see /var/log/redis/ci.log; is port $REDIS_PORT taken? (ss -ltnp 'sport = :$REDIS_PORT')"
	local i
	for i in $(seq 1 30); do redis_ping && break; sleep 0.5; done
	redis_ping || die "Redis did not answer PING on $REDIS_HOST:$REDIS_PORT within 15s" "see /var/log/redis/ci.log"
	info "Redis started and answers PING"
}

# ================================================================ S3 (versitygw)
vgw_built_version() { go version -m "$VGW_BIN" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'; }

build_versitygw() {
	if [[ -x "$VGW_BIN" ]] && "$VGW_BIN" --version >/dev/null 2>&1 &&
		{ ! have go || [[ "$(vgw_built_version)" == "$VGW_VERSION" ]]; }; then
		info "versitygw $VGW_VERSION already built: $VGW_BIN"
		return 0
	fi
	have go || die "go not found in PATH (needed to build versitygw)" "install Go or add /usr/local/go/bin to PATH"
	local t0; t0=$(now)
	info "building $VGW_MODULE/cmd/versitygw@$VGW_VERSION into $BIN_DIR (takes 1-3 minutes the first time)"
	mkdir -p "$BIN_DIR"
	(cd / && env -u GOFLAGS GOBIN="$BIN_DIR" go install "$VGW_MODULE/cmd/versitygw@$VGW_VERSION") \
		>"$CACHE_DIR/versitygw-build.log" 2>&1 ||
		{ tail -n 20 "$CACHE_DIR/versitygw-build.log" >&2
		  die "go install $VGW_MODULE/cmd/versitygw@$VGW_VERSION failed (log: $CACHE_DIR/versitygw-build.log)" \
			"check the Go module proxy is reachable (go env GOPROXY) and there is free disk space"; }
	"$VGW_BIN" --version >/dev/null 2>&1 || die "built $VGW_BIN does not run" "rm -f $VGW_BIN and run again"
	info "built versitygw in $(( $(now) - t0 ))s"
}

# HTTP status of an unsigned GET / (000 when nothing answers).
s3_http_code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$S3_ENDPOINT/" 2>/dev/null || true; }
s3_answers() { local c; c=$(s3_http_code); [[ -n "$c" && "$c" != 000 ]]; }
curl_has_sigv4() { curl --help all 2>/dev/null | grep -q -- --aws-sigv4; }
# Signed request: s3_curl METHOD PATH [curl args...] ; prints body, fails on HTTP >= 400.
s3_curl() {
	local method=$1 path=$2; shift 2
	curl -sS -f -m 10 -X "$method" --aws-sigv4 "aws:amz:$S3_REGION:s3" \
		--user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
		"$@" "$S3_ENDPOINT$path"
}

# Does the filesystem under $1 support user.* extended attributes?
xattr_supported() {
	local f="$1/.ragparity-xattr-probe.$$" rc=0
	: >"$f"
	if have setfattr; then
		setfattr -n user.ragparity -v 1 "$f" 2>/dev/null || rc=1
	elif have python3; then
		python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.ragparity", b"1")' "$f" 2>/dev/null || rc=1
	else
		rc=0 # cannot tell; assume yes (ext4, xfs, btrfs and tmpfs >= 6.6 do)
	fi
	rm -f "$f"
	return $rc
}

vgw_pid() {
	local pid
	[[ -f "$S3_PIDFILE" ]] || return 1
	pid=$(cat "$S3_PIDFILE" 2>/dev/null || true)
	[[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
		[[ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" == *versitygw* ]] || return 1
	echo "$pid"
}

s3_selftest() {
	if ! curl_has_sigv4; then
		warn "curl has no --aws-sigv4 (curl < 7.75): skipped the signed S3 self-test"
		return 0
	fi
	local b="ragparity-selftest-$$" body
	s3_curl PUT "/$b" -o /dev/null ||
		die "signed CreateBucket on $S3_ENDPOINT failed (access key $S3_ACCESS_KEY)" \
			"see $S3_LOG; if another S3 server owns $S3_ADDR, stop it; else: scripts/services.sh stop && scripts/services.sh s3"
	s3_curl PUT "/$b/probe.txt" --data-binary "ragparity" -H "Content-Type: text/plain" -o /dev/null ||
		die "signed PutObject on $S3_ENDPOINT failed" "see $S3_LOG (xattr errors: the posix root needs xattrs or --sidecar)"
	body=$(s3_curl GET "/$b/probe.txt") || die "signed GetObject on $S3_ENDPOINT failed" "see $S3_LOG"
	[[ "$body" == ragparity ]] || die "GetObject returned '$body', expected 'ragparity'" "see $S3_LOG"
	s3_curl DELETE "/$b/probe.txt" -o /dev/null || true
	s3_curl DELETE "/$b" -o /dev/null || true
	rm -rf "${S3_ROOT:?}/$b"
	info "signed create-bucket/put/get/delete ok"
}

do_s3() {
	local pid
	step "S3 (versitygw $VGW_VERSION, posix backend) on $S3_ADDR"
	have curl || apt_install curl
	build_versitygw

	# Started before --keep-alive was passed: it closes the connection after
	# every response (AWS S3 keeps it), so every client pays a connect per
	# object. Restart it with the flag (its root is made afresh).
	if pid=$(vgw_pid) && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- '--keep-alive'; then
		info "versitygw (pid $pid) runs without --keep-alive; restarting it"
		do_stop
	fi
	if s3_answers; then
		if pid=$(vgw_pid); then
			info "versitygw already running (pid $pid), root $S3_ROOT"
		else
			info "something already answers on $S3_ADDR (HTTP $(s3_http_code)); not started by this script, reusing it"
		fi
		s3_selftest
		return 0
	fi

	# Not answering: a stale process of ours? stop it before starting a fresh one.
	if pid=$(vgw_pid); then
		warn "versitygw pid $pid runs but does not answer on $S3_ADDR; restarting it"
		do_stop
	fi

	info "fresh posix root $S3_ROOT"
	mkdir -p "$S3_STATE_DIR"
	rm -rf "${S3_ROOT:?}" "${S3_SIDECAR:?}"
	mkdir -p "$S3_ROOT"
	local posix_opts=()
	if xattr_supported "$S3_ROOT"; then
		info "filesystem of $S3_ROOT supports user xattrs: metadata (ETag, content-type…) kept in xattrs"
	else
		mkdir -p "$S3_SIDECAR"
		posix_opts+=(--sidecar "$S3_SIDECAR")
		info "no user xattrs on $S3_ROOT: metadata kept in sidecar dir $S3_SIDECAR"
	fi

	# --keep-alive: versitygw closes every connection after one response
	# without it; AWS S3 and MinIO keep them open, and so must the server
	# the tests and the blob bench run against.
	local cmd=("$VGW_BIN" --port "$S3_ADDR" --access "$S3_ACCESS_KEY" --secret "$S3_SECRET_KEY"
		--region "$S3_REGION" --keep-alive posix "${posix_opts[@]}" "$S3_ROOT")
	info "starting: ${cmd[*]}"
	info "log: $S3_LOG"
	# Detached: own session, no stdin, survives the caller's shell. Credentials come
	# from the flags; unset env vars versitygw would also read.
	(close_fds_exec env -u ROOT_ACCESS_KEY_ID -u ROOT_ACCESS_KEY -u ROOT_SECRET_ACCESS_KEY -u ROOT_SECRET_KEY \
		-u VGW_PORT -u VGW_WEBUI_PORT -u VGW_ADMIN_PORT \
		setsid nohup "${cmd[@]}" </dev/null >"$S3_LOG" 2>&1) &
	echo $! >"$S3_PIDFILE"

	local i
	for i in $(seq 1 60); do
		s3_answers && break
		if ! kill -0 "$(cat "$S3_PIDFILE")" 2>/dev/null; then
			tail -n 20 "$S3_LOG" >&2
			die "versitygw exited at startup (log: $S3_LOG)" \
				"is $S3_ADDR taken? (ss -ltnp 'sport = :${S3_ADDR##*:}'); rm -f $VGW_BIN to rebuild"
		fi
		sleep 0.5
	done
	s3_answers || { tail -n 20 "$S3_LOG" >&2
		die "versitygw did not answer on $S3_ADDR within 30s (log: $S3_LOG)" "scripts/services.sh stop && scripts/services.sh s3"; }
	if grep -Eiq 'error|fatal|panic' "$S3_LOG"; then
		warn "versitygw log mentions errors at startup:"; grep -Ei 'error|fatal|panic' "$S3_LOG" | head -n 5 >&2
	fi
	info "versitygw answers on $S3_ENDPOINT (pid $(cat "$S3_PIDFILE"))"
	s3_selftest
}

do_stop() {
	step "stopping versitygw"
	local pid i
	if ! pid=$(vgw_pid); then
		info "no versitygw started by this script is running ($S3_PIDFILE)"
		rm -f "$S3_PIDFILE"
		s3_answers && warn "something still answers on $S3_ADDR but was not started by this script; left alone"
		return 0
	fi
	kill "$pid"
	for i in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
	if kill -0 "$pid" 2>/dev/null; then warn "pid $pid ignored SIGTERM; sending SIGKILL"; kill -9 "$pid" || true; fi
	rm -f "$S3_PIDFILE"
	info "stopped versitygw (pid $pid)"
}

# ================================================================ env output
write_env() {
	local tmp="$ENV_FILE.tmp.$$"
	cat >"$tmp" <<EOF
RAGPARITY_PG_URL=postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB?sslmode=disable
RAGPARITY_REDIS_URL=redis://$REDIS_HOST:$REDIS_PORT/0
RAGPARITY_S3_ENDPOINT=$S3_ENDPOINT
RAGPARITY_S3_ACCESS_KEY=$S3_ACCESS_KEY
RAGPARITY_S3_SECRET_KEY=$S3_SECRET_KEY
RAGPARITY_S3_POSIX_ROOT=$S3_ROOT
EOF
	mv -f "$tmp" "$ENV_FILE"
	step "environment for tests (also in $ENV_FILE; load with: set -a; . $ENV_FILE; set +a)"
	cat "$ENV_FILE"
}

# ================================================================ main
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

T0=$(now)
# ================================================================ tools tests drive
# nginx, haproxy and caddy (the router end-to-end tests) and chromium (the HTML
# report test) are Debian packages; wrk and rclone are for `make bench` only.
do_tools() {
	step "tools: nginx, haproxy, caddy, chromium"
	apt_install nginx-light haproxy caddy chromium fonts-liberation
	# Debian's haproxy and caddy packages start daemons (caddy on :80) with
	# their packaged configs; tests run their own on loopback ports, so the
	# packaged services are stopped and kept from starting at boot.
	local svc
	for svc in haproxy caddy; do
		if have systemctl && [[ -d /run/systemd/system ]]; then
			systemctl disable --now "$svc" >/dev/null 2>&1 || true
		elif have service; then
			service "$svc" stop >/dev/null 2>&1 || true
		fi
	done
	info "nginx $(nginx -v 2>&1 | cut -d/ -f2), haproxy $(haproxy -v 2>/dev/null | head -1 | awk '{print $3}'), caddy $(caddy version 2>/dev/null | awk '{print $1}'), $(chromium --version 2>/dev/null | head -1)"
}
do_bench_tools() {
	step "bench tools: wrk, rclone, nginx"
	apt_install wrk rclone nginx-light
}

case "${1:-all}" in
all)   do_pg; do_redis; do_s3; do_tools ;;
tools) do_tools ;;
bench-tools) do_bench_tools ;;
pg)    do_pg ;;
redis) do_redis ;;
s3)    do_s3 ;;
stop)  do_stop; exit 0 ;;
-h|--help|help) usage; exit 0 ;;
*)     usage >&2; die "unknown argument '$1'" "use one of: (none), pg, redis, s3, tools, bench-tools, stop" ;;
esac
write_env
info "services ready in $(( $(now) - T0 ))s"
