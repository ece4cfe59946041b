"""The web UI's tokens and usage page: the user's API tokens, made (the token shown this once,
with a copy button, api/static/tokens.js) and revoked through the API's own routes
(api/routes/tokens.py), and what the user uses against the farm's limits: storage against the
quota (api/quota.py), jobs and builds queued or running against the most at once
(api/throttle.py's limits)."""

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api import crud, forms, quota, throttle
from api.deps import SessionDep
from api.routes import tokens
from api.routes.pages import CsrfChecked, PageUser, missing, page, to
from api.schemas import MAX_TOKEN_DAYS, ApiTokenCreate, ApiTokenCreated
from api.security import Scope
from core.lifecycle import utcnow
from core.models import User
from core.settings import settings

router = APIRouter(include_in_schema=False)
SCOPES_HELP = ApiTokenCreate.model_fields["scopes"].description
SIZE_UNITS = ("B", "KB", "MB", "GB", "TB")


@dataclass(frozen=True)
class Meter:
    """One use of a limited resource: `used` of `limit`, in bytes or in items."""

    key: str
    label: str
    used: int
    limit: int
    in_bytes: bool = False

    @property
    def text(self) -> str:
        if self.in_bytes:
            return f"{size(self.used)} of {size(self.limit)}"
        return f"{self.used} of {self.limit}"


@dataclass(frozen=True)
class Asked:
    """What the creation form held, given back with its error."""

    name: str = ""
    scopes: tuple[str, ...] = ()
    days: str = ""


@router.get("/tokens")
async def tokens_page(request: Request, session: SessionDep, user: PageUser) -> Response:
    return _tokens_page(request, session, user)


@router.post("/tokens", dependencies=[CsrfChecked])
def create_token(
    request: Request, session: SessionDep, user: PageUser, name: Annotated[str, Form()] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    expires_in_days: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """A token made as POST /api/tokens makes it, shown on this answer only (never stored by
    the browser: no-store), with the API's refusal on the form otherwise."""
    asked = Asked(name, tuple(scopes or ()), expires_in_days.strip())
    try:
        body = ApiTokenCreate(name=asked.name, scopes=list(asked.scopes),
                              expires_in_days=asked.days or None)  # fmt: skip
    except ValidationError as invalid:
        return _tokens_page(
            request, session, user, asked, error=forms.problems_of(invalid), code=422
        )
    created = tokens.create_token(body, session, user)
    response = _tokens_page(request, session, user, created=created, code=201)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/tokens/{token_id}/revoke", dependencies=[CsrfChecked])
def revoke_token(token_id: uuid.UUID, request: Request, session: SessionDep, user: PageUser):
    """Revokes the user's token as DELETE /api/tokens/{id} does (another's: not found)."""
    try:
        tokens.revoke_token(token_id, session, user)
    except HTTPException as absent:
        return missing(request, user, absent)
    return to("/tokens")


def _tokens_page(request: Request, session: Session, user: User, asked: Asked = Asked(),
                 created: ApiTokenCreated | None = None, error: str | None = None,
                 code: int = 200) -> Response:  # fmt: skip
    rows = session.scalars(crud.api_tokens_of(user=user)).all()
    usage = usage_of(session, user.id)
    return page(request, "tokens.html", user, status_code=code, tokens=rows, created=created,
                asked=asked, error=error, scopes=list(Scope), scopes_help=SCOPES_HELP,
                max_days=MAX_TOKEN_DAYS, usage=usage, now=utcnow())  # fmt: skip


def usage_of(session: Session, owner_id: uuid.UUID) -> list[Meter]:
    """The user's storage, jobs and builds against the limits the API enforces on them."""
    return [
        Meter("storage", "Storage", quota.used_bytes(session, owner_id),
              settings.storage_quota_mb * quota.MB, in_bytes=True),
        Meter("jobs", "Jobs queued or running", throttle.active_jobs(session, owner_id),
              settings.max_active_jobs_per_user),
        Meter("builds", "Builds queued or running", throttle.active_builds(session, owner_id),
              settings.max_active_builds_per_user),
    ]  # fmt: skip


def size(count: int) -> str:
    """A number of bytes as people read it: 812 B, 3.4 KB, 1024.0 MB."""
    amount, unit = float(count), 0
    while amount >= 1024 and unit < len(SIZE_UNITS) - 1:
        amount, unit = amount / 1024, unit + 1
    return f"{count} B" if unit == 0 else f"{amount:.1f} {SIZE_UNITS[unit]}"
