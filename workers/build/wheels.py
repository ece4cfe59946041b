"""Resolving a package's requirements to wheels, on the trusted worker, for a hermetic build.

The image build itself has no network: it installs from the wheels fetched here, which are kept
in a wheelhouse shared by all builds on this worker. The resolved set is recorded as a lock, and a
second package with the same requirements reuses it without any download.

uv resolves (`uv pip compile`, wheels only, for the base image's Python and platform) to a
PEP 751 lock, which names each wheel's URL, sha256 and (when the index gives it) size; the
wheels are then downloaded side by side and checked against it. Measured on the digits set:
0.7 s, against 1.5 s for `pip download`, most of it pip's own start and resolution.
"""

import hashlib
import json
import os
import re
import subprocess
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import uv
from packaging import tags
from packaging.utils import parse_wheel_filename

from core.errors import FarmFault
from core.settings import settings
from workers.build.package import PackageError, sha256_file

OLDEST_MANYLINUX_MINOR = 17
WHEELHOUSE = "the wheelhouse"
INDEX = "the package index"
DOWNLOADS_AT_ONCE = 8
_NO_WHEEL = re.compile(r"Wheels are required for `([^`]+)`")


@dataclass(frozen=True)
class TargetPython:
    """What the base image runs, as the resolution of its wheels needs it."""

    version: str  # "3.11"
    machine: str  # "x86_64"
    glibc_minor: int  # 36 for glibc 2.36

    @property
    def abi(self) -> str:
        return "cp" + self.version.replace(".", "")

    @property
    def uv_platform(self) -> str:
        return f"{self.machine}-manylinux_2_{self.glibc_minor}"

    def ranked_tags(self) -> list[tags.Tag]:
        """The wheel tags this Python installs, the one it prefers first (as pip ranks them)."""
        newest_first = range(self.glibc_minor, OLDEST_MANYLINUX_MINOR - 1, -1)
        platforms = [f"manylinux_2_{minor}_{self.machine}" for minor in newest_first]
        platforms.append(f"manylinux2014_{self.machine}")
        python = tuple(int(part) for part in self.version.split("."))
        return [
            *tags.cpython_tags(python, [self.abi, "abi3", "none"], platforms),
            *tags.compatible_tags(python, self.abi, platforms),
        ]


PROBE = (
    "import json, platform, sys; "
    "print(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
    "'machine': platform.machine(), 'libc': platform.libc_ver()}))"
)


def parse_probe(output: str) -> TargetPython:
    facts = json.loads(output)
    libc, libc_version = facts["libc"]
    if libc != "glibc":
        raise PackageError(f"The base image's C library ({libc or 'unknown'}) is not glibc")
    return TargetPython(facts["version"], facts["machine"], int(libc_version.split(".")[1]))


def resolve(
    requirements: list[str], target: TargetPython, wheelhouse: Path, log
) -> tuple[list[dict], bool]:
    """The lock for these requirements, [{"name", "version", "filename", "sha256"}, ...], and
    whether wheels were downloaded for it (the wheelhouse grew)."""
    if not requirements:
        return [], False
    key_source = json.dumps([requirements, asdict(target), settings.pip_index_url])
    lock_path = wheelhouse / "locks" / (hashlib.sha256(key_source.encode()).hexdigest() + ".json")
    files = wheelhouse / "files"
    if lock_path.exists():
        lock = json.loads(lock_path.read_text())
        if _is_complete(lock, files):
            log(f"requirements: reusing the resolved set of {len(lock)} wheels, no download\n")
            for item in lock:  # a use, for the cache's least-recently-used order
                (files / item["filename"]).touch()
            return lock, False
    files.mkdir(parents=True, exist_ok=True)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheelhouse) as download_dir:
        _download(requirements, target, Path(download_dir), log)
        lock = [
            _store(Path(download_dir) / name, files) for name in sorted(os.listdir(download_dir))
        ]
    _write_atomically(lock_path, json.dumps(lock, indent=1))
    return lock, True


def _is_complete(lock: list[dict], files: Path) -> bool:
    """Every wheel of the lock is in the wheelhouse. Their bytes are checked where they are used
    (`verify_wheels`): a set whose dependency image exists needs none of them."""
    return all((files / item["filename"]).exists() for item in lock)


def verify_wheels(lock: list[dict], paths: dict[str, Path]) -> None:
    """Each wheel's bytes (at paths[its file name]) are those the lock recorded. A changed one
    is removed, so that the build's retry downloads it again, and FarmFault raised."""
    for item in lock:
        path = paths[item["filename"]]
        if sha256_file(path) != item["sha256"]:
            path.unlink(missing_ok=True)
            raise FarmFault(WHEELHOUSE, f"{item['filename']} changed since it was locked")


