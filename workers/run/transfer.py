"""A job's files between object storage and the worker: sealed inputs in, outputs out."""

import base64
from pathlib import Path

from core.errors import UserFacingError
from core.storage import NotAsSealed, Storage, job_output_key
from workers.run.predict import Sandboxed

KEPT_OUTPUT_BYTES = 64 * 1024


class InputMissing(UserFacingError):
    pass


def download_input(storage: Storage, sealed: dict, path: Path) -> None:
    """A sealed input, streamed to disk, never more than the size accepted."""
    try:
        found = storage.download(sealed["key"], path, size=sealed["size"])
    except NotAsSealed as error:
        raise InputMissing(
            f"The stored input is not the one accepted for this job ({error}); create a new job."
        ) from None
    if not found:
        raise InputMissing("The job's input is gone from storage; create a new job.")


def store_outputs(
    storage: Storage, where: Sandboxed, files: dict[str, bytes], *, item: int | None = None
) -> list[dict]:
    """The outputs' entries for the job's row, keys made from ids, the model's names kept.

    Small outputs, up to KEPT_OUTPUT_BYTES in all, are kept in the entry itself (base64
    "data", in the database) and stored in object storage when the outputs are first listed
    (api/routes/jobs.py): a synchronous job or a batch item pays no object storage round trip
    for them. The others are stored now."""
    outputs, kept = [], 0
    for index, (name, data) in enumerate(sorted(files.items())):
        key = job_output_key(where.job_id, index, attempt=where.attempt, item=item)
        entry = {"name": name, "key": key, "size": len(data)}
        if kept + len(data) <= KEPT_OUTPUT_BYTES:
            kept += len(data)
            entry["data"] = base64.b64encode(data).decode()
        else:
            storage.put_bytes(entry["key"], data)
        outputs.append(entry)
    return outputs
