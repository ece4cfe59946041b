"""Live events of a job or a version, as Server-Sent Events (api/live.py)."""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api import live
from api.deps import OwnedJob, ReadableVersion, SessionDep
from api.errors import json_responses
from api.schemas import JobPublic, VersionPublic
from core import streams
from core.db import session_scope
from core.models import Job, ModelVersion

router = APIRouter(
    tags=["events"],
    responses=json_responses(
        400, 401, 404, 422, 503, s400="The Last-Event-ID is not an event id of this stream."
    ),
)
ResumeAfter = Annotated[str, Depends(live.resume_after)]
EVENTS = """`text/event-stream`: `status` with the row (JSON) at each move, `log` for each line
printed ({line, time}), then `done` with the row as it ended, and the stream ends. Each event
has an `id`; `Last-Event-ID` resumes after it. `: ping` comments keep a quiet stream open."""


@router.get("/api/jobs/{job_id}/events", response_class=EventSourceResponse, description=EVENTS)
async def job_events(
    job: OwnedJob, session: SessionDep, after: ResumeAfter
) -> AsyncIterator[ServerSentEvent]:
    """A job's events, for its owner."""
    session.close()  # the stream holds no database connection
    async for event in live.events("job", job.id, after, _reader(Job, job.id), _job):
        yield event


@router.get(
    "/api/versions/{version_id}/events", response_class=EventSourceResponse, description=EVENTS
)
async def version_events(
    version: ReadableVersion, session: SessionDep, after: ResumeAfter
) -> AsyncIterator[ServerSentEvent]:
    """A version's events (its build's log lines among them), for whoever may read it."""
    session.close()
    reader = _reader(ModelVersion, version.id)
    async for event in live.events("version", version.id, after, reader, _version):
        yield event


def _job(fields: dict) -> JobPublic:
    return JobPublic.model_validate(fields)


def _version(fields: dict) -> VersionPublic:
    return VersionPublic.model_validate(fields)


def _reader(table: type, row_id: uuid.UUID):
    async def read() -> live.Fields:
        return await run_in_threadpool(_fields, table, row_id)

    return read


def _fields(table: type, row_id: uuid.UUID) -> live.Fields:
    with session_scope() as session:
        row = session.get(table, row_id)
        return None if row is None else streams.fields_of(row)
