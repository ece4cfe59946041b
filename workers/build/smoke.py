"""Running a freshly built image (and the base image) in the sandbox before anyone else does."""

import json
from pathlib import Path

from core import inputs
from core.errors import FarmFault, UserFacingError
from core.queue import BUILD_QUEUE
from core.settings import settings
from runner.protocol import EXIT_BAD_SIGNATURE, SELF_TEST_FLAG
from workers.build import wheels
from workers.run import failures, sandbox

SANDBOX_OWNER = sandbox.owner_for(BUILD_QUEUE)


class SmokeTestFailed(UserFacingError):
    pass


def smoke_test(client, image: str, config: dict, work: str, log) -> dict:
    """Imports predict.py and runs setup() in the sandbox, where the runner then describes
    predict's inputs; their JSON Schema, or SmokeTestFailed with why."""
    limits = sandbox.Limits.for_model(config)
    result = sandbox.run(
        client, image, [SELF_TEST_FLAG], limits=limits, owner=SANDBOX_OWNER, work=work
    )
    log(f"smoke test ({result.seconds:.1f} s):\n{result.stderr_tail}")
    record = failures.error_record(result.stderr_tail)
    if result.exit_code == EXIT_BAD_SIGNATURE and record:
        raise SmokeTestFailed(
            f"predict's inputs cannot be described: {record['message']}. Declare each input as "
            "in the README's typed inputs."
        )
    failure = failures.failure_message(result, limits)
    if failure:
        raise SmokeTestFailed(
            f"The smoke test (import predict.py, run setup()) failed: {failure[0].lower()}"
            f"{failure[1:]}"
        )
    try:
        return inputs.json_schema(json.loads(result.stdout))
    except (ValueError, KeyError, TypeError):
        raise SmokeTestFailed(
            "The smoke test's description of predict's inputs was unreadable: the model wrote "
            "into the runner's own output channel; print to stderr instead."
        ) from None


def target_python(client, base_image_id: str) -> wheels.TargetPython:
    """The base image's Python and platform, probed once per base image."""
    cache = Path(settings.cache_dir) / "targets" / (base_image_id.replace(":", "-") + ".json")
    if cache.exists():
        return wheels.TargetPython(**json.loads(cache.read_text()))
    limits = sandbox.Limits.for_model(None)
    result = sandbox.run(
        client, settings.base_image, ["python3", "-c", wheels.PROBE], limits=limits,
        owner=SANDBOX_OWNER, work=f"probe-{base_image_id}",
    )  # fmt: skip
    if result.exit_code != 0:
        raise FarmFault("the base image", f"probing it failed: {result.stderr_tail[-500:]}")
    target = wheels.parse_probe(result.stdout.decode())
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(target.__dict__))
    return target
