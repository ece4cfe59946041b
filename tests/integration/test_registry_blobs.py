"""A build's layers into the real registry (workers/build/blobs.py): put straight into its
storage, as the local stack's build worker does, or through its HTTP API, as a build host that
does not share the storage does. Either way the registry serves the blob, takes a manifest
that names it, and the engine pulls the image with the file byte-exact."""

import io
import os
import tarfile
import uuid

import pytest

from core import context
from core.registry import MANIFEST_V2, Registry, engine_name
from core.settings import settings
from tests.utils import ROOT
from workers.build import blobs, layers
from workers.images import FarmFault

REGISTRY_STORAGE = ROOT / settings.data_dir / "registry" / "data"


@pytest.fixture
def layer(tmp_path) -> layers.Layer:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(3 * 2**20 + 7))
    files = {"weights.bin": context.Entry(weights, executable=False)}
    return layers.write_layer(tmp_path / "layer.tar", files, prefix="model/")


def _repository() -> str:
    return f"tests/blobs-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("shared", [True, False], ids=["into-its-storage", "through-its-api"])
def test_a_layer_put_either_way_is_served_and_pulled_byte_exact(
    shared, layer, tmp_path, monkeypatch, docker_client
):
    monkeypatch.setattr(settings, "registry_storage_dir", str(REGISTRY_STORAGE) if shared else "")
    repository, hub = _repository(), Registry()
    blobs.put(hub, repository, layer)
    assert hub.has_blob(repository, layer.digest)
    assert hub.blob(repository, layer.digest) == layer.path.read_bytes()
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}}  # fmt: skip
    manifest = hub.push_config(repository, config, [layer.entry], hub.timeout)
    image = f"{engine_name(repository)}@{hub.put_manifest(repository, 't', manifest, MANIFEST_V2)}"
    docker_client.images.pull(image)
    container = docker_client.containers.create(image, ["none"])  # never started: no binary
    try:
        archive, _ = container.get_archive("/model/weights.bin")
        with tarfile.open(fileobj=io.BytesIO(b"".join(archive))) as tar:
            pulled = tar.extractfile("weights.bin").read()
        with tarfile.open(layer.path) as tar:
            assert pulled == tar.extractfile("model/weights.bin").read()
    finally:
        container.remove(force=True)
        docker_client.images.remove(image, force=True)


def test_a_placed_blob_is_the_layer_file_itself_and_placing_again_adds_only_a_link(layer, tmp_path):
    root, hex_digest = tmp_path / "storage", layer.digest.removeprefix("sha256:")
    for repository in ("tests/first", "tests/first", "tests/second"):  # again, then elsewhere
        blobs.place(root, repository, layer.digest, layer.path)
    data = root / blobs.V2 / "blobs/sha256" / hex_digest[:2] / hex_digest / "data"
    assert data.samefile(layer.path)  # a hard link: no byte copied
    for repository in ("first", "second"):
        link = root / blobs.V2 / "repositories/tests" / repository / "_layers/sha256" / hex_digest
        assert (link / "link").read_text() == layer.digest
    assert list((root / blobs.INCOMING).iterdir()) == []  # no temporary file left


def test_a_folder_that_is_not_the_registrys_storage_is_a_farm_fault(layer, tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "registry_storage_dir", str(tmp_path / "elsewhere"))
    with pytest.raises(FarmFault, match="MODELFARM_REGISTRY_STORAGE_DIR"):
        blobs.put(Registry(), _repository(), layer)


@pytest.mark.parametrize(
    ("repository", "digest"),
    [
        ("tests/../../etc", None),
        ("tests//x", None),
        ("tests/ok", "sha256:../../x"),
        ("tests/ok", "md5:" + "0" * 32),
    ],  # fmt: skip
)
def test_a_bad_name_or_digest_is_refused_before_anything_is_written(
    layer, tmp_path, repository, digest
):
    root = tmp_path / "storage"
    with pytest.raises(ValueError, match="not a"):
        blobs.place(root, repository, digest or layer.digest, layer.path)
    assert not root.exists()
