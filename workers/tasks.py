"""Celery tasks: thin wrappers that take ids and call the pipelines.

Each task claims its version or job first. A duplicate delivery finds the claim held and retries
later, by which time the work is done and the retry ends at once; a delivery after a worker died
waits for the dead worker's claim to expire and then takes the work over.
"""

import logging
import uuid

from celery.signals import worker_ready
from sqlalchemy import select

from core.db import session_scope
from core.models import Job, JobStatus, ModelVersion, VersionStatus
from core.settings import settings
from workers import builder, images, inference, leases, sandbox
from workers.celery_app import BUILD_QUEUE, BUILD_TASK, INFERENCE_QUEUE, RUN_TASK, celery_app

logger = logging.getLogger(__name__)
# Enough retries to outwait a live duplicate for the whole time limit.
_MAX_BUSY_RETRIES = (
    max(settings.build_time_limit_s, settings.job_time_limit_s) // (leases.LEASE_TTL_S) + 5
)


@celery_app.task(
    name=BUILD_TASK,
    bind=True,
    max_retries=_MAX_BUSY_RETRIES,
    soft_time_limit=settings.build_time_limit_s + 120,
    time_limit=settings.build_time_limit_s + 180,
)
def build_version(self, version_id: str) -> None:
    try:
        with leases.claim(f"version:{version_id}"):
            builder.build_version(uuid.UUID(version_id))
    except leases.Busy:
        raise self.retry(countdown=leases.LEASE_TTL_S) from None


@celery_app.task(
    name=RUN_TASK,
    bind=True,
    max_retries=_MAX_BUSY_RETRIES,
    soft_time_limit=settings.job_time_limit_s,
    time_limit=settings.job_time_limit_s + 60,
)
def run_job(self, job_id: str) -> None:
    try:
        with leases.claim(f"job:{job_id}"):
            inference.run_job(uuid.UUID(job_id))
    except leases.Busy:
        raise self.retry(countdown=leases.LEASE_TTL_S) from None


@worker_ready.connect
def recover_after_restart(sender=None, **_kwargs) -> None:
    """Re-queue work a dead worker left in progress and remove its sandbox containers."""
    queues = {queue.name for queue in sender.task_consumer.queues}
    client = images.docker_client()
    try:
        for queue in queues:
            removed = sandbox.remove_leftovers(client, sandbox.owner_for(queue))
            if removed:
                logger.warning("removed %d leftover sandbox containers", removed)
    finally:
        client.close()
    if BUILD_QUEUE in queues:
        _requeue(ModelVersion, VersionStatus.BUILDING, "version", build_version)
    if INFERENCE_QUEUE in queues:
        _requeue(Job, JobStatus.RUNNING, "job", run_job)


def _requeue(table, in_progress, what: str, task) -> None:
    """Sends a task for every row left in progress. One that a live worker elsewhere is still
    running finds the claim held, retries, and ends once that worker has finished."""
    with session_scope() as session:
        ids = session.scalars(select(table.id).where(table.status == in_progress)).all()
    for row_id in ids:
        logger.warning("re-queueing %s %s left in progress", what, row_id)
        task.delay(str(row_id))
