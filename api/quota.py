"""Each user's storage quota (MODELFARM_STORAGE_QUOTA_MB): the bytes of their models' packages
(their ZIPs and the files each sent by content, core/contents.py, counted per version) and of
their jobs' input and output files (core/models.Job.stored_bytes, set when a job is queued and
again when it ends), checked before a package or an input is sealed, so that a
refusal leaves the upload in place to retry once room is made."""

import uuid

from fastapi import HTTPException, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Job, Model, ModelVersion
from core.settings import settings

MB = 1024**2


def used_bytes(session: Session, owner_id: uuid.UUID) -> int:
    packages = (
        select(func.coalesce(func.sum(ModelVersion.package_size + ModelVersion.content_bytes), 0))
        .join(Model)
        .where(Model.owner_id == owner_id)
    )
    jobs = select(func.coalesce(func.sum(Job.stored_bytes), 0)).where(Job.owner_id == owner_id)
    return session.scalar(packages) + session.scalar(jobs)


def require_room(session: Session, owner_id: uuid.UUID, adding: int) -> None:
    """413 when `adding` more bytes would take the user past their quota."""
    used, quota = used_bytes(session, owner_id), settings.storage_quota_mb * MB
    if used + adding > quota:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"Your files take {used / MB:.1f} MB and this adds {adding / MB:.1f} MB, past your "
            f"{settings.storage_quota_mb} MB (MODELFARM_STORAGE_QUOTA_MB): remove models, "
            "versions or jobs you no longer need (DELETE), then try again.",
        )
