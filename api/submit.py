"""Creating jobs: on an input uploaded afterwards, on an input or a batch sent inline, or on a
batch of uploads; once per Idempotency-Key and user within 24 hours."""

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header, HTTPException, status
from sqlalchemy.orm import Session

from api import crud
from api.schemas import PLAIN_TEXT, JobCreate
from api.uploads import seal_upload
from core.lifecycle import JOB, utcnow
from core.models import Job, ModelVersion, User
from core.queue import send_run
from core.settings import settings
from core.storage import (
    JOB_INPUT_NAME,
    Storage,
    job_input_key,
    job_input_upload_key,
)

IDEMPOTENCY_WINDOW = timedelta(hours=24)

IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1, max_length=255, pattern=PLAIN_TEXT,
        description="Retrying with the same key within 24 h returns the job the first try made.",
    ),
]  # fmt: skip


def create(
    session: Session, storage: Storage, *, user: User, version: ModelVersion, body: JobCreate,
    key: str | None,
) -> tuple[Job, bool]:  # fmt: skip
    """The new job (queued at once when its input came inline), or, replayed=True, the job
    this key made before."""
    if key is not None and (earlier := _earlier(session, user, key)) is not None:
        return earlier, True
    job_id = uuid.uuid4()
    fields, inline = _layout(job_id, body)
    try:
        job = crud.create_job(
            session, job_id=job_id, owner=user, version=version, inline=inline,
            idempotency_key=key, **fields,
        )  # fmt: skip
    except crud.AlreadyExists:
        if key is None:
            raise
        return _earlier(session, user, key), True  # a concurrent request with this key won
    if inline is not None:
        try:
            crud.enqueue(send_run, str(job.id))
        except crud.QueueUnavailable:
            crud.delete(session, row=job)  # so that a retry with its key starts afresh
            raise
    return job, False


def _earlier(session: Session, user: User, key: str) -> Job | None:
    job = crud.job_by_idempotency_key(session, owner=user, key=key)
    if job is not None and job.created_at < utcnow() - IDEMPOTENCY_WINDOW:
        job.idempotency_key = None  # expired: the key is free again
        session.commit()
        return None
    return job


def _layout(job_id: uuid.UUID, body: JobCreate) -> tuple[dict[str, Any], bytes | None]:
    """The job's input fields, and the bytes of its inline input(s), one after another."""
    inline = [body.input] if body.input else body.batch or []
    total = sum(len(each.data) for each in inline)
    if total > settings.max_inline_input_bytes:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"The inline input is {total} bytes; the limit is {settings.max_inline_input_bytes}. "
            "Send bigger inputs through upload URLs.",
        )
    if body.input:
        return {"inputs": {body.input.name: {"key": None, "size": total}}}, body.input.data
    if body.batch:
        items, offset = [], 0
        for each in body.batch:
            items.append({"name": each.name, "key": None, "offset": offset, "size": len(each.data)})
            offset += len(each.data)
        data = b"".join(each.data for each in body.batch)
        return {"inputs": {}, "batch": items, "items_total": len(items)}, data
    if body.batch_size:
        items = [
            {"name": JOB_INPUT_NAME, "key": job_input_key(job_id, _item(i)), "offset": 0,
             "size": None}
            for i in range(body.batch_size)
        ]  # fmt: skip
        return {"inputs": {}, "batch": items, "items_total": len(items)}, None
    return {"inputs": {JOB_INPUT_NAME: {"key": job_input_key(job_id), "size": None}}}, None


def _item(index: int) -> str:
    return f"item-{index}"


def upload_urls(storage: Storage, job: Job) -> dict[str, Any]:
    """Where a job still waiting for its upload(s) takes them."""
    if job.status != JOB.uploading:
        return {}
    expires_in = int(storage.url_lifetime.total_seconds())
    if job.batch is not None:
        urls = [
            storage.presigned_put(job_input_upload_key(job.id, _item(i)))
            for i in range(len(job.batch))
        ]
        return {"upload_urls": urls, "upload_expires_in": expires_in}
    return {
        "upload_url": storage.presigned_put(job_input_upload_key(job.id)),
        "upload_expires_in": expires_in,
    }


def seal_inputs(storage: Storage, job: Job) -> None:
    """Seals what was uploaded for the job (409/413 when an upload is missing or too big)."""
    if job.batch is not None:
        # All or none: sealing removes the uploads, so a second try must find them all there.
        missing = [
            f"upload_urls[{i}]"
            for i in range(len(job.batch))
            if storage.size(job_input_upload_key(job.id, _item(i))) is None
        ]
        if missing:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"No input uploaded yet to {', '.join(missing[:10])}"
                f"{' and others' if len(missing) > 10 else ''}: PUT each item first.",
            )
        job.batch = [
            {**item, "size": _seal(storage, job, item["key"], _item(i), f"item {i}'s input file",
                                   f"upload_urls[{i}]")}
            for i, item in enumerate(job.batch)
        ]  # fmt: skip
        return
    ((name, sealed),) = job.inputs.items()
    size = _seal(storage, job, sealed["key"], name, "input file", "job's upload_url")
    job.inputs = {name: {**sealed, "size": size}}


def _seal(storage: Storage, job: Job, sealed_key: str, name: str, what: str, hint: str) -> int:
    return seal_upload(
        storage, upload_key=job_input_upload_key(job.id, name), sealed_key=sealed_key,
        limit=settings.max_input_bytes, what=what, url_hint=hint,
    )  # fmt: skip
