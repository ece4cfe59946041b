"""A worker killed with SIGKILL mid-task: the work is taken over, never left in progress."""

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from core.db import SessionLocal
from core.models import Job, ModelVersion
from core.settings import settings
from tests.conftest import ROOT_DIR, make_zip

RUN_DIR = Path(ROOT_DIR, settings.data_dir, "run")
SLOW_SETUP = (
    "import time\n\nclass Predictor:\n    def setup(self):\n        time.sleep(12)\n\n"
    "    def predict(self, input_path, output_dir):\n        return {'ok': True}\n"
)
SLOW_PREDICT = (
    "import time\n\ndef predict(input_path, output_dir):\n    time.sleep(6)\n"
    "    return {'slept': True}\n"
)


def _worker_pid(name: str) -> int:
    return int((RUN_DIR / f"{name}.pid").read_text())


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in found.split()]


def _wait_for_sandbox(docker_client, work_id: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    label = f"org.modelfarm.work={work_id}"
    while not docker_client.containers.list(filters={"label": label}):
        assert time.monotonic() < deadline, "the sandbox container never started"
        time.sleep(0.2)


def test_build_survives_its_worker_process_being_killed(new_user, docker_client):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], make_zip({"predict.py": SLOW_SETUP}))
    farm.http.post(f"/api/versions/{version['id']}/build")
    _wait_for_sandbox(docker_client, version["id"])  # the smoke test is running
    for child in _children(_worker_pid("build-worker")):
        os.kill(child, signal.SIGKILL)
    assert farm.http.get(f"/api/versions/{version['id']}").json()["status"] == "BUILDING"
    done = farm.wait(f"/api/versions/{version['id']}", {"READY", "FAILED"}, timeout=300)
    assert done["status"] == "READY", done["error"]
    with SessionLocal() as session:
        assert session.get(ModelVersion, uuid.UUID(version["id"])).attempts == 2


def test_job_survives_the_whole_inference_worker_being_killed(new_user, docker_client):
    farm = new_user()
    version = farm.build({"predict.py": SLOW_PREDICT})
    assert version["status"] == "READY", version["error"]
    created = farm.http.post("/api/jobs", json={"version_id": version["id"]}).json()
    job_id = created["job"]["id"]
    assert subprocess.run(["curl", "-sfT", "-", created["upload_url"]], input=b"x").returncode == 0
    farm.http.post(f"/api/jobs/{job_id}/run")
    _wait_for_sandbox(docker_client, job_id)
    master = _worker_pid("inference-worker")
    for pid in [*_children(master), master]:
        os.kill(pid, signal.SIGKILL)
    assert farm.http.get(f"/api/jobs/{job_id}").json()["status"] == "RUNNING"
    # Starting the worker again removes the dead worker's container and re-queues the job.
    subprocess.run(["bash", f"{ROOT_DIR}/scripts/up.sh"], check=True, capture_output=True)
    done = farm.wait(f"/api/jobs/{job_id}", {"SUCCEEDED", "FAILED"}, timeout=300)
    assert done["status"] == "SUCCEEDED", done["error"]
    assert done["result"] == {"slept": True}
    with SessionLocal() as session:
        assert session.get(Job, uuid.UUID(job_id)).attempts == 2
    label = f"org.modelfarm.work={job_id}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []


def test_a_build_delivered_twice_builds_once(new_user):
    from workers.celery_app import send_build

    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], make_zip({"predict.py": SLOW_PREDICT}))
    farm.http.post(f"/api/versions/{version['id']}/build")
    send_build(version["id"])  # the broker delivering the same task again
    done = farm.wait(f"/api/versions/{version['id']}", {"READY", "FAILED"}, timeout=300)
    assert done["status"] == "READY", done["error"]
    log = farm.http.get(f"/api/versions/{version['id']}/logs").text
    assert log.count("Successfully built") == 1
    with SessionLocal() as session:
        assert session.get(ModelVersion, uuid.UUID(version["id"])).attempts == 1


def test_build_log_is_readable_while_the_build_runs(new_user, docker_client):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], make_zip({"predict.py": SLOW_SETUP}))
    farm.http.post(f"/api/versions/{version['id']}/build")
    _wait_for_sandbox(docker_client, version["id"])  # the smoke test runs for 12 s
    time.sleep(3)  # the log is flushed every 2 s
    assert farm.http.get(f"/api/versions/{version['id']}").json()["status"] == "BUILDING"
    assert "Successfully built" in farm.http.get(f"/api/versions/{version['id']}/logs").text
    farm.wait(f"/api/versions/{version['id']}", {"READY", "FAILED"}, timeout=300)
