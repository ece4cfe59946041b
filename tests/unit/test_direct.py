"""A blob written past the page cache (workers/build/direct.py) holds exactly the bytes given, and
is named by their sha256, whatever their length against the disk's blocks and the buffers."""

import hashlib
import io
import os
import shutil
from pathlib import Path

import pytest

from tests.utils import cached_bytes
from workers.build import direct
from workers.build.direct import DirectWriter

SIZES = [0, 1, direct.ALIGN, direct.ALIGN + 1, direct.BUFFER_BYTES, 5 * direct.BUFFER_BYTES + 3]


def _written(path: Path, data: bytes, pieces: int) -> DirectWriter:
    """data written in `pieces` writes of uneven lengths, then the rest copied from a file."""
    with DirectWriter(path) as blob:
        cut = len(data) // 2
        step = max(1, cut // pieces)
        for start in range(0, cut, step):
            blob.write(data[start : min(start + step, cut)])
        blob.copy_from(io.BytesIO(data[cut:]), len(data) - cut)
    return blob


@pytest.mark.parametrize("size", SIZES)
def test_a_blob_holds_its_bytes_and_their_sha256(tmp_path, size):
    data = os.urandom(size)
    blob = _written(tmp_path / "blob", data, pieces=7)
    assert (tmp_path / "blob").read_bytes() == data
    assert blob.size == size and blob.sha256() == hashlib.sha256(data).hexdigest()


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no tmpfs at /dev/shm")
def test_a_file_system_without_direct_writes_gets_them_through_the_page_cache(tmp_path):
    data = os.urandom(direct.BUFFER_BYTES + 5)
    path = Path("/dev/shm") / f"modelfarm-test-{tmp_path.name}"
    try:
        blob = _written(path, data, pieces=3)
        assert path.read_bytes() == data and blob.sha256() == hashlib.sha256(data).hexdigest()
    finally:
        path.unlink(missing_ok=True)


def test_a_source_shorter_than_said_fails_the_blob(tmp_path):
    blob = DirectWriter(tmp_path / "blob")
    with pytest.raises(OSError, match="changed while it was read"), blob:
        blob.copy_from(io.BytesIO(b"short"), 6)


@pytest.mark.skipif(shutil.which("fincore") is None, reason="no fincore")
def test_a_big_blob_goes_around_the_page_cache_and_a_small_one_through_it(tmp_path):
    big, small = tmp_path / "big", tmp_path / "small"
    _written(big, os.urandom(3 * direct.BUFFER_BYTES + 5), pieces=4)
    _written(small, os.urandom(direct.ALIGN * 3), pieces=2)
    if cached_bytes(big) == big.stat().st_size:
        pytest.skip(f"{tmp_path} is on a file system without O_DIRECT")
    assert cached_bytes(big) <= direct.ALIGN  # the unaligned end
    assert cached_bytes(small) == small.stat().st_size
