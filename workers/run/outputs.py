"""Reading a model's outputs from the runner's stdout: an untrusted tar, checked entry by entry."""

import base64
import binascii
import io
import json
import re
import tarfile

from core.errors import UserFacingError
from core.storage import BATCH_ITEMS_FOLDER, JOB_LOG_NAME
from runner.protocol import OUTPUT_BEGIN, OUTPUT_END

MAX_OUTPUT_FILES = 100
RESULT_FILE = "result.json"
INLINE_RESULT_BYTES = 64 * 1024
_OUTPUT_NAME = re.compile(
    r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}){0,7}"
)


class OutputError(UserFacingError):
    pass


def inline_result(files: dict[str, bytes]):
    """result.json as the job's inline result, when it is small valid JSON."""
    data = files.get(RESULT_FILE)
    if data is None or len(data) > INLINE_RESULT_BYTES:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def unpack_outputs(stdout: bytes, max_bytes: int) -> dict[str, bytes]:
    """The output files from the runner's stdout: an untrusted tar, checked entry by entry."""
    text = stdout.decode("ascii", "replace")
    begin, end = text.rfind(OUTPUT_BEGIN + "\n"), text.rfind(OUTPUT_END)
    if begin < 0 or end < begin:
        raise OutputError(
            "The model's outputs did not arrive complete; they may be over the limit of "
            f"{max_bytes // 1024**2} MB."
        )
    try:
        archive_bytes = base64.b64decode(text[begin + len(OUTPUT_BEGIN) + 1 : end])
    except (binascii.Error, ValueError):
        raise OutputError("The model's outputs could not be read as an archive.") from None
    return read_archive(archive_bytes, max_bytes)


def read_archive(archive_bytes: bytes, max_bytes: int) -> dict[str, bytes]:
    """The output files from a tar of /output, checked entry by entry."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive_bytes), mode="r:") as archive:
            return _read_members(archive, max_bytes)
    except (tarfile.TarError, ValueError):
        raise OutputError("The model's outputs could not be read as an archive.") from None


def _read_members(archive: tarfile.TarFile, max_bytes: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for member in archive.getmembers():
        if member.isdir():
            continue
        name = member.name.removeprefix("./")
        if not member.isfile() or not _OUTPUT_NAME.fullmatch(name):
            raise OutputError(
                f"The model's output {name!r} is not a plain file with a simple name."
            )
        if name == JOB_LOG_NAME or name.startswith(f"{BATCH_ITEMS_FOLDER}/"):
            raise OutputError(
                f"The model's output {name!r} takes a name the farm keeps for its own files "
                f"({JOB_LOG_NAME}, {BATCH_ITEMS_FOLDER}/…): write it under another name."
            )
        total += member.size
        if len(files) >= MAX_OUTPUT_FILES or total > max_bytes:
            raise OutputError(
                f"The model wrote more than {MAX_OUTPUT_FILES} files or {max_bytes} bytes of "
                "outputs."
            )
        files[name] = archive.extractfile(member).read()
    return files
