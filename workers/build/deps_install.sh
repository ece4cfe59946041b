# Run by modelfarm (workers/build/dependencies.py) in a container of the base image, as root and
# with no network, to make a dependency image: what it leaves under /opt is read out as the
# image's one layer. Its inputs arrive beside it (dockerfile.DEPS_INPUTS), outside /opt, so no
# installer, wheel or cache is in the layer.
#
# It installs the pre-resolved wheels into a virtualenv with uv (the farm's own copy of its
# binary). Only the wheels given can be installed, and their hashes are checked. The virtualenv
# gets no pip; its bytecode is compiled here, since the image's root is read-only at run time.
# The inputs are removed at the end: the container is kept as the host's copy of the virtualenv.
set -eu
inputs=$(dirname "$0")
export UV_CACHE_DIR="$inputs/cache"
"$inputs/uv" venv --quiet --no-python-downloads --python python3 /opt/venv
if [ -s "$inputs/requirements.lock" ]; then
  "$inputs/uv" pip install --quiet --python /opt/venv/bin/python --offline --no-index \
    --no-cache --require-hashes --compile-bytecode --link-mode copy \
    --find-links "$inputs/wheels" -r "$inputs/requirements.lock"
fi
rm -rf "$inputs"
