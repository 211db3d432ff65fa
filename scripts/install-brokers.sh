#!/usr/bin/env bash
# Installs the message brokers the events tests run against, from Debian: mosquitto (and its
# clients, for the README's mosquitto_sub example), nats-server (JetStream) and rabbitmq-server.
# The tests start their own instances on 127.0.0.1; the packages' services are kept from
# starting (policy-rc.d), and any that a package started anyway is stopped again.
# Idempotent and quiet: prints nothing when everything is already there.
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

missing=()
[ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
[ -x /usr/sbin/nats-server ] || missing+=(nats-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
[ "${#missing[@]}" -eq 0 ] && exit 0

quiet() {
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    echo "install-brokers: failed: $*" >&2
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
# rabbitmq's package starts epmd through systemd socket activation on some machines: stop what
# the install left running, so CI starts nothing it does not stop.
for unit in rabbitmq-server mosquitto nats-server epmd.socket epmd; do
  $sudo systemctl stop "$unit" >/dev/null 2>&1 || true
done
