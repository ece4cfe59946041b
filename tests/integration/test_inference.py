"""Jobs on built images: outputs behind presigned URLs, pulling by digest, concurrency."""

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import httpx

from core.lifecycle import JobStatus, VersionStatus
from core.settings import settings
from tests.utils import ROOT, make_zip

ECHO = ROOT / "examples" / "echo" / "predict.py"


def _echo_package(extra: str = "") -> bytes:
    return make_zip({"predict.py": ECHO.read_text() + extra})


def test_job_outputs_are_listed_and_download_the_bytes_the_model_wrote(new_user):
    farm = new_user()
    version = farm.build(_echo_package())
    assert version["status"] == VersionStatus.READY, version["error"]
    data = os.urandom(200_000)
    job = farm.run(version["id"], data)
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    digest = hashlib.sha256(data).hexdigest()
    assert job["result"] == {"size": len(data), "sha256": digest}
    assert job["run_seconds"] > 0 and job["started_at"] and job["finished_at"]
    listing = farm.http.get(f"/api/jobs/{job['id']}/outputs").json()
    assert listing["expires_in"] == settings.presigned_url_lifetime_s
    names = {o["name"] for o in listing["outputs"]}
    assert names == {"echo.txt", "result.json"}  # and no run.log: the model printed nothing
    files = farm.output_files(job["id"])
    assert files["echo.txt"].decode() == f"{len(data)} bytes, sha256 {digest}\n"
    for output in listing["outputs"]:
        assert output["size"] == len(files[output["name"]])
        assert f"X-Amz-Expires={settings.presigned_url_lifetime_s}" in output["url"]


def test_image_is_pulled_by_digest_when_missing_locally(new_user, docker_client):
    farm = new_user()
    version = farm.build(_echo_package("# pulled\n"))
    assert version["status"] == VersionStatus.READY
    repository = f"{settings.registry}/models/{version['model_id']}"
    for image in docker_client.images.list(name=repository):
        docker_client.images.remove(image.id, force=True)
    job = farm.run(version["id"], b"pull me")
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    assert docker_client.images.get(version["image_ref"]).id


def test_concurrent_jobs_of_several_models_do_not_interfere(new_user):
    farm = new_user()
    versions = [farm.build(_echo_package(f"# model {n}\n")) for n in range(2)]
    inputs = [(versions[n % 2]["id"], os.urandom(1000 + n)) for n in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        jobs = list(pool.map(lambda item: farm.run(*item), inputs))
    for (version_id, data), job in zip(inputs, jobs, strict=True):
        assert job["status"] == JobStatus.SUCCEEDED, job["error"]
        assert job["version_id"] == version_id
        assert job["result"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_public_model_can_be_run_by_another_user_who_alone_sees_the_job(new_user):
    alice, bob = new_user(), new_user()
    model = alice.create_model(visibility="public")
    version = alice.build(_echo_package("# public\n"), model["id"])
    job = bob.run(version["id"], b"from bob")
    assert job["status"] == JobStatus.SUCCEEDED and job["owner_id"] == bob.user_id
    assert alice.http.get(f"/api/jobs/{job['id']}").status_code == 404
    assert alice.http.get(f"/api/jobs/{job['id']}/outputs").status_code == 404
    assert bob.output_files(job["id"])["result.json"]


def test_running_a_job_twice_is_409(new_user):
    farm = new_user()
    version = farm.build(_echo_package("# twice\n"))
    job = farm.run(version["id"], b"once")
    again = farm.http.post(f"/api/jobs/{job['id']}/run")
    assert again.status_code == 409


def test_presigned_output_url_is_refused_once_tampered(new_user):
    farm = new_user()
    version = farm.build(_echo_package("# tamper\n"))
    job = farm.run(version["id"], b"secret output")
    url = farm.http.get(f"/api/jobs/{job['id']}/outputs").json()["outputs"][0]["url"]
    other_job = url.replace(job["id"], "00000000-0000-0000-0000-000000000000")
    assert httpx.get(other_job).status_code == 403


SHADOWING = """\
from pathlib import Path


def predict(text: str, output_dir: Path = None) -> dict:
    print("the model's own line")
    (output_dir / "run.log").write_text("forged")
    return {}
"""


def test_an_output_named_like_the_farm_s_own_log_fails_the_job_and_the_log_stays(new_user):
    farm = new_user()
    version = farm.build({"predict.py": SHADOWING})
    assert version["status"] == VersionStatus.READY, version["error"]
    job = farm.predict(version["id"], {"text": "x"}, wait_s=60)
    assert job["status"] == JobStatus.FAILED
    assert "'run.log' takes a name the farm keeps for its own files" in job["error"]
    log = farm.job_log(job["id"])
    assert "the model's own line" in log and "forged" not in log
