"""A version's build context (core/context.py) made again from what the farm keeps of it: the
package ZIP and its files sent by content (core/contents.py), the lock's wheels
(core/storage.wheel_key) and the Dockerfile on the version's row, as a tar.gz that
`docker build --network none` builds (GET /api/versions/{id}/context).

The farm's own files (the runner, the installer) are this host's, of the farm's current
release: a version built by an earlier release may have had others.
"""

import gzip
import hashlib
import shutil
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import context
from core.contents import content_key, path_problem
from core.errors import UserFacingError
from core.lifecycle import VersionStatus
from core.models import ModelVersion
from core.storage import NotAsSealed, Storage, wheel_key

PUSH_AGAIN = "push a new version of the model"


class NotKept(UserFacingError):
    """Something the version's context holds is no longer kept, or not as it was built."""


def lock_of(session: Session, version: ModelVersion) -> list[dict]:
    """The version's lock. A version whose image was reused keeps none of its own: its lock is
    that of the version that built the image (the same content key, so the same requirements)."""
    if version.lock is not None:
        return version.lock
    built = session.scalar(
        select(ModelVersion.lock)
        .where(ModelVersion.content_key == version.content_key)
        .where(ModelVersion.reused.is_(False), ModelVersion.status == VersionStatus.READY)
        .limit(1)
    )
    if built is None:
        raise NotKept(
            "This version reused the image of a version that is gone, and its lock of "
            "requirements went with it; push a version with changed files to build afresh."
        )
    return built


def write_version_context(
    out: BinaryIO, *, version: ModelVersion, lock: list[dict], storage: Storage, scratch: Path
) -> None:
    """Writes the context as a tar.gz to out, with scratch (an empty folder) for its files.
    The gzip header holds no time and no name, so equal contexts are equal bytes."""
    package = scratch / "package"
    _extract_package(storage, version, scratch / "package.zip", package)
    _download_content_files(storage, version, package)
    wheels = scratch / "wheels"
    wheels.mkdir()
    for item in lock:
        _download_wheel(storage, item, wheels / item["filename"])
    files = {
        **context.deps_entries(lock, wheels, scratch / context.LOCK_FILE),
        **context.package_entries(package),
        **context.farm_entries(),
    }
    # filename="": else out's own file name goes into the header.
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=0) as tar_gz:
        context.write_context(tar_gz, version.dockerfile, files, scratch)


def _extract_package(storage: Storage, version: ModelVersion, archive: Path, root: Path) -> None:
    """The package's regular files under root, executable as they were in the ZIP."""
    try:
        found = storage.download(version.package_key, archive, size=version.package_size)
    except NotAsSealed:
        found = False
    if not found:
        raise NotKept(f"This version's package is no longer kept as it was built; {PUSH_AGAIN}.")
    with zipfile.ZipFile(archive) as package:
        for entry in package.infolist():
            if entry.is_dir():
                continue
            target = _target(root, entry)
            target.parent.mkdir(parents=True, exist_ok=True)
            with package.open(entry) as source, target.open("xb") as sink:
                shutil.copyfileobj(source, sink)
            if (entry.external_attr >> 16) & 0o111:  # context.package_entries reads the bit
                target.chmod(0o755)


def _target(root: Path, entry: zipfile.ZipInfo) -> Path:
    """Where under root the entry goes. The build checked every name before it accepted the
    package; checked here again, so that no ZIP can ever write outside root."""
    parts = entry.filename.split("/")
    regular = stat.S_IFMT(entry.external_attr >> 16) in (0, stat.S_IFREG)
    if not regular or "\\" in entry.filename or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"the package of a built version holds {entry.filename!r}")
    return root.joinpath(*parts)


def _download_content_files(storage: Storage, version: ModelVersion, root: Path) -> None:
    """The package's files sent by content (core/contents.py) beside the ZIP's under root."""
    for each in version.content_files or []:
        if path_problem(each["path"]):  # checked before the build; again, as for a ZIP's
            raise ValueError(f"the package of a built version holds {each['path']!r}")
        target = root.joinpath(*each["path"].split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        key = content_key(version.model.owner_id, each["sha256"])
        try:
            found = storage.download(key, target, size=each["size"])
        except NotAsSealed:
            found = False
        if not found:
            raise NotKept(f"This version's {each['path']} is no longer kept; {PUSH_AGAIN}.")
        if each["executable"]:
            target.chmod(0o755)


def _download_wheel(storage: Storage, item: dict, path: Path) -> None:
    key = wheel_key(item["sha256"])
    size = storage.size(key)  # the lock has no sizes; a wheel's key names its bytes' sha256
    if size is None or not storage.download(key, path, size=size):
        raise NotKept(
            f"The wheels of this version ({item['filename']} among them) are no longer kept; "
            f"{PUSH_AGAIN} to build and keep them again."
        )
    with path.open("rb") as wheel:
        if hashlib.file_digest(wheel, "sha256").hexdigest() != item["sha256"]:
            raise NotKept(
                f"The kept wheel {item['filename']} is not the one this version locked; "
                f"{PUSH_AGAIN}."
            )
