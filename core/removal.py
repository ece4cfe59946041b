"""Removing what a job, a version or a model left: objects in storage, manifests in the
registry, then the rows. The data goes first and the rows last, and every step may be done
twice: a removal stopped midway (a store down) is finished by the next request for it, and no
row is lost while data it points at remains.

A removal stays within its owner's data: a version or model goes with its owner's jobs on it,
while other users' jobs on it (a public model's) stay with their results and outputs, detached
(their version_id becomes null), for the farm's retention to end; one of theirs that has not
ended is canceled with WITHDRAWN, so no one else's job can hold an owner's removal back. What
the owner still runs is never removed: the API answers 409 for their job queued or running, a
version being built or with their jobs queued or running, and a model with either
(`still_active`).
"""

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core import cancels
from core.contents import CONTENTS_PREFIX
from core.lifecycle import JOB, VERSION
from core.models import Job, Model, ModelVersion, PackageUpload, User
from core.multipart import Multipart
from core.registry import Registry, model_repository
from core.storage import Storage, job_prefix, package_key, package_upload_key

WITHDRAWN = (
    "The model's owner removed this version before the job ended, so it was canceled; its "
    "inputs and any outputs stay until the farm's retention removes them."
)


def still_active(session: Session, *, versions: list[ModelVersion]) -> str | None:
    """Why these versions cannot be removed now, as a sentence; None when they can."""
    building = [f"v{v.number}" for v in versions if v.status in VERSION.active]
    if building:
        return f"{', '.join(building)} is being built; remove it once its build has ended."
    if not versions:
        return None
    jobs = session.scalar(
        select(func.count()).where(
            Job.version_id.in_([v.id for v in versions]),
            Job.status.in_(JOB.active),
            Job.owner_id == versions[0].model.owner_id,
        )  # fmt: skip
    )
    if jobs:
        return (
            f"{jobs} of your job(s) on it are queued or running; cancel them (POST "
            "/api/jobs/{id}/cancel) or wait for their end, then remove it."
        )
    return None


def remove_job(session: Session, storage: Storage, job: Job) -> None:
    storage.delete_prefix(job_prefix(job.id))
    session.execute(delete(Job).where(Job.id == job.id))  # its items and attempts cascade
    session.commit()


def remove_versions(
    session: Session, storage: Storage, registry: Registry, versions: list[ModelVersion],
    *, model: Model | None = None,
) -> None:  # fmt: skip
    """Removes versions of one model (and the model, when given) with their owner's jobs;
    other users' jobs on them stay, detached, canceled if they had not ended."""
    ids = [version.id for version in versions]
    owner_id = model.owner_id if model is not None else versions[0].model.owner_id
    _cancel_others_jobs(session, ids, owner_id)
    own_jobs = list(
        session.scalars(select(Job.id).where(Job.version_id.in_(ids), Job.owner_id == owner_id))
    )
    for job_id in own_jobs:
        storage.delete_prefix(job_prefix(job_id))
    multipart = Multipart(storage)
    for upload in session.scalars(select(PackageUpload).where(PackageUpload.version_id.in_(ids))):
        multipart.abort(package_key(upload.version_id), upload.upload_id)
    for version in versions:
        for key in (package_upload_key(version.id), version.package_key, version.build_log_key):
            storage.delete(key)
    if versions or model is not None:
        _remove_manifests(session, registry, versions, model)
    session.execute(delete(Job).where(Job.id.in_(own_jobs)))  # with their items and attempts
    # Their aliases and webhook attempts cascade in the database; others' jobs are detached.
    session.execute(delete(ModelVersion).where(ModelVersion.id.in_(ids)))
    if model is not None:
        session.execute(delete(Model).where(Model.id == model.id))
    session.commit()


def account_still_active(session: Session, user_id: uuid.UUID) -> str | None:
    """Why the user's account cannot be removed now, as a sentence; None when it can."""
    for model in session.scalars(select(Model).where(Model.owner_id == user_id)).all():
        problem = still_active(session, versions=versions_of(session, model.id))
        if problem:
            return f"Model {model.name}: {problem}"
    jobs = session.scalar(
        select(func.count()).where(Job.owner_id == user_id, Job.status.in_(JOB.active))
    )
    if jobs:
        return (
            f"{jobs} of your job(s) are queued or running; cancel them (POST "
            "/api/jobs/{id}/cancel) or wait for their end, then remove your account."
        )
    return None


def remove_account(session: Session, storage: Storage, registry: Registry, user: User) -> None:
    """Removes the user with every job, model, version, image, file and token of theirs; other
    users' jobs on their public models stay, detached, as for any removal."""
    for job in session.scalars(select(Job).where(Job.owner_id == user.id)).all():
        remove_job(session, storage, job)
    for model in session.scalars(select(Model).where(Model.owner_id == user.id)).all():
        remove_versions(session, storage, registry, versions_of(session, model.id), model=model)
    storage.delete_prefix(f"{CONTENTS_PREFIX}{user.id}/")
    session.execute(delete(User).where(User.id == user.id))  # their tokens cascade
    session.commit()


def _cancel_others_jobs(session: Session, ids: list[uuid.UUID], owner_id: uuid.UUID) -> None:
    others = select(Job).where(
        Job.version_id.in_(ids), Job.owner_id != owner_id, Job.status.in_(JOB.active)
    )
    for job in session.scalars(others.with_for_update()).all():
        cancels.cancel(session, job, error=WITHDRAWN)


def _remove_manifests(
    session: Session, registry: Registry, versions: list[ModelVersion], model: Model | None
) -> None:
    """The versions' images, unless another version of their model runs the same one; with the
    model, every image in its repository (also those no row records, such as a build's that
    died after its push)."""
    repository = model_repository(model.id if model is not None else versions[0].model_id)
    digests = {v.image_digest for v in versions if v.image_digest} - _kept(session, versions)
    if model is not None:
        digests |= {registry.manifest_digest(repository, tag) for tag in registry.tags(repository)}
    for digest in digests - {None}:
        registry.delete_manifest(repository, digest)


def _kept(session: Session, versions: list[ModelVersion]) -> set[str]:
    """The digests of these versions that another version of their model also runs (a reused
    image): their manifest stays."""
    if not versions:
        return set()
    others = select(ModelVersion.image_digest).where(
        ModelVersion.model_id == versions[0].model_id,
        ModelVersion.id.not_in([v.id for v in versions]),
        ModelVersion.image_digest.is_not(None),
    )
    return set(session.scalars(others))


def versions_of(session: Session, model_id: uuid.UUID) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).where(ModelVersion.model_id == model_id)))
