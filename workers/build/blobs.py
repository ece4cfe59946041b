"""A build's layers into the registry: through its HTTP API, or, when this host shares the
registry's storage (MODELFARM_REGISTRY_STORAGE_DIR, the local stack's default), put straight
into it.

Why: Debian's Distribution 2.8 (built with Go 1.19, whose sha256 uses no SHA instructions of the
CPU) spends about 6.5 s of CPU to receive 1 GB on these two cores, while the farm has already
hashed each layer as it wrote it. A layer linked into the registry's storage costs nothing
more than its writing did: a sha256 and a copy to disk, the floor of scripts/bench_big.py.

The registry's filesystem layout (distribution's registry/storage/paths.go, unchanged since 2.0):

    docker/registry/v2/blobs/sha256/<first two hex digits>/<hex>/data     the blob's bytes
    docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link      "sha256:<hex>"

A blob appears there whole or not at all: its file is flushed to disk, then hard-linked (copied
across file systems, then renamed) into place, and the repository's link is renamed into place
last. The registry then answers for it as for a pushed one (HEAD, GET, a manifest that names it);
the manifest itself still goes through the HTTP API, which checks that its blobs are there.
"""

import os
import shutil
import uuid
from pathlib import Path

from core import registry
from core.contents import SHA256_HEX
from core.disk import flush_to_disk
from core.settings import settings
from workers.build.layers import Layer
from workers.images import REGISTRY, FarmFault

V2 = Path("docker/registry/v2")
INCOMING = "modelfarm-incoming"  # beside docker/: a folder the registry never reads


def put(hub: registry.Registry, repository: str, layer: Layer) -> None:
    """The layer's blob into repository, unless it is there."""
    if layer.path is None:
        raise ValueError(f"layer {layer.digest} has no file to put")
    if settings.registry_storage_dir:
        place(Path(settings.registry_storage_dir), repository, layer.digest, layer.path)
        if not hub.has_blob(repository, layer.digest):
            raise FarmFault(
                REGISTRY, f"it does not see {layer.digest} put into MODELFARM_REGISTRY_STORAGE_DIR "
                f"({settings.registry_storage_dir}): is that folder its storage?",
            )  # fmt: skip
    else:
        hub.push_blob(repository, layer.digest, layer.path, settings.build_time_limit_s)


def place(root: Path, repository: str, digest: str, path: Path) -> None:
    """The file at path (whose sha256 is digest: the caller computed it while writing it) as
    the blob digest of repository, in the registry storage under root."""
    algorithm, hex_digest = _parts(digest)
    if any(part in ("", ".", "..") for part in repository.split("/")):
        raise ValueError(f"not a repository name: {repository!r}")
    blob = root / V2 / "blobs" / algorithm / hex_digest[:2] / hex_digest / "data"
    if not blob.exists():
        flush_to_disk(path)
        blob.parent.mkdir(parents=True, exist_ok=True)
        _appear(blob, lambda temp: _link_or_copy(path, temp), root)
    link = root / V2 / "repositories" / repository / "_layers" / algorithm / hex_digest / "link"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        _appear(link, lambda temp: temp.write_text(digest), root)


def _parts(digest: str) -> tuple[str, str]:
    algorithm, _, hex_digest = digest.partition(":")
    if algorithm != "sha256" or not SHA256_HEX.match(hex_digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return algorithm, hex_digest


def _appear(target: Path, make, root: Path) -> None:
    """target made by make(temp) in a folder the registry never reads, then renamed into place
    (atomic on one file system: the registry sees all of it or nothing)."""
    incoming = root / INCOMING
    incoming.mkdir(exist_ok=True)
    temp = incoming / uuid.uuid4().hex
    try:
        make(temp)
        temp.rename(target)
    finally:
        temp.unlink(missing_ok=True)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # the build's folder on another file system than the registry's storage
        shutil.copyfile(source, target)
        flush_to_disk(target)
