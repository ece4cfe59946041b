"""Sealing what a client uploaded through a presigned URL, before work is queued on it.

The sealed copy is what the worker reads; the upload URL can still be written to, but nothing
reads what arrives there afterwards.
"""

from fastapi import HTTPException, status

from core.storage import Storage, TooLarge


def seal_upload(
    storage: Storage, *, upload_key: str, sealed_key: str, limit: int, what: str, url_hint: str
) -> int:
    """The sealed size; 409 when nothing was uploaded, 413 (upload discarded) when over limit."""
    try:
        size = storage.seal(upload_key, sealed_key, limit=limit)
    except TooLarge as error:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"The {what} is {error.size} bytes; the limit is {limit} bytes. Upload a smaller one "
            f"to the {url_hint} and try again.",
        ) from None
    if size is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"No {what} uploaded yet: PUT it to the {url_hint} first."
        )
    return size
