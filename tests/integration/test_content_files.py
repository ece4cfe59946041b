"""A package's big files sent by their content (core/contents.py), against the real store,
registry and build worker: sent once per owner, a code change sends and reads none of them,
bytes that are not the declared ones never get built, and what no version names is removed."""

import hashlib
import os
import tarfile
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from unittest import mock

import httpx
import pytest
from sqlalchemy import func, select

from api import quota
from core.contents import MAX_FILES, content_key
from core.db import SessionLocal
from core.models import Job, ModelVersion
from core.registry import Registry, model_repository
from core.storage import Storage
from modelfarm.packing import pack
from tests.integration.test_uploads_in_parts import PREDICT
from tests.utils import Farm
from workers import retention

MB = 1024**2
KEPT = "weights.bin: kept on this host by its content, not downloaded"


def _folder(root: Path, weights: bytes, mark: str) -> Path:
    folder = root / mark
    folder.mkdir()
    (folder / "predict.py").write_text(PREDICT + f"# {mark}\n")
    (folder / "weights.bin").write_bytes(weights)
    return folder


def _push(farm: Farm, model_id: str, folder: Path) -> dict:
    packed = pack(folder, folder.with_suffix(".zip"), by_content_above=MB)
    version = farm.push(model_id, folder.with_suffix(".zip"), by_content=packed.by_content)
    return farm.wait_version(version["id"])


def _declare(farm: Farm, version_id: str, files: list[dict]) -> httpx.Response:
    return farm.http.put(f"/api/versions/{version_id}/files", json={"files": files})


def _weights_layer(version: dict) -> str:
    manifest, _, _ = Registry().image(
        model_repository(version["model_id"]), version["image_digest"]
    )
    return max(manifest["layers"], key=lambda layer: layer["size"])["digest"]


def test_a_file_sent_by_content_builds_and_a_code_change_sends_and_reads_none_of_it(
    new_user, tmp_path
):
    farm = new_user()
    model = farm.create_model()["id"]
    weights = os.urandom(12 * MB)
    sha256 = hashlib.sha256(weights).hexdigest()
    first = _push(farm, model, _folder(tmp_path, weights, "a"))
    assert first["status"] == "READY", first["error"]
    assert first["content_files"] == [
        {"path": "weights.bin", "size": len(weights), "sha256": sha256, "executable": False}
    ]
    assert farm.predict(first["id"], {})["result"] == {"sha256": sha256}

    changed = _folder(tmp_path, weights, "b")
    packed = pack(changed, tmp_path / "b.zip", by_content_above=MB)
    assert packed.names == ["predict.py"]  # the ZIP is the code alone
    version = farm.new_version(model, (tmp_path / "b.zip").read_bytes())
    answer = _declare(farm, version["id"], [packed.by_content[0][0]]).json()
    assert answer["files"][0]["upload"] is None  # the farm has it: nothing to send
    assert farm.http.post(f"/api/versions/{version['id']}/build").status_code == 202
    second = farm.wait_version(version["id"])
    assert second["status"] == "READY", second["error"]
    assert KEPT in farm.build_log(second["id"])
    assert _weights_layer(second) == _weights_layer(first)
    assert farm.predict(second["id"], {})["result"] == {"sha256": sha256}
    with SessionLocal() as session:  # the weights count once in the quota, as stored once
        zips = sum(session.get(ModelVersion, v["id"]).package_size for v in (first, second))
        owner = uuid.UUID(farm.user_id)
        jobs = session.scalar(select(func.sum(Job.stored_bytes)).where(Job.owner_id == owner))
        assert quota.used_bytes(session, owner) == zips + len(weights) + (jobs or 0)


def test_the_context_of_a_version_holds_its_files_sent_by_content(new_user, tmp_path):
    farm = new_user()
    weights = os.urandom(2 * MB)
    version = _push(farm, farm.create_model()["id"], _folder(tmp_path, weights, "a"))
    assert version["status"] == "READY", version["error"]
    farm.download_context(version["id"], tmp_path / "context.tar.gz")
    with tarfile.open(tmp_path / "context.tar.gz") as context:
        assert context.extractfile("weights/weights.bin").read() == weights


def test_bytes_that_are_not_the_declared_sha256_are_never_built_and_are_removed(new_user, tmp_path):
    farm = new_user()
    model = farm.create_model()["id"]
    claimed, sent = os.urandom(2 * MB), os.urandom(2 * MB)
    sha256 = hashlib.sha256(claimed).hexdigest()
    version = farm.new_version(model, _zip_of_predict(tmp_path))
    declared = {"path": "weights.bin", "size": len(sent), "sha256": sha256, "executable": False}
    plan = _declare(farm, version["id"], [declared]).json()["files"][0]["upload"]
    for part in plan["parts"]:
        start = (part["number"] - 1) * plan["part_bytes"]
        httpx.put(part["url"], content=sent[start : start + part["bytes"]]).raise_for_status()
    assert farm.http.post(f"/api/versions/{version['id']}/build").status_code == 202
    failed = farm.wait_version(version["id"])
    assert failed["status"] == "FAILED"
    assert "do not have the sha256 declared for it" in failed["error"], failed["error"]
    assert Storage().size(content_key(uuid.UUID(farm.user_id), sha256)) is None


