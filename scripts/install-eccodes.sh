#!/bin/sh
# Installs the ecCodes command-line tools and table definitions (Debian/Ubuntu) used by the BUFR
# cross-check test, the benchmark and plugins/bufr/tables/generate.mjs. Idempotent and quiet.
set -eu
if command -v bufr_dump >/dev/null 2>&1 && [ -d /usr/share/eccodes/definitions/bufr ] && command -v /usr/bin/time >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends libeccodes-tools libeccodes-data time >/dev/null
