"""The FastAPI application: routers, error format, and start-up."""

import gc
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api import outages, waiting
from api.body_limit import BodyLimit
from api.deps import get_storage
from api.request_log import RequestLog
from api.routes import (
    account_pages,
    aliases,
    compare_pages,
    content_files,
    docs,
    events,
    health,
    jobs,
    models,
    package_uploads,
    pages,
    push_pages,
    run_pages,
    tokens,
    users,
    versions,
    webhooks,
)
from api.schemas import PLAIN_TEXT
from api.security import require_secret
from api.security_headers import SecurityHeaders
from core import logs, metrics
from core.settings import settings
from core.storage import Storage

logs.configure(settings.service or "api")


@asynccontextmanager
async def lifespan(_app: FastAPI):
    require_secret()
    metrics.count_farm_state()
    metrics.serve()
    _ensure_bucket(await get_storage())
    # What start-up made lives as long as the process: frozen, the garbage collector no longer
    # walks it at each full collection, which were the slowest requests under load (make
    # bench's API p99 halved).
    gc.freeze()
    async with waiting.listening():
        yield


def _ensure_bucket(storage: Storage) -> None:
    """Makes the bucket on the farm's first start. An API process that (re)starts while object
    storage is down still starts, and answers 503 for what needs storage until it is back:
    under several processes, one that failed to start would stop them all."""
    try:
        storage.ensure_bucket()
    except outages.STORAGE_OUTAGE:
        logging.getLogger(__name__).exception("object storage: cannot check the bucket at start")


app = FastAPI(
    title="modelfarm",
    summary="Upload a model ZIP, get a sandboxed container image, run jobs on it.",
    lifespan=lifespan,
    docs_url=None,  # served by api/routes/docs.py, with its assets from the farm, not a CDN
    redoc_url=None,
)
routers = (
    users, tokens, models, aliases, versions, package_uploads, content_files, jobs, events,
    webhooks, health, docs, pages, run_pages, account_pages,
    compare_pages,
    push_pages,
)  # fmt: skip
for module in routers:
    app.include_router(module.router)
app.mount(docs.SWAGGER_UI, docs.vendor_assets(), name="swagger-ui")
app.mount(push_pages.FFLATE, push_pages.vendor_assets(), name="fflate")
app.mount("/static", pages.static_files(), name="static")
outages.install(app)
app.add_middleware(SecurityHeaders)
app.add_middleware(BodyLimit)
app.add_middleware(RequestLog)  # the outermost: its line tells how every request ended


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"] if part != "body")
    message = error["msg"]
    if error.get("ctx", {}).get("pattern") == PLAIN_TEXT:
        message = "must not contain control characters (NUL, newlines, tabs, ...)"
    return f"{where}: {message}" if where else message


@app.exception_handler(RequestValidationError)
async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable sentence per problem, plus the structured list."""
    problems = [_describe(error) for error in exc.errors()]
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse(
        {"detail": "Invalid request: " + "; ".join(problems), "errors": errors},
        status_code=422,
    )


@app.exception_handler(StarletteHTTPException)
async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's own handling, except that a 405 lists every method the path allows (Starlette
    names only those of the first route that matched the path)."""
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return await http_exception_handler(request, exc)


def _allowed_methods(request: Request) -> list[str]:
    def allowed(method: str) -> bool:
        scope = {**request.scope, "method": method}
        return any(route.matches(scope)[0] == Match.FULL for route in app.routes)

    return [method for method in ("GET", "POST", "PUT", "PATCH", "DELETE") if allowed(method)]
