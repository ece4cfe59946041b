"""Running a model in the sandbox before anyone else does (its smoke test), and the base image.

A new build's smoke test runs before its image exists, on the very parts the image is put
together from (executor.py): a container of the base image, the set's virtualenv mounted
read-only from this host's copy (venvs.py), the configuration the image will have, and the
image's own layers sent on stdin and unpacked into tmpfs folders where the image holds them
(runner/unpack.py), or a big model's mounted from a folder of this host (trees.py). The image
is then put together in the registry; no engine ever has to build it or pull the dependency
image for it.
"""

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from core import inputs
from core.errors import FarmFault, UserFacingError
from core.queue import BUILD_QUEUE
from core.settings import settings
from runner import unpack
from runner.protocol import EXIT_BAD_SIGNATURE, MODEL_UID, SELF_TEST_FLAG
from workers import images
from workers.build import standby, venvs, wheels
from workers.run import failures, sandbox

SANDBOX_OWNER = sandbox.owner_for(BUILD_QUEUE)


class SmokeTestFailed(UserFacingError):
    pass


UNPACK_SOURCE = Path(unpack.__file__).read_text()
# The room a smoke test's tmpfs folders have for the image's own layers, sent on stdin: those of
# up to this size in all are tested so; bigger ones are mounted from this host's disk instead
# (OwnFiles.tree). Either way in a sandbox started ahead when there is one (standby.py).
STANDBY_ROOM_MB = 64
STANDBY_WORK = "smoke-test-standby"  # the work label of a sandbox started ahead


@dataclass(frozen=True)
class OwnFiles:
    """The image's own layers as its smoke test gets them: their tars, sent on stdin and
    unpacked into tmpfs folders (small ones), or `tree`, a folder of this host laid out as the
    image holds them (trees.py), mounted read-only, so that gigabytes of weights cost the smoke
    test no copy and no memory."""

    tars: list[Path] = field(default_factory=list)
    tree: Path | None = None


def smoke_test_parts(
    client, *, holder, image_config: dict, own: OwnFiles, config: dict, work: str, log
) -> dict:
    """The smoke test of the image to be made of the base image, the virtualenv in `holder`,
    the configuration `image_config` and its own files `own`: as smoke_test."""
    limits = sandbox.Limits.for_model(config)
    started = time.monotonic()
    # Named after its work either way: one that a dead attempt left is removed by the next.
    images.remove_container(client, smoke_test_name(work))
    options = _image_options(holder, image_config)
    if own.tree is None:  # the tmpfs's pages count as the model's memory: the room is added
        sandboxed = replace(limits, memory_mb=limits.memory_mb + STANDBY_ROOM_MB)
        folder = f"exec,size={STANDBY_ROOM_MB}m,uid={MODEL_UID},gid={MODEL_UID},mode=0755"
        options["tmpfs"] = {f"/{place}": folder for place in unpack.FOLDERS}
    else:
        sandboxed = limits
        options["volumes"] = {
            str(own.tree / place): {"bind": f"/{place}", "mode": "ro"} for place in unpack.FOLDERS
        }
    command = [*image_config["Entrypoint"], SELF_TEST_FLAG]
    result = _started_ahead(client, command, options, own.tars, sandboxed, work, started)
    return _schema_or_failure(result, limits, log)  # a failure tells the model's own limits


def _started_ahead(
    client, command: list[str], options: dict, tars: list[Path], limits: sandbox.Limits,
    work: str, started: float,
) -> sandbox.RunResult:  # fmt: skip
    """The smoke test in the sandbox started ahead for this kind of test when there is one (its
    files sent on stdin, or there already in the folders it mounts); then the next one is
    started."""
    kind = hashlib.sha256(json.dumps([command, options, asdict(limits)]).encode()).hexdigest()
    ready = standby.take(client, kind)
    if ready is not None:
        ready.rename(smoke_test_name(work))
        result = sandbox.finish(ready, limits=limits, stdin=tars, started=started)
    else:
        result = sandbox.run(
            client, settings.base_image, command, limits=limits, owner=SANDBOX_OWNER,
            work=work, stdin=tars, options={**options, "name": smoke_test_name(work)},
        )  # fmt: skip
    standby.prepare(kind, lambda other_client: sandbox.start(
        other_client, settings.base_image, command, limits=limits, owner=SANDBOX_OWNER,
        work=STANDBY_WORK, stdin=True, options=options,
    ))  # fmt: skip
    return result


def _image_options(holder, image_config: dict) -> dict:
    """A smoke test's sandbox: the image's configuration, the virtualenv copy read-only, and
    the unpacking of what comes on stdin first (runner/unpack.py)."""
    return {
        "volumes_from": [f"{holder.id}:ro"],
        "labels": {venvs.COPY_LABEL: holder.id},
        "environment": image_config["Env"],
        "working_dir": image_config["WorkingDir"],
        "entrypoint": [venvs.VENV + "/bin/python", "-c", UNPACK_SOURCE],
    }


def smoke_test_name(work: str) -> str:
    """The name of the container that runs the smoke test of `work` (a version's id)."""
    return f"modelfarm-smoke-{work}"


def smoke_test(client, image: str, config: dict, work: str, log) -> dict:
    """Imports predict.py and runs setup() in the sandbox, where the runner then describes
    predict's inputs; their JSON Schema, or SmokeTestFailed with why."""
    limits = sandbox.Limits.for_model(config)
    result = sandbox.run(
        client, image, [SELF_TEST_FLAG], limits=limits, owner=SANDBOX_OWNER, work=work
    )
    return _schema_or_failure(result, limits, log)


def _schema_or_failure(result: sandbox.RunResult, limits: sandbox.Limits, log) -> dict:
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
