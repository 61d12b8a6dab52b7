#!/bin/sh
# A Debian bookworm base image for building deploy/Dockerfile without a registry: debootstrap
# from Debian's own mirror (minbase + python3 + python3-venv + CA certificates), imported into
# podman as localhost/wopibridge-base:bookworm. Kept in .cache/ (git-ignored); a second run
# only re-imports it when podman lost it.
# Usage: sh tests/ops/image_base.sh [CACHE_DIR]
set -eu
cache=${1:-$(cd "$(dirname "$0")/../.." && pwd)/.cache/image-base}
tag=localhost/wopibridge-base:bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if podman image exists "$tag"; then
    exit 0
fi
if [ ! -f "$cache/rootfs.tar" ]; then
    rm -rf "$cache/rootfs"
    mkdir -p "$cache"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$cache/rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1
    rm -rf "$cache/rootfs/var/cache/apt/archives/"*.deb "$cache/rootfs/var/lib/apt/lists/"*
    tar -C "$cache/rootfs" -cf "$cache/rootfs.tar.part" .
    mv "$cache/rootfs.tar.part" "$cache/rootfs.tar"
    rm -rf "$cache/rootfs"
fi
podman import --change 'CMD ["/bin/sh"]' "$cache/rootfs.tar" "$tag" >/dev/null
