# The cluster's services host (sourced by scripts/cluster.sh, whose variables it uses): its own
# PostgreSQL, Redis, registry, S3 and package index, each listening on the host's address only.
# shellcheck shell=bash disable=SC2046

start_services() {
  mkdir -p "$CL/services"
  # shellcheck disable=SC1091
  source "$CL/secrets.env"
  services_postgres
  services_redis
  services_registry
  services_s3
  # The package index builds resolve requirements from (PyPI's stand-in: the hosts have no
  # route out); a project is a folder of wheels under index/simple/<name>/.
  mkdir -p "$CL/services/index/simple"
  start_service services-index $(inside services) python -m http.server 8700 \
    --bind "$SERVICES" --directory "$CL/services/index"
  redis_ready() { redis-cli -h "$SERVICES" -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -q PONG; }
  wait_until 30 "Redis on $SERVICES" redis_ready || die "Redis did not start"
  wait_until 30 "registry on $SERVICES" curl -fsS "http://$SERVICES:5000/v2/" ||
    die "the registry did not start"
  wait_until 60 "S3 on $SERVICES" curl -sS -o /dev/null "http://$SERVICES:$S3_PORT/" ||
    die "SeaweedFS did not start"
}

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

# A cluster of its own (initdb), reached by the other hosts with a password, and the farm's role
# and database in it.
services_postgres() {
  local dir="$CL/services/pg" bin
  bin=/usr/lib/postgresql/$(pg_lsclusters --no-header | awk 'NR == 1 {print $1}')/bin
  if [ ! -f "$dir/PG_VERSION" ]; then
    rm -rf "$dir" && mkdir -p "$dir" && chown postgres: "$dir"
    as_postgres "$bin/initdb" -D "$dir" --auth-local=trust --auth-host=scram-sha-256 \
      >>"$LOGS/initdb.log"
    echo "host all all $NET.0/24 scram-sha-256" >>"$dir/pg_hba.conf"
  fi
  start_service services-postgres $(inside services) setpriv --reuid=postgres \
    --regid=postgres --init-groups "$bin/postgres" -D "$dir" -c "listen_addresses=$SERVICES" \
    -c "unix_socket_directories=$dir"
  wait_until 30 "PostgreSQL on $SERVICES" as_postgres psql -h "$dir" -tAc "SELECT 1" ||
    die "PostgreSQL did not start"
  as_postgres psql -h "$dir" -q -v ON_ERROR_STOP=1 -v password="$PG_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE modelfarm LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'modelfarm')\gexec
ALTER ROLE modelfarm PASSWORD :'password';
SELECT 'CREATE DATABASE modelfarm OWNER modelfarm'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'modelfarm')\gexec
SQL
}

services_redis() {
  mkdir -p "$CL/services/redis"
  start_service services-redis $(inside services) redis-server --bind "$SERVICES" --port 6379 \
    --requirepass "$REDIS_PASSWORD" --dir "$CL/services/redis" --appendonly yes --save ""
}

services_registry() {
  local dir="$CL/services/registry"
  mkdir -p "$dir"
  registry_config "$dir/data" "$SERVICES:5000" >"$dir/config.yml"
  start_service services-registry $(inside services) docker-registry serve "$dir/config.yml"
}

# Ports of its own: SeaweedFS names its local sockets (/tmp/seaweedfs-*-<port>.sock) by port,
# and those of the one-machine stack's SeaweedFS must stay its own.
services_s3() {
  local dir="$CL/services/s3"
  mkdir -p "$dir/data"
  s3_identities "$MODELFARM_S3_ACCESS_KEY" "$MODELFARM_S3_SECRET_KEY" >"$dir/s3.json"
  WEED_IN=$(inside services) start_seaweedfs services-s3 "$dir" "$SERVICES" "$S3_MASTER_PORT" 128 \
    -volume.max=16 -volume.port="$S3_VOLUME_PORT" -filer.port="$S3_FILER_PORT" -s3 \
    -s3.port="$S3_PORT" -s3.config="$dir/s3.json" -filer.disableHttp -s3.port.iceberg=0 \
    -s3.port.lance=0
}
