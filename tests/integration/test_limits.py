"""Each user's limits, on a second API process of the real stack started with low ones: write
requests per minute, and jobs and builds queued or running at once; each a 429 that names its
setting and says when to retry."""

import base64
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from core.db import SessionLocal
from core.lifecycle import VersionStatus
from core.models import Job
from core.storage import package_upload_key
from tests.integration.stack import api_process
from tests.utils import Farm, make_zip

PORT = 8011
QUOTA_PORT = 8014
LIMITS = {
    "WRITES_PER_MINUTE": 8, "MAX_ACTIVE_JOBS_PER_USER": 2, "MAX_ACTIVE_BUILDS_PER_USER": 1,
    "MAX_PACKAGE_BYTES": 4096, "MAX_INPUT_BYTES": 1024,
}  # fmt: skip
ECHO = "def predict(input_path, output_dir):\n    return {'n': input_path.stat().st_size}\n"
SLOW_JOB = "import time\ndef predict(input_path, output_dir):\n    time.sleep(60)\n"
SLOW_SETUP = (
    "import time\nclass Predictor:\n    def setup(self):\n        time.sleep(8)\n"
    "    def predict(self, input_path, output_dir):\n        return {}\n"
)
INPUT = {"name": "x.txt", "data": base64.b64encode(b"x").decode()}


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> Iterator[str]:
    """The API, as a process of its own beside the stack's, with LIMITS."""
    log = tmp_path_factory.mktemp("limited") / "api.log"
    with api_process(PORT, log, **{name: str(value) for name, value in LIMITS.items()}) as url:
        yield url


