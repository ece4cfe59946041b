"""The workers' Celery application: core/queue.py's app, with the task code loaded.

celery -A workers.celery_app worker -Q build       (and -Q inference, -Q control -B)
"""

from core.queue import celery_app

celery_app.conf.include = ["workers.tasks"]

__all__ = ["celery_app"]
