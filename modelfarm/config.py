"""Where the `modelfarm` command finds the farm and its token: MODELFARM_API and MODELFARM_TOKEN
when set, else what `modelfarm login` stored in the user's config folder (readable by the user
alone, since the token acts for them)."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import typer

DEFAULT_API = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Login:
    api_url: str
    token: str | None


def config_file() -> Path:
    return Path(typer.get_app_dir("modelfarm")) / "config.json"


def load() -> Login:
    stored = {}
    if config_file().is_file():
        stored = json.loads(config_file().read_text())
    return Login(
        api_url=os.environ.get("MODELFARM_API") or stored.get("api") or DEFAULT_API,
        token=os.environ.get("MODELFARM_TOKEN") or stored.get("token"),
    )


def save(login: Login) -> Path:
    """Writes the login, created with mode 0600 (never readable by others, even briefly)."""
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        json.dump({"api": login.api_url, "token": login.token}, stream)
    temporary.replace(path)
    return path
