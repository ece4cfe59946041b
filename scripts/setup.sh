#!/usr/bin/env bash
# Idempotent setup of a fresh machine: system packages, the project's .venv, and the base image.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

install_system_packages() {
  local missing=() pair
  for pair in dockerd:docker.io docker-registry:docker-registry redis-server:redis-server \
    pg_ctlcluster:postgresql debootstrap:debootstrap jq:jq curl:curl docker-compose:docker-compose \
    tmux:tmux wrk:wrk runsc:runsc node:nodejs npm:npm chromium:chromium \
    chromedriver:chromium-driver; do
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

# The browser assets the API serves (/docs' Swagger UI, the web UI's htmx), from the npm
# registry at the versions web/package-lock.json records; their install scripts never run.
install_web_assets() {
  local stamp=web/node_modules/.modelfarm-lock.sha256 digest
  digest=$(sha256sum web/package-lock.json | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ] && return 0
  log "installing the web assets (npm ci)"
  npm ci --prefix web --ignore-scripts --no-audit --no-fund >/dev/null || die "npm ci failed"
  echo "$digest" >"$stamp"
}

# gVisor as a Docker runtime (MODELFARM_SANDBOX_RUNTIME=runsc, or a model's `runtime: runsc`):
# ptrace is the platform this kernel offers, and its network is none (sandboxes have none).
register_gvisor() {
  local config=/etc/docker/daemon.json current
  current=$(cat "$config" 2>/dev/null || echo '{}')
  if [ "$(jq -r '.runtimes.runsc.path // empty' <<<"$current")" != /usr/bin/runsc ]; then
    mkdir -p /etc/docker
    jq '.runtimes.runsc = {"path": "/usr/bin/runsc",
                           "runtimeArgs": ["--platform=ptrace", "--network=none"]}' \
      <<<"$current" >"$config.tmp" && mv "$config.tmp" "$config"
    log "registered gVisor (runsc) in $config"
  fi
  if docker_ready && ! docker info --format '{{json .Runtimes}}' | jq -e .runsc >/dev/null; then
    pkill -HUP -x dockerd  # the engine reads its runtimes again, without a restart
    wait_until 30 "runsc registered with the engine" \
      sh -c "docker info --format '{{json .Runtimes}}' | jq -e .runsc"
  fi
}

install_system_packages
install_python_environment
install_web_assets
load_settings
register_gvisor
ensure_dockerd
"$ROOT/scripts/make_base_image.sh"
log "setup done"
