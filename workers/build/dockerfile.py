"""The generated Dockerfile, the build context around it, and the image's content key."""

import hashlib
import json
import re
import shutil
import string
from pathlib import Path

import runner
from runner.protocol import MODEL_UID
from workers.build.package import CONFIG_FILE, REQUIREMENTS_FILE

TEMPLATE = Path(__file__).with_name("Dockerfile.template")
RUNNER_DIR = Path(runner.__file__).parent

# Each value put into the template must match its pattern in full: none can add a line. None
# names a model or a version: equal contents make an equal image, whoever's model it is.
_VALUE_PATTERNS = {
    "base_image": r"[a-z0-9][a-z0-9._/:@-]{0,254}",
    "uid": r"[0-9]{1,9}",
}


def render(**values: str) -> str:
    if set(values) != set(_VALUE_PATTERNS):
        raise ValueError(f"Dockerfile values must be exactly {sorted(_VALUE_PATTERNS)}")
    for name, value in values.items():
        if not re.fullmatch(_VALUE_PATTERNS[name], value):
            raise ValueError(f"refusing to put {name}={value!r} into the Dockerfile")
    return string.Template(TEMPLATE.read_text()).substitute(values)


def render_for(*, base_image: str) -> str:
    return render(base_image=base_image, uid=str(MODEL_UID))


def runner_digest() -> str:
    """The runner's code, the single source of its part in every content key."""
    digest = hashlib.sha256()
    for path in sorted(RUNNER_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def content_key(*, contents_sha256: str, dockerfile: str, base_image_id: str) -> str:
    """Names an image by everything it is built from; equal keys mean an equal image."""
    parts = [contents_sha256, hashlib.sha256(dockerfile.encode()).hexdigest(), base_image_id]
    return hashlib.sha256("\n".join([*parts, runner_digest()]).encode()).hexdigest()


def deps_key(*, lock: list[dict], base_image_id: str) -> str:
    """Names the dependency stage by the template, the locked wheels and the base image."""
    parts = [TEMPLATE.read_text(), json.dumps(lock, sort_keys=True), base_image_id]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def write_context(
    *, source: Path, context: Path, dockerfile: str, lock: list[dict], wheels: Path
) -> None:
    """Lay out the build context: deps/ (lock + wheels), data/, code/, runner/, Dockerfile."""
    (context / "deps" / "wheels").mkdir(parents=True)
    lock_lines = [f"{i['name']}=={i['version']} --hash=sha256:{i['sha256']}" for i in lock]
    (context / "deps" / "requirements.lock").write_text("".join(f"{x}\n" for x in lock_lines))
    for item in lock:
        shutil.copy2(wheels / item["filename"], context / "deps" / "wheels" / item["filename"])
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or str(relative) in (REQUIREMENTS_FILE, CONFIG_FILE):
            continue
        layer = "code" if path.suffix == ".py" else "data"
        target = context / layer / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    for layer in ("code", "data"):
        (context / layer).mkdir(exist_ok=True)
    shutil.copytree(RUNNER_DIR, context / "runner", ignore=shutil.ignore_patterns("__pycache__"))
    (context / "Dockerfile").write_text(dockerfile)
