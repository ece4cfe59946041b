"""The build pipeline against the real Docker engine, registry and PyPI wheels."""

import gzip
import hashlib
import io
import os
import tarfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial

import docker
import httpx
import pytest

from core import context, dockerfile, registry
from core.lifecycle import JobStatus, VersionStatus
from core.registry import DEPS_REPOSITORY
from core.settings import settings
from tests.integration import stack
from tests.utils import make_zip
from workers import cache, images
from workers.build import layers, venvs
from workers.build.builder import IMAGE_PUT
from workers.build.dependencies import INSTALLING, REUSED, dependency_image
from workers.build.smoke import STANDBY_ROOM_MB, STANDBY_WORK
from workers.run.sandbox import WORK_LABEL

PLAN = dockerfile.parse(dockerfile.for_base(settings.base_image), base=settings.base_image)
PREDICT = "def predict(input_path, output_dir):\n    return {'ok': True}\n"
SIX_PREDICT = """
import six


class Predictor:
    def setup(self):
        self.version = six.__version__

    def predict(self, input_path, output_dir):
        return {"six": self.version}
"""


def _with_setup(body: str) -> str:
    return (
        f"class Predictor:\n    def setup(self):\n        {body}\n"
        "    def predict(self, input_path, output_dir):\n        return {}\n"
    )


def _pulled(docker_client, version: dict):
    """The version's image, pulled: the build host never needs it (the user's teardown removes
    it)."""
    return docker_client.images.pull(version["image_ref"])


def _inspect(docker_client, version: dict) -> dict:
    return _pulled(docker_client, version).attrs


def _run_in_image(docker_client, image: str, script: str) -> str:
    output = docker_client.containers.run(
        image, ["-c", script], entrypoint="python3", network_mode="none", remove=True
    )
    return output.decode()


def test_echo_package_builds_a_non_root_image_in_the_registry(new_user, docker_client):
    farm = new_user()
    version = farm.build({"predict.py": PREDICT, "weights.bin": b"\1" * 1000})
    assert version["status"] == VersionStatus.READY, version["error"]
    assert version["reused"] is False
    assert version["image_ref"].startswith(f"{settings.registry}/models/{version['model_id']}@")
    repository = f"models/{version['model_id']}"
    tags = httpx.get(f"{settings.registry_base_url}/v2/{repository}/tags/list").json()["tags"]
    assert "v1" in tags and any(tag.startswith("c-") for tag in tags)
    config = _inspect(docker_client, version)["Config"]
    assert config["User"] == "10001:10001"
    # Nothing in the image names its model or version: equal contents are one image.
    assert not any(label.startswith("org.modelfarm.") for label in config["Labels"] or {})
    logs = farm.http.get(f"/api/versions/{version['id']}/logs").text
    assert IMAGE_PUT in logs and "self-test passed" in logs


def test_image_holds_no_secret_no_wheel_no_pip_and_no_compiler(new_user, docker_client):
    version = new_user().build({"predict.py": PREDICT, "requirements.txt": "six==1.16.0\n"})
    assert version["status"] == VersionStatus.READY, version["error"]
    image = _pulled(docker_client, version)
    history = "\n".join(str(layer) for layer in image.history())
    inspected = str(image.attrs)
    for secret in (settings.jwt_secret, settings.s3_secret_key):
        assert secret not in history and secret not in inspected
    survey = (
        "import glob, os, shutil; "
        "wheels = sorted(f for top in ('/opt', '/usr', '/model', '/var', '/root', '/tmp') "
        "for _, _, files in os.walk(top) for f in files if f.endswith('.whl')); "
        "print(wheels, os.path.exists('/opt/venv/bin/pip'), shutil.which('gcc'),"
        " shutil.which('cc'), glob.glob('/var/lib/apt/lists/*_Packages'),"
        " os.path.exists('/root/.cache'), os.path.exists('/tmp/deps'))"
    )
    found = _run_in_image(docker_client, image.id, survey)
    # The wheels Debian's python3-venv ships in the base image are the only ones allowed.
    base_wheels = _run_in_image(docker_client, settings.base_image, survey).split("]")[0]
    assert found.strip() == f"{base_wheels}] False None None [] False False"


