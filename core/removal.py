"""Removing what a job, a version or a model left: objects in storage, manifests in the
registry, then the rows. The data goes first and the rows last, and every step may be done
twice: a removal stopped midway (a store down) is finished by the next request for it, and no
row is lost while data it points at remains.

What still runs is never removed: the API answers 409 for a job queued or running, a version
being built or with jobs queued or running, and a model with either (`still_active`).
"""

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.lifecycle import JOB, VERSION
from core.models import Job, Model, ModelVersion, PackageUpload
from core.multipart import Multipart
from core.registry import Registry, model_repository
from core.storage import Storage, job_prefix, package_key, package_upload_key


def still_active(session: Session, *, versions: list[ModelVersion]) -> str | None:
    """Why these versions cannot be removed now, as a sentence; None when they can."""
    building = [f"v{v.number}" for v in versions if v.status in VERSION.active]
    if building:
        return f"{', '.join(building)} is being built; remove it once its build has ended."
    jobs = session.scalar(
        select(func.count()).where(
            Job.version_id.in_([v.id for v in versions]), Job.status.in_(JOB.active)
        )
    )
    if jobs:
        return (
            f"{jobs} job(s) on it are queued or running; cancel them (POST "
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
    """Removes versions of one model (and the model, when given) with their jobs."""
    ids = [version.id for version in versions]
    for job_id in session.scalars(select(Job.id).where(Job.version_id.in_(ids))):
        storage.delete_prefix(job_prefix(job_id))
    multipart = Multipart(storage)
    for upload in session.scalars(select(PackageUpload).where(PackageUpload.version_id.in_(ids))):
        multipart.abort(package_key(upload.version_id), upload.upload_id)
    for version in versions:
        for key in (package_upload_key(version.id), version.package_key, version.build_log_key):
            storage.delete(key)
    if versions or model is not None:
        _remove_manifests(session, registry, versions, model)
    # Their jobs, aliases and webhook attempts cascade in the database.
    session.execute(delete(ModelVersion).where(ModelVersion.id.in_(ids)))
    if model is not None:
        session.execute(delete(Model).where(Model.id == model.id))
    session.commit()


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
