"""The build pipeline: model ZIP -> validated -> its Dockerfile and context -> built by the
farm's executor (executor.py; or by the engine, engine.py, MODELFARM_BUILDER=engine) ->
smoke-tested -> pushed.

An unchanged package is never built twice: every image is also tagged with a content key made
from what the package holds (not from its ZIP's bytes), and a build whose key the registry
already has, for this model or for another of its owner's or a public one, is served from
there. Each step that touches a dependency is retried on the farm's faults (workers/retry.py);
a user's fault fails the version with its message at once.
"""

import hashlib
import tempfile
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog

from core import context, dockerfile, events, logs, metrics, registry, streams, webhooks
from core.contents import ContentFile
from core.db import session_scope
from core.errors import UserFacingError, gave_up_message
from core.lifecycle import VersionStatus, begin, finish
from core.models import ModelVersion
from core.queue import BUILD_QUEUE
from core.settings import settings
from core.storage import NotAsSealed, Storage, wheel_key
from workers import cache, images, leases
from workers.build import contents, engine, executor, recipe, reuse, wheels
from workers.build.buildlog import StreamingLog
from workers.build.package import Package, PackageError, open_package
from workers.build.smoke import smoke_test, target_python
from workers.retry import with_retries
from workers.workdirs import work_dir

logger = structlog.get_logger(__name__)
WHEELHOUSE = Path(settings.cache_dir) / "wheelhouse"
IMAGE_PUT = "image: pushed as "
HOST_CACHES = (WHEELHOUSE / "files", contents.HOST_CONTENTS)  # beside the engine's images


@dataclass
class BuildRequest:
    version_id: uuid.UUID
    model_id: uuid.UUID
    owner_id: uuid.UUID
    number: int
    package_key: str
    package_size: int
    build_log_key: str
    webhook_events: list[str]
    attempt: int  # its fencing token (core/lifecycle.py)
    content_files: list[ContentFile]  # beside the ZIP (core/contents.py)
    started: dict  # the BUILDING row's fields (core/streams.py)


@dataclass
class Built:
    image_ref: str
    image_digest: str
    content_key: str
    reused: bool
    package_sha256: str
    dockerfile: str
    lock: list[dict] | None
    config: dict
    input_schema: dict


def build_version(version_id: uuid.UUID) -> None:
    """Builds a QUEUED version (or one whose earlier attempt died) to READY or FAILED."""
    request = with_retries(_start, version_id)
    if request is None:
        return
    logs.bind(model_id=request.model_id, owner_id=request.owner_id)
    logger.info("build started")
    streams.status("version", request.started)
    webhooks.notify("version", version_id, request.webhook_events, "start")
    started = time.monotonic()
    storage = Storage()
    log = StreamingLog(storage, request.build_log_key, streams.LogLines("version", version_id))
    try:
        built = with_retries(_build, request, storage, log)
    except UserFacingError as error:
        log(f"\nFAILED: {error}\n")
        outcome = {"status": VersionStatus.FAILED, "error": str(error)}
    except Exception as error:
        logger.exception("build of version %s failed inside the farm", version_id)
        log(f"\n{traceback.format_exc()}\nFAILED inside the farm\n")
        outcome = {"status": VersionStatus.FAILED, "error": gave_up_message("build", error)}
    else:
        log(f"\nREADY: {built.image_ref}{' (reused from the registry)' if built.reused else ''}\n")
        outcome = {"status": VersionStatus.READY, **asdict(built)}
    log.close()
    ended = with_retries(finish, ModelVersion, version_id, attempt=request.attempt, **outcome)
    if ended is not None:
        streams.status("version", ended)
        webhooks.notify("version", version_id, webhooks.wanted(ended), "completed")
        if outcome["status"] == VersionStatus.READY:
            events.version_ready(version_id, built.image_ref)
    reused = bool(outcome.get("reused"))
    metrics.BUILD_SECONDS.labels(outcome["status"], reused).observe(time.monotonic() - started)
    logger.info("build ended", status=str(outcome["status"]), reused=reused,
                error=outcome.get("error"))  # fmt: skip


def _start(version_id: uuid.UUID) -> BuildRequest | None:
    """Marks the version BUILDING; None when there is nothing (more) to do for it."""
    with session_scope() as session:
        version = begin(session, ModelVersion, version_id)
        if version is None:
            return None
        return BuildRequest(
            version_id=version.id,
            model_id=version.model_id,
            owner_id=version.model.owner_id,
            number=version.number,
            package_key=version.package_key,
            package_size=version.package_size,
            build_log_key=version.build_log_key,
            webhook_events=webhooks.wanted(version),
            attempt=version.attempts,
            content_files=version.content_files or [],
            started=streams.fields_of(version),
        )


