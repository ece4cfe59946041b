"""The web UI's job pages: a job's page, which follows its events with the session cookie (the
model's log lines and streamed chunks as they come, api/static/job.js), then shows its result,
its output files with previews (api/static/outputs.js), its queue wait and run time, and a
batch's items a page at a time; its cancel and run-again buttons; and the user's jobs, by model
and status, a page at a time.

Output files open only from the object store's presigned URLs (GET /api/jobs/{id}/outputs's),
another origin, which serves them as downloads: the UI's origin never serves a model's bytes."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from api import browser_session, crud, live, outages, output_previews, rerun, submit
from api.deps import MAX_OFFSET, SessionDep, StorageDep, job_for, require_ready, version_for
from api.output_previews import ShownOutput
from api.routes import jobs as jobs_api
from api.routes.pages import CsrfChecked, PageUser, missing, page, to
from api.schemas import OutputFile
from core import cancels
from core.lifecycle import JOB, JobStatus
from core.models import Job, Model, ModelVersion, User
from core.storage import BATCH_ITEMS_FOLDER, Storage

router = APIRouter(include_in_schema=False)
JOBS_PAGE = 25
ITEMS_PAGE = 25
ItemsOffset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


@router.get("/jobs/{job_id}")
async def job_page(
    job_id: uuid.UUID, request: Request, session: SessionDep, storage: StorageDep,
    user: PageUser, items_offset: ItemsOffset = 0,
) -> Response:  # fmt: skip
    try:
        job = job_for(session, user, job_id)
    except HTTPException as absent:
        return missing(request, user, absent)
    return await run_in_threadpool(_job_page, request, session, storage, user, job, items_offset)


def _job_page(
    request: Request, session: Session, storage: Storage, user: User, job: Job,
    items_offset: int = 0, error: str | None = None, code: int = 200,
) -> Response:  # fmt: skip
    """The job's page; once it has ended, with its outputs and (a batch's) items listed."""
    ended = job.status in JOB.terminal
    outputs, outputs_note = outputs_of(session, storage, job) if ended else ([], None)
    items, items_total = [], 0
    if job.batch is not None:
        items, items_total = crud.page(session, crud.items_of(job=job), offset=items_offset,
                                       limit=ITEMS_PAGE)  # fmt: skip
    return page(
        request, "job.html", user, status_code=code, job=job, ended=ended, error=error,
        outputs=_previewed(storage, job, outputs), outputs_note=outputs_note,
        item_outputs=_by_item(outputs), items=items, items_total=items_total,
        items_offset=items_offset, items_size=ITEMS_PAGE,
        waited=seconds_between(job.queued_at, job.started_at),
        took=seconds_between(job.started_at, job.finished_at),
    )  # fmt: skip


def outputs_of(session: Session, storage: Storage, job: Job) -> tuple[list[OutputFile], str | None]:
    """The job's output files as GET /api/jobs/{id}/outputs lists them, or why there are none."""
    try:
        return jobs_api.list_outputs(job, session, storage).outputs, None
    except HTTPException as gone:  # 410: removed after the retention days
        return [], gone.detail
    except outages.STORAGE_OUTAGE:
        return [], "Object storage is not answering: the output files cannot be listed now."


def _previewed(storage: Storage, job: Job, outputs: list[OutputFile]) -> list[ShownOutput]:
    """The job's own outputs (not a batch item's), with their previews."""
    keys = {entry["name"]: entry["key"] for entry in job.outputs}
    own = [each for each in outputs if not _of_item(each)]
    try:
        return output_previews.shown(storage, own, keys)
    except outages.STORAGE_OUTAGE:  # listed a moment ago: shown without their previews
        return [ShownOutput(each.name, each.size, each.url, None) for each in own]


def _of_item(output: OutputFile) -> bool:
    return output.name.startswith(f"{BATCH_ITEMS_FOLDER}/")


def _by_item(outputs: list[OutputFile]) -> dict[int, list[OutputFile]]:
    """A batch's item outputs (items/<index>/<name>) by item index, as download links."""
    found: dict[int, list[OutputFile]] = {}
    for each in filter(_of_item, outputs):
        index = each.name.split("/", 2)[1]
        found.setdefault(int(index), []).append(each)
    return found


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """The seconds from start to end, when both happened."""
    return (end - start).total_seconds() if start and end else None


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


