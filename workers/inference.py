"""The inference pipeline: one sandboxed run of a READY image on a job's input."""

import base64
import binascii
import io
import json
import logging
import re
import tarfile
import uuid
from dataclasses import dataclass

from core.db import session_scope
from core.models import Job, JobStatus
from core.storage import Storage, job_output_key
from runner.__main__ import OUTPUT_BEGIN, OUTPUT_END
from workers import images, progress, sandbox
from workers.celery_app import INFERENCE_QUEUE

logger = logging.getLogger(__name__)
MAX_OUTPUT_FILES = 100
SANDBOX_OWNER = sandbox.owner_for(INFERENCE_QUEUE)
RESULT_FILE = "result.json"
INLINE_RESULT_BYTES = 64 * 1024
_OUTPUT_NAME = re.compile(
    r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}){0,7}"
)


class OutputError(Exception):
    pass


@dataclass
class RunRequest:
    job_id: uuid.UUID
    image_ref: str
    config: dict | None
    input_key: str
    log_key: str


def run_job(job_id: uuid.UUID) -> None:
    """Runs a QUEUED job (or one whose earlier attempt died) to SUCCEEDED or FAILED."""
    request = _start(job_id)
    if request is None:
        return
    storage = Storage()
    try:
        _run(request, storage)
    except (images.ImageError, OutputError) as error:
        _finish(job_id, status=JobStatus.FAILED, error=str(error))
    except Exception as error:
        logger.exception("job %s failed", job_id)
        message = f"The run failed inside the farm ({type(error).__name__}: {error})"
        _finish(job_id, status=JobStatus.FAILED, error=message)


def _start(job_id: uuid.UUID) -> RunRequest | None:
    with session_scope() as session:
        job = progress.begin(
            session,
            Job,
            job_id,
            queued=JobStatus.QUEUED,
            running=JobStatus.RUNNING,
            failed=JobStatus.FAILED,
            worker="inference worker",
        )
        if job is None:
            return None
        version = job.version
        return RunRequest(job.id, version.image_ref, version.config, job.input_keys[0], job.log_key)


def _finish(job_id: uuid.UUID, *, status: JobStatus, **fields) -> None:
    progress.finish(Job, job_id, status=status, **fields)


def _run(request: RunRequest, storage: Storage) -> None:
    input_bytes = storage.get_bytes(request.input_key)
    if input_bytes is None:
        raise OutputError("The job's input is gone from storage; create a new job")
    limits = sandbox.Limits.for_model(request.config)
    client = images.docker_client(timeout=120)
    try:
        images.pull(client, request.image_ref)
        result = sandbox.run(
            client, request.image_ref, ["--input-name", "input"], limits=limits,
            owner=SANDBOX_OWNER, work=str(request.job_id), stdin=input_bytes,
        )  # fmt: skip
    finally:
        client.close()
    storage.put_bytes(request.log_key, result.stderr_tail.encode(), "text/plain; charset=utf-8")
    failure = sandbox.failure_message(result, limits)
    if failure:
        _finish(
            request.job_id, status=JobStatus.FAILED, error=f"The model {failure}",
            exit_code=result.exit_code, run_seconds=result.seconds,
        )  # fmt: skip
        return
    files = unpack_outputs(result.stdout, limits.output_mb * 1024**2)
    outputs = []
    for index, (name, data) in enumerate(sorted(files.items())):
        key = job_output_key(request.job_id, index)
        storage.put_bytes(key, data)
        outputs.append({"name": name, "key": key, "size": len(data)})
    _finish(
        request.job_id, status=JobStatus.SUCCEEDED, outputs=outputs, exit_code=0,
        run_seconds=result.seconds, result=_inline_result(files.get(RESULT_FILE)),
    )  # fmt: skip


def _inline_result(data: bytes | None):
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
            f"The model's outputs did not arrive complete (over {max_bytes // 1024**2} MB?)"
        )
    try:
        archive_bytes = base64.b64decode(text[begin + len(OUTPUT_BEGIN) + 1 : end])
        with tarfile.open(fileobj=io.BytesIO(archive_bytes), mode="r:") as archive:
            return _read_members(archive, max_bytes)
    except (binascii.Error, tarfile.TarError, ValueError):
        raise OutputError("The model's outputs could not be read") from None


def _read_members(archive: tarfile.TarFile, max_bytes: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for member in archive.getmembers():
        if member.isdir():
            continue
        name = member.name.removeprefix("./")
        if not member.isfile() or not _OUTPUT_NAME.fullmatch(name):
            raise OutputError(f"Output {name!r} is not a plain file with a simple name")
        total += member.size
        if len(files) >= MAX_OUTPUT_FILES or total > max_bytes:
            raise OutputError(
                f"The model wrote more than {MAX_OUTPUT_FILES} files or {max_bytes} bytes"
            )
        files[name] = archive.extractfile(member).read()
    return files
