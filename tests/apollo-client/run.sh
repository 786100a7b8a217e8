#!/usr/bin/env bash
# Runs apq.mjs (Apollo Client 3 and its persisted-query link, pinned in this
# folder's lock file) against a roster binary on a fresh SQLite database.
#   tests/apollo-client/run.sh [path/to/roster]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
roster="${1:-$here/../../target/debug/roster}"
work="$(mktemp -d)"
server=""
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$here/apq.mjs" "$work/"
npm ci --prefix "$work" --ignore-scripts --no-audit --no-fund --loglevel=error
port=18182
ROSTER_LOG=warn "$roster" serve --bind "127.0.0.1:$port" \
  --database-url "sqlite://$work/apollo.db?mode=rwc" &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
node "$work/apq.mjs" "http://127.0.0.1:$port/graphql"
