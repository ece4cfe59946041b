# The RUN of the dependency stage of core/Dockerfile.template: run as root in a container of the
# base image with no network, by the farm's executor or by `docker build --network none`. What
# it leaves under /opt is the virtualenv the model stage copies. Its inputs arrive beside it
# (the stage's COPY), outside /opt, so no installer, wheel or cache is in the model's image.
#
# It installs the pre-resolved wheels into a virtualenv with uv (the farm's own copy of its
# binary). Only the wheels given can be installed, and their hashes are checked. The virtualenv
# gets no pip; its bytecode is compiled here, since the image's root is read-only at run time,
# checked against the source's hash rather than its time (SOURCE_DATE_EPOCH tells Python so),
# so that the same lock makes the same bytes on any builder.
# The inputs are removed at the end: the farm keeps the container as the host's copy of the
# virtualenv.
set -eu
inputs=$(dirname "$0")
export UV_CACHE_DIR="$inputs/cache" SOURCE_DATE_EPOCH=0
"$inputs/uv" venv --quiet --no-python-downloads --python python3 /opt/venv
if [ -s "$inputs/requirements.lock" ]; then
  "$inputs/uv" pip install --quiet --python /opt/venv/bin/python --offline --no-index \
    --no-cache --require-hashes --compile-bytecode --link-mode copy \
    --find-links "$inputs/wheels" -r "$inputs/requirements.lock"
fi
# uv's note of when it unpacked each local wheel (uv_cache.json) is its own bookkeeping, and the
# one thing that would differ between two installs of the same lock: it goes, with its RECORD line.
find /opt/venv -name uv_cache.json -path '*.dist-info/*' -delete
find /opt/venv -path '*.dist-info/RECORD' -exec sed -i '/\/uv_cache\.json,/d' {} +
rm -rf "$inputs"
