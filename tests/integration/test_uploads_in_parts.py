"""A package uploaded in parts, against the real store: an upload stopped after half its parts
resumes and builds; one never completed is never built and the store frees its parts; one that
cannot fit the store's free space is refused before a byte is sent; the CLI resumes a push
killed midway (its weights sent by content, core/contents.py, in parts too)."""

import hashlib
import os
import signal
import subprocess
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from core.contents import content_key
from core.lifecycle import VersionStatus, utcnow
from core.models import ModelVersion
from core.multipart import Layout, Multipart
from core.settings import settings
from core.storage import package_key, store_disks
from tests.integration.stack import api_process, wait_for
from tests.integration.test_cli import MODELFARM, logged_in
from tests.integration.test_retention import PASS_S, _moved_back
from tests.utils import API_URL, Farm
from workers import retention

ROOMY_PORT = 8017
MB = 1024**2
PREDICT = """\
import hashlib
from pathlib import Path


class Predictor:
    def setup(self):
        weights = Path(__file__).with_name("weights.bin").read_bytes()
        self.sha256 = hashlib.sha256(weights).hexdigest()

    def predict(self) -> dict:
        return {"sha256": self.sha256}
"""


def _package(folder: Path, parts: float) -> tuple[Path, str]:
    """A ZIP of PREDICT and random weights as big as `parts` parts; the weights' sha256."""
    weights = os.urandom(int(parts * settings.upload_part_bytes))
    path = folder / "package.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as package:
        package.writestr("predict.py", PREDICT)
        package.writestr("weights.bin", weights)
    return path, hashlib.sha256(weights).hexdigest()


def _start(farm: Farm, version_id: str, size: int) -> httpx.Response:
    return farm.http.post(f"/api/versions/{version_id}/upload", json={"size": size})


def _put_part(package: Path, plan: dict, part: dict, *, short: bool = False) -> None:
    with package.open("rb") as stream:
        stream.seek((part["number"] - 1) * plan["part_bytes"])
        data = stream.read(part["bytes"] - (1 if short else 0))
    assert httpx.put(part["url"], content=data, timeout=120).status_code == 200


def _open_uploads(key: str, storage) -> list[str]:
    later = utcnow() + timedelta(days=1)
    return [upload for named, upload in Multipart(storage).started_before(key, later)]


def test_an_upload_stopped_after_half_its_parts_resumes_and_builds(new_user, tmp_path):
    farm = new_user()
    package, sha256 = _package(tmp_path, parts=3.5)
    version = farm.new_version(farm.create_model()["id"], None)
    plan = _start(farm, version["id"], package.stat().st_size).json()
    assert plan["parts_total"] == 4 and plan["parts_done"] == []
    first, second, *rest = plan["parts"]
    _put_part(package, plan, first)
    _put_part(package, plan, second, short=True)  # cut off: not there at its size

    refused = farm.http.post(f"/api/versions/{version['id']}/build")
    assert refused.status_code == 409, refused.text
    assert "3 of the package's 4 parts are not uploaded" in refused.json()["detail"]
    assert farm.version(version["id"])["status"] == VersionStatus.UPLOADING

    resumed = _start(farm, version["id"], package.stat().st_size).json()
    assert resumed["parts_done"] == [1]
    assert [part["number"] for part in resumed["parts"]] == [2, 3, 4]
    for part in resumed["parts"]:
        _put_part(package, resumed, part)
    started = farm.http.post(f"/api/versions/{version['id']}/build")
    assert started.status_code == 202, started.text
    built = farm.wait_version(version["id"])
    assert built["status"] == VersionStatus.READY, built["error"]
    assert built["package_sha256"] == hashlib.sha256(package.read_bytes()).hexdigest()
    job = farm.predict(version["id"], {}, wait_s=120)
    assert job["result"] == {"sha256": sha256}, job["error"]
    again = _start(farm, version["id"], package.stat().st_size)
    assert again.status_code == 409  # the package is sealed: no part URL writes to it


def test_an_upload_never_completed_is_never_built_and_its_parts_are_freed(new_user, storage,
                                                                        tmp_path):  # fmt: skip
    farm = new_user()
    package, _ = _package(tmp_path, parts=2)
    version = farm.new_version(farm.create_model()["id"], None)
    plan = _start(farm, version["id"], package.stat().st_size).json()
    _put_part(package, plan, plan["parts"][0])
    assert farm.http.post(f"/api/versions/{version['id']}/build").status_code == 409
    key = package_key(version["id"])
    assert len(_open_uploads(key, storage)) == 1 and storage.size(key) is None

    made = utcnow() - timedelta(hours=settings.upload_expiry_hours, minutes=5)
    _moved_back(ModelVersion, version["id"], created_at=made)
    wait_for(lambda: farm.http.get(f"/api/versions/{version['id']}").status_code == 404,
             "the abandoned version removed", PASS_S)  # fmt: skip
    assert _open_uploads(key, storage) == [] and storage.size(key) is None
    late = httpx.put(plan["parts"][1]["url"], content=b"late")
    assert late.status_code == 404 and "NoSuchUpload" in late.text


