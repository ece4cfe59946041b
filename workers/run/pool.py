"""The inference worker's pool of warm containers, shared by all its job threads.

Containers are kept per key (image, owner of the job, limits) and never shared across keys; a
standby (pre-pull's, started before any job) has no owner until a job takes it. An
idle container is stopped after MODELFARM_WARM_IDLE_S; at most MODELFARM_WARM_MAX exist, and
their memory limits add up to at most MODELFARM_WARM_MEMORY_MB, so warm containers cannot
starve one-shot runs: past either bound the least recently used idle one is stopped, and when
none is idle the job runs cold.
"""

import logging
import threading
import time

import docker

from core import metrics
from core.settings import settings
from workers import images
from workers.run import failures, outputs, sandbox
from workers.run.cancels import Watch
from workers.run.live import Live
from workers.run.request import RunnerRequest
from workers.run.warm import WarmContainer

logger = logging.getLogger(__name__)


class WarmPool:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._idle: list[WarmContainer] = []  # least recently used first
        self._busy: set[WarmContainer] = set()
        self._starting: list[sandbox.Limits] = []  # room reserved for containers being made
        self._lock = threading.Lock()
        self._client: docker.DockerClient | None = None

    def run(
        self, image: str, user: str, limits: sandbox.Limits, requests: list[RunnerRequest],
        watch: Watch, live: Live | None = None,
    ) -> list[sandbox.RunResult] | None:  # fmt: skip
        """The requests on a warm container of this key (WarmContainer.predict_all);
        None when the bounds allow no container (the caller runs cold). A container that
        failed a request or was canceled is discarded afterwards."""
        key = (image, user, limits)
        container, outcome = self._take(key), "hit"
        if container is None and (container := self._take((image, None, limits))):
            container.key, outcome = key, "standby"  # the user's alone from now on
        if container is None:
            container = self._start(image, key)
            outcome = "miss" if container else "full"
        metrics.WARM_REQUESTS.labels(outcome).inc()
        if container is None:
            return None
        try:
            with watch.running(container.container.kill):
                results = container.predict_all(requests, live)
        except BaseException:
            self._discard(container)
            raise
        reusable = len(results) == len(requests) and all(_reusable(r, limits) for r in results)
        self._give_back(container, reusable=reusable and not watch.canceled)
        return results

    def prewarm(self, image: str, user: str, limits: sandbox.Limits) -> bool:
        """Starts an idle container of this key ahead of its first job, unless one is idle
        already; False when the bounds leave no room."""
        return self._ahead(image, (image, user, limits), standby=False)

    def standby(self, image: str, limits: sandbox.Limits) -> bool:
        """Starts a standby container of the image (WarmContainer), which the next job of any
        user with these limits takes, unless one is idle already; only into room the bounds
        leave free (none is stopped for it), and first to be stopped when room is wanted."""
        return self._ahead(image, (image, None, limits), standby=True)

    def _ahead(self, image: str, key: tuple, *, standby: bool) -> bool:
        with self._lock:
            if any(c.key == key and c.is_alive() for c in self._idle):
                return True
        container = self._start(image, key, make_room=not standby)
        if container is None:
            return False
        with self._lock:
            self._busy.discard(container)
            # A standby is the least recently used: stopped first.
            self._idle.insert(0 if standby else len(self._idle), container)
        return True

    def _take(self, key: tuple) -> WarmContainer | None:
        """An idle, still running container of this key (the most recently used)."""
        while True:
            with self._lock:
                self._reap_locked()
                found = next((c for c in reversed(self._idle) if c.key == key), None)
                if found is None:
                    return None
                self._idle.remove(found)
                self._busy.add(found)
            if found.is_alive():
                return found
            self._discard(found)  # stopped behind our back: removed, or its process died

    def _start(self, image: str, key: tuple, *, make_room: bool = True) -> WarmContainer | None:
        limits = key[2]
        with self._lock:
            while make_room and self._idle and not self._room_for(limits):
                self._stop(self._idle.pop(0))
            if not self._room_for(limits):
                return None
            self._starting.append(limits)
        try:
            images.pull(self._docker(), image)  # by digest, when this engine lacks it
            container = WarmContainer(self._docker(), image, key, limits=limits, owner=self.owner)
        finally:
            with self._lock:
                self._starting.remove(limits)
        with self._lock:
            self._busy.add(container)
        return container

    def _room_for(self, limits: sandbox.Limits) -> bool:
        held = [*(c.limits for c in (*self._idle, *self._busy)), *self._starting]
        memory = sum(each.memory_mb for each in held)
        return (
            len(held) < settings.warm_max and memory + limits.memory_mb <= settings.warm_memory_mb
        )

    def _give_back(self, container: WarmContainer, *, reusable: bool) -> None:
        with self._lock:
            self._busy.discard(container)
            if reusable:
                self._idle.append(container)
                return
        self._stop(container)

    def _discard(self, container: WarmContainer) -> None:
        with self._lock:
            self._busy.discard(container)
        self._stop(container)

    def _reap_locked(self) -> None:
        cutoff = time.monotonic() - settings.warm_idle_s
        for container in [c for c in self._idle if c.last_used < cutoff]:
            self._idle.remove(container)
            self._stop(container)

    def reap(self) -> None:
        """Stops containers idle for too long (also run by a timer, for quiet workers)."""
        with self._lock:
            self._reap_locked()

    def _stop(self, container: WarmContainer) -> None:
        try:
            container.discard()
        except Exception:  # already gone; the worker's next start removes leftovers by label
            logger.warning("could not remove warm container %s", container.container.id)

    def _docker(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker.from_env(timeout=settings.sandbox_timeout_s + 60)
        return self._client


def _reusable(result: sandbox.RunResult, limits: sandbox.Limits) -> bool:
    """A container is kept only after a request that went entirely right."""
    if failures.failure_message(result, limits) is not None or result.archive is None:
        return False
    try:
        result.output_files(limits.output_mb * 1024**2)
    except outputs.OutputError:
        return False
    return True


_shared: WarmPool | None = None
_shared_lock = threading.Lock()


def shared(owner: str) -> WarmPool:
    """The worker process's one pool, with its idle timer."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = WarmPool(owner)
            threading.Thread(target=_reap_forever, args=(_shared,), daemon=True).start()
            pool = _shared
            metrics.WARM_CONTAINERS.labels("idle").set_function(lambda: len(pool._idle))
            metrics.WARM_CONTAINERS.labels("busy").set_function(lambda: len(pool._busy))
        return _shared


def _reap_forever(pool: WarmPool) -> None:
    while True:
        time.sleep(min(30, settings.warm_idle_s))
        pool.reap()
