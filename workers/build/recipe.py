"""The keys that name images by everything they are made from: the version's Dockerfile
(core/dockerfile.py) and the files it copies (core/context.py)."""

import hashlib
import json
from importlib.metadata import version

from core import context
from core.dockerfile import Plan


def farm_digest() -> str:
    """The farm's code in the image (context.FARM_FILES) and the dependency stage's install
    script: the single source of their part in every content key."""
    digest = hashlib.sha256()
    for package, paths in context.FARM_FILES.items():
        for path in paths:
            digest.update(f"{package}/{path.name}".encode() + b"\0" + path.read_bytes())
    digest.update(b"install.sh\0" + context.DEPS_INSTALL_SCRIPT.read_bytes())
    return digest.hexdigest()


def content_key(*, contents_sha256: str, dockerfile: str, base_image_id: str) -> str:
    """Names an image by everything it is made from: the package's contents (its requirements
    among them), its Dockerfile, the base image and the farm's files; equal keys mean an equal
    image."""
    parts = [contents_sha256, hashlib.sha256(dockerfile.encode()).hexdigest(), base_image_id]
    return hashlib.sha256("\n".join([*parts, farm_digest()]).encode()).hexdigest()


def deps_key(*, plan: Plan, lock: list[dict], base_image_id: str) -> str:
    """Names the dependency image by its stage's instructions and the copy out of it, the
    install script, the installer, the locked wheels and the base image."""
    instructions = [plan.deps_from, *plan.deps_copies, *(run for run, _ in plan.deps_runs)]
    parts = [
        *(instruction.text for instruction in [*instructions, plan.deps_export]),
        context.DEPS_INSTALL_SCRIPT.read_text(), f"uv {version('uv')}",
        json.dumps(lock, sort_keys=True), base_image_id,
    ]  # fmt: skip
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
