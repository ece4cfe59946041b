"""Dependency images: the base image plus one layer, what the model stage of the Dockerfile
copies out of its dependency stage (/opt/: the virtualenv of a set of locked wheels).

The stage's COPY puts the context's deps/ folder into a container of the base image, whose
RUN (core/deps_install.sh) makes /opt/venv with no network. The layer is the copied folder read
out of the container (layers.py), pushed as a blob, and the image is put together in the
registry: the base image's manifest (pushed once) with this layer after its layers, and the
base image's configuration (the model stage sets its own). The install container is kept as
this host's copy of the virtualenv, for smoke tests (venvs.py); no engine pulls the image.

One per (dependency stage, lock, base image), built once and pushed once: every model image of
the set mounts its blobs, so the virtualenv's blob is shared in the registry and on every engine.
Two builds that need the same new set at once build it once: the first takes a claim on it,
the other waits until the claim is let go, then finds the image in the registry and uses it.
"""

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from docker.models.containers import Container

from core import context, registry
from core.dockerfile import Plan
from core.settings import settings
from workers import images, leases
from workers.build import blobs, layers, recipe, venvs
from workers.build.buildlog import StreamingLog, step
from workers.build.wheels import verify_wheels

INSTALLING = "dependencies: installing "
# What the dependency layer is, in an image's history.
DEPS_LAYER_HISTORY = "modelfarm: what the model stage copies out of the dependency stage"
REUSED = f"reused: {registry.DEPS_REPOSITORY}:"


@dataclass(frozen=True)
class DependencyImage:
    tag: str
    digest: str
    manifest: dict
    config: dict  # the image's configuration blob

    @property
    def venv_blob(self) -> str:
        return self.manifest["layers"][-1]["digest"]


def dependency_image(
    client, plan: Plan, files: context.Context, lock: list[dict], base_image_id: str,
    work: Path, log: StreamingLog,
) -> tuple[DependencyImage, Container]:  # fmt: skip
    """The set's dependency image in the registry, and this host's copy of its virtualenv."""
    key = recipe.deps_key(plan=plan, lock=lock, base_image_id=base_image_id)
    tag = registry.deps_tag(key)
    found = _pushed(tag)
    if found is None:
        waiting = f"dependencies: another build is making {tag[:17]}...; waiting for it\n"
        # Busy after the wait: a farm fault, retried like any other.
        with leases.claim(
            f"deps:{tag}", wait_s=settings.build_time_limit_s, on_wait=lambda: log(waiting)
        ):
            found = _pushed(tag)  # by the build it waited for, if it did
            if found is None:
                built = _build_and_push(client, tag, plan, files, lock, work, log)
                return built, venvs.holder(client, tag, built.venv_blob, work, log)
    for instruction in [plan.deps_from, *plan.deps_copies, plan.deps_runs[0][0]]:
        step(log, plan, instruction, f"{REUSED}{tag[:17]}")
    return found, venvs.holder(client, tag, found.venv_blob, work, log)


def _pushed(tag: str) -> DependencyImage | None:
    """The set's image if a build (this one's or another's) has pushed it."""
    found = registry.Registry().image(registry.DEPS_REPOSITORY, tag)
    if found is None:
        return None
    manifest, config, digest = found
    return DependencyImage(tag, digest, manifest, config)


def _build_and_push(
    client, tag: str, plan: Plan, files: context.Context, lock: list[dict], work: Path,
    log: StreamingLog,
) -> DependencyImage:  # fmt: skip
    """Runs the dependency stage and pushes its image (under its claim), keeping its install
    container as this host's copy."""
    (copy,), ((run, command),) = plan.deps_copies, plan.deps_runs
    wheels = context.under(files, context.WHEELS)
    verify_wheels(lock, {name: entry.source for name, entry in wheels.items()})
    started = time.monotonic()
    destination = PurePosixPath(copy.destination)
    inputs = work / "deps-inputs.tar"
    with inputs.open("wb") as out:
        context.write_tar(out, context.under(files, copy.source), prefix=f"{destination.name}/")
    step(log, plan, plan.deps_from, f"base image {plan.base}")
    step(log, plan, copy, f"{inputs.stat().st_size / 1e6:.1f} MB of inputs, "
                  f"{time.monotonic() - started:.2f} s")  # fmt: skip
    log(f"{INSTALLING}{len(lock)} locked wheel(s), with no network\n")
    started = time.monotonic()
    with images.run_step(
        client, image=plan.base, name=venvs.holder_name(tag), command=command,
        inputs=inputs, extract_into=str(destination.parent),
        time_limit_s=settings.build_time_limit_s, log=log, volume=venvs.VENV, keep=True,
    ) as container:  # fmt: skip
        layer = layers.read_layer(
            container, plan.deps_export.source.rstrip("/"), work / "deps-layer.tar.gz"
        )
    step(log, plan, run, f"{time.monotonic() - started:.1f} s, the layer of "
                  f"{plan.deps_export.source}: {layer.size / 1e6:.1f} MB")  # fmt: skip
    venvs.trim(client)
    return _put_image(client, tag, layer, log)


def _put_image(client, tag: str, layer: layers.Layer, log: StreamingLog) -> DependencyImage:
    """Puts base + layer into the registry as DEPS_REPOSITORY:tag."""
    hub = registry.Registry()
    base_manifest, base_config = _pushed_base(client, hub, log)
    base_blobs = [blob["digest"] for blob in registry.blobs_of(base_manifest)]
    if not hub.mount_all(base_blobs, registry.BASE_REPOSITORY, registry.DEPS_REPOSITORY):
        raise images.FarmFault(images.REGISTRY, f"the base image's blobs did not mount for {tag}")
    blobs.put(hub, registry.DEPS_REPOSITORY, layer)
    config = _config(base_config, layer)
    content = hub.push_config(
        registry.DEPS_REPOSITORY, config, [*base_manifest["layers"], layer.entry],
        settings.build_time_limit_s,
    )  # fmt: skip
    digest = hub.put_manifest(registry.DEPS_REPOSITORY, tag, content, registry.MANIFEST_V2)
    return DependencyImage(tag, digest, json.loads(content), config)


def _config(base: dict, layer: layers.Layer) -> dict:
    """The base image's configuration with the layer on top."""
    created = datetime.now(UTC).isoformat()
    history = {"created": created, "created_by": DEPS_LAYER_HISTORY}
    return {
        "architecture": base["architecture"],
        "os": base["os"],
        "created": created,
        "config": base["config"],
        "rootfs": {"type": "layers", "diff_ids": [*base["rootfs"]["diff_ids"], layer.diff_id]},
        "history": [*base.get("history", []), history],
    }


def _pushed_base(client, hub: registry.Registry, log: StreamingLog) -> tuple[dict, dict]:
    """The base image in BASE_REPOSITORY, pushed by the engine the first time (so that it knows
    the base layers' blobs too): its manifest and configuration."""
    base_id = images.image_id(client, settings.base_image)
    tag = registry.base_tag(base_id)
    found = hub.image(registry.BASE_REPOSITORY, tag)
    if found is None:
        name = registry.engine_name(registry.BASE_REPOSITORY)
        images.tag(client, base_id, name, tag)
        images.push(client, name, tag, log)
        found = hub.image(registry.BASE_REPOSITORY, tag)
        if found is None:
            raise images.FarmFault(images.REGISTRY, f"{name}:{tag} is missing after the push")
    manifest, config, _ = found
    return manifest, config
