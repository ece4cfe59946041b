"""The workers' Celery application: core/queue.py's app, with the task code loaded, its logs
written as core/logs.py says (each task's lines carrying its request id and the ids it works
on), and its metrics served (core/metrics.py).

celery -A workers.celery_app worker -Q build       (and -Q inference, -Q control,webhooks -B)
"""

from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.signals import setup_logging, task_prerun, worker_process_init, worker_ready

from core import logs, metrics
from core.queue import BUILD_TASK, RUN_TASK, WARM_TASK, WEBHOOK_TASK, celery_app
from core.settings import settings

celery_app.conf.include = ["workers.tasks"]
# What each task's arguments are, named on its log lines.
_ARGUMENTS = {
    BUILD_TASK: ("version_id",),
    RUN_TASK: ("job_id",),
    WARM_TASK: ("version_id", "user_id"),
    WEBHOOK_TASK: ("row_id", "kind", "event"),
}


@setup_logging.connect
def _configure_logs(**_kwargs) -> None:
    logs.configure(settings.service or "worker")


@worker_process_init.connect
def _serve_metrics_from_the_pool(**_kwargs) -> None:
    metrics.serve()  # a prefork worker's tasks run in its (one) child process


@worker_ready.connect
def _serve_metrics(sender=None, **_kwargs) -> None:
    if not isinstance(sender.pool, PreforkPool):
        metrics.serve()  # a threads pool runs the tasks in the worker's own process


@task_prerun.connect
def _bind_ids(task=None, args=(), **_kwargs) -> None:
    ids = dict(zip(_ARGUMENTS.get(task.name, ()), args, strict=False))
    logs.start(request_id=getattr(task.request, "request_id", None), task=task.name, **ids)


__all__ = ["celery_app"]
