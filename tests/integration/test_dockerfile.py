"""The generated Dockerfile is the recipe: the farm's executor and the Docker engine
(MODELFARM_BUILDER=engine) build it into images with the same files and configuration, which
run a job to the same result; a Dockerfile of a form the template never writes builds nothing."""

import base64
import hashlib
import io
import json
import os
import subprocess
import tarfile
import uuid
import zipfile
from pathlib import Path

import pytest

from core import context, dockerfile, registry
from core.db import SessionLocal
from core.lifecycle import VersionStatus
from core.models import ModelVersion
from core.settings import settings
from tests.utils import make_zip
from workers import images
from workers.build import engine, executor
from workers.build.builder import WHEELHOUSE, BuildRequest, _build_image
from workers.build.package import open_package
from workers.run import outputs, sandbox
from workers.run.request import RunnerRequest

DIGITS = Path(__file__).parents[2] / "examples" / "digits-onnx"
ODD_PREDICT = """
import os
import subprocess
from pathlib import Path

from pkg.util import VALUE


def predict(input_path, output_dir):
    here = Path(__file__).parent
    ran = subprocess.run([str(here / "tools" / "tool.sh")], capture_output=True, text=True)
    return {"util": VALUE, "data": (here / "data file.txt").read_text(), "tool": ran.stdout,
            "input": Path(input_path).read_text()}
"""
# The fields the engine's image configuration and the farm's must agree on.
CONFIG_FIELDS = ("Env", "User", "WorkingDir", "Entrypoint", "Cmd")
OWNER = sandbox.owner_for("tests")


def _odd_package() -> bytes:
    """A nested folder, a file with a space in its name and an executable file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("predict.py", ODD_PREDICT)
        archive.writestr("pkg/__init__.py", "")
        archive.writestr("pkg/util.py", "VALUE = 42\n")
        archive.writestr("data file.txt", "spaced out")
        tool = zipfile.ZipInfo("tools/tool.sh")
        tool.external_attr = 0o100755 << 16
        archive.writestr(tool, "#!/bin/sh\necho tool ran\n")
    return buffer.getvalue()


def _digits_package() -> bytes:
    names = ["predict.py", "requirements.txt", "model.onnx", "modelfarm.yaml"]
    return make_zip({name: (DIGITS / name).read_bytes() for name in names})


def _files(package_zip: bytes, lock: list[dict], work: Path) -> context.Context:
    """The context's files as the build worker gathers them, from the same package."""
    (work / "package.zip").write_bytes(package_zip)
    (work / "source").mkdir()
    package = open_package(work / "package.zip", work / "source")
    return {
        **context.deps_entries(lock, WHEELHOUSE / "files", work / context.LOCK_FILE),
        **context.package_entries(package.root),
        **context.farm_entries(),
    }


def _engine_build(client, version: dict, package_zip: bytes, work: Path) -> str:
    """The same version built by the engine, pushed under a tag of its own; its reference."""
    with SessionLocal() as session:
        row = session.get(ModelVersion, uuid.UUID(version["id"]))
        text, lock = row.dockerfile, row.lock
    assert text == dockerfile.for_base(settings.base_image)
    target = executor.Target(
        repository=registry.model_repository(version["model_id"]),
        tags=[f"engine-{uuid.uuid4().hex[:8]}"], model_config={}, work=str(uuid.uuid4()),
    )  # fmt: skip
    log: list[str] = []
    digest, schema = engine.build(client, text, _files(package_zip, lock, work), target, work,
                                  log.append)  # fmt: skip
    assert "Step 12/12 : ENTRYPOINT" in "".join(log)
    assert schema == version["input_schema"]
    return registry.pinned(target.repository, digest)


def file_table(client, reference: str) -> dict[str, tuple]:
    """Every file of the image: path -> (type, mode, uid, gid, sha256 of its bytes, link)."""
    images.pull(client, reference)
    container = client.containers.create(reference, network_mode="none")
    try:
        stream = io.BytesIO(b"".join(container.export()))
    finally:
        container.remove(force=True)
    table = {}
    with tarfile.open(fileobj=stream) as tar:
        for member in tar:
            content = tar.extractfile(member).read() if member.isfile() else b""
            table[member.name.rstrip("/")] = (
                member.type, member.mode, member.uid, member.gid,
                hashlib.sha256(content).hexdigest(), member.linkname,
            )  # fmt: skip
    return table


