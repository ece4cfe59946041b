"""Uploads are sealed when work starts: what was accepted is what is built and run, whatever
is PUT to the upload URL afterwards, and workers never read more than was accepted."""

import hashlib
import uuid

import httpx
import pytest

from core.lifecycle import JobStatus, VersionStatus
from core.settings import settings
from core.storage import NotAsSealed, package_key, package_upload_key
from tests.utils import make_zip, put_zeros

ECHO = (
    "import hashlib\n\ndef predict(input_path, output_dir):\n"
    "    data = input_path.read_bytes()\n"
    "    return {'model': 'accepted', 'size': len(data), "
    "'sha256': hashlib.sha256(data).hexdigest()}\n"
)
EVIL = "def predict(input_path, output_dir):\n    return {'evil': True}\n"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_zip_swapped_after_the_build_started_is_not_what_is_built(new_user, storage):
    farm = new_user()
    accepted = make_zip({"predict.py": ECHO})
    model_id = farm.create_model()["id"]
    created = farm.http.post(f"/api/models/{model_id}/versions").json()
    version_id = created["version"]["id"]
    assert httpx.put(created["upload_url"], content=accepted).is_success
    assert farm.http.post(f"/api/versions/{version_id}/build").status_code == 202
    assert httpx.put(created["upload_url"], content=make_zip({"predict.py": EVIL})).is_success
    version = farm.wait_version(version_id)
    assert version["status"] == VersionStatus.READY, version["error"]
    assert version["package_sha256"] == _sha256(accepted)
    job = farm.run(version_id, b"x")
    assert job["result"]["model"] == "accepted", job["result"]


def test_a_ready_versions_stored_package_cannot_be_overwritten(new_user, storage):
    farm = new_user()
    model_id = farm.create_model()["id"]
    created = farm.http.post(f"/api/models/{model_id}/versions").json()
    version_id = created["version"]["id"]
    assert httpx.put(created["upload_url"], content=make_zip({"predict.py": ECHO})).is_success
    assert farm.http.post(f"/api/versions/{version_id}/build").status_code == 202
    version = farm.wait_version(version_id)
    assert version["status"] == VersionStatus.READY, version["error"]
    assert httpx.put(created["upload_url"], content=make_zip({"predict.py": EVIL})).is_success
    sealed = storage.get_bytes(f"packages/{version_id}.zip")
    assert _sha256(sealed) == version["package_sha256"]


def test_a_huge_input_put_after_the_run_started_is_never_read(new_user):
    farm = new_user()
    version = farm.build({"predict.py": ECHO})
    assert version["status"] == VersionStatus.READY, version["error"]
    created = farm.http.post("/api/jobs", json={"version_id": version["id"]}).json()
    job_id = created["job"]["id"]
    small = b"the accepted input"
    assert httpx.put(created["upload_url"], content=small).is_success
    assert farm.http.post(f"/api/jobs/{job_id}/run").status_code == 202
    huge = httpx.put(created["upload_url"], content=b"\0" * (200 * 1024**2), timeout=120)
    assert huge.is_success
    job = farm.wait_job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    assert job["result"]["size"] == len(small)
    assert job["result"]["sha256"] == _sha256(small)


def test_reading_a_sealed_object_stops_at_its_accepted_size(storage, tmp_path):
    """The worker's reader: an object larger than accepted is refused after `size` bytes, so
    no more than the cap is ever read; a shorter one is refused too."""
    key = f"tests/{uuid.uuid4()}"
    storage.put_bytes(key, b"a" * (3 * 1024**2))
    try:
        with pytest.raises(NotAsSealed, match="more than 1048576 bytes"):
            storage.download(key, tmp_path / "in", size=1024**2)
        assert (tmp_path / "in").stat().st_size <= 1024**2
        with pytest.raises(NotAsSealed, match="not 4194304"):
            storage.download(key, tmp_path / "in", size=4 * 1024**2)
        assert storage.download(key, tmp_path / "in", size=3 * 1024**2)
        assert storage.download(f"{key}-missing", tmp_path / "x", size=1) is False
    finally:
        storage.delete(key)


def test_the_store_holds_a_package_at_the_limit_then_an_input(new_user, storage, anonymous):
    """The object store is sized for the limits it advertises: a package at the limit, then a
    job input, both go through; an oversized upload is refused and leaves nothing behind."""
    farm = new_user()
    echo = farm.build({"predict.py": ECHO})
    model_id = farm.create_model()["id"]
    created = farm.http.post(f"/api/models/{model_id}/versions").json()
    assert put_zeros(created["upload_url"], settings.max_package_bytes).is_success
    build = farm.http.post(f"/api/versions/{created['version']['id']}/build", timeout=300)
    assert build.status_code == 202, build.text  # accepted and sealed (not a ZIP: it will fail)
    job = farm.run(echo["id"], b"i" * (40 * 1024**2))
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    assert job["result"]["size"] == 40 * 1024**2
    over = farm.http.post(f"/api/models/{model_id}/versions").json()
    assert put_zeros(over["upload_url"], settings.max_package_bytes + 1).is_success
    refused = farm.http.post(f"/api/versions/{over['version']['id']}/build", timeout=300)
    assert refused.status_code == 413
    assert storage.size(package_upload_key(over["version"]["id"])) is None
    assert storage.size(package_key(over["version"]["id"])) is None
    assert farm.run(echo["id"], b"after")["status"] == JobStatus.SUCCEEDED
    assert anonymous.get("/health").json()["checks"]["object_storage"]["ok"]
    failed = farm.wait_version(created["version"]["id"])
    assert "not a valid ZIP" in failed["error"]
