"""FastAPI dependencies: the database session, the current user, and access to resources.

Access rules live here, once: a user reads their own models and public ones, and changes only
their own. Anything a user may not read is reported as missing (404), so its existence is not
revealed; a public model the user may read but not change is 403.

Where a request's database work runs: a read (GET, HEAD) on the event loop, a write in a worker
thread. A read's queries take a millisecond or so on their own engine (core/db.py), and the
thread hops around them cost more than they do: side by side on two cores, GET /api/models
served 524-571 requests/s with them and 858-969 without. So the dependencies below are async
and run their queries through `run_db`, and the routes that only read are async too and query
directly; a write keeps its thread, where a slow transaction holds up no one else.
"""

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from api import throttle
from api.security import (
    API_TOKEN_PREFIX,
    SIGN_OUT_PATH,
    api_token_sha256,
    claims_of,
    required_scope,
)
from core import logs
from core.db import ReadSessionLocal, RequestSessionLocal
from core.lifecycle import VERSION, utcnow
from core.models import ApiToken, Job, Model, ModelAlias, ModelVersion, User, Visibility
from core.storage import Storage

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/users/login")
# The credential of a request signed with a login's token (credential_of; the web UI's session
# cookie says api/browser_session.WEB_UI).
LOGIN = "a login"
# How stale an API token's last_used_at may be.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_storage = Storage(patient=False)
READ_METHODS = frozenset({"GET", "HEAD"})
T = TypeVar("T")


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for the request. Made in the event loop, where it costs nothing (it connects
    when first used). A request that only reads gets one of the read engine, without a
    transaction (core/db.py), whose closing does no I/O; another's is closed in a thread when
    the route left a transaction open, since closing then ends it on the connection."""
    reads_only = request.method in READ_METHODS
    session = ReadSessionLocal() if reads_only else RequestSessionLocal()
    try:
        yield session
    finally:
        if session.in_transaction() and not reads_only:
            with anyio.CancelScope(shield=True):  # closed even when the client went away
                await run_in_threadpool(session.close)
        else:
            session.close()


async def run_db(request: Request, function: Callable[..., T], *args) -> T:
    """function(*args), which uses the request's session: here on the event loop for a read,
    in a worker thread for a write (see above)."""
    if request.method in READ_METHODS:
        return function(*args)
    return await run_in_threadpool(function, *args)


async def get_storage() -> Storage:  # async: no thread is taken to hand it over
    return _storage


SessionDep = Annotated[Session, Depends(get_session)]
StorageDep = Annotated[Storage, Depends(get_storage)]
TokenDep = Annotated[str, Depends(oauth2_scheme)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def get_current_user(request: Request, session: SessionDep, token: TokenDep) -> User:
    """The user a login token (JWT) or an API token stands for; an API token only within its
    scopes (403 naming the one missing). A write counts against the user's limit per minute."""
    user = await run_db(request, _authenticate, request, session, token)
    request.state.user_id = str(user.id)  # for the request's log line (api/request_log.py)
    logs.bind(user_id=user.id)
    return user


def _authenticate(request: Request, session: Session, token: str) -> User:
    request.state.credential = LOGIN  # an API token's says its name (below)
    if token.startswith(API_TOKEN_PREFIX):
        user = _api_token_user(request, session, token)
    else:
        claims = claims_of(token)
        user = session.get(User, claims[0]) if claims else None
        if user is None or claims[1] != user.token_generation:  # signed out since
            raise _unauthorized("Invalid or expired token: log in again at /api/users/login")
    throttle.count_write(request, user.id)
    return user


def _api_token_user(request: Request, session: Session, token: str) -> User:
    found = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_sha256 == api_token_sha256(token))
    ).first()
    now = utcnow()
    if found is None or (found.ApiToken.expires_at and found.ApiToken.expires_at <= now):
        raise _unauthorized("This API token is unknown, revoked or expired: create a new one.")
    route = request.scope.get("route")
    route_path = route.path if route else request.url.path
    if route_path != SIGN_OUT_PATH:  # any token may end itself
        _require_scope(request.method, route_path, found.ApiToken.scopes)
    request.state.credential = f"API token {found.ApiToken.name!r}"
    last_used = found.ApiToken.last_used_at
    if last_used is None or now - last_used > LAST_USED_RESOLUTION:  # not a write per request
        found.ApiToken.last_used_at = now
        session.commit()
    return found.User


