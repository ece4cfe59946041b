"""Notices sent through Redis pub/sub: a job reached its end, a job's owner canceled it.

Notices are hints, never the record: the row in the database is. A listener that missed one
(Redis restarted, the listener reconnecting) reads the row again, so a lost notice costs time,
never a wrong answer.
"""

import logging
import uuid

import redis

from core.settings import settings

logger = logging.getLogger(__name__)

# The payload of both is the job's id.
JOB_ENDED_CHANNEL = "modelfarm:job-ended"
JOB_CANCELED_CHANNEL = "modelfarm:job-canceled"

_redis = redis.Redis.from_url(settings.redis_url, socket_timeout=5)


def _publish(channel: str, job_id: uuid.UUID | str) -> None:
    try:
        _redis.publish(channel, str(job_id))
    except redis.RedisError:
        logger.warning("could not publish %s for job %s", channel, job_id, exc_info=True)


def job_ended(job_id: uuid.UUID | str) -> None:
    """Wakes the requests waiting for this job (Prefer: wait)."""
    _publish(JOB_ENDED_CHANNEL, job_id)


def job_canceled(job_id: uuid.UUID | str) -> None:
    """Tells the inference workers to stop this job's sandbox."""
    _publish(JOB_CANCELED_CHANNEL, job_id)
