"""An owner's removal stays within the owner's data (core/removal.py), on the real stack: when
the owner of a public model removes a version, or the whole model, another user's finished job
on it keeps its row, result and outputs (detached: its version_id becomes null), their job that
had not ended is canceled with a sentence saying why, and the owner's own jobs go. Removing an
account is such a removal of all its owner's models, with its jobs, files, tokens and row."""

import uuid

import httpx
import pytest
from sqlalchemy import func, select

from core.db import SessionLocal
from core.models import ApiToken, User
from core.registry import Registry, model_repository
from core.removal import WITHDRAWN
from core.storage import job_log_key, package_key
from tests.integration.stack import wait_for
from tests.utils import API_URL, PASSWORD, inline

PREDICT = """\
import time
def predict(input_path, output_dir):
    if open(input_path).read() == "slow":
        time.sleep(120)
    (output_dir / "kept.txt").write_text("still here")
    return {"ok": True}
"""


def _job(farm, version_id: str, text: str, wait: bool = True) -> dict:
    headers = {"Prefer": "wait=60"} if wait else None
    response = farm.submit(version_id, headers, input=inline(text))
    assert response.status_code == 201, response.text
    return response.json()["job"]


@pytest.mark.parametrize("removed", ["version", "model"])
def test_an_owners_removal_keeps_other_users_jobs_and_cancels_theirs_not_ended(
    new_user, storage, removed
):
    owner, user = new_user(), new_user()
    model = owner.create_model(visibility="public")
    version = owner.build({"predict.py": PREDICT}, model_id=model["id"])
    own = _job(owner, version["id"], "hi")
    finished = _job(user, version["id"], "hi")
    assert own["status"] == finished["status"] == "SUCCEEDED"
    running = _job(user, version["id"], "slow", wait=False)
    wait_for(lambda: user.job(running["id"])["status"] == "RUNNING", "the job running", 120)

    path = (
        f"/api/versions/{version['id']}" if removed == "version" else f"/api/models/{model['id']}"
    )
    assert owner.http.delete(path).status_code == 204

    kept = user.job(finished["id"])
    assert kept["status"] == "SUCCEEDED" and kept["result"] == {"ok": True}
    assert kept["version_id"] is None  # detached
    outputs = {each["name"]: each["url"] for each in user.outputs(finished["id"])}
    assert httpx.get(outputs["kept.txt"]).text == "still here"
    canceled = wait_for(
        lambda: (job := user.job(running["id"]))["status"] != "RUNNING" and job,
        "the running job ended", 60,
    )  # fmt: skip
    assert canceled["status"] == "CANCELED" and canceled["error"] == WITHDRAWN
    assert owner.http.get(f"/api/jobs/{own['id']}").status_code == 404
    assert storage.size(job_log_key(own["id"])) is None
    assert user.http.get(f"/api/versions/{version['id']}").status_code == 404
    refused = user.submit(version["id"], input=inline("hi"))
    assert refused.status_code == 404


def test_removing_an_account_takes_all_of_its_own_and_nothing_of_others(new_user, storage):
    owner, user = new_user(), new_user()
    model = owner.create_model(visibility="public")
    version = owner.build({"predict.py": PREDICT}, model_id=model["id"])
    own, theirs = _job(owner, version["id"], "hi"), _job(user, version["id"], "hi")
    token = owner.create_token("ci", ["read", "build", "run"])["token"]
    with httpx.Client(base_url=API_URL, headers={"Authorization": f"Bearer {token}"}) as http:
        by_token = http.request("DELETE", "/api/users/me", json={"password": PASSWORD})
    assert by_token.status_code == 403 and "takes a login token" in by_token.text
    wrong = owner.http.request("DELETE", "/api/users/me", json={"password": "not-it"})
    assert wrong.status_code == 403 and "nothing was removed" in wrong.text

    removed = owner.http.request("DELETE", "/api/users/me", json={"password": PASSWORD})
    assert removed.status_code == 204, removed.text
    assert owner.http.get("/api/users/me").status_code == 401
    login = {"username": owner.email, "password": PASSWORD}
    assert httpx.post(f"{API_URL}/api/users/login", data=login).status_code == 401
    with SessionLocal() as session:
        assert session.get(User, uuid.UUID(owner.user_id)) is None
        assert session.scalar(select(func.count()).where(ApiToken.user_id == owner.user_id)) == 0
    assert storage.size(job_log_key(own["id"])) is None
    assert storage.size(package_key(version["id"])) is None
    assert Registry().manifest_digest(model_repository(model["id"]), "v1") is None
    kept = user.job(theirs["id"])
    assert kept["status"] == "SUCCEEDED" and kept["version_id"] is None
    outputs = {each["name"]: each["url"] for each in user.outputs(theirs["id"])}
    assert httpx.get(outputs["kept.txt"]).text == "still here"
