#!/usr/bin/env bash
# Starts the local stack, each part only if it is not running yet, and waits for /health.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
load_settings

host_of() { echo "${1%:*}"; }
port_of() { echo "${1##*:}"; }
MASTER_PORT=9333 # the object store's master (SeaweedFS's default; in MODELFARM_S3_SERVER_PORTS)

start_registry() {
  local config="$DATA/registry/config.yml"
  mkdir -p "$DATA/registry/data"
  registry_config "$DATA/registry/data" "$MODELFARM_REGISTRY" >"$config"
  registry_ready() { curl -fsS "http://$MODELFARM_REGISTRY/v2/"; }
  if ! pid_alive registry && registry_ready >/dev/null 2>&1; then
    log "a registry already answers on $MODELFARM_REGISTRY"
    return 0
  fi
  # Ours: the build worker shares its storage and puts layers there at the speed of the disk,
  # not through its HTTP API (workers/build/blobs.py).
  MODELFARM_REGISTRY_STORAGE_DIR=${MODELFARM_REGISTRY_STORAGE_DIR:-$DATA/registry/data}
  start_service registry docker-registry serve "$config"
  wait_until 30 "registry on $MODELFARM_REGISTRY" registry_ready || die "registry did not start"
}

# The store's capacity: MODELFARM_S3_STORE_MB, or half the free space of the data disk; it must
# hold at least four packages and four inputs at their limits. Prints "volume-MB volume-count".
store_layout() {
  local mb=$MODELFARM_S3_STORE_MB volume_mb needed
  [ "$mb" -gt 0 ] || mb=$(($(df -Pm "$DATA" | awk 'NR == 2 {print $4}') / 2))
  needed=$(((MODELFARM_MAX_PACKAGE_BYTES + MODELFARM_MAX_INPUT_BYTES) * 4 / 1048576))
  [ "$mb" -ge "$needed" ] ||
    die "object storage of $mb MB cannot hold four uploads at the limits ($needed MB): free disk space, set MODELFARM_S3_STORE_MB or lower MODELFARM_MAX_PACKAGE_BYTES"
  volume_mb=$((mb >= 16384 ? 1024 : mb / 16))
  echo "$volume_mb $((mb / volume_mb))"
}

start_object_store() {
  local dir="$DATA/seaweedfs" endpoint=$MODELFARM_S3_ENDPOINT host volume_mb volumes
  host=$(host_of "$endpoint")
  mkdir -p "$dir/data"
  s3_identities "$MODELFARM_S3_ACCESS_KEY" "$MODELFARM_S3_SECRET_KEY" >"$dir/s3.json"
  s3_ready() { curl -sS -o /dev/null "http://$endpoint/"; }
  if ! pid_alive seaweedfs && s3_ready >/dev/null 2>&1; then
    log "an S3 server already answers on $endpoint"
    return 0
  fi
  read -r volume_mb volumes < <(store_layout)
  # The filer answers gRPC only (the S3 gateway's way): its HTTP port, which read and moved any
  # object unsigned, answers nothing; nor do the Iceberg and Lance catalogs, unused here.
  start_seaweedfs seaweedfs "$dir" "$host" "$MASTER_PORT" "$volume_mb" -volume.max="$volumes" \
    -s3 -s3.port="$(port_of "$endpoint")" -s3.config="$dir/s3.json" -filer.disableHttp \
    -s3.port.iceberg=0 -s3.port.lance=0
  wait_until 60 "S3 (SeaweedFS) on $endpoint" s3_ready || die "SeaweedFS did not start"
}

