"""Pushing a new version from the model page (api/static/push.js, api/templates/_push.html): the
owner drops a ZIP, or a folder the page packs as `modelfarm push` does, and the page sends it
here, to the farm's own origin (the page's Content-Security-Policy allows no other, and the
object store answers no cross-origin request). This route creates the version as POST
/api/models/{id}/versions does, streams the body into the store under the version's upload key,
within MODELFARM_MAX_PACKAGE_BYTES and the owner's storage quota, and starts its build as POST
/api/versions/{id}/build does; the page then follows the build's events with the session cookie
(GET /versions/{id}/events) until it is READY or FAILED."""

import io
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import anyio.from_thread
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect

from api import browser_session, live, quota
from api.deps import SessionDep, StorageDep, model_for, version_for
from api.routes import models as models_api
from api.routes import versions as versions_api
from api.routes.docs import VENDOR
from api.routes.pages import CsrfChecked
from api.schemas import VersionPublic
from api.uploads import require_free_space, require_package_size
from core.models import Model, User
from core.storage import Storage, package_upload_key

router = APIRouter(include_in_schema=False)
ZIP_TYPE = "application/zip"
FFLATE = "/static/vendor/fflate"


def vendor_assets() -> StaticFiles:
    """fflate's files (web/node_modules, from `npm ci`): the page's folder packer. check_dir
    off, as for Swagger UI: without them the API still starts, and a ZIP can still be pushed."""
    return StaticFiles(directory=VENDOR / "fflate", check_dir=False)


def _session_user(request: Request, session: SessionDep) -> User:
    return browser_session.script_user(request, session)


SessionUser = Annotated[User, Depends(_session_user)]


@router.post("/models/{model_id}/push", dependencies=[CsrfChecked])
async def push(
    model_id: uuid.UUID, request: Request, session: SessionDep, storage: StorageDep,
    user: SessionUser,
) -> JSONResponse:  # fmt: skip
    """A new version of the owner's model from the ZIP in the body (Content-Type
    application/zip, CSRF token in the X-CSRF-Token header), its build started: 202 with it."""
    size = _declared_size(request)
    model = await run_in_threadpool(_room_for, session, user, model_id, size)
    created = await run_in_threadpool(models_api.create_version, model, session, storage, request)
    await run_in_threadpool(session.close)  # no connection held while the bytes arrive
    version_id = created.version.id
    try:
        await run_in_threadpool(_store, storage, package_upload_key(version_id), request.stream(),
                                size)  # fmt: skip
    except ClientDisconnect:  # the version waits for its package, as one made by the API does
        return JSONResponse({"detail": "The upload stopped before the whole ZIP arrived."}, 400)
    version = await run_in_threadpool(_build, session, storage, user, version_id)
    shown = VersionPublic.model_validate(version).model_dump(mode="json")
    links = {"page": f"/versions/{version_id}", "events": f"/versions/{version_id}/events"}
    return JSONResponse({"version": shown, **links}, status.HTTP_202_ACCEPTED)


def _declared_size(request: Request) -> int:
    """The ZIP's size as the request declares it: 415 for another body, 411 without a length,
    413 past MODELFARM_MAX_PACKAGE_BYTES, all before a byte of it is read."""
    if request.headers.get("content-type", "").split(";")[0].strip() != ZIP_TYPE:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            f"Send the model's ZIP as the body, as {ZIP_TYPE}.")  # fmt: skip
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise HTTPException(status.HTTP_411_LENGTH_REQUIRED,
                            "Say the ZIP's size (Content-Length) before sending it.")  # fmt: skip
    size = int(declared)
    require_package_size(size)
    return size


def _room_for(session: Session, user: User, model_id: uuid.UUID, size: int) -> Model:
    """The user's model (403/404 as the API says otherwise), once the owner's quota and the
    store have room for size more bytes."""
    model = model_for(session, user, model_id, write=True)
    quota.require_room(session, model.owner_id, size)
    require_free_space(size)
    return model


def _build(session: Session, storage: Storage, user: User, version_id: uuid.UUID):
    """Starts the build as POST /api/versions/{id}/build does: its checks, its seal."""
    version = version_for(session, user, version_id, write=True)
    return versions_api.start_build(version=version, session=session, storage=storage)


def _store(storage: Storage, key: str, chunks: AsyncIterator[bytes], size: int) -> None:
    """Streams the body into the store at key (in parts for a big one), from a worker thread.
    The server reads no more than the declared size, which was checked against the limit."""
    storage.client.put_object(storage.bucket, key, _Body(chunks), size, ZIP_TYPE)


class _Body(io.RawIOBase):
    """The request's body as a file the object store's SDK reads in a worker thread: each chunk
    awaited on the event loop as the SDK asks for it, so the body is never all in memory."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks, self._held = chunks, b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._held:
            chunk = anyio.from_thread.run(_next_chunk, self._chunks)
            if chunk is None:
                return b""
            self._held = chunk
        wanted = len(self._held) if size is None or size < 0 else size
        given, self._held = self._held[:wanted], self._held[wanted:]
        return given


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    return await anext(chunks, None)


async def _session_version(
    version_id: uuid.UUID, request: Request, session: SessionDep
) -> uuid.UUID:  # fmt: skip
    """A version the browser's user may read (else 404; without a session 401), its connection
    given back before the stream starts (as api/routes/events.py does)."""
    version = version_for(
        session, browser_session.script_user(request, session), version_id, write=False
    )
    session.close()
    return version.id


@router.get("/versions/{version_id}/events", response_class=EventSourceResponse)
async def version_events(
    readable: Annotated[uuid.UUID, Depends(_session_version)], after: live.ResumeAfter
) -> AsyncIterator[ServerSentEvent]:
    """The version's events for the push's page (GET /api/versions/{id}/events, with the
    session cookie): its build's log lines, then its end."""
    async for event in live.of_version(readable, after):
        yield event