def _build(request: BuildRequest, storage: Storage, log: StreamingLog) -> Built:
    with tempfile.TemporaryDirectory(prefix="build-", dir=work_dir(BUILD_QUEUE)) as workdir:
        work = Path(workdir)
        zip_path = work / "package.zip"
        zip_sha256 = _download_package(storage, request, zip_path)
        (work / "source").mkdir()
        with contents.fetcher(storage, request.owner_id, log) as fetch:
            package = open_package(
                zip_path, work / "source", sha256=zip_sha256,
                content_files=request.content_files, fetch=fetch,
            )  # fmt: skip
            wanted = package.requirements or "none"
            log(f"package: sha256 {package.sha256}, requirements: {wanted}\n")
            client = images.docker_client(timeout=settings.build_time_limit_s)
            try:
                return _build_image(request, package, client, work, log)
            finally:
                client.close()


def _download_package(storage: Storage, request: BuildRequest, path: Path) -> str:
    """The sealed package, streamed to disk, never more than the size accepted; its sha256."""
    digest = hashlib.sha256()
    try:
        found = storage.download(
            request.package_key, path, size=request.package_size, hashing=digest
        )
    except NotAsSealed as error:
        raise PackageError(
            f"The stored package is not the one accepted for this build ({error}); upload it "
            "again to a new version."
        ) from None
    if not found:
        raise PackageError("The uploaded ZIP is gone from storage; upload it to a new version.")
    return digest.hexdigest()


def _build_image(
    request: BuildRequest, package: Package, client, work: Path, log: StreamingLog
) -> Built:
    images.pull(client, settings.base_image)
    base_image_id = images.image_id(client, settings.base_image)
    text = dockerfile.for_base(settings.base_image)
    key = recipe.content_key(
        contents_sha256=package.contents_sha256, dockerfile=text, base_image_id=base_image_id
    )
    repository = registry.model_repository(request.model_id)
    # One build at a time per owner and content: a second one (on any host) waits, then reuses.
    with leases.claim(
        f"content:{request.owner_id}:{key}", wait_s=settings.build_time_limit_s,
        on_wait=lambda: log("reuse: another build is making this exact image; waiting for it\n"),
    ):  # fmt: skip
        lock, digest = None, reuse.reusable_image(request.owner_id, repository, key, log)
        if digest is None:
            lock, schema = _build_and_push(
                request, package, client, work, log, text, key, base_image_id
            )
            digest = registry.Registry().manifest_digest(repository, registry.content_tag(key))
            if digest is None:
                raise images.FarmFault(
                    images.REGISTRY, f"{repository}:c-{key} is missing after the push"
                )
            reuse.record_image(request.version_id, request.attempt, key, digest, schema)
    image_ref = registry.pinned(repository, digest)
    if lock is None:
        schema = reuse.input_schema_of(key) or _described(client, image_ref, package, request, log)
    return Built(
        image_ref=image_ref,
        image_digest=digest,
        content_key=key,
        reused=lock is None,
        package_sha256=package.sha256,
        dockerfile=text,
        lock=lock,
        config=package.config.model_dump(exclude_none=True),
        input_schema=schema,
    )


def _described(client, image_ref: str, package: Package, request: BuildRequest, log) -> dict:
    """The input schema of a reused image no build recorded (its build pushed it, then died):
    the runner describes it, as in the smoke test."""
    images.pull(client, image_ref)
    return smoke_test(client, image_ref, package.config.model_dump(), str(request.version_id), log)


def _build_and_push(
    request: BuildRequest, package: Package, client, work: Path, log: StreamingLog, text: str,
    key: str, base_image_id: str,
) -> tuple[list[dict], dict]:  # fmt: skip
    """Resolves the wheels, then builds the Dockerfile with its context and pushes the image
    (the smoke test passed); returns the lock and the input schema."""
    target = target_python(client, base_image_id)
    lock, downloaded = wheels.resolve(package.requirements, target, WHEELHOUSE, log)
    files = {
        **context.deps_entries(lock, WHEELHOUSE / "files", work / context.LOCK_FILE),
        **context.package_entries(package.root, package.file_sha256),
        **context.farm_entries(),
    }
    plan = dockerfile.parse(text, base=settings.base_image)  # refuses what it never writes
    target = executor.Target(
        repository=registry.model_repository(request.model_id),
        tags=[registry.version_tag(request.number), registry.content_tag(key)],
        model_config=package.config.model_dump(), work=str(request.version_id),
    )  # fmt: skip
    # Beside the build: the context's wheels kept for its download, and this host's cache put
    # under budget (workers/cache.py) when this build added to it (asking the engine for its
    # disk use took 0.5-0.8 s of a 1 GB model's build, while its download was being flushed).
    with ThreadPoolExecutor(2) as keeper:
        kept = keeper.submit(_keep_wheels, lock, files)
        if downloaded or request.content_files:
            keeper.submit(cache.trim_to_budget, client, *HOST_CACHES)
        if settings.builder == "engine":
            digest, schema = engine.build(client, text, files, target, work, log)
        else:
            digest, schema = executor.build(
                client, plan, files, lock, base_image_id, target, work, log
            )
        kept.result()
    log(f"{IMAGE_PUT}{target.repository}@{digest}\n")
    return lock, schema


def _keep_wheels(lock: list[dict], files: context.Context) -> None:
    storage = Storage()
    for item in lock:
        source = files[context.WHEELS + item["filename"]].source
        storage.put_file(wheel_key(item["sha256"]), source)
