"""A read the farm answers 503 (a part of it down or hung; its Retry-After says when to ask
again) is sent again, so that a wait rides out a brief outage. A write is never sent again: it
may have been done."""

import httpx
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt

SAFE_METHODS = frozenset({"GET", "HEAD"})
TRIES = 4
LONGEST_WAIT_S = 10.0


def request(http: httpx.Client, method: str, path: str, **options: object) -> httpx.Response:
    """http.request(...), a read answered 503 sent again after its Retry-After, up to TRIES."""
    retrying = Retrying(
        retry=retry_if_result(lambda response: _unavailable(method, response)),
        wait=_retry_after,
        stop=stop_after_attempt(TRIES),
        retry_error_callback=lambda state: state.outcome.result(),  # the last 503, as it is
    )
    return retrying(http.request, method, path, **options)


def _unavailable(method: str, response: httpx.Response) -> bool:
    return method.upper() in SAFE_METHODS and response.status_code == 503


def _retry_after(state: RetryCallState) -> float:
    said = state.outcome.result().headers.get("Retry-After", "1")
    try:
        return min(max(float(said), 0.0), LONGEST_WAIT_S)
    except ValueError:  # an HTTP date: not one the farm sends
        return 1.0
