"""Webhook deliveries (core/webhooks.py says what is sent): one attempt at a time, each recorded,
retried by the task (workers/tasks.py) after MODELFARM_WEBHOOK_RETRY_DELAYS_S until the
receiver answers 2xx. The job's or version's own state never depends on the receiver.

Messages of ends that were never queued (the process that ended the row died first, or Redis
was down) are found by the reconciler through `lost_messages`, and sent.
"""

import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from sqlalchemy import exists, func, select
from standardwebhooks import Webhook

from core import queue, webhooks
from core.db import session_scope
from core.lifecycle import utcnow
from core.models import WebhookAttempt
from core.settings import settings
from core.webhooks import Event, Kind

logger = structlog.get_logger(__name__)
USER_AGENT = "modelfarm-webhooks"
# A completed message with no attempt this long after its row ended is taken as lost; one older
# than a day is not sent any more.
LOST_AFTER = timedelta(seconds=60)
GIVEN_UP_AFTER = timedelta(days=1)
# Begins the error of an attempt the farm did not make: the destination is not allowed.
_REFUSED = "Not sent: "
# The recorded error of every attempt that got no answer: whether the connection was refused,
# reset or timed out would tell the user which ports of the target are open.
UNREACHABLE = "The receiver could not be reached."


@dataclass(frozen=True)
class Message:
    id: str
    url: str
    body: str
    secret: str
    attempt: int


def deliver(row_id: uuid.UUID, kind: Kind, event: Event) -> bool:
    """One attempt at the row's message for the event, recorded. False: try again later;
    True: delivered, refused for good, or nothing (more) to send."""
    message = _message(row_id, kind, event)
    if message is None:
        return True
    status_code, error = _post(message)
    with session_scope() as session:
        session.add(
            WebhookAttempt(
                message_id=message.id, event=event, attempt=message.attempt,
                status_code=status_code, error=error, **{f"{kind}_id": row_id},
            )
        )  # fmt: skip
    logger.info("webhook attempt", message_id=message.id, attempt=message.attempt,
                status_code=status_code, error=error)  # fmt: skip
    return error is None or error.startswith(_REFUSED)


def _message(row_id: uuid.UUID, kind: Kind, event: Event) -> Message | None:
    """The message to send, or None: the row is gone, wants no such webhook, or has had it."""
    message_id = webhooks.message_id(kind, row_id, event)
    with session_scope() as session:
        row = session.get(webhooks.TABLES[kind], row_id)
        if row is None or not row.webhook or event not in (row.webhook_events or ()):
            return None
        of_message = WebhookAttempt.message_id == message_id
        delivered = session.scalar(
            select(exists().where(of_message, WebhookAttempt.status_code.between(200, 299)))
        )
        if delivered:
            return None
        owner_id = row.owner_id if kind == "job" else row.model.owner_id
        return Message(
            id=message_id, url=row.webhook, body=webhooks.body(kind, row, event),
            secret=webhooks.secret_of(session, owner_id),
            attempt=session.scalar(select(func.count()).where(of_message)) + 1,
        )  # fmt: skip


def _post(message: Message) -> tuple[int | None, str | None]:
    """Sends the message to the address checked just now; (status code, error)."""
    try:
        address = webhooks.destination(message.url)
    except webhooks.Refused as refused:
        return None, f"{_REFUSED}{refused}"
    parts = urllib.parse.urlsplit(message.url)
    host = f"[{address}]" if ":" in address else address
    target = parts._replace(
        netloc=f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    )
    now = datetime.now(UTC)
    headers = {
        "host": parts.netloc, "content-type": "application/json", "user-agent": USER_AGENT,
        "webhook-id": message.id, "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(message.secret).sign(message.id, now, message.body),
    }  # fmt: skip
    # The name stays the TLS server name, so the certificate is checked against it.
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    try:
        with httpx.Client(timeout=settings.webhook_timeout_s, trust_env=False) as client:
            request = client.build_request("POST", target.geturl(), content=message.body,
                                           headers=headers, extensions=extensions)  # fmt: skip
            response = client.send(request, follow_redirects=False)
    except httpx.HTTPError as error:
        logger.info("webhook receiver unreachable", message_id=message.id,
                    reason=f"{type(error).__name__}: {error or 'no answer'}")  # fmt: skip
        return None, UNREACHABLE
    if response.is_success:
        return response.status_code, None
    if response.is_redirect:
        return response.status_code, "The receiver answered with a redirect, which is not followed."
    return response.status_code, f"The receiver answered {response.status_code}."


def lost_messages() -> list[tuple[str, Kind]]:
    """(row id, kind) of rows that ended a while ago, want a completed webhook, and have had no
    attempt at it, nor a message waiting in the queue."""
    now = utcnow()
    found: list[tuple[str, Kind]] = []
    for kind, table in webhooks.TABLES.items():
        column = getattr(WebhookAttempt, f"{kind}_id")
        with session_scope() as session:
            rows = session.execute(
                select(table.id, table.webhook_events).where(
                    table.webhook.is_not(None),
                    table.finished_at.between(now - GIVEN_UP_AFTER, now - LOST_AFTER),
                    ~exists().where(column == table.id, WebhookAttempt.event == "completed"),
                )
            ).all()
        found += [(str(row_id), kind) for row_id, events in rows if "completed" in events]
    waiting = queue.waiting_ids(queue.WEBHOOK_QUEUE) if found else set()
    return [(row_id, kind) for row_id, kind in found if row_id not in waiting]
