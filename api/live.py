"""Event streams (Server-Sent Events) of a job or a version: the entries core/streams.py holds
for the row, from the first or after the client's Last-Event-ID, then live until `done`.

A stream holds no thread and no database connection while it waits: it blocks on a Redis read
(a connection of the process's pool) for a quiet while (QUIET_S, at random within it, so that
streams opened together do not wake together), sends a heartbeat (`: ping`), and every
ROW_CHECK_EVERY quiet whiles reads the row, briefly, in case its end was never appended (Redis
lost it, or the reconciler ended the row). Events are numbered by their stream entry's id;
when the stream is gone (expired, MODELFARM_EVENTS_KEPT_HOURS), the row stands in as
ROW_STATUS and ROW_DONE.
"""

import asyncio
import json
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Header, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent, format_sse_event
from pydantic import BaseModel
from redis.exceptions import RedisError

from api.schemas import JobPublic, VersionPublic
from core import streams
from core.db import RequestSessionLocal, session_scope
from core.lifecycle import lifecycle_of
from core.models import Job, ModelVersion
from core.settings import settings

QUIET_S = (10.0, 20.0)
ROW_CHECK_EVERY = 4
REDIS_AWAY_S = 2  # how often the row is read instead while Redis cannot be read
ROW_STATUS, ROW_DONE = "0-1", "0-2"  # the ids of the events that show the row alone
FIRST = "0-0"
EVENT_ID = r"^[0-9]{1,20}-[0-9]{1,20}$"  # a Redis stream entry's id
# A read waits QUIET_S at most; a Redis that does not answer within a little more is away.
_redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=QUIET_S[1] + 5)

Fields = dict | None  # a row's fields (core/streams.fields_of), None once it is removed


async def resume_after(
    last_event_id: Annotated[str | None, Header(include_in_schema=False)] = None,
    after: Annotated[
        str | None,
        Query(
            alias="last_event_id",
            pattern=EVENT_ID,
            description="Resume after this event (or send the Last-Event-ID header).",
        ),
    ] = None,
) -> str:
    """The id of the last event the client has (header or query), else the stream's start."""
    given = last_event_id or after
    if given is None:
        return FIRST
    if not re.fullmatch(EVENT_ID, given):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"Last-Event-ID {given[:40]!r} is not an event id of this stream: send the `id` of "
            "the last event received, or none to start from the first.",
        )
    return given


ResumeAfter = Annotated[str, Depends(resume_after)]


def of_job(job_id: uuid.UUID, after: str = FIRST) -> AsyncIterator[ServerSentEvent]:
    return events("job", job_id, after, _reader(Job, job_id), JobPublic.model_validate)


def of_version(version_id: uuid.UUID, after: str = FIRST) -> AsyncIterator[ServerSentEvent]:
    read = _reader(ModelVersion, version_id)
    return events("version", version_id, after, read, VersionPublic.model_validate)


def response(
    found: AsyncIterator[ServerSentEvent], status_code: int = status.HTTP_200_OK
) -> EventSourceResponse:
    """The events as a response of their own, for a route that answers JSON otherwise."""

    async def encoded() -> AsyncIterator[bytes]:
        async for event in found:
            data = None if event.data is None else json.dumps(event.data)
            yield format_sse_event(
                data_str=data, event=event.event, id=event.id, comment=event.comment
            )

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return EventSourceResponse(encoded(), status_code=status_code, headers=headers)


def _reader(table: type, row_id: uuid.UUID) -> Callable[[], Awaitable[Fields]]:
    async def read() -> Fields:
        return await run_in_threadpool(_fields, table, row_id)

    return read


def _fields(table: type, row_id: uuid.UUID) -> Fields:
    with session_scope(RequestSessionLocal) as session:
        row = session.get(table, row_id)
        return None if row is None else streams.fields_of(row)


