"""The farm's tars (core/context.tar_pieces) are tarfile's, byte for byte, however their files'
bytes are copied: a change would rename every layer a build made before (layers.TAR_RECIPE)."""

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from core import context
from workers.build import direct, layers


def _files(root: Path) -> context.Context:
    root.mkdir()
    made = {
        "weights/big.bin": (os.urandom(direct.BUFFER_BYTES + 777), False),  # more than a buffer
        "weights/empty": (b"", False),
        "weights/tool.sh": (b"#!/bin/sh\n", True),
        "weights/" + "long-name-" * 12 + ".bin": (b"a pax header for its name", False),
        "weights/noms/poids-é.bin": (b"\0" * 512, False),  # a name beyond ASCII, a full block
    }
    files = {}
    for path, (data, executable) in made.items():
        source = root / path.replace("/", "_")
        source.write_bytes(data)
        files[path] = context.Entry(source, executable)
    return files


def _tarfile_bytes(files: context.Context, prefix: str) -> bytes:
    """The tar as tarfile writes it of the same entries (the farm's layout before tar_pieces)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for folder in context._folders(prefix, [*files, ""]):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path in sorted(files):
            info = tarfile.TarInfo(prefix + path)
            info.mode = 0o755 if files[path].executable else 0o644
            info.size = files[path].source.stat().st_size
            with files[path].source.open("rb") as data:
                tar.addfile(info, data)
    return out.getvalue()


def test_a_layer_is_the_tar_tarfile_writes_and_is_named_by_its_sha256(tmp_path):
    files = _files(tmp_path / "files")
    expected = _tarfile_bytes(files, "model/")
    layer = layers.write_layer(tmp_path / "layer.tar", files, prefix="model/")
    assert (tmp_path / "layer.tar").read_bytes() == expected
    assert layer.size == len(expected) and len(expected) % tarfile.RECORDSIZE == 0
    assert layer.digest == layer.diff_id == f"sha256:{hashlib.sha256(expected).hexdigest()}"
    out = io.BytesIO()
    context.write_tar(out, files, prefix="model/", folders=[""])
    assert out.getvalue() == expected
    with tarfile.open(tmp_path / "layer.tar") as tar:  # and tarfile reads it back
        assert tar.extractfile("model/weights/tool.sh").read() == b"#!/bin/sh\n"


@pytest.mark.parametrize("size", [100, direct.BUFFER_BYTES + 1])
def test_a_file_that_shrinks_while_its_layer_is_written_fails_the_layer(
    tmp_path, monkeypatch, size
):
    source = tmp_path / "weights.bin"
    source.write_bytes(b"w" * size)
    pieces = context.tar_pieces

    def shrinking(files, **where):  # the file cut by one byte once its header is written
        for piece in pieces(files, **where):
            if isinstance(piece, context.FileBytes):
                os.truncate(piece.source, piece.size - 1)
            yield piece

    monkeypatch.setattr(context, "tar_pieces", shrinking)
    with pytest.raises(OSError, match="changed while it was"):
        layers.write_layer(tmp_path / "l.tar", {"w": context.Entry(source, False)}, prefix="m/")
