"""What images are made from: the keys change with each input; a model image's own layers are
its weights, code and runner, the same for the same files, with no wheels; the dependency
stage's inputs hold only its lock's; the smoke test's unpacking takes only those layers' files."""

import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile

import pytest

import runner.unpack
from core import context, dockerfile
from workers.build import executor, layers, recipe

PLAN = dockerfile.parse(
    dockerfile.for_base("modelfarm/base:bookworm"), base="modelfarm/base:bookworm"
)


def test_content_key_changes_with_each_input():
    base = {"contents_sha256": "a" * 64, "dockerfile": "r", "base_image_id": "sha256:1"}
    key = recipe.content_key(**base)
    assert key == recipe.content_key(**base)
    for field, other in [
        ("contents_sha256", "b" * 64), ("dockerfile", "s"), ("base_image_id", "sha256:2")
    ]:  # fmt: skip
        assert recipe.content_key(**{**base, field: other}) != key


def test_the_dependency_key_changes_with_the_stage_the_lock_and_the_base():
    lock = [{"name": "six", "version": "1.16.0", "sha256": "b" * 64, "filename": "six.whl"}]
    key = recipe.deps_key(plan=PLAN, lock=lock, base_image_id="sha256:1")
    assert key != recipe.deps_key(plan=PLAN, lock=[], base_image_id="sha256:1")
    assert key != recipe.deps_key(plan=PLAN, lock=lock, base_image_id="sha256:2")
    other = dockerfile.parse(
        dockerfile.for_base("modelfarm/base:bookworm").replace(
            "/opt/ /opt/", "/opt/venv/ /opt/venv/"
        ),
        base="modelfarm/base:bookworm",
    )
    assert key != recipe.deps_key(plan=other, lock=lock, base_image_id="sha256:1")


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


def _layers(source) -> dict[str, bytes]:
    """The layer of each COPY of a context folder in the model stage, by its source."""
    files = {**context.package_entries(source), **context.farm_entries()}
    made = {}
    for copy in PLAN.copies[1:]:
        picked, prefix = context.under(files, copy.source), copy.destination.lstrip("/")
        layer = layers.write_layer(source.parent / f"{copy.step}.tar", picked, prefix=prefix)
        tar = layer.path.read_bytes()
        assert layer.digest == layer.diff_id == f"sha256:{hashlib.sha256(tar).hexdigest()}"
        made[copy.source] = tar
    return made


def test_a_model_image_is_its_weights_then_its_code_then_the_runner_and_no_wheels(tmp_path):
    tars = _layers(_package(tmp_path))
    assert list(tars) == [context.WEIGHTS, context.CODE, context.FARM]
    weights, code, farm = (_members(tar) for tar in tars.values())
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
    first = _layers(source)[context.CODE]
    os.utime(source / "predict.py", (1, 1))
    assert _layers(source)[context.CODE] == first


def _unpack(tmp_path, tars: list[bytes]) -> subprocess.CompletedProcess:
    """runner/unpack.py's unpack() into tmp_path (in the sandbox: into /), in a process of its
    own, as in the smoke test."""
    script = "import sys, runner.unpack as u; u.unpack(sys.stdin.buffer, sys.argv[1])"
    return subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], input=b"".join(tars), capture_output=True,
        env={"PYTHONPATH": str(runner.unpack.__file__).rsplit("/runner/", 1)[0]},
    )  # fmt: skip


def test_the_smoke_test_unpacks_the_three_layers_read_only(tmp_path):
    tars = list(_layers(_package(tmp_path)).values())
    target = tmp_path / "root"
    target.mkdir()
    result = _unpack(target, tars)
    assert result.returncode == 0, result.stderr
    assert (target / "model/pkg/util.py").read_text() == "pkg/util.py"
    assert (target / "opt/modelfarm/runner/protocol.py").exists()
    assert stat.S_IMODE((target / "model/predict.py").stat().st_mode) == 0o444
    assert stat.S_IMODE((target / "model/tool.sh").stat().st_mode) == 0o555


def test_the_smoke_test_of_a_big_model_unpacks_nothing_when_nothing_is_sent(tmp_path):
    result = _unpack(tmp_path, [])  # its files are mounted instead
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


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


