"""What images are made from: no value can add to the configuration; a model image's own layers
are its weights, code and runner, the same for the same files, with no wheels; a dependency
image's inputs hold only its lock's; the smoke test's unpacking takes only those layers' files."""

import io
import os
import stat
import subprocess
import sys
import tarfile

import pytest

import runner.unpack
from workers.build import model_image, recipe

DEPS = {"uid": "10001"}


@pytest.mark.parametrize(
    "template, values, field, value",
    [
        (recipe.DEPS_CONFIG_TEMPLATE, DEPS, "uid", "0\nUSER root"),
        (recipe.DEPS_CONFIG_TEMPLATE, DEPS, "uid", "1 $HOME"),
        (recipe.DEPS_CONFIG_TEMPLATE, DEPS, "uid", "1\nENTRYPOINT sh"),
        (recipe.DEPS_CONFIG_TEMPLATE, DEPS, "uid", '1:1", "Privileged": "true'),
    ],
)
def test_a_value_that_could_add_an_instruction_is_refused(template, values, field, value):
    with pytest.raises(ValueError, match=f"refusing to put {field}"):
        recipe.render(template, **{**values, field: value})


def test_missing_or_extra_values_are_refused():
    with pytest.raises(ValueError):
        recipe.render(recipe.DEPS_CONFIG_TEMPLATE)
    with pytest.raises(ValueError):
        recipe.render(recipe.DEPS_CONFIG_TEMPLATE, uid="10001", deps_image="x")


def test_a_dependency_image_installs_only_its_hashed_wheels_and_runs_as_the_model_user():
    script = recipe.DEPS_INSTALL_SCRIPT.read_text()
    assert "--offline --no-index" in script and "--require-hashes" in script
    assert 'inputs=$(dirname "$0")' in script  # DEPS_INPUTS, spelled once
    assert not recipe.DEPS_INPUTS.startswith("/opt/")  # the layer is /opt: no input in it
    # What the model images inherit: they run as the unprivileged user, the runner first.
    config = recipe.deps_config()
    assert config["User"] == "10001:10001" and config["Entrypoint"][0] == "/opt/venv/bin/python"
    assert config["Cmd"] is None and "PYTHONDONTWRITEBYTECODE=1" in config["Env"]


def test_content_key_changes_with_each_input():
    base = {"contents_sha256": "a" * 64, "recipe_text": "r", "base_image_id": "sha256:1"}
    key = recipe.content_key(**base)
    assert key == recipe.content_key(**base)
    for field, other in [
        ("contents_sha256", "b" * 64), ("recipe_text", "s"), ("base_image_id", "sha256:2")
    ]:  # fmt: skip
        assert recipe.content_key(**{**base, field: other}) != key


def _package(tmp_path):
    source = tmp_path / "source"
    (source / "pkg").mkdir(parents=True)
    for name in ("predict.py", "pkg/util.py", "model.onnx", "requirements.txt", "modelfarm.yaml"):
        (source / name).write_text(name)
    (source / "tool.sh").write_text("#!/bin/sh")
    (source / "tool.sh").chmod(0o755)
    return source