def test_an_upload_no_row_knows_is_aborted_once_old(new_user, storage, monkeypatch):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], None)
    assert _start(farm, version["id"], 10 * MB).status_code == 200  # known: kept
    orphan_key = package_key("orphan-" + version["id"])
    Multipart(storage).start(orphan_key)  # as if its request died before its commit
    monkeypatch.setattr(retention, "utcnow", lambda: utcnow() + timedelta(days=2))
    assert retention._abort_unknown_uploads(storage) >= 1
    assert _open_uploads(orphan_key, storage) == []
    assert len(_open_uploads(package_key(version["id"]), storage)) == 1


def test_what_an_upload_in_parts_refuses(new_user):
    farm, other = new_user(), new_user()
    version = farm.new_version(farm.create_model()["id"], None)
    for size in (0, -1, "big"):
        assert _start(farm, version["id"], size).status_code == 422
    over = _start(farm, version["id"], settings.max_package_bytes + 1)
    assert over.status_code == 413 and "MODELFARM_MAX_PACKAGE_BYTES" in over.json()["detail"]
    assert _start(other, version["id"], MB).status_code in (403, 404)  # not theirs
    nothing = farm.http.delete(f"/api/versions/{version['id']}/upload")
    assert nothing.status_code == 404 and "no upload in parts" in nothing.json()["detail"]
    assert _start(farm, version["id"], MB).status_code == 200
    assert other.http.delete(f"/api/versions/{version['id']}/upload").status_code in (403, 404)
    assert farm.http.delete(f"/api/versions/{version['id']}/upload").status_code == 204
    aborted = farm.http.post(f"/api/versions/{version['id']}/build")
    assert aborted.status_code == 409  # nothing uploaded any way


@pytest.fixture(scope="module")
def roomy_api(tmp_path_factory):
    """The API with caps past any disk: only the store's free space bounds a package."""
    log = tmp_path_factory.mktemp("roomy") / "api.log"
    caps = {"MAX_PACKAGE_BYTES": str(2**50), "STORAGE_QUOTA_MB": str(2**30)}
    with api_process(ROOMY_PORT, log, **caps) as url:
        yield url


def test_a_package_past_the_stores_free_space_is_refused_before_a_byte(new_user, roomy_api,
                                                                       storage):  # fmt: skip
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], None)
    free = sum(disk["free"] for disk in store_disks())
    with httpx.Client(base_url=roomy_api, headers={"Authorization": f"Bearer {farm.token}"}) as api:
        refused = api.post(f"/api/versions/{version['id']}/upload", json={"size": free + 1024**3})
        assert refused.status_code == 507, refused.text
        assert "MB free, too little for this" in refused.json()["detail"]
        assert _open_uploads(package_key(version["id"]), storage) == []  # nothing started
        fits = api.post(f"/api/versions/{version['id']}/upload", json={"size": 100 * MB})
        assert fits.status_code == 200, fits.text


def test_the_command_resumes_a_push_killed_midway(new_user, storage, tmp_path):
    farm = new_user()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "MODELFARM_API": API_URL}
    logged_in(farm, env)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "predict.py").write_text(PREDICT)
    weights = os.urandom(32 * settings.upload_part_bytes)
    (folder / "weights.bin").write_bytes(weights)
    command = [str(MODELFARM), "--progress", "plain", "push", str(folder), "--model", "big"]
    pushing = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    model = wait_for(lambda: farm.find_model("big"), "the model made", 60, every=0.05)
    version = wait_for(lambda: farm.versions(model["id"]), "the version made", 60, every=0.05)[0]
    # The weights go by their content (core/contents.py), in parts to their content key.
    key = content_key(uuid.UUID(farm.user_id), hashlib.sha256(weights).hexdigest())
    wait_for(lambda: _parts_there(storage, key), "a part uploaded", 120, every=0.05)
    pushing.send_signal(signal.SIGKILL)
    pushing.wait()
    done = _parts_there(storage, key)
    assert 0 < done < 33 and farm.version(version["id"])["status"] == VersionStatus.UPLOADING

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming the upload of version {version['id']}" in resumed.stderr
    assert [v["id"] for v in farm.versions(model["id"])] == [version["id"]]  # no new version
    job = farm.predict(version["id"], {}, wait_s=120)
    assert job["result"] == {"sha256": hashlib.sha256(weights).hexdigest()}, job["error"]


def _parts_there(storage, key: str) -> int:
    """How many parts the open upload to key has."""
    uploads = _open_uploads(key, storage)
    return len(Multipart(storage).parts(key, uploads[0], Layout.of(1)) or {}) if uploads else 0
