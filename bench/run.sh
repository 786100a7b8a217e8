#!/usr/bin/env bash
# roster's benchmark: builds release, fills a fresh database with
# `roster demo-data`, serves it, logs in as the demo superuser and drives
# Q1 (a filtered, counted page with division and groups), Q2 (one user by id,
# ids rotating over a fixed set), Q3 ({ __typename }), Q4 (Q1 with another
# 4-digit icontains on each request, 10,000 of them) and Q5 (Q2 over 20,000
# ids, another on each request) with wrk, then prints
# req/s, p50, p99, errors, the server's peak RSS and the SQL statements
# each query runs. Loopback only; it stops what it starts. See bench/README.md for how to read the figures.
#
#   bench/run.sh [USERS]                      # SQLite, USERS defaults to 100000
#   ROSTER_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test bench/run.sh
#                                             # SQLite, then PostgreSQL (schema roster_bench, recreated)
#   ROSTER_BENCH_PEER=1 ROSTER_BENCH_DATABASE_URL=... bench/run.sh
#                                             # and PostGraphile 4 (bench/peer, by npm ci) on the same data,
#                                             # in each round after roster on PostgreSQL
#   ROSTER_BENCH_BASELINE=/path/to/an/older/roster ROSTER_BENCH_ROUNDS=2 bench/run.sh
#                                             # and that binary on the same data, rounds interleaved
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${1:-${ROSTER_BENCH_USERS:-100000}}
CONNECTIONS=${ROSTER_BENCH_CONNECTIONS:-32}
DURATION=${ROSTER_BENCH_DURATION:-10}
WARMUP=${ROSTER_BENCH_WARMUP:-2}
PORT=${ROSTER_BENCH_PORT:-18765}
BIN=target/release/roster
SERVE_BIN=$BIN
ROUNDS=${ROSTER_BENCH_ROUNDS:-1}
WORK=$(mktemp -d)
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
if [ -n "${ROSTER_BENCH_PEER:-}" ] && [ -z "${ROSTER_BENCH_DATABASE_URL:-}" ]; then
  echo "bench: ROSTER_BENCH_PEER needs ROSTER_BENCH_DATABASE_URL (PostGraphile serves PostgreSQL)" >&2; exit 1
fi
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  else
    echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 1
  fi
fi
cargo build --release --quiet

json_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }

# A wrk script posting the given GraphQL documents in turn, printing one
# RESULT line: req/s, p50 ms, p99 ms, errors (socket errors and non-2xx).
# Each of wrk's threads starts at its own place in the list, so that a
# list of different documents (Q4, Q5) sends no document twice until the
# list wraps.
wrk_script() {
  local token=$1; shift
  {
    echo 'wrk.method = "POST"'
    echo 'wrk.headers["Content-Type"] = "application/json"'
    if [ -n "$token" ]; then echo "wrk.headers[\"Authorization\"] = \"Bearer $token\""; fi
    echo 'local bodies = {'
    printf '%s\0' "$@" | python3 -c 'import json,sys
for document in sys.stdin.read().split("\0")[:-1]: print("  " + json.dumps(json.dumps({"query": document})) + ",")'
    echo '}'
    echo 'local threads = 0'
    echo 'setup = function(thread) thread:set("start", threads); threads = threads + 1 end'
    echo 'local i = 0'
    echo 'init = function() i = (start or 0) * math.floor(#bodies / 2) end'
    echo 'request = function() i = i % #bodies + 1; return wrk.format(nil, nil, nil, bodies[i]) end'
    echo 'done = function(s, latency, r)'
    echo '  local e = s.errors.connect + s.errors.read + s.errors.write + s.errors.status + s.errors.timeout'
    echo '  io.write(string.format("RESULT %.0f %.2f %.2f %d\n", s.requests / (s.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000, e))'
    echo 'end'
  } > "$WORK/script.lua"
}

post() {  # token (may be empty), document: the reply's body
  local auth=()
  if [ -n "$1" ]; then auth=(-H "authorization: Bearer $1"); fi
  curl -s "${auth[@]}" -H 'content-type: application/json' \
    -d "$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$2")" "http://127.0.0.1:$PORT/graphql"
}

