"""GET /health: is every component the farm depends on answering?

It answers within MODELFARM_HEALTH_BUDGET_S whatever hangs: the checks run side by side, each in
a thread of its own and bounded by its client's deadline (core/settings.py), and at most one
check of a component runs at a time in a process, so probes that come while one runs share its
answer: a hung component holds one thread, however many probes come.
"""

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import docker
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.deps import StorageDep
from api.outages import RETRY_AFTER_S
from core import deadlines
from core.db import request_engine
from core.registry import Registry
from core.settings import settings
from core.storage import Storage, store_disks

router = APIRouter(tags=["health"])
_redis_client = deadlines.redis_client()


def _database() -> None:
    with request_engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _redis() -> None:
    _redis_client.ping()


def _docker() -> None:
    client = docker.from_env(timeout=settings.request_deadline_s)
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
    Registry(timeout=settings.request_deadline_s).ping()


def _outcome(probe: Callable[[], object]) -> dict[str, object]:
    try:
        probe()
    except Exception as error:  # any failure of a component means "down", with its reason
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:500]}
    return {"ok": True}


_threads = ThreadPoolExecutor(max_workers=5, thread_name_prefix="health")  # one per component
_running: dict[str, asyncio.Future] = {}


async def _check(name: str, probe: Callable[[], object], deadline: float) -> dict[str, object]:
    """The component's check, or the one of it already running; down past the deadline."""
    running = _running.get(name)
    if running is None or running.done():
        running = _running[name] = asyncio.wrap_future(_threads.submit(_outcome, probe))
    try:
        return await asyncio.wait_for(asyncio.shield(running), deadline - time.monotonic())
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {settings.health_budget_s:g} s"}


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
async def health(storage: StorageDep) -> JSONResponse:
    probes: dict[str, Callable[[], object]] = {
        "database": _database, "redis": _redis, "object_storage": lambda: _object_storage(storage),
        "registry": _registry,
    }  # fmt: skip
    if settings.health_checks_docker:
        probes["docker"] = _docker
    deadline = time.monotonic() + settings.health_budget_s
    outcomes = await asyncio.gather(
        *(_check(name, probe, deadline) for name, probe in probes.items())
    )
    checks = dict(zip(probes, outcomes, strict=True))
    down = sorted(name for name, result in checks.items() if not result["ok"])
    body = {"status": "unhealthy" if down else "ok", "down": down, "checks": checks,
            "sandbox_runtime": settings.sandbox_runtime}  # fmt: skip
    if down:
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    return JSONResponse(body)
