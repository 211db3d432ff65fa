#!/usr/bin/env bash
# Installs the web servers the HTTP source tests and the HTTP benchmark run against: nginx
# (nginx-light: autoindex in HTML and JSON), Apache httpd (apache2: mod_autoindex, fancy and plain),
# lighttpd (mod_dirlisting), python3 (http.server)
# and wget (a peer in `npm run bench`). The tests start their own instances on 127.0.0.1; the
# packages' services are kept from starting. Idempotent and quiet.
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

missing=()
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -x /usr/sbin/apache2 ] || missing+=(apache2)
[ -x /usr/sbin/lighttpd ] || missing+=(lighttpd)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v wget >/dev/null 2>&1 || missing+=(wget)
[ "${#missing[@]}" -eq 0 ] && exit 0

quiet() {
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    echo "install-http-servers: failed: $*" >&2
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
quiet $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [ "$remove_policy" -eq 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
