"""The web UI's version page: what its image is made of (its Dockerfile, its lock of packages,
its image, digest, sizes and build time), ready-made snippets that run it (api/snippets.py),
and its run form, made from its input schema (api/forms.py), filled in again from an earlier
job to run it again when that job's files must be chosen anew. The job pages are in
api/routes/job_pages.py, whose routes this router carries."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api import forms, snippets, submit
from api.deps import SessionDep, StorageDep, job_for, require_ready, version_for
from api.routes import job_pages
from api.routes.pages import CsrfChecked, PageUser, missing, page, to
from api.routes.versions import require_dockerfile
from api.schemas import JobCreate
from core import eject, inputs
from core.inputs import LEGACY_SCHEMA, STREAM_MARK
from core.lifecycle import VERSION
from core.models import ModelVersion, User

router = APIRouter(include_in_schema=False)
router.include_router(job_pages.router)  # registered with this one (api/main.py)


@router.get("/versions/{version_id}")
async def version_page(
    version_id: uuid.UUID, request: Request, session: SessionDep, user: PageUser,
    again: Annotated[uuid.UUID | None, Query()] = None,
) -> Response:  # fmt: skip
    """The version's page; `again`: a job of the user's whose values fill the form in."""
    try:
        version = version_for(session, user, version_id, write=False)
    except HTTPException as absent:
        return missing(request, user, absent)
    return _version_page(request, session, user, version, again=again)


@router.post("/versions/{version_id}/run", dependencies=[CsrfChecked])
async def run(
    version_id: uuid.UUID, request: Request, session: SessionDep, storage: StorageDep,
    user: PageUser,
) -> Response:  # fmt: skip
    """A job on the form's inputs, then its page; the farm's refusal (such as an input out of
    bounds) is shown on the form."""
    try:
        version = version_for(session, user, version_id, write=False)
    except HTTPException as absent:
        return missing(request, user, absent)
    inputs_given: dict[str, Any] = {}
    try:
        require_ready(version, "a job")
        inputs_given = await forms.inputs_of(await request.form(), _fields(version))
        body = JobCreate(version_id=version.id, inputs=inputs_given)
        job, _ = await run_in_threadpool(
            submit.create, session, storage, user=user, version=version, body=body, key=None
        )
    except HTTPException as refused:
        kept = {name: value for name, value in inputs_given.items() if not inputs.is_file(value)}
        return _version_page(request, session, user, version, refused.detail,
                             refused.status_code, values=kept)  # fmt: skip
    return to(f"/jobs/{job.id}")


def _fields(version: ModelVersion) -> list[forms.Field]:
    return forms.fields_of(version.input_schema or LEGACY_SCHEMA)


def _version_page(request: Request, session: Session, user: User, version: ModelVersion,
                  error: str | None = None, code: int = 200, again: uuid.UUID | None = None,
                  values: dict[str, Any] | None = None) -> Response:  # fmt: skip
    """The version's page; `again`: a job of the user's whose values fill the form in; `values`:
    the ones a refused form was sent with (each refusal about one shown beside its field)."""
    ready = version.status == VERSION.succeeded
    fields = _fields(version) if ready else []
    again_note = None
    if ready and again:
        values, again_note = _values_of(session, user, again)
    lock, lock_note = _lock(session, version) if ready else (None, None)
    return page(
        request, "version.html", user, status_code=code, version=version, model=version.model,
        ready=ready, fields=fields, values=values or {}, again_note=again_note,
        field_errors=forms.errors_by_field(error or ""),
        streaming=bool((version.input_schema or {}).get(STREAM_MARK)), error=error,
        dockerfile=_dockerfile(version), lock=lock, lock_note=lock_note,
        built_in=job_pages.seconds_between(version.started_at, version.finished_at),
        snippets=_snippets(request, user, version, fields) if ready else None,
    )  # fmt: skip


def _dockerfile(version: ModelVersion) -> tuple[str | None, str | None]:
    """The version's Dockerfile, or why it has none (as GET /api/versions/{id}/dockerfile)."""
    try:
        return require_dockerfile(version), None
    except HTTPException as none:
        return None, none.detail


def _lock(session: Session, version: ModelVersion) -> tuple[list[dict] | None, str | None]:
    """The packages the version's image holds, or why they are not known any more."""
    try:
        return eject.lock_of(session, version), None
    except eject.NotKept as gone:
        return None, str(gone)


def _snippets(request: Request, user: User, version: ModelVersion,
              fields: list[forms.Field]) -> snippets.Snippets:  # fmt: skip
    # The command finds a model by name among the user's own first: another's, by its id.
    model = version.model
    named = model.name if model.owner_id == user.id else str(model.id)
    target = f"{named}:{version.number}"
    return snippets.of(str(request.base_url), str(version.id), target, fields)


def _values_of(session: Session, user: User, job_id: uuid.UUID) -> tuple[dict[str, Any], str]:
    """The values of the user's job, to fill the run form in again, and what to do about its
    files, which are not kept or too big to send again from here."""
    try:
        job = job_for(session, user, job_id)
    except HTTPException:
        return {}, "That job is not yours, or no longer there: nothing was filled in."
    if job.batch is not None:
        return {}, "That batch's items cannot be sent again from here: run them one by one."
    files = [f"{name} (was {value['name']})" for name, value in job.inputs.items()
             if inputs.is_file(value)]  # fmt: skip
    values = {name: value for name, value in job.inputs.items() if not inputs.is_file(value)}
    choose = f" Choose the file(s) again: {', '.join(files)}." if files else ""
    note = (
        f"Filled in from job {job.id}: its files are no longer kept, or too big to send "
        f"again from here.{choose}"
    )
    return values, note
