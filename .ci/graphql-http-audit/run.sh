#!/usr/bin/env bash
# Runs the GraphQL-over-HTTP server audit (graphql-http, pinned in this
# folder's lock file) against a roster binary on a fresh SQLite database;
# fails on any audit that is not ok (error, warning or notice).
#   .ci/graphql-http-audit/run.sh [path/to/roster]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
roster="${1:-$here/../../target/debug/roster}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$here/audit.mjs" "$work/"
npm ci --prefix "$work" --ignore-scripts --no-audit --no-fund --loglevel=error
"$here/../with-fresh-roster.sh" "$roster" 18181 node "$work/audit.mjs"
