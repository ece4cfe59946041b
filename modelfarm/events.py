"""Live events of a job or a version (GET /api/jobs/{id}/events, /api/versions/{id}/events),
read with httpx-sse: each as an Event, until `done`; a dropped connection is resumed after the
last event received (Last-Event-ID), so nothing is lost or seen twice."""

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from httpx_sse import connect_sse

from modelfarm.errors import ApiError

RECONNECTS = 5
# The API sends a `: ping` at least every 15 s: a minute without a byte is a dead connection.
QUIET_S = 60


@dataclass(frozen=True)
class Event:
    event: str  # status, log or done (api/routes/events.py)
    id: str
    data: dict


def follow(http: httpx.Client, path: str, after: str | None = None) -> Iterator[Event]:
    """The events at `path` after the id `after` (from the first without it), until done or
    the row is gone; ApiError for an error answer."""
    dropped = 0
    while True:
        headers = {"Last-Event-ID": after} if after else {}
        try:
            with connect_sse(
                http, "GET", path, headers=headers, timeout=httpx.Timeout(QUIET_S)
            ) as source:
                if source.response.is_error:
                    source.response.read()
                    raise ApiError.of(source.response)
                for sent in source.iter_sse():
                    event = Event(sent.event, sent.id, json.loads(sent.data))
                    after = event.id
                    yield event
                    if event.event == "done":
                        return
                return
        except httpx.TransportError:
            dropped += 1
            if dropped > RECONNECTS:
                raise
            time.sleep(1)
