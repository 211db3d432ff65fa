#!/bin/sh
# Make `promtool` available for test/integration/prometheus.rules.test.ts (Debian's `prometheus`
# package ships it). Idempotent: does nothing when the tool is already on PATH.
set -eu

if command -v promtool >/dev/null 2>&1; then
  echo "promtool present: $(promtool --version 2>&1 | head -n 1)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool is missing and apt-get is not available; install Prometheus by hand" >&2
  exit 1
fi

SUDO=''
if [ "$(id -u)" -ne 0 ]; then SUDO='sudo'; fi

$SUDO apt-get update
# Only promtool is wanted: keep the package's Prometheus server from starting (policy-rc.d), and
# stop it where systemd started it anyway, so CI starts nothing it does not stop.
remove_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  remove_policy=1
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends prometheus
if [ "$remove_policy" -eq 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
$SUDO systemctl stop prometheus >/dev/null 2>&1 || true
echo "installed: $(promtool --version 2>&1 | head -n 1)"
