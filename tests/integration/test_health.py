"""GET /health against the live stack, and with a component really unreachable."""

from fastapi.testclient import TestClient

from api.main import app
from api.routes import health
from core.lifecycle import VersionStatus
from core.registry import Registry

COMPONENTS = {"database", "redis", "object_storage", "registry", "docker"}


def test_health_is_green_with_every_component_up(anonymous):
    response = anonymous.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["down"] == []
    assert set(body["checks"]) == COMPONENTS


def test_health_names_the_component_that_is_down(monkeypatch):
    # Port 9 (discard) on loopback has no listener here: a real refused connection.
    monkeypatch.setattr(
        health, "_registry", lambda: Registry("http://127.0.0.1:9", timeout=2).ping()
    )
    with TestClient(app) as client:
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["registry"]
    assert "ConnectError" in body["checks"]["registry"]["error"]
    assert body["checks"]["database"]["ok"] and body["checks"]["docker"]["ok"]


def test_queue_outage_is_503_and_leaves_the_version_waiting(new_user, monkeypatch):
    """The broker refusing the task (a real refused connection) rolls the version back."""
    import redis

    from api.routes import versions
    from tests.utils import make_zip

    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], make_zip({"predict.py": "x = 1\n"}))
    unreachable = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=2)
    monkeypatch.setattr(versions, "send_build", lambda version_id: unreachable.rpush("build", 1))
    token = farm.http.headers["Authorization"]
    with TestClient(app) as client:
        response = client.post(
            f"/api/versions/{version['id']}/build", headers={"Authorization": token}
        )
    assert response.status_code == 503, response.text
    assert "nothing was queued" in response.json()["detail"]
    assert farm.version(version["id"])["status"] == VersionStatus.UPLOADING


def test_queue_outage_is_503_for_an_inline_job_and_leaves_no_job(warm_model, new_user, monkeypatch):
    """A job sent inline whose task the broker refuses is removed with its input (a retry with
    the same Idempotency-Key starts afresh): a 503, not a 500."""
    import redis

    from api import submit
    from tests.utils import inline

    farm = new_user()
    unreachable = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=2)
    monkeypatch.setattr(submit, "send_run", lambda job_id: unreachable.rpush("inference", 1))
    token = farm.http.headers["Authorization"]
    with TestClient(app) as client:
        response = client.post(
            "/api/jobs", headers={"Authorization": token},
            json={"version_id": warm_model[1]["id"], "input": inline("lost")},
        )  # fmt: skip
    assert response.status_code == 503, response.text
    assert "nothing was queued" in response.json()["detail"]
    assert farm.http.get("/api/jobs").json()["total"] == 0
