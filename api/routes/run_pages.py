"""The web UI's version and job pages: a version's run form, made from its input schema
(api/forms.py), and a job's page, which follows the job's events with the session cookie (the
model's log lines and streamed chunks as they come, api/static/job.js), then shows its result."""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api import browser_session, crud, forms, live, submit
from api.deps import MAX_OFFSET, SessionDep, StorageDep, job_for, require_ready, version_for
from api.routes.pages import CsrfChecked, PageUser, missing, page, to
from api.schemas import JobCreate
from core import cancels
from core.inputs import LEGACY_SCHEMA, STREAM_MARK
from core.lifecycle import JOB, VERSION, JobStatus
from core.models import Job, ModelVersion, User

router = APIRouter(include_in_schema=False)
JOBS_PAGE = 25


@router.get("/versions/{version_id}")
async def version_page(
    version_id: uuid.UUID, request: Request, session: SessionDep, user: PageUser
) -> Response:
    try:
        version = version_for(session, user, version_id, write=False)
    except HTTPException as absent:
        return missing(request, user, absent)
    return _version_page(request, user, version)


@router.post("/versions/{version_id}/run", dependencies=[CsrfChecked])
async def run(
    version_id: uuid.UUID, request: Request, session: SessionDep, storage: StorageDep,
    user: PageUser,
) -> Response:  # fmt: skip
    """A job on the form's inputs, then its page; the farm's refusal (such as an input out of
    bounds) is shown on the form."""
    try:
        version = version_for(session, user, version_id, write=False)
        require_ready(version, "a job")
        inputs = await forms.inputs_of(await request.form(), _fields(version))
        body = JobCreate(version_id=version.id, inputs=inputs)
        job, _ = await run_in_threadpool(
            submit.create, session, storage, user=user, version=version, body=body, key=None
        )
    except HTTPException as refused:
        return _version_page(request, user, version, refused.detail, refused.status_code)
    return to(f"/jobs/{job.id}")


def _fields(version: ModelVersion) -> list[forms.Field]:
    return forms.fields_of(version.input_schema or LEGACY_SCHEMA)


def _version_page(request: Request, user: User, version: ModelVersion,
                  error: str | None = None, code: int = 200) -> Response:  # fmt: skip
    ready = version.status == VERSION.succeeded
    streaming = bool((version.input_schema or {}).get(STREAM_MARK))
    return page(request, "version.html", user, status_code=code, version=version,
                model=version.model, ready=ready, fields=_fields(version) if ready else [],
                streaming=streaming, error=error)  # fmt: skip


@router.get("/jobs/{job_id}")
async def job_page(
    job_id: uuid.UUID, request: Request, session: SessionDep, user: PageUser
) -> Response:
    try:
        job = job_for(session, user, job_id)
    except HTTPException as absent:
        return missing(request, user, absent)
    ended = job.status in JOB.terminal
    return page(request, "job.html", user, job=job, ended=ended)


@router.post("/jobs/{job_id}/cancel", dependencies=[CsrfChecked])
def cancel(job_id: uuid.UUID, request: Request, session: SessionDep, user: PageUser) -> Response:
    """Cancels the job, as POST /api/jobs/{id}/cancel does; one that ended meanwhile stays."""
    try:
        job = job_for(session, user, job_id)
    except HTTPException as absent:
        return missing(request, user, absent)
    session.refresh(job, with_for_update=True)
    if job.status not in JOB.terminal:
        cancels.cancel(session, job)
    return to(f"/jobs/{job.id}")


@router.get("/jobs")
async def jobs_page(
    request: Request, session: SessionDep, user: PageUser,
    status: Annotated[JobStatus | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:  # fmt: skip
    """The user's jobs, newest first, a page at a time, of one status if asked."""
    query = crud.jobs_of(owner=user)
    if status is not None:
        query = query.where(Job.status == status)
    jobs, total = crud.page(session, query, offset=offset, limit=JOBS_PAGE)
    return page(request, "jobs.html", user, jobs=jobs, total=total, status=status,
                statuses=list(JobStatus), offset=offset, size=JOBS_PAGE)  # fmt: skip


async def _session_job(job_id: uuid.UUID, request: Request, session: SessionDep) -> uuid.UUID:
    """The job of the browser's user (else 404; without a session 401), its connection given
    back before the stream starts (as api/routes/events.py does)."""
    user = browser_session.signed_in(request, session)
    if user is None:
        raise HTTPException(401, "Sign in first.")
    job = job_for(session, user, job_id)
    session.close()
    return job.id


@router.get("/jobs/{job_id}/events", response_class=EventSourceResponse)
async def job_events(
    owned: Annotated[uuid.UUID, Depends(_session_job)], after: live.ResumeAfter
) -> AsyncIterator[ServerSentEvent]:
    """The job's events for its page (GET /api/jobs/{id}/events, with the session cookie)."""
    async for event in live.of_job(owned, after):
        yield event
