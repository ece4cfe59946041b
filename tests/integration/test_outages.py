"""Outage drills: the real registry, object store and database are stopped while work is under
way. The work ends READY or SUCCEEDED once they are back, nothing is left stuck, and nothing is
blamed on the package. Each drill brings the whole stack back even when it fails."""

import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import text

from core.db import SessionLocal
from core.lifecycle import JobStatus, VersionStatus
from core.models import Job, ModelVersion
from core.settings import settings
from tests.integration import stack
from tests.utils import API_URL, ROOT, make_zip

ONE_PROCESS_PORT = 8016
SLOW_SETUP = (
    "import time\n\nclass Predictor:\n    def setup(self):\n        time.sleep(10)\n\n"
    "    def predict(self, input_path, output_dir):\n        return {'ok': True}\n"
)
SLOW_PREDICT = (
    "import time\n\ndef predict(input_path, output_dir):\n    time.sleep(6)\n"
    "    (output_dir / 'echo.bin').write_bytes(input_path.read_bytes())\n"
    "    return {'slept': True}\n"
)


@pytest.fixture
def restore_stack():
    yield
    stack.postgres("start")
    stack.up()


def _attempts(table, row_id: str) -> int:
    with SessionLocal() as session:
        return session.get(table, uuid.UUID(row_id)).attempts


def _build_through(farm, docker_client, outage) -> dict:
    """Starts a build, runs `outage` while its smoke test runs, returns the finished version."""
    version = farm.start_build({"predict.py": SLOW_SETUP})
    stack.wait_for_sandbox(docker_client, work=version["id"])
    outage()
    done = farm.wait_version(version["id"], timeout=400)
    assert done["status"] == VersionStatus.READY, done["error"]
    assert _attempts(ModelVersion, version["id"]) == 1  # retried in place, not restarted
    return done


def _job_through(farm, docker_client, outage) -> dict:
    version = farm.build({"predict.py": SLOW_PREDICT})
    assert version["status"] == VersionStatus.READY, version["error"]
    job_id = farm.start_job(version["id"], b"payload")
    stack.wait_for_sandbox(docker_client, user=farm.user_id)
    outage()
    done = farm.wait_job(job_id, timeout=400)
    assert done["status"] == JobStatus.SUCCEEDED, done["error"]
    assert done["result"] == {"slept": True}
    assert farm.output_files(job_id)["echo.bin"] == b"payload"  # the model's finished work is kept
    assert _attempts(Job, job_id) == 1
    return done


def _down_for(seconds: float, stop, start):
    def outage() -> None:
        stop()
        time.sleep(seconds)
        start()

    return outage


def test_registry_down_during_the_push(new_user, docker_client, restore_stack):
    farm = new_user()
    outage = _down_for(15, lambda: stack.kill("registry"), stack.up)
    done = _build_through(farm, docker_client, outage)
    log = farm.http.get(f"/api/versions/{done['id']}/logs").text
    assert log.count("package: sha256") == 2, log  # the push failed once and was retried


def test_object_storage_down_during_a_build(new_user, docker_client, restore_stack):
    farm = new_user()
    _build_through(farm, docker_client, _down_for(20, lambda: stack.kill("seaweedfs"), stack.up))


def test_database_down_during_a_build(new_user, docker_client, restore_stack):
    farm = new_user()
    outage = _down_for(20, lambda: stack.postgres("stop"), lambda: stack.postgres("start"))
    _build_through(farm, docker_client, outage)


def test_database_down_during_a_job(new_user, docker_client, restore_stack):
    farm = new_user()
    outage = _down_for(20, lambda: stack.postgres("stop"), lambda: stack.postgres("start"))
    _job_through(farm, docker_client, outage)


def test_object_storage_down_during_a_job(new_user, docker_client, restore_stack):
    farm = new_user()
    _job_through(farm, docker_client, _down_for(15, lambda: stack.kill("seaweedfs"), stack.up))


def test_api_answers_503_while_the_database_is_down_and_recovers(new_user, restore_stack):
    farm = new_user()
    stack.postgres("stop")
    for response in (
        farm.http.get("/api/models"),
        farm.http.post("/api/models", json={"name": "while-down"}),
        farm.http.post("/api/users/login", data={"username": farm.email, "password": "x" * 9}),
    ):
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"].isdigit()
        assert response.json()["detail"] == "The database is unavailable; try again shortly."
    stack.postgres("start")
    assert stack.wait_for(lambda: farm.http.get("/api/models").status_code == 200, "recovery", 30)
    assert farm.http.post("/api/models", json={"name": "after"}).status_code == 201


def test_no_request_fails_after_a_database_restart(new_user, restore_stack):
    """The pools' connections die with the database, unseen: each is pinged before it is used
    again after being idle, and replaced, so no request after the restart fails."""
    farm = new_user()
    for _ in range(10):  # connections in each API process's pool
        assert farm.http.get("/api/models").status_code == 200
    stack.postgres("stop")
    stack.postgres("start")  # returns once it accepts connections
    assert [farm.http.get("/api/models").status_code for _ in range(10)] == [200] * 10


