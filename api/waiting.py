"""`Prefer: wait`: answering a job request only once the job has ended, or after N seconds.

A waiting request holds no thread and no database connection while it waits: it awaits an
asyncio event, set by the one Redis subscription of this API process when a worker announces
that the job ended (core/events.py). The notice carries the ended job, which is the answer; a
notice without it (or a periodic check, in case a notice was missed while Redis was away) has
the row read again, briefly. The last notices are kept a while, so that a job ending before
its request starts to wait is seen at once.
"""

import asyncio
import json
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Annotated, TypeVar

import redis.asyncio as aioredis
from fastapi import Depends, Header, HTTPException, status
from redis.exceptions import RedisError

from core.events import JOB_ENDED_CHANNEL
from core.settings import settings

logger = logging.getLogger(__name__)
T = TypeVar("T")
MAX_WAIT_S = 60
RECHECK_S = 5
_WAIT = re.compile(r"^\s*wait\s*(=\s*(\d+)\s*)?$", re.IGNORECASE)

RECENT_NOTICES = 1000

_waiting: dict[str, set[asyncio.Event]] = {}
_ended: OrderedDict[str, dict | None] = OrderedDict()  # the last notices: job id -> its fields


def _wake(message: bytes) -> None:
    try:
        notice = json.loads(message)
        job_id, fields = str(notice["id"]), notice["job"]
    except (ValueError, KeyError, TypeError):  # not a notice of this farm's: the listener goes on
        logger.warning("job notices: ignoring %r", message[:200])
        return
    _ended[job_id] = fields
    if len(_ended) > RECENT_NOTICES:
        _ended.popitem(last=False)
    for event in _waiting.get(job_id, ()):
        event.set()


def _wake_all() -> None:
    for events in _waiting.values():
        for event in events:
            event.set()


async def _listen_forever() -> None:
    while True:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as subscription:
                await subscription.subscribe(JOB_ENDED_CHANNEL)
                _wake_all()  # notices sent while unsubscribed are lost: everyone reads again
                async for message in subscription.listen():
                    _wake(message["data"])
        except (RedisError, OSError):
            logger.warning("job notices: Redis unreachable; retrying", exc_info=True)
            await asyncio.sleep(1)
        finally:
            await client.aclose()


@asynccontextmanager
async def listening() -> AsyncIterator[None]:
    """Runs the process's subscription for as long as the app lives."""
    task = asyncio.create_task(_listen_forever())
    try:
        yield
    finally:
        task.cancel()


async def wait_preference(prefer: Annotated[str | None, Header()] = None) -> int | None:
    """Seconds from `Prefer: wait` (60) or `Prefer: wait=N` (at most 60); None without it."""
    if prefer is None:
        return None
    for preference in prefer.split(","):
        if match := _WAIT.match(preference.split(";")[0]):
            return min(int(match.group(2) or MAX_WAIT_S), MAX_WAIT_S)
    if "wait" in prefer.lower():
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"Prefer: {prefer!r} is not understood: use `wait` or `wait=N`, N seconds up to "
            f"{MAX_WAIT_S}.",
        )
    return None


WaitPreference = Annotated[int | None, Depends(wait_preference)]


async def until_ended(
    job_id: uuid.UUID, seconds: int, job: T, read: Callable[[], Awaitable[T]],
    noticed: Callable[[dict], T], ended: Callable[[T], bool],
) -> T:  # fmt: skip
    """The job, once ended() says so or `seconds` have passed: first `job` as the caller has
    it; after each wake-up, as its end notice tells (noticed() turns the notice's fields into
    a T, or raises ValueError), else as read() gives it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    key, event = str(job_id), asyncio.Event()
    _waiting.setdefault(key, set()).add(event)
    try:
        woken = False
        while True:
            event.clear()  # before looking: a notice from now on is not missed
            if key in _ended:
                job = _from_notice(_ended[key], noticed) or await read()
            elif woken:
                job = await read()
            left = deadline - loop.time()
            if ended(job) or left <= 0:
                return job
            with suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=min(left, RECHECK_S))
            woken = True
    finally:
        _waiting[key].discard(event)
        if not _waiting[key]:
            del _waiting[key]


def _from_notice(fields: dict | None, noticed: Callable[[dict], T]) -> T | None:
    if fields is None:
        return None
    try:
        return noticed(fields)
    except ValueError:  # a notice from a farm of another version: the row says
        logger.warning("an end notice could not be read: %s", fields, exc_info=True)
        return None
