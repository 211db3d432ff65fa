#!/bin/sh
# What scripts/container-smoke.sh and scripts/compose-smoke.sh need: podman (with runc beside
# crun, netavark and aardvark-dns for compose's network names), mmdebstrap for the base layer
# built from Debian's packages, podman-compose and curl. Idempotent.
set -eu

pkgs="podman runc crun netavark aardvark-dns uidmap slirp4netns fuse-overlayfs mmdebstrap podman-compose curl"
missing=''
for p in $pkgs; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "container tools present: $(podman --version), $(mmdebstrap --version), podman-compose $(dpkg-query -W -f='${Version}' podman-compose)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing:$missing, and apt-get is not available; install them by hand" >&2
  exit 1
fi

SUDO=''
if [ "$(id -u)" -ne 0 ]; then SUDO='sudo'; fi
$SUDO apt-get update
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
echo "installed:$missing ($(podman --version))"
