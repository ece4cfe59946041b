import base64
import uuid

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from api import crud, live, quota, submit, throttle
from api.deps import (
    CurrentUser,
    OwnedJob,
    PageDep,
    SessionDep,
    StorageDep,
    require_ready,
    version_by_alias,
    version_for,
)
from api.errors import responses
from api.schemas import (
    JobCreate,
    JobCreated,
    JobItemPublic,
    JobOutputs,
    JobPublic,
    OutputFile,
    Page,
)
from api.waiting import WaitPreference, until_ended
from core import cancels, inputs, removal
from core.db import RequestSessionLocal, session_scope
from core.lifecycle import JOB
from core.models import Job
from core.queue import send_run
from core.settings import settings
from core.storage import JOB_LOG_NAME, Storage

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=responses(401, 422, 503))
WAITED = {"Preference-Applied": {"description": "`wait=N` when the request waited (Prefer: wait)."}}
REPLAYED_HEADER = "Idempotent-Replayed"
EVENT_STREAM = "text/event-stream"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobCreated,
    responses={
        **responses(400, 404, 409, 413, 429),
        200: {"model": JobCreated, "description": "The job an earlier request with this "
              "Idempotency-Key created (header Idempotent-Replayed: true)."},
        201: {"headers": WAITED, "content": {EVENT_STREAM: {}}},
    },
)  # fmt: skip
async def create_job(
    body: JobCreate, request: Request, response: Response, session: SessionDep,
    user: CurrentUser, storage: StorageDep, wait: WaitPreference,
    idempotency_key: submit.IdempotencyKey = None,
) -> JobCreated | Response:  # fmt: skip
    """A job on one input, or a batch. With the input(s) inline the job is queued at once;
    otherwise PUT the upload(s) and call /run. `Prefer: wait=N` answers once the job has ended
    or N seconds (at most 60) have passed. With `Accept: text/event-stream` a job queued at
    once is answered with its events (as GET /api/jobs/{id}/events), until done."""

    def create() -> tuple[JobCreated, bool]:
        if body.version_id is not None:
            version = version_for(session, user, body.version_id, write=False)
        else:
            version = version_by_alias(session, user, body.model_id, body.alias)
        require_ready(version, "a job")
        job, replayed = submit.create(
            session, storage, user=user, version=version, body=body, key=idempotency_key
        )
        created = JobCreated(job=JobPublic.model_validate(job), **submit.upload_urls(storage, job))
        session.close()  # the wait below holds no database connection
        return created, replayed

    created, replayed = await run_in_threadpool(create)
    if replayed:
        response.status_code = status.HTTP_200_OK
        response.headers[REPLAYED_HEADER] = "true"
    if EVENT_STREAM in request.headers.get("accept", "") and created.job.status != JOB.uploading:
        streamed = live.response(live.of_job(created.job.id), response.status_code or 201)
        streamed.headers.update(response.headers)
        return streamed
    if wait is not None:
        created.job = await _waited(created.job, wait, response)
    return created


@router.get("", response_model=Page[JobPublic])
async def list_jobs(session: SessionDep, user: CurrentUser, paging: PageDep):
    items, total = crud.page(session, crud.jobs_of(owner=user), **paging)
    return Page(items=items, total=total, **paging)


@router.get("/{job_id}", response_model=JobPublic, responses=responses(404))
async def get_job(job: OwnedJob):
    return job


@router.post(
    "/{job_id}/run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    responses={**responses(400, 404, 409, 413, 429), 202: {"headers": WAITED}},
)
async def run_job(
    job: OwnedJob, response: Response, session: SessionDep, storage: StorageDep,
    wait: WaitPreference,
) -> JobPublic:  # fmt: skip
    """Queues a job whose input(s) were uploaded. `Prefer: wait=N` as for creating one."""

    def queue() -> JobPublic:
        if not JOB.can_move(job.status, JOB.queued):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"This job is {job.status}: a job runs only once. Create a new job to run again.",
            )
        throttle.require_room_for_job(session, job.owner_id)
        sizes = submit.upload_sizes(storage, job)
        inline = inputs.stored_bytes(job.inputs, job.batch)  # the uploads' sizes are not known yet
        quota.require_room(session, job.owner_id, inline + sum(filter(None, sizes.values())))
        submit.seal_inputs(storage, job, sizes)
        job.stored_bytes = inputs.stored_bytes(job.inputs, job.batch)
        crud.mark_queued(session, row=job, lifecycle=JOB, send=send_run)
        queued = JobPublic.model_validate(job)
        session.close()  # the wait below holds no database connection
        return queued

    queued = await run_in_threadpool(queue)
    return queued if wait is None else await _waited(queued, wait, response)


