"""Extraction while the package downloads (workers/build/fetch.py): zipfile reads a file that is
still being written, each read waiting for its bytes; the writer's failure reaches the reader,
and a reader that stops stops the writer."""

import io
import os
import threading
import time
import zipfile

import pytest

from core.storage import NotAsSealed
from workers.build import fetch
from workers.build.fetch import GrowingFile
from workers.build.package import open_package

PREDICT = "def predict(text: str) -> dict:\n    return {'text': text}\n"


def _zip(weights: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("predict.py", PREDICT)
        package.writestr(zipfile.ZipInfo("weights.bin", (2020, 1, 1, 0, 0, 0)), weights)
    return buffer.getvalue()


def _with_tail(path, data: bytes, tail_start: int) -> GrowingFile:
    with path.open("wb") as sink:
        sink.truncate(len(data))
        sink.seek(tail_start)
        sink.write(data[tail_start:])
    return GrowingFile(path, len(data), tail_start)


def test_a_zip_is_extracted_while_it_is_written(tmp_path):
    weights = os.urandom(3 * 1024**2)
    data = _zip(weights)
    path = tmp_path / "package.zip"
    file = _with_tail(path, data, len(data) - 4096)
    read_early = []

    def write() -> None:
        with path.open("r+b") as sink:
            for start in range(0, len(data), 64 * 1024):
                sink.write(data[start : start + 64 * 1024])
                sink.flush()
                file.wrote(min(start + 64 * 1024, len(data)))
                read_early.append(file.tell())  # where the reader stands meanwhile
                time.sleep(0.002)

    writer = threading.Thread(target=write)
    writer.start()
    package = open_package(file, tmp_path / "out", sha256=lambda: "of the download")
    writer.join()
    assert (tmp_path / "out" / "weights.bin").read_bytes() == weights
    assert package.sha256 == "of the download"
    assert any(0 < position < len(data) - 4096 for position in read_early)  # it overlapped


def test_the_writer_s_failure_reaches_the_reader(tmp_path):
    data = _zip(os.urandom(1024**2))
    file = _with_tail(tmp_path / "package.zip", data, len(data) - 4096)
    threading.Timer(0.2, file.failed, args=(NotAsSealed("10 bytes, not 1048700"),)).start()
    with pytest.raises(NotAsSealed):
        open_package(file, tmp_path / "out", sha256=lambda: "unused")


def test_a_reader_that_stops_stops_the_writer(tmp_path):
    file = _with_tail(tmp_path / "package.zip", b"not a zip at all", 0)
    file.wrote(4)
    file.stop()
    with pytest.raises(fetch._Stopped):
        file.wrote(8)
