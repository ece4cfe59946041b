"""Where the client writes a job's outputs: at their relative paths under the chosen folder,
never outside it, whatever names the farm lists."""

import pytest

from modelfarm.client import ApiError, _relative_parts


def test_an_output_keeps_its_relative_path():
    assert _relative_parts("a/x.txt") == ("a", "x.txt")
    assert _relative_parts("items/0/result.json") == ("items", "0", "result.json")
    assert _relative_parts("result.json") == ("result.json",)


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../x", "", "..", "a\\..\\x"])
def test_a_name_that_would_leave_the_folder_is_refused(name):
    with pytest.raises(ApiError, match="outside the output folder"):
        _relative_parts(name)
