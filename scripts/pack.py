"""Packs a model folder into a ZIP, byte for byte the same each time for the same files.

    python scripts/pack.py examples/digits-onnx OUT.zip

Leaves out what only the author needs (train.py, samples/, caches), so the package holds the
contract files and the weights. Fixed timestamps and order make an unchanged package hash the
same, which is what lets the farm serve it from the registry instead of rebuilding.
"""

import argparse
import zipfile
from pathlib import Path

LEFT_OUT = {"train.py", "samples", "__pycache__", ".ipynb_checkpoints"}
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def pack(folder: Path, target: Path) -> list[str]:
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not LEFT_OUT & set(path.relative_to(folder).parts)
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            entry = zipfile.ZipInfo(path.relative_to(folder).as_posix(), FIXED_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    return [path.relative_to(folder).as_posix() for path in files]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Pack a model folder into a ZIP.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("target", type=Path)
    arguments = parser.parse_args()
    packed = pack(arguments.folder, arguments.target)
    print(f"packed {arguments.target}: {', '.join(packed)}")
