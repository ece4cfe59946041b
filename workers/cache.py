"""Each worker host's disk under a budget (MODELFARM_WORKER_CACHE_GB): the engine's images, the
wheelhouse and the package files kept by content (workers/build/contents.py), removed least
recently used first.

An image's uses (built, or found or pulled for a build or a job) are recorded in Redis, per host
(`touch`); an image never recorded counts as used when `trim` first sees it. A file's last use is
its modification time (set when a build takes the wheel or the content). `trim` removes what was
used longest ago until the engine's layers and the files fit, and never
an image that a container uses (running, or a stopped one) nor the base image: what is in use
stays, even past the budget. What it removes comes back from the registry, or from the index, the
next time it is needed.
"""

import socket
import time
from pathlib import Path

import docker
import structlog
from docker.errors import APIError, ImageNotFound

from core import deadlines
from core.settings import settings

logger = structlog.get_logger(__name__)
USES_KEY = f"modelfarm:image-uses:{socket.gethostname()}"
# A file on its way into a kept folder is written under a name with this suffix, then renamed.
PARTIAL_SUFFIX = ".part"
_redis = deadlines.redis_client()


def touch(*image_ids: str) -> None:
    """Records a use of these images now."""
    if image_ids:
        _redis.zadd(USES_KEY, {image_id: time.time() for image_id in image_ids})


def last_uses(ids: list[str]) -> dict[str, float]:
    """When each of these was last used, for those recorded."""
    if not ids:
        return {}
    return {id_: used for id_, used in zip(ids, _redis.zmscore(USES_KEY, ids), strict=True) if used}


def trim_to_budget(client: docker.DockerClient, *folders: Path) -> None:
    """trim to MODELFARM_WORKER_CACHE_GB, as a worker does after it added to its cache; a
    failure is logged, never the work's."""
    try:
        trim(client, int(settings.worker_cache_gb * 1024**3), *folders)
    except Exception:
        logger.exception("cache: trimming failed")


def trim(client: docker.DockerClient, budget: int, *folders: Path) -> list[str]:
    """Removes the least recently used images and files (those in folders) until they fit in
    budget bytes; the image ids and file paths it removed, oldest first."""
    files = _files(folders)
    size = client.df()["LayersSize"] + sum(path.stat().st_size for path in files)
    if size <= budget:
        return []
    removed = []
    for _, kind, what in _oldest_first(client, files):
        if size <= budget:
            break
        if kind == "file":
            size -= what.stat().st_size
            what.unlink(missing_ok=True)
        elif _remove_image(client, what):
            size = client.df()["LayersSize"] + sum(p.stat().st_size for p in _files(folders))
        else:
            continue
        removed.append(str(what))
    logger.info("cache trimmed", removed=len(removed), size=size, budget=budget)
    return removed


def _oldest_first(client: docker.DockerClient, files: list[Path]) -> list[tuple]:
    """(last use, "image" or "file", id or path) of everything that may go, oldest first."""
    image_ids = [image.id for image in client.images.list()]
    if image_ids:
        _redis.zadd(USES_KEY, dict.fromkeys(image_ids, time.time()), nx=True)
    used_at = last_uses(image_ids)
    kept = _in_use(client) | _base_image_ids(client)
    images = [(used_at[id_], "image", id_) for id_ in image_ids if id_ not in kept]
    kept_files = [(path.stat().st_mtime, "file", path) for path in files]
    return sorted(images + kept_files, key=lambda each: each[0])


def _in_use(client: docker.DockerClient) -> set[str]:
    return {container.attrs["Image"] for container in client.containers.list(all=True)}


def _base_image_ids(client: docker.DockerClient) -> set[str]:
    try:
        return {client.images.get(settings.base_image).id}
    except ImageNotFound:
        return set()


def _remove_image(client: docker.DockerClient, image_id: str) -> bool:
    try:
        client.images.remove(image_id, force=True)
    except ImageNotFound:
        pass
    except APIError:  # a container started on it since the listing: it stays
        return False
    _redis.zrem(USES_KEY, image_id)
    return True


def _files(folders: tuple[Path, ...]) -> list[Path]:
    """The files in folders, but those still being written (PARTIAL_SUFFIX)."""
    return [
        path
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file() and not path.name.endswith(PARTIAL_SUFFIX)
    ]
