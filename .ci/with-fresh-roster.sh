#!/usr/bin/env bash
# Starts a roster binary on a fresh SQLite database and a loopback port,
# waits until it answers, runs a command with the GraphQL URL as its last
# argument, then stops the server; exits as the command did.
#   .ci/with-fresh-roster.sh path/to/roster PORT command [args...]
set -euo pipefail
roster=$1 port=$2
shift 2
work="$(mktemp -d)"
server=""
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
ROSTER_LOG=warn "$roster" serve --bind "127.0.0.1:$port" \
  --database-url "sqlite://$work/roster.db?mode=rwc" &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
"$@" "http://127.0.0.1:$port/graphql"