async def _waited(job: JobPublic, seconds: int, response: Response) -> JobPublic:
    response.headers["Preference-Applied"] = f"wait={seconds}"
    return await until_ended(
        job.id, seconds, job, read=lambda: run_in_threadpool(_read_job, job.id),
        noticed=JobPublic.model_validate, ended=lambda found: found.status in JOB.terminal,
    )  # fmt: skip


def _read_job(job_id: uuid.UUID) -> JobPublic:
    with session_scope(RequestSessionLocal) as session:
        return JobPublic.model_validate(session.get(Job, job_id))


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=responses(404, 409, 429))
def cancel_job(job: OwnedJob, session: SessionDep):
    """Cancels a job that has not ended: one waiting or queued at once; a running one's
    container is killed (a batch starts no further item)."""
    session.refresh(job, with_for_update=True)
    if job.status in JOB.terminal:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"This job is {job.status} already; only a job that has not ended can be canceled.",
        )
    cancels.cancel(session, job)
    return job


@router.delete(
    "/{job_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(404, 409, 429)
)
def delete_job(job: OwnedJob, session: SessionDep, storage: StorageDep):
    """Removes a job that is not queued or running, with its inputs, outputs, log and items."""
    session.refresh(job, with_for_update=True)
    if job.status in JOB.active:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"This job is {job.status}; cancel it first (POST /api/jobs/{job.id}/cancel), then "
            "remove it.",
        )
    removal.remove_job(session, storage, job)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{job_id}/items", response_model=Page[JobItemPublic], responses=responses(404, 409))
async def list_items(job: OwnedJob, session: SessionDep, paging: PageDep):
    """A batch job's items that have run, in order, with their result or error."""
    if job.batch is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "This job is not a batch: its result and error are on the job itself.",
        )
    items, total = crud.page(session, crud.items_of(job=job), **paging)
    return Page(items=items, total=total, **paging)


@router.get("/{job_id}/outputs", response_model=JobOutputs, responses=responses(404, 410))
def list_outputs(job: OwnedJob, session: SessionDep, storage: StorageDep):
    """The job's output files, result.json among them, and its log, as presigned GET URLs.
    A batch's are named items/<index>/<name>; an item's result.json is its inline result."""
    _require_files(job)
    _store_kept_outputs(job, session, storage)
    entries = list(job.outputs)
    log_size = storage.size(job.log_key)
    if log_size is not None:
        entries.append({"name": JOB_LOG_NAME, "key": job.log_key, "size": log_size})
    outputs = [
        OutputFile(
            name=entry["name"],
            size=entry["size"],
            url=storage.presigned_get(entry["key"], filename=entry["name"]),
        )
        for entry in entries
    ]
    expires_in = int(storage.url_lifetime.total_seconds())
    return JobOutputs(job_id=job.id, status=job.status, outputs=outputs, expires_in=expires_in)


@router.get(
    "/{job_id}/logs",
    response_class=Response,  # errors stay JSON; only the log itself is text
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "The log"},
        **responses(404, 410),
    },
)
def get_job_logs(job: OwnedJob, storage: StorageDep):
    """What the model printed during the job (the end of it, past the log limit), as its
    events showed it; empty when it printed nothing or has not run yet."""
    _require_files(job)
    return PlainTextResponse((storage.get_bytes(job.log_key) or b"").decode("utf-8", "replace"))


def _require_files(job: Job) -> None:
    if job.data_removed:
        raise HTTPException(
            status.HTTP_410_GONE,
            f"This job's files were removed {settings.job_retention_days} days after it ended "
            "(MODELFARM_JOB_RETENTION_DAYS); its result and error are on the job.",
        )


def _store_kept_outputs(job: Job, session: Session, storage: Storage) -> None:
    """Puts the small outputs the worker kept in the job's row (workers/run/transfer.py) into
    object storage, once; a listing at the same time stores the same bytes, harmlessly."""
    kept = [
        (entry["key"], base64.b64decode(entry["data"])) for entry in job.outputs if "data" in entry
    ]
    if kept:
        storage.put_all(kept)
        job.outputs = [{k: v for k, v in entry.items() if k != "data"} for entry in job.outputs]
        session.commit()
