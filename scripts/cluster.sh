#!/usr/bin/env bash
# A small farm of several hosts on this one machine: each host is a Linux network namespace,
# joined to the others by a bridge, with processes (and, for worker hosts, a Docker engine) of
# its own. The hosts share only what a real farm's hosts share: PostgreSQL, Redis, the registry
# and S3, all on the services host. An image built on one host reaches another only through the
# registry.
#
#   scripts/cluster.sh up        build and start it (safe to run again, also after a crash)
#   scripts/cluster.sh down      stop and remove all of it: processes, engines, links, data
#   scripts/cluster.sh status    each host's processes, and the API's /health
#   scripts/cluster.sh kill H    host H dies: every process and container on it, at once
#   scripts/cluster.sh start H   host H boots again
#   scripts/cluster.sh cut H     host H's link goes down (a partition); `join H` heals it
#
# Addresses come from 198.18.0.0/15 (reserved for benchmark tests); no traffic leaves them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cluster_services.sh"
cd "$ROOT"

NET=198.18.0
BRIDGE=mf-br0
OPERATOR=$NET.254 # this machine's own address on the bridge: the tests' client
declare -A ADDRESS=([services]=$NET.1 [api]=$NET.2 [build1]=$NET.11 [build2]=$NET.12
  [infer1]=$NET.21 [infer2]=$NET.22)
HOSTS="services api build1 build2 infer1 infer2"
WORKER_HOSTS="build1 build2 infer1 infer2"
SERVICES=$NET.1
S3_PORT=8433 # SeaweedFS's ports: none of the local stack's (see cluster_services.sh)
S3_VOLUME_PORT=8180
S3_MASTER_PORT=9433
S3_FILER_PORT=8988
ENGINES=/run/modelfarm-cluster # engines' sockets and exec roots (short paths, on tmpfs)

namespace() { echo "mf-$1"; }
link() { echo "mfv-$1"; }
# The command prefix that runs a command inside a host. nsenter enters only the network
# namespace; `ip netns exec` would also remount /sys, hiding the cgroups an engine needs.
# With MODELFARM_CLUSTER_PIN_CPUS=true, each worker host also gets a core of its own, as a real
# host has CPUs of its own (its processes by affinity, its containers by their cgroup's cpuset).
inside() {
  local prefix core
  prefix="nsenter --net=/run/netns/$(namespace "$1")"
  core=$(core_of "$1")
  echo "$prefix${core:+ taskset -c $core}"
}
core_of() {
  [ "${MODELFARM_CLUSTER_PIN_CPUS:-false}" = true ] || return 0
  case $1 in
  build1 | infer1) echo 0 ;;
  build2 | infer2) echo $(($(nproc) > 1 ? 1 : 0)) ;;
  esac
}
engine_socket() { echo "$ENGINES/$1/docker.sock"; }
role_of() { case $1 in build*) echo build ;; infer*) echo inference ;; *) echo "$1" ;; esac; }

make_network() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr replace "$OPERATOR/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local host
  for host in $HOSTS; do
    ip netns list | grep -qw "$(namespace "$host")" || ip netns add "$(namespace "$host")"
    if ! ip link show "$(link "$host")" >/dev/null 2>&1; then
      ip link add "$(link "$host")" type veth peer name eth0 netns "$(namespace "$host")"
    fi
    ip link set "$(link "$host")" master "$BRIDGE" up
    $(inside "$host") ip addr replace "${ADDRESS[$host]}/24" dev eth0
    $(inside "$host") ip link set eth0 up
    $(inside "$host") ip link set lo up
  done
}

# The cluster's own secrets, made once per cluster.
make_secrets() {
  [ -f "$CL/secrets.env" ] && return 0
  mkdir -p "$CL"
  python - >"$CL/secrets.env" <<'PY'
import secrets
print(f"MODELFARM_JWT_SECRET={secrets.token_urlsafe(48)}")
print(f"MODELFARM_S3_ACCESS_KEY=cluster-{secrets.token_hex(6)}")
print(f"MODELFARM_S3_SECRET_KEY={secrets.token_urlsafe(32)}")
print(f"PG_PASSWORD={secrets.token_urlsafe(24)}")
print(f"REDIS_PASSWORD={secrets.token_hex(24)}")
PY
  chmod 600 "$CL/secrets.env"
}

