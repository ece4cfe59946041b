# Shared helpers for the stack scripts. Source it from the repository root.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
export PATH="$VENV/bin:/usr/sbin:/sbin:$PATH"

log() { printf '[modelfarm] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Generates the stack's secrets on first start (JWT secret, S3 keys, the PostgreSQL role's URL:
# files under the data directory, mode 0600, see core/secrets.py), then reads the settings
# (environment, .env, those files, defaults) from the one settings object.
load_settings() {
  [ -x "$VENV/bin/python" ] || die "no .venv: run scripts/setup.sh first"
  local assignments
  (cd "$ROOT" && "$VENV/bin/python" -m core.secrets) >&2 || die "could not write the secrets"
  assignments=$(cd "$ROOT" && "$VENV/bin/python" -m core.settings) || die "invalid settings"
  eval "$assignments"
  DATA=$(cd "$ROOT" && mkdir -p "$MODELFARM_DATA_DIR" && cd "$MODELFARM_DATA_DIR" && pwd)
  RUN="$DATA/run"
  LOGS="$DATA/logs"
  mkdir -p "$RUN" "$LOGS"
}

# poll SECONDS COMMAND...: runs COMMAND every half second until it succeeds (or time runs out).
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

# wait_until SECONDS DESCRIPTION COMMAND...: poll, then say that DESCRIPTION is ready.
wait_until() {
  local seconds=$1 what=$2
  shift 2
  poll "$seconds" "$@" || return 1
  log "$what is ready"
}

# A killed process may linger as a zombie until it is reaped: that counts as stopped. So does
# another process that took the recorded pid: pids wrap (at 32768 on our machines, within one
# test run), so the pid is checked against the start time recorded beside it (a pid file from
# before there was one is taken at its word).
pid_alive() {
  local pid since="$RUN/$1.since"
  [ -f "$RUN/$1.pid" ] || return 1
  pid=$(cat "$RUN/$1.pid")
  ! process_gone "$pid" && { [ ! -f "$since" ] || [ "$(start_time_of "$pid")" = "$(cat "$since")" ]; }
}

# start_time_of PID: when the process started (clock ticks since boot, /proc/PID/stat's 22nd
# field, counted after the command name, which may hold spaces).
start_time_of() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  read -ra fields <<<"${stat##*) }"
  echo "${fields[19]}"
}

# stop_service NAME: SIGTERM, waits for the exit (up to 40 s, SeaweedFS takes ~25 s), then
# SIGKILL. A NAME.stopping marker tells a concurrent up.sh that the process is on its way out.
stop_service() {
  local name=$1 pidfile="$RUN/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if pid_alive "$name"; then
    touch "$RUN/$name.stopping"
    kill -TERM "$pid" 2>/dev/null || true
    # Wait for this very process: a concurrent up.sh may already have written a new pid.
    poll 40 process_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
    poll 10 process_gone "$pid" || true
    log "stopped $name"
  fi
  # A concurrent up.sh may have started a new one meanwhile: leave its pid file alone. The lock
  # makes the check and the removal one step against start_service's start and write.
  exec 9>"$RUN/$name.lock"
  flock 9
  [ "$(cat "$pidfile" 2>/dev/null)" != "$pid" ] ||
    rm -f "$pidfile" "$RUN/$name.since" "$RUN/$name.stopping"
  exec 9>&-
}

pid_gone() { ! pid_alive "$1"; }

# A killed process may linger as a zombie until it is reaped: that counts as gone.
process_gone() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  [[ $state == Z* ]]
}

# start_service NAME COMMAND...: runs COMMAND in the background, logging to $LOGS/NAME.log and
# recording its pid in $RUN/NAME.pid so that down.sh stops exactly what was started.
start_service() {
  local name=$1
  shift
  if pid_alive "$name" && [ -f "$RUN/$name.stopping" ]; then
    # Being stopped by a down.sh: wait until it is gone, then start it anew.
    log "$name is stopping; waiting for it to exit"
    poll 60 pid_gone "$name" || die "$name did not stop"
  fi
  rm -f "$RUN/$name.stopping"
  if pid_alive "$name"; then
    log "$name is already running (pid $(cat "$RUN/$name.pid"))"
    return 0
  fi
  # A session of its own: stopping the shell that ran up.sh does not stop the service. The lock
  # (see stop_service) is not passed on to it, nor a caller's: `flock FILE scripts/test.sh`
  # holds FILE's lock on descriptor 3, which a service started under it would hold as long as
  # it runs, and the next `flock FILE` would wait for ever.
  exec 9>"$RUN/$name.lock"
  flock 9
  MODELFARM_SERVICE="$name" setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 3>&- 9>&- &
  echo $! >"$RUN/$name.pid"
  start_time_of $! >"$RUN/$name.since"
  exec 9>&-
  log "started $name (pid $!), log: $LOGS/$name.log"
}

