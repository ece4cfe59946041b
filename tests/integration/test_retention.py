"""Removing jobs, versions and models, and retention, on the real stack: objects leave the
store, manifests leave the registry (an image another version still runs stays), rows go last;
what still runs is refused (409). The reconciler's pass removes expired job files and abandoned
uploads (each test moves a row's time back instead of waiting days)."""

import os
import subprocess
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from core.db import SessionLocal
from core.lifecycle import utcnow
from core.models import Job, ModelVersion
from core.registry import MANIFEST_TYPES, Registry, model_repository
from core.settings import settings
from core.storage import (
    build_log_key,
    job_input_upload_key,
    job_log_key,
    package_key,
    package_upload_key,
)
from tests.integration.stack import wait_for
from tests.utils import ROOT, Farm, inline, make_zip

ECHO = "def predict(input_path, output_dir):\n    print('ran')\n    return {'ok': True}\n"
SLOW = "import time\ndef predict(input_path, output_dir):\n    time.sleep(60)\n"
PASS_S = settings.reconcile_interval_s * 4 + 30  # a few reconciler passes


def _job(farm: Farm, version_id: str) -> dict:
    response = farm.submit(version_id, {"Prefer": "wait=60"}, input=inline("hi"))
    assert response.status_code == 201, response.text
    return response.json()["job"]


def _moved_back(table, row_id: str, **fields) -> None:
    with SessionLocal() as session, session.begin():
        session.execute(update(table).where(table.id == row_id).values(**fields))


def test_a_job_is_removed_with_its_files_but_not_while_it_runs(new_user, storage):
    farm = new_user()
    version = farm.build({"predict.py": ECHO})
    job = _job(farm, version["id"])
    assert storage.size(job_log_key(job["id"])) is not None
    assert farm.http.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert farm.http.get(f"/api/jobs/{job['id']}").status_code == 404
    assert storage.size(job_log_key(job["id"])) is None
    slow = farm.build({"predict.py": SLOW})
    running = farm.submit(slow["id"], input=inline("x")).json()["job"]
    refused = farm.http.delete(f"/api/jobs/{running['id']}")
    assert refused.status_code == 409 and "cancel it first" in refused.json()["detail"]
    farm.cancel_job(running["id"])
    assert farm.http.delete(f"/api/jobs/{running['id']}").status_code == 204
    other = new_user()
    assert other.http.delete(f"/api/jobs/{job['id']}").status_code == 404


def test_a_version_goes_with_its_jobs_and_its_image_stays_while_another_version_runs_it(
    new_user, storage
):
    farm = new_user()
    model = farm.create_model()
    first = farm.build({"predict.py": ECHO}, model_id=model["id"])
    second = farm.build({"predict.py": ECHO}, model_id=model["id"])
    assert second["reused"] and second["image_digest"] == first["image_digest"]
    job = _job(farm, first["id"])
    assert farm.http.put(f"/api/models/{model['id']}/aliases/prod",
                         json={"version_id": first["id"]}).status_code == 200  # fmt: skip
    aliased = farm.http.delete(f"/api/versions/{first['id']}")
    assert aliased.status_code == 409 and "prod" in aliased.json()["detail"]
    farm.http.delete(f"/api/models/{model['id']}/aliases/prod")
    assert farm.http.delete(f"/api/versions/{first['id']}").status_code == 204
    assert farm.http.get(f"/api/versions/{first['id']}").status_code == 404
    assert farm.http.get(f"/api/jobs/{job['id']}").status_code == 404
    for key in (package_key(first["id"]), build_log_key(first["id"])):
        assert storage.size(key) is None, key
    assert _job(farm, second["id"])["status"] == "SUCCEEDED"  # its image is still there


def test_a_model_goes_with_every_image_in_its_repository(new_user, storage):
    farm = new_user()
    model = farm.create_model()
    version = farm.build({"predict.py": ECHO + "# model removal\n"}, model_id=model["id"])
    waiting = farm.new_version(model["id"], make_zip({"predict.py": ECHO}))
    registry, repository = Registry(), model_repository(model["id"])
    assert registry.manifest_digest(repository, "v1") == version["image_digest"]
    stranger = new_user()
    assert stranger.http.delete(f"/api/models/{model['id']}").status_code == 404
    assert farm.http.delete(f"/api/models/{model['id']}").status_code == 204
    assert farm.http.get(f"/api/models/{model['id']}").status_code == 404
    assert registry.manifest_digest(repository, "v1") is None
    assert storage.size(package_upload_key(waiting["id"])) is None


