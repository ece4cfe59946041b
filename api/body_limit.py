"""A cap on request bodies, enforced while they arrive: a body over the cap is refused with 413
before it is read into memory, whether it announces its length or not.

The biggest legitimate body is a job with its input(s) inline, base64 in JSON: 4/3 of
MODELFARM_MAX_INLINE_INPUT_BYTES plus room for the JSON around it.
"""

import re

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import settings

JSON_ROOM = 1024**2
MAX_BODY_BYTES = settings.max_inline_input_bytes * 4 // 3 + JSON_ROOM
TOO_LARGE = (
    f"The request body is over {MAX_BODY_BYTES} bytes. Inline inputs may total "
    f"{settings.max_inline_input_bytes} bytes; send bigger ones through upload URLs (create "
    "the job without `input` or `batch`, or with `batch_size`)."
)
# A ZIP pushed from the model page (api/routes/push_pages.py) may be a package's size: its route
# caps it at MODELFARM_MAX_PACKAGE_BYTES by its declared length, and streams it to the store.
PUSHED_ZIP = re.compile(r"/models/[^/]+/push")


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _pushed_zip(scope):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            response = JSONResponse({"detail": TOO_LARGE}, status_code=413)
            return await response(scope, receive, send)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                # An HTTPException, so the route's body reading passes it on as it is.
                raise HTTPException(413, TOO_LARGE)
            return message

        await self.app(scope, counting_receive, send)


def _pushed_zip(scope: Scope) -> bool:
    content_type = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip()
    return content_type == b"application/zip" and bool(PUSHED_ZIP.fullmatch(scope["path"]))
