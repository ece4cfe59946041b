"""Accounts: register, log in, who am I. Password hashing is slow on purpose, so it runs on a
few threads of its own (never on those serving other requests), and failed logins and
registrations are throttled (api/throttle.py)."""

from typing import Annotated

import anyio
from fastapi import APIRouter, Form, HTTPException, Request, status

from api import crud, throttle
from api.deps import CurrentUser
from api.errors import responses
from api.schemas import PLAIN_TEXT, Token, UserPublic, UserRegister
from api.security import create_access_token
from core.db import SessionLocal
from core.models import User
from core.settings import settings

router = APIRouter(prefix="/api/users", tags=["users"])
# Bounds the CPU that hashing may take, whatever the number of requests waiting for it.
_hashing = anyio.CapacityLimiter(settings.password_hash_concurrency)


def _register(email: str, password: str) -> User:
    with SessionLocal() as session:
        return crud.create_user(session, email=email, password=password)


def _authenticate(email: str, password: str) -> User | None:
    with SessionLocal() as session:
        return crud.authenticate(session, email=email, password=password)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses=responses(400, 409, 422, 429, 503),
)
async def register(body: UserRegister, request: Request):
    throttle.count_registration(throttle.client_address(request))
    try:
        return await anyio.to_thread.run_sync(
            _register, body.email, body.password, limiter=_hashing
        )
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
    address = throttle.client_address(request)
    throttle.check_login(username, address)
    user = await anyio.to_thread.run_sync(_authenticate, username, password, limiter=_hashing)
    if user is None:
        throttle.count_failed_login(username, address)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Incorrect email or password.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Token(access_token=create_access_token(user.id))


@router.get("/me", response_model=UserPublic, responses=responses(401, 503))
async def me(user: CurrentUser):
    return user
