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

from api import crud, quota, throttle, webhooks
from api.schemas import PLAIN_TEXT, BatchItem, InlineFile, JobCreate
from api.uploads import seal_upload
from core import inputs, streams
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
    """The new job (queued at once unless a file awaits its upload, if the user has room for
    it), or, replayed=True, the job this key made before."""
    if key is not None and (earlier := _earlier(session, user, key)) is not None:
        return earlier, True
    target = webhooks.target_fields(body)
    job_id = uuid.uuid4()
    fields, inline = _layout(job_id, body, version.input_schema or inputs.LEGACY_SCHEMA)
    queued = not _awaits_uploads(fields)
    if queued:
        throttle.require_room_for_job(session, user.id)
        fields["stored_bytes"] = inputs.stored_bytes(fields["inputs"], fields.get("batch"))
        quota.require_room(session, user.id, fields["stored_bytes"])
    try:
        job = crud.create_job(
            session, job_id=job_id, owner=user, version=version, inline=inline, queued=queued,
            idempotency_key=key, **fields, **target,
        )  # fmt: skip
    except crud.AlreadyExists:
        if key is None:
            raise
        return _earlier(session, user, key), True  # a concurrent request with this key won
    streams.status("job", job)  # before the task: a worker's RUNNING comes after it
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
    inline = _Inline()
    if body.inputs is not None:
        fields = {"inputs": _stored(job_id, _checked(schema, body.inputs, "inputs"), inline)}
    elif body.batch:
        items = [_batch_item(job_id, schema, i, item, inline) for i, item in enumerate(body.batch)]
        fields = {"inputs": {}, "batch": items, "items_total": len(items)}
    elif body.batch_size:
        _only_file_input(schema)
        items = [
            {"name": JOB_INPUT_NAME, "key": job_input_key(job_id, _item(i)), "offset": 0,
             "size": None}
            for i in range(body.batch_size)
        ]  # fmt: skip
        fields = {"inputs": {}, "batch": items, "items_total": len(items)}
    else:
        given = {"upload": True, "name": JOB_INPUT_NAME}
        if body.input:
            given = {"name": body.input.name, "data": body.input.data}
        values = {**inputs.defaults(schema), _only_file_input(schema): given}
        fields = {"inputs": _stored(job_id, values, inline)}
    if inline.size > settings.max_inline_input_bytes:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"The inline input is {inline.size} bytes; the limit is "
            f"{settings.max_inline_input_bytes}. Send bigger inputs through upload URLs.",
        )
    return fields, b"".join(inline.parts) if inline.parts else None


class _Inline:
    """The bytes of a job's inline files, one after another."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> int:
        """Where the data starts."""
        self.parts.append(data)
        self.size += len(data)
        return self.size - len(data)


def _only_file_input(schema: dict) -> str:
    """The input a job's one file goes to; 422 for a model that takes more."""
    file_input = inputs.only_file_input(schema)
    if file_input is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"This model's inputs are {', '.join(schema['properties'])}: give them as `inputs`, "
            "as its version's input_schema says.",
        )
    return file_input


def _batch_item(
    job_id: uuid.UUID, schema: dict, index: int, item: InlineFile | BatchItem, inline: _Inline
) -> dict[str, Any]:
    """A batch item as stored: one file ({name, key, offset, size}), or typed inputs whose
    files are all inline ({inputs, size: their bytes})."""
    if isinstance(item, InlineFile):
        _only_file_input(schema)
        return {"name": item.name, "key": None, "offset": inline.add(item.data),
                "size": len(item.data)}  # fmt: skip
    values = _checked(schema, item.inputs, f"batch[{index}].inputs")
    uploads = [
        name for name, value in values.items() if inputs.is_file(value) and "upload" in value
    ]
    if uploads:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"batch[{index}].inputs.{uploads[0]}: a batch's files are sent inline; upload "
            "files for one job at a time, or as batch_size items.",
        )
    stored = _stored(job_id, values, inline)
    size = sum(value["size"] for value in stored.values() if inputs.is_file(value))
    return {"inputs": stored, "size": size}


