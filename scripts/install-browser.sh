#!/usr/bin/env bash
# Installs Debian's Chromium for the status-page browser tests (driven by playwright-core at
# /usr/bin/chromium; playwright never downloads a browser of its own). Fonts come with it so a
# screenshot has readable text. Idempotent and quiet.
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ "${#missing[@]}" -eq 0 ] && exit 0

quiet() {
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    echo "install-browser: failed: $*" >&2
    return 1
  fi
}

quiet $sudo apt-get update -qq
quiet $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
