"""The build pipeline: model ZIP -> validated -> generated Dockerfile -> image in the registry.

An unchanged package is never built twice: every image is also tagged with a content key, and a
build whose key the registry already has is served from there.
"""

import json
import logging
import tempfile
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from core.db import session_scope
from core.models import ModelVersion, VersionStatus
from core.registry import Registry
from core.settings import settings
from core.storage import Storage
from workers import dockerfile, images, progress, sandbox, wheels
from workers.buildlog import StreamingLog
from workers.celery_app import BUILD_QUEUE
from workers.package import Package, PackageError, open_package

logger = logging.getLogger(__name__)
SANDBOX_OWNER = sandbox.owner_for(BUILD_QUEUE)
DEPS_REPOSITORY = "modelfarm/deps"


@dataclass
class BuildRequest:
    version_id: uuid.UUID
    model_id: uuid.UUID
    model_name: str
    number: int
    package_key: str
    build_log_key: str
    previous_image: str | None


@dataclass
class Built:
    image_ref: str
    digest: str
    reused: bool
    package_sha256: str
    lock: list[dict] | None
    config: dict


class SmokeTestFailed(Exception):
    pass


def build_version(version_id: uuid.UUID) -> None:
    """Builds a QUEUED version (or one whose earlier attempt died) to READY or FAILED."""
    request = _start(version_id)
    if request is None:
        return
    storage = Storage()
    log = StreamingLog(storage, request.build_log_key)
    try:
        built = _build(request, storage, log)
    except (PackageError, images.ImageError, SmokeTestFailed) as error:
        log(f"\nFAILED: {error}\n")
        _finish(version_id, status=VersionStatus.FAILED, error=str(error))
    except Exception as error:
        logger.exception("build of version %s failed", version_id)
        log(traceback.format_exc())
        message = f"The build failed inside the farm ({type(error).__name__}: {error})"
        _finish(version_id, status=VersionStatus.FAILED, error=message)
    else:
        log(f"\nREADY: {built.image_ref}{' (reused from the registry)' if built.reused else ''}\n")
        _finish(
            version_id,
            status=VersionStatus.READY,
            image_ref=built.image_ref,
            image_digest=built.digest,
            reused=built.reused,
            package_sha256=built.package_sha256,
            lock=built.lock,
            config=built.config,
        )
    finally:
        log.flush()


def _start(version_id: uuid.UUID) -> BuildRequest | None:
    """Marks the version BUILDING; None when there is nothing (more) to do for it."""
    with session_scope() as session:
        version = progress.begin(
            session,
            ModelVersion,
            version_id,
            queued=VersionStatus.QUEUED,
            running=VersionStatus.BUILDING,
            failed=VersionStatus.FAILED,
            worker="build worker",
        )
        if version is None:
            return None
        return BuildRequest(
            version_id=version.id,
            model_id=version.model_id,
            model_name=version.model.name,
            number=version.number,
            package_key=version.package_key,
            build_log_key=version.build_log_key,
            previous_image=session.scalar(
                select(ModelVersion.image_ref)
                .where(ModelVersion.model_id == version.model_id)
                .where(ModelVersion.status == VersionStatus.READY)
                .order_by(ModelVersion.number.desc())
                .limit(1)
            ),
        )


def _finish(version_id: uuid.UUID, *, status: VersionStatus, **fields) -> None:
    progress.finish(ModelVersion, version_id, status=status, **fields)


def _build(request: BuildRequest, storage: Storage, log: StreamingLog) -> Built:
    with tempfile.TemporaryDirectory(prefix="modelfarm-build-") as workdir:
        work = Path(workdir)
        zip_path = work / "package.zip"
        storage.client.fget_object(storage.bucket, request.package_key, str(zip_path))
        (work / "source").mkdir()
        package = open_package(zip_path, work / "source")
        log(f"package: sha256 {package.sha256}, requirements: {package.requirements or 'none'}\n")
        client = images.docker_client(timeout=settings.build_time_limit_s)
        try:
            return _build_image(request, package, client, work, log)
        finally:
            client.close()


