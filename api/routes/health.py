"""GET /health: is every component the farm depends on answering?"""

from collections.abc import Callable

import docker
import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import StorageDep
from core.db import engine
from core.registry import Registry
from core.settings import settings

router = APIRouter(tags=["health"])
TIMEOUT_S = 3


def _database() -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _redis() -> None:
    redis.Redis.from_url(settings.redis_url, socket_timeout=TIMEOUT_S).ping()


def _docker() -> None:
    client = docker.from_env(timeout=TIMEOUT_S)
    try:
        client.ping()
    finally:
        client.close()


def _registry() -> None:
    Registry(timeout=TIMEOUT_S).ping()


def _check(probe: Callable[[], object]) -> dict[str, object]:
    try:
        probe()
    except Exception as error:  # any failure of a component means "down", with its reason
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:500]}
    return {"ok": True}


@router.get("/health")
def health(storage: StorageDep) -> JSONResponse:
    checks = {
        "database": _check(_database),
        "redis": _check(_redis),
        "object_storage": _check(lambda: storage.client.bucket_exists(storage.bucket)),
        "registry": _check(_registry),
        "docker": _check(_docker),
    }
    down = sorted(name for name, result in checks.items() if not result["ok"])
    body = {"status": "unhealthy" if down else "ok", "down": down, "checks": checks}
    return JSONResponse(body, status_code=503 if down else 200)
