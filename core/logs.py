"""Logs that follow one piece of work: JSON lines (or readable console lines for a developer,
MODELFARM_LOG_FORMAT=console) from the API and the workers, each carrying the ids of what it is
about. The request id comes from the client's X-Request-ID (when it is a plain token) or is made
by the API, and travels with the Celery task the request sends, so `grep <request id>` finds the
request, the build or run it started, and its outcome. Every logger, the libraries' too, writes
through here (structlog over the standard library)."""

import logging
import re
import sys
import uuid

import structlog

from core.settings import settings

REQUEST_ID_HEADER = "X-Request-ID"
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def configure(service: str) -> None:
    """Routes every log record of this process through structlog, to stderr."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        lambda _logger, _name, event: {"service": service, **event},
    ]
    if settings.log_format == "json":
        rendered = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        rendered = [structlog.dev.ConsoleRenderer(colors=False)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendered],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "celery"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # The API logs each request itself (api/request_log.py), with its ids; a line per HTTP call
    # the farm makes (registry, object storage) would drown what matters.
    logging.getLogger("uvicorn.access").propagate = False
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def request_id(given: str | None) -> str:
    """The client's request id when it is a plain token, else a new one."""
    return given if given and _PLAIN_TOKEN.fullmatch(given) else uuid.uuid4().hex


def bind(**ids: object) -> None:
    """Adds ids to every line logged from here on in this context (request, task)."""
    structlog.contextvars.bind_contextvars(**{k: str(v) for k, v in ids.items() if v is not None})


def start(**ids: object) -> None:
    """A new context: only these ids."""
    structlog.contextvars.clear_contextvars()
    bind(**ids)


def current_request_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("request_id")
