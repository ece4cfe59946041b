"""Hostile models against the real sandbox: each attack is refused and the job ends cleanly,
under both container runtimes: runc, and gVisor (runsc), which the model asks for in its
modelfarm.yaml."""

import os
from pathlib import Path

import pytest

from core.lifecycle import JobStatus, VersionStatus
from core.settings import settings
from tests.utils import make_zip
from workers.build.smoke import STANDBY_WORK
from workers.run.sandbox import WORK_LABEL

HOSTILE = Path(__file__).parent / "models" / "hostile"


# gVisor's own kernel reports this release, whatever the host runs.
GVISOR_RELEASE = "4.4.0"


@pytest.fixture(scope="module", params=["runc", "runsc"])
def hostile(new_user_module, request):
    """One READY image of the hostile model per runtime, shared by the tests of this module."""
    farm = new_user_module()
    files = {path.name: path.read_bytes() for path in HOSTILE.iterdir()}
    files["modelfarm.yaml"] += f"runtime: {request.param}\n".encode()
    version = farm.build(make_zip(files))
    assert version["status"] == VersionStatus.READY, version["error"]
    return farm, version, request.param


def _attack(hostile, name: str) -> dict:
    farm, version, _runtime = hostile
    return farm.run(version["id"], name.encode(), timeout=120)


def test_the_model_meets_the_kernel_of_its_runtime(hostile):
    job = _attack(hostile, "kernel")
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    under_gvisor = job["result"]["release"] == GVISOR_RELEASE
    assert under_gvisor == (hostile[2] == "runsc"), job["result"]
    assert (os.uname().release in job["result"]["version"]) == (hostile[2] == "runc")


def test_no_network_at_all(hostile):
    job = _attack(hostile, "network")
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    # The host's Redis listens on 127.0.0.1:6379, but the model only has a loopback of its own.
    assert job["result"]["connect"].startswith("refused: ConnectionRefusedError"), job["result"]
    assert job["result"]["resolve"].startswith("refused: gaierror"), job["result"]


def test_root_filesystem_is_read_only_and_user_is_not_root(hostile):
    job = _attack(hostile, "write_system")
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    result = job["result"]
    assert result["uid"] == 10001
    for place in ("usr", "etc", "model"):
        assert "Read-only file system" in result[place] or "Permission denied" in result[place]


def test_container_gets_none_of_the_workers_environment(hostile):
    job = _attack(hostile, "environment")
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    dumped = str(job["result"])
    assert not any(key.startswith("MODELFARM") for key in job["result"])
    for secret in (settings.jwt_secret, settings.s3_secret_key, settings.database_url):
        assert secret not in dumped


def test_fork_bomb_is_contained(hostile, anonymous):
    """By the pids limit under runc. Under gVisor the model's processes are gVisor's, not the
    host's, so the host's pids limit does not see them: the bomb meets the memory limit."""
    job = _attack(hostile, "fork_bomb")
    if hostile[2] == "runc":
        assert job["status"] == JobStatus.SUCCEEDED, job["error"]
        assert job["result"]["children"] < settings.sandbox_pids
        assert job["result"]["stopped_by"] == "BlockingIOError"
    else:
        assert job["status"] == JobStatus.FAILED
        assert job["error"] == "The model ran out of memory (limit 128 MB)."
    assert anonymous.get("/health").status_code == 200


def test_memory_past_the_limit_fails_as_out_of_memory(hostile):
    job = _attack(hostile, "memory")
    assert job["status"] == JobStatus.FAILED
    assert job["error"] == "The model ran out of memory (limit 128 MB)."
    assert job["exit_code"] == 137


def test_model_that_never_returns_is_killed_at_its_timeout(hostile):
    job = _attack(hostile, "sleep_forever")
    assert job["status"] == JobStatus.FAILED
    assert job["error"] == "The model timed out after 8 s."


def test_endless_output_is_stopped_by_the_output_limit(hostile):
    job = _attack(hostile, "flood_disk")
    assert job["status"] == JobStatus.FAILED
    assert "No space left on device" in job["error"]


def test_too_many_output_files_fail_the_job(hostile):
    job = _attack(hostile, "many_files")
    assert job["status"] == JobStatus.FAILED
    assert "more than 100 files" in job["error"]


def test_logs_are_kept_to_a_bounded_size(hostile):
    job = _attack(hostile, "shout")
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    farm = hostile[0]
    log = farm.output_files(job["id"])["run.log"]
    assert 0 < len(log) <= settings.sandbox_log_kb * 1024


def test_model_exception_fails_the_job_with_a_structured_error(hostile):
    job = _attack(hostile, "fail")
    assert job["status"] == JobStatus.FAILED
    assert job["error"].startswith("The model's predict failed: ValueError: this input makes no")
    assert 'predict.py", line' in job["error"] and "in fail" in job["error"]
    assert job["exit_code"] == 4


def test_no_sandbox_container_is_left_behind(hostile, docker_client):
    _attack(hostile, "fail")
    leftovers = docker_client.containers.list(all=True, filters={"label": "org.modelfarm.sandbox"})
    # but the build worker's sandbox started ahead for its next smoke test (standby.py)
    assert [c for c in leftovers if c.labels[WORK_LABEL] != STANDBY_WORK] == []
