"""Logs that follow one piece of work on the real stack: one request id, given by the client or
made by the API, finds the request, the build or run it started and its outcome, in the JSON
lines of the API's and the workers' logs."""

import json
import uuid

import pytest

from core.settings import settings
from tests.integration.stack import wait_for
from tests.utils import ROOT, inline, make_zip

LOGS = ROOT / settings.data_dir / "logs"
ECHO = "def predict(input_path, output_dir):\n    return {'size': input_path.stat().st_size}\n"


def lines_with(request_id: str, service: str) -> list[dict]:
    """The JSON lines of a service's log that carry the request id."""
    found = []
    with (LOGS / f"{service}.log").open() as log:
        for line in log:
            if request_id in line:
                found.append(json.loads(line))
    return [each for each in found if each.get("request_id") == request_id]


def logged(request_id: str, service: str, event: str) -> list[dict]:
    """The lines of an event with the request id, once the service has logged it."""
    return wait_for(
        lambda: [e for e in lines_with(request_id, service) if e["event"] == event],
        f"{event!r} in the {service} log", 60,
    )  # fmt: skip


def test_one_request_id_follows_a_job_from_the_api_to_its_outcome(new_user):
    farm = new_user()
    version = farm.build({"predict.py": ECHO})
    request_id = f"test-{uuid.uuid4().hex}"
    response = farm.submit(
        version["id"], {"X-Request-ID": request_id, "Prefer": "wait=60"}, input=inline("hi")
    )
    assert response.headers["X-Request-ID"] == request_id
    job_id = response.json()["job"]["id"]
    (request,) = logged(request_id, "api", "request")  # logged just after the response is sent
    assert request["path"] == "/api/jobs" and request["status"] == 201
    assert request["user_id"] == farm.user_id and request["method"] == "POST"
    ended = logged(request_id, "inference-worker", "job ended")
    assert ended[0]["job_id"] == job_id and ended[0]["status"] == "SUCCEEDED"
    events = {each["event"] for each in lines_with(request_id, "inference-worker")}
    assert "job started" in events


def test_one_request_id_follows_a_build(new_user):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], make_zip({"predict.py": ECHO + "#"}))
    request_id = f"test-{uuid.uuid4().hex}"
    started = farm.http.post(
        f"/api/versions/{version['id']}/build", headers={"X-Request-ID": request_id}
    )
    assert started.status_code == 202
    assert farm.wait_version(version["id"])["status"] == "READY"
    ended = logged(request_id, "build-worker", "build ended")
    assert ended[0]["version_id"] == version["id"] and ended[0]["status"] == "READY"
    assert ended[0]["model_id"] == version["model_id"]


@pytest.mark.parametrize("given", [None, "has space", "x" * 200, "naïve"])
def test_a_request_id_that_is_not_a_plain_token_is_replaced_by_a_new_one(anonymous, given):
    headers = {"X-Request-ID": given.encode()} if given else {}
    response = anonymous.get("/health", headers=headers)
    made = response.headers["X-Request-ID"]
    assert made != given and len(made) == 32 and int(made, 16) >= 0
    assert logged(made, "api", "request")[0]["path"] == "/health"
