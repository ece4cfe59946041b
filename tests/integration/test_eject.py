"""A version's Dockerfile and build context, for anyone who may read the version: the context
holds exactly what the Dockerfile copies, the package's files as they were (an executable one,
a nested folder, a space in a name) and the lock's wheels; a reused version's context is the
same bytes as that of the version that built its image. The `modelfarm dockerfile` and
`modelfarm eject` commands print the one and unpack the other. (That plain `docker build
--network none` of it makes the version's image is tests/integration/test_dockerfile.py's.)"""

import hashlib
import io
import os
import tarfile
import uuid
import zipfile

import pytest
from sqlalchemy import update

from core import context, dockerfile
from core.db import SessionLocal
from core.lifecycle import VersionStatus
from core.models import ModelVersion
from tests.integration.test_cli import logged_in, modelfarm
from tests.utils import API_URL

PREDICT = """
import six


def predict(input_path, output_dir):
    return {"six": six.__version__}
"""
PACKAGE_FILES = {
    "predict.py": PREDICT,
    "requirements.txt": "six==1.16.0\n",
    "modelfarm.yaml": "description: ejected\n",
    "tools/run.sh": "#!/bin/sh\necho ran\n",
    "data/nested/table.csv": "a,b\n1,2\n",
    "my weights.bin": b"\7" * 2048,
}
EXECUTABLE = {"tools/run.sh"}
# Where each of the package's files is in the context (requirements.txt and modelfarm.yaml are
# the farm's to read, never the image's).
IN_CONTEXT = {
    "code/predict.py": "predict.py",
    "weights/tools/run.sh": "tools/run.sh",
    "weights/data/nested/table.csv": "data/nested/table.csv",
    "weights/my weights.bin": "my weights.bin",
}
FARM_FILES = set(context.farm_entries())


def _package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in PACKAGE_FILES.items():
            entry = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            entry.external_attr = (0o100755 if name in EXECUTABLE else 0o100644) << 16
            archive.writestr(entry, content)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def built(new_user_module):
    """The package built in a private model, and the same package in a public model of the
    same owner, whose version reuses the first one's image (and so keeps no lock of its own)."""
    owner = new_user_module()
    private = owner.create_model()
    version = owner.build(_package(), model_id=private["id"])
    assert version["status"] == VersionStatus.READY, version["error"]
    public = owner.create_model(visibility="public")
    reused = owner.build(_package(), model_id=public["id"])
    assert reused["status"] == VersionStatus.READY and reused["reused"], reused["error"]
    return owner, private, version, public, reused


def _lock(version_id: str) -> list[dict]:
    with SessionLocal() as session:
        return session.get(ModelVersion, uuid.UUID(version_id)).lock


def _members(tar_gz: bytes) -> dict[str, tuple[int, bytes]]:
    """The context's regular files: path -> (mode, bytes)."""
    with tarfile.open(fileobj=io.BytesIO(tar_gz), mode="r:gz") as tar:
        return {m.name: (m.mode, tar.extractfile(m).read()) for m in tar if m.isfile()}


def _expected_names(lock: list[dict]) -> set[str]:
    deps = {"deps/install.sh", "deps/uv", f"deps/{context.LOCK_FILE}"}
    wheels = {f"{context.WHEELS}{item['filename']}" for item in lock}
    return {context.DOCKERFILE, *deps, *wheels, *IN_CONTEXT, *FARM_FILES}


def test_the_dockerfile_is_the_one_made_from_the_template(built):
    owner, _, version, _, _ = built
    response = owner.http.get(f"/api/versions/{version['id']}/dockerfile")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    header = dockerfile.TEMPLATE.read_text().splitlines()[0]
    assert response.text.startswith(header + "\n")
    assert "\nFROM " in response.text and "\nCOPY code/ /model/\n" in response.text
    assert owner.dockerfile(version["id"]) == response.text


