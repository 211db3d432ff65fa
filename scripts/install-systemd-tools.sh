#!/bin/sh
# Make `systemd-analyze` available for test/integration/systemd.verify.test.ts (CI on Debian or
# Ubuntu). Idempotent: does nothing when the tool is already on PATH.
set -eu

if command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd-analyze present: $(systemd-analyze --version | head -n 1)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "systemd-analyze is missing and apt-get is not available; install systemd by hand" >&2
  exit 1
fi

SUDO=''
if [ "$(id -u)" -ne 0 ]; then SUDO='sudo'; fi

$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends systemd
echo "installed: $(systemd-analyze --version | head -n 1)"