async def events(
    kind: streams.Kind, row_id: uuid.UUID, after: str,
    read: Callable[[], Awaitable[Fields]], show: Callable[[dict], BaseModel],
) -> AsyncIterator[ServerSentEvent]:  # fmt: skip
    """The row's events after `after`, then each as it comes, until done (or the row is gone).
    read() gives the row's fields from the database; show() its public form."""
    key, cursor = streams.key(kind, row_id), after
    if not await _exists(key):
        fields = await read()
        for event in _row_events(fields, show):
            if _later(event.id, cursor):
                yield event
        if fields is None or _ended(fields):
            return
    elif await _done_by(key, cursor):  # the client has every event, done too
        return
    quiet = random.randrange(ROW_CHECK_EVERY)  # streams opened together check apart
    while True:
        found = await _read(key, cursor)
        for entry_id, entry in found[0][1] if found else ():
            cursor = entry_id.decode()
            event, data = streams.decode(entry)
            yield ServerSentEvent(event=event, id=cursor, data=_public(event, data, show))
            if event == streams.DONE:
                return
        if not found:
            yield ServerSentEvent(comment="ping")  # kept open through proxies
            quiet += 1
            if quiet % ROW_CHECK_EVERY == 0 and (ended := await _unseen_end(key, cursor, read)):
                if ended is not _GONE:
                    yield ServerSentEvent(event=streams.DONE, id=_next(cursor),
                                          data=_public(streams.DONE, ended, show))  # fmt: skip
                return


_GONE: dict = {}  # what _unseen_end gives for a row removed meanwhile


async def _unseen_end(key: str, cursor: str, read: Callable[[], Awaitable[Fields]]) -> Fields:
    """After a quiet while: the row's fields if it ended without a done entry; _GONE if it was
    removed, or the client has the stream's done; else None (it goes on)."""
    fields = await read()
    if fields is None or await _done_by(key, cursor):
        return _GONE
    return fields if _ended(fields) else None


async def _exists(key: str) -> bool:
    try:
        return bool(await _redis.exists(key))
    except RedisError:  # the row stands in, and the stream is read again once Redis is back
        return False


async def _done_by(key: str, cursor: str) -> bool:
    """Whether the stream's done is at or before cursor."""
    try:
        last = await _redis.xrevrange(key, count=1)
    except RedisError:
        return False
    return (
        bool(last)
        and not _later(last[0][0].decode(), cursor)
        and (streams.decode(last[0][1])[0] == streams.DONE)
    )


async def _read(key: str, cursor: str) -> list:
    """Entries after cursor, waiting a quiet while for one; none while Redis is away."""
    try:
        waited_ms = round(random.uniform(*QUIET_S) * 1000)
        return await _redis.xread({key: cursor}, count=500, block=waited_ms)
    except RedisError:
        await asyncio.sleep(REDIS_AWAY_S)
        return []


def _row_events(fields: Fields, show: Callable[[dict], BaseModel]) -> list[ServerSentEvent]:
    if fields is None:
        return []
    shown = _public(streams.STATUS, fields, show)
    found = [ServerSentEvent(event=streams.STATUS, id=ROW_STATUS, data=shown)]
    if _ended(fields):
        found.append(ServerSentEvent(event=streams.DONE, id=ROW_DONE, data=shown))
    return found


def _public(event: str, data: dict, show: Callable[[dict], BaseModel]) -> dict:
    if event in (streams.STATUS, streams.DONE):
        return show(data).model_dump(mode="json")
    return data


def _ended(fields: dict) -> bool:
    return fields["status"] in lifecycle_of(fields["status"]).terminal


def _parts(event_id: str) -> tuple[int, int]:
    milliseconds, sequence = event_id.split("-")
    return int(milliseconds), int(sequence)


def _later(event_id: str | None, cursor: str) -> bool:
    return event_id is not None and _parts(event_id) > _parts(cursor)


def _next(event_id: str) -> str:
    milliseconds, sequence = _parts(event_id)
    return f"{milliseconds}-{sequence + 1}"