def test_a_model_with_a_job_running_is_not_removed(new_user):
    farm = new_user()
    model = farm.create_model()
    slow = farm.build({"predict.py": SLOW}, model_id=model["id"])
    running = farm.submit(slow["id"], input=inline("x")).json()["job"]
    for path in (f"/api/models/{model['id']}", f"/api/versions/{slow['id']}"):
        refused = farm.http.delete(path)
        assert refused.status_code == 409 and "queued or running" in refused.json()["detail"]
    farm.cancel_job(running["id"])


def test_job_files_expire_and_the_row_stays(new_user, storage):
    farm = new_user()
    version = farm.build({"predict.py": ECHO})
    job = _job(farm, version["id"])
    assert farm.http.get(f"/api/jobs/{job['id']}/outputs").status_code == 200
    ended = utcnow() - timedelta(days=settings.job_retention_days, hours=1)
    _moved_back(Job, job["id"], finished_at=ended)
    wait_for(lambda: farm.job(job["id"])["data_removed"], "the job's files removed", PASS_S)
    gone = farm.http.get(f"/api/jobs/{job['id']}/outputs")
    assert gone.status_code == 410 and "MODELFARM_JOB_RETENTION_DAYS" in gone.json()["detail"]
    assert storage.size(job_log_key(job["id"])) is None
    assert farm.job(job["id"])["result"] == {"ok": True}  # the row keeps what it says


@pytest.mark.parametrize("kind", ["version", "job"])
def test_uploads_never_finished_are_removed_after_a_day(new_user, storage, kind):
    farm = new_user()
    if kind == "version":
        row = farm.new_version(farm.create_model()["id"], make_zip({"predict.py": ECHO}))
        table, upload, path = ModelVersion, package_upload_key(row["id"]), "versions"
    else:
        version = farm.build({"predict.py": ECHO})
        created = farm.http.post("/api/jobs", json={"version_id": version["id"]}).json()
        assert httpx.put(created["upload_url"], content=b"hi").status_code == 200
        row, table, path = created["job"], Job, "jobs"
        upload = job_input_upload_key(row["id"])
    assert storage.size(upload) is not None
    made = utcnow() - timedelta(hours=settings.upload_expiry_hours, minutes=5)
    _moved_back(table, row["id"], created_at=made)
    wait_for(lambda: farm.http.get(f"/api/{path}/{row['id']}").status_code == 404,
             f"the abandoned {kind} removed", PASS_S)  # fmt: skip
    assert storage.size(upload) is None


def _blobs(repository: str, digest: str) -> set[str]:
    """The blobs an image's manifest refers to: its config and layers."""
    registry = Registry()
    manifest = httpx.get(f"{registry.base_url}/v2/{repository}/manifests/{digest}",
                         headers={"Accept": MANIFEST_TYPES}).json()  # fmt: skip
    return {manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}


def _stored(digest: str) -> bool:
    algorithm, hexdigest = digest.split(":")
    blobs = ROOT / settings.data_dir / "registry/data/docker/registry/v2/blobs" / algorithm
    return (blobs / hexdigest[:2] / hexdigest / "data").exists()


def test_garbage_collection_frees_a_removed_models_own_blobs_and_keeps_shared_ones(new_user):
    farm = new_user()
    gone_model, kept_model = farm.create_model(), farm.create_model()
    weights = os.urandom(256 * 1024)  # a layer no other image has
    gone = farm.build({"predict.py": ECHO, "weights.bin": weights}, model_id=gone_model["id"])
    kept = farm.build({"predict.py": ECHO + "# kept\n"}, model_id=kept_model["id"])
    kept_repository = model_repository(kept_model["id"])
    own = _blobs(model_repository(gone_model["id"]), gone["image_digest"])
    shared = own & _blobs(kept_repository, kept["image_digest"])
    assert own - shared and shared  # the base image's layers are shared
    assert all(_stored(digest) for digest in own)
    assert farm.http.delete(f"/api/models/{gone_model['id']}").status_code == 204
    subprocess.run(["bash", "scripts/registry_gc.sh"], cwd=ROOT, check=True, timeout=300)
    assert not any(_stored(digest) for digest in own - shared)
    base_url = Registry().base_url
    for digest in shared:  # still stored and still served to the model that uses them
        assert _stored(digest)
        assert httpx.head(f"{base_url}/v2/{kept_repository}/blobs/{digest}").status_code == 200
    assert _job(farm, kept["id"])["status"] == "SUCCEEDED"
