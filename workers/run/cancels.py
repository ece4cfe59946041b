"""Cancel requests reaching the jobs this worker process is running.

The API marks the job CANCELED in the database and publishes its id (core/events.py). Every
inference worker listens; the one running the job kills the job's container (discarding it, if
warm) and a batch starts no further item. Whatever the job would still record is dropped by the
lifecycle, since CANCELED is terminal. A notice missed while Redis is away only means the job
runs to its end unseen.
"""

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from core import events
from core.events import JOB_CANCELED_CHANNEL

logger = logging.getLogger(__name__)


class Watch:
    """One running job's cancel flag, and how to stop what it is running right now."""

    def __init__(self) -> None:
        self._canceled = threading.Event()
        self._kill: Callable[[], None] | None = None
        self._lock = threading.Lock()

    @property
    def canceled(self) -> bool:
        return self._canceled.is_set()

    def cancel(self) -> None:
        with self._lock:
            self._canceled.set()
            kill = self._kill
        if kill is not None:
            _quietly(kill)

    @contextmanager
    def running(self, kill: Callable[[], None]) -> Iterator[None]:
        """While inside, a cancel calls kill(); a cancel that came first calls it at once."""
        with self._lock:
            self._kill = kill
            canceled = self.canceled
        if canceled:
            _quietly(kill)
        try:
            yield
        finally:
            with self._lock:
                self._kill = None


def _quietly(kill: Callable[[], None]) -> None:
    try:
        kill()
    except Exception:  # already stopped: nothing left to cancel
        logger.info("the container to cancel had already stopped", exc_info=True)


_active: dict[str, Watch] = {}
_active_lock = threading.Lock()


@contextmanager
def watching(job_id: uuid.UUID) -> Iterator[Watch]:
    watch = Watch()
    with _active_lock:
        _active[str(job_id)] = watch
    try:
        yield watch
    finally:
        with _active_lock:
            _active.pop(str(job_id), None)


def _cancel(job_id: str) -> None:
    with _active_lock:
        watch = _active.get(job_id)
    if watch is not None:
        logger.info("job %s canceled by its owner", job_id)
        watch.cancel()


def start_listener() -> None:
    def act(payload: bytes) -> None:
        _cancel(payload.decode())

    threading.Thread(target=events.listen_forever, args=(JOB_CANCELED_CHANNEL, act),
                     name="cancel-listener", daemon=True).start()  # fmt: skip