# What every farm process of the cluster is told: where the shared services are.
farm_environment() {
  local host=$1
  # shellcheck disable=SC1091
  source "$CL/secrets.env"
  cat <<ENV
MODELFARM_DATA_DIR=$CL/hosts/$host
MODELFARM_CACHE_DIR=$CL/hosts/$host/cache
MODELFARM_DATABASE_URL=postgresql+psycopg://modelfarm:$PG_PASSWORD@$SERVICES:5432/modelfarm
MODELFARM_REDIS_URL=redis://:$REDIS_PASSWORD@$SERVICES:6379/0
MODELFARM_S3_ENDPOINT=$SERVICES:$S3_PORT
MODELFARM_S3_CAPACITY_URL=http://$SERVICES:$S3_VOLUME_PORT/status
MODELFARM_S3_ACCESS_KEY=$MODELFARM_S3_ACCESS_KEY
MODELFARM_S3_SECRET_KEY=$MODELFARM_S3_SECRET_KEY
MODELFARM_JWT_SECRET=$MODELFARM_JWT_SECRET
MODELFARM_REGISTRY=$SERVICES:5000
MODELFARM_REGISTRY_API_URL=http://$SERVICES:5000
MODELFARM_BASE_IMAGE=$SERVICES:5000/modelfarm/base:bookworm
MODELFARM_PIP_INDEX_URL=http://$SERVICES:8700/simple
PIP_TRUSTED_HOST=$SERVICES
MODELFARM_API_HOST=${ADDRESS[api]}
MODELFARM_HEALTH_CHECKS_DOCKER=false
MODELFARM_API_WORKERS=1
MODELFARM_MAX_PACKAGE_BYTES=$((64 * 1024 * 1024))
MODELFARM_REGISTRY_GC_INTERVAL_S=0
MODELFARM_INFERENCE_CONCURRENCY=2
MODELFARM_WARM_ENABLED=${MODELFARM_CLUSTER_WARM_ENABLED:-true}
MODELFARM_LEASE_TTL_S=${MODELFARM_CLUSTER_LEASE_TTL_S:-10}
MODELFARM_RECONCILE_INTERVAL_S=${MODELFARM_CLUSTER_RECONCILE_INTERVAL_S:-3}
MODELFARM_RECONCILE_QUEUED_S=${MODELFARM_CLUSTER_RECONCILE_QUEUED_S:-20}
MODELFARM_FARM_RETRY_WINDOW_S=${MODELFARM_CLUSTER_RETRY_WINDOW_S:-90}
DOCKER_HOST=unix://$(engine_socket "$host")
ENV
}

# farm_process HOST NAME SERVICE COMMAND...: a process of the farm on HOST, with its settings.
farm_process() {
  local host=$1 name=$2 service=$3
  shift 3
  mkdir -p "$CL/hosts/$host"
  farm_environment "$host" >"$CL/hosts/$host/env"
  start_service "$host-$name" $(inside "$host") \
    env $(cat "$CL/hosts/$host/env") MODELFARM_SERVICE="$service" "$@"
}

# A worker host's own Docker engine: own data, exec root, socket, and cgroup (so that its death
# can take its containers along). It pushes to and pulls from the services host's registry.
start_engine() {
  local host=$1 socket
  socket=$(engine_socket "$host")
  mkdir -p "$ENGINES/$host" "$CL/hosts/$host/docker"
  echo '{}' >"$CL/hosts/$host/daemon.json"
  local core cpuset=/sys/fs/cgroup/cpuset/$(namespace "$host")
  core=$(core_of "$host")
  if [ -n "$core" ]; then # the engine's containers go under this cgroup (--cgroup-parent)
    mkdir -p "$cpuset"
    echo "$core" >"$cpuset/cpuset.cpus"
    cat /sys/fs/cgroup/cpuset/cpuset.mems >"$cpuset/cpuset.mems"
  fi
  # An engine not running leaves no pid files behind (after a kill or a crash): a killed
  # containerd may linger as a zombie for a while, which the engine would take for a live one of
  # its own and wait for.
  pid_alive "$host-dockerd" ||
    rm -f "$ENGINES/$host/docker.pid" "$ENGINES/$host/exec/containerd/containerd.pid"
  start_service "$host-dockerd" $(inside "$host") dockerd \
    --config-file "$CL/hosts/$host/daemon.json" --data-root "$CL/hosts/$host/docker" \
    --exec-root "$ENGINES/$host/exec" --pidfile "$ENGINES/$host/docker.pid" \
    -H "unix://$socket" --bridge=none --iptables=false --ip-masq=false \
    --insecure-registry "$SERVICES:5000" --cgroup-parent "$(namespace "$host")"
  wait_until 60 "Docker engine of $host" docker -H "unix://$socket" info ||
    die "the engine of $host did not start; see $LOGS/$host-dockerd.log"
}

# The base image reaches the cluster as a production base would: from a registry.
push_base_image() {
  local socket base="$SERVICES:5000/modelfarm/base:bookworm"
  curl -fsS "http://$SERVICES:5000/v2/modelfarm/base/manifests/bookworm" \
    -H "Accept: application/vnd.docker.distribution.manifest.v2+json" >/dev/null 2>&1 && return 0
  socket=$(engine_socket build1)
  docker save "$MODELFARM_BASE_IMAGE" | docker -H "unix://$socket" load >/dev/null
  docker -H "unix://$socket" tag "$MODELFARM_BASE_IMAGE" "$base"
  docker -H "unix://$socket" push "$base" >/dev/null
  docker -H "unix://$socket" rmi "$base" "$MODELFARM_BASE_IMAGE" >/dev/null
  log "pushed the base image to the cluster's registry as $base"
}

