#!/usr/bin/env bash
# Installs PostgreSQL 15 from Debian for the PostgreSQL ledger tests. The tests run their own
# server (initdb + pg_ctl as the postgres user, on 127.0.0.1 and a private directory); the
# package's own cluster is kept from starting (policy-rc.d) and stopped if it started anyway.
# Idempotent and quiet: prints nothing when everything is already there.
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

[ -x /usr/lib/postgresql/15/bin/initdb ] && [ -x /usr/lib/postgresql/15/bin/pg_ctl ] && exit 0

quiet() {
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    echo "install-postgres: failed: $*" >&2
    return 1
  fi
}

quiet $sudo apt-get update -qq
remove_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  remove_policy=1
fi
quiet $sudo apt-get install -y -qq --no-install-recommends postgresql-15
if [ "$remove_policy" -eq 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
$sudo systemctl stop postgresql >/dev/null 2>&1 || true
$sudo pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
