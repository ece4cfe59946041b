#!/usr/bin/env bash
# The test command: sets up the machine, starts the stack, and runs the whole suite: tests/unit
# (no stack needed) and tests/integration (against the real components).
# Extra arguments go to pytest (e.g. scripts/test.sh -k auth).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
# The webhook tests receive on 127.0.0.1 and see retries within seconds (the defaults refuse
# loopback and wait minutes between attempts).
export MODELFARM_WEBHOOK_ALLOW_PRIVATE=${MODELFARM_WEBHOOK_ALLOW_PRIVATE:-true}
export MODELFARM_WEBHOOK_RETRY_DELAYS_S=${MODELFARM_WEBHOOK_RETRY_DELAYS_S:-[1,1,2,2,4]}
# The tests that upload a package at the limit stay quick with 1.125 GiB, which still holds the
# big-model test's gigabyte of weights (the default is 4 GiB).
export MODELFARM_MAX_PACKAGE_BYTES=${MODELFARM_MAX_PACKAGE_BYTES:-1207959552}
# Uploads in parts cut tens of megabytes into several parts (the default part is 64 MiB).
export MODELFARM_UPLOAD_PART_BYTES=${MODELFARM_UPLOAD_PART_BYTES:-8388608}
"$ROOT/scripts/up.sh"
exec "$VENV/bin/python" -m pytest "$@"
