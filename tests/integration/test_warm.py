"""Warm sandboxes: a user's jobs reuse a loaded model, other users never see its memory, and
any failure the model cannot report itself leaves a fresh container for the next job."""

import json
import time
import uuid

import pytest

from core.lifecycle import JobStatus
from core.settings import settings
from tests.integration import stack
from tests.integration.stack import wait_for, wait_for_sandbox
from workers.run.cancels import Watch
from workers.run.predict import Sandboxed, predict_all
from workers.run.request import RunnerRequest
from workers.run.sandbox import USER_LABEL, WORK_LABEL, Limits


def _run(farm, version, data: str) -> dict:
    return farm.run(version["id"], data.encode(), timeout=120)


def test_a_users_jobs_reuse_the_loaded_model_and_other_users_get_their_own(warm_model, new_user):
    owner, version = warm_model
    alice, bob = new_user(), new_user()
    first = _run(alice, version, "alice-secret")
    assert first["status"] == JobStatus.SUCCEEDED, first["error"]
    assert first["result"] == {"setups": 1, "seen": ["alice-secret"]}
    second = _run(alice, version, "alice-again")
    # setup() did not run again: the same warm container answered.
    assert second["result"] == {"setups": 1, "seen": ["alice-secret", "alice-again"]}
    other = _run(bob, version, "bob")
    assert other["status"] == JobStatus.SUCCEEDED, other["error"]
    assert other["result"] == {"setups": 1, "seen": ["bob"]}
    assert "alice-secret" not in str(other["result"])


def test_a_late_write_does_not_reach_the_next_job(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    late = _run(farm, version, "late")
    assert late["status"] == JobStatus.SUCCEEDED, late["error"]
    time.sleep(1.5)  # the model's thread writes /output/late.txt meanwhile
    following = _run(farm, version, "next")
    assert following["result"]["seen"] == ["late", "next"]  # the same container
    assert set(farm.output_files(following["id"])) == {"out.txt", "result.json"}  # no log: silent


@pytest.mark.parametrize(
    "misbehaviour, words",
    [
        ("hang", "The model timed out after 5 s."),
        ("oom", "The model ran out of memory (limit 128 MB)."),
        ("garbage", "broke its protocol"),
    ],
)
def test_a_failed_request_discards_the_container(warm_model, new_user, misbehaviour, words):
    _, version = warm_model
    farm = new_user()
    assert _run(farm, version, "warm-up")["result"]["setups"] == 1
    failed = _run(farm, version, misbehaviour)
    assert failed["status"] == JobStatus.FAILED
    assert words in failed["error"], failed["error"]
    following = _run(farm, version, "after")
    assert following["status"] == JobStatus.SUCCEEDED, following["error"]
    assert following["result"] == {"setups": 1, "seen": ["after"]}  # a fresh container


def test_a_version_can_be_warmed_ahead_of_the_first_job(warm_model, new_user, docker_client):
    owner, version = warm_model
    farm = new_user()
    response = farm.http.post(f"/api/versions/{version['id']}/warm")
    assert response.status_code == 202, response.text
    (container,) = wait_for_sandbox(docker_client, user=farm.user_id, timeout=60)
    job = _run(farm, version, "first")
    assert job["result"] == {"setups": 1, "seen": ["first"]}
    (still,) = docker_client.containers.list(filters={"label": f"{USER_LABEL}={farm.user_id}"})
    assert still.id == container.id  # the job ran on the container warmed for it


def test_warming_needs_a_ready_version_the_caller_may_run(warm_model, new_user):
    owner, _ = warm_model
    farm = new_user()
    private = owner.create_model()
    pending = owner.new_version(private["id"], None)
    assert owner.http.post(f"/api/versions/{pending['id']}/warm").status_code == 409
    assert farm.http.post(f"/api/versions/{pending['id']}/warm").status_code == 404


def test_warm_containers_do_not_outlive_a_killed_worker(warm_model, new_user, docker_client):
    _, version = warm_model
    farm = new_user()
    assert _run(farm, version, "before")["status"] == JobStatus.SUCCEEDED
    interrupted = farm.start_job(version["id"], b"slow")
    wait_for(lambda: farm.job(interrupted)["status"] == JobStatus.RUNNING, "the job running", 60)
    label = {"label": f"{USER_LABEL}={farm.user_id}"}
    assert docker_client.containers.list(filters=label)
    stack.kill("inference-worker")
    # The runner's stdin was the worker's: it ends, and so does the container, by itself.
    wait_for(lambda: not docker_client.containers.list(filters=label), "warm containers gone", 30)
    stack.up()
    job = farm.wait_job(interrupted, timeout=180)
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    assert job["result"]["seen"] == ["slow"]  # run again, on a fresh container


def test_with_warm_containers_off_each_request_gets_a_one_shot_container(
    warm_model, monkeypatch, docker_client
):
    """The cold path, as the worker takes it when warm containers are off or none has room."""
    _, version = warm_model
    monkeypatch.setattr(settings, "warm_enabled", False)
    limits = Limits.for_model({"memory_mb": 128, "timeout_s": 5})
    where = Sandboxed(uuid.uuid4(), uuid.uuid4(), version["image_ref"], limits, attempt=1)
    requests = [RunnerRequest.of_file("a.txt", b"one"), RunnerRequest.of_file("b.txt", b"two")]
    results = predict_all(where, requests, Watch())
    files = [result.output_files(limits.output_mb * 1024**2) for result in results]
    assert [json.loads(each["result.json"]) for each in files] == [
        {"setups": 1, "seen": ["one"]},  # each in a container of its own
        {"setups": 1, "seen": ["two"]},
    ]
    left = docker_client.containers.list(
        all=True, filters={"label": f"{WORK_LABEL}={where.job_id}"}
    )
    assert left == []
