#!/usr/bin/env bash
# The package as an operator gets it: `npm pack`, then `npm install -g` of the tarball into a
# temporary prefix (as on a fresh host), then the installed `poller` on the PATH: --version, the
# demo (an embedded FTP server, one cycle, plugins), and `poller status` on the demo's ledger.
# Uses whatever `node` is first on the PATH. Prints the time of each step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

work="$(mktemp -d "${TMPDIR:-/tmp}/poller-pack-XXXXXX")"
trap 'rm -rf "$work"' EXIT
step() {
  local name="$1"
  shift
  local t0=$SECONDS
  "$@"
  echo "package-smoke: $name: $((SECONDS - t0)) s ($(node --version))"
}

# `prepack` builds dist/ first.
pack() { npm pack --silent --pack-destination "$work" >"$work/pack.out"; }
step pack pack
tarball="$work/$(tail -n 1 "$work/pack.out")"
echo "package-smoke: $(basename "$tarball"), $(du -k "$tarball" | cut -f1) KiB"

# No prebuilt addon download is tried (CI reaches the npm registry only): better-sqlite3 builds
# from source against the running Node's headers, as it does where no prebuilt binary exists.
export npm_config_build_from_source="${npm_config_build_from_source:-true}"
install() { npm install -g --prefix "$work/prefix" --no-audit --no-fund --loglevel=error "$tarball" >/dev/null; }
step "npm install -g" install
export PATH="$work/prefix/bin:$PATH"
[ "$(command -v poller)" = "$work/prefix/bin/poller" ] || { echo "package-smoke: poller is not on the PATH" >&2; exit 1; }

want="$(node -p 'require("./package.json").version')"
got="$(poller --version)"
[ "$got" = "$want" ] || { echo "package-smoke: poller --version says $got, expected $want" >&2; exit 1; }

demo() {
  # The hints name the installed command, not the checkout's `node bin/poller.js`.
  (cd "$work" && poller demo --dir "$work/hints" >"$work/hints.out")
  grep -q '^  poller status --config' "$work/hints.out" || { echo "package-smoke: demo hints do not name poller: $(tail -n 8 "$work/hints.out")" >&2; exit 1; }
  if grep -q 'node bin/poller.js' "$work/hints.out"; then echo "package-smoke: demo hints name node bin/poller.js" >&2; exit 1; fi
  (cd "$work" && poller demo --dir "$work/demo" --json >"$work/demo.json")
  node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const fetched = s.fetched ?? s.totals?.fetched ?? s.sources?.[0]?.fetched;
    if (!(fetched > 0)) { console.error("package-smoke: the demo fetched nothing:", JSON.stringify(s).slice(0, 400)); process.exit(1); }
    console.log(`package-smoke: demo fetched ${fetched} file(s)`);
  ' "$work/demo.json"
}
step demo demo
status() { POLLER_DEMO_PASSWORD=unused poller status --config "$work/demo/poller.yaml" --json >"$work/status.json"; }
step status status
echo "package-smoke: installed size $(du -sk "$work/prefix/lib/node_modules/poller" | cut -f1) KiB"

# The lean install: without the optional ftp-srv (only `poller demo` needs it). `npm install -g`
# ignores --omit (npm/cli#8284), so into a directory of its own, as the container image does.
lean() { npm install --prefix "$work/lean" --omit=optional --no-audit --no-fund --loglevel=error "$tarball" >/dev/null; }
step "npm install --omit=optional" lean
[ ! -e "$work/lean/node_modules/ftp-srv" ] || { echo "package-smoke: --omit=optional still installed ftp-srv" >&2; exit 1; }
"$work/lean/node_modules/.bin/poller" --version >/dev/null
code=0
(cd "$work" && "$work/lean/node_modules/.bin/poller" demo --dir "$work/lean-demo" >/dev/null 2>"$work/lean-demo.err") || code=$?
[ "$code" = 2 ] && grep -q 'poller demo needs the optional package ftp-srv' "$work/lean-demo.err" || {
  echo "package-smoke: the lean poller demo exited $code: $(head -c 400 "$work/lean-demo.err")" >&2
  exit 1
}
echo "package-smoke: lean install $(du -sk "$work/lean/node_modules" | cut -f1) KiB, without ftp-srv; poller demo says so and exits 2"
echo "package-smoke: ok"
