"""A version's big files sent by their content, beside its ZIP (core/contents.py): declared
once, each content uploaded in parts only if its owner has not sent it before. The build
(POST /api/versions/{id}/build) completes their uploads with the package's."""

from fastapi import APIRouter, HTTPException, status

from api import crud, quota
from api.deps import OwnedVersion, SessionDep, StorageDep
from api.errors import responses
from api.upload_schemas import ContentFiles, ContentFilesDeclared, ContentFileState
from api.uploads import parts_to_send, require_free_space, require_uploading
from core.contents import content_key, open_upload
from core.multipart import Layout, Multipart
from core.settings import settings
from core.storage import Storage

router = APIRouter(prefix="/api/versions", tags=["versions"], responses=responses(401, 422, 503))


@router.put(
    "/{version_id}/files",
    response_model=ContentFiles,
    responses=responses(400, 403, 404, 409, 413, 429, 507),
)
def declare_content_files(
    body: ContentFilesDeclared, version: OwnedVersion, session: SessionDep, storage: StorageDep
):
    """Declares the package's files sent by content (the ZIP holds the others; declaring again
    replaces the list): for each, null when the farm has its content, else the parts to PUT.
    Then upload the ZIP and start the build."""
    crud.lock_version(session, version)
    require_uploading(version)
    total = sum(each.size for each in body.files)
    if total > settings.max_package_bytes:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            f"The files sent by content are {total} bytes together; the limit for a package is "
            f"{settings.max_package_bytes} bytes (MODELFARM_MAX_PACKAGE_BYTES).",
        )
    owner = version.model.owner_id
    sizes = {each.sha256: each.size for each in body.files}
    quota.require_room_for_contents(session, version, sizes)  # a content counts once
    absent = {
        sha: size for sha, size in sizes.items() if storage.size(content_key(owner, sha)) != size
    }
    require_free_space(sum(absent.values()))
    uploads = {
        sha: _upload_of(storage, content_key(owner, sha), size) for sha, size in absent.items()
    }
    version.content_files = [each.model_dump() for each in body.files]
    session.commit()
    return ContentFiles(
        files=[
            ContentFileState(**each.model_dump(), upload=uploads.get(each.sha256))
            for each in body.files
        ]
    )


def _upload_of(storage: Storage, key: str, size: int):
    """The parts of the content to send: its open upload resumed, or a new one."""
    multipart, layout = Multipart(storage), Layout.of(size)
    upload_id = open_upload(multipart, key)
    parts = multipart.parts(key, upload_id, layout) if upload_id else None
    if upload_id is None or parts is None:
        upload_id, parts = multipart.start(key), {}
    return parts_to_send(multipart, key, upload_id, layout, parts)
