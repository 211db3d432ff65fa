#!/usr/bin/env bash
# The image as an operator runs it, under podman: a demo feed (the same image, `poller demo
# --serve-feed`), then `poller run` with a read-only root, state on a volume, the config mounted:
# files land, /healthz answers, SIGTERM ends it with exit code 0 within the drain time. Prints the
# time to /healthz and to stop. Builds the image first (deploy/container/build.sh, the base from
# Debian's packages when no registry has it) unless POLLER_IMAGE names one; needs podman,
# mmdebstrap and curl (scripts/install-container-tools.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version="$(node -p 'require("./package.json").version')"
image="${POLLER_IMAGE:-localhost/poller:$version}"
[ -n "${POLLER_IMAGE:-}" ] || POLLER_BASE_ROOTFS=1 deploy/container/build.sh "$image"
work="$(mktemp -d "${TMPDIR:-/tmp}/poller-container-XXXXXX")"
feed="poller-smoke-feed-$$"
poller="poller-smoke-$$"
cleanup() {
  podman rm -f -v -t 0 "$feed" "$poller" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=deploy/container/podman-limits.sh
. deploy/container/podman-limits.sh
podman_limits "$image" "$work"
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
ftp_port="$(free_port)"
http_port="$(free_port)"
password="smoke-$RANDOM$RANDOM"

mkdir -p "$work/state" "$work/feed" "$work/etc"
chown 10001:10001 "$work/state" "$work/feed"
cat >"$work/etc/poller.yaml" <<YAML
landing: /var/lib/poller/landing
ledger: /var/lib/poller/ledger.db
http: { host: 127.0.0.1, port: $http_port }
sources:
  - name: demo-radar
    url: ftp://demo@127.0.0.1:$ftp_port/
    password: \${POLLER_DEMO_PASSWORD}
    include: ["radar/**/*.bufr"]
    every: 2s
YAML

podman run -d --name "$feed" --network host -e POLLER_DEMO_PASSWORD="$password" \
  -v "$work/feed:/var/lib/poller" "$image" demo --serve-feed --port "$ftp_port" --cadence 5s --dir /var/lib/poller/demo >/dev/null
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$ftp_port") 2>/dev/null && break; sleep 0.2; done

t0=$(date +%s%N)
podman run -d --name "$poller" --network host --read-only --tmpfs /tmp \
  -e POLLER_DEMO_PASSWORD="$password" -e POLLER_HEALTH_URL="http://127.0.0.1:$http_port/healthz" \
  -v "$work/etc:/etc/poller:ro" -v "$work/state:/var/lib/poller" "$image" run --grace 10s >/dev/null
ok=
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || { podman logs "$poller" | tail -n 20 >&2; echo "container-smoke: /healthz never answered" >&2; exit 1; }
echo "container-smoke: /healthz answered $(( ($(date +%s%N) - t0) / 1000000 )) ms after podman run"

landed=0
for _ in $(seq 1 150); do
  landed=$(find "$work/state/landing/demo-radar" -name '*.bufr' 2>/dev/null | wc -l || true)
  [ "$landed" -gt 0 ] && break
  sleep 0.2
done
[ "$landed" -gt 0 ] || { podman logs "$poller" | tail -n 20 >&2; echo "container-smoke: nothing landed" >&2; exit 1; }
echo "container-smoke: $landed file(s) landed from the demo feed"
[ "$(podman exec "$poller" id -u)" = 10001 ] || { echo "container-smoke: not running as 10001" >&2; exit 1; }

# SIGHUP reaches poller through tini: the config (a second source added) is reloaded.
cat >>"$work/etc/poller.yaml" <<YAML
  - name: demo-radar-2
    url: ftp://demo@127.0.0.1:$ftp_port/
    password: \${POLLER_DEMO_PASSWORD}
    include: ["radar/**/*.bufr"]
    every: 5s
YAML
podman kill --signal HUP "$poller" >/dev/null
reloaded=
for _ in $(seq 1 100); do
  podman logs "$poller" 2>&1 | grep '"event":"config.reloaded"' | grep -q demo-radar-2 && { reloaded=1; break; }
  sleep 0.2
done
[ -n "$reloaded" ] || { podman logs "$poller" | tail -n 20 >&2; echo "container-smoke: SIGHUP did not reload" >&2; exit 1; }
echo "container-smoke: SIGHUP reloaded the config"
# The image's own HEALTHCHECK (node asks /healthz; no curl in the image).
podman healthcheck run "$poller" >/dev/null || { echo "container-smoke: HEALTHCHECK failed" >&2; exit 1; }
echo "container-smoke: HEALTHCHECK healthy"
podman image inspect "$image" --format 'container-smoke: image size {{.Size}} bytes'

t1=$(date +%s%N)
podman stop -t 30 "$poller" >/dev/null
code="$(podman inspect "$poller" --format '{{.State.ExitCode}}')"
echo "container-smoke: SIGTERM to exit in $(( ($(date +%s%N) - t1) / 1000000 )) ms, exit code $code"
[ "$code" = 0 ] || { podman logs "$poller" | tail -n 20 >&2; exit 1; }
podman logs "$poller" 2>&1 | grep -q '"event":"daemon.stopped"' || { echo "container-smoke: no daemon.stopped line" >&2; exit 1; }
echo "container-smoke: ok"
