#!/usr/bin/env bash
# The main job, end to end on a fresh machine: install what is missing, bring the stack up,
# pack the digits example, build it, classify one of its sample PNGs, print result and URLs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/up.sh"
load_settings

example=examples/digits-onnx
sample=${SAMPLE:-$example/samples/digit-3.png}
package="$DATA/examples/digits-onnx.zip"
"$VENV/bin/python" scripts/pack.py "$example" "$package"
PACKAGE=$package INPUT=$sample OUT_DIR=${OUT_DIR:-$DATA/outputs/demo} \
  MODELFARM_API="http://$MODELFARM_API_HOST:$MODELFARM_API_PORT" \
  "$ROOT/scripts/workflow.sh" | tee "$DATA/demo-result.json"
expected=$(jq -r --arg name "$(basename "$sample")" '.[$name] // "unknown"' "$example/samples/labels.json")
echo "predicted digit: $(jq -r .label "$DATA/demo-result.json") (true label: $expected)"
