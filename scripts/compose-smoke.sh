#!/usr/bin/env bash
# deploy/compose/compose.yaml as someone evaluating it runs it, under podman-compose: two pollers
# on one PostgreSQL ledger, the demo feed, mosquitto. Checks that both answer /healthz, both
# beat in the shared ledger, files land once, and CloudEvents reach mosquitto; then takes it all
# down with its volumes. Needs the poller image (deploy/container/build.sh, or POLLER_IMAGE
# already built) and podman-compose (scripts/install-container-tools.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version="$(node -p 'require("./package.json").version')"
podman image exists "localhost/poller:$version" || POLLER_BASE_ROOTFS=1 deploy/container/build.sh
work="$(mktemp -d "${TMPDIR:-/tmp}/poller-compose-XXXXXX")"
# shellcheck source=deploy/container/podman-limits.sh
. deploy/container/podman-limits.sh
podman_limits "localhost/poller:$version" "$work"
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
export POLLER_PORT_1="$(free_port)" POLLER_PORT_2="$(free_port)"
compose=(podman-compose -p "poller-smoke-$$" -f deploy/compose/compose.yaml)
cleanup() {
  "${compose[@]}" down -v >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

t0=$SECONDS
"${compose[@]}" build >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
echo "compose-smoke: PostgreSQL and mosquitto images built: $((SECONDS - t0)) s"
t0=$SECONDS
"${compose[@]}" up -d >"$work/up.log" 2>&1 || { tail -n 30 "$work/up.log" >&2; exit 1; }

for port in "$POLLER_PORT_1" "$POLLER_PORT_2"; do
  ok=
  for _ in $(seq 1 600); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && { ok=1; break; }; sleep 0.2; done
  [ -n "$ok" ] || { "${compose[@]}" logs >&2 2>&1 | tail -n 40; echo "compose-smoke: :$port/healthz never answered" >&2; exit 1; }
done
echo "compose-smoke: both pollers answer /healthz: $((SECONDS - t0)) s after up"

# Both instances beat in the shared ledger, and files of the feed land.
metric() { curl -fsS "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { print $2 }'; }
for _ in $(seq 1 300); do
  live="$(metric "$POLLER_PORT_1" poller_ledger_instances_live || true)"
  [ "${live:-0}" = 2 ] && break
  sleep 0.5
done
[ "${live:-0}" = 2 ] || { echo "compose-smoke: $live instance(s) live in the shared ledger, want 2" >&2; exit 1; }
echo "compose-smoke: 2 instances live in the shared ledger"

fetched=0
for _ in $(seq 1 300); do
  a="$(curl -fsS "http://127.0.0.1:$POLLER_PORT_1/api/status" | node -e 'let t="";process.stdin.on("data",d=>t+=d).on("end",()=>{const s=JSON.parse(t).sources.find(x=>x.name==="demo-radar");console.log((s&&s.files&&((s.files.processed||0)+(s.files.fetched||0)))||0)})')"
  fetched="$a"
  [ "$fetched" -gt 0 ] && break
  sleep 0.5
done
[ "$fetched" -gt 0 ] || { "${compose[@]}" logs 2>&1 | tail -n 40 >&2; echo "compose-smoke: nothing landed" >&2; exit 1; }
echo "compose-smoke: $fetched file(s) landed on the shared ledger"

# The events: a CloudEvent of a processed file on mosquitto.
event="$(podman exec "poller-smoke-$$_mosquitto_1" mosquitto_sub -h 127.0.0.1 -t 'poller/#' -C 1 -W 120 -v || true)"
[ -n "$event" ] || { echo "compose-smoke: no event on mosquitto within 120 s" >&2; exit 1; }
echo "compose-smoke: mosquitto got ${event%% *}"

# Neither instance calls a radar late while the other fetches it (the shared ledger is read).
for port in "$POLLER_PORT_1" "$POLLER_PORT_2"; do
  late="$(metric "$port" poller_product_late | sort -u | tr '\n' ' ')"
  [ "$late" = "0 " ] || { echo "compose-smoke: poller_product_late on :$port is $late, want 0 for both radars" >&2; exit 1; }
done
# One radar off the air: a `late` CloudEvent for it on mosquitto (cadence 30 s + grace 30 s).
podman exec "poller-smoke-$$_mosquitto_1" mosquitto_sub -h 127.0.0.1 -t 'poller/demo/demo-radar/late' -C 1 -W 240 \
  >"$work/late.json" &
sub=$!
sleep 1
podman exec "poller-smoke-$$_feed_1" touch /var/lib/poller/demo/remote/radar/ARPAR/OFFLINE
t0=$SECONDS
wait "$sub" || true
node -e '
  const e = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  if (e.type !== "org.poller.product.late" || e.subject !== "ARPAR") { console.error("compose-smoke: late event:", JSON.stringify(e)); process.exit(1); }
' "$work/late.json" || { echo "compose-smoke: no late event for ARPAR on mosquitto" >&2; exit 1; }
echo "compose-smoke: late CloudEvent for ARPAR on mosquitto $((SECONDS - t0)) s after it went off the air"
echo "compose-smoke: ok"
