#!/usr/bin/env bash
# Times new searches and user reads one by one, with roster's caches off,
# on a database `roster demo-data` filled (bench/README.md, "Search and
# detail reads"): each document is sent once to warm the database, then
# timed (curl's total, on loopback). Prints a median and a maximum per
# kind, and the statements user(id) runs.
#
#   target/release/roster demo-data --users 1000000 --database-url sqlite:///tmp/m.db?mode=rwc
#   bench/searches.sh sqlite:///tmp/m.db
set -euo pipefail
cd "$(dirname "$0")/.."
URL=$1
PORT=${ROSTER_BENCH_PORT:-18766}
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cargo build --release --quiet
env ROSTER_LOG=warn,roster::sql=trace ROSTER_CACHE_SECS=0 ROSTER_WEBHOOK_CONCURRENCY=0 \
  target/release/roster serve --bind "127.0.0.1:$PORT" --database-url "$URL" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -s -H 'content-type: application/json' \
  -d '{"query":"mutation { login(input: {username: \"admin\", password: \"roster-demo-password\"}) { accessToken } }"}' \
  "http://127.0.0.1:$PORT/graphql" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["login"]["accessToken"])')

time_ms() {  # document: milliseconds to its answer
  python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$1" >"$WORK/body.json"
  curl -s -o "$WORK/reply.json" -w '%{time_total}' -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -d @"$WORK/body.json" "http://127.0.0.1:$PORT/graphql"
  if grep -q '"errors"' "$WORK/reply.json"; then echo "searches: errors: $(cat "$WORK/reply.json")" >&2; exit 1; fi
}

kind() {  # label, document with @P@, values
  local label=$1 template=$2 value times=()
  shift 2
  for value in "$@"; do time_ms "${template//@P@/$value}" >/dev/null; done
  for value in "$@"; do times+=("$(time_ms "${template//@P@/$value}")"); done
  python3 - "$label" "${times[@]}" <<'PY'
import statistics, sys
label, times = sys.argv[1], sorted(float(t) * 1000 for t in sys.argv[2:])
print(f"| {label} | {statistics.median(times):.1f} | {times[-1]:.1f} | {len(times)} |")
PY
}

echo "| work | median (ms) | max (ms) | requests |"
echo "| --- | --- | --- | --- |"
PAGE='{ users(filter: {isActive: true, email: {icontains: "@P@"}}, orderBy: [{field: ID}], first: 50) { totalCount nodes { id username email division { name } groups { name } } } }'
kind "Q4's document, 4 digits" "$PAGE" 4821 1234 9001 5555 3141 2718 7777 6502 8086 1999
kind "Q4's document, 3 digits" "$PAGE" 482 123 900 555 314
kind "Q4's document, 2 digits" "$PAGE" 48 12
kind "Q4's document, 1 digit (Q1)" "$PAGE" 7
kind "Q4's document, example (every email)" "$PAGE" example
SEARCH='{ users(search: "@P@", first: 50) { totalCount nodes { id username } } }'
kind "search, a name and more" "$SEARCH" ivan.d silva9 andersen12 priya.b mile.s
kind "search, 3 letters of a name" "$SEARCH" iva dub sil
before=$(grep -c 'statement: ' "$WORK/serve.log" || true)
kind "user(id) with division and groups" '{ user(id: "@P@") { id username email division { name } groups { name } } }' 12345 234567 345678 456789 567890
after=$(grep -c 'statement: ' "$WORK/serve.log" || true)
echo "(user(id): $(( (after - before) / 10 )) statements per request, the token check and the user with the rest)"
