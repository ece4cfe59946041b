"""Packs a model folder into a ZIP, byte for byte the same each time for the same files.

Leaves out what only the author needs (train.py, samples/, caches), so the package holds the
contract files and the weights. Fixed timestamps and order make an unchanged package the same
bytes (the farm also recognises the same files zipped any other way); a file's executable bit
is kept, and nothing else of its mode.

The ZIP is written to a file a chunk at a time (gigabytes of weights are never in memory),
ZIP64 where a file needs it. Files over STORE_ABOVE are stored, not deflated: such files are
weights, which deflate hardly shrinks (7 % of float32 tensors, nothing of quantized or random
ones) at 17-30 MB/s a core, far slower than they upload.
"""

import hashlib
import shutil
import zipfile
from pathlib import Path

LEFT_OUT = {"train.py", "samples", "__pycache__", ".ipynb_checkpoints"}
FIXED_TIME = (2020, 1, 1, 0, 0, 0)
STORE_ABOVE = 8 * 1024**2


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


def pack(folder: Path, target: Path) -> list[str]:
    """Writes the folder's ZIP to target; the names of the files it holds."""
    files = packed_files(folder)
    with zipfile.ZipFile(target, "w") as archive:
        for path in files:
            entry = zipfile.ZipInfo(path.relative_to(folder).as_posix(), FIXED_TIME)
            # the executable bit only, as the image keeps it (0755 or 0644)
            entry.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
            entry.file_size = path.stat().st_size  # so that zipfile knows when ZIP64 is needed
            big = entry.file_size > STORE_ABOVE
            entry.compress_type = zipfile.ZIP_STORED if big else zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(entry, "w") as sink:
                shutil.copyfileobj(source, sink, 1024**2)
    return [path.relative_to(folder).as_posix() for path in files]
