"""The lifecycle of versions and jobs: statuses, which are terminal, the allowed moves, and the
steps the workers take on them.

    version  UPLOADING -> QUEUED -> BUILDING -> READY | FAILED
    job      UPLOADING -> QUEUED -> RUNNING  -> SUCCEEDED | FAILED
             and from any of the first three -> CANCELED, at its owner's request

A row found still BUILDING/RUNNING when its work starts was left by a worker that died (or was
cut off): it is started again, up to MAX_ATTEMPTS times, then failed with the reason. Each start
counts an attempt, and the attempt's number is its fencing token: an outcome is written only by
the attempt that started last, so a worker that lost its claim (cut off, then back) and finishes
late can never overwrite the outcome of the worker that took over.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from core.db import session_scope

if TYPE_CHECKING:
    from core.models import Job, ModelVersion

MAX_ATTEMPTS = 3


def utcnow() -> datetime:
    return datetime.now(UTC)


class VersionStatus(enum.StrEnum):
    UPLOADING = "UPLOADING"
    QUEUED = "QUEUED"
    BUILDING = "BUILDING"
    READY = "READY"
    FAILED = "FAILED"


class JobStatus(enum.StrEnum):
    UPLOADING = "UPLOADING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


@dataclass(frozen=True)
class Lifecycle:
    """One state machine: waiting for its upload, queued, in progress, then one of its ends
    (succeeded, failed, and canceled for the lifecycles that can be canceled)."""

    what: str  # "version", "job": also the prefix of its claim and the words of its messages
    worker: str
    uploading: enum.StrEnum
    queued: enum.StrEnum
    running: enum.StrEnum
    succeeded: enum.StrEnum
    failed: enum.StrEnum
    canceled: enum.StrEnum | None = None

    @property
    def active(self) -> frozenset[str]:
        """Queued or in progress: work the farm has yet to finish."""
        return frozenset({self.queued, self.running})

    @property
    def terminal(self) -> frozenset[str]:
        return frozenset({self.succeeded, self.failed, self.canceled} - {None})

    @property
    def transitions(self) -> dict[str, frozenset[str]]:
        cancel = {self.canceled} - {None}
        moves = {
            self.uploading: frozenset({self.queued, *cancel}),
            # A queued row may fail without running: too many attempts, or the farm gave up.
            self.queued: frozenset({self.running, self.failed, *cancel}),
            # running -> running: a retry after the worker died takes the row over.
            self.running: frozenset({self.running, self.succeeded, self.failed, *cancel}),
        }
        return moves | {end: frozenset() for end in self.terminal}

    def can_move(self, source: str, target: str) -> bool:
        return target in self.transitions[source]

    def sources(self, target: str) -> list[str]:
        """The statuses a row may move to target from."""
        return [source for source in self.transitions if self.can_move(source, target)]


VERSION = Lifecycle(
    "version", "build worker", VersionStatus.UPLOADING, VersionStatus.QUEUED,
    VersionStatus.BUILDING, VersionStatus.READY, VersionStatus.FAILED,
)  # fmt: skip
JOB = Lifecycle(
    "job", "inference worker", JobStatus.UPLOADING, JobStatus.QUEUED,
    JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED,
)  # fmt: skip


class IllegalTransition(Exception):
    pass


def move(lifecycle: Lifecycle, row: ModelVersion | Job, target) -> None:
    if not lifecycle.can_move(row.status, target):
        raise IllegalTransition(f"{lifecycle.what} {row.id}: {row.status} -> {target}")
    row.status = target


def lifecycle_of(status: enum.StrEnum) -> Lifecycle:
    return VERSION if isinstance(status, VersionStatus) else JOB


def too_many_attempts(lifecycle: Lifecycle, attempts: int) -> str:
    return (
        f"The {lifecycle.worker} stopped {attempts} times during this {lifecycle.what} (out of "
        "memory or restarted); submit it again to retry."
    )


def begin(session: Session, table: type, row_id: uuid.UUID) -> ModelVersion | Job | None:
    """Moves the row to running, in one statement: a queued row, or one a dead worker left
    running with attempts left. None when there is nothing (more) to do; a row out of attempts
    is failed with the reason.

    The move is committed without waiting for the disk (PostgreSQL's asynchronous commit): were
    the database to lose it in a crash, the row would be queued again, and the outcome's
    commit, which does wait, makes this one durable first."""
    lifecycle = lifecycle_of(table.status.type.enum_class.QUEUED)
    sources = lifecycle.sources(lifecycle.running)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))
    row = session.scalars(
        update(table)
        .where(table.id == row_id, table.status.in_(sources), table.attempts < MAX_ATTEMPTS)
        .values(status=lifecycle.running, attempts=table.attempts + 1, started_at=utcnow())
        .returning(table)
    ).one_or_none()
    if row is None:
        row = session.get(table, row_id, with_for_update=True)
        if row is not None and row.status in sources and row.attempts >= MAX_ATTEMPTS:
            fail(lifecycle, row, too_many_attempts(lifecycle, row.attempts))
        return None
    return row


def fail(lifecycle: Lifecycle, row: ModelVersion | Job, error: str) -> None:
    move(lifecycle, row, lifecycle.failed)
    row.error = error
    row.finished_at = utcnow()


def finish(
    table: type, row_id: uuid.UUID, *, attempt: int, status, **fields
) -> ModelVersion | Job | None:
    """Moves the row to its final status, with the outcome's fields, in one statement; once,
    and only from the attempt that started last: a row already ended (such as by a duplicate
    delivery, or canceled meanwhile), taken over by a later attempt, or deleted is left as it
    is. The row as committed, or None when it was left."""
    lifecycle = lifecycle_of(status)
    if status not in lifecycle.terminal:
        raise IllegalTransition(f"{lifecycle.what} {row_id}: finished as {status}")
    sources = lifecycle.sources(status)
    with session_scope() as session:
        return session.scalars(
            update(table)
            .where(table.id == row_id, table.status.in_(sources), table.attempts == attempt)
            .values(status=status, finished_at=utcnow(), **fields)
            .returning(table)
        ).one_or_none()