def _download(requirements: list[str], target: TargetPython, into: Path, log) -> None:
    """Resolves the requirements with uv, then downloads the wheels it chose into `into`."""
    log(f"requirements: resolving {len(requirements)} requirement(s) to wheels\n")
    with tempfile.TemporaryDirectory() as scratch:
        pylock = _resolve_with_uv(requirements, target, Path(scratch))
    ranked = {tag: rank for rank, tag in enumerate(target.ranked_tags())}
    chosen = [_best_wheel(package, ranked) for package in pylock["packages"]]
    with ThreadPoolExecutor(DOWNLOADS_AT_ONCE) as pool, httpx.Client(timeout=60) as client:
        list(pool.map(lambda wheel: _fetch(client, wheel, into), chosen))
    log("".join(f"  {_filename(wheel)}\n" for wheel in chosen))


def _resolve_with_uv(requirements: list[str], target: TargetPython, scratch: Path) -> dict:
    (scratch / "requirements.in").write_text("\n".join(requirements) + "\n")
    command = [
        uv.find_uv_bin(), "pip", "compile", "--quiet", "--no-config", "--no-progress",
        "--only-binary", ":all:", "--python-version", target.version,
        "--python-platform", target.uv_platform, "--index-url", settings.pip_index_url,
        "--output-file", str(scratch / "pylock.toml"), str(scratch / "requirements.in"),
    ]  # fmt: skip
    # This machine's pip and uv settings (extra indexes, constraints) are not the farm's.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["UV_CACHE_DIR"] = str(scratch / "cache")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode == 0:
        return tomllib.loads((scratch / "pylock.toml").read_text())
    error = done.stderr.strip()[-1500:]
    if "No solution found" not in error:
        raise FarmFault(INDEX, f"uv could not resolve: {error}")
    missing = _NO_WHEEL.search(error)
    if missing:
        raise PackageError(
            f"No wheel of {missing.group(1)} for Python {target.version} on "
            f"{target.machine} Linux: the farm installs wheels only (no source builds). "
            "Choose a version that publishes a wheel."
        )
    raise PackageError(f"Resolving requirements.txt failed: {error}")


def _best_wheel(package: dict, ranked: dict[tags.Tag, int]) -> dict:
    """Of a locked package's wheels, the one the target Python ranks first."""
    unranked = len(ranked)

    def rank(wheel: dict) -> int:
        wheel_tags = parse_wheel_filename(_filename(wheel))[3]
        return min((ranked.get(tag, unranked) for tag in wheel_tags), default=unranked)

    best = min(package.get("wheels", []), key=rank, default=None)
    if best is None or rank(best) == unranked:
        raise FarmFault(INDEX, f"uv locked {package['name']} without a wheel for the target")
    return best


def _fetch(client: httpx.Client, wheel: dict, into: Path) -> None:
    """Downloads one wheel, refusing bytes other than the lock's (size and sha256)."""
    path = into / _filename(wheel)
    digest = hashlib.sha256()
    with client.stream("GET", wheel["url"], follow_redirects=True) as response:
        response.raise_for_status()
        with path.open("wb") as file:
            for chunk in response.iter_bytes(1 << 20):
                digest.update(chunk)
                file.write(chunk)
    # PEP 751 makes the size optional (a plain index may not give it); the farm wants a hash.
    size = wheel.get("size", path.stat().st_size)
    if digest.hexdigest() != wheel.get("hashes", {}).get("sha256") or path.stat().st_size != size:
        path.unlink()
        raise FarmFault(INDEX, f"{path.name} was not the bytes its index lists")


def _filename(wheel: dict) -> str:
    name = unquote(urlsplit(wheel["url"]).path.rsplit("/", 1)[-1])
    if not name.endswith(".whl") or "/" in name or name.startswith("."):
        raise FarmFault(INDEX, f"the lock names {wheel['url']}, which is not a wheel's URL")
    return name


def _store(wheel: Path, files: Path) -> dict:
    if wheel.suffix != ".whl":
        raise PackageError(f"the index returned {wheel.name}, which is not a wheel")
    name, version, _, _ = parse_wheel_filename(wheel.name)
    digest = sha256_file(wheel)
    os.replace(wheel, files / wheel.name)
    return {"name": str(name), "version": str(version), "filename": wheel.name, "sha256": digest}


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
