"""The web UI's compare page: one input run on two to four READY versions the user may see, side
by side, to choose what goes behind `prod`. GET /compare picks the versions (a select of the
READY versions of the models the user sees, in one query), then shows the run form of their
common input schema (api/forms.py); POST /compare makes one job per version on the same inputs
(api/submit.py, as the version page's Run does); /compare/{job ids} shows each job's status
(live: api/static/compare.js follows their events), result, output files as links to their
presigned URLs (the object store's origin, downloads: never rendered on the UI's origin), queue
wait and run time.

The model page's link to it: /compare?versions=<id>&versions=<id>… (see the module's GET)."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from api import crud, forms, submit
from api.deps import SessionDep, StorageDep, job_for, require_ready, version_for
from api.routes import job_pages
from api.routes.pages import CsrfChecked, PageUser, missing, page, to
from api.schemas import JobCreate
from core.inputs import LEGACY_SCHEMA
from core.lifecycle import JOB, VERSION
from core.models import Job, Model, ModelVersion, User
from core.storage import Storage

router = APIRouter(include_in_schema=False)
FEWEST, MOST = 2, 4
PICKABLE = 200  # READY versions offered in the select; others by their id in the URL
# What a field's description may change without changing the input it takes.
WORDING = frozenset({"title", "description", "default", "x-order"})
VersionIds = Annotated[list[uuid.UUID] | None, Query(alias="versions")]


@router.get("/compare")
async def compare_page(
    request: Request, session: SessionDep, user: PageUser, versions: VersionIds = None
) -> Response:  # fmt: skip
    """The picker alone without versions; with some, their common run form (404 for one the
    user may not see)."""
    if not versions:
        return _picker(request, session, user)
    chosen = _chosen(request, session, user, versions)
    if isinstance(chosen, Response):
        return chosen
    return _form(request, session, user, *chosen)


@router.post("/compare", dependencies=[CsrfChecked])
async def compare(
    request: Request, session: SessionDep, storage: StorageDep, user: PageUser
) -> Response:
    """One job per version on the form's inputs, then the page that shows them side by side."""
    form = await request.form()
    try:
        ids = [uuid.UUID(str(each)) for each in form.getlist("versions")]
    except ValueError:
        return missing(request, user, HTTPException(404, "No version with that id"))
    chosen = _chosen(request, session, user, ids)
    if isinstance(chosen, Response):
        return chosen
    versions, fields = chosen
    given = await forms.inputs_of(form, fields)  # read once: every job gets the same
    try:
        made = await run_in_threadpool(_submit_each, session, storage, user, versions, given)
    except HTTPException as refused:
        return _form(request, session, user, versions, fields, refused.detail,
                     refused.status_code)  # fmt: skip
    return to(f"/compare/{','.join(str(job.id) for job in made)}")


@router.get("/compare/{job_ids}")
async def compare_result(
    job_ids: str, request: Request, session: SessionDep, storage: StorageDep, user: PageUser
) -> Response:
    """The jobs side by side (only the user's own: 404 for another's)."""
    try:
        jobs = _jobs(session, user, job_ids)
    except HTTPException as absent:
        return missing(request, user, absent)
    shown = await run_in_threadpool(_shown, session, storage, jobs)
    return page(request, "compare_result.html", user, shown=shown,
                ended=all(each["ended"] for each in shown))  # fmt: skip


def _chosen(request: Request, session: Session, user: User, ids: list[uuid.UUID]
            ) -> tuple[list[ModelVersion], list[forms.Field]] | Response:  # fmt: skip
    """The versions and their common form fields; else the page that says why not: 404 for a
    version the user may not see, the picker with the sentence for any other refusal."""
    try:
        versions = _versions(session, user, ids)
        return versions, _common_fields(versions)
    except HTTPException as refused:
        if refused.status_code == 404:
            return missing(request, user, refused)
        return _picker(request, session, user, refused.detail, refused.status_code, ids)


def _versions(session: Session, user: User, ids: list[uuid.UUID]) -> list[ModelVersion]:
    """The versions, in the order given, each one the user may read (else 404), READY and
    between FEWEST and MOST of them (else 422)."""
    unique = list(dict.fromkeys(ids))
    if not FEWEST <= len(unique) <= MOST:
        raise HTTPException(422, f"Choose {FEWEST} to {MOST} different versions to compare; "
                            f"{len(unique)} chosen.")  # fmt: skip
    # One query loads them all with their models; version_for then finds each in the session.
    session.scalars(select(ModelVersion).where(ModelVersion.id.in_(unique))
                    .options(joinedload(ModelVersion.model))).all()  # fmt: skip
    chosen = [version_for(session, user, each, write=False) for each in unique]
    for version in chosen:
        require_ready(version, f"comparing v{version.number} of {version.model.name}")
    return chosen


