"""The reference builder (MODELFARM_BUILDER=engine): the version's Dockerfile and context built
by the Docker engine itself, `docker build --network none` (no step reaches a network), the
image smoke-tested, then pushed under the version's tags. Slower than the executor (the engine
installs the dependency stage for every new model and gzips every layer on one core), and the
images it makes hold the same files and configuration (tests/integration/test_dockerfile.py).
Its images stay on the engine, under the cache's budget, so that its next build of the same
dependency stage or weights reuses their steps, as `docker build` does.
"""

from pathlib import Path

import requests

from core import context, registry
from core.settings import settings
from workers import cache, images
from workers.build.buildlog import StreamingLog
from workers.build.executor import Target
from workers.build.smoke import smoke_test


def build(client, text: str, files: context.Context, target: Target, work: Path,
          log: StreamingLog) -> tuple[str, dict]:  # fmt: skip
    """Builds, smoke-tests and pushes the image; its digest and its input schema."""
    archive = work / "context.tar"
    with archive.open("wb") as out:
        context.write_context(out, text, files, work)
    name = registry.engine_name(target.repository)
    with archive.open("rb") as tar:
        image_id = _docker_build(client, tar, f"{name}:{target.tags[0]}", log)
    cache.touch(image_id)  # kept, with its stages, as the engine's build cache (cache.py)
    schema = smoke_test(client, image_id, target.model_config, target.work, log)
    for tag in target.tags:
        images.tag(client, image_id, name, tag)
        images.push(client, name, tag, log)
    digest = registry.Registry().manifest_digest(target.repository, target.tags[0])
    if digest is None:
        raise images.FarmFault(
            images.REGISTRY, f"{name}:{target.tags[0]} is missing after the push"
        )
    return digest, schema


def _docker_build(client, tar, tag: str, log: StreamingLog) -> str:
    """`docker build --network none` of the context tar; the image's id."""
    try:
        stream = client.api.build(
            fileobj=tar, custom_context=True, tag=tag, network_mode="none", rm=True,
            forcerm=True, pull=False, decode=True, timeout=settings.build_time_limit_s,
        )  # fmt: skip
        image_id = None
        for chunk in stream:
            if "error" in chunk:
                raise images.BuildFailed(
                    f"The image build failed: {chunk['error'].strip()}; the build log shows why."
                )
            log(chunk.get("stream", ""))
            image_id = chunk.get("aux", {}).get("ID", image_id)
    except requests.exceptions.RequestException as error:
        if images.read_timed_out(error):
            raise images.BuildFailed(
                f"The image build timed out after {settings.build_time_limit_s} s."
            ) from None
        raise
    if image_id is None:
        raise images.FarmFault(images.ENGINE, "docker build named no image")
    return image_id
