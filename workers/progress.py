"""The shared part of the version and job state machines, as the workers drive them.

    QUEUED -> BUILDING/RUNNING -> READY/SUCCEEDED | FAILED

A row found still BUILDING/RUNNING was left by a worker that died: it is started again, up to
MAX_ATTEMPTS times, then failed with the reason.
"""

import uuid

from sqlalchemy.orm import Session

from core.db import session_scope
from core.models import Job, ModelVersion, utcnow

MAX_ATTEMPTS = 3
Table = type[ModelVersion] | type[Job]


def begin(
    session: Session, table: Table, row_id: uuid.UUID, *, queued, running, failed, worker: str
) -> ModelVersion | Job | None:
    """Locks the row and moves it to `running`; None when there is nothing (more) to do."""
    row = session.get(table, row_id, with_for_update=True)
    if row is None or row.status not in (queued, running):
        return None
    if row.attempts >= MAX_ATTEMPTS:
        row.status = failed
        row.error = (
            f"The {worker} stopped {row.attempts} times during this work (out of memory or "
            "restarted); submit it again to retry"
        )
        row.finished_at = utcnow()
        return None
    row.status = running
    row.attempts += 1
    row.started_at = utcnow()
    return row


def finish(table: Table, row_id: uuid.UUID, *, status, **fields) -> None:
    """Moves the row to its final status, with the outcome's fields."""
    with session_scope() as session:
        row = session.get(table, row_id)
        row.status = status
        row.finished_at = utcnow()
        for name, value in fields.items():
            setattr(row, name, value)
