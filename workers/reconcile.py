"""The reconciler: finds work that nobody will do and gets it done (run by Celery beat).

A message can be lost (Redis restarted without its append-only file, a send that failed after
the commit) and a worker can die without a successor on its host. Every pass:
- a row QUEUED for longer than MODELFARM_RECONCILE_QUEUED_S whose task is not waiting in its
  queue is sent again;
- a row BUILDING/RUNNING whose claim has expired (its worker is gone) is sent again, so another
  worker takes it over, or failed when it has used up its attempts;
- a row that ended a minute ago or more, whose completed webhook was never attempted, has it
  sent (workers/webhooks.py);
- expired job files and abandoned uploads are removed (workers/retention.py).
A duplicate send is harmless: the claim and the lifecycle make the second delivery a no-op.
"""

import logging
import uuid
from datetime import timedelta

from sqlalchemy import select

from core import deadlines, queue
from core.db import session_scope
from core.lifecycle import JOB, MAX_ATTEMPTS, VERSION, Lifecycle, fail, too_many_attempts, utcnow
from core.models import Job, ModelVersion
from core.settings import settings
from core.webhooks import notify, wanted
from workers import leases, retention, webhooks

logger = logging.getLogger(__name__)
PIPELINES = ((VERSION, ModelVersion, queue.BUILD_TASK), (JOB, Job, queue.RUN_TASK))
_redis = deadlines.redis_client()


def reconcile() -> dict[str, int]:
    """One pass over both pipelines; returns what it did, by kind, for the log."""
    done = {"resent_queued": 0, "taken_over": 0, "failed": 0, "webhooks": 0}
    for lifecycle, table, task in PIPELINES:
        for row_id in _lost_messages(lifecycle, table, task):
            _send_once(task, row_id, within_s=settings.reconcile_queued_s)
            done["resent_queued"] += 1
        for row_id, attempts in _orphans(lifecycle, table):
            if attempts >= MAX_ATTEMPTS:
                done["failed"] += _fail_exhausted(lifecycle, table, row_id)
            elif _send_once(task, row_id, within_s=leases.LEASE_TTL_S):
                done["taken_over"] += 1
    for row_id, kind in webhooks.lost_messages():
        if _send_once(queue.WEBHOOK_TASK, row_id, kind, "completed", within_s=300):
            done["webhooks"] += 1
    done |= retention.sweep()
    if any(done.values()):
        logger.warning("reconciler: %s", done)
    return done


def _lost_messages(lifecycle: Lifecycle, table, task: str) -> list[uuid.UUID]:
    """Rows queued for a while whose task is not waiting in the queue."""
    since = utcnow() - timedelta(seconds=settings.reconcile_queued_s)
    with session_scope() as session:
        stale = session.scalars(
            select(table.id).where(table.status == lifecycle.queued, table.queued_at < since)
        ).all()
    waiting = queue.waiting_ids(queue.ROUTES[task]) if stale else set()
    return [row_id for row_id in stale if str(row_id) not in waiting]


def _orphans(lifecycle: Lifecycle, table) -> list[tuple[uuid.UUID, int]]:
    """Rows in progress that no live worker claims."""
    with session_scope() as session:
        rows = session.execute(
            select(table.id, table.attempts).where(table.status == lifecycle.running)
        ).all()
    return [
        (row_id, attempts)
        for row_id, attempts in rows
        if not leases.is_held(leases.claim_name(lifecycle.what, row_id))
    ]


def _send_once(task: str, row_id: uuid.UUID | str, *more: str, within_s: int) -> bool:
    """Sends the row's task unless this reconciler sent it within the last within_s seconds."""
    if not _redis.set(f"modelfarm:resent:{task}:{row_id}", 1, nx=True, ex=within_s):
        return False
    logger.warning("reconciler: sending %s for %s again", task, row_id)
    queue.send(task, str(row_id), *more)
    return True


def _fail_exhausted(lifecycle: Lifecycle, table, row_id: uuid.UUID) -> int:
    with session_scope() as session:
        row = session.get(table, row_id, with_for_update=True)
        if row.status != lifecycle.running or row.attempts < MAX_ATTEMPTS:
            return 0
        fail(lifecycle, row, too_many_attempts(lifecycle, row.attempts))
    # once committed: the message reads the ended row
    notify(lifecycle.what, row_id, wanted(row), "completed")
    return 1
