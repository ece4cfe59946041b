#!/usr/bin/env bash
# The whole farm through its REST API, with curl and jq only:
# account -> model -> version -> upload -> build -> job -> upload -> run -> outputs.
#
# Environment (defaults in brackets):
#   MODELFARM_API       API base URL [http://127.0.0.1:8000]
#   MODELFARM_EMAIL     account email [demo@example.com]; registered if new
#   MODELFARM_PASSWORD  account password [demo-password]
#   MODEL_NAME          model name, reused if it exists [derived from the package file name]
#   MODEL_VISIBILITY    private or public, for a new model [private]
#   PACKAGE             the model ZIP (see scripts/pack.py)   (required)
#   INPUT               the input file for the job            (required)
#   OUT_DIR             where outputs are downloaded [./outputs/<job id>]
#   BUILD_TIMEOUT, RUN_TIMEOUT  seconds to wait [900, 300]
set -euo pipefail

API=${MODELFARM_API:-http://127.0.0.1:8000}
EMAIL=${MODELFARM_EMAIL:-demo@example.com}
PASSWORD=${MODELFARM_PASSWORD:-demo-password}
: "${PACKAGE:?set PACKAGE to a model ZIP}"
: "${INPUT:?set INPUT to the job input file}"
MODEL_NAME=${MODEL_NAME:-$(basename "$PACKAGE" .zip | tr 'A-Z_' 'a-z-')}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-900}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
[ -f "$PACKAGE" ] || { echo "error: no package at $PACKAGE" >&2; exit 2; }
[ -f "$INPUT" ] || { echo "error: no input at $INPUT" >&2; exit 2; }

say() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

# call METHOD PATH [curl args...]: prints the JSON body; fails with the API's message otherwise.
call() {
  local method=$1 path=$2 body status
  shift 2
  body=$(mktemp)
  status=$(curl -sS -o "$body" -w '%{http_code}' -X "$method" "$API$path" \
    ${TOKEN:+-H "Authorization: Bearer $TOKEN"} "$@") || fail "$method $path: API unreachable at $API"
  if [ "${status:0:1}" != 2 ]; then
    fail "$method $path -> HTTP $status: $(jq -r '.detail // .' "$body" 2>/dev/null || cat "$body")"
  fi
  cat "$body"
  rm -f "$body"
}

upload() {  # upload FILE URL
  local status
  status=$(curl -sS -o /dev/null -w '%{http_code}' -T "$1" "$2") || fail "upload of $1 failed"
  [ "$status" = 200 ] || fail "upload of $1 -> HTTP $status"
}

# wait_for PATH DONE_REGEX TIMEOUT: polls until .status matches, showing progress.
wait_for() {
  local path=$1 done_re=$2 timeout=$3 started=$SECONDS state status shown=""
  while :; do
    state=$(call GET "$path")
    status=$(jq -r .status <<<"$state")
    if [ -t 2 ]; then  # a live progress line on a terminal, one line per change otherwise
      printf '\r    %-10s %4ds' "$status" $((SECONDS - started)) >&2
    elif [ "$status" != "$shown" ]; then
      printf '    %-10s at %ds\n' "$status" $((SECONDS - started)) >&2
    fi
    shown=$status
    if [[ $status =~ $done_re ]]; then
      [ -t 2 ] && printf '\n' >&2
      echo "$state"
      return 0
    fi
    [ $((SECONDS - started)) -lt "$timeout" ] || fail "$path still $status after ${timeout}s"
    sleep 0.5
  done
}

say "account $EMAIL"
credentials=$(jq -n --arg e "$EMAIL" --arg p "$PASSWORD" '{email: $e, password: $p}')
status=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$API/api/users/register" \
  -H 'Content-Type: application/json' -d "$credentials") || fail "API unreachable at $API"
case $status in 201) say "registered" ;; 409) say "exists, logging in" ;;
  *) fail "register -> HTTP $status" ;; esac
TOKEN=$(call POST /api/users/login --data-urlencode "username=$EMAIL" \
  --data-urlencode "password=$PASSWORD" | jq -r .access_token)

model_id=$(call GET "/api/models?limit=100" |
  jq -r --arg n "$MODEL_NAME" --arg me "$(call GET /api/users/me | jq -r .id)" \
    '.items[] | select(.name == $n and .owner_id == $me) | .id' | head -n 1)
if [ -z "$model_id" ]; then
  model_id=$(call POST /api/models -H 'Content-Type: application/json' \
    -d "$(jq -n --arg n "$MODEL_NAME" --arg v "${MODEL_VISIBILITY:-private}" '{name: $n, visibility: $v}')" |
    jq -r .id)
  say "created model $MODEL_NAME ($model_id)"
else
  say "using model $MODEL_NAME ($model_id)"
fi

created=$(call POST "/api/models/$model_id/versions")
version_id=$(jq -r .version.id <<<"$created")
say "version $(jq -r .version.number <<<"$created") ($version_id): uploading $PACKAGE"
upload "$PACKAGE" "$(jq -r .upload_url <<<"$created")"
build_started=$EPOCHREALTIME
call POST "/api/versions/$version_id/build" >/dev/null
say "building"
version=$(wait_for "/api/versions/$version_id" '^(READY|FAILED)$' "$BUILD_TIMEOUT")
if [ "$(jq -r .status <<<"$version")" != READY ]; then
  call GET "/api/versions/$version_id/logs" | tail -n 25 >&2
  fail "build FAILED: $(jq -r .error <<<"$version")"
fi
build_seconds=$(awk "BEGIN { printf \"%.2f\", $EPOCHREALTIME - $build_started }")
say "READY in ${build_seconds} s, reused: $(jq -r .reused <<<"$version"), image $(jq -r .image_ref <<<"$version")"

job=$(call POST /api/jobs -H 'Content-Type: application/json' -d "{\"version_id\": \"$version_id\"}")
job_id=$(jq -r .job.id <<<"$job")
say "job $job_id: uploading $INPUT"
upload "$INPUT" "$(jq -r .upload_url <<<"$job")"
call POST "/api/jobs/$job_id/run" >/dev/null
say "running"
job=$(wait_for "/api/jobs/$job_id" '^(SUCCEEDED|FAILED)$' "$RUN_TIMEOUT")
[ "$(jq -r .status <<<"$job")" = SUCCEEDED ] || fail "job FAILED: $(jq -r .error <<<"$job")"

OUT_DIR=${OUT_DIR:-./outputs/$job_id}
mkdir -p "$OUT_DIR"
outputs=$(call GET "/api/jobs/$job_id/outputs")
say "outputs (URLs valid for $(jq -r .expires_in <<<"$outputs") s), downloaded to $OUT_DIR:"
while IFS=$'\t' read -r name url; do
  target="$OUT_DIR/$(basename "$name")"
  curl -sSf -o "$target" "$url" || fail "download of $name failed"
  printf '    %s\n      %s\n' "$name" "$url" >&2
done < <(jq -r '.outputs[] | [.name, .url] | @tsv' <<<"$outputs")
say "result:"
jq .result <<<"$job"
