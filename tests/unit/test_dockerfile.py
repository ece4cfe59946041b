"""What images are made from: no value can add an instruction; layers are ordered for the cache;
a model's build context holds no wheels; a dependency image's inputs hold only its lock's."""

import tarfile

import pytest

from workers.build import dockerfile

DEPS_IMAGE = "127.0.0.1:5000/modelfarm/deps@sha256:" + "a" * 64
MODEL = {"deps_image": DEPS_IMAGE}
DEPS = {"uid": "10001"}


@pytest.mark.parametrize(
    "template, values, field, value",
    [
        (dockerfile.TEMPLATE, MODEL, "deps_image", "modelfarm/deps:latest"),  # not pinned
        (dockerfile.TEMPLATE, MODEL, "deps_image", DEPS_IMAGE + "\nRUN id"),
        (dockerfile.DEPS_CONFIG_TEMPLATE, DEPS, "uid", "0\nUSER root"),
        (dockerfile.DEPS_CONFIG_TEMPLATE, DEPS, "uid", "1 $HOME"),
        (dockerfile.DEPS_CONFIG_TEMPLATE, DEPS, "uid", "1\nENTRYPOINT sh"),
        (dockerfile.DEPS_CONFIG_TEMPLATE, DEPS, "uid", '1:1", "Privileged": "true'),
    ],
)
def test_a_value_that_could_add_an_instruction_is_refused(template, values, field, value):
    with pytest.raises(ValueError, match=f"refusing to put {field}"):
        dockerfile.render(template, **{**values, field: value})


def test_missing_or_extra_values_are_refused():
    with pytest.raises(ValueError):
        dockerfile.render(dockerfile.TEMPLATE, **MODEL, uid="10001")
    with pytest.raises(ValueError):
        dockerfile.render(dockerfile.TEMPLATE, **MODEL, base_image="x")
    with pytest.raises(ValueError):
        dockerfile.render(dockerfile.DEPS_CONFIG_TEMPLATE, uid="10001", deps_image=DEPS_IMAGE)


def test_a_model_image_is_the_dependency_image_then_weights_code_runner():
    text = dockerfile.render_model(deps_image=DEPS_IMAGE)
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert instructions == [
        f"FROM {DEPS_IMAGE}", "COPY data/ /model/", "COPY code/ /model/",
        "COPY farm/ /opt/modelfarm/",
    ]  # fmt: skip
    assert "LABEL" not in text  # nothing names a model or version: equal contents, one image


def test_a_dependency_image_installs_only_its_hashed_wheels_and_runs_as_the_model_user():
    script = dockerfile.DEPS_INSTALL_SCRIPT.read_text()
    assert "--offline --no-index" in script and "--require-hashes" in script
    assert 'inputs=$(dirname "$0")' in script  # DEPS_INPUTS, spelled once
    assert not dockerfile.DEPS_INPUTS.startswith("/opt/")  # the layer is /opt: no input in it
    # What the model images inherit: they run as the unprivileged user, the runner first.
    config = dockerfile.deps_config()
    assert config["User"] == "10001:10001" and config["Entrypoint"][0] == "/opt/venv/bin/python"
    assert config["Cmd"] is None and "PYTHONDONTWRITEBYTECODE=1" in config["Env"]


def test_content_key_changes_with_each_input():
    base = {"contents_sha256": "a" * 64, "dockerfile": "FROM x", "base_image_id": "sha256:1"}
    key = dockerfile.content_key(**base)
    assert key == dockerfile.content_key(**base)
    for field, other in [
        ("contents_sha256", "b" * 64), ("dockerfile", "FROM y"), ("base_image_id", "sha256:2")
    ]:  # fmt: skip
        assert dockerfile.content_key(**{**base, field: other}) != key


def test_a_model_context_splits_code_from_data_and_holds_no_wheels(tmp_path):
    source = tmp_path / "source"
    (source / "pkg").mkdir(parents=True)
    for name in ("predict.py", "pkg/util.py", "model.onnx", "requirements.txt", "modelfarm.yaml"):
        (source / name).write_text(name)
    context = tmp_path / "context"
    dockerfile.write_model_context(source=source, context=context, dockerfile="FROM x")
    files = {str(p.relative_to(context)) for p in context.rglob("*") if p.is_file()}
    assert {"code/predict.py", "code/pkg/util.py", "data/model.onnx"} <= files
    assert not any("requirements.txt" in f or "modelfarm.yaml" in f for f in files)
    # the runner, and modelfarm's Input for predict.py: importable in the image as on a laptop
    assert {
        "farm/runner/__main__.py",
        "farm/runner/inputs.py",
        "farm/modelfarm/__init__.py",
    } <= files
    assert not any(f.endswith((".whl", ".lock")) for f in files)


def test_a_dependency_images_inputs_hold_the_installer_the_lock_and_its_wheels(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "six-1.16.0-py2.py3-none-any.whl").write_bytes(b"wheel")
    (wheels / "other-1.0-py3-none-any.whl").write_bytes(b"not in the lock")
    lock = [{"name": "six", "version": "1.16.0", "sha256": "b" * 64,
             "filename": "six-1.16.0-py2.py3-none-any.whl"}]  # fmt: skip
    archive = tmp_path / "inputs.tar"
    dockerfile.write_deps_inputs(archive=archive, lock=lock, wheels=wheels)
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == [
            "deps/install.sh", "deps/requirements.lock", "deps/uv",
            "deps/wheels/six-1.16.0-py2.py3-none-any.whl",
        ]  # fmt: skip
        lock_text = tar.extractfile("deps/requirements.lock").read().decode()
    assert lock_text == f"six==1.16.0 --hash=sha256:{'b' * 64}\n"
