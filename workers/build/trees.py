"""The folders a big model's smoke test mounts: its image's own files laid out as the image
holds them (executor.py lays them out, hard links to the package's files), so that gigabytes of
weights cost the smoke test no copy and no memory.

Each folder is a slot of this host's build scratch folder, held by one build at a time with a
file lock, and the same for every build that holds it: so the sandbox of the next smoke test can
be started ahead with the slot mounted, before the files are there (smoke.py, standby.py), as
it is for small models. A slot is emptied when a build takes it (what a killed build left) and
when it lets go, keeping its folders themselves: they are what a sandbox started ahead mounts.

The worker reads ahead of the model the files it does not read itself (read_ahead).
"""

import fcntl
import itertools
import mmap
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from core.queue import BUILD_QUEUE
from runner import unpack
from workers.workdirs import work_dir

logger = structlog.get_logger(__name__)
MADV_POPULATE_READ = 22  # Linux 5.14; Python's mmap module does not name it yet
WINDOW_BYTES = 8 * 2**20


@contextmanager
def leased() -> Iterator[Path]:
    """The first slot no other build holds, empty, held for the block."""
    root = work_dir(BUILD_QUEUE) / "trees"
    root.mkdir(exist_ok=True)
    for index in itertools.count():
        lock = os.open(root / f"{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            continue
        slot = root / str(index)
        try:
            empty(slot)
            try:
                yield slot
            finally:
                empty(slot)
        finally:
            os.close(lock)  # and with it the lock
        return


def empty(slot: Path) -> None:
    """The slot's folders (made if missing) with nothing in them."""
    for place in unpack.FOLDERS:
        folder = slot / place
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def read_ahead(files: list[Path]) -> None:
    """Brings files of the tree into the page cache, ahead of the model's own reads of them in
    its smoke test, when the build itself does not read them (executor.py): faulted in by this
    worker, their pages are charged to it rather than to the sandbox, whose memory limit would
    otherwise evict the weights it read beyond that limit, and the next build's smoke test would
    read them from disk again; and what must come from disk is read while the sandbox starts.
    A window at a time, so the worker never maps more than WINDOW_BYTES."""
    try:
        for path in files:
            _populate(path)
    except OSError:  # a kernel before 5.14: the model reads them itself
        logger.warning("the smoke test's files could not be read ahead", exc_info=True)


def _populate(path: Path) -> None:
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        for offset in range(0, size, WINDOW_BYTES):
            length = min(WINDOW_BYTES, size - offset)
            with mmap.mmap(file.fileno(), length, prot=mmap.PROT_READ, offset=offset) as window:
                window.madvise(MADV_POPULATE_READ)
