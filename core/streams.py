"""The live events of jobs and versions (GET /api/jobs/{id}/events, /api/versions/{id}/events):
each row has a Redis stream of its own, appended to by whoever moves it or logs for it, and read
by the API's event streams (api/live.py), which resume after any entry by its id.

    status  the row's fields, as committed, at each move (queued, running, each end)
    log     one line the build or the model printed, with its time
    output  one chunk a streaming predict yielded, with its index
    done    the row's fields once it ended: the last entry

Like the notices of core/events.py, entries are a live view beside the record, the row: an
append that fails is logged and the work goes on, and a stream that lost its end (Redis
restarted, or the stream expired MODELFARM_EVENTS_KEPT_HOURS after its last entry) ends with
the row as the database has it. A row's log lines are capped (MAX_LOG_LINES, then one line
saying so); its whole log stays in object storage.
"""

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Literal

import redis

from core import deadlines
from core.lifecycle import lifecycle_of
from core.settings import settings

logger = logging.getLogger(__name__)

Kind = Literal["job", "version"]
STATUS, LOG, OUTPUT, DONE = "status", "log", "output", "done"
MAX_LOG_LINES = 5000
MAX_LINE_CHARS = 4096
MAX_ENTRIES = 50_000  # a bound for Redis: log lines are capped, a streaming predict's chunks not

_redis = deadlines.redis_client()


def key(kind: Kind, row_id: uuid.UUID | str) -> str:
    return f"modelfarm:events:{kind}:{row_id}"


def fields_of(row: object) -> dict:
    """The row's columns by name: what a status entry carries (the API shows its public ones)."""
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def status(kind: Kind, row: object) -> None:
    """A status entry for the row as it was just committed (the row, or fields_of it taken
    before the commit); and done when it has ended."""
    fields = row if isinstance(row, dict) else fields_of(row)
    entries: list[tuple[str, object]] = [(STATUS, fields)]
    if fields["status"] in lifecycle_of(fields["status"]).terminal:
        entries.append((DONE, fields))
    _append(kind, fields["id"], entries)


def output(kind: Kind, row_id: uuid.UUID | str, index: int, chunk: object) -> None:
    _append(kind, row_id, [(OUTPUT, {"index": index, "chunk": chunk})])


def _append(kind: Kind, row_id: uuid.UUID | str, entries: list[tuple[str, object]]) -> None:
    stream = key(kind, row_id)
    try:
        with _redis.pipeline(transaction=False) as pipe:
            for event, data in entries:
                payload = json.dumps(data, default=_json_value)
                pipe.xadd(stream, {"event": event, "data": payload}, maxlen=MAX_ENTRIES)
            pipe.expire(stream, settings.events_kept_hours * 3600)
            pipe.execute()
    except redis.RedisError:
        logger.warning("could not append %d events of %s %s", len(entries), kind, row_id,
                       exc_info=True)  # fmt: skip


def _json_value(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)  # and UUIDs


def decode(entry: dict) -> tuple[str, object]:
    """An entry as read back: its event and its data."""
    return entry[b"event"].decode(), json.loads(entry[b"data"])


class LogLines:
    """Appends what a build or a model prints as log entries, a whole line each, with the time
    it was printed; partial lines wait for their end (or close()). Past MAX_LOG_LINES one
    more line says the rest is in the log file."""

    def __init__(self, kind: Kind, row_id: uuid.UUID | str) -> None:
        self.kind, self.row_id = kind, row_id
        self.partial = ""
        self.count = 0

    def __call__(self, text: str) -> None:
        *lines, self.partial = (self.partial + text).split("\n")
        self._send(lines)

    def close(self) -> None:
        if self.partial:
            self._send([self.partial])
            self.partial = ""

    def _send(self, lines: list[str]) -> None:
        room = MAX_LOG_LINES - self.count
        if not lines or room < 0:
            return
        kept = lines[:room]
        if len(lines) > room:
            kept.append(f"[more than {MAX_LOG_LINES} lines: the rest is in the {self.kind}'s log]")
        self.count += len(lines)
        now = datetime.now(UTC)
        entries = [(LOG, {"line": line[:MAX_LINE_CHARS], "time": now}) for line in kept]
        _append(self.kind, self.row_id, entries)
