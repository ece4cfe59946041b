"""The web UI's session: the API's own login token (a JWT, ended by signing out as the API's
is), held by the browser in a cookie it never shows to scripts (HttpOnly), never sends from
another site (SameSite=Strict) and, under TLS, only over TLS (Secure). Every form also carries
a CSRF token: a random value in a cookie of its own that the form repeats in a hidden field
(double submit), so a form posted from elsewhere is refused (403) even where SameSite is not
honoured."""

import hmac
import secrets

from fastapi import HTTPException, Request, Response, status
from sqlalchemy.orm import Session

from api.security import claims_of, create_access_token
from core.models import User
from core.settings import settings

SESSION_COOKIE = "modelfarm_session"
CSRF_COOKIE = "modelfarm_csrf"
CSRF_FIELD = "csrf_token"
# A script's request whose body is not a form (a pushed ZIP) repeats the token in this header.
CSRF_HEADER = "X-CSRF-Token"
# The credential of a request signed in by the session cookie (api/deps.credential_of).
WEB_UI = "the web UI"


def signed_in(request: Request, session: Session) -> User | None:
    """The user whose session cookie this is, while its token is valid and not signed out."""
    token = request.cookies.get(SESSION_COOKIE)
    claims = claims_of(token) if token else None
    user = session.get(User, claims[0]) if claims else None
    if user is None or claims[1] != user.token_generation:
        return None
    request.state.credential = WEB_UI
    return user


def script_user(request: Request, session: Session) -> User:
    """The signed-in user of a page's script request (an event stream, a push): it has no
    sign-in page to go to, so 401 without a session."""
    user = signed_in(request, session)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "Sign in first (reload the page), then try again."
        )
    return user


def start(response: Response, request: Request, user: User) -> None:
    """Signs the browser in as user."""
    _set(response, request, SESSION_COOKIE, create_access_token(user))


def end(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def csrf_of(request: Request) -> tuple[str, bool]:
    """The browser's CSRF token, and whether it is new (then keep_csrf sets its cookie)."""
    token = request.cookies.get(CSRF_COOKIE)
    return (token, False) if token else (secrets.token_urlsafe(32), True)


def keep_csrf(response: Response, request: Request, token: str) -> None:
    _set(response, request, CSRF_COOKIE, token)


async def require_csrf(request: Request) -> None:
    """A form's CSRF field (or a script's CSRF header) must repeat the browser's CSRF cookie."""
    sent = request.headers.get(CSRF_HEADER) or str((await request.form()).get(CSRF_FIELD, ""))
    kept = request.cookies.get(CSRF_COOKIE, "")
    if not kept or not hmac.compare_digest(sent, kept):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "This form did not come from this farm's page: reload the page and send it again.",
        )


def _set(response: Response, request: Request, name: str, value: str) -> None:
    response.set_cookie(
        name, value, max_age=settings.jwt_lifetime_minutes * 60, path="/",
        httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
