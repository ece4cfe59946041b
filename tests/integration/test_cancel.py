"""Cancel: in every status, a running container killed at once and never reused."""

import time

import httpx

from core.lifecycle import JobStatus
from tests.integration.stack import wait_for, wait_for_sandbox
from tests.utils import inline


def _cancel(farm, job_id: str) -> httpx.Response:
    return farm.http.post(f"/api/jobs/{job_id}/cancel")


def test_a_job_waiting_for_its_upload_or_queued_is_canceled_at_once(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    waiting = farm.submit(version["id"]).json()
    canceled = _cancel(farm, waiting["job"]["id"])
    assert canceled.status_code == 200 and canceled.json()["status"] == JobStatus.CANCELED
    assert httpx.put(waiting["upload_url"], content=b"late").status_code == 200
    run = farm.http.post(f"/api/jobs/{waiting['job']['id']}/run")
    assert run.status_code == 409 and "CANCELED" in run.json()["detail"]
    queued = farm.submit(version["id"], input=inline("queued")).json()["job"]
    assert _cancel(farm, queued["id"]).json()["status"] == JobStatus.CANCELED
    time.sleep(1)  # its task, if it was taken meanwhile, changes nothing
    assert farm.job(queued["id"])["status"] == JobStatus.CANCELED


def test_a_running_job_is_killed_and_its_container_never_reused(
    warm_model,
    new_user,
    docker_client,
):
    _, version = warm_model
    farm = new_user()
    job = farm.submit(version["id"], input=inline("hang")).json()["job"]
    wait_for(lambda: farm.job(job["id"])["status"] == JobStatus.RUNNING, "the job running", 60)
    (container,) = wait_for_sandbox(docker_client, user=farm.user_id)
    started = time.monotonic()
    canceled = _cancel(farm, job["id"])
    assert canceled.status_code == 200 and canceled.json()["status"] == JobStatus.CANCELED
    wait_for(lambda: not _running(docker_client, container.id), "the container killed", 2)
    assert time.monotonic() - started < 2
    ended = _cancel(farm, job["id"])
    assert ended.status_code == 409 and "CANCELED already" in ended.json()["detail"]
    after = farm.submit(version["id"], {"Prefer": "wait=30"}, input=inline("after")).json()
    assert after["job"]["result"] == {"setups": 1, "seen": ["after"]}  # a fresh container
    assert farm.job(job["id"])["status"] == JobStatus.CANCELED


def test_a_canceled_batch_starts_no_further_item(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    batch = [inline("slow") for _ in range(20)]
    job = farm.submit(version["id"], batch=batch).json()["job"]
    wait_for(lambda: farm.job(job["id"])["items_done"] >= 1, "an item done", 60)
    assert _cancel(farm, job["id"]).json()["status"] == JobStatus.CANCELED
    time.sleep(4)  # longer than an item takes: the items running at the cancel are recorded
    stopped = farm.job(job["id"])["items_done"]
    time.sleep(4)
    final = farm.job(job["id"])
    assert final["status"] == JobStatus.CANCELED
    assert final["items_done"] == stopped < 10  # nothing ran on; uncanceled, all 20 would


def _running(client, container_id: str) -> bool:
    found = client.containers.list(filters={"id": container_id})
    return bool(found)


def test_cancel_is_only_for_the_owner(warm_model, new_user):
    _, version = warm_model
    alice, mallory = new_user(), new_user()
    job = alice.submit(version["id"]).json()["job"]
    assert _cancel(mallory, job["id"]).status_code == 404
    assert alice.job(job["id"])["status"] == JobStatus.UPLOADING