def _build_image(
    request: BuildRequest, package: Package, client, work: Path, log: StreamingLog
) -> Built:
    images.pull(client, settings.base_image)
    base_image_id = images.image_id(client, settings.base_image)
    text = dockerfile.render_for(
        base_image=settings.base_image,
        model_id=str(request.model_id),
        model_name=request.model_name,
        package_sha256=package.sha256,
    )
    key = dockerfile.content_key(
        package_sha256=package.sha256,
        dockerfile=text,
        base_image_id=base_image_id,
    )
    repository = f"models/{request.model_id}"
    reference = f"{settings.registry}/{repository}"
    config = package.config.model_dump(exclude_none=True)
    registry = Registry()
    digest = registry.manifest_digest(repository, f"c-{key}")
    if digest:
        log(f"reuse: the registry has this exact image ({repository}:c-{key[:12]}...)\n")
        return Built(f"{reference}@{digest}", digest, True, package.sha256, None, config)
    lock = _build_and_push(
        request, package, client, work, log,
        dockerfile_text=text, key=key, config=config, base_image_id=base_image_id,
    )  # fmt: skip
    digest = registry.manifest_digest(repository, f"c-{key}")
    if digest is None:
        raise images.ImageError(f"The registry does not list {repository}:c-{key} after the push")
    return Built(f"{reference}@{digest}", digest, False, package.sha256, lock, config)


def _build_and_push(
    request: BuildRequest, package: Package, client, work: Path, log: StreamingLog, *,
    dockerfile_text: str, key: str, config: dict, base_image_id: str,
) -> list[dict]:  # fmt: skip
    """Resolves the wheels, builds, smoke-tests and pushes the image; returns the lock."""
    reference = f"{settings.registry}/models/{request.model_id}"
    wheelhouse = Path(settings.cache_dir) / "wheelhouse"
    lock = wheels.resolve(
        package.requirements, _target_python(client, base_image_id), wheelhouse, log
    )
    context = work / "context"
    dockerfile.write_context(
        source=package.root,
        context=context,
        dockerfile=dockerfile_text,
        lock=lock,
        wheels=wheelhouse / "files",
    )
    deps_image = _dependency_image(client, context, lock, base_image_id, log)
    image = images.build(
        client,
        context=context,
        tag=f"{reference}:v{request.number}",
        cache_from=[deps_image, *_cache_sources(client, request.previous_image, log)],
        labels={"org.modelfarm.version-number": str(request.number)},
        time_limit_s=settings.build_time_limit_s,
        log=log,
    )
    log.flush()  # the smoke test writes nothing for a while: let readers see the build so far
    _smoke_test(client, image, config, str(request.version_id), log)
    images.tag(client, image, reference, f"c-{key}")
    images.push(client, reference, f"v{request.number}", log)
    images.push(client, reference, f"c-{key}", log)
    return lock


def _dependency_image(
    client, context: Path, lock: list[dict], base_image_id: str, log: StreamingLog
) -> str:
    """The builder stage as an image of its own in the registry, shared by every model with the
    same locked wheels. With cache_from the classic builder uses no other cache, so naming this
    image is what lets a rebuild skip reinstalling unchanged dependencies."""
    key = dockerfile.deps_key(lock=lock, base_image_id=base_image_id)
    repository, name = f"{settings.registry}/{DEPS_REPOSITORY}", f"deps-{key}"
    reference = f"{repository}:{name}"
    if Registry().manifest_digest(DEPS_REPOSITORY, name):
        images.pull(client, reference)
        log(f"dependencies: reusing {DEPS_REPOSITORY}:{name[:17]}...\n")
        return reference
    images.build(
        client, context=context, tag=reference, target="deps", cache_from=[],
        time_limit_s=settings.build_time_limit_s, log=log,
    )  # fmt: skip
    images.push(client, repository, name, log)
    return reference


def _cache_sources(client, previous_image: str | None, log) -> list[str]:
    """The model's previous image, pulled if needed, so unchanged layers are not rebuilt."""
    if not previous_image:
        return []
    try:
        images.pull(client, previous_image)
    except images.ImageError as error:
        log(f"cache: previous image unavailable, building without it ({error})\n")
        return []
    return [previous_image]


def _smoke_test(client, image: str, config: dict, work: str, log) -> None:
    limits = sandbox.Limits.for_model(config)
    result = sandbox.run(
        client, image, ["--self-test"], limits=limits, owner=SANDBOX_OWNER, work=work
    )
    log(f"smoke test ({result.seconds:.1f} s):\n{result.stderr_tail}")
    failure = sandbox.failure_message(result, limits)
    if failure:
        raise SmokeTestFailed(f"The smoke test (import predict.py, run setup) {failure}")


def _target_python(client, base_image_id: str) -> wheels.TargetPython:
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
        raise images.ImageError(f"Probing the base image failed: {result.stderr_tail[-500:]}")
    target = wheels.parse_probe(result.stdout.decode())
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(target.__dict__))
    return target
