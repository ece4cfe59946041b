"""requirements.txt: plain requirement lines only; anything that redirects pip is refused."""

import pytest

from workers.build.requirements import RequirementsError, parse_requirements


def test_plain_lines_with_extras_specifiers_markers_and_comments_are_kept():
    text = (
        "# a comment\n\nnumpy>=1.26,<3  # inline\nrequests[socks]==2.32.3\n"
        'tomli; python_version < "3.11"\n'
    )
    assert parse_requirements(text) == [
        "numpy<3,>=1.26",
        "requests[socks]==2.32.3",
        'tomli; python_version < "3.11"',
    ]


@pytest.mark.parametrize(
    "line",
    [
        "-i https://evil.test/simple",
        "--index-url https://evil.test/simple",
        "--extra-index-url https://evil.test/simple",
        "-f /tmp",
        "--find-links https://evil.test/",
        "-e .",
        "-r other.txt",
        "-c constraints.txt",
        "--trusted-host evil.test",
        "numpy --hash=sha256:00",
        "https://evil.test/pkg.whl",
        "evil @ https://evil.test/pkg.whl",
        "evil @ file:///etc/passwd",
        "./local-dir",
        "/abs/path.whl",
        "numpy \\",
    ],
)
def test_lines_that_change_where_or_how_pip_installs_are_refused_with_line_number(line):
    with pytest.raises(RequirementsError, match=r"requirements.txt line 2 "):
        parse_requirements(f"numpy\n{line}\n")
