"""Every ZIP validation rule, through the live build worker: the version ends FAILED and its
error says what was wrong; nothing is extracted outside the build's own directory."""

import pytest

from core.lifecycle import VersionStatus
from tests.crafted import BROKEN_PACKAGES


@pytest.mark.parametrize("name", sorted(BROKEN_PACKAGES))
def test_broken_package_fails_with_a_message(new_user, name):
    package, words = BROKEN_PACKAGES[name]
    version = new_user().build(package)
    assert version["status"] == VersionStatus.FAILED
    assert words in version["error"], version["error"]
    assert version["image_ref"] is None