docker_ready() { docker info >/dev/null 2>&1; }

ensure_dockerd() {
  if docker_ready; then
    log "Docker engine is already running"
    return 0
  fi
  # No bridge and no iptables: containers get no address on a private range (see README).
  start_service dockerd dockerd --bridge=none --iptables=false --ip-masq=false
  wait_until 60 "Docker engine" docker_ready || die "dockerd did not start; see $LOGS/dockerd.log"
}

# registry_config ROOT ADDRESS: a Distribution config (filesystem storage under ROOT, deletes
# allowed for the farm's removals and garbage collection, listening on ADDRESS only).
registry_config() {
  cat <<YAML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $1
  delete:
    enabled: true
http:
  addr: $2
YAML
}

# s3_identities KEY SECRET: SeaweedFS's S3 identities file, one identity with these keys.
s3_identities() {
  jq -n --arg key "$1" --arg secret "$2" \
    '{identities: [{name: "modelfarm", credentials: [{accessKey: $key, secretKey: $secret}],
      actions: ["Admin", "Read", "List", "Tagging", "Write"]}]}'
}

# object_store_security DIR: SeaweedFS's own security, made once into DIR (kept private there):
# a volume server reads and writes a file only with a JWT that the master signs for the S3
# gateway (so no unsigned request reaches an object), and every gRPC port (master, volume, filer,
# S3 gateway) takes only clients holding a certificate from this store's own CA. The master's
# HTTP is closed by the caller (-whiteList, see start_object_store). weed reads DIR/security.toml
# when run as `weed -config_dir=DIR ...`.
object_store_security() {
  local dir=$1 tls=$1/tls component
  [ -f "$dir/security.toml" ] && return 0
  mkdir -p "$tls" && chmod 700 "$dir" "$tls"
  new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
  new_key "$tls/ca.key" && new_key "$tls/store.key"
  openssl req -x509 -new -key "$tls/ca.key" -subj /CN=modelfarm-object-store-ca -days 3650 \
    -out "$tls/ca.crt"
  # One certificate for every component, as server and as client (weed checks no host name).
  openssl req -new -key "$tls/store.key" -subj /CN=modelfarm-object-store |
    openssl x509 -req -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial -days 3650 \
      -extfile <(echo "extendedKeyUsage=serverAuth,clientAuth") -out "$tls/store.crt" 2>/dev/null
  {
    printf '[jwt.signing]\nkey = "%s"\n\n' "$(openssl rand -hex 32)"
    printf '[jwt.signing.read]\nkey = "%s"\n\n' "$(openssl rand -hex 32)"
    printf '[grpc]\nca = "%s"\n' "$tls/ca.crt"
    for component in master volume filer s3 client; do
      printf '\n[grpc.%s]\ncert = "%s"\nkey = "%s"\n' "$component" "$tls/store.crt" "$tls/store.key"
    done
  } >"$dir/security.toml.new"
  chmod 600 "$dir/security.toml.new" && mv "$dir/security.toml.new" "$dir/security.toml"
}

# start_seaweedfs NAME DIR HOST MASTER_PORT VOLUME_MB [SERVER_FLAG...]: the object store as the
# farm runs it, in two services (each command prefixed by $WEED_IN if set, e.g. to enter a
# network namespace): NAME-master, apart so that its HTTP alone can be closed (it takes requests
# only from an address no local process sends from, TEST-NET-1: what it does there, hand out
# write JWTs, delete collections, grow volumes, the other parts do over gRPC), and NAME, the
# volume server, filer and S3 gateway.
# Deleted and refused uploads are reclaimed by a vacuum every 5 minutes.
start_seaweedfs() {
  local name=$1 dir=$2 host=$3 port=$4 volume_mb=$5
  shift 5
  object_store_security "$dir/config"
  # shellcheck disable=SC2086
  start_service "$name-master" ${WEED_IN:-} weed -config_dir="$dir/config" master \
    -mdir="$dir/data" -ip="$host" -ip.bind="$host" -port="$port" -whiteList=192.0.2.1 \
    -volumeSizeLimitMB="$volume_mb" -garbageThreshold=0.05 -vacuumIntervalSeconds=300
  wait_until 30 "the object store's master on $host:$port" \
    curl -fsS -o /dev/null "http://$host:$port/cluster/status" ||
    die "SeaweedFS's master did not start"
  # shellcheck disable=SC2086
  start_service "$name" ${WEED_IN:-} weed -config_dir="$dir/config" server -master=false \
    -master.peers="$host:$port" -dir="$dir/data" -ip="$host" -ip.bind="$host" "$@"
}
