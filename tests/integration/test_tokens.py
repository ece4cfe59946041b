"""API tokens: made once and stored as a hash, usable as a Bearer token within their scopes,
revoked at once, refused once expired; and refusals of tokens that abuse the scheme."""

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from core.db import SessionLocal
from core.lifecycle import JobStatus, VersionStatus, utcnow
from core.models import ApiToken
from tests.utils import Farm, inline

ECHO = """class Predictor:
    def setup(self):
        pass

    def predict(self, input_path, output_dir):
        return {"echo": input_path.read_text()}
"""


def _token(farm: Farm, *scopes: str, **fields) -> dict:
    response = farm.http.post("/api/tokens", json={"name": "ci", "scopes": list(scopes), **fields})
    assert response.status_code == 201, response.text
    return response.json()


def _as(farm: Farm, token: str) -> Farm:
    other = farm.another_client()
    other.http.headers["Authorization"] = f"Bearer {token}"
    return other


def test_a_token_is_shown_once_and_only_its_hash_is_stored(new_user):
    farm = new_user()
    made = _token(farm, "read", expires_in_days=30)
    token = made["token"]
    assert token.startswith("mf_") and len(token) >= 3 + 43  # 32 random bytes, base64url
    listed = farm.http.get("/api/tokens").json()
    assert [t["id"] for t in listed] == [made["id"]] and "token" not in listed[0]
    assert listed[0]["scopes"] == ["read"] and listed[0]["expires_at"] is not None
    with SessionLocal() as session:
        row = session.get(ApiToken, made["id"])
        assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
        dumped = session.execute(text("SELECT * FROM api_tokens")).all()
        assert not any(token in str(values) for values in dumped)


def test_each_scope_opens_only_its_family_of_routes(new_user):
    farm = new_user()
    model = farm.create_model()
    version = farm.build({"predict.py": ECHO}, model["id"])
    assert version["status"] == VersionStatus.READY, version["error"]
    reader = _as(farm, _token(farm, "read")["token"])
    builder = _as(farm, _token(farm, "build")["token"])
    runner = _as(farm, _token(farm, "run", "read")["token"])

    assert reader.http.get(f"/api/models/{model['id']}").status_code == 200
    refused = reader.http.post("/api/models", json={"name": "by-reader"})
    assert refused.status_code == 403 and "lacks the 'build' scope" in refused.json()["detail"]
    assert builder.http.get("/api/models").status_code == 403  # build alone reads nothing
    assert builder.http.post("/api/models", json={"name": "by-builder"}).status_code == 201
    job = builder.submit(version["id"], {"Prefer": "wait=30"}, input=inline("hi"))
    assert job.status_code == 403 and "lacks the 'run' scope" in job.json()["detail"]
    ran = runner.submit(version["id"], {"Prefer": "wait=30"}, input=inline("hi"))
    assert ran.status_code == 201 and ran.json()["job"]["status"] == JobStatus.SUCCEEDED
    assert ran.json()["job"]["result"] == {"echo": "hi"}
    assert runner.http.get(f"/api/jobs/{ran.json()['job']['id']}").status_code == 200
    assert runner.http.post("/api/models", json={"name": "by-runner"}).status_code == 403
    assert reader.http.get("/api/users/me").json()["id"] == farm.user_id


def test_a_revoked_token_is_refused_on_its_next_request(new_user):
    farm = new_user()
    made = _token(farm, "read")
    client = _as(farm, made["token"])
    assert client.http.get("/api/models").status_code == 200
    assert farm.http.delete(f"/api/tokens/{made['id']}").status_code == 204
    refused = client.http.get("/api/models")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert farm.http.delete(f"/api/tokens/{made['id']}").status_code == 404


def test_an_expired_token_is_refused(new_user):
    farm = new_user()
    made = _token(farm, "read", expires_in_days=1)
    client = _as(farm, made["token"])
    assert client.http.get("/api/models").status_code == 200
    with SessionLocal() as session:  # a day later
        session.execute(
            update(ApiToken).where(ApiToken.id == made["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )  # fmt: skip
        session.commit()
    assert client.http.get("/api/models").status_code == 401


def test_use_is_recorded_without_a_write_per_request(new_user):
    farm = new_user()
    made = _token(farm, "read")
    client = _as(farm, made["token"])
    for _ in range(3):
        assert client.http.get("/api/models").status_code == 200
    (listed,) = farm.http.get("/api/tokens").json()
    assert listed["last_used_at"] is not None


def test_an_api_token_cannot_manage_tokens_nor_reach_another_users(new_user):
    farm, stranger = new_user(), new_user()
    made = _token(farm, "read", "build", "run")
    client = _as(farm, made["token"])
    for response in (
        client.http.get("/api/tokens"),
        client.http.post("/api/tokens", json={"name": "more", "scopes": ["read"]}),
        client.http.delete(f"/api/tokens/{made['id']}"),
    ):
        assert response.status_code == 403 and "login token" in response.json()["detail"]
    assert stranger.http.delete(f"/api/tokens/{made['id']}").status_code == 404
    assert stranger.http.get("/api/tokens").json() == []


@pytest.mark.parametrize(
    "token",
    ["mf_", "mf_" + "A" * 43, "mf_' OR '1'='1", "MF_abc", "mf_\u00e9" * 20, "mf_" + "x" * 5000],
)
def test_forged_api_tokens_are_refused(new_user, token):
    farm = new_user()
    _token(farm, "read")
    response = _as(farm, token).http.get("/api/models")
    assert response.status_code == 401, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "scopes": ["read", "read"]},
        {"name": "", "scopes": ["read"]},
        {"name": "x\ny", "scopes": ["read"]},
        {"name": "x" * 65, "scopes": ["read"]},
        {"name": "x", "scopes": ["read"], "expires_in_days": 0},
        {"name": "x", "scopes": ["read"], "expires_in_days": 366},
    ],
)
def test_token_requests_outside_the_rules_are_refused(new_user, body):
    farm = new_user()
    response = farm.http.post("/api/tokens", json=body)
    assert response.status_code == 422, response.text
    with SessionLocal() as session:
        made = session.scalars(select(ApiToken).where(ApiToken.user_id == farm.user_id)).all()
        assert made == []


def test_a_version_says_which_credential_pushed_it(new_user):
    farm = new_user()
    model = farm.create_model()
    by_login = farm.new_version(model["id"], None)
    by_token = _as(farm, _token(farm, "build")["token"]).new_version(model["id"], None)
    assert by_login["pushed_with"] == "a login"
    assert by_token["pushed_with"] == "API token 'ci'"
    assert farm.version(by_token["id"])["pushed_with"] == "API token 'ci'"