start_redis() {
  local url=${MODELFARM_REDIS_URL#redis://}
  local address=${url%%/*}
  redis_ready() { redis-cli -h "$(host_of "$address")" -p "$(port_of "$address")" ping 2>/dev/null | grep -q PONG; }
  if ! pid_alive redis && redis_ready; then
    log "Redis already answers on $address"
    return 0
  fi
  mkdir -p "$DATA/redis"
  # appendonly: queued tasks survive a Redis restart.
  start_service redis redis-server --bind "$(host_of "$address")" --port "$(port_of "$address")" \
    --dir "$DATA/redis" --appendonly yes --save ""
  wait_until 30 "Redis on $address" redis_ready || die "Redis did not start"
}

start_postgres() {
  case $MODELFARM_DATABASE_URL in postgresql*) ;; *) return 0 ;; esac
  local version cluster password
  read -r version cluster _ < <(pg_lsclusters --no-header | head -n 1)
  [ -n "$version" ] || die "no PostgreSQL cluster found (install the postgresql package)"
  if ! pg_lsclusters --no-header | head -n 1 | grep -q online; then
    pg_ctlcluster "$version" "$cluster" start
    echo "$version $cluster" >"$RUN/postgresql.started"
    log "started PostgreSQL $version/$cluster"
  fi
  wait_until 30 "PostgreSQL" su postgres -c "psql -tAc 'SELECT 1'"
  # The local role gets the generated password (its URL is a secret file, core/secrets.py) and
  # may create databases, so the test suite can make its own.
  password=$(python -c 'from sqlalchemy import make_url; from core.settings import settings
print(make_url(settings.database_url).password or "")')
  su postgres -c "psql -v ON_ERROR_STOP=1 -q -v password='$password'" <<'SQL'
SELECT 'CREATE ROLE modelfarm LOGIN CREATEDB'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'modelfarm')\gexec
ALTER ROLE modelfarm PASSWORD :'password';
SELECT 'CREATE DATABASE modelfarm OWNER modelfarm'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'modelfarm')\gexec
SQL
}

start_farm() {
  alembic upgrade head >>"$LOGS/migrations.log" 2>&1 || die "migrations failed: see $LOGS/migrations.log"
  log "database schema is at head"
  # --no-proxy-headers: no client can claim another address (the login throttle counts by it).
  # --no-access-log: api/request_log.py logs each request, with its request id.
  # --workers: one process per core (MODELFARM_API_WORKERS); they add up their metrics in files
  # (core/metrics.py), kept from the last run's processes never. --timeout-worker-healthcheck:
  # uvicorn kills a process that does not answer its ping in time, with the requests it serves;
  # on a busy machine 5 s (the default) is not yet a hang.
  pid_alive api || { rm -rf "$RUN/api-metrics" && mkdir -p "$RUN/api-metrics"; }
  PROMETHEUS_MULTIPROC_DIR="$RUN/api-metrics" start_service api uvicorn api.main:app \
    --host "$MODELFARM_API_HOST" --port "$MODELFARM_API_PORT" --workers "$MODELFARM_API_WORKERS" \
    --timeout-worker-healthcheck 30 --no-proxy-headers --no-access-log
  MODELFARM_REGISTRY_STORAGE_DIR=$MODELFARM_REGISTRY_STORAGE_DIR \
    start_service build-worker celery -A workers.celery_app worker -Q build -n build@%h \
    --concurrency 1 --loglevel INFO
  # Threads, not processes: every job of the worker shares its one pool of warm sandboxes.
  start_service inference-worker celery -A workers.celery_app worker -Q inference \
    -n inference@%h --pool threads --concurrency "$MODELFARM_INFERENCE_CONCURRENCY" \
    --loglevel INFO
  # Celery beat and the reconciler it schedules (workers/reconcile.py), in one small process,
  # which also sends webhooks (workers/webhooks.py): threads, so a slow receiver never holds up
  # the reconciler.
  start_service reconciler celery -A workers.celery_app worker -Q control,webhooks -n control@%h \
    --pool threads --concurrency 4 --beat --schedule "$DATA/run/beat-schedule" --loglevel INFO
  local url="http://$MODELFARM_API_HOST:$MODELFARM_API_PORT"
  if ! wait_until 90 "API at $url" curl -fsS "$url/health"; then
    curl -sS "$url/health" >&2 || true
    die "the API is not healthy; see $LOGS/api.log"
  fi
}

ensure_dockerd
start_registry
start_object_store
start_redis
start_postgres
start_farm

cat <<INFO
modelfarm is up.
  API            http://$MODELFARM_API_HOST:$MODELFARM_API_PORT  (docs: /docs, health: /health)
  registry       $MODELFARM_REGISTRY
  object storage http://$MODELFARM_S3_ENDPOINT  (bucket $MODELFARM_S3_BUCKET)
  database       ${MODELFARM_DATABASE_URL%%://*}
  data and logs  $DATA
Stop it with: scripts/down.sh
INFO
