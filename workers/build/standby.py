"""Smoke-test sandboxes started ahead of the build that will use them.

Starting a sandbox costs the engine about 0.15 s on these machines, a third of a code-only
build. A smoke test's container does not depend on the model (its files come on stdin, or a big
model's are laid out in a folder it mounts, the same for every build that leases it: trees.py),
only on the set's virtualenv copy, the image's configuration, the limits and that folder: so
after each smoke test the worker starts the next one's container of the same kind, in the
background, and the next build of that kind takes it instead of starting one. Each container
serves one smoke test and is removed after it, as any sandbox; one is kept per kind, for the
last MAX_KINDS kinds, and a worker that starts removes what its predecessor left (by the sandbox
labels, tasks.remove_leftovers).
"""

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import structlog
from docker.models.containers import Container

from workers import images
from workers.run import sandbox

logger = structlog.get_logger(__name__)
MAX_KINDS = 4
Start = Callable[[object], Container]  # starts one, given a docker client

_lock = threading.Lock()
_ready: OrderedDict[str, Future[str]] = OrderedDict()  # container ids
_starter = ThreadPoolExecutor(1, thread_name_prefix="standby")


def take(client, kind: str) -> Container | None:
    """The started container kept for this kind, if there is one still waiting."""
    with _lock:
        future = _ready.pop(kind, None)
    if future is None:
        return None
    try:
        container = client.containers.get(future.result())
    except Exception:
        logger.warning("a standby sandbox failed to start or is gone", exc_info=True)
        return None
    if container.status != "running":  # it died waiting (its copy was removed, the engine...)
        sandbox.remove(container)
        return None
    return container


def prepare(kind: str, start: Start) -> None:
    """Starts a container of this kind in the background, for the next take(kind)."""
    with _lock:
        if kind in _ready:
            return
        _ready[kind] = _starter.submit(_started, start)
        while len(_ready) > MAX_KINDS:
            _, oldest = _ready.popitem(last=False)
            oldest.add_done_callback(_discard)


def _started(start: Start) -> str:
    client = images.docker_client()
    try:
        return start(client).id
    finally:
        client.close()


def _discard(future: Future[str]) -> None:
    if future.exception() is not None:
        return
    client = images.docker_client()
    try:
        images.remove_container(client, future.result())
    finally:
        client.close()
