"""Registration, login and token checks against the live API and database."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from jose import jwt
from sqlalchemy import delete

from core.db import SessionLocal
from core.models import User
from core.settings import settings


def test_register_login_and_me(new_user):
    farm = new_user()
    me = farm.http.get("/api/users/me")
    assert me.status_code == 200
    assert me.json()["email"] == farm.email
    assert "hashed_password" not in me.json()


def test_duplicate_email_is_409_case_insensitively(new_user, anonymous):
    farm = new_user()
    again = anonymous.post(
        "/api/users/register", json={"email": farm.email.upper(), "password": "another-pass"}
    )
    assert again.status_code == 409
    assert "log in" in again.json()["detail"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "not-an-email", "password": "long-enough"}, "email"),
        ({"email": "x@example.com", "password": "short"}, "password"),
        ({"email": "x@example.com", "password": "p" * 129}, "password"),
        ({"email": "x@example.com"}, "password"),
    ],
)
def test_invalid_registration_is_422_naming_the_field(anonymous, body, field):
    response = anonymous.post("/api/users/register", json=body)
    assert response.status_code == 422
    assert field in response.json()["detail"]


def test_wrong_password_is_401(new_user, anonymous):
    farm = new_user()
    response = anonymous.post(
        "/api/users/login", data={"username": farm.email, "password": "wrong-password"}
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "Incorrect email or password."


def _me_with(anonymous, token: str) -> int:
    return anonymous.get("/api/users/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_missing_token_is_401(anonymous):
    assert anonymous.get("/api/users/me").status_code == 401


def _signed(claims: dict, secret: str = "") -> str:
    return jwt.encode(claims, secret or settings.jwt_secret, algorithm="HS256")


def _now() -> datetime:
    return datetime.now(UTC)


def test_a_token_made_by_the_farm_is_accepted(new_user, anonymous):
    farm = new_user()
    token = _signed({"sub": farm.user_id, "iat": _now(), "exp": _now() + timedelta(minutes=5)})
    assert _me_with(anonymous, token) == 200


def test_token_forged_with_the_old_public_default_secret_is_401(new_user, anonymous):
    """The repository used to ship a development secret; the stack no longer signs with it."""
    farm = new_user()
    claims = {"sub": farm.user_id, "iat": _now(), "exp": _now() + timedelta(hours=1)}
    assert _me_with(anonymous, _signed(claims, "modelfarm-dev-secret-change-me")) == 401


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": 0, "exp": 10**12},  # valid signature, lifetime of millennia
        {"exp": 10**12},  # no iat
        {"exp": "lifetime"},  # an exp that is not a time
        {"iat": "future"},  # issued in the future (filled in below)
        {"iat": "now", "exp": "too-far"},  # a lifetime past the configured one
    ],
    ids=["endless", "no-iat", "bad-exp", "issued-in-the-future", "over-long-lifetime"],
)
def test_tokens_the_farm_never_issues_are_401(new_user, anonymous, claims):
    farm = new_user()
    now = int(_now().timestamp())
    lifetime = settings.jwt_lifetime_minutes * 60
    values = {"now": now, "future": now + 3600, "too-far": now + lifetime + 3600}
    filled = {key: values.get(value, value) for key, value in claims.items()}
    if claims.get("iat") == "future":
        filled["exp"] = now + 7200
    if claims == {"iat": 0, "exp": 10**12}:
        filled["iat"] = now
    assert _me_with(anonymous, _signed({"sub": farm.user_id, **filled})) == 401


def test_token_with_bad_signature_is_401(new_user, anonymous):
    farm = new_user()
    forged = jwt.encode(
        {"sub": farm.user_id, "exp": datetime.now(UTC) + timedelta(hours=1)},
        "not-the-secret",
        algorithm="HS256",
    )
    assert _me_with(anonymous, forged) == 401


def test_expired_token_is_401(new_user, anonymous):
    farm = new_user()
    expired = jwt.encode(
        {"sub": farm.user_id, "exp": datetime.now(UTC) - timedelta(seconds=5)},
        settings.jwt_secret,
        algorithm="HS256",
    )
    assert _me_with(anonymous, expired) == 401


def test_token_without_expiry_is_401(new_user, anonymous):
    farm = new_user()
    endless = jwt.encode({"sub": farm.user_id}, settings.jwt_secret, algorithm="HS256")
    assert _me_with(anonymous, endless) == 401


def test_alg_none_token_is_401(new_user, anonymous):
    import base64
    import json

    farm = new_user()

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    exp = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    unsigned = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': farm.user_id, 'exp': exp})}."
    assert _me_with(anonymous, unsigned) == 401


def test_token_of_a_deleted_user_is_401(new_user, anonymous):
    farm = new_user()
    token = farm.http.headers["Authorization"].split()[1]
    assert _me_with(anonymous, token) == 200
    with SessionLocal() as session:
        session.execute(delete(User).where(User.id == uuid.UUID(farm.user_id)))
        session.commit()
    assert _me_with(anonymous, token) == 401


def test_garbage_token_is_401(anonymous):
    assert _me_with(anonymous, "not.a.jwt") == 401
    basic = anonymous.get("/api/users/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401
