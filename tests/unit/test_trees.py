"""The folders big models' smoke tests mount (workers/build/trees.py): one build at a time in
each, empty when taken and when let go, and the same folders every time, since a sandbox
started ahead has them mounted already."""

import os
import shutil

import pytest

from core.settings import settings
from tests.utils import cached_bytes
from workers.build import trees


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "cache_dir", str(tmp_path))


def _fill(slot) -> None:
    (slot / "model" / "pkg").mkdir()
    (slot / "model" / "pkg" / "weights.bin").write_bytes(b"w")
    (slot / "opt" / "modelfarm" / "runner.py").write_text("r")


def test_two_builds_at_once_hold_two_slots_and_the_next_takes_the_free_one():
    with trees.leased() as first:
        with trees.leased() as second:
            assert first != second
        with trees.leased() as third:
            assert third == second
    with trees.leased() as again:
        assert again == first


def test_a_slot_is_empty_when_taken_and_let_go_and_keeps_its_folders():
    with trees.leased() as slot:
        folders = {place: (slot / place).stat().st_ino for place in ("model", "opt/modelfarm")}
        _fill(slot)
    assert [list((slot / place).iterdir()) for place in folders] == [[], []]
    _fill(slot)  # as a killed build leaves it
    with trees.leased() as taken:
        assert taken == slot
        assert [list((slot / place).iterdir()) for place in folders] == [[], []]
        assert {place: (slot / place).stat().st_ino for place in folders} == folders


def test_a_failed_build_lets_go_of_an_empty_slot():
    with pytest.raises(RuntimeError), trees.leased() as slot:
        _fill(slot)
        raise RuntimeError("the build failed")
    assert list((slot / "model").iterdir()) == []
    with trees.leased() as again:
        assert again == slot


@pytest.mark.skipif(shutil.which("fincore") is None, reason="no fincore")
def test_the_worker_reads_a_trees_files_into_the_page_cache_ahead_of_the_model():
    with trees.leased() as slot:
        weights = slot / "model" / "weights.bin"
        weights.write_bytes(os.urandom(3 * trees.WINDOW_BYTES + 5))
        with weights.open("rb") as written:  # written back, then out of the page cache
            os.fsync(written.fileno())
            os.posix_fadvise(written.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        if cached_bytes(weights) == weights.stat().st_size:
            pytest.skip(f"{slot} is on a file system whose pages cannot be dropped")
        trees.read_ahead([weights])
        assert cached_bytes(weights) >= weights.stat().st_size  # in whole pages
