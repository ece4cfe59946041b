"""A model of real size: a gigabyte of weights that do not compress is built in bounded memory,
its job reads them back byte-exact, and a code-only change reuses their blob untouched."""

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from core.lifecycle import VersionStatus
from core.registry import LAYER_TAR, Registry, model_repository
from tests.integration import stack
from tests.utils import Farm

WEIGHTS_BYTES = 1024**3 + 12345
MB = 1024**2
# The build worker's peak resident memory over its idle size, whatever the weights' size.
MEMORY_BOUND = 512 * MB
PREDICT = """\
import hashlib
from pathlib import Path


class Predictor:
    def setup(self):
        digest = hashlib.sha256()
        with open(Path(__file__).with_name("weights.bin"), "rb") as weights:
            while chunk := weights.read(1 << 20):
                digest.update(chunk)
        self.sha256 = digest.hexdigest()

    def predict(self, text: str = "") -> dict:
        return {"sha256": self.sha256, "text": text}
"""


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> tuple[Path, str]:
    """A gigabyte of random bytes (as incompressible as float tensors) and their sha256."""
    path = tmp_path_factory.mktemp("weights") / "weights.bin"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = WEIGHTS_BYTES
        while left:
            chunk = os.urandom(min(left, 16 * MB))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return path, digest.hexdigest()


def package_of(folder: Path, weights: Path, tag: str) -> Path:
    """A ZIP of PREDICT (marked with tag) and the weights, stored as they are."""
    path = folder / f"package-{tag}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as package:
        package.writestr("predict.py", PREDICT + f"# {tag}\n")
        package.write(weights, "weights.bin")
    return path


def _build(farm: Farm, model_id: str, package: Path) -> dict:
    version = farm.new_version(model_id, package, in_parts=True)
    assert farm.http.post(f"/api/versions/{version['id']}/build").status_code == 202
    return farm.wait_version(version["id"])


def _layers(version: dict) -> list[dict]:
    repository = model_repository(version["model_id"])
    manifest, _, _ = Registry().image(repository, version["image_digest"])
    return manifest["layers"]


def test_a_gigabyte_of_weights_builds_in_bounded_memory_and_a_code_change_reuses_them(
    new_user, weights, tmp_path, docker_client
):
    path, sha256 = weights
    farm = new_user()
    model = farm.create_model()["id"]
    pids = stack.peaks_reset("build-worker")
    idle_kb = stack.memory_kb(pids, "VmRSS")
    first = _build(farm, model, package_of(tmp_path, path, "a"))
    assert first["status"] == VersionStatus.READY, first["error"]
    peak_over_idle = (stack.memory_kb(pids, "VmHWM") - idle_kb) * 1024
    assert peak_over_idle < MEMORY_BOUND, f"{peak_over_idle / MB:.0f} MB over idle"
    (weights_layer,) = [layer for layer in _layers(first) if layer["size"] > WEIGHTS_BYTES]
    assert weights_layer["mediaType"] == LAYER_TAR  # weights are not worth gzipping

    job = farm.predict(first["id"], {"text": "hi"}, wait_s=240)
    assert job["status"] == "SUCCEEDED", job["error"]
    assert job["result"] == {"sha256": sha256, "text": "hi"}  # read back byte-exact

    (tmp_path / "package-a.zip").unlink()
    changed = _build(farm, model, package_of(tmp_path, path, "b"))  # the code only
    assert changed["status"] == VersionStatus.READY, changed["error"]
    assert weights_layer in _layers(changed)  # the same blob
    log = farm.build_log(changed["id"])
    assert "COPY weights/ /model/\n ---> reused by content, not made" in log, log
