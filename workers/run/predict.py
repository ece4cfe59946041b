"""One prediction in the sandbox: on a warm container of the job owner's, or, when warm
containers are off or the pool has no room, on a fresh one-shot container."""

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.queue import INFERENCE_QUEUE
from core.settings import settings
from runner.protocol import INPUT_NAME_FLAG
from workers import images
from workers.run import pool, sandbox
from workers.run.cancels import Watch
from workers.workdirs import work_dir

SANDBOX_OWNER = sandbox.owner_for(INFERENCE_QUEUE)


# A request's input: the file name the model sees, and its bytes or the file holding them.
Input = tuple[str, bytes | Path]


@dataclass(frozen=True)
class Sandboxed:
    """Where a job's predictions run: its image, for its owner, within its limits."""

    job_id: uuid.UUID
    owner_id: uuid.UUID
    image_ref: str
    limits: sandbox.Limits


def predict(
    where: Sandboxed, input_name: str, data: bytes | Path, watch: Watch
) -> sandbox.RunResult:
    return predict_all(where, [(input_name, data)], watch)[0]


def predict_all(where: Sandboxed, inputs: list[Input], watch: Watch) -> list[sandbox.RunResult]:
    """One result per input, in order; fewer when a warm container died on one: the last is
    then that input's failure, and the inputs after it did not run."""
    if settings.warm_enabled:
        warm = pool.shared(SANDBOX_OWNER).run(
            where.image_ref, str(where.owner_id), where.limits, inputs, watch
        )
        if warm is not None:
            return warm
    client = images.docker_client(timeout=120)
    try:
        images.pull(client, where.image_ref)
        return [_run_cold(client, where, input_name, data, watch) for input_name, data in inputs]
    finally:
        client.close()


def _run_cold(client, where: Sandboxed, input_name: str, data: bytes | Path, watch: Watch):
    """One request in a one-shot container, its input streamed from a file."""
    with tempfile.NamedTemporaryFile(dir=work_dir(INFERENCE_QUEUE)) as spooled:
        if isinstance(data, bytes):
            spooled.write(data)
            spooled.flush()
            data = Path(spooled.name)
        return sandbox.run(
            client, where.image_ref, [INPUT_NAME_FLAG, input_name], limits=where.limits,
            owner=SANDBOX_OWNER, work=str(where.job_id), stdin=data, watch=watch,
        )  # fmt: skip
