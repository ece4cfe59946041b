"""Packs a model folder into a ZIP, byte for byte the same each time for the same files.

Leaves out what only the author needs (train.py, samples/, caches), so the package holds the
contract files and the weights. Fixed timestamps and order make an unchanged package the same
bytes (the farm also recognises the same files zipped any other way); a file's executable bit
is kept, and nothing else of its mode.

The ZIP is written to a file a chunk at a time (gigabytes of weights are never in memory),
ZIP64 where a file needs it. Files over STORE_ABOVE are stored, not deflated: such files are
weights, which deflate hardly shrinks (7 % of float32 tensors, nothing of quantized or random
ones) at 17-30 MB/s a core, far slower than they upload.

Files over BY_CONTENT_ABOVE are not in the ZIP at all but sent by their content (the farm's
core/contents.py): declared with their sha256, and uploaded only when the farm does not have
them yet, so that pushing a code change to a model of gigabytes sends the code.
"""

import hashlib
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

LEFT_OUT = {"train.py", "samples", "__pycache__", ".ipynb_checkpoints"}
FIXED_TIME = (2020, 1, 1, 0, 0, 0)
STORE_ABOVE = 8 * 1024**2
BY_CONTENT_ABOVE = 64 * 1024**2


@dataclass
class Packed:
    names: list[str] = field(default_factory=list)  # of the files in the ZIP
    # Each file sent by content: its declaration (path, size, sha256, executable) and its path.
    by_content: list[tuple[dict, Path]] = field(default_factory=list)


def packed_files(folder: Path) -> list[Path]:
    """The files of the folder that its package holds, in their order there."""
    if not (folder / "predict.py").is_file():
        raise FileNotFoundError(f"{folder} has no predict.py: point at a model's folder")
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not LEFT_OUT & set(path.relative_to(folder).parts)
    )


def fingerprint(folder: Path) -> str:
    """Changes when a file of the package is added, removed or written (its size or mtime): the
    same fingerprint, the same package bytes."""
    listing = hashlib.sha256()
    for path in packed_files(folder):
        stat = path.stat()
        listing.update(f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0"
                       f"{stat.st_mtime_ns}\0{stat.st_mode & 0o111 > 0}\n".encode())  # fmt: skip
    return listing.hexdigest()


def pack(folder: Path, target: Path, *, by_content_above: int | None = None) -> Packed:
    """Writes the folder's ZIP to target, with every file, or with those up to by_content_above
    bytes and the bigger ones declared to be sent by content."""
    packed, files = Packed(), packed_files(folder)  # listed before target is made
    with zipfile.ZipFile(target, "w") as archive:
        for path in files:
            name, size = path.relative_to(folder).as_posix(), path.stat().st_size
            executable = bool(path.stat().st_mode & 0o111)
            if by_content_above is not None and size > by_content_above:
                declared = {"path": name, "size": size, "sha256": _sha256(path)}
                packed.by_content.append(({**declared, "executable": executable}, path))
                continue
            entry = zipfile.ZipInfo(name, FIXED_TIME)
            # the executable bit only, as the image keeps it (0755 or 0644)
            entry.external_attr = (0o755 if executable else 0o644) << 16
            entry.file_size = size  # so that zipfile knows when ZIP64 is needed
            big = entry.file_size > STORE_ABOVE
            entry.compress_type = zipfile.ZIP_STORED if big else zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(entry, "w") as sink:
                shutil.copyfileobj(source, sink, 1024**2)
            packed.names.append(name)
    return packed


def _sha256(path: Path) -> str:
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()
