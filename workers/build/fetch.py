"""The sealed package, extracted while it downloads.

A ZIP's directory is at its end, so extraction used to wait for the whole download, and a model
of gigabytes paid for both in turn. Here the end of the package (its directory) is fetched
first with a ranged GET and written where it belongs in the file; the download then writes the
file from its start in a thread, and zipfile reads it through GrowingFile, whose reads wait
until the bytes they ask for are there. The download hashes the package on its way, bounded by
the sealed size as before; memory stays at a chunk.
"""

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from io import RawIOBase
from pathlib import Path

from core.storage import Storage

# Enough for the directory of thousands of files; a bigger one is read as the download reaches it.
TAIL_BYTES = 1024**2


class Gone(Exception):
    """The package is not in storage."""


class _Stopped(Exception):
    """Extraction ended early: the download has nothing left to feed."""


class GrowingFile(RawIOBase):
    """A file being written from its start (and already holding its tail, from tail_start on),
    read as if whole: a read waits until its bytes are written, or fails with the writer."""

    def __init__(self, path: Path, size: int, tail_start: int) -> None:
        self._file, self._size, self._tail_start = path.open("rb"), size, tail_start
        self._written, self._position = 0, 0
        self._failure: BaseException | None = None
        self._stopped = False
        self._changed = threading.Condition()

    # The writer's side.
    def wrote(self, count: int) -> None:
        with self._changed:
            if self._stopped:
                raise _Stopped
            self._written = count
            self._changed.notify_all()

    def failed(self, error: BaseException) -> None:
        with self._changed:
            self._failure = error
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True

    # The reader's side.
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._position = offset + (0, self._position, self._size)[whence]
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer) -> int:
        end = min(self._position + len(buffer), self._size)
        if end <= self._position:
            return 0
        with self._changed:
            self._changed.wait_for(lambda: self._failure is not None or self._there(end))
            if self._failure is not None:
                raise self._failure
        self._file.seek(self._position)
        count = self._file.readinto(memoryview(buffer)[: end - self._position])
        self._position += count
        return count

    def _there(self, end: int) -> bool:
        return end <= self._written or self._position >= self._tail_start

    def close(self) -> None:
        self._file.close()
        super().close()


class Download:
    """The download thread and, once it has ended, the package's sha256."""

    def __init__(self, storage: Storage, key: str, path: Path, size: int, file: GrowingFile):
        self._digest = hashlib.sha256()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(storage, key, path, size, file), name="package-download"
        )
        self._thread.start()

    def _run(self, storage: Storage, key: str, path: Path, size: int, file: GrowingFile):
        try:
            with path.open("r+b") as sink:
                if not storage.stream_to(key, sink, size=size, hashing=self._digest,
                                         progress=file.wrote):  # fmt: skip
                    raise Gone
        except _Stopped:
            pass
        except BaseException as error:  # handed to the reader, which raises it
            self._error = error
            file.failed(error)

    def wait(self) -> None:
        self._thread.join()

    def sha256(self) -> str:
        """Waits for the end of the download; raises what stopped it."""
        self.wait()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()


@contextmanager
def growing(storage: Storage, key: str, size: int, path: Path) -> Iterator[tuple]:
    """(GrowingFile, Download) of the package at key, `size` bytes as sealed, written to path."""
    tail_start = max(0, size - TAIL_BYTES)
    tail = storage.read_range(key, tail_start, size - tail_start)
    if tail is None:
        raise Gone
    with path.open("wb") as sink:
        sink.truncate(size)
        sink.seek(tail_start)
        sink.write(tail)
    file = GrowingFile(path, size, tail_start if len(tail) == size - tail_start else size)
    download = Download(storage, key, path, size, file)
    try:
        yield file, download
    finally:
        file.stop()
        download.wait()
        file.close()
