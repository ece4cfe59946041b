"""Creating jobs: on typed inputs (values, files inline or uploaded afterwards), on a model's
one file uploaded afterwards or sent inline, or on a batch of files inline or uploaded; once per
Idempotency-Key and user within 24 hours."""

import base64
import binascii
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header, HTTPException, status
from sqlalchemy.orm import Session

from api import crud
from api.schemas import PLAIN_TEXT, JobCreate
from api.uploads import seal_upload
from core import inputs
from core.lifecycle import JOB, utcnow
from core.models import Job, ModelVersion, User
from core.queue import send_run
from core.settings import settings
from core.storage import JOB_INPUT_NAME, Storage, job_input_key, job_input_upload_key

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
    fields, inline = _layout(job_id, body, version.input_schema or inputs.LEGACY_SCHEMA)
    try:
        job = crud.create_job(
            session, job_id=job_id, owner=user, version=version, inline=inline,
            queued=not _awaits_uploads(fields), idempotency_key=key, **fields,
        )  # fmt: skip
    except crud.AlreadyExists:
        if key is None:
            raise
        return _earlier(session, user, key), True  # a concurrent request with this key won
    if job.status == JOB.queued:
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


def _layout(
    job_id: uuid.UUID, body: JobCreate, schema: dict
) -> tuple[dict[str, Any], bytes | None]:
    """The job's input fields, and the bytes of its inline files, one after another."""
    if body.inputs is not None:
        return _typed(job_id, schema, body.inputs)
    file_input = inputs.only_file_input(schema)
    if file_input is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"This model's inputs are {', '.join(schema['properties'])}: give them as `inputs`, "
            "as its version's input_schema says.",
        )
    if body.batch:
        _limit_inline(sum(len(each.data) for each in body.batch))
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
    if body.input:
        given = {"name": body.input.name, "data": body.input.data}
    else:
        given = {"upload": True, "name": JOB_INPUT_NAME}
    return _stored(job_id, {**inputs.defaults(schema), file_input: given})


def _typed(
    job_id: uuid.UUID, schema: dict, given: dict[str, Any]
) -> tuple[dict[str, Any], bytes | None]:
    """Inputs checked against the version's schema (422 naming each problem), with defaults."""
    try:
        values = inputs.checked(schema, given)
    except inputs.InputError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(error)) from None
    for name, value in values.items():
        if inputs.is_file(value) and "data" in value:
            values[name] = {**value, "data": _decoded(name, value["data"])}
    return _stored(job_id, values)


def _stored(job_id: uuid.UUID, values: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """The job's inputs as stored (core/inputs.py), and its inline files' bytes."""
    stored: dict[str, Any] = {}
    inline: list[bytes] = []
    offset = 0
    for name, value in values.items():
        if not inputs.is_file(value):
            stored[name] = value
        elif "data" in value:
            size = len(value["data"])
            stored[name] = {"name": value["name"], "key": None, "offset": offset, "size": size}
            inline.append(value["data"])
            offset += size
        else:
            stored[name] = {"name": value.get("name", name), "key": job_input_key(job_id, name),
                            "offset": 0, "size": None}  # fmt: skip
    _limit_inline(offset)
    return {"inputs": stored}, b"".join(inline) if inline else None


def _decoded(name: str, data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, f"inputs.{name}.data: this is not base64."
        ) from None


def _limit_inline(total: int) -> None:
    if total > settings.max_inline_input_bytes:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"The inline input is {total} bytes; the limit is {settings.max_inline_input_bytes}. "
            "Send bigger inputs through upload URLs.",
        )


def _awaits_uploads(fields: dict[str, Any]) -> bool:
    files = [v for v in fields["inputs"].values() if inputs.is_file(v)]
    return any(each["key"] is not None for each in (*files, *fields.get("batch", [])))


def _uploaded(job: Job) -> list[str]:
    """The inputs of a single job that are uploaded (not sent inline)."""
    return [n for n, v in job.inputs.items() if inputs.is_file(v) and v["key"] is not None]


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
    urls = {
        name: storage.presigned_put(job_input_upload_key(job.id, name)) for name in _uploaded(job)
    }
    one = {"upload_url": next(iter(urls.values()))} if len(urls) == 1 else {}
    return {"upload_urls": urls, **one, "upload_expires_in": expires_in}


def seal_inputs(storage: Storage, job: Job) -> None:
    """Seals what was uploaded for the job (409/413 when an upload is missing or too big)."""
    if job.batch is not None:
        _require_uploads(storage, job, [_item(i) for i in range(len(job.batch))], "item")
        job.batch = [
            {**item, "size": _seal(storage, job, item["key"], _item(i), f"item {i}'s input file",
                                   f"upload_urls[{i}]")}
            for i, item in enumerate(job.batch)
        ]  # fmt: skip
        return
    names = _uploaded(job)
    if len(names) == 1:  # the sealing's own 409 says what is missing
        hints = {names[0]: ("input file", "job's upload_url")}
    else:
        _require_uploads(storage, job, names, "file")
        hints = {name: (f"file of input {name}", f"upload_urls[{name}]") for name in names}
    job.inputs = {
        name: {**value, "size": _seal(storage, job, value["key"], name, *hints[name])}
        if name in hints else value
        for name, value in job.inputs.items()
    }  # fmt: skip


def _require_uploads(storage: Storage, job: Job, names: list[str], what: str) -> None:
    """409 unless every upload is there. All or none: sealing removes an upload, so a second
    try must find them all there."""
    missing = [
        f"upload_urls[{name.removeprefix('item-')}]"
        for name in names
        if storage.size(job_input_upload_key(job.id, name)) is None
    ]
    if missing:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"No input uploaded yet to {', '.join(missing[:10])}"
            f"{' and others' if len(missing) > 10 else ''}: PUT each {what} first.",
        )


def _seal(storage: Storage, job: Job, sealed_key: str, name: str, what: str, hint: str) -> int:
    return seal_upload(
        storage, upload_key=job_input_upload_key(job.id, name), sealed_key=sealed_key,
        limit=settings.max_input_bytes, what=what, url_hint=hint,
    )  # fmt: skip
