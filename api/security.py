"""Password hashing and access tokens."""

import uuid
from datetime import UTC, datetime, timedelta

from jose import JWTError, jwt
from passlib.context import CryptContext

from core.settings import settings

ALGORITHM = "HS256"

# argon2 has no 72-byte password limit and no clash with new bcrypt releases.
password_context = CryptContext(schemes=["argon2"], deprecated="auto")


def hash_password(password: str) -> str:
    return password_context.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    return password_context.verify(password, hashed)


def create_access_token(user_id: uuid.UUID) -> str:
    expires = datetime.now(UTC) + timedelta(minutes=settings.jwt_lifetime_minutes)
    return jwt.encode({"sub": str(user_id), "exp": expires}, settings.jwt_secret, ALGORITHM)


def user_id_from_token(token: str) -> uuid.UUID | None:
    """The user id a valid token names; None for a bad signature, expiry, or another algorithm."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[ALGORITHM],
            options={"require_exp": True, "require_sub": True},
        )
        return uuid.UUID(claims["sub"])
    except (JWTError, ValueError, KeyError):
        return None
