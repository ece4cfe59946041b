"""A package's files sent by content (core/contents.py): the rules on their paths, how they sit
beside the ZIP's files in a package, and how the client packs them apart."""

import hashlib
import uuid
import zipfile
from concurrent.futures import Future
from pathlib import Path

import pytest

from core.contents import content_key, owner_and_sha256, path_problem
from modelfarm.packing import pack
from tests.crafted import PREDICT
from tests.utils import make_zip
from workers.build import contents
from workers.build.package import PackageError, open_package

DATA = b"weights" * 1000
SHA = hashlib.sha256(DATA).hexdigest()


def _declared(path: str, **fields) -> dict:
    return {"path": path, "size": len(DATA), "sha256": SHA, "executable": False, **fields}


def _open(tmp_path: Path, zip_files: dict, *declared: dict):
    (tmp_path / "out").mkdir(parents=True)
    (tmp_path / "package.zip").write_bytes(make_zip(zip_files))
    fetched = []

    def fetch(each: dict, target: Path) -> None:
        fetched.append(each["path"])
        target.write_bytes(DATA)

    package = open_package(
        tmp_path / "package.zip", tmp_path / "out", content_files=declared, fetch=fetch
    )
    return package, fetched


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "control character"),
        ("a\\b", "backslash"),
        ("a\nb", "control character"),
        ("/abs", "absolute"),
        ("C:x", "absolute"),
        ("a/../b", "'..'"),
        ("a//b", "empty"),
        ("./a", "'.'"),
    ],
)
def test_a_path_that_could_leave_the_package_has_a_problem(path, problem):
    assert problem in path_problem(path)


def test_a_plain_path_has_none_and_a_content_key_names_its_owner_and_bytes():
    assert path_problem("weights/model.onnx") is None
    owner = uuid.uuid4()
    assert owner_and_sha256(content_key(owner, SHA)) == (owner, SHA)
    assert owner_and_sha256("packages/x.zip") is None
    with pytest.raises(ValueError):
        content_key(owner, "../../packages/x")


def test_files_sent_by_content_sit_beside_the_zips_and_count_in_its_digest(tmp_path):
    package, fetched = _open(tmp_path / "a", {"predict.py": PREDICT}, _declared("w/big.bin"))
    assert fetched == ["w/big.bin"]
    assert (package.root / "w" / "big.bin").read_bytes() == DATA
    assert package.file_sha256["w/big.bin"] == SHA
    zipped = make_zip({"predict.py": PREDICT, "w/big.bin": DATA})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "package.zip").write_bytes(zipped)
    (tmp_path / "b" / "out").mkdir()
    same = open_package(tmp_path / "b" / "package.zip", tmp_path / "b" / "out")
    assert same.contents_sha256 == package.contents_sha256  # the same files, however sent


@pytest.mark.parametrize(
    ("zip_files", "declared", "words"),
    [
        ({"predict.py": PREDICT}, [_declared("predict.py")], "both in the ZIP and sent by content"),
        ({"predict.py": PREDICT, "w": "x"}, [_declared("w/a.bin")], "inside a file"),
        ({"predict.py": PREDICT, "w/a": "x"}, [_declared("w")], "both a file and a folder"),
        ({"predict.py": PREDICT}, [_declared("a.bin"), _declared("a.bin/b")], "inside a file"),
        ({"predict.py": PREDICT}, [_declared("../a.bin")], "'..' path component"),
        ({"predict.py": PREDICT}, [_declared("a.bin", size=10**13)], "the limit for one file"),
        ({"w.bin": "x"}, [_declared("w2.bin")], "no predict.py"),
    ],
)
def test_a_file_sent_by_content_that_clashes_or_breaks_a_rule_is_refused(
    tmp_path, zip_files, declared, words
):
    with pytest.raises(PackageError) as refused:
        _open(tmp_path, zip_files, *declared)
    assert words in str(refused.value)
    assert not any((tmp_path / "out").rglob("*.bin"))  # refused before any was fetched


def test_packing_sends_the_big_files_apart_with_their_sha256(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "predict.py").write_text(PREDICT)
    (folder / "big.bin").write_bytes(DATA)
    (folder / "tool").write_bytes(DATA)
    (folder / "tool").chmod(0o755)
    packed = pack(folder, tmp_path / "package.zip", by_content_above=len(DATA) - 1)
    assert packed.names == ["predict.py"]
    assert [declared for declared, _ in packed.by_content] == [
        _declared("big.bin"),
        _declared("tool", executable=True),
    ]
    assert zipfile.ZipFile(tmp_path / "package.zip").namelist() == ["predict.py"]
    everything = pack(folder, tmp_path / "whole.zip")
    assert everything.by_content == [] and "big.bin" in everything.names


class _Store:
    """The object store's download, as core.storage.Storage streams it (a fake: the real one
    is exercised in tests/integration/test_content_files.py)."""

    downloads = 0

    def stream(self, key: str, write, *, size: int) -> bool:
        self.downloads += 1
        write(DATA)
        return True


def test_a_downloaded_content_is_named_by_its_sha256_once_flushed_even_if_the_build_fails(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(contents, "HOST_CONTENTS", tmp_path / "contents")
    owner, store = uuid.uuid4(), _Store()
    with pytest.raises(RuntimeError), contents.fetcher(store, owner, log=lambda _: None) as fetch:
        fetch(_declared("weights.bin"), tmp_path / "weights.bin")
        assert (tmp_path / "weights.bin").read_bytes() == DATA  # linked at once
        fetch(_declared("copy.bin"), tmp_path / "copy.bin")  # the same bytes: not downloaded
        assert store.downloads == 1
        assert (tmp_path / "copy.bin").samefile(tmp_path / "weights.bin")
        raise RuntimeError("the build fails after the download")
    kept = tmp_path / "contents" / str(owner) / SHA
    assert [path.name for path in kept.parent.iterdir()] == [SHA]  # no partial left
    assert kept.samefile(tmp_path / "weights.bin") and kept.read_bytes() == DATA
    logged: list[str] = []
    with contents.fetcher(_Store(), owner, log=logged.append) as fetch:
        fetch(_declared("weights.bin"), tmp_path / "again.bin")
    assert "kept on this host by its content, not downloaded" in logged[0]


class _AtOnce:
    """An executor that runs what it is given at once: the naming of a downloaded content done
    before fetch goes on, as a flush with nothing left to write makes it."""

    def __init__(self, workers: int) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *error) -> None:
        pass

    def submit(self, function, *args) -> Future:
        done: Future = Future()
        done.set_result(function(*args))
        return done


def test_a_content_named_at_once_is_placed_from_its_download_and_again_from_its_name(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(contents, "HOST_CONTENTS", tmp_path / "contents")
    monkeypatch.setattr(contents, "ThreadPoolExecutor", _AtOnce)
    owner, store = uuid.uuid4(), _Store()
    with contents.fetcher(store, owner, log=lambda _: None) as fetch:
        fetch(_declared("weights.bin"), tmp_path / "weights.bin")
        fetch(_declared("copy.bin"), tmp_path / "copy.bin")
    kept = tmp_path / "contents" / str(owner) / SHA
    assert kept.samefile(tmp_path / "weights.bin") and kept.samefile(tmp_path / "copy.bin")
    assert store.downloads == 1
