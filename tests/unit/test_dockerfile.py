"""The generated Dockerfile: no value can add an instruction; layers are ordered for the cache."""

import pytest

from workers.build import dockerfile

GOOD = {"base_image": "modelfarm/base:bookworm", "uid": "10001"}


@pytest.mark.parametrize(
    "field, value",
    [
        ("base_image", "python:3.11-slim\nRUN curl http://127.0.0.1:6379/ | sh"),
        ("base_image", "python:3.11 AS deps"),
        ("base_image", 'x" \\\nRUN id'),
        ("uid", "0\nUSER root"),
        ("uid", "1 $HOME"),
    ],
)
def test_a_value_that_could_add_an_instruction_is_refused(field, value):
    with pytest.raises(ValueError, match=f"refusing to put {field}"):
        dockerfile.render(**{**GOOD, field: value})


def test_missing_or_extra_values_are_refused():
    with pytest.raises(ValueError):
        dockerfile.render(**{k: v for k, v in GOOD.items() if k != "uid"})
    with pytest.raises(ValueError):
        dockerfile.render(**GOOD, extra="x")


def test_layers_go_from_dependencies_to_weights_to_code_to_runner():
    text = dockerfile.render(**GOOD)
    final_stage = text[text.rindex("FROM ") :]
    order = ["COPY --from=deps", "COPY data/", "COPY code/", "COPY runner/", "USER 10001:10001"]
    positions = [final_stage.index(step) for step in order]
    assert positions == sorted(positions)
    assert "ENTRYPOINT" in final_stage and "--no-index" in text and "--require-hashes" in text
    assert "$" not in text.replace("$PATH", "")  # every placeholder was filled


def test_content_key_changes_with_each_input():
    base = {"contents_sha256": "a" * 64, "dockerfile": "FROM x", "base_image_id": "sha256:1"}
    key = dockerfile.content_key(**base)
    assert key == dockerfile.content_key(**base)
    for field, other in [
        ("contents_sha256", "b" * 64), ("dockerfile", "FROM y"), ("base_image_id", "sha256:2")
    ]:  # fmt: skip
        assert dockerfile.content_key(**{**base, field: other}) != key


def test_context_splits_code_from_data_and_leaves_out_contract_files(tmp_path):
    source = tmp_path / "source"
    (source / "pkg").mkdir(parents=True)
    for name in ("predict.py", "pkg/util.py", "model.onnx", "requirements.txt", "modelfarm.yaml"):
        (source / name).write_text(name)
    context = tmp_path / "context"
    dockerfile.write_context(
        source=source, context=context, dockerfile="FROM x", lock=[], wheels=tmp_path
    )
    files = {str(p.relative_to(context)) for p in context.rglob("*") if p.is_file()}
    assert {"code/predict.py", "code/pkg/util.py", "data/model.onnx"} <= files
    assert not any("requirements.txt" in f or "modelfarm.yaml" in f for f in files)
    assert "runner/__main__.py" in files and "deps/requirements.lock" in files


def test_the_dockerfile_names_no_model_and_no_version():
    text = dockerfile.render_for(base_image=GOOD["base_image"])
    assert "LABEL" not in text  # equal contents, equal image, whoever's model it is
