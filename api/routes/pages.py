"""The web UI's pages, served by the API itself (Jinja2 templates in api/templates, the style in
api/static): sign up, sign in and out with a session cookie (api/browser_session.py), and the
models a user may see. Every form carries the CSRF token; a page that needs a user sends a
browser without a session to the sign-in page."""

import re
import uuid
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api import browser_session, crud, forms
from api.deps import MAX_OFFSET, SessionDep, model_for
from api.routes import aliases
from api.routes import models as models_api
from api.routes.users import authenticated, register_account
from api.schemas import ModelCreate, ModelUpdate, UserRegister
from core.models import ALIAS_PATTERN, Model, User

HERE = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
Email = Annotated[str, Form(max_length=320)]
Password = Annotated[str, Form(max_length=128)]
CsrfChecked = Depends(browser_session.require_csrf)


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")


def page(request: Request, name: str, user: User | None = None, status_code: int = 200,
          **context: object) -> HTMLResponse:  # fmt: skip
    """A page rendered with the user and the browser's CSRF token (made on its first page)."""
    token, fresh = browser_session.csrf_of(request)
    response = templates.TemplateResponse(
        request, name, {"user": user, "csrf_token": token, **context}, status_code=status_code
    )
    if fresh:
        browser_session.keep_csrf(response, request, token)
    return response


async def page_user(request: Request, session: SessionDep) -> User:
    """The browser's signed-in user; a browser without a session goes to the sign-in page."""
    user = browser_session.signed_in(request, session)
    if user is None:
        raise HTTPException(status.HTTP_303_SEE_OTHER, "Sign in first.",
                            headers={"Location": "/signin"})  # fmt: skip
    return user


PageUser = Annotated[User, Depends(page_user)]


def missing(request: Request, user: User, error: HTTPException) -> HTMLResponse:
    """The page of something not there, or not this user's to see (404, as the API says)."""
    return page(request, "missing.html", user, status_code=404, error=error.detail)


def to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=status.HTTP_303_SEE_OTHER)


@router.get("/")
async def home(request: Request, session: SessionDep) -> Response:
    return to("/models" if browser_session.signed_in(request, session) else "/signin")


@router.get("/signin")
@router.get("/signup")
async def account_page(request: Request) -> HTMLResponse:
    return _account(request, request.url.path)


@router.post("/signin", dependencies=[CsrfChecked])
async def signin(request: Request, email: Email, password: Password) -> Response:
    try:
        user = await authenticated(request, email, password)
    except HTTPException as refused:  # throttled: the sentence says when to try again
        return _account(request, "/signin", email, refused.detail, refused.status_code)
    if user is None:
        return _account(request, "/signin", email, "Incorrect email or password.", 401)
    return _welcome(request, user)


@router.post("/signup", dependencies=[CsrfChecked])
async def signup(request: Request, email: Email, password: Password) -> Response:
    try:
        account = UserRegister(email=email, password=password)
        user = await register_account(request, account.email, account.password)
    except ValidationError as invalid:
        problem = "; ".join(error["msg"] for error in invalid.errors())
        return _account(request, "/signup", email, f"{problem}.", 422)
    except crud.AlreadyExists:
        return _account(request, "/signup", email, "An account with this email exists: sign "
                        "in instead.", 409)  # fmt: skip
    except HTTPException as refused:
        return _account(request, "/signup", email, refused.detail, refused.status_code)
    return _welcome(request, user)


def _account(request: Request, action: str, email: str = "", error: str | None = None,
             code: int = 200) -> HTMLResponse:  # fmt: skip
    """The sign-in or sign-up form, with what went wrong."""
    heading = "Sign in" if action == "/signin" else "Sign up"
    return page(request, "account.html", status_code=code, heading=heading, action=action,
                 email=email, error=error)  # fmt: skip


def _welcome(request: Request, user: User) -> Response:
    """Signed in: on to the models."""
    response = to("/models")
    browser_session.start(response, request, user)
    return response


@router.post("/signout", dependencies=[CsrfChecked])
def signout(request: Request, session: SessionDep) -> Response:
    """Ends the session's token, as the API's sign-out does: every login token of the user."""
    user = browser_session.signed_in(request, session)
    if user is not None:
        user.token_generation += 1
        session.commit()
    response = to("/signin")
    browser_session.end(response)
    return response


@router.get("/models")
async def models_page(
    request: Request, session: SessionDep, user: PageUser, q: str = "",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
):  # fmt: skip
    return _models_page(request, session, user, q, offset)


