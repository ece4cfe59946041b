"""Retrying the farm's own faults with backoff. A user's fault is never retried.

A dependency that is down (database, Redis, object storage, registry, Docker engine) should cost
a user a delay, not a failed version or job: each step of a pipeline is retried up to
MODELFARM_FARM_RETRY_ATTEMPTS times, the waits doubling to fill MODELFARM_FARM_RETRY_WINDOW_S.
"""

import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from core.errors import UserFacingError, component_of
from core.settings import settings

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


def first_wait_s(attempts: int, window_s: float) -> float:
    """The first wait, so that the doubling waits between `attempts` tries add up to window_s."""
    return window_s / max(2 ** (attempts - 1) - 1, 1)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception()
    logger.warning(
        "%s failed (try %d of %d, %s down?); retrying in %.0f s",
        getattr(state.fn, "__qualname__", state.fn), state.attempt_number,
        settings.farm_retry_attempts, component_of(error) or "nothing known",
        state.next_action.sleep, exc_info=error,
    )  # fmt: skip


def with_retries(
    step: Callable[P, T], *args: P.args, give_up: Callable[[], bool] = lambda: False,
    **kwargs: P.kwargs,
) -> T:  # fmt: skip
    """step(*args, **kwargs), retried on anything but a UserFacingError, unless give_up() (such
    as: the job was canceled, so the sandbox failed because the cancel stopped it); the last
    error is raised when the tries run out."""
    first = first_wait_s(settings.farm_retry_attempts, settings.farm_retry_window_s)
    retrying = Retrying(
        retry=retry_if_not_exception_type(UserFacingError)
        & retry_if_exception(lambda _error: not give_up()),
        stop=stop_after_attempt(settings.farm_retry_attempts),
        wait=wait_exponential(multiplier=first, min=first),
        before_sleep=_log_retry,
        reraise=True,
    )
    return retrying(step, *args, **kwargs)
