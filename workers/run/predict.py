"""One prediction in the sandbox: on a warm container of the job owner's, or, when warm
containers are off or the pool has no room, on a fresh one-shot container."""

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.queue import INFERENCE_QUEUE
from core.settings import settings
from workers import images
from workers.run import pool, sandbox
from workers.run.cancels import Watch
from workers.run.live import Live
from workers.run.request import RunnerRequest
from workers.workdirs import work_dir

SANDBOX_OWNER = sandbox.owner_for(INFERENCE_QUEUE)


@dataclass(frozen=True)
class Sandboxed:
    """Where a job's predictions run: its image, for its owner, within its limits."""

    job_id: uuid.UUID
    owner_id: uuid.UUID
    image_ref: str
    limits: sandbox.Limits
    # The job's attempt: its fencing token (core/lifecycle.py), and the folder its outputs go
    # to, so that a late attempt never overwrites the files of the one that took over.
    attempt: int


def predict(
    where: Sandboxed, request: RunnerRequest, watch: Watch, live: Live | None = None
) -> sandbox.RunResult:
    """One request, what it prints and yields shown live."""
    return predict_all(where, [request], watch, live)[0]


def predict_all(
    where: Sandboxed, requests: list[RunnerRequest], watch: Watch, live: Live | None = None
) -> list[sandbox.RunResult]:
    """One result per request, in order; fewer when a warm container died on one: the last is
    then that request's failure, and the requests after it did not run."""
    if settings.warm_enabled:
        warm = pool.shared(SANDBOX_OWNER).run(
            where.image_ref, str(where.owner_id), where.limits, requests, watch, live
        )
        if warm is not None:
            return warm
    client = images.docker_client(timeout=120)
    try:
        images.pull(client, where.image_ref)
        return [_run_cold(client, where, request, watch, live) for request in requests]
    finally:
        client.close()


def _run_cold(client, where: Sandboxed, request: RunnerRequest, watch: Watch, live: Live | None):
    """One request in a one-shot container, its input files streamed in, those in memory
    spooled to a file first."""
    with tempfile.TemporaryDirectory(dir=work_dir(INFERENCE_QUEUE)) as spool:
        files = []
        for number, part in enumerate(request.parts):
            if isinstance(part, bytes):
                (Path(spool) / str(number)).write_bytes(part)
                part = Path(spool) / str(number)
            files.append(part)
        return sandbox.run(
            client, where.image_ref, request.command(), limits=where.limits,
            owner=SANDBOX_OWNER, work=str(where.job_id), stdin=files, watch=watch, live=live,
        )  # fmt: skip
