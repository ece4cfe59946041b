#!/usr/bin/env bash
# Frees the blobs of the local registry that no manifest refers to any more (what removed
# models and versions left): Distribution's garbage collector with --delete-untagged, run while
# the registry is stopped, as Distribution's documentation requires (blobs a push uploads during
# a collection could be deleted before its manifest lands). A blob any tagged manifest refers to
# is kept, such as a layer that another model or a dependency image shares. A build or a job that
# reaches the registry during the pause meets a farm fault and retries (workers/retry.py).
#
# The reconciler runs this every MODELFARM_REGISTRY_GC_INTERVAL_S (workers/tasks.py).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
load_settings
config="$DATA/registry/config.yml"
[ -f "$config" ] || die "no registry configuration at $config: start the stack first (scripts/up.sh)"
exec 8>"$RUN/registry-gc.lock"
flock -n 8 || die "a registry garbage collection is already running"
stop_service registry
status=0
docker-registry garbage-collect --delete-untagged "$config" >>"$LOGS/registry-gc.log" 2>&1 || status=$?
start_service registry docker-registry serve "$config"
wait_until 30 "registry on $MODELFARM_REGISTRY" curl -fsS "http://$MODELFARM_REGISTRY/v2/" >/dev/null
[ "$status" -eq 0 ] || die "the garbage collection failed (exit $status): see $LOGS/registry-gc.log"
log "registry garbage collected: see $LOGS/registry-gc.log"
