"""Each build host's own copies of dependency sets' virtualenvs, which smoke tests run on.

A copy is held by a stopped container of the base image, its holder, whose anonymous volume
at /opt/venv holds the virtualenv: a smoke test mounts that volume read-only into its own
container of the base image (smoke.py), so a build never needs the dependency image on its
engine. A new set's holder is its install container itself (dependencies.py); a set built on
another host is copied from the registry: the layer's blob, unpacked by the engine into a new
holder's volume. A holder is complete when its command exited 0; any other (a worker died while
making it) is removed and made again. The least recently used are removed past
MODELFARM_WORKER_VENV_COPIES.
"""

import os
import socket
from pathlib import Path

import structlog
from docker.errors import NotFound
from docker.models.containers import Container

from core import registry
from core.settings import settings
from workers import cache, images, leases

logger = structlog.get_logger(__name__)
VENV = "/opt/venv"
HOLDER_PREFIX = "modelfarm-venv-"
# On a sandbox that mounts a copy: the holder's id (a copy is removed after its sandboxes).
COPY_LABEL = "org.modelfarm.venv-copy"
# This host's engine, as leases name it: one copy is made at a time per engine and set.
ENGINE_KEY = f"{socket.gethostname()}:{os.environ.get('DOCKER_HOST', 'local')}"


def holder_name(tag: str) -> str:
    return f"{HOLDER_PREFIX}{tag}"


def holders(client) -> list[Container]:
    """Every holder of a copy on this engine, complete or not."""
    return client.containers.list(all=True, filters={"name": f"^/{HOLDER_PREFIX}"}, sparse=True)


def complete_holder(client, tag: str) -> Container | None:
    """The set's holder on this engine, if it is complete (an incomplete one is removed)."""
    try:
        holder = client.containers.get(holder_name(tag))
    except NotFound:
        return None
    state = holder.attrs["State"]
    if state["Status"] == "exited" and state["ExitCode"] == 0:
        cache.touch(holder.id)
        return holder
    images.remove_container(client, holder.name)
    return None


def holder(client, tag: str, layer_digest: str, work: Path, log) -> Container:
    """The set's complete holder, copied from the registry if this engine has none yet (its
    blob downloaded into the folder work first)."""
    found = complete_holder(client, tag)
    if found is not None:
        return found
    with leases.claim(f"venv:{ENGINE_KEY}:{tag}", wait_s=settings.build_time_limit_s):
        return complete_holder(client, tag) or _copy(client, tag, layer_digest, work, log)


def _copy(client, tag: str, layer_digest: str, work: Path, log) -> Container:
    log(f"dependencies: copying the virtualenv of {tag[:17]}... from the registry\n")
    blob = work / "venv-copy.tar.gz"
    registry.Registry().download_blob(
        registry.DEPS_REPOSITORY, layer_digest, blob, settings.build_time_limit_s
    )
    name = holder_name(tag)
    images.remove_container(client, name)
    made = client.containers.create(
        settings.base_image, ["true"], name=name, user="0", network_mode="none",
        volumes=[VENV],
    )  # fmt: skip
    with blob.open("rb") as stream:  # the engine gunzips and unpacks it, into the volume
        made.put_archive("/", stream)
    blob.unlink()
    made.start()
    if made.wait(timeout=settings.build_time_limit_s)["StatusCode"] != 0:
        raise images.FarmFault(images.ENGINE, f"the copy of {tag}'s virtualenv did not complete")
    cache.touch(made.id)
    trim(client)
    return made


def trim(client) -> None:
    """Keeps the MODELFARM_WORKER_VENV_COPIES most recently used holders; each one past them
    is removed after the sandboxes that mount its volume (those started ahead, standby.py)."""
    found = holders(client)
    uses = cache.last_uses([holder.id for holder in found])
    by_use = sorted(found, key=lambda holder: uses.get(holder.id, 0), reverse=True)
    for holder in by_use[settings.worker_venv_copies :]:
        try:
            mounting = {"label": f"{COPY_LABEL}={holder.id}"}
            for sandboxed in client.containers.list(all=True, filters=mounting):
                sandboxed.remove(force=True)
            holder.remove(force=True, v=True)
        except Exception:
            logger.warning("a virtualenv copy could not be removed", exc_info=True)
