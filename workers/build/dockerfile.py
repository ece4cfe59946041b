"""The generated Dockerfiles (a dependency image's, a model image's FROM it), the build contexts
around them, and the keys that name the images."""

import hashlib
import json
import re
import shutil
import string
from importlib.metadata import version
from pathlib import Path

import uv

import modelfarm
import runner
from runner.protocol import MODEL_UID
from workers.build.package import CONFIG_FILE, REQUIREMENTS_FILE

TEMPLATE = Path(__file__).with_name("Dockerfile.template")
DEPS_TEMPLATE = Path(__file__).with_name("Dockerfile.deps.template")
# What every model image holds of the farm's code, under /opt/modelfarm: the runner, and the
# modelfarm package's Input for predict.py (standard library only, both).
FARM_FILES = {
    "runner": sorted(Path(runner.__file__).parent.glob("*.py")),
    "modelfarm": [Path(modelfarm.__file__)],
}

# Each value put into a template must match its pattern in full: none can add a line. None
# names a model or a version: equal contents make an equal image, whoever's model it is.
_VALUE_PATTERNS = {
    "base_image": r"[a-z0-9][a-z0-9._/:@-]{0,254}",
    "deps_image": r"[a-z0-9][a-z0-9._/:-]{0,200}@sha256:[0-9a-f]{64}",
    "uid": r"[0-9]{1,9}",
}
_VALUES = {TEMPLATE: {"deps_image"}, DEPS_TEMPLATE: {"base_image", "uid"}}


def render(template: Path, **values: str) -> str:
    if set(values) != _VALUES[template]:
        raise ValueError(f"{template.name} takes exactly {sorted(_VALUES[template])}")
    for name, value in values.items():
        if not re.fullmatch(_VALUE_PATTERNS[name], value):
            raise ValueError(f"refusing to put {name}={value!r} into the Dockerfile")
    return string.Template(template.read_text()).substitute(values)


def render_model(*, deps_image: str) -> str:
    return render(TEMPLATE, deps_image=deps_image)


def render_deps(*, base_image: str) -> str:
    return render(DEPS_TEMPLATE, base_image=base_image, uid=str(MODEL_UID))


def runner_digest() -> str:
    """The farm's code in the image, the single source of its part in every content key."""
    digest = hashlib.sha256()
    for package, paths in FARM_FILES.items():
        for path in paths:
            digest.update(f"{package}/{path.name}".encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def recipe() -> str:
    """Both templates: with the package's contents (its requirements among them) and the base
    image, all that a model image is made from."""
    return DEPS_TEMPLATE.read_text() + TEMPLATE.read_text()


def content_key(*, contents_sha256: str, dockerfile: str, base_image_id: str) -> str:
    """Names an image by everything it is built from; equal keys mean an equal image."""
    parts = [contents_sha256, hashlib.sha256(dockerfile.encode()).hexdigest(), base_image_id]
    return hashlib.sha256("\n".join([*parts, runner_digest()]).encode()).hexdigest()


def deps_key(*, lock: list[dict], base_image_id: str) -> str:
    """Names the dependency image by its template, the installer, the locked wheels and the
    base image."""
    parts = [
        DEPS_TEMPLATE.read_text(), f"uv {version('uv')}", json.dumps(lock, sort_keys=True),
        base_image_id,
    ]  # fmt: skip
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def write_deps_context(*, context: Path, dockerfile: str, lock: list[dict], wheels: Path) -> None:
    """A dependency image's build context: the installer, the lock, its wheels and the
    Dockerfile."""
    (context / "wheels").mkdir(parents=True)
    shutil.copy2(uv.find_uv_bin(), context / "uv")
    lock_lines = [f"{i['name']}=={i['version']} --hash=sha256:{i['sha256']}" for i in lock]
    (context / "requirements.lock").write_text("".join(f"{x}\n" for x in lock_lines))
    for item in lock:
        shutil.copy2(wheels / item["filename"], context / "wheels" / item["filename"])
    (context / "Dockerfile").write_text(dockerfile)


def write_model_context(*, source: Path, context: Path, dockerfile: str) -> None:
    """A model image's build context: data/, code/, farm/ and the Dockerfile; no wheels."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or str(relative) in (REQUIREMENTS_FILE, CONFIG_FILE):
            continue
        layer = "code" if path.suffix == ".py" else "data"
        target = context / layer / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    for layer in ("code", "data"):
        (context / layer).mkdir(parents=True, exist_ok=True)
    for package, paths in FARM_FILES.items():
        (context / "farm" / package).mkdir(parents=True)
        for path in paths:
            shutil.copy2(path, context / "farm" / package / path.name)
    (context / "Dockerfile").write_text(dockerfile)
