"""The outputs a model sends back are untrusted: crafted archives are refused cleanly."""

import base64
import io
import tarfile

import pytest

from runner.protocol import OUTPUT_BEGIN, OUTPUT_END
from workers.run.outputs import MAX_OUTPUT_FILES, OutputError, unpack_outputs

LIMIT = 1024**2


def _stdout(members: list[tuple[tarfile.TarInfo, bytes]], noise: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for info, data in members:
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    encoded = base64.encodebytes(buffer.getvalue())
    return noise + f"{OUTPUT_BEGIN}\n".encode() + encoded + f"{OUTPUT_END}\n".encode()


def _file(name: str, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


def test_plain_files_come_back_with_their_bytes():
    out = _stdout([(_file("./result.json"), b"{}"), (_file("./sub/a.csv"), b"1,2\n")], b"junk")
    assert unpack_outputs(out, LIMIT) == {"result.json": b"{}", "sub/a.csv": b"1,2\n"}


@pytest.mark.parametrize(
    "member",
    [
        _file("../escape.txt"),
        _file("/etc/passwd"),
        _file("a\nb.txt"),
        _file("sub/../../x"),
        _file("link", tarfile.SYMTYPE),
        _file("hard", tarfile.LNKTYPE),
        _file("dev", tarfile.CHRTYPE),
        _file("fifo", tarfile.FIFOTYPE),
    ],
    ids=lambda member: f"{member.name!r}-{member.type!r}",
)
def test_unsafe_members_are_refused(member):
    with pytest.raises(OutputError, match="not a plain file with a simple name"):
        unpack_outputs(_stdout([(member, b"")]), LIMIT)


def test_too_many_files_or_bytes_are_refused():
    many = [(_file(f"f{i}"), b"x") for i in range(MAX_OUTPUT_FILES + 1)]
    with pytest.raises(OutputError, match="more than"):
        unpack_outputs(_stdout(many), LIMIT)
    with pytest.raises(OutputError, match="more than"):
        unpack_outputs(_stdout([(_file("big"), b"x" * (LIMIT + 1))]), LIMIT)


@pytest.mark.parametrize(
    "stdout",
    [b"", f"{OUTPUT_BEGIN}\nAAAA".encode(), f"{OUTPUT_BEGIN}\n!!!!\n{OUTPUT_END}\n".encode()],
    ids=["nothing", "cut-short", "not-base64"],
)
def test_missing_or_broken_output_streams_are_refused(stdout):
    with pytest.raises(OutputError):
        unpack_outputs(stdout, LIMIT)


@pytest.mark.parametrize("name", ["run.log", "./run.log", "items/0/result.json", "items/x"])
def test_outputs_may_not_take_the_names_of_the_farm_s_own_files(name):
    with pytest.raises(OutputError, match="keeps for its own files"):
        unpack_outputs(_stdout([(_file(name), b"forged")]), LIMIT)
    assert unpack_outputs(_stdout([(_file("logs/run.log"), b"ok")]), LIMIT)  # elsewhere: fine
