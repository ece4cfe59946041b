"""Clients that keep the farm's deadlines (core/settings.py: request_deadline_s): one call to a
hung dependency fails within seconds instead of waiting for good.

Redis serves several small calls per request (a status on the row's event stream, the task's
send, the status again when the send fails): after one of them times out, the others fail at
once for a while, so that a request that needs a hung Redis answers 503 within one deadline,
not one per call.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from core.settings import settings

# How long calls to Redis fail at once after one timed out; the next one then tries again.
HUNG_FOR_S = 5.0


class RedisOutage:
    """Whether a call to Redis went unanswered lately (shared by the process's clients)."""

    _lock = threading.Lock()
    _until = 0.0

    @classmethod
    def mark(cls) -> None:
        with cls._lock:
            cls._until = time.monotonic() + HUNG_FOR_S

    @classmethod
    def check(cls) -> None:
        """Raises redis.TimeoutError while a recent call timed out."""
        if time.monotonic() < cls._until:
            raise redis.TimeoutError("Redis timed out moments ago; not waiting on it again yet")


class _DeadlineConnection(redis.Connection):
    """A connection that fails at once while Redis is hung, and says so when a call times out."""

    def connect(self) -> None:
        RedisOutage.check()
        with _marking_timeouts():
            super().connect()

    def send_packed_command(self, command, check_health: bool = True) -> None:
        RedisOutage.check()
        with _marking_timeouts():
            super().send_packed_command(command, check_health)

    def read_response(self, *args, **kwargs):
        with _marking_timeouts():
            return super().read_response(*args, **kwargs)


@contextmanager
def _marking_timeouts() -> Iterator[None]:
    try:
        yield
    except (redis.TimeoutError, TimeoutError):
        RedisOutage.mark()
        raise


def redis_pool() -> redis.ConnectionPool:
    """Connections to Redis whose connecting and each command give up after the request
    deadline: the farm's commands are small, in the API and in the workers alike (which retry)."""
    return redis.ConnectionPool.from_url(
        settings.redis_url,
        socket_timeout=settings.request_deadline_s,
        socket_connect_timeout=settings.request_deadline_s,
        connection_class=_DeadlineConnection,
    )


def redis_client() -> redis.Redis:
    return redis.Redis(connection_pool=redis_pool())
