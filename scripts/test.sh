#!/usr/bin/env bash
# The test command: sets up the machine, starts the stack, and runs the whole suite: tests/unit
# (no stack needed) and tests/integration (against the real components).
# Extra arguments go to pytest (e.g. scripts/test.sh -k auth).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/up.sh"
exec "$VENV/bin/python" -m pytest "$@"