def test_identical_package_is_served_from_the_registry_even_without_local_images(
    new_user, docker_client
):
    farm = new_user()
    model = farm.create_model()
    package = make_zip({"predict.py": PREDICT})
    first = farm.build(package, model["id"])
    assert first["status"] == VersionStatus.READY
    # The registry is the source of truth, not the engine's cache.
    for image in docker_client.images.list(name=f"{settings.registry}/models/{model['id']}"):
        docker_client.images.remove(image.id, force=True)
    second = farm.build(package, model["id"])
    assert second["status"] == VersionStatus.READY
    assert second["reused"] is True
    assert second["image_digest"] == first["image_digest"]
    assert (
        "reuse: the registry has this exact image"
        in farm.http.get(f"/api/versions/{second['id']}/logs").text
    )


def _unique_files() -> dict[str, str | bytes]:
    """Files no earlier build (of this run or another on this stack) has had."""
    return {"predict.py": PREDICT + f"# {uuid.uuid4()}\n", "w/weights.bin": b"\3" * 3000}


def _log(farm, version: dict) -> str:
    return farm.http.get(f"/api/versions/{version['id']}/logs").text


def test_the_same_files_zipped_again_are_reused_without_a_build(new_user):
    farm = new_user()
    model = farm.create_model()
    files = _unique_files()
    first = farm.build(files, model["id"])
    assert first["status"] == VersionStatus.READY and first["reused"] is False, first["error"]
    again = farm.build(make_zip(files, again=True), model["id"])
    assert again["status"] == VersionStatus.READY and again["reused"] is True
    assert again["package_sha256"] != first["package_sha256"]  # other ZIP bytes
    assert again["image_digest"] == first["image_digest"]
    assert "reuse: the registry has this exact image" in _log(farm, again)
    assert "smoke test" not in _log(farm, again) and IMAGE_PUT not in _log(farm, again)


def test_content_is_reused_across_an_owners_models_and_from_public_ones_only(new_user):
    owner, stranger = new_user(), new_user()
    files = _unique_files()
    private = owner.build(files, owner.create_model()["id"])
    assert private["status"] == VersionStatus.READY and private["reused"] is False
    mine = owner.build(make_zip(files, again=True), owner.create_model()["id"])
    assert mine["status"] == VersionStatus.READY and mine["reused"] is True
    assert mine["image_digest"] == private["image_digest"]
    repository = f"models/{mine['model_id']}"
    tags = httpx.get(f"{settings.registry_base_url}/v2/{repository}/tags/list").json()["tags"]
    assert any(tag.startswith("c-") for tag in tags)  # in the second model's repository
    assert mine["image_ref"].startswith(f"{settings.registry}/{repository}@")
    assert owner.run(mine["id"], b"x")["status"] == JobStatus.SUCCEEDED
    # A stranger's build of the same files: the private image is not theirs to reuse.
    theirs = stranger.build(files, stranger.create_model()["id"])
    assert theirs["status"] == VersionStatus.READY and theirs["reused"] is False
    assert stranger.run(theirs["id"], b"x")["status"] == JobStatus.SUCCEEDED
    # Once the owner publishes a model holding them, anyone's same files reuse it.
    published = {**files, "predict.py": files["predict.py"] + "# public\n"}
    public_model = owner.create_model(visibility="public")
    assert owner.build(published, public_model["id"])["reused"] is False
    reused = stranger.build(published, stranger.create_model()["id"])
    assert reused["status"] == VersionStatus.READY and reused["reused"] is True


