"""Webhooks, as the Standard Webhooks spec says (https://www.standardwebhooks.com).

A job or a build started with `webhook` (an http or https URL) and `webhook_events` ("start",
"completed"; by default "completed") has its row POSTed there as JSON when it starts and when it
ends: `{"type": "job.completed", "timestamp": ..., "data": {...}}`, signed with its owner's
secret (`whsec_...`). Each message's `webhook-id` is the same on every attempt, so a receiver
can tell a retry from a new message. Deliveries are the workers' (workers/webhooks.py); this
module holds what the API and the workers share: the destination check, the secret, the body.

A destination is checked when the webhook is given and again at every attempt (a name can
resolve elsewhere by then), and the attempt goes to the address that was checked: never to
loopback, private, link-local (cloud metadata) or other non-public addresses, except loopback
and private ones with MODELFARM_WEBHOOK_ALLOW_PRIVATE.
"""

import base64
import ipaddress
import json
import logging
import secrets
import socket
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import events, inputs, queue
from core.endpoints import is_farm_service
from core.models import Job, ModelVersion, User
from core.settings import settings

logger = logging.getLogger(__name__)

Event = Literal["start", "completed"]
DEFAULT_EVENTS: list[Event] = ["completed"]
Kind = Literal["job", "version"]
SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
TABLES: dict[str, type] = {"job": Job, "version": ModelVersion}
_FIELDS = {
    "job": events.ENDED_FIELDS,
    "version": (
        "id", "model_id", "number", "status", "image_ref", "image_digest", "reused", "error",
        "input_schema", "created_at", "queued_at", "started_at", "finished_at", "webhook",
        "webhook_events",
    ),
}  # fmt: skip
# The moment each event stands for: the message's timestamp.
_WHEN = {"start": "started_at", "completed": "finished_at"}

Resolver = Callable[[str, int], list[str]]


class Refused(ValueError):
    """A destination the farm does not send to; the message says why, as a whole sentence."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def message_id(kind: Kind, row_id: uuid.UUID | str, event: Event) -> str:
    """The webhook-id of the row's message for the event: the same on every attempt."""
    return f"msg_{kind}_{row_id}_{event}"


def _resolve(host: str, port: int) -> list[str]:
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in found})


def destination(url: str, *, resolve: Resolver = _resolve) -> str:
    """The address to send url's webhooks to, once every address its host resolves to is
    allowed; Refused otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"The webhook {url!r} is not an http or https URL with a host.")
    if parts.username is not None or parts.password is not None:
        raise Refused("The webhook URL carries a user name or password; put no credentials in it.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = resolve(parts.hostname, port)
    except (OSError, UnicodeError, ValueError):
        addresses = []
    if not addresses:
        raise Refused(f"The webhook's host {parts.hostname!r} cannot be resolved.")
    for address in addresses:
        reason = _forbidden(ipaddress.ip_address(address.split("%")[0]), port)
        if reason:
            raise Refused(
                f"The webhook's host {parts.hostname!r} resolves to {address}, {reason}; "
                "webhooks are sent to public addresses only."
            )
    return addresses[0]


# IPv6 prefixes that carry an IPv4 address a gateway forwards to: NAT64's well-known prefix
# (RFC 6052: the address in the last 32 bits); 6to4 and Teredo are read by ipaddress itself.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _carried(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo's client, NAT64)."""
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and (carried := _carried(ip)) is not None:
        ip = carried  # judged by the IPv4 address it reaches
    if is_farm_service(ip, port):
        return f"where one of the farm's own services listens on port {port}"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "not an address of one host"
    if ip.is_loopback or ip.is_private or not ip.is_global:
        return None if settings.webhook_allow_private else "a loopback or private address"
    return None


def body(kind: Kind, row: Job | ModelVersion, event: Event) -> str:
    """The message: the row's public fields as they are now."""
    data = {name: getattr(row, name) for name in _FIELDS[kind]}
    if kind == "job":
        data["inputs"] = inputs.public(data["inputs"])
    message = {"type": f"{kind}.{event}", "timestamp": getattr(row, _WHEN[event]), "data": data}
    return json.dumps(message, default=_json_value)


def _json_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)  # and UUIDs


def secret_of(session: Session, user_id: uuid.UUID) -> str:
    """The user's signing secret, made on first use."""
    session.execute(
        update(User)
        .where(User.id == user_id, User.webhook_secret.is_(None))
        .values(webhook_secret=new_secret())
    )
    return session.scalar(select(User.webhook_secret).where(User.id == user_id))


def wanted(row: Job | ModelVersion) -> list[str]:
    """The events the row's webhook is sent for; none without a webhook."""
    return list(row.webhook_events or ()) if row.webhook else []


def notify(kind: Kind, row_id: uuid.UUID, wanted_events: list[str], event: Event) -> None:
    """Asks for the row's webhook for the event, when its webhook wants it; called once the
    event is committed. A completed message that cannot be queued now is sent by the reconciler
    (workers/webhooks.py)."""
    if event not in wanted_events:
        return
    try:
        queue.send_webhook(str(row_id), kind, event)
    except Exception:
        logger.warning("could not queue the %s webhook of %s %s", event, kind, row_id,
                       exc_info=True)  # fmt: skip