def _run(client, reference: str, request: RunnerRequest, stdin: list[Path]) -> dict:
    result = sandbox.run(
        client, reference, request.command(), stdin=stdin, limits=sandbox.Limits.for_model(None),
        owner=OWNER, work=str(uuid.uuid4()),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr_tail
    return outputs.unpack_outputs(result.stdout, 10 * 1024**2)


@pytest.mark.parametrize("package", ["digits", "odd"])
def test_the_executor_and_the_engine_build_equal_images(new_user, docker_client, tmp_path, package):
    package_zip = _digits_package() if package == "digits" else _odd_package()
    farm = new_user()
    version = farm.build(package_zip)
    assert version["status"] == VersionStatus.READY, version["error"]
    engine_ref = _engine_build(docker_client, version, package_zip, tmp_path)
    both = [version["image_ref"], engine_ref]
    try:
        ours, theirs = (file_table(docker_client, reference) for reference in both)
        different = sorted(p for p in set(ours) | set(theirs) if ours.get(p) != theirs.get(p))
        assert not different, [(p, ours.get(p), theirs.get(p)) for p in different[:10]]
        configs = [docker_client.images.get(reference).attrs["Config"] for reference in both]
        assert [{f: c.get(f) for f in CONFIG_FIELDS} for c in configs][0] == {
            f: configs[1].get(f) for f in CONFIG_FIELDS
        }
        if package == "odd":
            assert ours["model/tools/tool.sh"][1] & 0o777 == 0o755 and "model/data file.txt" in ours
            data = tmp_path / "input.txt"
            data.write_text("hello")
            request = RunnerRequest.of_file("input.txt", data)
        else:
            data = DIGITS / "samples" / "digit-3.png"
            request = RunnerRequest.typed({"top_k": 2}, [("image", data.name, data)])
        results = [_run(docker_client, reference, request, [data]) for reference in both]
        assert results[0] == results[1]
        result = json.loads(results[0]["result.json"])
        if package == "odd":
            assert result == {"util": 42, "data": "spaced out", "tool": "tool ran\n",
                              "input": "hello"}  # fmt: skip
        else:
            assert 0 <= result["label"] <= 9 and len(result["top"]) == 2
    finally:
        registry.Registry().delete_manifest(
            registry.model_repository(version["model_id"]), engine_ref.split("@")[1]
        )


def test_a_dockerfile_of_a_form_the_template_never_writes_builds_and_pushes_nothing(
    monkeypatch, docker_client, tmp_path
):
    hostile = tmp_path / "Dockerfile.template"
    hostile.write_text(dockerfile.TEMPLATE.read_text().replace("USER $uid:$uid", "USER root"))
    monkeypatch.setattr(dockerfile, "TEMPLATE", hostile)
    (tmp_path / "package.zip").write_bytes(make_zip({"predict.py": ODD_PREDICT}))
    (tmp_path / "source").mkdir()
    package = open_package(tmp_path / "package.zip", tmp_path / "source")
    request = BuildRequest(
        version_id=uuid.uuid4(), model_id=uuid.uuid4(), owner_id=uuid.uuid4(), number=1,
        package_key="", package_size=0, build_log_key="", webhook_events=[], attempt=1,
        content_files=[], started={},
    )  # fmt: skip
    log: list[str] = []
    with pytest.raises(dockerfile.DockerfileRefused, match="USER root.*never root"):
        _build_image(request, package, docker_client, tmp_path, log.append)
    assert registry.Registry().tags(registry.model_repository(request.model_id)) == []
    assert "Step " not in "".join(log)


def test_the_ejected_context_builds_with_plain_docker_build_into_the_farms_image(
    new_user, docker_client, tmp_path
):
    farm = new_user()
    version = farm.build(_digits_package())
    assert version["status"] == VersionStatus.READY, version["error"]
    response = farm.http.get(f"/api/versions/{version['id']}/context")
    assert response.status_code == 200, response.text
    ejected = tmp_path / "context"
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        archive.extractall(ejected, filter="data")
    # what a user runs on a machine with the base image: the CLI, no SDK, no network
    tag = f"{registry.engine_name(registry.model_repository(version['model_id']))}:ejected"
    built = subprocess.run(
        ["docker", "build", "--network", "none", "-t", tag, str(ejected)],
        capture_output=True, text=True, env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert file_table(docker_client, tag) == file_table(docker_client, version["image_ref"])
    data = DIGITS / "samples" / "digit-2.png"
    request = RunnerRequest.typed({"top_k": 3}, [("image", data.name, data)])
    ours = json.loads(_run(docker_client, tag, request, [data])["result.json"])
    image = {"name": data.name, "data": base64.b64encode(data.read_bytes()).decode()}
    created = farm.submit(
        version["id"], inputs={"image": image, "top_k": 3}, headers={"Prefer": "wait=60"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["job"]["status"] == "SUCCEEDED", created.text
    assert ours == created.json()["job"]["result"]
