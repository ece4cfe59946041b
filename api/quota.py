"""Each user's storage quota (MODELFARM_STORAGE_QUOTA_MB): the bytes of their models' packages
(their ZIPs, and the files they send by content, core/contents.py, each content once) and of
their jobs' input and output files (core/models.Job.stored_bytes, set when a job is queued and
again when it ends), checked before a package or an input is sealed, so that a
refusal leaves the upload in place to retry once room is made."""

import uuid

from fastapi import HTTPException, status
from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from core.models import Job, Model, ModelVersion
from core.settings import settings

MB = 1024**2


def used_bytes(session: Session, owner_id: uuid.UUID) -> int:
    """What the user's files take."""
    return _packages_and_jobs(session, owner_id) + sum(contents_named(session, owner_id).values())


def _packages_and_jobs(session: Session, owner_id: uuid.UUID) -> int:
    packages = (
        select(func.coalesce(func.sum(ModelVersion.package_size), 0))
        .join(Model)
        .where(Model.owner_id == owner_id)
    )
    jobs = select(func.coalesce(func.sum(Job.stored_bytes), 0)).where(Job.owner_id == owner_id)
    return session.scalar(packages) + session.scalar(jobs)


def contents_named(
    session: Session, owner_id: uuid.UUID, *, leaving_out: uuid.UUID | None = None
) -> dict[str, int]:
    """The contents the user's versions send by content (core/contents.py), each once, as the
    store keeps them: sha256 -> size."""
    declared = session.scalars(
        select(ModelVersion.content_files)
        .join(Model)
        .where(Model.owner_id == owner_id, ModelVersion.content_files.is_not(None))
        .where(ModelVersion.id != leaving_out if leaving_out else true())
    )
    return {each["sha256"]: each["size"] for files in declared for each in files}


def require_room(session: Session, owner_id: uuid.UUID, adding: int) -> None:
    """413 when `adding` more bytes would take the user past their quota."""
    _within_quota(used_bytes(session, owner_id), adding)


def require_room_for_contents(session: Session, version: ModelVersion, sizes: dict[str, int]):
    """require_room for the contents a version declares (sha256 -> size), replacing what it
    declared before: only those none of the owner's other versions name add bytes."""
    owner_id = version.model.owner_id
    named = contents_named(session, owner_id, leaving_out=version.id)
    used = _packages_and_jobs(session, owner_id) + sum(named.values())
    _within_quota(used, sum(size for sha256, size in sizes.items() if sha256 not in named))


def _within_quota(used: int, adding: int) -> None:
    quota = settings.storage_quota_mb * MB
    if used + adding > quota:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"Your files take {used / MB:.1f} MB and this adds {adding / MB:.1f} MB, past your "
            f"{settings.storage_quota_mb} MB (MODELFARM_STORAGE_QUOTA_MB): remove models, "
            "versions or jobs you no longer need (DELETE), then try again.",
        )