def _layers(repository: str, reference: str) -> list[str]:
    manifest = httpx.get(
        f"{settings.registry_base_url}/v2/{repository}/manifests/{reference}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    ).json()
    return [layer["digest"] for layer in manifest["layers"]]


def _image_layers(version: dict) -> list[str]:
    return _layers(*version["image_ref"].split("/", 1)[1].split("@"))


def test_code_only_change_reuses_the_dependency_weight_and_runner_layers(new_user):
    farm = new_user()
    model = farm.create_model()
    files = {"predict.py": PREDICT, "requirements.txt": "six==1.16.0\n", "w.bin": b"\2" * 5000}
    first = farm.build(files, model["id"])
    assert first["status"] == VersionStatus.READY, first["error"]
    changed = farm.build({**files, "predict.py": PREDICT + "# new code\n"}, model["id"])
    assert changed["status"] == VersionStatus.READY and changed["reused"] is False
    assert changed["image_digest"] != first["image_digest"]
    log = _log(farm, changed)
    assert REUSED in log and INSTALLING not in log, log
    before, after = _image_layers(first), _image_layers(changed)
    # base and virtualenv, then the weights; the code differs; the runner is the same blob
    assert after[:-2] == before[:-2] and after[-2] != before[-2] and after[-1] == before[-1]
    assert farm.run(changed["id"], b"x")["status"] == JobStatus.SUCCEEDED


def test_models_of_one_dependency_set_share_its_image_and_its_virtualenv_blob(new_user):
    farm = new_user()
    requirements = {"requirements.txt": "six==1.16.0\n"}
    one = farm.build({**_unique_files(), **requirements})
    two = farm.build({**_unique_files(), **requirements})
    assert one["status"] == two["status"] == VersionStatus.READY, (one["error"], two["error"])
    log = _log(farm, two)
    assert REUSED in log and "pip install" not in log
    # Both images begin with the very blobs of one dependency image (base, then virtualenv);
    # after them come only each model's own layers (data/, code/, runner/).
    layers_one, layers_two = _image_layers(one), _image_layers(two)
    shared = layers_one[: len(layers_one) - 3]
    assert (
        layers_two[: len(shared)] == shared
        and layers_two[len(shared) :] != layers_one[len(shared) :]
    )
    tags = httpx.get(f"{settings.registry_base_url}/v2/{DEPS_REPOSITORY}/tags/list").json()
    assert shared in [_layers(DEPS_REPOSITORY, tag) for tag in tags["tags"]]


def test_two_builds_needing_one_new_dependency_set_build_it_once(docker_client, tmp_path):
    # A base image id no build has had makes the set new; the image is built on the real base.
    base_image_id = f"sha256:{uuid.uuid4().hex}"
    logs: list[list[str]] = [[], []]

    def build(number: int) -> tuple:
        (tmp_path / str(number)).mkdir()
        client = images.docker_client()
        try:
            work = tmp_path / str(number)
            files = context.deps_entries([], tmp_path, work / context.LOCK_FILE)
            return dependency_image(
                client, PLAN, files, [], base_image_id, work, logs[number].append
            )
        finally:
            client.close()

    made: list[tuple] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            made += pool.map(build, [0, 1])
        assert made[0][0].digest == made[1][0].digest
        assert made[0][1].id == made[1][1].id  # and one copy of its virtualenv on this engine
        texts = ["".join(log) for log in logs]
        builders = [number for number, text in enumerate(texts) if INSTALLING in text]
        assert len(builders) == 1, texts  # one install for both
        assert "another build is making" in texts[1 - builders[0]]
    finally:
        for image, _ in made[:1]:
            images.remove_container(docker_client, venvs.holder_name(image.tag))


def _inputs(tmp_path, files: dict[str, bytes]):
    inputs = tmp_path / "inputs.tar"
    with tarfile.open(inputs, "w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return inputs


@pytest.mark.parametrize(
    "command, error",
    [
        (["sleep", "60"], "timed out after 1 s"),
        (["sh", "-c", "echo broken >&2; exit 3"], "exited 3"),
    ],
)
def test_a_step_that_fails_or_overruns_yields_nothing_and_leaves_no_container(
    docker_client, tmp_path, command, error
):
    logged: list[str] = []
    with pytest.raises(images.BuildFailed, match=error), images.run_step(
        docker_client, image=settings.base_image, command=command,
        inputs=_inputs(tmp_path, {}), extract_into="/tmp", name=f"modelfarm-test-{uuid.uuid4()}",
        time_limit_s=1, log=logged.append,
    ):  # fmt: skip
        pytest.fail("a failed step yielded its container")
    left = docker_client.containers.list(all=True, filters={"ancestor": settings.base_image})
    assert not [c for c in left if c.attrs["Config"]["Cmd"] == command]
    assert command[0] == "sleep" or "broken" in "".join(logged)


def test_a_layer_read_from_a_step_is_the_folder_gzipped_and_named_by_both_digests(
    docker_client, tmp_path
):
    # Bigger than a piece, so that several gzip members make the blob.
    content = os.urandom(layers.PIECE_BYTES + 1000)
    script = b"mkdir -p /opt/made && cp /tmp/step/content /opt/made/ && chmod 640 /opt/made/*"
    inputs = _inputs(tmp_path, {"step/content": content, "step/run.sh": script})
    with images.run_step(
        docker_client, image=settings.base_image, command=["sh", "/tmp/step/run.sh"],
        inputs=inputs, extract_into="/tmp", name=f"modelfarm-test-{uuid.uuid4()}", time_limit_s=30,
        log=lambda line: None,
    ) as container:  # fmt: skip
        layer = layers.read_layer(container, "/opt", tmp_path / "layer.tar.gz")
    blob = layer.path.read_bytes()
    tar = gzip.decompress(blob)
    assert layer.diff_id == f"sha256:{hashlib.sha256(tar).hexdigest()}"
    assert layer.digest == f"sha256:{hashlib.sha256(blob).hexdigest()}"
    assert layer.size == len(blob) and layer.media_type == registry.LAYER_GZIP
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        assert archive.getnames() == ["opt", "opt/made", "opt/made/content"]  # nothing of /tmp
        made = archive.getmember("opt/made/content")
        assert made.mode & 0o7777 == 0o640 and made.uid == 0
        assert archive.extractfile(made).read() == content


def test_requirements_are_installed_from_locked_wheels_and_reused(new_user, docker_client):
    farm = new_user()
    files = {"predict.py": SIX_PREDICT, "requirements.txt": "six==1.16.0\n"}
    version = farm.build(files)
    assert version["status"] == VersionStatus.READY, version["error"]
    from core.db import SessionLocal
    from core.models import ModelVersion

    with SessionLocal() as session:
        lock = session.get(ModelVersion, __import__("uuid").UUID(version["id"])).lock
    assert [(item["name"], item["version"]) for item in lock] == [("six", "1.16.0")]
    assert len(lock[0]["sha256"]) == 64 and lock[0]["filename"].endswith(".whl")
    again = farm.build({**files, "predict.py": SIX_PREDICT + "\n# another model\n"})
    assert again["status"] == VersionStatus.READY
    assert "no download" in farm.http.get(f"/api/versions/{again['id']}/logs").text


def test_a_host_without_a_copy_of_the_sets_virtualenv_copies_it_from_the_registry(
    new_user, docker_client
):
    farm = new_user()
    files = {"predict.py": SIX_PREDICT, "requirements.txt": "six==1.16.0\n"}
    assert farm.build(files)["status"] == VersionStatus.READY
    # as on a build host that has never built this set
    for holder in venvs.holders(docker_client):
        holder.remove(force=True, v=True)
    changed = farm.build({**files, "predict.py": SIX_PREDICT + "# copied\n"})
    assert changed["status"] == VersionStatus.READY, changed["error"]
    log = _log(farm, changed)
    assert "copying the virtualenv" in log and INSTALLING not in log and "self-test passed" in log
    copies = [docker_client.containers.get(holder.id) for holder in venvs.holders(docker_client)]
    assert [c.attrs["State"]["ExitCode"] for c in copies] == [0]
    assert farm.run(changed["id"], b"x")["status"] == JobStatus.SUCCEEDED


def test_a_requirement_without_a_wheel_fails_naming_it(new_user):
    version = new_user().build({"predict.py": PREDICT, "requirements.txt": "pycrypto==2.6.1\n"})
    assert version["status"] == VersionStatus.FAILED
    assert "pycrypto" in version["error"] and "wheels only" in version["error"]


@pytest.mark.parametrize(
    "predict, config, words",
    [
        (
            _with_setup("raise RuntimeError('weights missing')"),
            None,
            "setup failed: RuntimeError: weights missing",
        ),
        ("import no_such_module\n", None, "ModuleNotFoundError: No module named 'no_such_module'"),
        ("x = 1\n", None, "neither a class Predictor nor a function predict"),
        (
            _with_setup("self.w = bytearray(200 * 1024 * 1024)"),
            "memory_mb: 64\n",
            "out of memory (limit 64 MB)",
        ),
        (
            _with_setup("__import__('time').sleep(600)"),
            "timeout_s: 2\n",
            "timed out after 2 s",
        ),
    ],
    ids=["setup-raises", "import-error", "no-predict", "setup-oom", "setup-hangs"],
)
def test_failing_smoke_test_fails_the_version_with_the_reason(new_user, predict, config, words):
    files = {"predict.py": predict, **({"modelfarm.yaml": config} if config else {})}
    version = new_user().build(files)
    assert version["status"] == VersionStatus.FAILED
    assert "smoke test" in version["error"] and words in version["error"], version["error"]


def _standing_by(docker_client, memory_mb: int) -> list[str]:
    """The build worker's sandboxes started ahead for the next smoke test of a model with this
    memory limit (beside it, room for the layers of a small model; none for a big one's tree)."""
    found = docker_client.containers.list(filters={"label": f"{WORK_LABEL}={STANDBY_WORK}"})
    return [c.id for c in found if c.attrs["HostConfig"]["Memory"] == memory_mb * 2**20]


def _marked(input_name: str, weights_mb: int) -> dict:
    """A package whose predict takes an input of this name, with weights of this size (those
    above STANDBY_ROOM_MB are mounted in the smoke test, not unpacked), which setup() reads."""
    predict = (
        "class Predictor:\n"
        "    def setup(self):\n"
        "        self.size = len(open('weights.bin', 'rb').read())\n"
        f"    def predict(self, {input_name}: str = '') -> dict:\n"
        "        return {'size': self.size}\n"
    )
    return {"predict.py": predict, "weights.bin": b"\3" * (weights_mb * 2**20 + 1)}


@pytest.mark.parametrize("weights_mb", [0, STANDBY_ROOM_MB], ids=["unpacked", "mounted"])
def test_a_smoke_test_runs_in_the_sandbox_started_ahead_for_it(new_user, docker_client, weights_mb):
    farm = new_user()
    model = farm.create_model()
    memory_mb = 300 + uuid.uuid4().int % 100  # a kind of smoke test of this test's own
    room_mb = 0 if weights_mb else STANDBY_ROOM_MB

    def build() -> dict:
        """A build whose smoke test must see its own files: predict's input is named anew."""
        name = f"text_{uuid.uuid4().hex[:8]}"
        files = {**_marked(name, weights_mb), "modelfarm.yaml": f"memory_mb: {memory_mb}\n"}
        version = farm.build(files, model["id"])
        assert version["status"] == VersionStatus.READY, version["error"]
        assert list(version["input_schema"]["properties"]) == [name]
        return version

    build()
    standing_by = partial(_standing_by, docker_client, memory_mb + room_mb)
    ahead = stack.wait_for(standing_by, "one started ahead", 30)
    assert len(ahead) == 1
    assert "self-test passed" in _log(farm, build())
    # it served that smoke test and is gone; another one waits for the next
    assert ahead[0] not in {c.id for c in docker_client.containers.list(all=True)}
    (next_one,) = stack.wait_for(standing_by, "the next", 30)
    # one that died waiting is not used: the smoke test starts its own
    docker_client.containers.get(next_one).kill()
    assert "self-test passed" in _log(farm, build())


def test_the_least_recently_used_virtualenv_copies_go_with_the_sandboxes_using_them(
    docker_client, monkeypatch
):
    def holder(name: str):
        made = docker_client.containers.create(
            settings.base_image, ["true"], name=venvs.holder_name(name), volumes=[venvs.VENV]
        )
        made.start()
        made.wait()
        made.reload()
        return made

    old, new = holder(f"test-old-{uuid.uuid4()}"), holder(f"test-new-{uuid.uuid4()}")
    user = docker_client.containers.run(
        settings.base_image, ["sleep", "60"], detach=True, volumes_from=[f"{old.id}:ro"],
        labels={venvs.COPY_LABEL: old.id},
    )  # fmt: skip
    try:
        cache.touch(new.id)
        cache._redis.zadd(cache.USES_KEY, {old.id: 1})  # used longest ago of all
        monkeypatch.setattr(settings, "worker_venv_copies", len(venvs.holders(docker_client)) - 1)
        (old_volume,) = [mount["Name"] for mount in old.attrs["Mounts"]]
        venvs.trim(docker_client)
        left = {c.id for c in docker_client.containers.list(all=True)}
        assert old.id not in left and user.id not in left and new.id in left
        assert old_volume not in {volume.name for volume in docker_client.volumes.list()}
    finally:
        for container in (old, new, user):
            with suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
