#!/usr/bin/env bash
# Stops what up.sh (and setup.sh) started, by their pid files, and nothing else.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
load_settings

# scripts/down.sh [NAME...]: stops the named services only (e.g. `down.sh seaweedfs`), else all.
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(api build-worker inference-worker reconciler seaweedfs seaweedfs-master registry redis dockerd)
for name in "${names[@]}"; do
  stop_service "$name"
done
if [ $# -eq 0 ] && [ -f "$RUN/postgresql.started" ]; then
  read -r version cluster <"$RUN/postgresql.started"
  pg_ctlcluster "$version" "$cluster" stop && log "stopped PostgreSQL $version/$cluster"
  rm -f "$RUN/postgresql.started"
fi
