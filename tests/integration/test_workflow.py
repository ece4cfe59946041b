"""End to end: the curl workflow script on both examples against the live stack."""

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from core.db import SessionLocal
from core.models import Job, User
from tests.utils import API_URL, ROOT, remove_user

DIGITS = ROOT / "examples" / "digits-onnx"
LABELS = json.loads((DIGITS / "samples" / "labels.json").read_text())


@pytest.fixture
def account(storage, docker_client):
    """Credentials for the workflow script; the account and all it made go at teardown."""
    email = f"flow-{uuid.uuid4().hex[:10]}@example.com"
    yield {"MODELFARM_EMAIL": email, "MODELFARM_PASSWORD": "flow-password"}
    with SessionLocal() as session:
        user_id = session.scalar(select(User.id).where(User.email == email))
    if user_id:
        remove_user(user_id, storage, docker_client)


def pack(example: Path, target: Path) -> Path:
    subprocess.run([sys.executable, ROOT / "scripts" / "pack.py", example, target], check=True)
    return target


def run_workflow(account: dict, package: Path, input_file: Path, **extra: str):
    """scripts/workflow.sh as a user runs it; extra variables override the account's."""
    env = {**os.environ, **account, "MODELFARM_API": API_URL, "PACKAGE": str(package),
           "INPUT": str(input_file), **extra}  # fmt: skip
    return subprocess.run(
        ["bash", ROOT / "scripts" / "workflow.sh"], env=env, capture_output=True, text=True,
        timeout=1200,
    )  # fmt: skip


def workflow(account: dict, package: Path, input_file: Path, out_dir: Path):
    done = run_workflow(account, package, input_file, OUT_DIR=str(out_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), done.stderr


def test_digits_workflow_classifies_every_sample_and_reuses_the_image(account, tmp_path):
    package = pack(DIGITS, tmp_path / "digits.zip")
    reuse_lines = []
    for name, label in sorted(LABELS.items()):
        result, log = workflow(account, package, DIGITS / "samples" / name, tmp_path / name)
        assert result["label"] == label, (name, result)
        assert abs(sum(result["probabilities"].values()) - 1) < 1e-3
        csv = (tmp_path / name / "probabilities.csv").read_text().splitlines()
        assert csv[0] == "digit,probability" and len(csv) == 11
        reuse_lines.append(next(line for line in log.splitlines() if "READY in" in line))
    assert "reused: false" in reuse_lines[0]
    assert all("reused: true" in line for line in reuse_lines[1:])


def test_echo_workflow_downloads_the_same_bytes_as_stored(account, tmp_path, storage):
    data = os.urandom(4096)
    (tmp_path / "input.bin").write_bytes(data)
    package = pack(ROOT / "examples" / "echo", tmp_path / "echo.zip")
    result, _ = workflow(account, package, tmp_path / "input.bin", tmp_path / "out")
    assert result == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    with SessionLocal() as session:
        job = session.scalars(
            select(Job).join(User).where(User.email == account["MODELFARM_EMAIL"])
        ).one()
        outputs = job.outputs
    for output in outputs:
        downloaded = (tmp_path / "out" / output["name"]).read_bytes()
        assert downloaded == storage.get_bytes(output["key"])
    assert json.loads((tmp_path / "out" / "result.json").read_text()) == result


def test_second_user_sees_nothing_of_the_first_users_workflow(account, tmp_path, new_user):
    package = pack(ROOT / "examples" / "echo", tmp_path / "echo.zip")
    (tmp_path / "in.txt").write_text("private")
    workflow(account, package, tmp_path / "in.txt", tmp_path / "out")
    with SessionLocal() as session:
        job = session.scalars(
            select(Job).join(User).where(User.email == account["MODELFARM_EMAIL"])
        ).one()
        ids = {"model": job.version.model_id, "version": job.version_id, "job": job.id}
    intruder = new_user()
    for path in (
        f"/api/models/{ids['model']}",
        f"/api/versions/{ids['version']}",
        f"/api/versions/{ids['version']}/logs",
        f"/api/jobs/{ids['job']}",
        f"/api/jobs/{ids['job']}/outputs",
    ):
        assert intruder.http.get(path).status_code == 404, path
    assert intruder.http.get("/api/jobs").json()["total"] == 0


def test_workflow_fails_fast_with_the_apis_message(account, tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    (tmp_path / "in.txt").write_text("x")
    done = run_workflow(account, tmp_path / "broken.zip", tmp_path / "in.txt")
    assert done.returncode != 0
    assert "build FAILED: The upload is not a valid ZIP archive" in done.stderr
    wrong = run_workflow(
        account, tmp_path / "broken.zip", tmp_path / "in.txt", MODELFARM_PASSWORD="wrong-password"
    )
    assert wrong.returncode != 0 and "HTTP 401: Incorrect email or password" in wrong.stderr
    assert httpx.get(f"{API_URL}/health").status_code == 200
