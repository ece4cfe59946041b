"""Every request gets an id: the client's X-Request-ID when it is a plain token, else a new
one. It is echoed in the response, bound to every line logged while the request is served (and
carried to the task it sends, core/queue.py), and ends the request's own log line: method,
path, status, time taken and the user (core/logs.py). The request is counted and timed for
Prometheus by its route's template (core/metrics.py)."""

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import logs, metrics

logger = structlog.get_logger("api.request")
_HEADER = logs.REQUEST_ID_HEADER.lower().encode()


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(_HEADER)
        request_id = logs.request_id(given.decode("latin-1") if given else None)
        logs.start(request_id=request_id)
        started, answered = time.perf_counter(), {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), (_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")  # the template, not the ids
            metrics.HTTP_REQUESTS.labels(route, scope["method"], answered["status"]).inc()
            metrics.HTTP_SECONDS.labels(route, scope["method"]).observe(seconds)
            logger.info(
                "request", method=scope["method"], path=scope["path"], status=answered["status"],
                ms=round(seconds * 1000, 1), user_id=scope.get("state", {}).get("user_id"),
            )  # fmt: skip