def _common_fields(chosen: list[ModelVersion]) -> list[forms.Field]:
    """The first version's form fields, when every version takes the same inputs (names,
    types, bounds, choices; their wording and defaults may differ)."""
    shapes = [_shape(version.input_schema or LEGACY_SCHEMA) for version in chosen]
    for version, shape in zip(chosen[1:], shapes[1:], strict=True):
        if shape != shapes[0]:
            first = chosen[0]
            raise HTTPException(
                422,
                f"{version.model.name} v{version.number} takes other inputs than "
                f"{first.model.name} v{first.number}: one form cannot run both. Compare "
                "versions whose inputs are the same.",
            )
    return forms.fields_of(chosen[0].input_schema or LEGACY_SCHEMA)


def _shape(schema: dict) -> tuple[frozenset, dict[str, dict]]:
    properties = {
        name: {key: value for key, value in spec.items() if key not in WORDING}
        for name, spec in schema["properties"].items()
    }
    return frozenset(schema.get("required", [])), properties


def _submit_each(session: Session, storage: Storage, user: User, chosen: list[ModelVersion],
                 given: dict[str, Any]) -> list[Job]:  # fmt: skip
    """A job per version, as the version page's Run makes one. The inputs are checked alike
    for all (same shape), so a refusal comes at the first, before any job was made, but for
    the user's room (throttle, quota), which may run out midway: said with the jobs made."""
    made: list[Job] = []
    for version in chosen:
        body = JobCreate(version_id=version.id, inputs=given)
        try:
            job, _ = submit.create(session, storage, user=user, version=version, body=body,
                                   key=None)  # fmt: skip
        except HTTPException as refused:
            if made:
                listed = ", ".join(f"/jobs/{each.id}" for each in made)
                refused.detail = f"{refused.detail} (jobs already made: {listed})"
            raise
        made.append(job)
    return made


def _jobs(session: Session, user: User, job_ids: str) -> list[Job]:
    """The user's jobs of the comma-separated ids, in their order (404 for any other)."""
    try:
        ids = list(dict.fromkeys(uuid.UUID(each) for each in job_ids.split(",")))
    except ValueError:
        raise HTTPException(404, "No job with that id") from None
    if not 1 <= len(ids) <= MOST:
        raise HTTPException(404, f"A comparison shows 1 to {MOST} jobs.")
    # One query loads the jobs with their versions and models; job_for then finds each here.
    session.scalars(select(Job).where(Job.id.in_(ids)).options(
        joinedload(Job.version).joinedload(ModelVersion.model))).all()  # fmt: skip
    return [job_for(session, user, each) for each in ids]


def _shown(session: Session, storage: Storage, jobs: list[Job]) -> list[dict[str, Any]]:
    """What the page shows of each job: once it ended, its output files (as the job's page
    lists them, with their presigned URLs)."""
    shown = []
    for job in jobs:
        ended = job.status in JOB.terminal
        outputs, note = job_pages.outputs_of(session, storage, job) if ended else ([], None)
        shown.append({
            "job": job, "version": job.version, "ended": ended, "outputs": outputs,
            "outputs_note": note, "waited": job_pages.seconds_between(job.queued_at,
                                                                       job.started_at),
            "took": job_pages.seconds_between(job.started_at, job.finished_at),
        })  # fmt: skip
    return shown


def _pickable(session: Session, user: User) -> list[tuple[ModelVersion, Model]]:
    """The READY versions of the models the user sees, by model name then newest first (one
    query)."""
    visible = crud.visible_models(user=user).order_by(None).with_only_columns(Model.id)
    query = (
        select(ModelVersion, Model)
        .join(Model, Model.id == ModelVersion.model_id)
        .where(ModelVersion.status == VERSION.succeeded, Model.id.in_(visible))
        .order_by(Model.name, Model.id, ModelVersion.number.desc())
        .limit(PICKABLE)
    )
    return [(row.ModelVersion, row.Model) for row in session.execute(query)]


def _form(
    request: Request, session: Session, user: User, versions: list[ModelVersion],
    fields: list[forms.Field], error: str | None = None, code: int = 200,
) -> Response:  # fmt: skip
    return page(request, "compare.html", user, status_code=code, chosen=versions,
                fields=fields, options=_pickable(session, user),
                picked={version.id for version in versions}, error=error)  # fmt: skip


def _picker(request: Request, session: Session, user: User, error: str | None = None,
            code: int = 200, picked: list[uuid.UUID] = ()) -> Response:  # fmt: skip
    return page(request, "compare.html", user, status_code=code, chosen=[], fields=[],
                options=_pickable(session, user), picked=set(picked), error=error)  # fmt: skip
