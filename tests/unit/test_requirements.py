"""requirements.txt: plain requirement lines only; anything that redirects pip is refused. The
wheels locked for them are checked before use, and the wheels uv locked are chosen and
downloaded as locked."""

import hashlib

import httpx
import pytest

from core.errors import FarmFault
from workers.build.package import sha256_file
from workers.build.requirements import RequirementsError, parse_requirements
from workers.build.wheels import TargetPython, _best_wheel, _fetch, verify_wheels


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


def test_a_wheel_changed_since_it_was_locked_is_removed_so_the_retry_downloads_it(tmp_path):
    wheel = tmp_path / "six-1.16.0-py2.py3-none-any.whl"
    wheel.write_bytes(b"the locked bytes")
    lock = [{"name": "six", "version": "1.16.0", "filename": wheel.name,
             "sha256": sha256_file(wheel)}]  # fmt: skip
    verify_wheels(lock, {wheel.name: wheel})  # unchanged: kept
    assert wheel.exists()
    wheel.write_bytes(b"other bytes")
    with pytest.raises(FarmFault, match="changed since it was locked"):
        verify_wheels(lock, {wheel.name: wheel})
    assert not wheel.exists()


TARGET = TargetPython("3.11", "x86_64", 36)
FILES = "https://files.example/packages/ab/cd"


def _wheel(name: str, content: bytes = b"") -> dict:
    digest = hashlib.sha256(content).hexdigest()
    return {"url": f"{FILES}/{name}", "size": len(content), "hashes": {"sha256": digest}}


def test_of_a_locked_package_s_wheels_the_one_the_target_ranks_first_is_chosen():
    ranked = {tag: rank for rank, tag in enumerate(TARGET.ranked_tags())}
    generic = _wheel("protobuf-7.3-py3-none-any.whl")
    built = _wheel("protobuf-7.3-cp310-abi3-manylinux2014_x86_64.whl")
    newer_libc = _wheel("protobuf-7.3-cp311-cp311-manylinux_2_39_x86_64.whl")  # not on 2.36
    package = {"name": "protobuf", "wheels": [generic, newer_libc, built]}
    assert _best_wheel(package, ranked) is built
    with pytest.raises(FarmFault, match="without a wheel for the target"):
        _best_wheel({"name": "protobuf", "wheels": [newer_libc]}, ranked)


@pytest.mark.parametrize(
    "served, url",
    [
        (b"other bytes", f"{FILES}/six-1.16.0-py2.py3-none-any.whl"),  # not the locked sha256
        (b"the locked bytes", f"{FILES}/..%2F..%2Fsix-1.16.0-py2.py3-none-any.whl"),
        (b"the locked bytes", f"{FILES}/six-1.16.0.tar.gz"),  # not a wheel
        (b"the locked bytes", None),  # locked with no sha256
    ],
)
def test_a_download_not_as_locked_is_refused_and_nothing_kept(tmp_path, served, url):
    wheel = _wheel("six-1.16.0-py2.py3-none-any.whl", b"the locked bytes")
    if url is None:
        del wheel["hashes"]
    else:
        wheel["url"] = url
    index = httpx.MockTransport(lambda request: httpx.Response(200, content=served))
    with httpx.Client(transport=index) as client, pytest.raises(FarmFault):
        _fetch(client, wheel, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_download_as_locked_is_kept_even_when_the_index_gave_no_size(tmp_path):
    wheel = _wheel("six-1.16.0-py2.py3-none-any.whl", b"the locked bytes")
    del wheel["size"]  # optional in PEP 751; a plain index gives none
    index = httpx.MockTransport(lambda request: httpx.Response(200, content=b"the locked bytes"))
    with httpx.Client(transport=index) as client:
        _fetch(client, wheel, tmp_path)
    assert (tmp_path / "six-1.16.0-py2.py3-none-any.whl").read_bytes() == b"the locked bytes"
