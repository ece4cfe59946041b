"""`modelfarm predict -i name=value` read by a version's input schema, the stored login, and
the folder `modelfarm eject` unpacks into."""

import stat
from pathlib import Path

import pytest

from core.inputs import json_schema
from modelfarm import arguments, config
from modelfarm.client import Client
from modelfarm.eject import download_into

SCHEMA = json_schema({"inputs": [
    {"name": "image", "type": "file"}, {"name": "k", "type": "int", "default": 1},
    {"name": "t", "type": "float", "default": 0.5},
    {"name": "on", "type": "bool", "default": False},
    {"name": "mode", "type": "str", "choices": ["a", "b"], "default": "a"},
]})  # fmt: skip


def test_each_kind_of_input_is_read_from_its_text(tmp_path):
    picture = tmp_path / "a.png"
    picture.write_bytes(b"png")
    given = [f"image=@{picture}", "k=3", "t=1", "on=yes", "mode=b=c"]
    assert arguments.parse(SCHEMA, given) == {
        "image": picture, "k": 3, "t": 1.0, "on": True, "mode": "b=c"
    }  # fmt: skip


@pytest.mark.parametrize(
    "argument, words",
    [
        ("k", "-i k: give name=value"),
        ("size=3", "-i size: this model's inputs are image, k, t, on, mode"),
        ("k=three", "-i k: 'three' is not a integer"),
        ("t=x", "-i t: 'x' is not a number"),
        ("on=maybe", "-i on: give true or false, not 'maybe'"),
        ("image=a.png", "-i image: a file input: give image=@PATH"),
        ("image=@/no/such/file", "-i image: a file input: give image=@PATH"),
    ],
)
def test_arguments_that_cannot_be_read_say_how_to_write_them(argument, words):
    with pytest.raises(arguments.ArgumentError) as raised:
        arguments.parse(SCHEMA, [argument])
    assert str(raised.value).startswith(words)


def test_a_version_built_before_typed_inputs_takes_one_file_named_input(tmp_path):
    (tmp_path / "x").write_text("x")
    assert arguments.parse(None, [f"input=@{tmp_path / 'x'}"]) == {"input": tmp_path / "x"}


def test_the_login_is_stored_for_the_user_alone_and_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("MODELFARM_API", raising=False)
    monkeypatch.delenv("MODELFARM_TOKEN", raising=False)
    assert config.load() == config.Login(config.DEFAULT_API, None)
    path = config.save(config.Login("http://127.0.0.1:9", "mf_secret"))
    assert path == tmp_path / "modelfarm" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.load() == config.Login("http://127.0.0.1:9", "mf_secret")
    monkeypatch.setenv("MODELFARM_TOKEN", "mf_other")
    monkeypatch.setenv("MODELFARM_API", "http://127.0.0.1:10")
    assert config.load() == config.Login("http://127.0.0.1:10", "mf_other")
    assert not Path(str(path) + ".tmp").exists() and not path.with_suffix(".tmp").exists()


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_eject_refuses_a_place_taken_before_downloading_anything(tmp_path, capsys, kind):
    taken = tmp_path / "taken"
    if kind == "file":
        taken.write_text("x")
    else:
        taken.mkdir()
        (taken / "Dockerfile").write_text("FROM scratch\n")
    with Client("http://127.0.0.1:9") as nowhere, pytest.raises(SystemExit) as ended:
        download_into(nowhere, "00000000-0000-0000-0000-000000000000", taken)
    assert ended.value.code == 1
    assert f"error: {taken} is not an empty folder" in capsys.readouterr().err
