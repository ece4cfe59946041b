"""A version's package uploaded in parts, for packages too big for one PUT to be safe: parts
sent in parallel, an interrupted upload resumed where it stopped (core/multipart.py). The build
(POST /api/versions/{id}/build) completes the upload, once every part is there."""

from fastapi import APIRouter, HTTPException, Response, status

from api import crud, quota
from api.deps import OwnedVersion, SessionDep, StorageDep
from api.errors import responses
from api.upload_schemas import PackageUploadStart, UploadInParts
from api.uploads import (
    parts_to_send,
    require_free_space,
    require_package_size,
    require_uploading,
)
from core import models
from core.multipart import Layout, Multipart

router = APIRouter(prefix="/api/versions", tags=["versions"], responses=responses(401, 422, 503))


@router.post(
    "/{version_id}/upload",
    response_model=UploadInParts,
    responses=responses(400, 403, 404, 409, 413, 429, 507),
)
def upload_in_parts(
    body: PackageUploadStart, version: OwnedVersion, session: SessionDep, storage: StorageDep
):
    """Starts an upload of the package in parts, or resumes the open one of the same size: the
    URLs of the parts still to PUT. Then start the build."""
    crud.lock_version(session, version)  # one start at a time, and not beside a build
    require_uploading(version)
    require_package_size(body.size)
    quota.require_room(session, version.model.owner_id, body.size)
    multipart = Multipart(storage)
    upload = session.get(models.PackageUpload, version.id)
    parts = None
    if upload is not None and upload.size == body.size:
        layout = Layout(upload.size, upload.part_bytes)
        parts = multipart.parts(version.package_key, upload.upload_id, layout)
    if parts is None:  # none open, one of another size, or one aborted meanwhile
        require_free_space(body.size)
        if upload is not None:
            multipart.abort(version.package_key, upload.upload_id)
            session.delete(upload)
            session.flush()
        upload = models.PackageUpload(
            version_id=version.id, upload_id=multipart.start(version.package_key),
            size=body.size, part_bytes=Layout.of(body.size).part_bytes,
        )  # fmt: skip
        session.add(upload)
        parts = {}
    session.commit()
    layout = Layout(upload.size, upload.part_bytes)
    return parts_to_send(multipart, version.package_key, upload.upload_id, layout, parts)


@router.delete(
    "/{version_id}/upload", status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(403, 404, 429),
)  # fmt: skip
def abort_upload(version: OwnedVersion, session: SessionDep, storage: StorageDep):
    """Aborts the version's upload in parts: the store frees its parts."""
    crud.lock_version(session, version)
    upload = session.get(models.PackageUpload, version.id)
    if upload is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "This version has no upload in parts open: nothing to abort."
        )
    Multipart(storage).abort(version.package_key, upload.upload_id)
    session.delete(upload)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
