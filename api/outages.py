"""A dependency that is down is a 503 that names it, with Retry-After; never a 500 or a dropped
connection. Pooled database connections are pinged before reuse after being idle (core/db.py),
so the pool recovers by itself afterwards."""

from collections.abc import Callable

import redis
import urllib3
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from minio.error import S3Error, ServerError
from sqlalchemy.exc import InterfaceError, OperationalError

from api.crud import QueueUnavailable

RETRY_AFTER_S = 5
# An S3 error the routes do not handle (a missing object is handled) is the server's: out of
# space, or failing.
STORAGE_OUTAGE = (urllib3.exceptions.HTTPError, ServerError, S3Error)

# What the client libraries raise when their server cannot be reached: the server's name, what
# the answer adds, and the exceptions.
_OUTAGES: list[tuple[str, str, tuple[type[Exception], ...]]] = [
    ("The database", "", (OperationalError, InterfaceError)),
    ("Redis", "", (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)),
    ("Object storage", "", STORAGE_OUTAGE),
    ("The work queue", " (nothing was queued)", (QueueUnavailable,)),
]


def unavailable(component: str, extra: str = "") -> JSONResponse:
    return JSONResponse(
        {"detail": f"{component} is unavailable{extra}; try again shortly."},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _handler(component: str, extra: str) -> Callable:
    async def handle(_request: Request, _exc: Exception) -> JSONResponse:
        return unavailable(component, extra)

    return handle


def install(app: FastAPI) -> None:
    for component, extra, errors in _OUTAGES:
        for error in errors:
            app.add_exception_handler(error, _handler(component, extra))
