import os
import tempfile
from pathlib import Path

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, PlainTextResponse
from sqlalchemy import select
from starlette.background import BackgroundTask

from api import crud, quota, throttle
from api.deps import (
    CurrentUser,
    OwnedVersion,
    ReadableVersion,
    SessionDep,
    StorageDep,
    require_ready,
)
from api.errors import responses
from api.schemas import VersionPublic, WarmRequested
from api.uploads import complete_content_files, complete_in_parts, seal_upload
from api.webhooks import BuildStart, target_fields
from core import eject, removal
from core.lifecycle import VERSION
from core.models import ModelAlias, ModelVersion, PackageUpload
from core.queue import send_build, send_warm
from core.registry import Registry
from core.settings import settings
from core.storage import Storage, package_upload_key

router = APIRouter(prefix="/api/versions", tags=["versions"], responses=responses(401, 422, 503))


@router.get("/{version_id}", response_model=VersionPublic, responses=responses(404))
async def get_version(version: ReadableVersion):
    return version


@router.post(
    "/{version_id}/build",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=VersionPublic,
    responses=responses(400, 403, 404, 409, 413, 422, 429),
)
def start_build(
    version: OwnedVersion, session: SessionDep, storage: StorageDep, body: BuildStart | None = None
):
    """Builds the uploaded ZIP (by its upload URL or in parts). The body may name a webhook for
    the build's start and end."""
    crud.lock_version(session, version)  # not beside an upload in parts starting
    if not VERSION.can_move(version.status, VERSION.queued):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"This version is {version.status}: a build can start only once, after the upload. "
            "Create a new version to build again.",
        )
    target = target_fields(body) if body is not None else {}
    throttle.require_room_for_build(session, version.model.owner_id)
    in_parts = session.get(PackageUpload, version.id)
    # A missing package counts nothing here: its sealing below answers for it.
    package = in_parts.size if in_parts else storage.size(package_upload_key(version.id)) or 0
    quota.require_room(session, version.model.owner_id, package)  # its contents counted already
    by_content = complete_content_files(storage, version)
    version.package_size = complete_in_parts(session, storage, version) or seal_upload(
        storage,
        upload_key=package_upload_key(version.id),
        sealed_key=version.package_key,
        limit=settings.max_package_bytes - by_content,
        what="model ZIP",
        url_hint="version's upload_url",
    )
    for field, value in target.items():
        setattr(version, field, value)
    crud.mark_queued(session, row=version, lifecycle=VERSION, send=send_build)
    return version


@router.get(
    "/{version_id}/logs",
    # Errors stay JSON; only the log itself is text.
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "The log"},
        **responses(404),
    },
)
def get_build_logs(version: ReadableVersion, storage: StorageDep):
    """The build log so far; empty until the build starts."""
    text = (storage.get_bytes(version.build_log_key) or b"").decode("utf-8", "replace")
    return PlainTextResponse(text)


@router.get(
    "/{version_id}/dockerfile",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "The Dockerfile",
        },
        **responses(404, 409),
    },
)
async def get_dockerfile(version: ReadableVersion):
    """The Dockerfile the version's image was built from (core/Dockerfile.template)."""
    return PlainTextResponse(require_dockerfile(version))


@router.get(
    "/{version_id}/context",
    response_class=Response,
    responses={
        200: {
            "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The build context, a tar.gz",
        },
        **responses(404, 409),
    },
)
async def get_context(version: ReadableVersion, session: SessionDep, storage: StorageDep):
    """The version's build context as a tar.gz: its Dockerfile and every file the Dockerfile
    copies. Unpacked, `docker build --network none` of it makes the version's image."""
    require_dockerfile(version)
    handle, name = tempfile.mkstemp(prefix="context-", suffix=".tar.gz")
    os.close(handle)  # written in a thread, by its path
    path = Path(name)
    try:
        lock = eject.lock_of(session, version)
        # Gathering and compressing it takes seconds for big wheels: never on the event loop.
        await run_in_threadpool(_write_context, path, version, lock, storage)
    except BaseException as error:  # a request cancelled meanwhile too
        path.unlink()
        if isinstance(error, eject.NotKept):
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
        raise
    return FileResponse(
        path, media_type="application/gzip",
        filename=f"{version.model.name}-v{version.number}-context.tar.gz",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )  # fmt: skip


def require_dockerfile(version: ModelVersion) -> str:
    """The version's Dockerfile, or 409 saying why it has none and what to do."""
    if version.dockerfile is not None:
        return version.dockerfile
    if version.status == VERSION.failed:
        why = "its build failed, so it has no image; fix the package and push a new version."
    elif version.status == VERSION.succeeded:
        why = "it was built before the farm kept Dockerfiles; push a new version to get one."
    elif version.status == VERSION.uploading:
        why = (
            f"it is not built yet; upload its package, build it (POST /api/versions/{version.id}"
            "/build) and ask again once it is READY."
        )
    else:
        why = f"it is {version.status}; its build writes it: ask again once it is READY."
    raise HTTPException(status.HTTP_409_CONFLICT, f"This version has no Dockerfile: {why}")


def _write_context(path: Path, version: ModelVersion, lock: list[dict], storage: Storage):
    with path.open("wb") as out, tempfile.TemporaryDirectory() as scratch:
        eject.write_version_context(
            out, version=version, lock=lock, storage=storage, scratch=Path(scratch)
        )


@router.post(
    "/{version_id}/warm",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WarmRequested,
    responses=responses(404, 409, 429),
)
def warm_version(version: ReadableVersion, user: CurrentUser):
    """Starts a warm container of this version for the caller, so that their first job skips
    the model's start-up. Optional: jobs start one themselves when none is warm."""
    require_ready(version, "warming")
    crud.enqueue(send_warm, str(version.id), str(user.id))
    return WarmRequested(
        version_id=version.id,
        detail="A warm container is starting for you on an inference worker with room for it.",
    )


@router.delete(
    "/{version_id}", status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(403, 404, 409, 429),
)  # fmt: skip
def delete_version(version: OwnedVersion, session: SessionDep, storage: StorageDep):
    """Removes the version with its package, build log and image (unless another version of
    the model runs the same image), and every job on it with their data."""
    crud.lock_version(session, version)  # no build starts meanwhile
    aliases = session.scalars(select(ModelAlias.name).where(ModelAlias.version_id == version.id))
    named = sorted(aliases)
    problem = removal.still_active(session, versions=[version]) or (
        named
        and f"The alias(es) {', '.join(named)} point at this version; move or delete them first."
    )
    if problem:
        raise HTTPException(status.HTTP_409_CONFLICT, problem)
    removal.remove_versions(session, storage, Registry(), [version])
    return Response(status_code=status.HTTP_204_NO_CONTENT)
