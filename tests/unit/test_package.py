"""Every ZIP validation rule, on the package module itself: no stack, no extraction outside the
destination. (tests/integration/test_package_rules.py sends the same ZIPs through the worker.)"""

import pytest

from tests.crafted import BROKEN_PACKAGES, PREDICT
from tests.utils import make_zip
from workers.build.package import PackageError, open_package


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
