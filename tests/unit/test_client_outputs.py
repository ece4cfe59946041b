"""Where the client writes a job's outputs: at their relative paths under the chosen folder,
never outside it, whatever names the farm lists."""

import pytest

from modelfarm.errors import ApiError
from modelfarm.transfer import relative_parts


def test_an_output_keeps_its_relative_path():
    assert relative_parts("a/x.txt") == ("a", "x.txt")
    assert relative_parts("items/0/result.json") == ("items", "0", "result.json")
    assert relative_parts("result.json") == ("result.json",)


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../x", "", "..", "a\\..\\x"])
def test_a_name_that_would_leave_the_folder_is_refused(name):
    with pytest.raises(ApiError, match="outside the output folder"):
        relative_parts(name)