def test_the_context_holds_what_the_dockerfile_copies_and_nothing_else(built):
    owner, private, version, _, _ = built
    response = owner.http.get(f"/api/versions/{version['id']}/context")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/gzip"
    filename = f"{private['name']}-v{version['number']}-context.tar.gz"
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    lock = _lock(version["id"])
    assert [item["name"] for item in lock] == ["six"]
    files = _members(response.content)
    assert set(files) == _expected_names(lock)
    assert files[context.DOCKERFILE][1].decode() == owner.dockerfile(version["id"])
    for path, name in IN_CONTEXT.items():
        content = PACKAGE_FILES[name]
        assert files[path][1] == (content if isinstance(content, bytes) else content.encode())
        assert files[path][0] == (0o755 if name in EXECUTABLE else 0o644), path
    for item in lock:
        wheel = files[f"{context.WHEELS}{item['filename']}"][1]
        assert hashlib.sha256(wheel).hexdigest() == item["sha256"]
    assert files[f"deps/{context.LOCK_FILE}"][1].decode() == context.lock_text(lock)
    assert files["deps/uv"][0] == 0o755
    # Equal contexts are equal bytes: the gzip header holds no flags (so no file name) and no
    # time (bytes 3 and 4-8), nor does the tar hold times.
    assert response.content[3:8] == b"\0" * 5
    assert owner.http.get(f"/api/versions/{version['id']}/context").content == response.content


def test_a_reused_version_has_the_context_of_the_build_that_made_its_image(built):
    owner, _, version, _, reused = built
    assert _lock(reused["id"]) is None
    ejected = owner.http.get(f"/api/versions/{reused['id']}/context")
    assert ejected.status_code == 200, ejected.text
    assert ejected.content == owner.http.get(f"/api/versions/{version['id']}/context").content


def test_a_stranger_reads_a_public_models_version_but_not_a_private_ones(built, new_user):
    _, _, version, _, reused = built
    stranger = new_user()
    for what in ("dockerfile", "context"):
        hidden = stranger.http.get(f"/api/versions/{version['id']}/{what}")
        assert hidden.status_code == 404, hidden.text
        assert hidden.json()["detail"] == "No version with that id"
        shown = stranger.http.get(f"/api/versions/{reused['id']}/{what}")
        assert shown.status_code == 200, shown.text


def test_a_version_not_built_has_neither(built):
    owner, private, _, _, _ = built
    unbuilt = owner.new_version(private["id"], None)
    for what in ("dockerfile", "context"):
        response = owner.http.get(f"/api/versions/{unbuilt['id']}/{what}")
        assert response.status_code == 409, response.text
        assert response.json()["detail"].startswith(
            "This version has no Dockerfile: it is not built yet; upload its package, build it"
        )


def test_a_context_whose_wheels_are_no_longer_kept_answers_409(built):
    owner, _, version, _, _ = built
    unkept = owner.build(_package(), model_id=owner.create_model()["id"])  # reused: no build
    lock = [{**_lock(version["id"])[0], "sha256": "0" * 64}]
    with SessionLocal() as session:
        session.execute(
            update(ModelVersion).where(ModelVersion.id == uuid.UUID(unkept["id"])).values(lock=lock)
        )
        session.commit()
    response = owner.http.get(f"/api/versions/{unkept['id']}/context")
    assert response.status_code == 409, response.text
    assert response.json()["detail"] == (
        f"The wheels of this version ({lock[0]['filename']} among them) are no longer kept; "
        "push a new version of the model to build and keep them again."
    )


def test_the_commands_print_the_dockerfile_and_unpack_the_context(built, tmp_path):
    owner, private, version, _, _ = built
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "MODELFARM_API": API_URL}
    env.pop("MODELFARM_TOKEN", None)
    logged_in(owner, env)
    target = f"{private['name']}:{version['number']}"
    printed = modelfarm(env, "dockerfile", target)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == owner.dockerfile(version["id"])

    folder = tmp_path / "context"
    ejected = modelfarm(env, "eject", target, str(folder))
    assert ejected.returncode == 0, ejected.stderr
    tag = f"{private['name']}:v{version['number']}"
    assert ejected.stdout == f"docker build --network none -t {tag} {folder}\n"
    unpacked = {
        path.relative_to(folder).as_posix(): path for path in folder.rglob("*") if path.is_file()
    }
    assert set(unpacked) == _expected_names(_lock(version["id"]))
    assert unpacked[context.DOCKERFILE].read_text() == printed.stdout
    assert unpacked["weights/tools/run.sh"].stat().st_mode & 0o777 == 0o755
    assert unpacked["weights/my weights.bin"].read_bytes() == PACKAGE_FILES["my weights.bin"]

    again = modelfarm(env, "eject", target, str(folder))
    assert again.returncode == 1
    assert f"error: {folder} is not an empty folder" in again.stderr