def _members(tar: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        return {member.name: member for member in archive.getmembers()}


def test_a_model_image_is_its_weights_then_its_code_then_the_runner_and_no_wheels(tmp_path):
    files = model_image.layer_files(_package(tmp_path), recipe.FARM_FILES)
    tars = {name: model_image.tar_of(folder, files[name]) for name, folder in model_image.LAYOUT}
    assert [name for name, _ in model_image.LAYOUT] == ["weights", "code", "runner"]
    weights, code, farm = (_members(tars[name]) for name in ("weights", "code", "runner"))
    assert sorted(weights) == ["model", "model/model.onnx", "model/tool.sh"]
    assert sorted(code) == ["model", "model/pkg", "model/pkg/util.py", "model/predict.py"]
    # the runner, and modelfarm's Input for predict.py: importable in the image as on a laptop
    assert {"opt/modelfarm/runner/__main__.py", "opt/modelfarm/modelfarm/__init__.py"} <= set(farm)
    everything = {**weights, **code, **farm}
    assert not any(n.endswith((".whl", ".lock", "requirements.txt", ".yaml")) for n in everything)
    # root's files, no times, the package's executable bit and nothing else of its modes
    assert {(m.uid, m.gid, m.mtime) for m in everything.values()} == {(0, 0, 0)}
    assert weights["model/tool.sh"].mode == 0o755 and weights["model/model.onnx"].mode == 0o644


def test_equal_files_make_equal_layers_whenever_they_were_written(tmp_path):
    source = _package(tmp_path)
    first = model_image.tar_of("model", model_image.layer_files(source, {})["code"])
    os.utime(source / "predict.py", (1, 1))
    assert model_image.tar_of("model", model_image.layer_files(source, {})["code"]) == first


def _unpack(tmp_path, tars: list[bytes]) -> subprocess.CompletedProcess:
    """runner/unpack.py's unpack() into tmp_path (in the sandbox: into /), in a process of its
    own, as in the smoke test."""
    script = "import sys, runner.unpack as u; u.unpack(sys.stdin.buffer, sys.argv[1])"
    return subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], input=b"".join(tars), capture_output=True,
        env={"PYTHONPATH": str(runner.unpack.__file__).rsplit("/runner/", 1)[0]},
    )  # fmt: skip


def test_the_smoke_test_unpacks_the_three_layers_read_only(tmp_path):
    files = model_image.layer_files(_package(tmp_path), recipe.FARM_FILES)
    tars = [model_image.tar_of(folder, files[name]) for name, folder in model_image.LAYOUT]
    target = tmp_path / "root"
    target.mkdir()
    result = _unpack(target, tars)
    assert result.returncode == 0, result.stderr
    assert (target / "model/pkg/util.py").read_text() == "pkg/util.py"
    assert (target / "opt/modelfarm/runner/protocol.py").exists()
    assert stat.S_IMODE((target / "model/predict.py").stat().st_mode) == 0o444
    assert stat.S_IMODE((target / "model/tool.sh").stat().st_mode) == 0o555


@pytest.mark.parametrize(
    "name, kind",
    [("model/../etc/passwd", tarfile.REGTYPE), ("etc/cron.d/x", tarfile.REGTYPE),
     ("model/link", tarfile.SYMTYPE), ("/model/abs", tarfile.REGTYPE)],
)  # fmt: skip
def test_the_smoke_tests_unpacking_refuses_anything_but_files_in_the_layers_folders(
    tmp_path, name, kind
):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, "/etc/passwd" if kind == tarfile.SYMTYPE else ""
        tar.addfile(info, io.BytesIO(b""))
    result = _unpack(tmp_path, [buffer.getvalue()])
    assert result.returncode == 1 and b"unpack: refusing" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == []


def test_a_dependency_images_inputs_hold_the_installer_the_lock_and_its_wheels(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "six-1.16.0-py2.py3-none-any.whl").write_bytes(b"wheel")
    (wheels / "other-1.0-py3-none-any.whl").write_bytes(b"not in the lock")
    lock = [{"name": "six", "version": "1.16.0", "sha256": "b" * 64,
             "filename": "six-1.16.0-py2.py3-none-any.whl"}]  # fmt: skip
    archive = tmp_path / "inputs.tar"
    recipe.write_deps_inputs(archive=archive, lock=lock, wheels=wheels)
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == [
            "deps/install.sh", "deps/requirements.lock", "deps/uv",
            "deps/wheels/six-1.16.0-py2.py3-none-any.whl",
        ]  # fmt: skip
        lock_text = tar.extractfile("deps/requirements.lock").read().decode()
    assert lock_text == f"six==1.16.0 --hash=sha256:{'b' * 64}\n"


def test_the_unpacking_puts_the_model_where_the_runner_and_the_image_look_for_it():
    # runner/unpack.py runs before the runner is there, so it spells the folders itself
    from runner import protocol

    assert f"/{runner.unpack.MODEL_FOLDER}" == protocol.MODEL_DIR
    config = recipe.deps_config()
    assert config["WorkingDir"] == protocol.MODEL_DIR
    assert f"PYTHONPATH=/{runner.unpack.FARM_FOLDER}" in config["Env"]
