"""The farm's executor against the Docker engine (MODELFARM_BUILDER=engine) on the same
Dockerfile and context, side by side in one run, on the digits example: a new dependency set
(wheels cached), a new model of a set seen, and a code-only change. Both are called as the
build worker calls them (workers/build/executor.py, engine.py), in this process, so that the
figures hold the build alone: no queue, no API, no package download.

    .venv/bin/python scripts/bench_dockerfile.py     (needs the stack: scripts/up.sh)
"""

import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_build import DIGITS, PACKAGE_FILES, forget_dependency_images, variant  # noqa: E402

from core import context, dockerfile, registry  # noqa: E402
from core.settings import settings  # noqa: E402
from tests.utils import make_zip  # noqa: E402
from workers import images  # noqa: E402
from workers.build import engine, executor, wheels  # noqa: E402
from workers.build.builder import WHEELHOUSE  # noqa: E402
from workers.build.package import open_package  # noqa: E402
from workers.build.smoke import target_python  # noqa: E402


class Log(list):
    """A build log kept in memory (the worker's is written to object storage as it grows)."""

    def __call__(self, text: str) -> None:
        self.append(text)

    def flush(self) -> None:
        pass


def _files(package_files: dict[str, bytes], work: Path, log) -> tuple[context.Context, list]:
    (work / "package.zip").write_bytes(make_zip(package_files))
    (work / "source").mkdir()
    package = open_package(work / "package.zip", work / "source")
    client = docker.from_env()
    target = target_python(client, images.image_id(client, settings.base_image))
    lock, _ = wheels.resolve(package.requirements, target, WHEELHOUSE, log)
    files = {
        **context.deps_entries(lock, WHEELHOUSE / "files", work / context.LOCK_FILE),
        **context.package_entries(package.root),
        **context.farm_entries(),
    }
    return files, lock


def timed(client, builder: str, package_files: dict[str, bytes], repository: str) -> float:
    """Seconds for one build of the package by `builder`, pushed into repository."""
    text = dockerfile.for_base(settings.base_image)
    plan = dockerfile.parse(text, base=settings.base_image)
    base_id = images.image_id(client, settings.base_image)
    log = Log()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        files, lock = _files(package_files, work, log)
        target = executor.Target(
            repository=repository, tags=[f"bench-{uuid.uuid4().hex[:8]}"], model_config={},
            work=str(uuid.uuid4()),
        )  # fmt: skip
        started = time.perf_counter()
        if builder == "engine":
            engine.build(client, text, files, target, work, log)
        else:
            executor.build(client, plan, files, lock, base_id, target, work, log)
        return time.perf_counter() - started


def forget(client, repositories: list[str]) -> None:
    """The images of these repositories go from the registry and the engine, and with the
    engine's its build cache of their steps."""
    hub = registry.Registry()
    for repository in repositories:
        for tag in hub.tags(repository):
            if digest := hub.manifest_digest(repository, tag):
                hub.delete_manifest(repository, digest)
        for image in client.images.list(name=registry.engine_name(repository)):
            client.images.remove(image.id, force=True)
    client.images.prune(filters={"dangling": True})


def measure() -> dict:
    client = docker.from_env(timeout=600)
    files = {name: (DIGITS / name).read_bytes() for name in PACKAGE_FILES}
    repositories = {b: registry.model_repository(uuid.uuid4()) for b in ("executor", "engine")}
    cold_repositories = [registry.model_repository(uuid.uuid4()) for _ in range(2)]
    results: dict[str, float] = {}
    try:
        cold = variant(files, f"cold {uuid.uuid4()}")
        forget_dependency_images(client)  # and no engine image of the set: none is cached
        for builder, repository in zip(("executor", "engine"), cold_repositories, strict=True):
            results[f"{builder}_new_dependency_set_s"] = timed(client, builder, cold, repository)
        seen = variant(files, "a new model")
        for builder, repository in repositories.items():
            results[f"{builder}_new_model_set_seen_s"] = timed(client, builder, seen, repository)
        code = variant(seen, "a code change")
        for builder, repository in repositories.items():
            results[f"{builder}_code_only_s"] = timed(client, builder, code, repository)
    finally:
        forget(client, [*repositories.values(), *cold_repositories])
        client.close()
    for row in ("new_dependency_set", "new_model_set_seen", "code_only"):
        engine_s, executor_s = results[f"engine_{row}_s"], results[f"executor_{row}_s"]
        results[f"engine_over_executor_{row}"] = round(engine_s / executor_s, 1)
    return {name: round(value, 3) for name, value in results.items()}


if __name__ == "__main__":
    print(measure())
