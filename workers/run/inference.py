"""The inference pipeline: one sandboxed run of a READY image on a job's input.

Each step that touches a dependency is retried on the farm's faults (workers/retry.py), so a
model's finished work is kept while object storage or the database is briefly down.
"""

import logging
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.db import session_scope
from core.errors import UserFacingError, gave_up_message
from core.lifecycle import JobStatus, begin, finish
from core.models import Job
from core.queue import INFERENCE_QUEUE
from core.settings import settings
from core.storage import NotAsSealed, Storage, job_output_key
from runner.protocol import INPUT_NAME_FLAG
from workers import images
from workers.retry import with_retries
from workers.run import pool, sandbox
from workers.run.outputs import inline_result
from workers.workdirs import work_dir

logger = logging.getLogger(__name__)
SANDBOX_OWNER = sandbox.owner_for(INFERENCE_QUEUE)


class InputMissing(UserFacingError):
    pass


@dataclass
class RunRequest:
    job_id: uuid.UUID
    owner_id: uuid.UUID
    image_ref: str
    config: dict | None
    inputs: dict[str, dict]
    log_key: str


def run_job(job_id: uuid.UUID) -> None:
    """Runs a QUEUED job (or one whose earlier attempt died) to SUCCEEDED or FAILED."""
    request = with_retries(_start, job_id)
    if request is None:
        return
    try:
        outcome = _run(request, Storage())
    except UserFacingError as error:
        outcome = {"status": JobStatus.FAILED, "error": str(error)}
    except Exception as error:
        logger.exception("job %s failed inside the farm", job_id)
        outcome = {"status": JobStatus.FAILED, "error": gave_up_message("job", error)}
    with_retries(finish, Job, job_id, **outcome)


def _start(job_id: uuid.UUID) -> RunRequest | None:
    with session_scope() as session:
        job = begin(session, Job, job_id)
        if job is None:
            return None
        version = job.version
        return RunRequest(
            job.id, job.owner_id, version.image_ref, version.config, job.inputs, job.log_key
        )


def _run(request: RunRequest, storage: Storage) -> dict:
    """The job's outcome as the fields of its final row."""
    ((input_name, sealed),) = request.inputs.items()  # one input per job for now
    limits = sandbox.Limits.for_model(request.config)
    with tempfile.TemporaryDirectory(dir=work_dir(INFERENCE_QUEUE)) as scratch:
        input_path = Path(scratch) / "input"
        with_retries(_download_input, storage, sealed, input_path)
        result = with_retries(_sandboxed, request, input_name, input_path, limits)
    log = result.stderr_tail.encode()
    with_retries(storage.put_bytes, request.log_key, log, "text/plain; charset=utf-8")
    ran = {"exit_code": result.exit_code, "run_seconds": result.seconds}
    failure = sandbox.failure_message(result, limits)
    if failure:
        return {"status": JobStatus.FAILED, "error": failure, **ran}
    files = result.output_files(limits.output_mb * 1024**2)
    outputs = with_retries(_store_outputs, storage, request.job_id, files)
    result_json = inline_result(files)
    return {"status": JobStatus.SUCCEEDED, "outputs": outputs, "result": result_json, **ran}


def _download_input(storage: Storage, sealed: dict, path: Path) -> None:
    """The sealed input, streamed to disk, never more than the size accepted."""
    try:
        found = storage.download(sealed["key"], path, size=sealed["size"])
    except NotAsSealed as error:
        raise InputMissing(
            f"The stored input is not the one accepted for this job ({error}); create a new job."
        ) from None
    if not found:
        raise InputMissing("The job's input is gone from storage; create a new job.")


def _sandboxed(
    request: RunRequest, input_name: str, data: Path, limits: sandbox.Limits
) -> sandbox.RunResult:
    """The run on a warm container of this user's, or on a fresh one-shot container."""
    if settings.warm_enabled:
        warm = pool.shared(SANDBOX_OWNER).run(
            request.image_ref, str(request.owner_id), limits, input_name, data
        )
        if warm is not None:
            return warm
    client = images.docker_client(timeout=120)
    try:
        images.pull(client, request.image_ref)
        return sandbox.run(
            client, request.image_ref, [INPUT_NAME_FLAG, input_name], limits=limits,
            owner=SANDBOX_OWNER, work=str(request.job_id), stdin=data,
        )  # fmt: skip
    finally:
        client.close()


def _store_outputs(storage: Storage, job_id: uuid.UUID, files: dict[str, bytes]) -> list[dict]:
    outputs = []
    for index, (name, data) in enumerate(sorted(files.items())):
        key = job_output_key(job_id, index)
        storage.put_bytes(key, data)
        outputs.append({"name": name, "key": key, "size": len(data)})
    return outputs
