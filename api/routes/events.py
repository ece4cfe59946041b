"""Live events of a job or a version, as Server-Sent Events (api/live.py)."""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api import live
from api.deps import OwnedJob, ReadableVersion, SessionDep
from api.errors import json_responses

router = APIRouter(
    tags=["events"],
    responses=json_responses(
        400, 401, 404, 422, 503, s400="The Last-Event-ID is not an event id of this stream."
    ),
)
ResumeAfter = live.ResumeAfter


# The row's access is checked, then its session's connection goes back at once, before
# anything awaits: a stream holds none, and 200 streams opening together would hold 200.
async def _readable_job(job: OwnedJob, session: SessionDep) -> uuid.UUID:
    session.close()
    return job.id


async def _readable_version(version: ReadableVersion, session: SessionDep) -> uuid.UUID:
    session.close()
    return version.id


JobId = Annotated[uuid.UUID, Depends(_readable_job)]
VersionId = Annotated[uuid.UUID, Depends(_readable_version)]
EVENTS = """`text/event-stream`: `status` with the row (JSON) at each move, `log` for each line
printed ({line, time}), `output` for each chunk a streaming predict yields ({index, chunk}),
then `done` with the row as it ended, and the stream ends. Each event has an `id`;
`Last-Event-ID` resumes after it. `: ping` comments keep a quiet stream open."""


@router.get("/api/jobs/{job_id}/events", response_class=EventSourceResponse, description=EVENTS)
async def job_events(owned: JobId, after: ResumeAfter) -> AsyncIterator[ServerSentEvent]:
    """A job's events, for its owner."""
    async for event in live.of_job(owned, after):
        yield event


@router.get(
    "/api/versions/{version_id}/events", response_class=EventSourceResponse, description=EVENTS
)
async def version_events(readable: VersionId, after: ResumeAfter) -> AsyncIterator[ServerSentEvent]:
    """A version's events (its build's log lines among them), for whoever may read it."""
    async for event in live.of_version(readable, after):
        yield event
