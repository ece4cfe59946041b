"""Security headers on every answer: a Content-Security-Policy that lets a page run only the
farm's own script files (no inline script, no event-handler attribute, no eval), so a model's
description or log line that slipped through escaping still could not run; and no framing, no
MIME sniffing, no Referer to other sites. The object store's origin is allowed for images and
media only: a job's outputs are shown from their presigned URLs, which point there."""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import settings

STORE_ORIGIN = f"{'https' if settings.s3_secure else 'http'}://{settings.s3_client_endpoint}"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src 'self' data: {STORE_ORIGIN}",
        f"media-src 'self' {STORE_ORIGIN}",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
