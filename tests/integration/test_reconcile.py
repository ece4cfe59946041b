"""Lost work is found again by the reconciler (Celery beat), with no restart of anything."""

import uuid
from datetime import timedelta

import httpx
import redis

from core.db import SessionLocal
from core.lifecycle import JobStatus, VersionStatus, utcnow
from core.models import Job, ModelVersion
from core.queue import BUILD_TASK, celery_app, waiting_ids
from core.settings import settings
from core.storage import job_input_key, job_input_upload_key, package_key, package_upload_key
from tests.utils import make_zip

PREDICT = (
    "def predict(input_path, output_dir):\n    return {'size': len(input_path.read_bytes())}\n"
)


def _queue_without_a_message(table, row_id: str, status) -> None:
    """What a lost message leaves: the row QUEUED for a while, and nothing in Redis for it."""
    with SessionLocal() as session:
        row = session.get(table, uuid.UUID(row_id))
        row.status = status
        row.queued_at = utcnow() - timedelta(seconds=settings.reconcile_queued_s + 1)
        session.commit()


def test_a_version_queued_without_a_message_is_built(new_user, storage):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], make_zip({"predict.py": PREDICT}))
    size = storage.seal(package_upload_key(version["id"]), package_key(version["id"]), limit=10**6)
    with SessionLocal() as session:  # sealed as POST .../build would, but no message sent
        session.get(ModelVersion, uuid.UUID(version["id"])).package_size = size
        session.commit()
    _queue_without_a_message(ModelVersion, version["id"], VersionStatus.QUEUED)
    done = farm.wait_version(version["id"], timeout=settings.reconcile_interval_s * 4 + 300)
    assert done["status"] == VersionStatus.READY, done["error"]


def test_a_job_queued_without_a_message_runs(new_user, storage):
    farm = new_user()
    version = farm.build({"predict.py": PREDICT})
    created = farm.http.post("/api/jobs", json={"version_id": version["id"]}).json()
    job_id = created["job"]["id"]
    assert httpx.put(created["upload_url"], content=b"12345").is_success
    sealed = job_input_key(job_id)
    size = storage.seal(job_input_upload_key(job_id), sealed, limit=10**6)
    with SessionLocal() as session:
        job = session.get(Job, uuid.UUID(job_id))
        job.inputs = {"input": {**job.inputs["input"], "size": size}}  # sealed, as /run does
        session.commit()
    _queue_without_a_message(Job, job_id, JobStatus.QUEUED)
    done = farm.wait_job(job_id, timeout=settings.reconcile_interval_s * 4 + 120)
    assert done["status"] == JobStatus.SUCCEEDED, done["error"]
    assert done["result"] == {"size": 5}


def test_waiting_tasks_are_recognised_in_their_queue():
    """The reconciler re-sends only what is not waiting: it must see a waiting task's row id in
    a real message. (A queue no worker consumes, so the message stays put.)"""
    queue = f"test-unconsumed-{uuid.uuid4().hex[:8]}"
    row_id = str(uuid.uuid4())
    client = redis.Redis.from_url(settings.redis_url)
    client.rpush(queue, b"not a celery message")
    celery_app.send_task(BUILD_TASK, args=[row_id], queue=queue)
    try:
        assert waiting_ids(queue) == {row_id}
    finally:
        client.delete(queue)