def _models_page(request: Request, session: Session, user: User, q: str = "", offset: int = 0,
                 error: str | None = None, code: int = 200) -> HTMLResponse:  # fmt: skip
    """A page of the models the user may see, named like q (one query), and the create form."""
    models, total = crud.page(session, _named_like(crud.visible_models(user=user), q),
                              offset=offset, limit=PAGE_SIZE)  # fmt: skip
    pages = {"q": q} if q else {}
    earlier = f"/models?{urlencode(pages | {'offset': max(offset - PAGE_SIZE, 0)})}"
    later = f"/models?{urlencode(pages | {'offset': offset + PAGE_SIZE})}"
    return page(request, "models.html", user, status_code=code, models=models, total=total,
                q=q, offset=offset, error=error, earlier=earlier if offset else None,
                later=later if offset + PAGE_SIZE < total else None)  # fmt: skip


@router.post("/models", dependencies=[CsrfChecked])
def create_model(
    request: Request, session: SessionDep, user: PageUser,
    name: Annotated[str, Form(max_length=64)] = "",
    description: Annotated[str, Form(max_length=2000)] = "",
    visibility: Annotated[str, Form(max_length=16)] = "private",
) -> Response:  # fmt: skip
    """Creates a model of the user's, as POST /api/models does (its rules, its 409)."""
    try:
        fields = ModelCreate(name=name, description=description, visibility=visibility)
        model = models_api.create_model(fields, session, user)
    except ValidationError as invalid:
        return _models_page(request, session, user, error=forms.problems_of(invalid), code=422)
    except HTTPException as refused:
        return _models_page(
            request, session, user, error=f"{refused.detail}.", code=refused.status_code
        )
    return to(f"/models/{model.id}")


@router.get("/models/{model_id}")
async def model_page(model_id: uuid.UUID, request: Request, session: SessionDep, user: PageUser):
    try:
        model = model_for(session, user, model_id, write=False)
    except HTTPException as absent:
        return missing(request, user, absent)
    return _model_page(request, session, user, model)


def _model_page(request: Request, session: Session, user: User, model: Model,
                error: str | None = None, code: int = 200) -> HTMLResponse:  # fmt: skip
    versions = session.scalars(crud.versions_of(model=model)).all()
    aliases = session.scalars(crud.aliases_of(model=model)).all()
    numbers = {version.id: version.number for version in versions}
    return page(request, "model.html", user, status_code=code, model=model, versions=versions,
                aliases=aliases, numbers=numbers, error=error)  # fmt: skip


@router.post("/models/{model_id}/edit", dependencies=[CsrfChecked])
def edit_model(
    model_id: uuid.UUID, request: Request, session: SessionDep, user: PageUser,
    description: Annotated[str, Form(max_length=2000)] = "",
    visibility: Annotated[str, Form(max_length=16)] = "",
) -> Response:  # fmt: skip
    """Changes the owner's model's description and visibility, as PATCH /api/models/{id}."""
    try:
        model = model_for(session, user, model_id, write=True)
    except HTTPException as absent:
        return missing(request, user, absent)
    try:
        change = ModelUpdate(description=description, visibility=visibility or None)
    except ValidationError as invalid:
        problem = "; ".join(error["msg"] for error in invalid.errors())
        return _model_page(request, session, user, model, f"{problem}.", 422)
    crud.update_model(session, model=model, change=change.model_dump(exclude_none=True))
    return to(f"/models/{model.id}")


@router.post("/models/{model_id}/aliases", dependencies=[CsrfChecked])
def point_alias(
    model_id: uuid.UUID, request: Request, session: SessionDep, user: PageUser,
    alias: Annotated[str, Form(max_length=64)], version_id: Annotated[uuid.UUID, Form()],
) -> Response:  # fmt: skip
    """Points an alias of the owner's model at one of its READY versions (a deploy, or a roll
    back), as PUT /api/models/{id}/aliases/{alias} does."""
    try:
        model = model_for(session, user, model_id, write=True)
    except HTTPException as absent:
        return missing(request, user, absent)
    try:
        if not re.fullmatch(ALIAS_PATTERN, alias):
            raise HTTPException(422, f"{alias!r} cannot be an alias: use lowercase letters, "
                                "digits and dashes, such as prod.")  # fmt: skip
        aliases.point(session, model, alias, version_id)
    except HTTPException as refused:
        return _model_page(request, session, user, model, refused.detail, refused.status_code)
    return to(f"/models/{model.id}")


def _named_like(query, q: str):
    needle = q.strip()[:64].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return query.where(Model.name.ilike(f"%{needle}%", escape="\\")) if needle else query
