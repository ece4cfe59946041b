#!/usr/bin/env bash
# Idempotent setup of a fresh machine: system packages, the project's .venv, and the base image.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

install_system_packages() {
  local missing=() pair
  for pair in dockerd:docker.io docker-registry:docker-registry redis-server:redis-server \
    pg_ctlcluster:postgresql debootstrap:debootstrap jq:jq curl:curl docker-compose:docker-compose \
    tmux:tmux wrk:wrk; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_python_environment() {
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  # Reinstall only when the dependency list changed since the last install.
  local stamp="$VENV/.modelfarm-pyproject.sha256" digest
  digest=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    log "installing the project into .venv"
    "$VENV/bin/pip" install -q -e '.[dev,stack,examples]' >"$VENV/pip-install.log" 2>&1 ||
      { tail -20 "$VENV/pip-install.log"; die "pip install failed"; }
    echo "$digest" >"$stamp"
  fi
}

install_system_packages
install_python_environment
load_settings
ensure_dockerd
"$ROOT/scripts/make_base_image.sh"
log "setup done"