def test_a_build_waits_for_every_content_to_be_uploaded(new_user, tmp_path):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], _zip_of_predict(tmp_path))
    data = os.urandom(MB)
    declared = {
        "path": "w.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
    }  # fmt: skip
    assert _declare(farm, version["id"], [declared]).status_code == 200
    refused = farm.http.post(f"/api/versions/{version['id']}/build")
    assert refused.status_code == 409
    assert "w.bin, sent by content, is not uploaded at its size yet" in refused.json()["detail"]
    assert farm.version(version["id"])["status"] == "UPLOADING"


SHA = "0" * 64


@pytest.mark.parametrize(
    ("declared", "complaint"),
    [
        ({"path": "../etc/passwd", "size": 1, "sha256": SHA}, "'.' or '..' path component"),
        ({"path": "/etc/passwd", "size": 1, "sha256": SHA}, "absolute path"),
        ({"path": "a\\b", "size": 1, "sha256": SHA}, "backslash or a control character"),
        ({"path": "a\x00b", "size": 1, "sha256": SHA}, "backslash or a control character"),
        ({"path": "w.bin", "size": 1, "sha256": "ABC"}, "String should match pattern"),
        ({"path": "w.bin", "size": 0, "sha256": SHA}, "greater than 0"),
        ({"path": "w.bin", "size": 10**15, "sha256": SHA}, "less than or equal"),
        ({"path": "w.bin", "size": 1, "sha256": SHA, "owner": "x"}, "Extra inputs"),
    ],
)
def test_a_declaration_that_abuses_a_path_or_a_field_is_refused(
    new_user, tmp_path, declared, complaint
):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], None)
    refused = _declare(farm, version["id"], [declared])
    assert refused.status_code == 422
    assert complaint in refused.text


def test_more_files_than_a_package_may_send_by_content_are_refused(new_user):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], None)
    many = [{"path": f"w{i}.bin", "size": 1, "sha256": SHA} for i in range(MAX_FILES + 1)]
    refused = _declare(farm, version["id"], many)
    assert refused.status_code == 422 and f"at most {MAX_FILES} items" in refused.text


def test_a_path_declared_twice_or_in_the_zip_too_is_refused(new_user, tmp_path):
    farm = new_user()
    model = farm.create_model()["id"]
    data = os.urandom(MB)
    declared = {"path": "predict.py", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    version = farm.new_version(model, _zip_of_predict(tmp_path))
    twice = _declare(farm, version["id"], [declared, declared])
    assert twice.status_code == 422 and "more than once" in twice.text
    plan = _declare(farm, version["id"], [declared]).json()["files"][0]["upload"]
    (part,) = plan["parts"]
    httpx.put(part["url"], content=data).raise_for_status()
    assert farm.http.post(f"/api/versions/{version['id']}/build").status_code == 202
    failed = farm.wait_version(version["id"])
    assert "predict.py is both in the ZIP and sent by content" in failed["error"]


def test_another_users_content_is_never_theirs(new_user, tmp_path):
    """The same bytes pushed by another user are uploaded again: no one learns, or uses, what
    another has sent."""
    first, second = new_user(), new_user()
    weights = os.urandom(2 * MB)
    built = _push(first, first.create_model()["id"], _folder(tmp_path, weights, "a"))
    assert built["status"] == "READY", built["error"]
    version = second.new_version(second.create_model()["id"], None)
    declared = built["content_files"][0]
    assert _declare(second, version["id"], [declared]).json()["files"][0]["upload"] is not None


def test_retention_removes_the_contents_no_version_names(new_user, tmp_path):
    farm = new_user()
    weights = os.urandom(2 * MB)
    built = _push(farm, farm.create_model()["id"], _folder(tmp_path, weights, "a"))
    storage, owner = Storage(), uuid.UUID(farm.user_id)
    named = content_key(owner, built["content_files"][0]["sha256"])
    unnamed = content_key(owner, hashlib.sha256(b"orphan").hexdigest())
    storage.put_bytes(unnamed, b"orphan")
    later = retention.utcnow() + timedelta(days=30)
    with mock.patch.object(retention, "utcnow", return_value=later):
        assert retention._remove_unused_contents(storage) >= 1
    assert storage.size(unnamed) is None
    assert storage.size(named) == len(weights)


def _zip_of_predict(tmp_path: Path) -> bytes:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    (folder / "predict.py").write_text(PREDICT)
    pack(folder, folder / "package.zip")
    return (folder / "package.zip").read_bytes()
