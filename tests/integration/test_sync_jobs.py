"""Synchronous calls: inputs inline, `Prefer: wait`, Idempotency-Key, and the refusals of
inputs that abuse them."""

import base64
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.body_limit import MAX_BODY_BYTES
from core.lifecycle import JobStatus
from core.settings import settings
from tests.utils import API_URL, inline


def test_prefer_wait_answers_with_the_finished_job(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    response = farm.submit(version["id"], {"Prefer": "wait=30"}, input=inline("hello"))
    assert response.status_code == 201, response.text
    assert response.headers["Preference-Applied"] == "wait=30"
    created = response.json()
    assert created["upload_url"] is None
    job = created["job"]
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    assert job["result"] == {"setups": 1, "seen": ["hello"]}
    assert farm.output_files(job["id"])["out.txt"] == b"hello"
    assert farm.output_files(job["id"])["result.json"] == b'{"setups": 1, "seen": ["hello"]}'


def test_a_short_wait_returns_the_job_as_it_stands(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    warmed = farm.submit(version["id"], {"Prefer": "wait=30"}, input=inline("warm-up"))
    assert warmed.json()["job"]["status"] == JobStatus.SUCCEEDED
    started = time.monotonic()
    response = farm.submit(version["id"], {"Prefer": "wait=1"}, input=inline("slow"))
    assert time.monotonic() - started < 2.5
    assert response.headers["Preference-Applied"] == "wait=1"
    job = response.json()["job"]
    assert job["status"] == JobStatus.RUNNING
    assert farm.wait_job(job["id"], timeout=60)["status"] == JobStatus.SUCCEEDED


def test_run_waits_too_for_an_uploaded_input(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    created = farm.submit(version["id"]).json()
    assert httpx.put(created["upload_url"], content=b"uploaded").status_code == 200
    response = farm.http.post(f"/api/jobs/{created['job']['id']}/run", headers={"Prefer": "wait"})
    assert response.headers["Preference-Applied"] == "wait=60"
    assert response.json()["status"] == JobStatus.SUCCEEDED
    assert response.json()["result"]["seen"] == ["uploaded"]


def test_an_idempotency_key_returns_the_same_job(warm_model, new_user):
    _, version = warm_model
    alice, bob = new_user(), new_user()
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = alice.submit(version["id"], key, input=inline("once"))
    again = alice.submit(version["id"], key, input=inline("once"))
    assert first.status_code == 201 and again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["job"]["id"] == first.json()["job"]["id"]
    assert alice.http.get("/api/jobs").json()["total"] == 1
    # Keys are per user, and a new key is a new job.
    other = bob.submit(version["id"], key, input=inline("once"))
    assert other.status_code == 201 and other.json()["job"]["id"] != first.json()["job"]["id"]
    fresh = alice.submit(version["id"], {"Idempotency-Key": "another"}, input=inline("x"))
    assert fresh.status_code == 201 and fresh.json()["job"]["id"] != first.json()["job"]["id"]


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"input": inline("x", name="../etc/passwd")}, 422, "input.name"),
        ({"input": inline("x", name="")}, 422, "input.name"),
        ({"input": {"name": "a.txt", "data": "not base64!"}}, 422, "input.data"),
        ({"input": inline("x"), "batch": [inline("y")]}, 422, "at most one of"),
        ({"batch": []}, 422, "batch"),
        ({"batch_size": 0}, 422, "batch_size"),
        ({"batch_size": settings.max_batch_items + 1}, 422, "batch_size"),
    ],
)
def test_bad_inline_inputs_are_refused(warm_model, new_user, body, status, words):
    _, version = warm_model
    response = new_user().submit(version["id"], **body)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_bad_headers_are_refused(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    response = farm.submit(version["id"], {"Prefer": "wait=soon"}, input=inline("x"))
    assert response.status_code == 400 and "wait=N" in response.json()["detail"]
    response = farm.submit(version["id"], {"Idempotency-Key": "a" * 256}, input=inline("x"))
    assert response.status_code == 422
    assert farm.http.get("/api/jobs").json()["total"] == 0


def test_inline_inputs_over_the_cap_are_refused_before_they_are_read(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    over = base64.b64encode(b"x" * (settings.max_inline_input_bytes + 1)).decode()
    response = farm.submit(version["id"], input={"name": "big.bin", "data": over})
    assert response.status_code == 413, response.text
    assert "upload" in response.json()["detail"]
    # Without a declared length, the body is cut off as it arrives.
    chunks = (b" " * (1024 * 1024) for _ in range(MAX_BODY_BYTES // (1024 * 1024) + 2))
    response = farm.http.post(
        "/api/jobs", content=chunks, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    # A batch's items count together.
    half = base64.b64encode(b"x" * (settings.max_inline_input_bytes // 2 + 1)).decode()
    items = [{"name": "a.bin", "data": half}, {"name": "b.bin", "data": half}]
    assert farm.submit(version["id"], batch=items).status_code == 413
    assert farm.http.get("/api/jobs").json()["total"] == 0


def test_waiting_requests_hold_no_thread_and_no_connection(warm_model, new_user):
    """More requests waiting than the API has threads (40) and database connections (15): a
    request that holds neither while it waits leaves the API answering everyone else."""
    _, version = warm_model
    farm = new_user()
    jobs = [farm.submit(version["id"]).json() for _ in range(60)]
    for created in jobs:
        assert httpx.put(created["upload_url"], content=b"hang").status_code == 200

    def run_and_wait(created: dict) -> httpx.Response:
        with httpx.Client(base_url=API_URL, timeout=30, headers=farm.http.headers) as client:
            return client.post(
                f"/api/jobs/{created['job']['id']}/run", headers={"Prefer": "wait=6"}
            )

    with ThreadPoolExecutor(len(jobs)) as pool:
        waiting = [pool.submit(run_and_wait, created) for created in jobs]
        time.sleep(2)  # all of them are waiting now
        started = time.monotonic()
        assert farm.http.get("/api/users/me").status_code == 200
        assert time.monotonic() - started < 1.5
        answered = [future.result() for future in waiting]
    assert all(response.headers["Preference-Applied"] == "wait=6" for response in answered)
    for created in jobs:
        farm.http.post(f"/api/jobs/{created['job']['id']}/cancel")
