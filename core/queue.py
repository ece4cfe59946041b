"""The queue contract: queue and task names, routing, and the verbs that send work.

The API sends tasks by name through this module and never imports the workers; the workers'
Celery application (workers/celery_app.py) is this one, with the task code included.
"""

import base64
import json

import redis
from celery import Celery
from kombu import Queue

from core import deadlines, logs
from core.settings import settings

BUILD_QUEUE = "build"
INFERENCE_QUEUE = "inference"
# Housekeeping (the reconciler): a queue of its own, so a long build never delays it.
CONTROL_QUEUE = "control"
# Webhook deliveries: a queue of their own, so a slow receiver never delays the reconciler.
WEBHOOK_QUEUE = "webhooks"

BUILD_TASK = "modelfarm.build_version"
RUN_TASK = "modelfarm.run_job"
RECONCILE_TASK = "modelfarm.reconcile"
WARM_TASK = "modelfarm.warm_version"
WEBHOOK_TASK = "modelfarm.send_webhook"
REGISTRY_GC_TASK = "modelfarm.collect_registry_garbage"

ROUTES = {
    BUILD_TASK: BUILD_QUEUE,
    RUN_TASK: INFERENCE_QUEUE,
    WARM_TASK: INFERENCE_QUEUE,
    RECONCILE_TASK: CONTROL_QUEUE,
    REGISTRY_GC_TASK: CONTROL_QUEUE,
    WEBHOOK_TASK: WEBHOOK_QUEUE,
}

celery_app = Celery("modelfarm", broker=settings.redis_url)
celery_app.conf.update(
    task_queues=[
        Queue(name) for name in (BUILD_QUEUE, INFERENCE_QUEUE, CONTROL_QUEUE, WEBHOOK_QUEUE)
    ],
    task_routes={task: {"queue": queue} for task, queue in ROUTES.items()},
    # A task is acknowledged only when it has finished, and handed back to the queue when its
    # worker dies, so a crash never loses work. The tasks are idempotent for that reason.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # Redis re-delivers an unacknowledged task after this long: it must exceed the longest task.
    # The reconciler takes over work whose claim expired long before that.
    # A send or a consumer's call to a hung Redis gives up after the request deadline; a send is
    # tried once more at once (a pooled connection broken by a restart is replaced), no more.
    broker_transport_options={
        "visibility_timeout": max(settings.build_time_limit_s, settings.job_time_limit_s) + 60,
        "socket_timeout": settings.request_deadline_s,
        "socket_connect_timeout": settings.request_deadline_s,
    },
    task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0},
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    beat_schedule={
        "reconcile": {
            "task": RECONCILE_TASK,
            "schedule": float(settings.reconcile_interval_s),
            # A pass nobody ran in time is dropped: the next one does the same work.
            "options": {"expires": float(settings.reconcile_interval_s)},
        },
    }
    | (
        {
            "registry-gc": {
                "task": REGISTRY_GC_TASK,
                "schedule": float(settings.registry_gc_interval_s),
                "options": {"expires": float(settings.registry_gc_interval_s)},
            }
        }
        if settings.registry_gc_interval_s
        else {}
    ),
)


def send(task: str, row_id: str, *more: str) -> None:
    """Sends a task, carrying the request id of the request that sends it (core/logs.py)."""
    request_id = logs.current_request_id()
    headers = {"request_id": request_id} if request_id else None
    deadlines.RedisOutage.check()
    try:
        celery_app.send_task(task, args=[row_id, *more], queue=ROUTES[task], headers=headers)
    except Exception:  # whatever the broker client raises: the next sends fail at once
        deadlines.RedisOutage.mark()
        raise


def send_build(version_id: str) -> None:
    send(BUILD_TASK, version_id)


def send_run(job_id: str) -> None:
    send(RUN_TASK, job_id)


def send_warm(version_id: str, user_id: str) -> None:
    """Asks an inference worker to start a warm container of the version for the user."""
    send(WARM_TASK, version_id, user_id)


def send_webhook(row_id: str, kind: str, event: str) -> None:
    """Asks for the row's webhook to be sent for the event (core/webhooks.py)."""
    send(WEBHOOK_TASK, row_id, kind, event)


def waiting_ids(queue: str) -> set[str]:
    """The row ids of the tasks waiting in `queue`, not yet taken by a worker.

    Reads the Redis transport's layout: the queue is a list of JSON envelopes whose body is the
    base64 JSON of [args, kwargs, embed], and every farm task takes a row id as its first arg.
    """
    ids = set()
    for raw in _redis().lrange(queue, 0, -1):
        try:
            envelope = json.loads(raw)
            args = json.loads(base64.b64decode(envelope["body"]))[0]
            ids.add(str(args[0]))
        except (ValueError, KeyError, IndexError, TypeError):
            continue  # not a farm task: nothing to match
    return ids


def _redis() -> redis.Redis:
    return deadlines.redis_client()
