"""Celery tasks: thin wrappers that take ids and call the pipelines.

Each task claims its version or job first. A duplicate delivery finds the claim held and retries
later, by which time the work is done and the retry ends at once; a delivery after a worker died
waits for the dead worker's claim to expire and then takes the work over. Work whose message or
worker was lost altogether is found again by the reconciler (workers/reconcile.py).
"""

import logging
import shlex
import subprocess
import uuid

from celery.signals import worker_ready

from core.lifecycle import JOB, VERSION
from core.queue import (
    BUILD_QUEUE,
    BUILD_TASK,
    INFERENCE_QUEUE,
    RECONCILE_TASK,
    REGISTRY_GC_TASK,
    RUN_TASK,
    WARM_TASK,
    WEBHOOK_TASK,
    celery_app,
)
from core.settings import settings
from workers import images, leases, reconcile, webhooks, workdirs
from workers.build import builder
from workers.run import cancels, inference, prepull, sandbox

logger = logging.getLogger(__name__)
# Enough retries to outwait a live duplicate for the whole time limit.
_MAX_BUSY_RETRIES = (
    max(settings.build_time_limit_s, settings.job_time_limit_s) // (leases.LEASE_TTL_S) + 5
)
# The pipelines' own retries of farm faults come on top of the work itself.
_RETRY_ALLOWANCE_S = int(settings.farm_retry_window_s) * 2 + 120


@celery_app.task(
    name=BUILD_TASK,
    bind=True,
    max_retries=_MAX_BUSY_RETRIES,
    soft_time_limit=settings.build_time_limit_s + _RETRY_ALLOWANCE_S,
    time_limit=settings.build_time_limit_s + _RETRY_ALLOWANCE_S + 60,
)
def build_version(self, version_id: str) -> None:
    try:
        with leases.claim(leases.claim_name(VERSION.what, version_id)):
            builder.build_version(uuid.UUID(version_id))
    except leases.Busy:
        raise self.retry(countdown=leases.LEASE_TTL_S) from None


@celery_app.task(
    name=RUN_TASK,
    bind=True,
    max_retries=_MAX_BUSY_RETRIES,
    soft_time_limit=settings.job_time_limit_s + _RETRY_ALLOWANCE_S,
    time_limit=settings.job_time_limit_s + _RETRY_ALLOWANCE_S + 60,
)
def run_job(self, job_id: str) -> None:
    try:
        with leases.claim(leases.claim_name(JOB.what, job_id)):
            inference.run_job(uuid.UUID(job_id))
    except leases.Busy:
        raise self.retry(countdown=leases.LEASE_TTL_S) from None


@celery_app.task(name=WARM_TASK, ignore_result=True)
def warm_version(version_id: str, user_id: str) -> None:
    inference.prewarm(uuid.UUID(version_id), uuid.UUID(user_id))


@celery_app.task(name=WEBHOOK_TASK, bind=True, max_retries=len(settings.webhook_retry_delays_s))
def send_webhook(self, row_id: str, kind: str, event: str) -> None:
    if not webhooks.deliver(uuid.UUID(row_id), kind, event):
        retries = self.request.retries
        if retries < len(settings.webhook_retry_delays_s):
            raise self.retry(countdown=settings.webhook_retry_delays_s[retries])


@celery_app.task(name=RECONCILE_TASK)
def reconcile_now() -> dict[str, int]:
    return reconcile.reconcile()


@celery_app.task(name=REGISTRY_GC_TASK)
def collect_registry_garbage() -> None:
    """Runs the registry's garbage collection (scripts/registry_gc.sh): its output goes to the
    worker's log, and a failure is the task's."""
    if settings.registry_gc_command:
        subprocess.run(shlex.split(settings.registry_gc_command), check=True, timeout=1800)


@worker_ready.connect
def remove_leftovers(sender=None, **_kwargs) -> None:
    """Remove the sandbox containers and scratch folders a dead predecessor left on this host
    (its work in progress is taken over through the reconciler once its claims expire), and
    start listening for cancels (and READY versions to pre-pull) on an inference worker."""
    queues = {queue.name for queue in sender.task_consumer.queues} & {BUILD_QUEUE, INFERENCE_QUEUE}
    if not queues:
        return  # the reconciler runs no sandboxes
    if INFERENCE_QUEUE in queues:
        cancels.start_listener()
        prepull.start()
    client = images.docker_client()
    try:
        for queue in queues:
            containers = sandbox.remove_leftovers(client, sandbox.owner_for(queue))
            folders = workdirs.remove_leftovers(queue)
            if containers or folders:
                logger.warning(
                    "removed %d leftover sandboxes and %d scratch entries", containers, folders
                )
    finally:
        client.close()