@router.post("/jobs/{job_id}/again", dependencies=[CsrfChecked])
async def run_again(
    job_id: uuid.UUID, request: Request, session: SessionDep, storage: StorageDep,
    user: PageUser,
) -> Response:  # fmt: skip
    """A new job on the same version and inputs, files included (read back from the job's
    stored inputs), then its page. When its files are no longer kept, or are too big to send
    inline, the version's run form instead, its values filled in from the job."""
    try:
        job = job_for(session, user, job_id)
        if job.version_id is None:
            raise HTTPException(404, "This job's version was removed: it cannot run again.")
        version = version_for(session, user, job.version_id, write=False)
    except HTTPException as absent:
        return missing(request, user, absent)
    try:
        require_ready(version, "a job")
        body = await run_in_threadpool(rerun.same_inputs, storage, job, version.id)
        if body is None:
            return to(f"/versions/{version.id}?again={job.id}")
        new, _ = await run_in_threadpool(
            submit.create, session, storage, user=user, version=version, body=body, key=None
        )
    except HTTPException as refused:
        return await run_in_threadpool(_job_page, request, session, storage, user, job, 0,
                                       refused.detail, refused.status_code)  # fmt: skip
    return to(f"/jobs/{new.id}")


@router.get("/jobs")
async def jobs_page(
    request: Request, session: SessionDep, user: PageUser,
    status: Annotated[JobStatus | None, Query()] = None,
    model: Annotated[uuid.UUID | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:  # fmt: skip
    """The user's jobs, newest first, a page at a time (one query: each job's version and model
    come joined), of one model and one status if asked."""
    query = crud.jobs_of(owner=user).options(joinedload(Job.version).joinedload(ModelVersion.model))
    if status is not None:
        query = query.where(Job.status == status)
    if model is not None:
        of_model = select(ModelVersion.id).where(ModelVersion.model_id == model)
        query = query.where(Job.version_id.in_(of_model))
    jobs, total = crud.page(session, query, offset=offset, limit=JOBS_PAGE)
    filters = {"status": status.value if status else None, "model": model}
    return page(
        request, "jobs.html", user, jobs=jobs, total=total, status=status, model=model,
        statuses=list(JobStatus), models=_models_run(session, user), offset=offset,
        newer=_jobs_url(filters, offset - JOBS_PAGE) if offset > 0 else None,
        older=_jobs_url(filters, offset + JOBS_PAGE) if offset + len(jobs) < total else None,
    )  # fmt: skip


def _models_run(session: Session, user: User) -> list[tuple[uuid.UUID, str]]:
    """The models the user has jobs on (for the filter), by name."""
    ran = select(ModelVersion.model_id).join(Job, Job.version_id == ModelVersion.id)
    query = select(Model.id, Model.name).where(Model.id.in_(ran.where(Job.owner_id == user.id)))
    return [(row.id, row.name) for row in session.execute(query.order_by(Model.name, Model.id))]


def _jobs_url(filters: dict[str, object], offset: int) -> str:
    given = {name: value for name, value in filters.items() if value is not None}
    return f"/jobs?{urlencode({**given, 'offset': max(offset, 0)})}"


async def _session_job(job_id: uuid.UUID, request: Request, session: SessionDep) -> uuid.UUID:
    """The job of the browser's user (else 404; without a session 401), its connection given
    back before the stream starts (as api/routes/events.py does)."""
    job = job_for(session, browser_session.script_user(request, session), job_id)
    session.close()
    return job.id


@router.get("/jobs/{job_id}/events", response_class=EventSourceResponse)
async def job_events(
    owned: Annotated[uuid.UUID, Depends(_session_job)], after: live.ResumeAfter
) -> AsyncIterator[ServerSentEvent]:
    """The job's events for its page (GET /api/jobs/{id}/events, with the session cookie)."""
    async for event in live.of_job(owned, after):
        yield event
