"""The generated Dockerfiles: no value can add an instruction; layers are ordered for the cache;
a model's build context holds no wheels."""

import pytest

from workers.build import dockerfile

DEPS_IMAGE = "127.0.0.1:5000/modelfarm/deps@sha256:" + "a" * 64
MODEL = {"deps_image": DEPS_IMAGE}
DEPS = {"base_image": "modelfarm/base:bookworm", "uid": "10001"}


@pytest.mark.parametrize(
    "template, values, field, value",
    [
        (dockerfile.DEPS_TEMPLATE, DEPS, "base_image", "python:3.11\nRUN curl 127.0.0.1:6379 | sh"),
        (dockerfile.DEPS_TEMPLATE, DEPS, "base_image", "python:3.11 AS deps"),
        (dockerfile.DEPS_TEMPLATE, DEPS, "base_image", 'x" \\\nRUN id'),
        (dockerfile.TEMPLATE, MODEL, "deps_image", "modelfarm/deps:latest"),  # not pinned
        (dockerfile.TEMPLATE, MODEL, "deps_image", DEPS_IMAGE + "\nRUN id"),
        (dockerfile.DEPS_TEMPLATE, DEPS, "uid", "0\nUSER root"),
        (dockerfile.DEPS_TEMPLATE, DEPS, "uid", "1 $HOME"),
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
        dockerfile.render(dockerfile.DEPS_TEMPLATE, base_image=DEPS["base_image"])


def test_a_model_image_is_the_dependency_image_then_weights_code_runner():
    text = dockerfile.render_model(deps_image=DEPS_IMAGE)
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert instructions == [
        f"FROM {DEPS_IMAGE}", "COPY data/ /model/", "COPY code/ /model/",
        "COPY farm/ /opt/modelfarm/",
    ]  # fmt: skip
    assert "LABEL" not in text  # nothing names a model or version: equal contents, one image


def test_a_dependency_image_keeps_only_the_virtualenv_of_its_hashed_wheels():
    text = dockerfile.render_deps(base_image=DEPS["base_image"])
    final_stage = text[text.rindex("FROM ") :]
    assert "--no-index" in text and "--require-hashes" in text
    assert final_stage.count("COPY") == 1 and "COPY --from=install /opt/venv /opt/venv" in text
    # What the model images inherit: they run as the unprivileged user, the runner first.
    assert "USER 10001:10001" in final_stage and 'ENTRYPOINT ["/opt/venv/bin/python"' in final_stage
    assert "$" not in text.replace("$PATH", "")


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


def test_a_dependency_context_holds_the_lock_and_its_wheels(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "six-1.16.0-py2.py3-none-any.whl").write_bytes(b"wheel")
    lock = [{"name": "six", "version": "1.16.0", "sha256": "b" * 64,
             "filename": "six-1.16.0-py2.py3-none-any.whl"}]  # fmt: skip
    context = tmp_path / "context"
    dockerfile.write_deps_context(context=context, dockerfile="FROM x", lock=lock, wheels=wheels)
    assert (context / "requirements.lock").read_text() == f"six==1.16.0 --hash=sha256:{'b' * 64}\n"
    assert (context / "wheels" / lock[0]["filename"]).read_bytes() == b"wheel"
