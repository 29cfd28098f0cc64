# Source me: `. scripts/env.sh` exports the settings written by scripts/services.sh
# (RAGPARITY_PG_URL, RAGPARITY_REDIS_URL, RAGPARITY_S3_*), e.g. before `go test ./...`.
_ragparity_env="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ragparity/services.env"
if [ -f "$_ragparity_env" ]; then
	set -a
	. "$_ragparity_env"
	set +a
else
	echo "scripts/env.sh: $_ragparity_env not found; run scripts/services.sh (or make services) first" >&2
fi
unset _ragparity_env