def _checked(schema: dict, given: dict[str, Any], where: str) -> dict[str, Any]:
    """Inputs checked against the version's schema (422 naming each problem), with defaults,
    inline files decoded."""
    try:
        values = inputs.checked(schema, given, where)
    except inputs.InputError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(error)) from None
    for name, value in values.items():
        if inputs.is_file(value) and "data" in value:
            values[name] = {**value, "data": _decoded(f"{where}.{name}", value["data"])}
    return values


def _stored(job_id: uuid.UUID, values: dict[str, Any], inline: _Inline) -> dict[str, Any]:
    """Inputs as stored (core/inputs.py), inline files' bytes added to `inline`."""
    stored: dict[str, Any] = {}
    for name, value in values.items():
        if not inputs.is_file(value):
            stored[name] = value
        elif "data" in value:
            offset = inline.add(value["data"])
            stored[name] = {"name": value["name"], "key": None, "offset": offset,
                            "size": len(value["data"])}  # fmt: skip
        else:
            stored[name] = {"name": value.get("name", name), "key": job_input_key(job_id, name),
                            "offset": 0, "size": None}  # fmt: skip
    return stored


def _decoded(where: str, data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, f"{where}.data: this is not base64."
        ) from None


def _awaits_uploads(fields: dict[str, Any]) -> bool:
    files = [v for v in fields["inputs"].values() if inputs.is_file(v)]
    # a typed batch item has no "key": its files are all inline
    return any(each.get("key") is not None for each in (*files, *fields.get("batch", [])))


def _uploaded(job: Job) -> list[str]:
    """The inputs of a single job that are uploaded (not sent inline)."""
    return [n for n, v in job.inputs.items() if inputs.is_file(v) and v["key"] is not None]


def _item(index: int) -> str:
    return f"item-{index}"


def upload_urls(storage: Storage, job: Job) -> dict[str, Any]:
    """Where a job still waiting for its upload(s) takes them: PUT URLs, and forms whose size
    the object store caps."""
    if job.status != JOB.uploading:
        return {}
    expires_in = int(storage.url_lifetime.total_seconds())
    keys = {name: job_input_upload_key(job.id, name) for name in _upload_names(job)}
    urls = {name: storage.presigned_put(key) for name, key in keys.items()}
    cap = settings.max_input_bytes
    forms = {name: storage.presigned_post(key, max_bytes=cap) for name, key in keys.items()}
    if job.batch is not None:
        return {"upload_urls": list(urls.values()), "upload_forms": list(forms.values()),
                "upload_expires_in": expires_in}  # fmt: skip
    one = {"upload_url": next(iter(urls.values()))} if len(urls) == 1 else {}
    return {"upload_urls": urls, "upload_forms": forms, **one, "upload_expires_in": expires_in}


def _upload_names(job: Job) -> list[str]:
    """The job's uploaded files, by input (a batch's: by item)."""
    return [_item(i) for i in range(len(job.batch))] if job.batch is not None else _uploaded(job)


def upload_sizes(storage: Storage, job: Job) -> dict[str, int | None]:
    """What waits at each of the job's upload keys, in bytes; None for an upload missing."""
    return {name: storage.size(job_input_upload_key(job.id, name)) for name in _upload_names(job)}


def seal_inputs(storage: Storage, job: Job, sizes: dict[str, int | None]) -> None:
    """Seals what was uploaded for the job (409/413 when an upload is missing or too big), its
    uploads' sizes read beforehand (upload_sizes)."""
    if job.batch is not None:
        _require_uploads(sizes, "item")
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
        _require_uploads(sizes, "file")
        hints = {name: (f"file of input {name}", f"upload_urls[{name}]") for name in names}
    job.inputs = {
        name: {**value, "size": _seal(storage, job, value["key"], name, *hints[name])}
        if name in hints else value
        for name, value in job.inputs.items()
    }  # fmt: skip


def _require_uploads(sizes: dict[str, int | None], what: str) -> None:
    """409 unless every upload is there. All or none: sealing removes an upload, so a second
    try must find them all there."""
    missing = [
        f"upload_urls[{name.removeprefix('item-')}]" for name, size in sizes.items() if size is None
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
