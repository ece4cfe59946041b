"""Password hashing, login tokens (JWT) and API tokens."""

import enum
import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from jose import JWTError, jwt
from passlib.context import CryptContext

from core.models import User
from core.settings import MIN_SECRET_LENGTH, settings

ALGORITHM = "HS256"
# Clocks of several API hosts may differ a little.
CLOCK_SKEW_S = 30

# argon2 has no 72-byte password limit and no clash with new bcrypt releases.
password_context = CryptContext(schemes=["argon2"], deprecated="auto")
# Verified against when the email is unknown, so both answers cost one hash.
_DUMMY_HASH = password_context.hash(secrets.token_urlsafe(16))


def require_secret() -> None:
    """The API does not start without a signing secret of its own (there is no default)."""
    if len(settings.jwt_secret) < MIN_SECRET_LENGTH:
        raise RuntimeError(
            f"MODELFARM_JWT_SECRET is not set (or under {MIN_SECRET_LENGTH} characters): set it, "
            "or let scripts/up.sh generate one under the data directory"
        )


def hash_password(password: str) -> str:
    return password_context.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    """Checks a password; with no hash (unknown user) it costs the same and answers False."""
    matches = password_context.verify(password, hashed or _DUMMY_HASH)
    return matches and hashed is not None


def create_access_token(user: User) -> str:
    """A login token (JWT) of the user's current generation: signing out or changing the
    password moves the generation on, which ends every token made before."""
    now = datetime.now(UTC)
    expires = now + timedelta(minutes=settings.jwt_lifetime_minutes)
    claims = {"sub": str(user.id), "gen": user.token_generation, "iat": now, "exp": expires}
    return jwt.encode(claims, settings.jwt_secret, ALGORITHM)


def claims_of(token: str) -> tuple[uuid.UUID, int] | None:
    """The user id and generation a valid token names; None for a bad signature, expiry,
    another algorithm, or a lifetime longer than this farm issues. (A token made before
    generations is of generation 0.)"""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[ALGORITHM],
            options={"require_exp": True, "require_iat": True, "require_sub": True},
        )
        issued, expires = int(claims["iat"]), int(claims["exp"])
        now = datetime.now(UTC).timestamp()
        if issued > now + CLOCK_SKEW_S:
            return None
        if expires - issued > settings.jwt_lifetime_minutes * 60 + CLOCK_SKEW_S:
            return None
        return uuid.UUID(claims["sub"]), int(claims.get("gen", 0))
    except (JWTError, ValueError, KeyError, TypeError):
        return None


# API tokens: "mf_" and 32 random bytes. They carry 256 bits of chance, so a fast hash stored
# in place of them is enough against guessing, and checking one is one indexed lookup.
API_TOKEN_PREFIX = "mf_"


class Scope(enum.StrEnum):
    READ = "read"  # every GET
    BUILD = "build"  # changes to models, versions and builds
    RUN = "run"  # jobs, and warming a version


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def api_token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Any token may sign itself out: an API token so ends itself, whatever its scopes.
SIGN_OUT_PATH = "/api/users/logout"


def required_scope(method: str, route_path: str) -> Scope | None:
    """The scope an API token needs for this route; None where API tokens may not go
    (managing API tokens, the webhook secret, the password and the account takes a login)."""
    if route_path.startswith(("/api/tokens", "/api/users/me/")):
        return None
    if route_path == "/api/users/me" and method == "DELETE":  # the account itself
        return None
    if method in ("GET", "HEAD"):
        return Scope.READ
    if route_path.startswith("/api/jobs") or route_path.endswith("/warm"):
        return Scope.RUN
    return Scope.BUILD
