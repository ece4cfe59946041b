"""Dependency images: the base image plus one layer, the virtualenv of a set of locked wheels.

The layer is made by running the install script (deps_install.sh) in a container of the base
image, with no network, and committing it: the wheels go in beside it and are gone before the
commit, so neither they nor a copy of the virtualenv make a layer of their own.

One per (lock, base image), built once and pushed once: every model image using the set is FROM
it (by digest), so the virtualenv's blob is shared in the registry and on every engine. Two
builds that need the same new set at once build it once: the first takes a claim on it, the
other waits until the claim is let go, then finds the image in the registry and uses it.
"""

from pathlib import Path, PurePosixPath

from core import registry
from core.settings import settings
from workers import images, leases
from workers.build import dockerfile
from workers.build.buildlog import StreamingLog
from workers.build.wheels import verify_wheels

INSTALLING = "dependencies: installing "


def dependency_image(
    client, lock: list[dict], base_image_id: str, wheels: Path, work: Path, log: StreamingLog
) -> str:
    """The pinned reference of the set's dependency image, present on this engine."""
    tag = registry.deps_tag(dockerfile.deps_key(lock=lock, base_image_id=base_image_id))
    digest = _pushed(tag, log)
    if digest is None:
        waiting = f"dependencies: another build is making {tag[:17]}...; waiting for it\n"
        # Busy after the wait: a farm fault, retried like any other.
        with leases.claim(
            f"deps:{tag}", wait_s=settings.build_time_limit_s, on_wait=lambda: log(waiting)
        ):
            digest = _pushed(tag, log) or _build_and_push(client, tag, lock, wheels, work, log)
    reference = registry.pinned(registry.DEPS_REPOSITORY, digest)
    images.pull(client, reference)  # by digest, when this engine lacks it
    return reference


def _pushed(tag: str, log: StreamingLog) -> str | None:
    """The digest of the set's image if a build (this one's or another's) has pushed it."""
    digest = registry.Registry().manifest_digest(registry.DEPS_REPOSITORY, tag)
    if digest is not None:
        log(f"dependencies: reusing {registry.DEPS_REPOSITORY}:{tag[:17]}...\n")
    return digest


def _build_and_push(
    client, tag: str, lock: list[dict], wheels: Path, work: Path, log: StreamingLog
) -> str:
    """Builds and pushes the set's image (under its claim); its digest."""
    verify_wheels(lock, wheels)
    inputs = work / "deps-inputs.tar"
    dockerfile.write_deps_inputs(archive=inputs, lock=lock, wheels=wheels)
    name = registry.engine_name(registry.DEPS_REPOSITORY)
    log(f"{INSTALLING}{len(lock)} locked wheel(s) into /opt/venv, with no network\n")
    images.commit(
        client, image=settings.base_image,
        command=["/bin/sh", f"{dockerfile.DEPS_INPUTS}/install.sh"],
        inputs=inputs, extract_into=str(PurePosixPath(dockerfile.DEPS_INPUTS).parent),
        changes=dockerfile.deps_config(), repository=name, tag=tag,
        time_limit_s=settings.build_time_limit_s, log=log,
    )  # fmt: skip
    images.push(client, name, tag, log)
    digest = registry.Registry().manifest_digest(registry.DEPS_REPOSITORY, tag)
    if digest is None:
        raise images.FarmFault(images.REGISTRY, f"{tag} is missing after the push")
    return digest