def test_a_dependency_stages_inputs_hold_the_installer_the_lock_and_its_wheels(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "six-1.16.0-py2.py3-none-any.whl").write_bytes(b"wheel")
    (wheels / "other-1.0-py3-none-any.whl").write_bytes(b"not in the lock")
    lock = [{"name": "six", "version": "1.16.0", "sha256": "b" * 64,
             "filename": "six-1.16.0-py2.py3-none-any.whl"}]  # fmt: skip
    entries = context.deps_entries(lock, wheels, tmp_path / context.LOCK_FILE)
    (copy,) = PLAN.deps_copies
    assert copy.source == context.DEPS
    assert sorted(context.under(entries, copy.source)) == [
        "install.sh", "requirements.lock", "uv", "wheels/six-1.16.0-py2.py3-none-any.whl",
    ]  # fmt: skip
    lock_text = entries[context.DEPS + context.LOCK_FILE].source.read_text()
    assert lock_text == f"six==1.16.0 --hash=sha256:{'b' * 64}\n"
    script = context.DEPS_INSTALL_SCRIPT.read_text()
    assert "--offline --no-index" in script and "--require-hashes" in script
    assert PLAN.deps_runs[0][1] == ["/bin/sh", copy.destination + "install.sh"]
    assert not copy.destination.startswith(PLAN.deps_export.source)  # no input in the image


def test_the_unpacking_puts_the_model_where_the_runner_and_the_image_look_for_it():
    # runner/unpack.py runs before the runner is there, so it spells the folders itself
    from runner import protocol

    assert f"/{runner.unpack.MODEL_FOLDER}" == protocol.MODEL_DIR
    config = {key: value for _, key, value in PLAN.config}
    assert config["WorkingDir"] == protocol.MODEL_DIR
    assert ("PYTHONPATH", f"/{runner.unpack.FARM_FOLDER}") in config["Env"]
    # every layer of a context folder lands where the smoke test unpacks it
    destinations = {copy.destination.strip("/") for copy in PLAN.copies[1:]}
    assert destinations == set(runner.unpack.FOLDERS)


def _named(source, **changes) -> str | None:
    """The content name of the weights layer of the package under source, its files' sha256
    as given (by default, of their bytes)."""
    digests = {
        path.relative_to(source).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in source.rglob("*")
        if path.is_file()
    }
    files = context.under(context.package_entries(source, {**digests, **changes}), context.WEIGHTS)
    return layers.content_name(files, prefix="model/")


def test_a_layer_is_named_by_each_files_path_mode_and_bytes_without_being_made(tmp_path):
    source = _package(tmp_path)
    name = _named(source)
    assert name == _named(source) and len(name) == 64
    assert _named(source, **{"model.onnx": "c" * 64}) != name  # other bytes
    (source / "model.onnx").chmod(0o755)
    assert _named(source) != name  # another mode
    (source / "model.onnx").chmod(0o644)
    (source / "model.onnx").rename(source / "other.onnx")
    assert _named(source) != name  # another path
    assert layers.content_name({"x": context.Entry(source / "tool.sh", True)}, prefix="") is None


def test_equal_named_layers_are_equal_blobs(tmp_path):
    """The name stands for the tar write_layer makes: equal names, equal bytes."""
    made = []
    for attempt in ("one", "two"):
        source = _package(tmp_path / attempt)
        os.utime(source / "model.onnx", (attempt == "one", 1))
        made.append((_named(source), _layers(source)[context.WEIGHTS]))
    assert made[0] == made[1]


def test_big_layers_reach_the_smoke_test_as_a_tree_of_links_not_as_tars(tmp_path, monkeypatch):
    source = _package(tmp_path / "work")
    files = {**context.package_entries(source), **context.farm_entries()}
    assert not executor._mounted(executor._own_size(PLAN, files))  # small: their tars
    monkeypatch.setattr(executor, "STANDBY_ROOM_MB", 0)  # as if they were big
    assert executor._mounted(executor._own_size(PLAN, files))
    executor._lay_out(tmp_path / "tree", PLAN, files, tmp_path / "work")
    big = executor.OwnFiles(tree=tmp_path / "tree")
    weights = big.tree / "model" / "model.onnx"
    assert weights.samefile(source / "model.onnx")  # a link: no byte copied
    assert stat.S_IMODE(weights.stat().st_mode) == 0o644
    assert stat.S_IMODE((big.tree / "model" / "tool.sh").stat().st_mode) == 0o755
    assert (big.tree / "model" / "pkg" / "util.py").read_text() == "pkg/util.py"
    assert (big.tree / "opt" / "modelfarm" / "runner" / "protocol.py").exists()
    assert not (big.tree / "model" / "requirements.txt").exists()
