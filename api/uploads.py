"""Checks on what a client uploaded through a presigned URL, before work is queued on it."""

from fastapi import HTTPException, status

from core.storage import Storage


def require_upload(storage: Storage, *, key: str, limit: int, what: str, url_hint: str) -> None:
    """Raise 409 when nothing was uploaded, 413 (and discard it) when it is over the limit."""
    size = storage.size(key)
    if size is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"No {what} uploaded yet: PUT it to the {url_hint} first"
        )
    if size > limit:
        # Presigned PUTs cannot cap the size, so the cap is applied here; the client may upload
        # a smaller file to the same URL while it is valid.
        storage.delete(key)
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"The {what} is {size} bytes; the limit is {limit} bytes. Upload a smaller one.",
        )
