"""Throttles and quotas, each a 429 with Retry-After. Failed logins and registrations, on the
routes an attacker hammers; each user's write requests per minute, counted in Redis so every
API process shares them (the `limits` library, fixed windows); and each user's jobs and builds
queued or running at once, counted in the database.

Failed logins count per (account, client address) and per client address: a guesser is stopped
after a few tries, and an attacker elsewhere cannot lock the real owner out of their account.
"""

import time
import uuid

from fastapi import HTTPException, Request, status
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import deadlines
from core.lifecycle import JOB, VERSION
from core.models import Job, Model, ModelVersion
from core.settings import settings

# Counted in Redis through a client that keeps the request deadline (a hung Redis is a 503).
_counts = storage_from_string(settings.redis_url, connection_pool=deadlines.redis_pool())
_limiter = FixedWindowRateLimiter(_counts)


def _per(count: int, minutes: int) -> RateLimitItem:
    return RateLimitItemPerMinute(count, minutes, namespace="modelfarm")


FAILED_LOGINS_PER_ACCOUNT_AND_ADDRESS = _per(settings.login_failures_per_account, 15)
FAILED_LOGINS_PER_ADDRESS = _per(settings.login_failures_per_address, 15)
REGISTRATIONS_PER_ADDRESS = _per(settings.registrations_per_address, 60)
WRITES_PER_USER = _per(settings.writes_per_minute, 1)
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# What a client waits before asking again for room for a job or a build.
QUOTA_RETRY_S = 5


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _refuse(item: RateLimitItem, *identifiers: str, what: str) -> None:
    _refuse_for(item, *identifiers, detail=f"Too many {what} from here; wait before trying again.")


def _refuse_for(item: RateLimitItem, *identifiers: str, detail: str) -> None:
    reset_at = _limiter.get_window_stats(item, *identifiers).reset_time
    raise HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS, detail,
        headers={"Retry-After": str(max(1, int(reset_at - time.time()) + 1))},
    )  # fmt: skip


def check_login(email: str, address: str) -> None:
    """Refuses (429) a login attempt once this account or this address failed too often."""
    for item, identifiers in _login_limits(email, address):
        if not _limiter.test(item, *identifiers):
            _refuse(item, *identifiers, what="failed logins")


def count_failed_login(email: str, address: str) -> None:
    for item, identifiers in _login_limits(email, address):
        _limiter.hit(item, *identifiers)


def _login_limits(email: str, address: str):
    return (
        (FAILED_LOGINS_PER_ACCOUNT_AND_ADDRESS, ("login", email.lower(), address)),
        (FAILED_LOGINS_PER_ADDRESS, ("login", address)),
    )


def count_registration(address: str) -> None:
    """Counts a registration attempt, refusing (429) past the limit for this address."""
    if not _limiter.hit(REGISTRATIONS_PER_ADDRESS, "register", address):
        _refuse(REGISTRATIONS_PER_ADDRESS, "register", address, what="registrations")


def count_write(request: Request, user_id: uuid.UUID) -> None:
    """Counts a user's write request, refusing (429) past their limit per minute."""
    if request.method in WRITES and not _limiter.hit(WRITES_PER_USER, "writes", str(user_id)):
        _refuse_for(
            WRITES_PER_USER, "writes", str(user_id),
            detail=f"You sent more than {settings.writes_per_minute} write requests in a minute "
            "(MODELFARM_WRITES_PER_MINUTE); wait before sending more.",
        )  # fmt: skip


def active_jobs(session: Session, owner_id: uuid.UUID) -> int:
    """The user's jobs queued or running."""
    return session.scalar(
        select(func.count()).where(Job.owner_id == owner_id, Job.status.in_(JOB.active))
    )


def active_builds(session: Session, owner_id: uuid.UUID) -> int:
    """The user's versions queued or building."""
    return session.scalar(
        select(func.count())
        .select_from(ModelVersion)
        .join(Model)
        .where(Model.owner_id == owner_id, ModelVersion.status.in_(VERSION.active))
    )


def require_room_for_job(session: Session, owner_id: uuid.UUID) -> None:
    """Refuses (429) queueing a job while its owner has their most queued or running."""
    active = active_jobs(session, owner_id)
    _require_room(active, settings.max_active_jobs_per_user, "jobs", "JOBS")


def require_room_for_build(session: Session, owner_id: uuid.UUID) -> None:
    """Refuses (429) queueing a build while its owner has their most queued or building."""
    active = active_builds(session, owner_id)
    _require_room(active, settings.max_active_builds_per_user, "builds", "BUILDS")


def _require_room(active: int, limit: int, what: str, setting: str) -> None:
    if active >= limit:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"You have {active} {what} queued or running, the most you may have at once "
            f"(MODELFARM_MAX_ACTIVE_{setting}_PER_USER); wait for one to end.",
            headers={"Retry-After": str(QUOTA_RETRY_S)},
        )
