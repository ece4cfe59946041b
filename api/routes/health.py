"""GET /health: is every component the farm depends on answering?"""

from collections.abc import Callable

import docker
import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.deps import StorageDep
from core.db import engine
from core.registry import Registry
from core.settings import settings
from core.storage import Storage, store_disks

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
        runtimes = client.info().get("Runtimes") or {}
    finally:
        client.close()
    if settings.sandbox_runtime not in runtimes:
        raise RuntimeError(
            f"the engine has no {settings.sandbox_runtime} runtime (MODELFARM_SANDBOX_RUNTIME): "
            "run scripts/setup.sh"
        )


class StorageDegraded(Exception):
    pass


def check_free_space(disks: list[dict], needed: int) -> None:
    """Raises when a disk of the store (core/storage.store_disks) has less free space than one
    upload at the limit."""
    for disk in disks:
        if disk["free"] < needed:
            raise StorageDegraded(
                f"degraded: {disk['free'] // 1024**2} MB free, below the largest allowed upload "
                f"({needed // 1024**2} MB)"
            )


def _object_storage(storage: Storage) -> None:
    storage.client.bucket_exists(storage.bucket)
    disks = store_disks()
    if disks is not None:
        check_free_space(disks, max(settings.max_package_bytes, settings.max_input_bytes))


def _registry() -> None:
    Registry(timeout=TIMEOUT_S).ping()


def _check(probe: Callable[[], object]) -> dict[str, object]:
    try:
        probe()
    except Exception as error:  # any failure of a component means "down", with its reason
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:500]}
    return {"ok": True}


class Check(BaseModel):
    ok: bool
    error: str | None = None


class Health(BaseModel):
    status: str = Field(description="ok, or unhealthy when a component is down")
    down: list[str]
    checks: dict[str, Check]
    sandbox_runtime: str = Field(description="runc, or runsc (gVisor): what sandboxes run under")


@router.get(
    "/health",
    responses={
        200: {"model": Health, "description": "Every component answers."},
        503: {"model": Health, "description": "The components named in `down` do not answer."},
    },
)
def health(storage: StorageDep) -> JSONResponse:
    checks = {
        "database": _check(_database),
        "redis": _check(_redis),
        "object_storage": _check(lambda: _object_storage(storage)),
        "registry": _check(_registry),
    }
    if settings.health_checks_docker:
        checks["docker"] = _check(_docker)
    down = sorted(name for name, result in checks.items() if not result["ok"])
    body = {"status": "unhealthy" if down else "ok", "down": down, "checks": checks,
            "sandbox_runtime": settings.sandbox_runtime}  # fmt: skip
    return JSONResponse(body, status_code=503 if down else 200)