start_server() {  # database URL, then extra environment (NAME=VALUE ...)
  local url=$1; shift
  env ROSTER_LOG=warn "$@" "$SERVE_BIN" serve --bind "127.0.0.1:$PORT" --database-url "$url" >"$WORK/serve.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  TOKEN=$(curl -s -H 'content-type: application/json' \
    -d '{"query":"mutation { login(input: {username: \"admin\", password: \"roster-demo-password\"}) { accessToken } }"}' \
    "http://127.0.0.1:$PORT/graphql" | json_field '["data"]["login"]["accessToken"]')
}

stop_server() {
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

# SQL statements one request runs: on a server that logs each statement
# (ROSTER_LOG=roster::sql=trace), the lines one request adds: "first" for
# the document's first request (its count not cached yet, the token checked
# by the login's), "again" for the same document at once after it.
count_statements() {  # database URL
  local url=$1 label document before first again
  # Caches kept a minute here: "again" is the same document at once after,
  # however slowly the counting goes.
  # The webhook worker, idle, polls the outbox every second: off here, so
  # that only the request's statements are counted.
  start_server "$url" ROSTER_LOG=warn,roster::sql=trace ROSTER_CACHE_SECS=60 ROSTER_WEBHOOK_CONCURRENCY=0
  sleep 0.5  # on PostgreSQL the caches come on once the server listens
  for label in Q1 Q2 Q3 Q4 Q5; do
    case $label in
      Q1) document=$Q1 ;;
      Q2) document=$(q2 2) ;;
      Q3) document=$Q3 ;;
      Q4) document=$(q4 4821) ;;
      Q5) document=$(q2 4821) ;;
    esac
    before=$(grep -c 'statement: ' "$WORK/serve.log" || true)
    post "$TOKEN" "$document" >/dev/null
    first=$(( $(grep -c 'statement: ' "$WORK/serve.log" || true) - before ))
    before=$((before + first))
    post "$TOKEN" "$document" >/dev/null
    again=$(( $(grep -c 'statement: ' "$WORK/serve.log" || true) - before ))
    printf '| %-4s | %-10s | SQL statements per request: %s first, %s again |\n' "$label" "$DATABASE" "$first" "$again"
  done
  stop_server
}

measure() {  # label, then documents
  local label=$1; shift
  wrk_script "$TOKEN" "$@"
  # The documents must answer without GraphQL errors before they are timed
  # (of a long list, a few, so that the list's are not cached by then).
  local document
  for document in "${@:1:3}"; do
    local reply
    reply=$(post "$TOKEN" "$document")
    if echo "$reply" | grep -q '"errors"'; then echo "bench: $label answered with errors: $reply" >&2; exit 1; fi
  done
  wrk -t2 -c"$CONNECTIONS" -d"${WARMUP}s" --timeout 10s -s "$WORK/script.lua" "http://127.0.0.1:$PORT/graphql" >/dev/null
  local result
  result=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s "$WORK/script.lua" "http://127.0.0.1:$PORT/graphql" | grep '^RESULT')
  read -r _ rps p50 p99 errors <<< "$result"
  printf '| %-4s | %-10s | %9s | %8s | %8s | %6s |\n' "$label" "$DATABASE" "$rps" "$p50" "$p99" "$errors"
}

Q1='{ users(filter: {isActive: true, email: {icontains: "7"}}, orderBy: [{field: ID}], first: 50) { totalCount nodes { id username email division { name } groups { name } } } }'
Q3='{ __typename }'
q2() { echo "{ user(id: \"$1\") { id username email division { name } groups { name } } }"; }
q4() { echo "${Q1/icontains: \"7\"/icontains: \"$1\"}"; }
# Q4's 10,000 patterns and Q5's 20,000 ids, each list in one fixed
# shuffled order.
shuffled() { python3 -c 'import random,sys; v=sys.argv[1:]; random.Random(7).shuffle(v); print(" ".join(v))' "$@"; }
Q4_PATTERNS=$(shuffled $(seq -w 0 9999))

# The same three loads on PostGraphile 4, serving the data roster just
# served (schema roster_bench), without auth as in issue 7's peer figures.
# Installed from bench/peer's lock file (pinned, integrity-checked).
peer() {  # PostgreSQL URL
  local url=$1
  if [ ! -d "$WORK/node_modules/postgraphile" ]; then
    echo "bench: postgraphile: npm ci" >&2
    cp bench/peer/package.json bench/peer/package-lock.json "$WORK/"
    npm ci --prefix "$WORK" --ignore-scripts --no-audit --no-fund --loglevel=error >&2
  fi
  DATABASE=postgraphile
  node "$WORK/node_modules/postgraphile/cli.js" -c "$url" -s roster_bench \
    --append-plugins postgraphile-plugin-connection-filter \
    --host 127.0.0.1 --port "$PORT" --disable-query-log >"$WORK/peer.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do post "" '{ __typename }' 2>/dev/null | grep -q Query && break; sleep 0.1; done
  TOKEN=""
  measure_all "$PEER_Q1" peer_q2 peer_q4 "PostGraphile (one node process)"
}

