"""Packs a model folder into a ZIP, byte for byte the same each time for the same files.

Leaves out what only the author needs (train.py, samples/, caches), so the package holds the
contract files and the weights. Fixed timestamps and order make an unchanged package the same
bytes (the farm also recognises the same files zipped any other way); a file's executable bit
is kept, and nothing else of its mode.
"""

import io
import zipfile
from pathlib import Path

LEFT_OUT = {"train.py", "samples", "__pycache__", ".ipynb_checkpoints"}
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def pack(folder: Path) -> tuple[bytes, list[str]]:
    """The ZIP's bytes, and the names of the files it holds."""
    if not (folder / "predict.py").is_file():
        raise FileNotFoundError(f"{folder} has no predict.py: point at a model's folder")
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not LEFT_OUT & set(path.relative_to(folder).parts)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            entry = zipfile.ZipInfo(path.relative_to(folder).as_posix(), FIXED_TIME)
            # the executable bit only, as the image keeps it (0755 or 0644)
            entry.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    return buffer.getvalue(), [path.relative_to(folder).as_posix() for path in files]
