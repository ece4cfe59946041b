"""A job's inputs given again, for running it again (the web UI's "Run again"): its values as
they are, its files read back from where the job stored them (core/inputs.py: inline bytes in
the database, or a sealed object) and sent inline, as a new JobCreate for api/submit.py."""

import base64
import uuid
from typing import Any

from api.schemas import JobCreate
from core import inputs
from core.models import Job
from core.settings import settings
from core.storage import Storage


class _Gone(Exception):
    """A stored input file is no longer where the job stored it."""


def same_inputs(storage: Storage, job: Job, version_id: uuid.UUID) -> JobCreate | None:
    """The job's inputs as a request on the version, or None when its
    files cannot be sent again inline: removed after the retention days, never uploaded, or
    together over the inline limit (they would have to be uploaded again)."""
    if not reusable(job):
        return None
    try:
        if job.batch is None:
            return JobCreate(version_id=version_id, inputs=_given(storage, job, job.inputs))
        items = [_given_item(storage, job, item) for item in job.batch]
        return JobCreate(version_id=version_id, batch=items)
    except _Gone:
        return None


def reusable(job: Job) -> bool:
    """Whether the job's input files, if any, can be read back and sent inline."""
    files = [value for value in job.inputs.values() if inputs.is_file(value)]
    files += [item for item in job.batch or [] if "inputs" not in item]
    files += [
        value for item in job.batch or [] for value in item.get("inputs", {}).values()
        if inputs.is_file(value)
    ]  # fmt: skip
    if not files:
        return True
    stored = inputs.stored_bytes(job.inputs, job.batch)
    sealed = all(each.get("size") is not None for each in files)
    return sealed and not job.data_removed and stored <= settings.max_inline_input_bytes


def _given(storage: Storage, job: Job, stored: dict[str, Any]) -> dict[str, Any]:
    return {
        name: _file(storage, job, value) if inputs.is_file(value) else value
        for name, value in stored.items()
    }


def _given_item(storage: Storage, job: Job, item: dict[str, Any]) -> dict[str, Any]:
    """A batch item as sent: typed inputs, or one file."""
    if "inputs" in item:
        return {"inputs": _given(storage, job, item["inputs"])}
    return _file(storage, job, item)


def _file(storage: Storage, job: Job, stored: dict[str, Any]) -> dict[str, str]:
    """An input file sent inline: its name and its bytes, base64."""
    if stored["key"] is None:
        held = job.inline_input.data if job.inline_input is not None else None
    else:
        held = storage.get_bytes(stored["key"])
    start = stored["offset"]
    data = held[start : start + stored["size"]] if held is not None else b""
    if len(data) != stored["size"]:
        raise _Gone(stored["name"])
    return {"name": stored["name"], "data": base64.b64encode(data).decode()}
