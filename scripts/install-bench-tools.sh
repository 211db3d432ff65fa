#!/usr/bin/env bash
# Installs what `npm run bench` compares poller against: rclone, lftp, curl (and OpenSSH's sftp
# client), GNU time for CPU seconds and peak RSS, plus the real servers from
# install-test-servers.sh (vsftpd, sshd, pure-ftpd unpacked). Benchmarks only: CI does not run them.
# Idempotent and quiet: prints nothing when everything is already there.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo_root/scripts/install-test-servers.sh"

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
command -v lftp >/dev/null 2>&1 || missing+=(lftp)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v sftp >/dev/null 2>&1 || missing+=(openssh-client)
[ -x /usr/bin/time ] || missing+=(time)
[ "${#missing[@]}" -eq 0 ] && exit 0

# Runs a command silently; shows its output only when it fails.
quiet() {
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    echo "install-bench-tools: failed: $*" >&2
    return 1
  fi
}

quiet $sudo apt-get update -qq
quiet $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
