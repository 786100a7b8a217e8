#!/usr/bin/env bash
# Runs apq.mjs (Apollo Client 3 and its persisted-query link, pinned in this
# folder's lock file) against a roster binary on a fresh SQLite database.
#   tests/apollo-client/run.sh [path/to/roster]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
roster="${1:-$here/../../target/debug/roster}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$here/apq.mjs" "$work/"
npm ci --prefix "$work" --ignore-scripts --no-audit --no-fund --loglevel=error
"$here/../../.ci/with-fresh-roster.sh" "$roster" 18182 node "$work/apq.mjs"
