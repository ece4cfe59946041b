"""Accounts: register, log in, who am I, sign out, change the password, remove the account.
Password hashing is slow on purpose, so it runs on a few threads of its own (never on those
serving other requests), and failed logins, password checks and registrations are throttled
(api/throttle.py)."""

import uuid
from typing import Annotated

import anyio
from fastapi import APIRouter, Form, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import delete

from api import crud, throttle
from api.deps import CurrentUser, SessionDep, StorageDep, TokenDep
from api.errors import responses
from api.schemas import (
    PLAIN_TEXT,
    AccountRemoval,
    PasswordChange,
    Token,
    UserPublic,
    UserRegister,
)
from api.security import (
    API_TOKEN_PREFIX,
    api_token_sha256,
    create_access_token,
    hash_password,
    verify_password,
)
from core import removal
from core.db import RequestSessionLocal
from core.models import ApiToken, User
from core.registry import Registry
from core.settings import settings
from core.storage import Storage

router = APIRouter(prefix="/api/users", tags=["users"])
# Bounds the CPU that hashing may take, whatever the number of requests waiting for it.
_hashing = anyio.CapacityLimiter(settings.password_hash_concurrency)


def _register(email: str, password: str) -> User:
    with RequestSessionLocal() as session:
        return crud.create_user(session, email=email, password=password)


def _authenticate(email: str, password: str) -> User | None:
    with RequestSessionLocal() as session:
        return crud.authenticate(session, email=email, password=password)


async def register_account(request: Request, email: str, password: str) -> User:
    """A new account (throttled per address); crud.AlreadyExists for a taken email. The web
    UI's sign-up too."""
    throttle.count_registration(throttle.client_address(request))
    return await anyio.to_thread.run_sync(_register, email, password, limiter=_hashing)


async def authenticated(request: Request, email: str, password: str) -> User | None:
    """The account these credentials open, None for wrong ones (counted: repeated failures
    are throttled, 429). The web UI's sign-in too."""
    address = throttle.client_address(request)
    throttle.check_login(email, address)
    user = await anyio.to_thread.run_sync(_authenticate, email, password, limiter=_hashing)
    if user is None:
        throttle.count_failed_login(email, address)
    return user


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses=responses(400, 409, 422, 429, 503),
)
async def register(body: UserRegister, request: Request):
    try:
        return await register_account(request, body.email, body.password)
    except crud.AlreadyExists:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "An account with this email exists: log in instead."
        ) from None


@router.post("/login", response_model=Token, responses=responses(401, 422, 429, 503))
async def login(
    request: Request,
    username: Annotated[str, Form(min_length=1, max_length=320, pattern=PLAIN_TEXT)],
    password: Annotated[str, Form(min_length=1, max_length=128, pattern=PLAIN_TEXT)],
):
    """OAuth2 password form (`username` is the email); the token goes in
    `Authorization: Bearer <token>`."""
    user = await authenticated(request, username, password)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Incorrect email or password.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Token(access_token=create_access_token(user))


@router.get("/me", response_model=UserPublic, responses=responses(401, 503))
async def me(user: CurrentUser):
    return user


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 429, 503))
def logout(user: CurrentUser, token: TokenDep, session: SessionDep):
    """Signs out: the token of this request stops working at once. A login token ends with
    every other login token of the user (signed out everywhere); an API token ends itself only."""
    if token.startswith(API_TOKEN_PREFIX):
        session.execute(delete(ApiToken).where(ApiToken.token_sha256 == api_token_sha256(token)))
    else:
        user.token_generation += 1
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/me/password", response_model=Token, responses=responses(400, 401, 403, 422, 429, 503)
)
async def change_password(body: PasswordChange, request: Request, user: CurrentUser):
    """Changes the password: every login token made before ends (this one too; the answer is a
    new one), and with `revoke_api_tokens` every API token. Takes a login token."""
    address = throttle.client_address(request)
    throttle.check_login(user.email, address)
    changed = await anyio.to_thread.run_sync(_change_password, user.id, body, limiter=_hashing)
    if changed is None:
        throttle.count_failed_login(user.email, address)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "The current password is not right: nothing was changed."
        )
    return Token(access_token=create_access_token(changed))


def _change_password(user_id: uuid.UUID, body: PasswordChange) -> User | None:
    """The user with the new password and the next token generation; None (nothing changed)
    when the current password is wrong."""
    with RequestSessionLocal() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None or not verify_password(body.current_password, user.hashed_password):
            return None
        user.hashed_password = hash_password(body.new_password)
        user.token_generation += 1
        if body.revoke_api_tokens:
            session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
        session.commit()
        session.refresh(user)
        return user


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(400, 401, 403, 409, 422, 429, 503),
)
async def remove_account(
    body: AccountRemoval, request: Request, user: CurrentUser, storage: StorageDep
):
    """Removes your account with every model, version, job, file, token and image of yours;
    other users' jobs on your public models stay, detached (see DELETE /api/versions/{id}).
    Takes a login token and your password; 409 while a build or job of yours runs."""
    address = throttle.client_address(request)
    throttle.check_login(user.email, address)
    user_id = user.id
    if not await anyio.to_thread.run_sync(_password_is, user_id, body.password, limiter=_hashing):
        throttle.count_failed_login(user.email, address)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "The password is not right: nothing was removed."
        )
    await run_in_threadpool(_remove_account, user_id, storage)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _password_is(user_id: uuid.UUID, password: str) -> bool:
    with RequestSessionLocal() as session:
        user = session.get(User, user_id)
        return user is not None and verify_password(password, user.hashed_password)


def _remove_account(user_id: uuid.UUID, storage: Storage) -> None:
    with RequestSessionLocal() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None:  # removed by a request of its own meanwhile
            return
        problem = removal.account_still_active(session, user_id)
        if problem:
            raise HTTPException(status.HTTP_409_CONFLICT, problem)
        removal.remove_account(session, storage, Registry(), user)
