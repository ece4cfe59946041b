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
from collections.abc import Iterator
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


@dataclass(frozen=True)
class FileBytes:
    """Where a file's bytes come in a tar: all `size` of them, from source."""

    source: Path
    size: int


def tar_pieces(context: Context, *, prefix: str = "", folders=()) -> Iterator[bytes | FileBytes]:
    """The tar of the entries, in name order under prefix, each folder (their parents and
    `folders`, context folders such as "weights/" that may be empty) before its files: its
    headers, paddings and end as bytes, and the files' bytes between them as FileBytes, so a
    writer may copy those as it likes. Byte for byte what tarfile writes (PAX format)."""
    offset = 0
    for folder in _folders(prefix, [*context, *folders]):
        header = _header(folder, tarfile.DIRTYPE, 0o755, 0)
        offset += len(header)
        yield header
    for path in sorted(context):
        entry = context[path]
        size = entry.source.stat().st_size
        header = _header(prefix + path, tarfile.REGTYPE, 0o755 if entry.executable else 0o644, size)
        padding = -size % tarfile.BLOCKSIZE
        offset += len(header) + size + padding
        yield header
        yield FileBytes(entry.source, size)
        yield tarfile.NUL * padding
    offset += 2 * tarfile.BLOCKSIZE  # the end: two empty blocks, then the record filled
    yield tarfile.NUL * (2 * tarfile.BLOCKSIZE + -offset % tarfile.RECORDSIZE)


def write_tar(out: BinaryIO, context: Context, *, prefix: str = "", folders=()) -> None:
    """Writes tar_pieces to out."""
    for piece in tar_pieces(context, prefix=prefix, folders=folders):
        if isinstance(piece, bytes):
            out.write(piece)
        else:
            copy_exactly(piece, out.write)


def copy_exactly(piece: FileBytes, write, chunk_bytes: int = 1 << 20) -> None:
    """The piece's bytes to write(), in chunks; OSError if its file no longer has them all."""
    left = piece.size
    with piece.source.open("rb") as source:
        while left:
            chunk = source.read(min(chunk_bytes, left))
            if not chunk:
                raise OSError(f"{piece.source} changed while it was read")
            write(chunk)
            left -= len(chunk)


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


def _header(name: str, kind: bytes, mode: int, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime, info.uid, info.gid = kind, mode, size, 0, 0, 0
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