PEER_NESTED='id username email divisionByDivisionId { name } userGroupsByUserId { nodes { groupByGroupId { name } } }'
PEER_Q1="{ allUsers(filter: {isActive: {equalTo: true}, email: {includesInsensitive: \"7\"}}, orderBy: ID_ASC, first: 50) { totalCount nodes { $PEER_NESTED } } }"
peer_q2() { echo "{ userById(id: \"$1\") { $PEER_NESTED } }"; }
peer_q4() { echo "${PEER_Q1/includesInsensitive: \"7\"/includesInsensitive: \"$1\"}"; }

# Q1, Q2 (ids rotating over a fixed set), Q3, Q4 and Q5 on the server
# started last, then its peak RSS; stops it.
measure_all() {  # Q1's document, the functions giving Q2's for an id and Q4's for a pattern, label of the server
  local q1=$1 q2_for=$2 q4_for=$3 label=$4 q2=() q4=() q5=() id pattern peak
  measure Q1 "$q1"
  for id in $(seq 2 97 $((USERS < 10000 ? USERS : 10000))); do
    q2+=("$("$q2_for" "$id")")
  done
  measure Q2 "${q2[@]}"
  measure Q3 "$Q3"
  local q4_template q5_template
  q4_template=$("$q4_for" @PATTERN@) q5_template=$("$q2_for" @ID@)
  for pattern in $Q4_PATTERNS; do q4+=("${q4_template/@PATTERN@/$pattern}"); done
  measure Q4 "${q4[@]}"
  for id in $(shuffled $(seq 2 $((USERS < 20001 ? USERS : 20001)))); do
    q5+=("${q5_template/@ID@/$id}")
  done
  measure Q5 "${q5[@]}"
  peak=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER_PID/status")
  printf '| peak RSS of %s: %s MiB |\n' "$label" "$peak"
  stop_server
}

run() {  # database label, database URL
  DATABASE=$1; local url=$2
  echo "bench: $DATABASE: demo-data --users $USERS" >&2
  ROSTER_LOG=warn "$BIN" demo-data --users "$USERS" --seed 1 --database-url "$url" >&2
  local round database=$DATABASE
  for round in $(seq 1 "$ROUNDS"); do
    DATABASE=$database SERVE_BIN=$BIN
    start_server "$url"
    measure_all "$Q1" q2 q4 "roster on $DATABASE"
    if [ -n "${ROSTER_BENCH_BASELINE:-}" ]; then
      DATABASE="$database base" SERVE_BIN=$ROSTER_BENCH_BASELINE
      start_server "$url"
      measure_all "$Q1" q2 q4 "the baseline on $database"
    fi
    if [ -n "${ROSTER_BENCH_PEER:-}" ] && [ "$database" = postgres ]; then
      peer "$ROSTER_BENCH_PEER_URL"
    fi
  done
  DATABASE=$database SERVE_BIN=$BIN
  count_statements "$url"
}

echo "| work | database   |     req/s | p50 (ms) | p99 (ms) | errors |"
echo "| ---- | ---------- | --------- | -------- | -------- | ------ |"
run sqlite "sqlite://$WORK/bench.db?mode=rwc"
if [ -n "${ROSTER_BENCH_DATABASE_URL:-}" ]; then
  psql "$ROSTER_BENCH_DATABASE_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS roster_bench CASCADE; CREATE SCHEMA roster_bench" >/dev/null
  separator='?'; case "$ROSTER_BENCH_DATABASE_URL" in *\?*) separator='&';; esac
  ROSTER_BENCH_PEER_URL=$ROSTER_BENCH_DATABASE_URL
  run postgres "${ROSTER_BENCH_DATABASE_URL}${separator}options=-c%20search_path%3Droster_bench"
  psql "$ROSTER_BENCH_DATABASE_URL" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS roster_bench CASCADE" >/dev/null
fi
echo "($CONNECTIONS connections, ${WARMUP} s warm-up, ${DURATION} s measured, $USERS users; roster with a staff token, PostGraphile without auth)"
