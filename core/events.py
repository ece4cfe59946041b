"""Notices sent through Redis pub/sub: a job reached its end, a job's owner canceled it, a
version became READY (for the hosts that pre-pull its image).

Notices are hints, never the record: the row in the database is. A job's end carries the
row's public fields as they were committed, so that a request waiting for it answers without
reading the row again; a listener that missed a notice (Redis restarted, the listener
reconnecting) reads the row, so a lost notice costs time, never a wrong answer.
"""

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import redis

from core import deadlines
from core.settings import settings

if TYPE_CHECKING:
    from core.models import Job

logger = logging.getLogger(__name__)

# A cancel's payload is the job's id; an end's is JSON {"id": job id, "job": {field: value for
# ENDED_FIELDS} or null when the sender does not have the row}.
JOB_ENDED_CHANNEL = "modelfarm:job-ended"
JOB_CANCELED_CHANNEL = "modelfarm:job-canceled"
# Payload: JSON {"id": version id, "image": its image reference}.
VERSION_READY_CHANNEL = "modelfarm:version-ready"
ENDED_FIELDS = (
    "id", "owner_id", "version_id", "status", "inputs", "result", "error", "exit_code",
    "run_seconds", "items_total", "items_done", "items_failed", "created_at", "queued_at",
    "started_at", "finished_at", "webhook", "webhook_events", "data_removed",
)  # fmt: skip

_redis = deadlines.redis_client()


def _publish(channel: str, row_id: uuid.UUID | str, payload: str) -> None:
    try:
        _redis.publish(channel, payload)
    except redis.RedisError:
        logger.warning("could not publish %s for %s", channel, row_id, exc_info=True)


def job_ended(job_id: uuid.UUID | str, job: "Job | None" = None) -> None:
    """Wakes the requests waiting for this job (Prefer: wait), handing them its ended row."""
    fields = None if job is None else {name: getattr(job, name) for name in ENDED_FIELDS}
    _publish(JOB_ENDED_CHANNEL, job_id, json.dumps({"id": str(job_id), "job": fields},
                                                   default=_json_value))  # fmt: skip


def _json_value(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)  # and UUIDs


def job_canceled(job_id: uuid.UUID | str) -> None:
    """Tells the inference workers to stop this job's sandbox."""
    _publish(JOB_CANCELED_CHANNEL, job_id, str(job_id))


def version_ready(version_id: uuid.UUID | str, image_ref: str) -> None:
    """Tells the inference hosts that pre-pull (workers/run/prepull.py) about a new image."""
    payload = json.dumps({"id": str(version_id), "image": image_ref})
    _publish(VERSION_READY_CHANNEL, version_id, payload)


def listen_forever(channel: str, act: Callable[[bytes], None]) -> None:
    """Calls act(payload) for each notice on channel, for ever; reconnects when Redis goes away
    (what is published meanwhile is missed)."""
    while True:
        try:
            client = redis.Redis.from_url(settings.redis_url, health_check_interval=30)
            subscription = client.pubsub(ignore_subscribe_messages=True)
            subscription.subscribe(channel)
            for message in subscription.listen():
                act(message["data"])
        except redis.RedisError:
            logger.warning("the listener of %s lost Redis; reconnecting", channel, exc_info=True)
            time.sleep(1)
