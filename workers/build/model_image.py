"""A model image, put together in the registry: its dependency image, then three small layers
made here from the package's files (weights, code, the farm's runner), then a manifest.

Why not `docker build`: the engine would need the dependency image first (pulling 180 MB of
virtualenv takes it about 3 s on these machines) and takes about 0.25 s for three COPY steps;
a model image's own layers are a few kilobytes to a few megabytes of files, tarred and gzipped
here in milliseconds. Nothing is ever pulled to build. The layers are made the way the engine
makes them from a COPY: root's files, the package's modes (executable or not), no times (all
zero), so equal contents make equal layers and an equal image, whoever's model it is.
"""

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from core import registry
from runner.unpack import FARM_FOLDER, MODEL_FOLDER
from workers import images
from workers.build import layers
from workers.build.package import CONFIG_FILE, REQUIREMENTS_FILE

# The layers over the dependency image, the least often changed first: each is the files a
# picker chooses from the package (or the farm's code), put under a folder of the image. What
# the smoke test unpacks and the image holds are these very files.
LAYOUT = [("weights", MODEL_FOLDER), ("code", MODEL_FOLDER), ("runner", FARM_FOLDER)]
# Changes whenever how the image is put together changes: part of every content key.
RECIPE = json.dumps({"layout": LAYOUT, "times": 0, "owner": 0, "modes": [0o755, 0o644]})


@dataclass(frozen=True)
class File:
    path: str  # relative to the layer's folder
    content: bytes
    executable: bool


def layer_files(source: Path, farm_files: dict[str, list[Path]]) -> dict[str, list[File]]:
    """The files of each layer of LAYOUT: the package's Python code apart from its weights
    and other data (requirements.txt and modelfarm.yaml are not in the image), and the farm's."""
    chosen: dict[str, list[File]] = {"weights": [], "code": [], "runner": []}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if not path.is_file() or relative in (REQUIREMENTS_FILE, CONFIG_FILE):
            continue
        executable = bool(path.stat().st_mode & 0o111)
        layer = "code" if path.suffix == ".py" else "weights"
        chosen[layer].append(File(relative, path.read_bytes(), executable))
    for package, paths in farm_files.items():
        chosen["runner"] += [File(f"{package}/{p.name}", p.read_bytes(), False) for p in paths]
    return chosen


def tar_of(folder: str, files: list[File]) -> bytes:
    """The layer's tar: the folder, each file's parent folders, then the files, in name order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in _folders(folder, files):
            tar.addfile(_info(directory, tarfile.DIRTYPE, 0o755))
        for file in sorted(files, key=lambda f: f.path):
            info = _info(
                f"{folder}/{file.path}", tarfile.REGTYPE, 0o755 if file.executable else 0o644
            )
            info.size = len(file.content)
            tar.addfile(info, io.BytesIO(file.content))
    return buffer.getvalue()


def _folders(folder: str, files: list[File]) -> list[str]:
    parts = folder.split("/")
    wanted = {"/".join(parts[: i + 1]) for i in range(len(parts))}
    for file in files:
        pieces = f"{folder}/{file.path}".split("/")[:-1]
        wanted |= {"/".join(pieces[: i + 1]) for i in range(len(pieces))}
    return sorted(wanted)


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
    return info


def push_blobs(
    hub: registry.Registry, repository: str, deps_manifest: dict, deps_config: dict,
    tars: list[bytes],
) -> bytes:  # fmt: skip
    """Puts the blobs of the image made of the dependency image (its manifest and
    configuration) and the layers `tars` over it into repository; the image's manifest, for
    put_manifest. Blobs no manifest names are the registry's garbage collector's."""
    deps_blobs = [blob["digest"] for blob in registry.blobs_of(deps_manifest)]
    if not hub.mount_all(deps_blobs, registry.DEPS_REPOSITORY, repository):
        raise images.FarmFault(
            images.REGISTRY, f"the dependency blobs did not mount into {repository}"
        )
    own = [layers.layer_of(tar) for tar in tars]
    for layer in own:
        hub.push_blob(repository, layer.digest, layer.gzipped, hub.timeout)
    entries = [*deps_manifest["layers"], *(layer.entry for layer in own)]
    return hub.push_config(repository, _config(deps_config, own), entries, hub.timeout)


def put_manifest(hub: registry.Registry, repository: str, tags: list[str], manifest: bytes) -> str:
    """Puts the image's manifest (its blobs pushed) under each of tags; its digest."""
    (digest,) = {hub.put_manifest(repository, tag, manifest, registry.MANIFEST_V2) for tag in tags}
    return digest


def _config(deps: dict, own: list[layers.Layer]) -> dict:
    """The dependency image's configuration with the layers added; its time, so that equal
    contents make an equal configuration."""
    history = [
        {"created": deps["created"], "created_by": f"modelfarm: {name} into /{folder}"}
        for name, folder in LAYOUT
    ]
    return {
        **deps,
        "rootfs": {
            "type": "layers",
            "diff_ids": [*deps["rootfs"]["diff_ids"], *(x.diff_id for x in own)],
        },
        "history": [*deps.get("history", []), *history],
    }
