"""Exclusive, expiring claims on a version or job, so a task runs once at a time.

A claim is a Redis lock renewed by a heartbeat while its holder is alive. If the holder dies,
the lock expires within LEASE_TTL_S and a redelivered task takes the work over.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import redis
from redis.exceptions import LockError

from core import deadlines
from core.settings import settings

# A claim outlives a dead holder by at most this long (MODELFARM_LEASE_TTL_S).
LEASE_TTL_S = settings.lease_ttl_s
_redis = deadlines.redis_client()


class Busy(Exception):
    """Another live worker holds the claim."""


def claim_name(what: str, row_id: object) -> str:
    """The claim on one version or job: "version:<id>", "job:<id>"."""
    return f"{what}:{row_id}"


def _key(name: str) -> str:
    return f"modelfarm:lease:{name}"


def is_held(name: str) -> bool:
    """Whether a live worker holds this claim (a dead one's expires within LEASE_TTL_S)."""
    return bool(_redis.exists(_key(name)))


@contextmanager
def claim(
    name: str, *, wait_s: float = 0, on_wait: Callable[[], object] | None = None
) -> Iterator[None]:
    """Holds the claim for the block. Busy when a live worker holds it, after waiting up to
    wait_s for it to let go; on_wait() is called once if the wait begins (to say why)."""
    lock = _redis.lock(_key(name), timeout=LEASE_TTL_S, thread_local=False)
    acquired = lock.acquire(blocking=False)
    if not acquired and wait_s > 0:
        if on_wait is not None:
            on_wait()
        acquired = lock.acquire(blocking=True, blocking_timeout=wait_s)
    if not acquired:
        raise Busy(name)
    stop = threading.Event()
    heartbeat = threading.Thread(target=_renew, args=(lock, stop), daemon=True)
    heartbeat.start()
    try:
        yield
    finally:
        stop.set()
        heartbeat.join()
        with suppress(LockError):  # expired meanwhile: nothing to release
            lock.release()


def _renew(lock, stop: threading.Event) -> None:
    """Renews the claim every third of its lifetime. A renewal Redis leaves unanswered is tried
    again at the next beat; a claim that expired meanwhile (Redis hung for longer than a lease)
    is taken back unless another worker took it."""
    while not stop.wait(LEASE_TTL_S / 3):
        try:
            lock.reacquire()
        except LockError:
            if not _take_back(lock):
                return
        except redis.RedisError:
            continue


def _take_back(lock) -> bool:
    try:
        return lock.acquire(blocking=False)
    except redis.RedisError:
        return True  # unanswered again: the next beat tries once more
