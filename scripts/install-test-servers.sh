#!/usr/bin/env bash
# Installs the real servers that test/integration/*.real-servers.test.ts run against:
# vsftpd and sshd from Debian, squid and dante-server (the proxy tests), openssl for throwaway
# certificates, GNU time for benchmarks, and pure-ftpd unpacked (not installed: it conflicts with vsftpd) into .cache/servers/pure-ftpd.
# Idempotent and quiet: prints nothing when everything is already there.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$repo_root/.cache/servers"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

missing=()
[ -x /usr/sbin/vsftpd ] || missing+=(vsftpd)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/time ] || missing+=(time)
# Proxies the proxy tests go through: squid (HTTP CONNECT) and dante-server (SOCKS5).
[ -x /usr/sbin/squid ] || missing+=(squid)
[ -x /usr/sbin/danted ] || missing+=(dante-server)

# Runs a command silently; shows its output only when it fails.
quiet() {
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    echo "install-test-servers: failed: $*" >&2
    return 1
  fi
}

updated=0
apt_update() {
  if [ "$updated" -eq 0 ]; then
    quiet $sudo apt-get update -qq
    updated=1
  fi
}

if [ "${#missing[@]}" -gt 0 ]; then
  apt_update
  # policy-rc.d keeps the packages' services from starting: the tests run their own instances.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    remove_policy=1
  fi
  quiet $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ "${remove_policy:-0}" -eq 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
  # Where systemd started a packaged service anyway, stop it: CI starts nothing it does not stop.
  for unit in vsftpd ssh squid danted; do
    $sudo systemctl stop "$unit" >/dev/null 2>&1 || true
  done
fi

if [ ! -x "$cache/pure-ftpd/usr/sbin/pure-ftpd" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  chmod 0777 "$work" # apt's download sandbox user must be able to write here
  if ! (cd "$work" && apt-get download -qq pure-ftpd >/dev/null 2>&1); then
    apt_update
    (cd "$work" && apt-get download -qq pure-ftpd >/dev/null 2>&1)
  fi
  mkdir -p "$cache/pure-ftpd"
  quiet dpkg -x "$work"/pure-ftpd_*.deb "$cache/pure-ftpd"
fi
