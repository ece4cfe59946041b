"""Image layers as files on the build host's disk, never whole in memory, with the two digests an
image names a layer by.

- A model image's own layers (each COPY of a context folder) are tars written straight to disk
  and hashed as they are written (direct.py), and kept uncompressed. Measured here (zlib, one
  core): on float32 weights drawn at random gzip saves 7.1 % at level 1 (7.4 % at 6) at
  17-19 MB/s, on random bytes nothing at 30 MB/s, while sha256 runs at 1.4 GB/s: gzipping
  1 GB of weights on both cores would cost 20-30 s to save 70 MB that a registry nearby stores
  in well under a second.
  The Docker engine pulls uncompressed layers as it pulls gzipped ones (verified on 20.10).
  The blob is the tar, so its digest is its diff_id.
- Such a layer is named by what its files hold (content_name: each file's path, mode and
  sha256, which the package's extraction computed while writing it), so a layer a build made
  before is found without making it again (known/remember): a code-only change on a model with
  gigabytes of weights neither tars, hashes nor uploads them.
- The dependency layer (a virtualenv: compresses about 3x) is read out of its container and
  gzipped on every core as it streams (the engine's own push gzips on one core at level 6:
  6 s for 180 MB here, against 2 s), each piece written to disk as it is done (direct.py).
"""

import hashlib
import json
import os
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from core import context, deadlines, registry
from workers.build.direct import DirectWriter

PIECE_BYTES = 4 * 1024 * 1024
GZIP_LEVEL = 1  # the engine's pull decompresses any level alike; level 1 is 3x faster than 6
_GZIP_HEADER = 16 + zlib.MAX_WBITS  # wbits for zlib to write a gzip member
# What a layer's content name stands for: the tar context.write_tar makes of the files. A
# change to how it writes them must change this, or old names would name other bytes.
TAR_RECIPE = "pax, sorted, root, no times, folders 0755, files 0644/0755 (v1)"
_KNOWN_TTL_S = 30 * 24 * 3600
_redis = deadlines.redis_client()


@dataclass(frozen=True)
class Layer:
    path: Path | None  # the blob on this host's disk; None when it was found, not made
    size: int
    digest: str  # sha256:<hex> of the blob: the manifest names it by this
    diff_id: str  # sha256:<hex> of the tar: the image's configuration names it by this
    media_type: str

    @property
    def entry(self) -> dict:
        """The layer's entry in an image manifest."""
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest}


def write_layer(path: Path, files: context.Context, *, prefix: str) -> Layer:
    """The uncompressed layer of the files under the folder prefix ("model/"), written to path
    straight to the disk (direct.py)."""
    with DirectWriter(path) as blob:
        for piece in context.tar_pieces(files, prefix=prefix, folders=[""]):
            if isinstance(piece, bytes):
                blob.write(piece)
            else:
                with piece.source.open("rb", buffering=0) as source:
                    blob.copy_from(source, piece.size)
    digest = f"sha256:{blob.sha256()}"
    return Layer(path, blob.size, digest, digest, registry.LAYER_TAR)


def content_name(files: context.Context, *, prefix: str) -> str | None:
    """The name of the layer write_layer would make of these files, without making it: None
    unless every file's sha256 is known."""
    if any(entry.sha256 is None for entry in files.values()):
        return None
    digest = hashlib.sha256(f"{TAR_RECIPE}\0{prefix}\n".encode())
    for path in sorted(files):
        entry = files[path]
        digest.update(f"{path}\0{int(entry.executable)}\0{entry.sha256}\n".encode())
    return digest.hexdigest()


def _known_key(name: str) -> str:
    return f"modelfarm:layer:{name}"


def known(name: str | None) -> Layer | None:
    """The layer a build made before of the files named `name` (it may have left the registry
    since: the caller checks), without its file."""
    found = _redis.get(_known_key(name)) if name else None
    if found is None:
        return None
    _redis.expire(_known_key(name), _KNOWN_TTL_S)
    return Layer(None, **json.loads(found))


def remember(name: str | None, layer: Layer) -> None:
    if name:
        fields = {"size": layer.size, "digest": layer.digest, "diff_id": layer.diff_id,
                  "media_type": layer.media_type}  # fmt: skip
        _redis.set(_known_key(name), json.dumps(fields), ex=_KNOWN_TTL_S)


def _gzip(piece: bytes) -> bytes:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_HEADER)
    return compressor.compress(piece) + compressor.flush()  # zlib lets go of the GIL


def read_layer(container, path: str, out: Path) -> Layer:
    """The gzipped layer that adds the folder `path` of the container, as it is now (uid, mode
    and time of every file kept: the bytecode the virtualenv holds is checked against them),
    written to out: the tar cut in pieces gzipped side by side (a gzip file may hold several
    members, one after another), a bounded number of them in memory."""
    stream, _ = container.get_archive(path, chunk_size=PIECE_BYTES)
    tar = hashlib.sha256()
    pending: deque[Future[bytes]] = deque()
    workers = os.cpu_count() or 1
    with DirectWriter(out) as blob, ThreadPoolExecutor(workers) as pool:
        for piece in _pieces(stream):
            tar.update(piece)
            pending.append(pool.submit(_gzip, piece))
            while len(pending) > 2 * workers:  # in order
                blob.write(pending.popleft().result())
        while pending:
            blob.write(pending.popleft().result())
    digest = f"sha256:{blob.sha256()}"
    return Layer(out, blob.size, digest, f"sha256:{tar.hexdigest()}", registry.LAYER_GZIP)


def _pieces(stream):
    """The stream's bytes in pieces of PIECE_BYTES (its chunks come in any size)."""
    buffer = bytearray()
    for chunk in stream:
        buffer += chunk
        while len(buffer) >= PIECE_BYTES:
            yield bytes(buffer[:PIECE_BYTES])
            del buffer[:PIECE_BYTES]
    if buffer:
        yield bytes(buffer)
