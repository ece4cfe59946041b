"""Ending access: sign-out and password changes against the live API, database and CLI. A
login token ends with every other of its user's at sign-out or at a password change; an API
token signs only itself out."""

import json
import os
from pathlib import Path

import httpx

from tests.integration.test_cli import logged_in, modelfarm
from tests.utils import API_URL, PASSWORD


def _client(token: str) -> httpx.Client:
    return httpx.Client(base_url=API_URL, headers={"Authorization": f"Bearer {token}"})


def _login(email: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(f"{API_URL}/api/users/login", data={"username": email, "password": password})


def _me(token: str) -> int:
    with _client(token) as http:
        return http.get("/api/users/me").status_code


def test_signing_out_ends_every_login_token_of_the_user_and_no_one_elses(new_user):
    farm, other = new_user(), new_user()
    second = _login(farm.email).json()["access_token"]
    assert _me(farm.token) == _me(second) == 200
    with _client(second) as http:
        assert http.post("/api/users/logout").status_code == 204
    assert _me(second) == 401 and _me(farm.token) == 401  # signed out everywhere
    assert _me(other.token) == 200
    again = _login(farm.email).json()["access_token"]
    assert _me(again) == 200  # a new login works


def test_an_api_token_signs_only_itself_out(new_user):
    farm = new_user()
    first = farm.create_token("one", ["read"])["token"]
    second = farm.create_token("two", ["run"])["token"]  # no scope of POST …/logout needed
    with _client(second) as http:
        assert http.post("/api/users/logout").status_code == 204
    assert _me(second) == 401
    assert _me(first) == 200 and _me(farm.token) == 200
    assert [token["name"] for token in farm.tokens()] == ["one"]


def test_a_password_change_ends_older_login_tokens_and_answers_a_new_one(new_user):
    farm = new_user()
    kept = farm.create_token("ci", ["read"])["token"]
    body = {"current_password": "not-the-password", "new_password": "a-new-password"}
    with _client(farm.token) as http:
        wrong = http.post("/api/users/me/password", json=body)
        assert wrong.status_code == 403 and "nothing was changed" in wrong.json()["detail"]
        assert _me(farm.token) == 200
        changed = http.post("/api/users/me/password", json={**body, "current_password": PASSWORD})
    assert changed.status_code == 200, changed.text
    assert _me(farm.token) == 401
    assert _me(changed.json()["access_token"]) == 200
    assert _login(farm.email).status_code == 401
    assert _login(farm.email, "a-new-password").status_code == 200
    assert _me(kept) == 200  # API tokens stay unless asked


def test_a_password_change_may_revoke_every_api_token_and_takes_a_login(new_user):
    farm = new_user()
    token = farm.create_token("ci", ["read", "build", "run"])["token"]
    body = {"current_password": PASSWORD, "new_password": "a-new-password"}
    with _client(token) as http:
        refused = http.post("/api/users/me/password", json=body)
    assert refused.status_code == 403 and "takes a login token" in refused.json()["detail"]
    with _client(farm.token) as http:
        short = http.post("/api/users/me/password", json={**body, "new_password": "short"})
        assert short.status_code == 422
        changed = http.post("/api/users/me/password", json={**body, "revoke_api_tokens": True})
    assert changed.status_code == 200 and _me(token) == 401


def test_modelfarm_logout_revokes_the_stored_token_and_forgets_it(new_user, tmp_path):
    farm = new_user()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "MODELFARM_API": API_URL}
    env = logged_in(farm, env)
    stored = Path(tmp_path) / "modelfarm" / "config.json"
    token = json.loads(stored.read_text())["token"]
    assert _me(token) == 200
    done = modelfarm(env, "logout")
    assert done.returncode == 0, done.stderr
    assert _me(token) == 401
    assert json.loads(stored.read_text())["token"] is None
    assert modelfarm(env, "logout").returncode == 0  # logged out already: nothing to revoke
    assert modelfarm(env, "models").returncode != 0
