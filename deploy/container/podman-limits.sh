# Sourced by build.sh and scripts/container-smoke.sh. Where podman's default runtime cannot set
# its default rlimits (a host without CAP_SYS_RESOURCE: "setrlimit RLIMIT_NOFILE: Operation not
# permitted"), run containers with runc and limits below the host's instead, through a
# containers.conf of our own. Elsewhere nothing changes.
podman_limits() { # $1: an image that exists, $2: a scratch directory
  podman run --rm --network none --entrypoint /bin/true "$1" >/dev/null 2>&1 && return 0
  cat >"$2/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF="$2/containers.conf"
  podman run --rm --network none --entrypoint /bin/true "$1" >/dev/null || { echo "podman cannot run $1 here, not even with runc and lower limits" >&2; return 1; }
  echo "container: podman's default limits refused here: using runc with nofile=10000, nproc=4096"
}
