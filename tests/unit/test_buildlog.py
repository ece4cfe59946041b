"""The build log: kept readable mid-build, bounded in size, and never a reason to fail a build."""

import pytest

from core.settings import settings
from workers.build import buildlog
from workers.build.buildlog import StreamingLog


class _Store:
    def __init__(self, fail: bool = False) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail = fail
        self.writes = 0

    def put_bytes(self, key: str, data: bytes, _content_type: str) -> None:
        self.writes += 1
        if self.fail:
            raise ConnectionError("object storage is down")
        self.objects[key] = data


def test_the_log_is_written_as_it_grows(monkeypatch):
    store = _Store()
    log = StreamingLog(store, "build-logs/x.log")
    log("step 1\n")  # the first line is flushed at once
    assert store.objects["build-logs/x.log"] == b"step 1\n"
    log("step 2\n")  # within FLUSH_EVERY_S: buffered
    assert store.objects["build-logs/x.log"] == b"step 1\n"
    log.flush()
    assert store.objects["build-logs/x.log"] == b"step 1\nstep 2\n"


def test_a_huge_log_keeps_its_start_and_its_end(monkeypatch):
    monkeypatch.setattr(buildlog, "MAX_BYTES", 400)
    log = StreamingLog(_Store(), "k")
    for number in range(200):
        log(f"line {number:03}\n")
    assert log.text.startswith("line 000\n")
    assert log.text.endswith("line 199\n")
    assert "characters left out" in log.text
    assert len(log.text) < 800


def test_object_storage_down_mid_build_does_not_stop_the_build(monkeypatch):
    store = _Store(fail=True)
    log = StreamingLog(store, "k")
    log("step 1\n")  # the periodic write fails: logged, not raised
    monkeypatch.setattr(settings, "farm_retry_attempts", 2)
    monkeypatch.setattr(settings, "farm_retry_window_s", 0)
    log.close()  # the final write is retried, then given up without raising
    assert store.writes == 3
    store.fail = False
    log.close()
    assert store.objects["k"] == b"step 1\n"


def test_flush_itself_raises_so_the_caller_can_retry():
    with pytest.raises(ConnectionError):
        StreamingLog(_Store(fail=True), "k").flush()
