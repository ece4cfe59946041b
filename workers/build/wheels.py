"""Resolving a package's requirements to wheels, on the trusted worker, for a hermetic build.

The image build itself has no network: it installs from the wheels fetched here, which are kept
in a wheelhouse shared by all builds on this worker. The resolved set is recorded as a lock, and a
second package with the same requirements reuses it without any download.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.utils import parse_wheel_filename

from core.errors import FarmFault
from core.settings import settings
from workers.build.package import PackageError, sha256_file

OLDEST_MANYLINUX_MINOR = 17
WHEELHOUSE = "the wheelhouse"
# Drop this machine's pip configuration (extra indexes, constraints): builds use the farm's index.
_PIP_VARIABLES_TO_DROP = (
    "PIP_FIND_LINKS",
    "PIP_EXTRA_INDEX_URL",
    "PIP_INDEX_URL",
    "PIP_CONSTRAINT",
)
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")


@dataclass(frozen=True)
class TargetPython:
    """What the base image runs, as pip's download options need it."""

    version: str  # "3.11"
    machine: str  # "x86_64"
    glibc_minor: int  # 36 for glibc 2.36

    @property
    def abi(self) -> str:
        return "cp" + self.version.replace(".", "")

    def platforms(self) -> list[str]:
        newest_first = range(self.glibc_minor, OLDEST_MANYLINUX_MINOR - 1, -1)
        tags = [f"manylinux_2_{minor}_{self.machine}" for minor in newest_first]
        return [*tags, f"manylinux2014_{self.machine}"]

    def pip_options(self) -> list[str]:
        options = ["--python-version", self.version, "--implementation", "cp", "--abi", self.abi]
        for platform in self.platforms():
            options += ["--platform", platform]
        return options


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


def resolve(requirements: list[str], target: TargetPython, wheelhouse: Path, log) -> list[dict]:
    """The lock for these requirements: [{"name", "version", "filename", "sha256"}, ...]."""
    if not requirements:
        return []
    key_source = json.dumps([requirements, asdict(target), settings.pip_index_url])
    lock_path = wheelhouse / "locks" / (hashlib.sha256(key_source.encode()).hexdigest() + ".json")
    files = wheelhouse / "files"
    if lock_path.exists():
        lock = json.loads(lock_path.read_text())
        if _is_complete(lock, files):
            log(f"requirements: reusing the resolved set of {len(lock)} wheels, no download\n")
            for item in lock:  # a use, for the cache's least-recently-used order
                (files / item["filename"]).touch()
            return lock
    files.mkdir(parents=True, exist_ok=True)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheelhouse) as download_dir:
        _download(requirements, target, Path(download_dir), log)
        lock = [
            _store(Path(download_dir) / name, files) for name in sorted(os.listdir(download_dir))
        ]
    _write_atomically(lock_path, json.dumps(lock, indent=1))
    return lock


def _is_complete(lock: list[dict], files: Path) -> bool:
    """Every wheel of the lock is in the wheelhouse. Their bytes are checked where they are used
    (`verify_wheels`): a set whose dependency image exists needs none of them."""
    return all((files / item["filename"]).exists() for item in lock)


def verify_wheels(lock: list[dict], files: Path) -> None:
    """Each wheel's bytes are those the lock recorded. A changed one is removed, so that the
    build's retry downloads it again, and FarmFault raised."""
    for item in lock:
        path = files / item["filename"]
        if sha256_file(path) != item["sha256"]:
            path.unlink(missing_ok=True)
            raise FarmFault(WHEELHOUSE, f"{item['filename']} changed since it was locked")


def _download(requirements: list[str], target: TargetPython, into: Path, log) -> None:
    requirements_file = into / "requirements.in"
    requirements_file.write_text("\n".join(requirements) + "\n")
    command = [
        sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-input",
        "--disable-pip-version-check", "--progress-bar", "off",
        "--index-url", settings.pip_index_url, *target.pip_options(),
        "-r", str(requirements_file), "-d", str(into),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in _PIP_VARIABLES_TO_DROP}
    env["PIP_CONFIG_FILE"] = os.devnull
    log(f"requirements: resolving {len(requirements)} requirement(s) to wheels\n")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    log(done.stdout[-20000:])
    requirements_file.unlink()
    if done.returncode != 0:
        log(done.stderr[-20000:])
        missing = _NO_MATCH.search(done.stderr)
        if missing:
            raise PackageError(
                f"No wheel of {missing.group(1)} for Python {target.version} on "
                f"{target.machine} Linux: the farm installs wheels only (no source builds). "
                "Choose a version that publishes a wheel."
            )
        raise PackageError("Resolving requirements.txt failed: " + done.stderr.strip()[-1500:])


def _store(wheel: Path, files: Path) -> dict:
    if wheel.suffix != ".whl":
        raise PackageError(f"pip returned {wheel.name}, which is not a wheel")
    name, version, _, _ = parse_wheel_filename(wheel.name)
    digest = sha256_file(wheel)
    os.replace(wheel, files / wheel.name)
    return {"name": str(name), "version": str(version), "filename": wheel.name, "sha256": digest}


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
