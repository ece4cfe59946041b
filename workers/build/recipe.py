"""What images are made from: a dependency image's install script, inputs and configuration,
what a model image holds of the farm, and the keys that name the images."""

import hashlib
import json
import re
import string
import tarfile
from importlib.metadata import version
from pathlib import Path

import uv

import modelfarm
import runner
from runner.protocol import MODEL_UID
from workers.build import model_image

# What a dependency image runs as and with, and so every model image made over it: the
# unprivileged user, the virtualenv's Python, the runner first, its files under /model. The
# keys of an image configuration's "config" (the base image's Env is kept beneath this Env).
DEPS_CONFIG_TEMPLATE = Path(__file__).with_name("deps_config.json")
DEPS_INSTALL_SCRIPT = Path(__file__).with_name("deps_install.sh")
# Where the install script finds its inputs in the install container (deps_install.sh).
DEPS_INPUTS = "/tmp/deps"
# What every model image holds of the farm's code, under /opt/modelfarm: the runner, and the
# modelfarm package's Input for predict.py (standard library only, both).
FARM_FILES = {
    "runner": sorted(Path(runner.__file__).parent.glob("*.py")),
    "modelfarm": [Path(modelfarm.__file__)],
}

# Each value put into a template must match its pattern in full: none can add a line. None
# names a model or a version: equal contents make an equal image, whoever's model it is.
_VALUE_PATTERNS = {
    "uid": r"[0-9]{1,9}",
}
_VALUES = {DEPS_CONFIG_TEMPLATE: {"uid"}}


def render(template: Path, **values: str) -> str:
    if set(values) != _VALUES[template]:
        raise ValueError(f"{template.name} takes exactly {sorted(_VALUES[template])}")
    for name, value in values.items():
        if not re.fullmatch(_VALUE_PATTERNS[name], value):
            raise ValueError(f"refusing to put {name}={value!r} into {template.name}")
    return string.Template(template.read_text()).substitute(values)


def deps_config() -> dict:
    """A dependency image's configuration, over its base image's (dependencies.py)."""
    return json.loads(render(DEPS_CONFIG_TEMPLATE, uid=str(MODEL_UID)))


def runner_digest() -> str:
    """The farm's code in the image, the single source of its part in every content key."""
    digest = hashlib.sha256()
    for package, paths in FARM_FILES.items():
        for path in paths:
            digest.update(f"{package}/{path.name}".encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _deps_recipe() -> str:
    return DEPS_INSTALL_SCRIPT.read_text() + DEPS_CONFIG_TEMPLATE.read_text()


def text() -> str:
    """How both images are made: with the package's contents (its requirements among them) and
    the base image, all that a model image is made from."""
    return _deps_recipe() + model_image.RECIPE


def content_key(*, contents_sha256: str, recipe_text: str, base_image_id: str) -> str:
    """Names an image by everything it is made from; equal keys mean an equal image."""
    parts = [contents_sha256, hashlib.sha256(recipe_text.encode()).hexdigest(), base_image_id]
    return hashlib.sha256("\n".join([*parts, runner_digest()]).encode()).hexdigest()


def deps_key(*, lock: list[dict], base_image_id: str) -> str:
    """Names the dependency image by its install script and configuration, the installer, the
    locked wheels and the base image."""
    parts = [
        _deps_recipe(), f"uv {version('uv')}", json.dumps(lock, sort_keys=True),
        base_image_id,
    ]  # fmt: skip
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def write_deps_inputs(*, archive: Path, lock: list[dict], wheels: Path) -> None:
    """The install container's inputs, as the tar put into it at DEPS_INPUTS: the installer,
    the install script, the lock and its wheels."""
    lock_lines = [f"{i['name']}=={i['version']} --hash=sha256:{i['sha256']}" for i in lock]
    lock_path = archive.with_name("requirements.lock")
    lock_path.write_text("".join(f"{x}\n" for x in lock_lines))
    folder = Path(DEPS_INPUTS).name
    with tarfile.open(archive, "w") as tar:
        tar.add(uv.find_uv_bin(), f"{folder}/uv")
        tar.add(DEPS_INSTALL_SCRIPT, f"{folder}/install.sh")
        tar.add(lock_path, f"{folder}/requirements.lock")
        for item in lock:
            tar.add(wheels / item["filename"], f"{folder}/wheels/{item['filename']}")
