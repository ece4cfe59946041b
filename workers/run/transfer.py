"""A job's files between object storage and the worker: sealed inputs in, outputs out."""

import uuid
from pathlib import Path

from core.errors import UserFacingError
from core.storage import NotAsSealed, Storage, job_output_key


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
    storage: Storage, job_id: uuid.UUID, files: dict[str, bytes], *, item: int | None = None,
    inlined: frozenset[str] = frozenset(),
) -> list[dict]:  # fmt: skip
    """Stores the files under keys made from ids; the model's names stay in the returned list.
    The `inlined` ones (result.json, kept as the job's result) are listed but not stored: the
    API stores them when the outputs are first listed, off the synchronous path."""
    outputs = []
    for index, (name, data) in enumerate(sorted(files.items())):
        key = job_output_key(job_id, index, item=item)
        if name in inlined:
            outputs.append({"name": name, "key": key, "size": len(data), "inline": True})
            continue
        storage.put_bytes(key, data)
        outputs.append({"name": name, "key": key, "size": len(data)})
    return outputs
