#!/usr/bin/env bash
# Builds the base image from Debian packages when it is missing (no image registry is needed).
# A deployment that can pull images sets MODELFARM_BASE_IMAGE=python:3.11-slim instead.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
load_settings

image=$MODELFARM_BASE_IMAGE
if docker image inspect "$image" >/dev/null 2>&1; then
  log "base image $image is present"
  exit 0
fi
rootfs=$(mktemp -d "$DATA/rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
log "building base image $image with debootstrap (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$rootfs" >"$LOGS/debootstrap.log" 2>&1 || die "debootstrap failed: see $LOGS/debootstrap.log"
# Where HTTPS goes through an intercepting proxy, its CA is in the host bundle; pip inside builds
# needs it. On an ordinary machine this bundle is the same public CA set.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1' \
  --change 'CMD ["python3"]' - "$image" >/dev/null
log "base image $image is built"
