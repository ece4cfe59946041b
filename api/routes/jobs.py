from fastapi import APIRouter, HTTPException, status

from api import crud
from api.deps import CurrentUser, OwnedJob, PageDep, SessionDep, StorageDep, version_for
from api.errors import responses
from api.schemas import JobCreate, JobCreated, JobOutputs, JobPublic, OutputFile, Page
from api.uploads import seal_upload
from core.lifecycle import JOB, VERSION
from core.queue import send_run
from core.settings import settings
from core.storage import JOB_INPUT_NAME, job_input_upload_key

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=responses(401, 422, 503))
LOG_NAME = "run.log"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobCreated,
    responses=responses(400, 404, 409),
)
def create_job(body: JobCreate, session: SessionDep, user: CurrentUser, storage: StorageDep):
    version = version_for(session, user, body.version_id, write=False)
    if version.status != VERSION.succeeded:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"This version is {version.status}; jobs can run only on a {VERSION.succeeded} version",
        )
    job = crud.create_job(session, owner=user, version=version)
    return JobCreated(
        job=JobPublic.model_validate(job),
        upload_url=storage.presigned_put(job_input_upload_key(job.id)),
        upload_expires_in=int(storage.url_lifetime.total_seconds()),
    )


@router.get("", response_model=Page[JobPublic])
def list_jobs(session: SessionDep, user: CurrentUser, paging: PageDep):
    items, total = crud.page(session, crud.jobs_of(owner=user), **paging)
    return Page(items=items, total=total, **paging)


@router.get("/{job_id}", response_model=JobPublic, responses=responses(404))
def get_job(job: OwnedJob):
    return job


@router.post(
    "/{job_id}/run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    responses=responses(404, 409, 413),
)
def run_job(job: OwnedJob, session: SessionDep, storage: StorageDep):
    if not JOB.can_move(job.status, JOB.queued):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"This job is {job.status}: a job runs only once. Create a new job to run again.",
        )
    sealed = job.inputs[JOB_INPUT_NAME]
    size = seal_upload(
        storage,
        upload_key=job_input_upload_key(job.id),
        sealed_key=sealed["key"],
        limit=settings.max_input_bytes,
        what="input file",
        url_hint="job's upload_url",
    )
    job.inputs = {**job.inputs, JOB_INPUT_NAME: {**sealed, "size": size}}
    crud.mark_queued(session, row=job, lifecycle=JOB, send=send_run)
    return job


@router.get("/{job_id}/outputs", response_model=JobOutputs, responses=responses(404))
def list_outputs(job: OwnedJob, storage: StorageDep):
    """The job's output files, result.json among them, and its log, as presigned GET URLs."""
    entries = list(job.outputs)
    log_size = storage.size(job.log_key)
    if log_size is not None:
        entries.append({"name": LOG_NAME, "key": job.log_key, "size": log_size})
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
