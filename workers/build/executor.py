"""The farm's builder: executes a version's Dockerfile (core/dockerfile.py's plan of it) at
registry speed, as `docker build` would but without building on an engine.

- The dependency stage (FROM, COPY of deps/, RUN of the install) runs once per set of locked
  wheels, in a sandboxed container of the engine with no network (dependencies.py); what the
  model stage copies out of it (/opt/) is kept as a layer of the dependency image in the
  registry, shared by every model of the set.
- The model stage is put together in the registry: the base's and the dependency layer's blobs
  mounted, each COPY of a context folder made here as an uncompressed layer streamed to disk
  (root's files, the context's modes, no times: what the engine's COPY makes, and equal files
  give equal blobs; a big one found by its content name when the repository has it: layers.py),
  the configuration computed from ENV, USER, WORKDIR and ENTRYPOINT the way the engine does,
  then the manifest, once the smoke test passed on these very parts (smoke.py).

Why not `docker build`: the engine would first need the dependency image (pulling 180 MB of
virtualenv takes about 3 s here) and takes about 0.25 s for three COPY steps; these layers are
tarred here at the speed of the disk, and a code-only change on a model of gigabytes makes no
layer of its weights at all.
"""

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from core import context, registry
from core.dockerfile import Copy, Plan
from workers import images
from workers.build import blobs, layers, trees
from workers.build.buildlog import StreamingLog, step
from workers.build.dependencies import DependencyImage, dependency_image
from workers.build.smoke import STANDBY_ROOM_MB, OwnFiles, smoke_test_parts

# The PATH the engine gives a stage whose base image sets none (moby's DefaultPathEnv).
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Target:
    repository: str
    tags: list[str]
    model_config: dict  # the package's modelfarm.yaml: its sandbox's limits
    work: str  # the version's id: the smoke test's name


def build(client, plan: Plan, files: context.Context, lock, base_image_id: str, target: Target,
          work: Path, log: StreamingLog) -> tuple[str, dict]:  # fmt: skip
    """Executes the plan over the context's files; the image's digest and its input schema."""
    deps, holder = dependency_image(client, plan, files, lock, base_image_id, work, log)
    started = time.monotonic()
    step(log, plan, plan.model_from, f"base image {plan.base} ({base_image_id[:19]})")
    step(log, plan, plan.deps_export, f"reused: layer {deps.venv_blob[:19]} of {deps.tag[:17]}")
    hub = registry.Registry()
    config = image_config(deps.config, plan)
    smoke_log: list[str] = []  # written after the steps, whichever ends first

    def smoke_test(own: OwnFiles) -> dict:
        return smoke_test_parts(
            client, holder=holder, image_config=config["config"], own=own,
            config=target.model_config, work=target.work, log=smoke_log.append,
        )  # fmt: skip

    # The tester's exit waits for the smoke test and the read ahead, before the tree's slot
    # is let go.
    with ExitStack() as held, ThreadPoolExecutor(2) as tester:
        tested = None
        if _mounted(_own_size(plan, files)):  # big files: tested while their layers are made
            tree = held.enter_context(trees.leased())
            _lay_out(tree, plan, files, work)
            tested = tester.submit(smoke_test, OwnFiles(tree=tree))
        own = [_copy_layer(hub, plan, target.repository, files, copy, work, log)
               for copy in plan.copies[1:]]  # fmt: skip
        if tested is not None:
            tester.submit(trees.read_ahead, _found_by_content(plan, files, own))
        for instruction, _, _ in plan.config:
            step(log, plan, instruction, "configuration")
        log.flush()  # the smoke test may take a while: let readers see the build so far
        if tested is None:
            tested = tester.submit(
                smoke_test, OwnFiles(tars=[layer.path for layer in own if layer.path])
            )
        manifest = _push_blobs(hub, target.repository, deps, plan, own, config)
        try:
            schema = tested.result()
        finally:
            log("".join(smoke_log))
    (digest,) = {
        hub.put_manifest(target.repository, tag, manifest, registry.MANIFEST_V2)
        for tag in target.tags
    }
    log(f"model stage: {time.monotonic() - started:.2f} s, manifest {digest}\n")
    return digest, schema