def _as(farm: Farm, url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {farm.token}"}, timeout=60)


def _refused(response: httpx.Response, setting: str) -> None:
    assert response.status_code == 429, response.text
    assert f"MODELFARM_{setting}" in response.json()["detail"]
    assert int(response.headers["Retry-After"]) >= 1


def test_writes_past_the_limit_per_minute_are_refused_and_reads_are_not(new_user, limited):
    farm = new_user()
    with _as(farm, limited) as http:
        for number in range(LIMITS["WRITES_PER_MINUTE"]):
            assert http.post("/api/models", json={"name": f"m{number}"}).status_code == 201
        _refused(http.post("/api/models", json={"name": "one-more"}), "WRITES_PER_MINUTE")
        assert http.get("/api/models").status_code == 200
    other = new_user()  # each user has their own count
    with _as(other, limited) as http:
        assert http.post("/api/models", json={"name": "mine"}).status_code == 201


def test_jobs_past_the_most_at_once_are_refused_until_one_ends(new_user, limited):
    farm = new_user()
    version = farm.build({"predict.py": SLOW_JOB})
    assert version["status"] == VersionStatus.READY, version["error"]
    with _as(farm, limited) as http:
        body = {"version_id": version["id"], "input": INPUT}
        running = [http.post("/api/jobs", json=body).json()["job"]["id"] for _ in range(2)]
        _refused(http.post("/api/jobs", json=body), "MAX_ACTIVE_JOBS_PER_USER")
        waiting = http.post("/api/jobs", json={"version_id": version["id"]}).json()
        assert waiting["job"]["status"] == "UPLOADING"  # not queued: not counted
        assert httpx.put(waiting["upload_url"], content=b"x").is_success
        _refused(http.post(f"/api/jobs/{waiting['job']['id']}/run"), "MAX_ACTIVE_JOBS_PER_USER")
        assert http.post(f"/api/jobs/{running[0]}/cancel").status_code == 200
        assert http.post(f"/api/jobs/{waiting['job']['id']}/run").status_code == 202
    for job_id in (running[1], waiting["job"]["id"]):
        farm.cancel_job(job_id)


def test_builds_past_the_most_at_once_are_refused_until_one_ends(new_user, limited):
    farm = new_user()
    first, second = (
        farm.new_version(farm.create_model()["id"], package)
        for package in (make_zip({"predict.py": SLOW_SETUP + f"# {n}\n"}) for n in (1, 2))
    )
    with _as(farm, limited) as http:
        assert http.post(f"/api/versions/{first['id']}/build").status_code == 202
        _refused(http.post(f"/api/versions/{second['id']}/build"), "MAX_ACTIVE_BUILDS_PER_USER")
        assert farm.wait_version(first["id"])["status"] == VersionStatus.READY
        assert http.post(f"/api/versions/{second['id']}/build").status_code == 202
    assert farm.wait_version(second["id"])["status"] == VersionStatus.READY


def _posted(form: dict, data: bytes) -> httpx.Response:
    return httpx.post(form["url"], data=form["fields"], files={"file": ("upload", data)})


def test_uploads_past_the_limit_are_refused_by_the_object_store_itself(new_user, limited, storage):
    farm = new_user()
    with _as(farm, limited) as http:
        model = http.post("/api/models", json={"name": "capped"}).json()
        created = http.post(f"/api/models/{model['id']}/versions").json()
    form, version_id = created["upload_form"], created["version"]["id"]
    refused = _posted(form, b"x" * (LIMITS["MAX_PACKAGE_BYTES"] + 1))
    assert refused.status_code == 400 and "EntityTooLarge" in refused.text
    assert storage.size(package_upload_key(version_id)) is None  # nothing parked
    assert _posted(form, make_zip({"predict.py": ECHO})).status_code == 204
    with _as(farm, limited) as http:
        assert http.post(f"/api/versions/{version_id}/build").status_code == 202
        assert farm.wait_version(version_id)["status"] == VersionStatus.READY
        job = http.post("/api/jobs", json={"version_id": version_id}).json()
    input_form = job["upload_forms"]["input"]
    assert _posted(input_form, b"x" * (LIMITS["MAX_INPUT_BYTES"] + 1)).status_code == 400
    assert _posted(input_form, b"small").status_code == 204
    assert farm.run_job(job["job"]["id"], wait_s=60)["status"] == "SUCCEEDED"


@pytest.fixture(scope="module")
def quota_api(tmp_path_factory) -> Iterator[str]:
    """The API with a storage quota of 1 MB per user."""
    log = tmp_path_factory.mktemp("quota") / "api.log"
    with api_process(QUOTA_PORT, log, STORAGE_QUOTA_MB="1") as url:
        yield url


def _weighty(tag: str) -> bytes:
    """A package of about 600 KB that does not compress."""
    return make_zip({"predict.py": ECHO + f"# {tag}\n", "weights.bin": os.urandom(600 * 1024)})


def test_storage_past_the_quota_is_refused_until_room_is_made(new_user, quota_api, storage):
    farm = new_user()
    model = farm.create_model()["id"]
    first, second = (farm.new_version(model, _weighty(tag)) for tag in ("a", "b"))
    with _as(farm, quota_api) as http:
        assert http.post(f"/api/versions/{first['id']}/build").status_code == 202
        assert farm.wait_version(first["id"])["status"] == VersionStatus.READY
        refused = http.post(f"/api/versions/{second['id']}/build")
        assert refused.status_code == 413 and "MODELFARM_STORAGE_QUOTA_MB" in refused.text
        assert storage.size(package_upload_key(second["id"])) is not None  # kept to retry
        big = {"name": "x.bin", "data": base64.b64encode(os.urandom(500 * 1024)).decode()}
        too_big = http.post("/api/jobs", json={"version_id": first["id"], "input": big})
        assert too_big.status_code == 413 and "MODELFARM_STORAGE_QUOTA_MB" in too_big.text
        job = http.post("/api/jobs", json={"version_id": first["id"], "input": INPUT},
                        headers={"Prefer": "wait=60"}).json()["job"]  # fmt: skip
        assert job["status"] == "SUCCEEDED", job["error"]
        with SessionLocal() as session:  # the input's byte and the outputs' count
            assert session.get(Job, uuid.UUID(job["id"])).stored_bytes > 1
        assert http.delete(f"/api/versions/{first['id']}").status_code == 204
        assert http.post(f"/api/versions/{second['id']}/build").status_code == 202
    assert farm.wait_version(second["id"])["status"] == VersionStatus.READY
