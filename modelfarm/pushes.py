"""Pushes stopped midway through their upload, remembered so that running the same `modelfarm
push` again resumes it: per model, the version being uploaded and the fingerprint of the
folder it came from (modelfarm/packing.py). A changed folder starts a new version."""

import json
from functools import partial
from pathlib import Path

from modelfarm import config
from modelfarm.client import ApiError, Client
from modelfarm.packing import Packed
from modelfarm.shell import Shell


def _record(model_id: str) -> Path:
    return config.config_file().parent / "pushes" / f"{model_id}.json"


def remember(model_id: str, version_id: str, fingerprint: str) -> None:
    path = _record(model_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(json.dumps({"version_id": version_id, "fingerprint": fingerprint}))


def unfinished(model_id: str, fingerprint: str) -> str | None:
    """The version whose upload of this folder stopped midway, if any."""
    path = _record(model_id)
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    return stored["version_id"] if stored.get("fingerprint") == fingerprint else None


def forget(model_id: str) -> None:
    _record(model_id).unlink(missing_ok=True)


def upload(
    shell: Shell, farm: Client, model_id: str, package: Path, packed: Packed, folder_print: str
) -> dict:
    """Uploads the package (its ZIP and its files sent by content) as a new version, or resumes
    the upload of this folder that stopped midway; the version, its build started."""
    resumable = unfinished(model_id, folder_print)
    if resumable and not _still_uploading(farm, resumable):
        resumable = None  # built since, or removed as abandoned
    size = package.stat().st_size + sum(declared["size"] for declared, _ in packed.by_content)
    with shell.uploading(size, "the package") as advance:
        if resumable:
            shell.note(f"resuming the upload of version {resumable}")
            version = farm.resume_push(
                resumable, package, by_content=packed.by_content, progress=advance
            )
        else:
            remember = partial(_remember, model_id, folder_print)
            version = farm.push(
                model_id, package, by_content=packed.by_content, progress=advance, made=remember
            )
    forget(model_id)
    return version


def _remember(model_id: str, folder_print: str, version: dict) -> None:
    remember(model_id, version["id"], folder_print)


def _still_uploading(farm: Client, version_id: str) -> bool:
    try:
        return farm.version(version_id)["status"] == "UPLOADING"
    except ApiError as error:
        if error.status_code == 404:
            return False
        raise
