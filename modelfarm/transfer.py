"""Bytes to the farm's object store through presigned URLs: one PUT, or, for a package over
IN_PARTS_ABOVE, parts PUT in parallel (POST /api/versions/{id}/upload), as are the contents of
its files sent by content that the farm lacks (PUT /api/versions/{id}/files). Asking for the
parts again answers only those still missing, so an interrupted upload resumes where it stopped.
Files are read a chunk at a time: gigabytes are never in memory. And back: a job's outputs from
their presigned URLs."""

import base64
import io
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from modelfarm.errors import ApiError

Progress = Callable[[int], None] | None
Call = Callable[..., httpx.Response]  # the client's API call
# A package's files sent by content: each one's declaration and its file (modelfarm/packing.py).
ByContent = Sequence[tuple[dict, Path]]
CHUNK_BYTES = 1024 * 1024
# Over this, a package goes in parts (the farm's part size is 64 MiB by default).
IN_PARTS_ABOVE = 64 * 1024**2
PARALLEL_PARTS = 4
# Files up to this size go inside the job's JSON; bigger ones are uploaded to their own URL.
INLINE_FILE_BYTES = 1024 * 1024
PART_TIMEOUT = httpx.Timeout(30, write=300, read=300)


def put(url: str, data: bytes | Path, progress: Progress) -> None:
    """PUTs bytes, or a file a chunk at a time, to a presigned URL."""
    size = len(data) if isinstance(data, bytes) else data.stat().st_size
    with httpx.Client(timeout=PART_TIMEOUT) as http:
        _put_range(http, url, data, 0, size, progress)


def upload_in_parts(call: Call, version_id: str, path: Path, progress: Progress) -> None:
    """Sends the parts of the file the store does not have yet, `call` being the client's API
    call."""
    size = path.stat().st_size
    plan = call("POST", f"/api/versions/{version_id}/upload", json={"size": size}).json()
    _send_parts([(plan, path)], size, progress)


def send_by_content(call: Call, version_id: str, files: ByContent, progress: Progress) -> None:
    """Declares the package's files sent by content (PUT /api/versions/{id}/files) and sends
    the parts of those the farm does not have yet."""
    declared = [declaration for declaration, _ in files]
    answer = call("PUT", f"/api/versions/{version_id}/files", json={"files": declared}).json()
    sources = {declaration["sha256"]: path for declaration, path in files}
    plans = {each["sha256"]: each["upload"] for each in answer["files"] if each["upload"]}
    total = sum({each["sha256"]: each["size"] for each in declared}.values())
    _send_parts([(plan, sources[sha256]) for sha256, plan in plans.items()], total, progress)


def _send_parts(plans: list[tuple[dict, Path]], size: int, progress: Progress) -> None:
    """PUTs the parts of each plan (an upload in parts the API answered) from its file, the
    size bytes of all those files counted done but for those parts."""
    if progress is not None:
        progress(size - sum(part["bytes"] for plan, _ in plans for part in plan["parts"]))
    locked = _locked(progress)

    def send(part: dict, plan: dict, path: Path) -> None:
        offset = (part["number"] - 1) * plan["part_bytes"]
        _put_part(http, part["url"], path, offset, part["bytes"], locked)

    work = [(part, plan, path) for plan, path in plans for part in plan["parts"]]
    # One client for all parts: its connections are kept (a new one costs tens of ms).
    with httpx.Client(timeout=PART_TIMEOUT) as http, ThreadPoolExecutor(PARALLEL_PARTS) as pool:
        list(pool.map(lambda each: send(*each), work))


def _retryable(error: BaseException) -> bool:
    if isinstance(error, ApiError):
        return error.status_code >= 500
    return isinstance(error, httpx.TransportError)


@retry(retry=retry_if_exception(_retryable), stop=stop_after_attempt(4),
       wait=wait_exponential(multiplier=0.5, max=8), reraise=True)  # fmt: skip
def _put_part(http: httpx.Client, url: str, path: Path, offset: int, length: int,
              progress: Progress) -> None:  # fmt: skip
    sent = []  # what this attempt told `progress`, taken back if it fails

    def told(count: int) -> None:
        sent.append(count)
        if progress is not None:
            progress(count)

    try:
        _put_range(http, url, path, offset, length, told)
    except Exception:
        if progress is not None:
            progress(-sum(sent))
        raise


def _put_range(http: httpx.Client, url: str, data: bytes | Path, offset: int, length: int,
               progress: Progress) -> None:  # fmt: skip
    def chunks() -> Iterator[bytes]:
        with io.BytesIO(data) if isinstance(data, bytes) else data.open("rb") as source:
            source.seek(offset)
            left = length
            while left and (chunk := source.read(min(CHUNK_BYTES, left))):
                left -= len(chunk)
                yield chunk
                if progress is not None:
                    progress(len(chunk))

    headers = {"Content-Length": str(length)}
    response = http.put(url, content=chunks(), headers=headers)
    if response.is_error:
        raise ApiError(response.status_code, f"the upload was refused: {response.text[:300]}")


def _locked(progress: Progress) -> Progress:
    """`progress` called by one thread at a time."""
    if progress is None:
        return None
    lock = threading.Lock()

    def tell(count: int) -> None:
        with lock:
            progress(count)

    return tell


def get(url: str) -> bytes:
    """The bytes at a presigned URL."""
    response = httpx.get(url, timeout=300)
    if response.is_error:
        raise ApiError(response.status_code, f"the download failed: {response.text[:300]}")
    return response.content


def relative_parts(name: str) -> tuple[str, ...]:
    """An output's name as path parts under a folder; ApiError for one that would leave it."""
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or {"..", "."} & set(path.parts) or "\\" in name:
        raise ApiError(502, f"The farm listed an output named {name!r}, which would be written "
                            "outside the output folder; it was not downloaded.")  # fmt: skip
    return path.parts


def job_inputs(inputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Path]]:
    """A job's inputs as its JSON sends them, and the files to upload apart by input name:
    a file (a Path) up to INLINE_FILE_BYTES goes inline, a bigger one to its own URL."""
    sent: dict[str, Any] = {}
    uploads: dict[str, Path] = {}
    for name, value in inputs.items():
        if isinstance(value, Path) and value.stat().st_size > INLINE_FILE_BYTES:
            sent[name], uploads[name] = {"upload": True, "name": value.name}, value
        elif isinstance(value, Path):
            data = base64.b64encode(value.read_bytes()).decode()
            sent[name] = {"name": value.name, "data": data}
        else:
            sent[name] = value
    return sent, uploads