def test_a_stuck_read_is_cut_short_with_a_503_and_the_api_goes_on(new_user):
    """Reads run on the API's event loop (api/deps.py): one held up by a lock answers 503 after
    MODELFARM_REQUEST_DEADLINE_S instead of holding up its process for good."""
    farm = new_user()
    assert farm.http.get("/api/users/me").status_code == 200
    with SessionLocal() as session, session.begin():
        session.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))
        stuck = farm.http.get("/api/users/me", timeout=settings.request_deadline_s * 4)
    assert stuck.status_code == 503, stuck.text
    assert stuck.json()["detail"] == "The database is unavailable; try again shortly."
    assert [farm.http.get("/api/users/me").status_code for _ in range(4)] == [200] * 4


def test_a_write_held_up_by_a_lock_holds_up_no_read_and_answers_503(new_user, tmp_path):
    """Writes run their queries in worker threads (api/deps.py): one waiting on a lock leaves
    its process's event loop, and the reads on it, free; past the request deadline (its
    session's lock_timeout) it answers 503 rather than wait on. One API process, so that the
    reads cannot go to another."""
    farm = new_user()
    me = {"Authorization": f"Bearer {farm.token}"}
    with (
        # A deadline long enough for the reads to be done before it (a busy machine's too).
        stack.api_process(ONE_PROCESS_PORT, tmp_path / "api.log", REQUEST_DEADLINE_S="10") as url,
        ThreadPoolExecutor(1) as pool,
        SessionLocal() as session,
        session.begin(),
    ):
        # A new model's owner key needs this row: the insert waits for the lock.
        session.execute(text("SELECT 1 FROM users WHERE id = :id FOR UPDATE"), {"id": farm.user_id})
        write = pool.submit(
            httpx.post, f"{url}/api/models", json={"name": "behind-a-lock"}, headers=me, timeout=30
        )
        assert stack.wait_for(_a_query_waits_for_a_lock, "the write to wait for the lock", 10)
        reads = [httpx.get(f"{url}/api/users/me", headers=me, timeout=3) for _ in range(5)]
        assert not write.done()
        refused = write.result(timeout=30)
    assert [read.status_code for read in reads] == [200] * 5
    assert refused.status_code == 503, refused.text
    assert refused.json()["detail"] == "The database is unavailable; try again shortly."


def _a_query_waits_for_a_lock() -> bool:
    with SessionLocal() as session:
        return bool(session.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")))


def test_api_answers_503_while_object_storage_is_down(new_user, restore_stack):
    farm = new_user()
    created = farm.http.post(f"/api/models/{farm.create_model()['id']}/versions").json()
    assert httpx.put(created["upload_url"], content=make_zip({"predict.py": ""})).is_success
    stack.kill("seaweedfs")
    response = farm.http.post(f"/api/versions/{created['version']['id']}/build")
    assert response.status_code == 503, response.text
    assert response.json()["detail"] == "Object storage is unavailable; try again shortly."
    assert farm.http.get(f"/api/versions/{created['version']['id']}").json()["status"] == (
        VersionStatus.UPLOADING
    )


def test_an_api_process_restarting_while_object_storage_is_down_starts(restore_stack):
    """uvicorn restarts an API process that dies, and stops all of them if the new one fails to
    start: one that restarts during an object-storage outage must start, and serve."""
    api, before = stack.pid_of("api"), stack.api_workers()
    stack.kill("seaweedfs")
    stack.kill_pid(min(before))
    stack.wait_for(lambda: len(stack.api_workers() - before) == 1, "a new API process", 60)
    # Past the new process's start-up, which gives up on object storage within ~5 s.
    time.sleep(8)
    assert stack.alive(api), "the API's processes all stopped"
    assert len(stack.api_workers()) == len(before)
    for _ in range(20):  # whichever process takes each request answers it
        health = httpx.get(f"{API_URL}/health", timeout=30)
        assert health.status_code == 503
        assert not health.json()["checks"]["object_storage"]["ok"]


def test_up_waits_for_a_service_that_is_still_stopping(restore_stack):
    """SeaweedFS takes ~25 s to stop on SIGTERM: an up.sh meanwhile must not take it for a
    running service, but wait for it to go and start it again."""
    down = subprocess.Popen(["bash", str(ROOT / "scripts/down.sh"), "seaweedfs"])
    stack.wait_for(lambda: (stack.RUN_DIR / "seaweedfs.stopping").exists(), "down.sh", 10)
    stack.up()
    assert down.wait(timeout=120) == 0
    assert httpx.get(f"{API_URL}/health").json()["checks"]["object_storage"]["ok"]
    assert stack.pid_of("seaweedfs") > 0
