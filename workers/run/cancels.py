"""Cancel requests reaching the jobs this worker process is running.

The API marks the job CANCELED in the database and publishes its id (core/events.py). Every
inference worker listens; the one running the job kills the job's container (discarding it, if
warm) and a batch starts no further item. Whatever the job would still record is dropped by the
lifecycle, since CANCELED is terminal. A notice missed while Redis is away only means the job
runs to its end unseen.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from core.events import JOB_CANCELED_CHANNEL
from core.settings import settings

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


def listen_forever() -> None:
    """Subscribes to cancel notices and acts on them; reconnects when Redis goes away."""
    while True:
        try:
            client = redis.Redis.from_url(settings.redis_url, health_check_interval=30)
            subscription = client.pubsub(ignore_subscribe_messages=True)
            subscription.subscribe(JOB_CANCELED_CHANNEL)
            for message in subscription.listen():
                _cancel(message["data"].decode())
        except redis.RedisError:
            logger.warning("cancel listener lost Redis; reconnecting", exc_info=True)
            time.sleep(1)


def start_listener() -> None:
    threading.Thread(target=listen_forever, name="cancel-listener", daemon=True).start()
