"""The build host's copies of the package files sent by content (core/contents.py): each one
downloaded once, hashed on the way, and kept by owner and sha256 under the worker's cache
(trimmed with the images and wheels, workers/cache.py), so that a code-only change to a model
of gigabytes reads none of its weights: they are linked into the package from here.

Only bytes whose sha256 is the declared one are ever kept: bytes that are not fail the build as
the user's fault and are removed from the store, so the next push sends them again.
"""

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from core.contents import ContentFile, content_key
from core.disk import flush_to_disk
from core.settings import settings
from core.storage import NotAsSealed, Storage
from workers.build.direct import DirectWriter
from workers.build.package import Fetch, PackageError
from workers.cache import PARTIAL_SUFFIX

HOST_CONTENTS = Path(settings.cache_dir) / "contents"
PUSH_AGAIN = "push the model again (modelfarm push) to send it"


@contextmanager
def fetcher(storage: Storage, owner_id: uuid.UUID, log) -> Iterator[Fetch]:
    """Puts a declared file at its path in the package: a link to this host's copy (a copy
    for an executable one, whose bit the kept file must not get). A copy it downloads is
    flushed to disk and named by its content beside the build (its link goes on at once);
    every one is named by the end of the block."""
    with ThreadPoolExecutor(1) as keeper:
        naming: dict[str, Future] = {}  # by sha256: a content two paths hold is named first

        def fetch(declared: ContentFile, target: Path) -> None:
            if declared["sha256"] in naming:
                naming[declared["sha256"]].result()
            path, downloaded = _kept(storage, owner_id, declared, log)
            _place(path, target, executable=declared["executable"])  # before its renaming
            if downloaded:
                naming[declared["sha256"]] = keeper.submit(_name, path, declared)

        yield fetch
        for named in naming.values():
            named.result()


def _place(path: Path, target: Path, *, executable: bool) -> None:
    if executable:
        shutil.copyfile(path, target)
        target.chmod(0o755)
        return
    try:
        os.link(path, target)
    except OSError:  # the cache on another file system than the build's folder
        shutil.copyfile(path, target)


def _kept(storage: Storage, owner_id: uuid.UUID, declared: ContentFile, log) -> tuple[Path, bool]:
    """This host's copy of the declared file's content, downloaded and checked if missing
    (then under a partial name, for _name); whether it was downloaded."""
    kept = HOST_CONTENTS / str(owner_id) / declared["sha256"]
    if kept.exists():
        os.utime(kept)  # its last use, for the cache's trim
        log(f"{declared['path']}: kept on this host by its content, not downloaded\n")
        return kept, False
    kept.parent.mkdir(parents=True, exist_ok=True)
    partial = kept.with_name(f"{kept.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}")
    started = time.monotonic()
    try:
        _download_checked(storage, content_key(owner_id, declared["sha256"]), declared, partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.chmod(0o444)
    log(f"{declared['path']}: downloaded by its content, {declared['size'] / 1024**2:.2f} MB in "
        f"{time.monotonic() - started:.2f} s\n")  # fmt: skip
    return partial, True


def _name(partial: Path, declared: ContentFile) -> None:
    """The downloaded copy named by its content once it is on the disk: its name says these
    bytes, never a file a crash left half-written."""
    flush_to_disk(partial)
    partial.rename(partial.with_name(declared["sha256"]))


def _download_checked(storage: Storage, key: str, declared: ContentFile, path: Path) -> None:
    """The content at key, to path, straight to the disk (direct.py: measured on 1 GB, 1.4-1.8 s
    against 3.1-4.3 s through the page cache); the user's fault (and the stored bytes removed)
    when it is not the declared size and sha256."""
    try:
        with DirectWriter(path) as copy:
            found = storage.stream(key, copy.write, size=declared["size"])
    except NotAsSealed as error:
        storage.delete(key)
        raise PackageError(
            f"The bytes uploaded for {declared['path']} are not the {declared['size']} declared "
            f"({error}); {PUSH_AGAIN}."
        ) from None
    if not found:
        raise PackageError(f"{declared['path']} is gone from the farm's storage; {PUSH_AGAIN}.")
    if copy.sha256() != declared["sha256"]:
        storage.delete(key)
        raise PackageError(
            f"The bytes uploaded for {declared['path']} do not have the sha256 declared for it "
            f"({declared['sha256']}); {PUSH_AGAIN}."
        )
