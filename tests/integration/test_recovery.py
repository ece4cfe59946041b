"""A worker killed with SIGKILL mid-task: the work is taken over, never left in progress."""

import os
import signal
import subprocess
import time
import uuid

import pytest

from core.db import SessionLocal
from core.lifecycle import JobStatus, VersionStatus
from core.models import Job, ModelVersion
from core.queue import BUILD_QUEUE, send_build
from core.settings import settings
from tests.integration import stack
from tests.utils import ROOT, make_zip
from workers.build.builder import IMAGE_PUT
from workers.run.sandbox import USER_LABEL
from workers.workdirs import work_dir

SLOW_SETUP = (
    "import time\n\nclass Predictor:\n    def setup(self):\n        time.sleep(12)\n\n"
    "    def predict(self, input_path, output_dir):\n        return {'ok': True}\n"
)
SLOW_PREDICT = (
    "import time\n\ndef predict(input_path, output_dir):\n    time.sleep(6)\n"
    "    return {'slept': True}\n"
)


def test_build_survives_its_worker_process_being_killed(new_user, docker_client):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], make_zip({"predict.py": SLOW_SETUP}))
    farm.http.post(f"/api/versions/{version['id']}/build")
    stack.wait_for_sandbox(docker_client, work=version["id"])  # the smoke test is running
    for child in stack.children_of(stack.pid_of("build-worker")):
        os.kill(child, signal.SIGKILL)
    assert farm.version(version["id"])["status"] == VersionStatus.BUILDING
    done = farm.wait_version(version["id"], timeout=300)
    assert done["status"] == VersionStatus.READY, done["error"]
    with SessionLocal() as session:
        assert session.get(ModelVersion, uuid.UUID(version["id"])).attempts == 2


@pytest.fixture
def second_inference_worker():
    """Another inference worker on this host, started on demand; the stack's own worker is
    started again at teardown."""
    started: list[subprocess.Popen] = []

    def start() -> None:
        command = [
            str(ROOT / ".venv/bin/celery"), "-A", "workers.celery_app", "worker",
            "-Q", "inference", "-n", "second-inference@%h", "--concurrency", "1",
        ]  # fmt: skip
        log = (ROOT / settings.data_dir / "logs" / "second-inference-worker.log").open("ab")
        started.append(subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log))

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=60)
    stack.up()


def test_a_killed_workers_job_is_taken_over_by_another_worker(
    new_user, docker_client, second_inference_worker
):
    """The whole inference worker dies and is not restarted: once its claim expires the
    reconciler sends the job again and another worker runs it (long before Redis' visibility
    timeout would hand the message back)."""
    farm = new_user()
    version = farm.build({"predict.py": SLOW_PREDICT})
    assert version["status"] == VersionStatus.READY, version["error"]
    job_id = farm.start_job(version["id"], b"x")
    stack.wait_for_sandbox(docker_client, user=farm.user_id)
    stack.kill("inference-worker")
    assert farm.job(job_id)["status"] == JobStatus.RUNNING
    second_inference_worker()
    done = farm.wait_job(job_id, timeout=300)
    assert done["status"] == JobStatus.SUCCEEDED, done["error"]
    assert done["result"] == {"slept": True}
    with SessionLocal() as session:
        assert session.get(Job, uuid.UUID(job_id)).attempts == 2
    # The dead worker's warm container was removed; the one that ran the job again serves on.
    mine = docker_client.containers.list(
        all=True, filters={"label": f"{USER_LABEL}={farm.user_id}"}
    )
    assert [container.status for container in mine] == ["running"]


def test_a_restarted_worker_removes_its_predecessors_scratch_folders(new_user):
    leftover = work_dir(BUILD_QUEUE) / "build-left-by-a-killed-worker"
    (leftover / "source").mkdir(parents=True)
    (leftover / "source" / "weights.bin").write_bytes(b"x" * 1024)
    stack.kill("build-worker")
    stack.up()
    stack.wait_for(lambda: not leftover.exists(), "the new worker cleaning up", timeout=60)
    farm = new_user()
    assert farm.build({"predict.py": SLOW_PREDICT})["status"] == VersionStatus.READY


def test_a_build_delivered_twice_builds_once(new_user):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], make_zip({"predict.py": SLOW_PREDICT}))
    farm.http.post(f"/api/versions/{version['id']}/build")
    send_build(version["id"])  # the broker delivering the same task again
    done = farm.wait_version(version["id"], timeout=300)
    assert done["status"] == VersionStatus.READY, done["error"]
    log = farm.http.get(f"/api/versions/{version['id']}/logs").text
    assert log.count(IMAGE_PUT) == 1
    with SessionLocal() as session:
        assert session.get(ModelVersion, uuid.UUID(version["id"])).attempts == 1


def test_build_log_is_readable_while_the_build_runs(new_user, docker_client):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], make_zip({"predict.py": SLOW_SETUP}))
    farm.http.post(f"/api/versions/{version['id']}/build")
    stack.wait_for_sandbox(docker_client, work=version["id"])  # the smoke test runs for 12 s
    time.sleep(3)  # the log is flushed every 2 s
    assert farm.version(version["id"])["status"] == VersionStatus.BUILDING
    assert "Step 3/12 : RUN" in farm.http.get(f"/api/versions/{version['id']}/logs").text
    farm.wait_version(version["id"], timeout=300)
