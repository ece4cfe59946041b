"""The FastAPI application: routers, error format, and start-up."""

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api import outages
from api.deps import get_storage
from api.routes import health, jobs, models, users, versions
from api.security import require_secret


@asynccontextmanager
async def lifespan(_app: FastAPI):
    require_secret()
    get_storage().ensure_bucket()
    yield


app = FastAPI(
    title="modelfarm",
    summary="Upload a model ZIP, get a sandboxed container image, run jobs on it.",
    lifespan=lifespan,
)
for module in (users, models, versions, jobs, health):
    app.include_router(module.router)
outages.install(app)


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"] if part != "body")
    return f"{where}: {error['msg']}" if where else error["msg"]


@app.exception_handler(RequestValidationError)
async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable sentence per problem, plus the structured list."""
    problems = [_describe(error) for error in exc.errors()]
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse(
        {"detail": "Invalid request: " + "; ".join(problems), "errors": errors},
        status_code=422,
    )
