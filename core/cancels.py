"""Canceling a job that has not ended: by its owner (POST /api/jobs/{id}/cancel), or by the
owner of its version, who removed the version (core/removal.py). A waiting or queued job ends
at once; a running one's container is killed by its worker, told through Redis."""

from sqlalchemy.orm import Session

from core import events, streams, webhooks
from core.lifecycle import JOB, move, utcnow
from core.models import Job


def cancel(session: Session, job: Job, *, error: str | None = None) -> None:
    """Moves the job (locked by the caller) to CANCELED, commits, and tells who waits."""
    move(JOB, job, JOB.canceled)
    job.finished_at, job.error = utcnow(), error
    session.commit()
    streams.status("job", job)
    events.job_canceled(job.id)
    events.job_ended(job.id, job)
    webhooks.notify("job", job.id, webhooks.wanted(job), "completed")
