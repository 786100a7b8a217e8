#!/usr/bin/env bash
# What Prometheus metrics cost Q3 ({ __typename } with a superuser's
# token): two release processes on SQLite, ROSTER_METRICS off and on,
# loaded in turn with wrk (2 threads, 32 connections, 8 s a round, 4
# rounds); prints req/s and the process's CPU time per request for each.
#   bench/metrics_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=target/release/roster
W=$(mktemp -d)
trap 'kill $(cat "$W"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$W"' EXIT
PASSWORD='a long bench passphrase'
start() {  # name, port, settings...
  local name=$1 port=$2; shift 2
  local url="sqlite://$W/$name.db?mode=rwc"
  ROSTER_SUPERUSER_PASSWORD="$PASSWORD" $BIN create-superuser --username admin \
    --email admin@example.com --database-url "$url" >/dev/null
  env ROSTER_LOG=warn "$@" $BIN serve --bind "127.0.0.1:$port" --database-url "$url" \
    >"$W/$name.log" 2>&1 &
  echo $! >"$W/$name.pid"
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local token
  token=$(curl -s -H 'content-type: application/json' \
    -d "{\"query\":\"mutation { login(input: {username: \\\"admin\\\", password: \\\"$PASSWORD\\\"}) { accessToken } }\"}" \
    "http://127.0.0.1:$port/graphql" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["login"]["accessToken"])')
  cat >"$W/$name.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.body = '{"query":"{ __typename }"}'
LUA
}
start off 18901
start on 18902 ROSTER_METRICS=true
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for name in off on; do  # warm up
  port=$([ $name = off ] && echo 18901 || echo 18902)
  wrk -t2 -c32 -d3s -s "$W/$name.lua" "http://127.0.0.1:$port/graphql" >/dev/null
done
echo "| round | metrics | req/s | CPU µs per request |"
echo "| --- | --- | --- | --- |"
for round in 1 2 3 4; do
  for name in off on; do
    port=$([ $name = off ] && echo 18901 || echo 18902)
    pid=$(cat "$W/$name.pid")
    before=$(cpu "$pid")
    out=$(wrk -t2 -c32 -d8s -s "$W/$name.lua" "http://127.0.0.1:$port/graphql")
    after=$(cpu "$pid")
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rate=$(echo "$out" | awk '/^Requests\/sec/ {printf "%.0f", $2}')
    echo "| $round | $name | $rate | $(python3 -c "print(round(($after - $before) / $tick * 1e6 / $requests, 1))") |"
  done
done
