"""A version's build context: its Dockerfile and every file the Dockerfile copies, each by its
path in the context. The build worker executes it, the engine builds it, and anyone who may
read the version downloads it (GET /api/versions/{id}/context) to build it with plain
`docker build --network none`.

    Dockerfile
    deps/      install.sh, uv (the farm's installer), requirements.lock, wheels/<the lock's>
    weights/   the package's files other than Python code (requirements.txt and
               modelfarm.yaml are the farm's to read, not the image's)
    code/      the package's Python files
    farm/      runner/ (the farm's runner) and modelfarm/ (Input for predict.py)

Files are root's, with the package's executable bit (0755) or not (0644), folders 0755, and
no times (all zero): equal contents make an equal context and an equal image.
"""

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import uv

import modelfarm
import runner

DOCKERFILE = "Dockerfile"
DEPS, WEIGHTS, CODE, FARM = "deps/", "weights/", "code/", "farm/"
REQUIREMENTS_FILE = "requirements.txt"
CONFIG_FILE = "modelfarm.yaml"
DEPS_INSTALL_SCRIPT = Path(__file__).with_name("deps_install.sh")
LOCK_FILE = "requirements.lock"
WHEELS = f"{DEPS}wheels/"
# What every model image holds of the farm's code: the runner, and the modelfarm package's
# Input for predict.py (standard library only, both).
FARM_FILES = {
    "runner": sorted(Path(runner.__file__).parent.glob("*.py")),
    "modelfarm": [Path(modelfarm.__file__)],
}


@dataclass(frozen=True)
class Entry:
    source: Path  # the file on this host
    executable: bool
    sha256: str | None = None  # its hex digest, when it was computed on the way (a package's)


Context = dict[str, Entry]  # path in the context -> its file


def package_folder(name: str) -> str | None:
    """The context folder a package's file goes into, or None for those the image never holds."""
    if name in (REQUIREMENTS_FILE, CONFIG_FILE):
        return None
    return CODE if name.endswith(".py") else WEIGHTS


def package_entries(root: Path, digests: dict[str, str] | None = None) -> Context:
    """The files of a package extracted under root, each where the context holds it (with its
    sha256 from digests, by its name in the package, when given)."""
    found: Context = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        folder = package_folder(relative)
        if path.is_file() and folder is not None:
            executable = bool(path.stat().st_mode & 0o111)
            found[folder + relative] = Entry(path, executable, (digests or {}).get(relative))
    return found


def farm_entries() -> Context:
    return {
        f"{FARM}{package}/{path.name}": Entry(path, False)
        for package, paths in FARM_FILES.items()
        for path in paths
    }


def lock_text(lock: list[dict]) -> str:
    """The lock as the install script reads it: each wheel pinned, with its sha256."""
    return "".join(f"{i['name']}=={i['version']} --hash=sha256:{i['sha256']}\n" for i in lock)


def deps_entries(lock: list[dict], wheels: Path, lock_file: Path) -> Context:
    """The dependency stage's inputs: the installer, its script, the lock (written to
    lock_file) and the lock's wheels, found in the folder `wheels`."""
    lock_file.write_text(lock_text(lock))
    found = {
        f"{DEPS}uv": Entry(Path(uv.find_uv_bin()), True),
        f"{DEPS}install.sh": Entry(DEPS_INSTALL_SCRIPT, False),
        f"{DEPS}{LOCK_FILE}": Entry(lock_file, False),
    }
    for item in lock:
        found[f"{WHEELS}{item['filename']}"] = Entry(wheels / item["filename"], False)
    return found


def under(context: Context, folder: str) -> Context:
    """The entries in folder (a context folder such as "code/"), by their paths within it."""
    return {path[len(folder) :]: e for path, e in context.items() if path.startswith(folder)}


def write_tar(out: BinaryIO, context: Context, *, prefix: str = "", folders=()) -> None:
    """Writes the entries, in name order, as a tar under prefix, each folder (their parents
    and `folders`, context folders such as "weights/" that may be empty) before its files."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for folder in _folders(prefix, [*context, *folders]):
            tar.addfile(_info(folder, tarfile.DIRTYPE, 0o755))
        for path in sorted(context):
            entry = context[path]
            info = _info(prefix + path, tarfile.REGTYPE, 0o755 if entry.executable else 0o644)
            info.size = entry.source.stat().st_size
            with entry.source.open("rb") as content:
                tar.addfile(info, content)


def write_context(out: BinaryIO, dockerfile: str, files: Context, scratch: Path) -> None:
    """The whole build context as a tar: the Dockerfile (written into the folder scratch),
    then every file it copies, weights/ and code/ even if empty."""
    path = scratch / DOCKERFILE
    path.write_text(dockerfile)
    whole = {**files, DOCKERFILE: Entry(path, False)}
    write_tar(out, whole, folders=[WEIGHTS, CODE])


def _folders(prefix: str, paths: list[str]) -> list[str]:
    wanted = set()
    for path in paths:
        pieces = (prefix + path).split("/")[:-1]
        wanted |= {"/".join(pieces[: i + 1]) for i in range(len(pieces))}
    return sorted(wanted)


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
    return info
