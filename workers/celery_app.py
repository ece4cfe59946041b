"""The Celery application: two queues, one per kind of work, each served by its own worker.

The API imports this module only to send tasks by name; the task code lives in workers/tasks.py.
"""

from celery import Celery
from kombu import Queue

from core.settings import settings

BUILD_QUEUE = "build"
INFERENCE_QUEUE = "inference"
BUILD_TASK = "modelfarm.build_version"
RUN_TASK = "modelfarm.run_job"

celery_app = Celery("modelfarm", broker=settings.redis_url, include=["workers.tasks"])
celery_app.conf.update(
    task_queues=[Queue(BUILD_QUEUE), Queue(INFERENCE_QUEUE)],
    task_routes={BUILD_TASK: {"queue": BUILD_QUEUE}, RUN_TASK: {"queue": INFERENCE_QUEUE}},
    # A task is acknowledged only when it has finished, and handed back to the queue when its
    # worker dies, so a crash never loses work. The tasks are idempotent for that reason.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # Redis re-delivers an unacknowledged task after this long: it must exceed the longest task.
    broker_transport_options={
        "visibility_timeout": max(settings.build_time_limit_s, settings.job_time_limit_s) + 60
    },
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)


def send_build(version_id: str) -> None:
    celery_app.send_task(BUILD_TASK, args=[version_id], queue=BUILD_QUEUE)


def send_run(job_id: str) -> None:
    celery_app.send_task(RUN_TASK, args=[job_id], queue=INFERENCE_QUEUE)
