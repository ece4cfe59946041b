"""The inference pipeline: a job's sandboxed run(s) on a READY image, to its final row.

A single job is one prediction on its input; a batch job is one per item (workers/run/batch.py).
Each step that touches a dependency is retried on the farm's faults (workers/retry.py), so a
model's finished work is kept while object storage or the database is briefly down.
"""

import functools
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select

from core import events, logs, metrics, streams, webhooks
from core.db import session_scope
from core.errors import UserFacingError, gave_up_message
from core.inputs import is_file, stored_bytes
from core.lifecycle import JobStatus, VersionStatus, begin, finish
from core.models import InlineInput, Job, JobItem, ModelVersion
from core.queue import INFERENCE_QUEUE
from core.settings import settings
from core.storage import Storage
from workers.retry import with_retries
from workers.run import batch, cancels, failures, pool, sandbox
from workers.run.live import Live
from workers.run.outputs import inline_result
from workers.run.predict import SANDBOX_OWNER, Sandboxed, predict
from workers.run.request import RunnerRequest
from workers.run.transfer import download_input, store_outputs
from workers.workdirs import work_dir

logger = structlog.get_logger(__name__)


@dataclass
class RunRequest:
    where: Sandboxed
    inputs: dict[str, Any]  # by name: a value, or a file (core/inputs.py)
    batch: list[dict] | None
    items_done: set[int]  # a batch's items recorded by an earlier attempt
    log_key: str
    inline: bytes | None  # the input(s) sent inline
    input_bytes: int
    webhook_events: list[str]
    started: dict  # the RUNNING row's fields (core/streams.py)


def run_job(job_id: uuid.UUID) -> None:
    """Runs a QUEUED job (or one whose earlier attempt died) to its end, unless it was
    canceled meanwhile."""
    request, ended = with_retries(_start, job_id), None
    if request is not None:
        logs.bind(owner_id=request.where.owner_id)
        logger.info("job started", image=request.where.image_ref)
        streams.status("job", request.started)
        webhooks.notify("job", job_id, request.webhook_events, "start")
        with cancels.watching(job_id) as watch:
            outcome = _outcome(request, watch)
        outputs = sum(entry["size"] for entry in outcome.get("outputs") or [])
        outcome["stored_bytes"] = request.input_bytes + outputs
        ended = with_retries(finish, Job, job_id, attempt=request.where.attempt, **outcome)
        if outcome.get("run_seconds") is not None:
            metrics.JOB_RUN_SECONDS.labels(outcome["status"]).observe(outcome["run_seconds"])
        logger.info("job ended", status=str(outcome["status"]), error=outcome.get("error"),
                    finished=ended is not None)  # fmt: skip
        if ended is not None:
            streams.status("job", ended)
            webhooks.notify("job", job_id, webhooks.wanted(ended), "completed")
    events.job_ended(job_id, ended)  # also when _start failed it for too many attempts


def _outcome(request: RunRequest, watch: cancels.Watch) -> dict:
    storage = Storage()
    try:
        if request.batch is not None:
            return batch.run(request.where, request.batch, request.items_done, request.inline,
                             storage, watch)  # fmt: skip
        return _run(request, storage, watch)
    except UserFacingError as error:
        return {"status": JobStatus.FAILED, "error": str(error)}
    except Exception as error:
        if watch.canceled:  # what broke was the sandbox the cancel stopped: nothing to record
            return {"status": JobStatus.CANCELED}
        logger.exception("job %s failed inside the farm", request.where.job_id)
        return {"status": JobStatus.FAILED, "error": gave_up_message("job", error)}


def _start(job_id: uuid.UUID) -> RunRequest | None:
    with session_scope() as session:
        job = begin(session, Job, job_id)
        if job is None:
            return None
        done = set()
        if job.batch is not None:
            done = set(session.scalars(select(JobItem.index).where(JobItem.job_id == job_id)))
        inline = None
        files = [each for each in job.inputs.values() if is_file(each)]
        # a typed batch item has no "key": its files are all inline
        if any(each.get("key") is None for each in (*files, *(job.batch or []))):
            inline = session.scalar(select(InlineInput.data).where(InlineInput.job_id == job_id))
        image, limits = _image_and_limits(job.version_id)
        if job.queued_at and job.started_at:
            waited = (job.started_at - job.queued_at).total_seconds()
            metrics.JOB_QUEUE_WAIT_SECONDS.observe(max(waited, 0))
        return RunRequest(
            where=Sandboxed(job.id, job.owner_id, image, limits, job.attempts), inputs=job.inputs,
            batch=job.batch, items_done=done, log_key=job.log_key, inline=inline,
            input_bytes=stored_bytes(job.inputs, job.batch), webhook_events=webhooks.wanted(job),
            started=streams.fields_of(job),
        )  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _image_and_limits(version_id: uuid.UUID) -> tuple[str, sandbox.Limits]:
    """A READY version's image and sandbox limits, read once per process: they never change
    once it is READY, and jobs run only on READY versions."""
    with session_scope() as session:
        version = session.get(ModelVersion, version_id)
        return version.image_ref, sandbox.Limits.for_model(version.config)


def prewarm(version_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Starts a warm container of a READY version for the user, ahead of their first job."""
    if settings.warm_enabled and _is_ready(version_id):
        image, limits = _image_and_limits(version_id)
        pool.shared(SANDBOX_OWNER).prewarm(image, str(user_id), limits)


def standby(version_id: uuid.UUID) -> None:
    """Starts a standby container of a READY version (pre-pull's), for the first job of any
    user: the model is loaded when that job comes (WarmPool.standby)."""
    if settings.warm_enabled and _is_ready(version_id):
        image, limits = _image_and_limits(version_id)
        pool.shared(SANDBOX_OWNER).standby(image, limits)


def _is_ready(version_id: uuid.UUID) -> bool:
    with session_scope() as session:
        status = session.scalar(select(ModelVersion.status).where(ModelVersion.id == version_id))
    return status == VersionStatus.READY


def _run(request: RunRequest, storage: Storage, watch: cancels.Watch) -> dict:
    """The job's outcome as the fields of its final row."""
    limits = request.where.limits
    with tempfile.TemporaryDirectory(dir=work_dir(INFERENCE_QUEUE)) as scratch:

        def data_of(name: str, file: dict) -> bytes | Path:
            if file["key"] is None:  # sent inline: its bytes go to the sandbox as they are
                return request.inline[file["offset"] : file["offset"] + file["size"]]
            path = Path(scratch) / f"input-{name}"
            with_retries(download_input, storage, file, path)
            return path

        runner_request = RunnerRequest.of_inputs(request.inputs, data_of)
        live = Live(request.where.job_id)
        result = with_retries(
            predict, request.where, runner_request, watch, live, give_up=lambda: watch.canceled
        )
        live.close(result.stderr_tail)
    if result.stderr_tail:
        log = result.stderr_tail.encode()
        with_retries(storage.put_bytes, request.log_key, log, "text/plain; charset=utf-8")
    ran = {"exit_code": result.exit_code, "run_seconds": result.seconds}
    failure = failures.job_failure(result, limits)
    if failure:
        return {"status": JobStatus.FAILED, "error": failure, **ran}
    files = result.output_files(limits.output_mb * 1024**2)
    outputs = with_retries(store_outputs, storage, request.where, files)
    result_json = inline_result(files)
    return {"status": JobStatus.SUCCEEDED, "outputs": outputs, "result": result_json, **ran}
