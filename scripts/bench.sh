#!/usr/bin/env bash
# Brings the stack up and runs every benchmark; results in bench/results.{json,md}.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/up.sh"
exec "$VENV/bin/python" scripts/bench.py
