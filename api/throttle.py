"""Throttles on the routes an attacker hammers: failed logins and registrations, counted in
Redis so every API process shares them (the `limits` library, fixed windows).

Failed logins count per (account, client address) and per client address: a guesser is stopped
after a few tries, and an attacker elsewhere cannot lock the real owner out of their account.
"""

import time

from fastapi import HTTPException, Request, status
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from core.settings import settings

_limiter = FixedWindowRateLimiter(storage_from_string(settings.redis_url))


def _per(count: int, minutes: int) -> RateLimitItem:
    return RateLimitItemPerMinute(count, minutes, namespace="modelfarm")


FAILED_LOGINS_PER_ACCOUNT_AND_ADDRESS = _per(settings.login_failures_per_account, 15)
FAILED_LOGINS_PER_ADDRESS = _per(settings.login_failures_per_address, 15)
REGISTRATIONS_PER_ADDRESS = _per(settings.registrations_per_address, 60)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _refuse(item: RateLimitItem, *identifiers: str, what: str) -> None:
    reset_at = _limiter.get_window_stats(item, *identifiers).reset_time
    raise HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"Too many {what} from here; wait before trying again.",
        headers={"Retry-After": str(max(1, int(reset_at - time.time()) + 1))},
    )


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
