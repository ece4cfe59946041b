"""Sealing what a client uploaded through presigned URLs, before work is queued on it.

An upload by one URL is copied to its sealed key, which is what the worker reads; the upload URL
can still be written to, but nothing reads what arrives there afterwards. A package uploaded in
parts is sealed by completing its upload (core/multipart.py), which ends every part URL.
"""

import httpx
from fastapi import HTTPException, status
from minio.datatypes import Part
from minio.error import S3Error
from sqlalchemy.orm import Session

from api.outages import RETRY_AFTER_S
from api.upload_schemas import PartUrl, UploadInParts
from core.contents import content_key, open_upload
from core.lifecycle import VERSION
from core.models import ModelVersion, PackageUpload
from core.multipart import Layout, Multipart, missing
from core.settings import settings
from core.storage import Storage, TooLarge, store_disks

MB = 1024**2


def require_package_size(size: int) -> None:
    """413 for a package past MODELFARM_MAX_PACKAGE_BYTES, saying what to do."""
    if size > settings.max_package_bytes:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"The model ZIP is {size} bytes; the limit is {settings.max_package_bytes} bytes "
            "(MODELFARM_MAX_PACKAGE_BYTES). Send a smaller one, leaving out what the model does "
            "not need to run.",
        )


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


def require_free_space(size: int) -> None:
    """507 when the store's disks have less free space than `size` (core/storage.store_disks):
    refused before a byte is sent, never a half-full disk."""
    try:
        disks = store_disks()
    except httpx.HTTPError:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Object storage is unavailable; try again shortly.",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
    free = sum(disk["free"] for disk in disks or [])
    if disks is not None and size > free:
        raise HTTPException(
            status.HTTP_507_INSUFFICIENT_STORAGE,
            f"The farm's object store has {free / MB:,.0f} MB free, too little for this "
            f"{size / MB:,.0f} MB package, so nothing was uploaded: try again later, or ask the "
            "farm's operator to free space.",
        )


def require_uploading(version: ModelVersion) -> None:
    """409 unless the version still waits for its package."""
    if version.status != VERSION.uploading:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"This version is {version.status}: its package was uploaded already. Create a new "
            "version to upload another.",
        )


def parts_to_send(
    multipart: Multipart, key: str, upload_id: str, layout: Layout, parts: dict[int, Part]
) -> UploadInParts:
    """The answer to a start or resume of an upload in parts: the parts still to PUT."""
    absent = missing(layout, parts)
    return UploadInParts(
        size=layout.size,
        part_bytes=layout.part_bytes,
        parts_total=layout.count,
        parts_done=sorted(set(range(1, layout.count + 1)) - set(absent)),
        parts=[
            PartUrl(
                number=number,
                bytes=layout.bytes_of(number),
                url=multipart.part_url(key, upload_id, number),
            )
            for number in absent
        ],  # fmt: skip
        expires_in=int(multipart.storage.url_lifetime.total_seconds()),
    )


def complete_in_parts(session: Session, storage: Storage, version: ModelVersion) -> int | None:
    """Completes the version's upload in parts into its package_key; the package's size, None
    when it has no such upload (its package came by the upload URL). 409 naming the parts that
    are not there at their size: nothing half-written is ever built."""
    upload = session.get(PackageUpload, version.id)
    if upload is None:
        return None
    multipart, layout = Multipart(storage), Layout(upload.size, upload.part_bytes)
    parts = multipart.parts(version.package_key, upload.upload_id, layout)
    if parts is None and storage.size(version.package_key) != upload.size:
        session.delete(upload)
        session.commit()
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "This version's upload in parts was aborted: start it again (POST "
            f"/api/versions/{version.id}/upload) and send every part.",
        )
    if parts is not None:  # None: completed by an earlier call that ended before its commit
        absent = missing(layout, parts)
        if absent:
            listed = ", ".join(map(str, absent[:10])) + (", …" if len(absent) > 10 else "")
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"{len(absent)} of the package's {layout.count} parts are not uploaded at their "
                f"size yet (part {listed}): PUT them to their URLs (POST /api/versions/"
                f"{version.id}/upload with the same size lists them) and start the build again.",
            )
        ordered = [parts[number] for number in range(1, layout.count + 1)]
        multipart.complete(version.package_key, upload.upload_id, ordered)
    session.delete(upload)
    return upload.size


def complete_content_files(storage: Storage, version: ModelVersion) -> int:
    """Completes the uploads of the version's files sent by content (core/contents.py); their
    total size. 409 naming the first one not all there: nothing half-written is ever built."""
    multipart, completed = Multipart(storage), set()
    for each in version.content_files or []:
        key = content_key(version.model.owner_id, each["sha256"])
        if key not in completed and storage.size(key) != each["size"]:
            _complete_content(multipart, key, each, version)
        completed.add(key)
    return sum(each["size"] for each in version.content_files or [])


def _complete_content(multipart: Multipart, key: str, each: dict, version: ModelVersion) -> None:
    layout, upload_id = Layout.of(each["size"]), open_upload(multipart, key)
    parts = multipart.parts(key, upload_id, layout) if upload_id else None
    absent = missing(layout, parts) if parts is not None else list(range(1, layout.count + 1))
    if absent:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{each['path']}, sent by content, is not uploaded at its size yet ({len(absent)} of "
            f"its {layout.count} parts missing): PUT the parts that PUT /api/versions/"
            f"{version.id}/files lists for it, then start the build again.",
        )
    try:
        multipart.complete(key, upload_id, [parts[number] for number in range(1, layout.count + 1)])
    except S3Error:  # another build completed it meanwhile
        if multipart.storage.size(key) != each["size"]:
            raise