def credential_of(request: Request) -> str | None:
    """What the request's user signed it with ("API token 'ci'", "a login"), once
    authenticated: a version records it as who pushed it."""
    return getattr(request.state, "credential", None)


def _require_scope(method: str, route_path: str, scopes: list[str]) -> None:
    needed = required_scope(method, route_path)
    if needed is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Managing API tokens, the webhook secret, the password and the account takes a "
            "login token (POST /api/users/login), not an API token.",
        )
    if needed not in scopes:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"This API token lacks the '{needed}' scope, which this request needs (it has "
            f"{', '.join(scopes)}); create a token with it.",
        )


CurrentUser = Annotated[User, Depends(get_current_user)]


def _check_access(*, what: str, owner_id: uuid.UUID, public: bool, user: User, write: bool):
    if owner_id == user.id:
        return
    if public and not write:
        return
    if public:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"Only the owner can change this {what}")
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"No {what} with that id")


def _load(session: Session, cls: type, id_: uuid.UUID, what: str, options: Sequence = ()):
    found = session.get(cls, id_, options=options)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No {what} with that id")
    return found


def model_for(session: Session, user: User, model_id: uuid.UUID, *, write: bool) -> Model:
    model = _load(session, Model, model_id, "model")
    public = model.visibility == Visibility.PUBLIC
    _check_access(what="model", owner_id=model.owner_id, public=public, user=user, write=write)
    return model


def version_for(session: Session, user: User, version_id: uuid.UUID, *, write: bool):
    version: ModelVersion = _load(
        session, ModelVersion, version_id, "version", options=[joinedload(ModelVersion.model)]
    )
    model = version.model
    public = model.visibility == Visibility.PUBLIC
    _check_access(what="version", owner_id=model.owner_id, public=public, user=user, write=write)
    return version


def version_by_alias(session: Session, user: User, model_id: uuid.UUID, alias: str):
    """The version an alias of a model the user may read points at."""
    model = model_for(session, user, model_id, write=False)
    found = session.get(ModelAlias, (model.id, alias))
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"This model has no alias {alias!r}; its owner sets one with "
            f"PUT /api/models/{model.id}/aliases/{alias}",
        )
    return session.get(ModelVersion, found.version_id)


def require_ready(version: ModelVersion, purpose: str) -> None:
    """409 unless the version is READY; `purpose` says what needed it ("a job")."""
    if version.status != VERSION.succeeded:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"This version is {version.status}; {purpose} needs a {VERSION.succeeded} version.",
        )


def _model_access(write: bool):
    async def dependency(
        request: Request, model_id: uuid.UUID, session: SessionDep, user: CurrentUser
    ) -> Model:
        return await run_db(request, partial(model_for, write=write), session, user, model_id)

    return dependency


def _version_access(write: bool):
    async def dependency(
        request: Request, version_id: uuid.UUID, session: SessionDep, user: CurrentUser
    ) -> ModelVersion:
        return await run_db(request, partial(version_for, write=write), session, user, version_id)

    return dependency


async def get_owned_job(
    request: Request, job_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> Job:
    return await run_db(request, job_for, session, user, job_id)


def job_for(session: Session, user: User, job_id: uuid.UUID) -> Job:
    job = _load(session, Job, job_id, "job")
    _check_access(what="job", owner_id=job.owner_id, public=False, user=user, write=True)
    return job


ReadableModel = Annotated[Model, Depends(_model_access(write=False))]
OwnedModel = Annotated[Model, Depends(_model_access(write=True))]
ReadableVersion = Annotated[ModelVersion, Depends(_version_access(write=False))]
OwnedVersion = Annotated[ModelVersion, Depends(_version_access(write=True))]
OwnedJob = Annotated[Job, Depends(get_owned_job)]


# Far past any real list, and within every database's integer range.
MAX_OFFSET = 2**31 - 1


async def pagination(  # async: no thread is taken for it (a sync one would run in one)
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, int]:
    return {"offset": offset, "limit": limit}


PageDep = Annotated[dict[str, int], Depends(pagination)]
