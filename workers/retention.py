"""Retention, in each pass of the reconciler (workers/reconcile.py): nothing grows forever.

- A job's files (inputs, outputs, log) are removed MODELFARM_JOB_RETENTION_DAYS after its end;
  the row stays, with its result and error, marked data_removed (its /outputs answer 410).
- A version or job still waiting for its upload MODELFARM_UPLOAD_EXPIRY_HOURS after it was made
  is removed, with whatever was uploaded (core/removal.py), its upload in parts aborted.
- An upload in parts that no row knows (its API request died before its commit) is aborted
  once as old.
- A content sent by a package (core/contents.py) that no version of its owner names is removed
  once as old (a push may be on its way to name it), and an upload of one never completed is
  aborted.

Each pass takes at most BATCH rows of each kind, so that a backlog never makes one pass long.
"""

from datetime import timedelta

from sqlalchemy import delete, select, update

from core import removal
from core.contents import CONTENTS_PREFIX, owner_and_sha256
from core.db import SessionLocal, session_scope
from core.lifecycle import JOB, VERSION, utcnow
from core.models import InlineInput, Job, Model, ModelVersion, PackageUpload
from core.multipart import Multipart
from core.registry import Registry
from core.settings import settings
from core.storage import PACKAGES_PREFIX, Storage, job_prefix

BATCH = 200


def sweep() -> dict[str, int]:
    storage = Storage()
    return {
        "jobs_expired": _expire_job_files(storage),
        "uploads_abandoned": _remove_abandoned(storage),
        "parts_reclaimed": _abort_unknown_uploads(storage),
        "contents_removed": _remove_unused_contents(storage),
    }


def _expire_job_files(storage: Storage) -> int:
    ended_before = utcnow() - timedelta(days=settings.job_retention_days)
    with session_scope() as session:
        expired = session.scalars(
            select(Job.id)
            .where(Job.finished_at < ended_before, Job.data_removed.is_(False))
            .limit(BATCH)
        ).all()
    for job_id in expired:
        storage.delete_prefix(job_prefix(job_id))
        with session_scope() as session:
            session.execute(delete(InlineInput).where(InlineInput.job_id == job_id))
            # Small outputs may sit in the row until first listed (workers/run/transfer.py).
            session.execute(update(Job).where(Job.id == job_id)
                            .values(data_removed=True, outputs=[], stored_bytes=0))  # fmt: skip
    return len(expired)


def _remove_abandoned(storage: Storage) -> int:
    made_before = utcnow() - timedelta(hours=settings.upload_expiry_hours)
    removed = 0
    for table, waiting in ((Job, JOB.uploading), (ModelVersion, VERSION.uploading)):
        with session_scope() as session:
            ids = session.scalars(
                select(table.id)
                .where(table.status == waiting, table.created_at < made_before)
                .limit(BATCH)
            ).all()
        for row_id in ids:
            with SessionLocal() as session:
                row = session.get(table, row_id, with_for_update=True)
                if row is None or row.status != waiting:
                    continue  # its upload came meanwhile
                if table is Job:
                    removal.remove_job(session, storage, row)
                else:
                    removal.remove_versions(session, storage, Registry(), [row])
                removed += 1
    return removed


def _abort_unknown_uploads(storage: Storage) -> int:
    multipart = Multipart(storage)
    started_before = utcnow() - timedelta(hours=settings.upload_expiry_hours)
    old = multipart.started_before(PACKAGES_PREFIX, started_before)[:BATCH]
    with session_scope() as session:
        known = set(session.scalars(select(PackageUpload.upload_id)))
    unknown = [(key, upload_id) for key, upload_id in old if upload_id not in known]
    for key, upload_id in unknown:
        multipart.abort(key, upload_id)
    return len(unknown)


def _remove_unused_contents(storage: Storage) -> int:
    made_before = utcnow() - timedelta(hours=settings.upload_expiry_hours)
    multipart = Multipart(storage)
    unfinished = multipart.started_before(CONTENTS_PREFIX, made_before)[:BATCH]
    for key, upload_id in unfinished:
        multipart.abort(key, upload_id)
    old = storage.keys_older(CONTENTS_PREFIX, made_before)
    with session_scope() as session:
        declared = session.execute(
            select(Model.owner_id, ModelVersion.content_files)
            .join(Model)
            .where(ModelVersion.content_files.is_not(None))
        ).all()
    named = {(owner, each["sha256"]) for owner, files in declared for each in files}
    unused = [key for key in old if owner_and_sha256(key) not in named][:BATCH]
    for key in unused:
        storage.delete(key)
    return len(unfinished) + len(unused)
