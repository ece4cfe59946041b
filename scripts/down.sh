#!/usr/bin/env bash
# Stops what up.sh (and setup.sh) started, by their pid files, and nothing else.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
load_settings

stop_service() {
  local name=$1 pidfile="$RUN/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    log "stopped $name"
  fi
  rm -f "$pidfile"
}

for name in api build-worker inference-worker seaweedfs registry redis dockerd; do
  stop_service "$name"
done
if [ -f "$RUN/postgresql.started" ]; then
  read -r version cluster <"$RUN/postgresql.started"
  pg_ctlcluster "$version" "$cluster" stop && log "stopped PostgreSQL $version/$cluster"
  rm -f "$RUN/postgresql.started"
fi
