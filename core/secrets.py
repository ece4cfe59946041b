"""Secrets of the local stack, generated on first start and kept under the data directory.

    python -m core.secrets        (scripts/lib.sh runs it before anything starts)

Each secret is a file named like its setting (`modelfarm_jwt_secret`, ...) in
<MODELFARM_DATA_DIR>/secrets, mode 0600, which the settings object reads (core/settings.py);
the environment and .env still win, which is how a production deployment passes its own. A
file that exists is never rewritten, so tokens and credentials survive restarts.
"""

import os
import secrets
from pathlib import Path

from dotenv import dotenv_values

ENV_PREFIX = "MODELFARM_"
DATABASE_ROLE = "modelfarm"


def secrets_dir() -> Path:
    data_dir = os.environ.get("MODELFARM_DATA_DIR") or _from_dotenv("MODELFARM_DATA_DIR")
    return Path(data_dir or ".farm") / "secrets"


def _from_dotenv(name: str) -> str | None:
    return dotenv_values(".env").get(name) if Path(".env").exists() else None


def _configured(field: str) -> bool:
    """Set in the environment or .env, where it overrides any generated file."""
    name = ENV_PREFIX + field.upper()
    return bool(os.environ.get(name) or _from_dotenv(name))


def _generated() -> dict[str, str]:
    password = secrets.token_urlsafe(24)
    return {
        "jwt_secret": secrets.token_urlsafe(48),
        "s3_access_key": "modelfarm-" + secrets.token_hex(6),
        "s3_secret_key": secrets.token_urlsafe(32),
        # The stack's own PostgreSQL role; up.sh gives the role this password.
        "database_url": (
            f"postgresql+psycopg://{DATABASE_ROLE}:{password}@127.0.0.1:5432/{DATABASE_ROLE}"
        ),
    }


def ensure() -> list[str]:
    """Writes every missing secret that is not configured otherwise; returns their names."""
    folder = secrets_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    written = []
    for field, value in _generated().items():
        path = folder / f"{ENV_PREFIX.lower()}{field}"
        if path.exists() or _configured(field):
            continue
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as sink:
            sink.write(value)
        written.append(field)
    return written


if __name__ == "__main__":
    for name in ensure():
        print(f"generated {name} in {secrets_dir()}")
