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
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends prometheus
echo "installed: $(promtool --version 2>&1 | head -n 1)"
