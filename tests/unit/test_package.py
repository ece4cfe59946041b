"""Every ZIP validation rule, on the package module itself: no stack, no extraction outside the
destination. (tests/integration/test_package_rules.py sends the same ZIPs through the worker.)"""

import zipfile

import pytest

from core.settings import settings
from tests.crafted import BROKEN_PACKAGES, PREDICT
from tests.utils import make_zip
from workers.build.package import PackageError, open_package
from workers.run.sandbox import Limits


@pytest.mark.parametrize("name", sorted(BROKEN_PACKAGES))
def test_broken_package_is_refused_with_what_to_fix(tmp_path, name):
    package, words = BROKEN_PACKAGES[name]
    zip_path = tmp_path / "package.zip"
    zip_path.write_bytes(package)
    (tmp_path / "out").mkdir()
    with pytest.raises(PackageError) as refused:
        open_package(zip_path, tmp_path / "out")
    assert words in str(refused.value)
    outside = {path.name for path in tmp_path.iterdir()}
    assert outside == {"package.zip", "out"}


def test_a_good_package_is_extracted_with_its_contract_files(tmp_path):
    zip_path = tmp_path / "package.zip"
    files = {
        "predict.py": PREDICT,
        "requirements.txt": "numpy>=1.26  # arrays\n",
        "modelfarm.yaml": "memory_mb: 64\n",
        "weights/w.bin": b"\x00\x01",
    }
    zip_path.write_bytes(make_zip(files))
    (tmp_path / "out").mkdir()
    package = open_package(zip_path, tmp_path / "out")
    assert package.requirements == ["numpy>=1.26"]
    assert package.config.memory_mb == 64
    assert (tmp_path / "out" / "weights" / "w.bin").read_bytes() == b"\x00\x01"


def _zip(tmp_path, name: str, entries: list[tuple[str, bytes, int]], **options) -> str:
    """The contents digest of a ZIP of (name, bytes, mode) entries written in that order."""
    path = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(path, "w", **options) as archive:
        for number, (entry_name, data, mode) in enumerate(entries):
            info = zipfile.ZipInfo(entry_name, date_time=(2001 + number, 2, 3, 4, 5, 6))
            info.external_attr = mode << 16
            info.compress_type = options.get("compression", zipfile.ZIP_STORED)
            archive.writestr(info, data)
    (tmp_path / name).mkdir()
    return open_package(path, tmp_path / name).contents_sha256


def test_the_contents_digest_ignores_the_zip_and_follows_the_files(tmp_path):
    files = [("predict.py", PREDICT.encode(), 0o644), ("w/a.bin", b"\1" * 100, 0o644)]
    digest = _zip(tmp_path, "first", files)
    # Zipped again: other timestamps (per entry), the other order, compressed.
    again = _zip(tmp_path, "again", files[::-1], compression=zipfile.ZIP_DEFLATED)
    assert again == digest
    changed = {
        "bytes": [files[0], ("w/a.bin", b"\2" * 100, 0o644)],
        "name": [files[0], ("w/b.bin", b"\1" * 100, 0o644)],
        "exec": [files[0], ("w/a.bin", b"\1" * 100, 0o755)],
        "more": [*files, ("extra.txt", b"", 0o644)],
    }
    for name, entries in changed.items():
        assert _zip(tmp_path, name, entries) != digest, name


def _config(tmp_path, yaml_text: str):
    zip_path = tmp_path / "package.zip"
    zip_path.write_bytes(make_zip({"predict.py": PREDICT, "modelfarm.yaml": yaml_text}))
    (tmp_path / "out").mkdir()
    return open_package(zip_path, tmp_path / "out").config


def test_a_model_may_ask_for_gvisor_and_runs_under_the_strongest_runtime(tmp_path):
    config = _config(tmp_path, "runtime: runsc\n")
    assert Limits.for_model(config.model_dump()).runtime == "runsc"
    assert Limits.for_model({}).runtime == settings.sandbox_runtime == "runc"


def test_a_model_may_not_ask_for_a_weaker_runtime_than_the_farms(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "sandbox_runtime", "runsc")
    with pytest.raises(PackageError, match="may not ask for the weaker runc"):
        _config(tmp_path, "runtime: runc\n")
    assert Limits.for_model({}).runtime == "runsc"
    assert Limits.for_model({"runtime": "runc"}).runtime == "runsc"  # a row from before


def test_an_unknown_runtime_is_refused(tmp_path):
    with pytest.raises(PackageError, match="runtime"):
        _config(tmp_path, "runtime: kata\n")