start_host() {
  local host=$1
  case $(role_of "$host") in
  api)
    farm_process api migrate migrate alembic upgrade head
    poll 60 pid_gone api-migrate || die "migrations did not finish"
    farm_process api api api uvicorn api.main:app --host "${ADDRESS[api]}" --port 8000 \
      --no-proxy-headers --no-access-log
    farm_process api reconciler reconciler celery -A workers.celery_app worker \
      -Q control,webhooks -n control@api --pool threads --concurrency 4 --beat \
      --schedule "$CL/hosts/api/beat-schedule" --loglevel INFO
    ;;
  build)
    start_engine "$host"
    farm_process "$host" worker build-worker celery -A workers.celery_app worker -Q build \
      -n "build@$host" --concurrency 1 --loglevel INFO
    ;;
  inference)
    start_engine "$host"
    farm_process "$host" worker inference-worker celery -A workers.celery_app worker \
      -Q inference -n "inference@$host" --pool threads --concurrency 2 --loglevel INFO
    ;;
  esac
}

up() {
  mkdir -p "$RUN" "$LOGS"
  (RUN="$DATA/run" LOGS="$DATA/logs" ensure_dockerd) # holds the base image
  "$ROOT/scripts/make_base_image.sh"
  make_network
  make_secrets
  start_services
  local host
  for host in $HOSTS; do [ "$host" = services ] || start_host "$host"; done
  push_base_image
  wait_until 90 "the cluster's API" curl -fsS "http://${ADDRESS[api]}:8000/health" ||
    die "the cluster's API is not healthy; see $LOGS/api-api.log"
  log "cluster is up: API http://${ADDRESS[api]}:8000, services on $SERVICES, data in $CL"
}

# kill_host HOST: every process in the host's namespace and every container of its engine.
kill_host() {
  local host=$1 pids
  pids=$(ip netns pids "$(namespace "$host")" 2>/dev/null || true)
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  local procs
  for procs in /sys/fs/cgroup/pids/"$(namespace "$host")"/*/cgroup.procs; do
    [ -f "$procs" ] && xargs -r kill -KILL <"$procs" 2>/dev/null || true
  done
  rm -f "$RUN/$host"-*.pid "$RUN/$host"-*.since
  log "killed every process of $host"
}

down() {
  local host
  for host in $WORKER_HOSTS; do
    docker -H "unix://$(engine_socket "$host")" ps -aq 2>/dev/null |
      xargs -r docker -H "unix://$(engine_socket "$host")" rm -f >/dev/null 2>&1 || true
  done
  for host in $HOSTS; do
    ip netns list | grep -qw "$(namespace "$host")" && kill_host "$host"
  done
  # Engines' mounts (overlay layers, the exec roots' namespaces) go before their folders.
  { grep -E " ($CL|$ENGINES)/" /proc/mounts || true; } | awk '{print $2}' | sort -r |
    xargs -r -n1 umount -l
  for host in $HOSTS; do
    ip link del "$(link "$host")" 2>/dev/null || true
    ip netns del "$(namespace "$host")" 2>/dev/null || true
    local group
    for group in /sys/fs/cgroup/*/"$(namespace "$host")"; do
      [ -d "$group" ] && find "$group" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  # SeaweedFS's local sockets, named by the cluster's ports (see cluster_services.sh).
  rm -f /tmp/seaweedfs-*-{,1}{$S3_MASTER_PORT,$S3_VOLUME_PORT,$S3_FILER_PORT,$S3_PORT}.sock
  rm -rf "$CL" "$ENGINES"
  log "cluster is down and removed"
}

status() {
  local host name
  for host in $HOSTS; do
    for name in "$RUN/$host"-*.pid; do
      [ -f "$name" ] || continue
      name=$(basename "$name" .pid)
      pid_alive "$name" && echo "$name: running (pid $(cat "$RUN/$name.pid"))" ||
        echo "$name: stopped"
    done
  done
  curl -sS "http://${ADDRESS[api]}:8000/health" && echo || echo "API: not answering"
}

host_argument() {
  [ -n "${ADDRESS[${1:-}]:-}" ] || die "no such host: ${1:-} (hosts: $HOSTS)"
}

load_settings # the one-machine stack's: the cluster's base image comes from its engine
CL="$DATA/cluster"
RUN="$CL/run"
LOGS="$CL/logs"
case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
kill) host_argument "${2:-}" && kill_host "$2" ;;
start) host_argument "${2:-}" && mkdir -p "$RUN" && start_host "$2" ;;
cut) host_argument "${2:-}" && ip link set "$(link "$2")" down && log "cut $2 off" ;;
join) host_argument "${2:-}" && ip link set "$(link "$2")" up && log "joined $2 again" ;;
*) die "usage: scripts/cluster.sh up|down|status|kill HOST|start HOST|cut HOST|join HOST" ;;
esac