def _copy_layer(hub, plan: Plan, repository: str, files: context.Context, copy: Copy,
                work: Path, log: StreamingLog) -> layers.Layer:  # fmt: skip
    """The layer of a COPY of a context folder: its files under the destination folder. A big
    one the repository has already, of the same files, is found by its content name instead."""
    started = time.monotonic()
    picked = context.under(files, copy.source)
    prefix = copy.destination.lstrip("/")
    name = layers.content_name(picked, prefix=prefix)
    layer = layers.known(name)
    if layer is not None and _mounted(layer.size) and hub.has_blob(repository, layer.digest):
        how = "reused by content, not made"
    else:
        layer = layers.write_layer(work / f"layer-{copy.step}.tar", picked, prefix=prefix)
        layers.remember(name, layer)
        how = "reused" if hub.has_blob(repository, layer.digest) else "new"
    step(log, plan, copy, f"{how}: layer {layer.digest[:19]}, {len(picked)} file(s), "
         f"{layer.size / 1e6:.2f} MB, {time.monotonic() - started:.3f} s")  # fmt: skip
    return layer


def _mounted(size: int) -> bool:
    """Whether the smoke test mounts layers of this size in all rather than unpacking their
    tars (so a layer this big needs no tar for it)."""
    return size > STANDBY_ROOM_MB * 2**20


def _found_by_content(plan: Plan, files: context.Context, own: list[layers.Layer]) -> list[Path]:
    """The files of the layers found by their content, not made: in this build only the smoke
    test's model reads them."""
    return [
        entry.source
        for copy, layer in zip(plan.copies[1:], own, strict=True)
        if layer.path is None
        for entry in context.under(files, copy.source).values()
    ]


def _own_size(plan: Plan, files: context.Context) -> int:
    """The bytes of the image's own files (those of its COPYs of the context)."""
    return sum(
        entry.source.stat().st_size
        for copy in plan.copies[1:]
        for entry in context.under(files, copy.source).values()
    )


def _lay_out(tree: Path, plan: Plan, files: context.Context, work: Path) -> None:
    """The image's own files in `tree` as the image holds them (hard links to the package's
    files, modes as the image has them; the farm's few files copied), for the smoke test to
    mount instead of unpacking their layers' tars."""
    for copy in plan.copies[1:]:
        for path, entry in context.under(files, copy.source).items():
            placed = tree / copy.destination.lstrip("/") / path
            placed.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            if entry.source.is_relative_to(work):
                os.link(entry.source, placed)
            else:
                shutil.copyfile(entry.source, placed)
            placed.chmod(0o755 if entry.executable else 0o644)


def image_config(deps: dict, plan: Plan) -> dict:
    """The model image's configuration: the base's, as the dependency image carries it, with
    the model stage's ENV, USER, WORKDIR and ENTRYPOINT applied as the engine applies them
    (an ENV replaces its variable in place or adds it; ENTRYPOINT clears an inherited CMD)."""
    config = {**deps["config"], "Cmd": None}
    env = list(config.get("Env") or [])
    if not any(entry.startswith("PATH=") for entry in env):
        env.append(DEFAULT_PATH)
    for _, key, value in plan.config:
        if key == "Env":
            for name, setting in value:
                names = [entry.split("=", 1)[0] for entry in env]
                if name in names:
                    env[names.index(name)] = f"{name}={setting}"
                else:
                    env.append(f"{name}={setting}")
        else:
            config[key] = value
    return {**deps, "config": {**config, "Env": env}}


def _push_blobs(hub: registry.Registry, repository: str, deps: DependencyImage, plan: Plan,
                own: list[layers.Layer], config: dict) -> bytes:  # fmt: skip
    """Puts the image's blobs into repository (the dependency image's mounted); its manifest,
    for put_manifest. Blobs no manifest names are the registry's garbage collector's."""
    deps_blobs = [blob["digest"] for blob in registry.blobs_of(deps.manifest)]
    if not hub.mount_all(deps_blobs, registry.DEPS_REPOSITORY, repository):
        raise images.FarmFault(
            images.REGISTRY, f"the dependency blobs did not mount into {repository}"
        )
    for layer in own:
        if layer.path is not None:  # else found in the repository by its content name
            blobs.put(hub, repository, layer)
    diff_ids = [*config["rootfs"]["diff_ids"], *(layer.diff_id for layer in own)]
    history = [{"created": config["created"], "created_by": c.text} for c in plan.copies[1:]]
    whole = {
        **config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [*config.get("history", []), *history],
    }
    entries = [*deps.manifest["layers"], *(layer.entry for layer in own)]
    return hub.push_config(repository, whole, entries, hub.timeout)
