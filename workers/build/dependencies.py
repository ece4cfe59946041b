"""Dependency images: the base image plus one layer, the virtualenv of a set of locked wheels.

The install script (deps_install.sh) runs in a container of the base image, with no network,
and makes /opt/venv in the container's volume; its wheels go in beside it, outside /opt. The
layer is /opt read out of the container (layers.py), pushed as a blob, and the image is put
together in the registry: the base image's manifest (pushed once) with this layer after its
layers, and the base image's configuration with deps_config.json over it. The install
container is kept as this host's copy of the virtualenv, for smoke tests (venvs.py); no engine
pulls the image to build with it.

One per (lock, base image), built once and pushed once: every model image using the set is
put together over it, so the virtualenv's blob is shared in the registry and on every engine.
Two builds that need the same new set at once build it once: the first takes a claim on it,
the other waits until the claim is let go, then finds the image in the registry and uses it.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from docker.models.containers import Container

from core import registry
from core.settings import settings
from workers import images, leases
from workers.build import layers, recipe, venvs
from workers.build.buildlog import StreamingLog
from workers.build.wheels import verify_wheels

INSTALLING = "dependencies: installing "


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
    client, lock: list[dict], base_image_id: str, wheels: Path, work: Path, log: StreamingLog
) -> tuple[DependencyImage, Container]:
    """The set's dependency image in the registry, and this host's copy of its virtualenv."""
    tag = registry.deps_tag(recipe.deps_key(lock=lock, base_image_id=base_image_id))
    found = _pushed(tag, log)
    if found is None:
        waiting = f"dependencies: another build is making {tag[:17]}...; waiting for it\n"
        # Busy after the wait: a farm fault, retried like any other.
        with leases.claim(
            f"deps:{tag}", wait_s=settings.build_time_limit_s, on_wait=lambda: log(waiting)
        ):
            found = _pushed(tag, log) or _build_and_push(client, tag, lock, wheels, work, log)
    return found, venvs.holder(client, tag, found.venv_blob, log)


def _pushed(tag: str, log: StreamingLog) -> DependencyImage | None:
    """The set's image if a build (this one's or another's) has pushed it."""
    found = registry.Registry().image(registry.DEPS_REPOSITORY, tag)
    if found is None:
        return None
    log(f"dependencies: reusing {registry.DEPS_REPOSITORY}:{tag[:17]}...\n")
    manifest, config, digest = found
    return DependencyImage(tag, digest, manifest, config)


def _build_and_push(
    client, tag: str, lock: list[dict], wheels: Path, work: Path, log: StreamingLog
) -> DependencyImage:
    """Builds and pushes the set's image (under its claim), keeping its install container."""
    verify_wheels(lock, wheels)
    inputs = work / "deps-inputs.tar"
    recipe.write_deps_inputs(archive=inputs, lock=lock, wheels=wheels)
    log(f"{INSTALLING}{len(lock)} locked wheel(s) into /opt/venv, with no network\n")
    with images.run_step(
        client, image=settings.base_image, name=venvs.holder_name(tag),
        command=["/bin/sh", f"{recipe.DEPS_INPUTS}/install.sh"],
        inputs=inputs, extract_into=str(PurePosixPath(recipe.DEPS_INPUTS).parent),
        time_limit_s=settings.build_time_limit_s, log=log, volume=venvs.VENV, keep=True,
    ) as container:  # fmt: skip
        layer = layers.read_layer(container, "/opt")
    venvs.trim(client)
    log(f"dependencies: pushing the virtualenv's layer, {len(layer.gzipped) / 1e6:.1f} MB\n")
    return _put_image(client, tag, layer, log)


def _put_image(client, tag: str, layer: layers.Layer, log: StreamingLog) -> DependencyImage:
    """Puts base + layer into the registry as DEPS_REPOSITORY:tag."""
    hub = registry.Registry()
    base_manifest, base_config = _pushed_base(client, hub, log)
    base_blobs = [blob["digest"] for blob in registry.blobs_of(base_manifest)]
    if not hub.mount_all(base_blobs, registry.BASE_REPOSITORY, registry.DEPS_REPOSITORY):
        raise images.FarmFault(images.REGISTRY, f"the base image's blobs did not mount for {tag}")
    hub.push_blob(
        registry.DEPS_REPOSITORY, layer.digest, layer.gzipped, settings.build_time_limit_s
    )
    config = _config(base_config, layer)
    content = hub.push_config(
        registry.DEPS_REPOSITORY, config, [*base_manifest["layers"], layer.entry],
        settings.build_time_limit_s,
    )  # fmt: skip
    digest = hub.put_manifest(registry.DEPS_REPOSITORY, tag, content, registry.MANIFEST_V2)
    return DependencyImage(tag, digest, json.loads(content), config)


def _config(base: dict, layer: layers.Layer) -> dict:
    """The base image's configuration with deps_config.json over it and the layer on top."""
    ours = recipe.deps_config()
    names = {entry.split("=", 1)[0] for entry in ours["Env"]}
    kept_env = [e for e in base["config"].get("Env") or [] if e.split("=", 1)[0] not in names]
    created = datetime.now(UTC).isoformat()
    history = {"created": created, "created_by": f"/bin/sh {recipe.DEPS_INPUTS}/install.sh"}
    return {
        "architecture": base["architecture"],
        "os": base["os"],
        "created": created,
        "config": {**base["config"], **ours, "Env": kept_env + ours["Env"]},
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
