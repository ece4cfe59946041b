"""Validation and extraction of an uploaded model package (an untrusted ZIP).

Every check runs on the ZIP's directory before a byte is extracted, and extraction itself
counts what it writes, so a ZIP that lies about its sizes is still stopped.
"""

import hashlib
import shutil
import stat
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.contents import ContentFile, path_problem
from core.context import CONFIG_FILE, REQUIREMENTS_FILE
from core.errors import UserFacingError
from core.settings import settings
from workers.build.requirements import RequirementsError, parse_requirements

PREDICT_FILE = "predict.py"
_ALLOWED_MODES = (0, stat.S_IFREG, stat.S_IFDIR)
_COPY_BYTES = 1 << 20


class PackageError(UserFacingError):
    """The package is unusable; the message tells the user what to fix."""


class ModelConfig(BaseModel):
    """modelfarm.yaml: optional per-model settings, within the server's caps."""

    model_config = ConfigDict(extra="forbid")
    description: str = Field("", max_length=500)
    cpus: float | None = Field(None, gt=0, le=settings.sandbox_cpus)
    memory_mb: int | None = Field(None, ge=32, le=settings.sandbox_memory_mb)
    timeout_s: int | None = Field(None, ge=1, le=settings.sandbox_timeout_s)
    runtime: Literal["runc", "runsc"] | None = None

    @field_validator("runtime")
    @classmethod
    def _not_weaker(cls, runtime: str | None) -> str | None:
        if runtime == "runc" and settings.sandbox_runtime == "runsc":
            raise ValueError(
                "this farm runs every model under gVisor (runsc); a model may not ask for the "
                "weaker runc: remove `runtime` or set it to runsc"
            )
        return runtime


@dataclass
class Package:
    root: Path
    sha256: str  # of the ZIP as uploaded, for the record
    contents_sha256: str  # of what it holds (contents_digest): what the image is built from
    requirements: list[str]
    config: ModelConfig
    file_sha256: dict[str, str]  # each file's, by its name in the package


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


Fetch = Callable[[ContentFile, Path], None]


def open_package(
    zip_path: Path, destination: Path, *, sha256: str | None = None,
    content_files: Sequence[ContentFile] = (), fetch: Fetch | None = None,
) -> Package:  # fmt: skip
    """Validate the ZIP at zip_path, extract it into destination, put the package's files sent
    by content (core/contents.py) beside its own (`fetch` writes one to its path, as declared),
    and read its contract files (sha256: the ZIP's, when it was hashed on its way to disk)."""
    size = zip_path.stat().st_size
    if size > settings.max_package_bytes:
        raise PackageError(
            f"The ZIP is {size} bytes; the limit is {settings.max_package_bytes} bytes"
        )
    try:
        with zipfile.ZipFile(zip_path) as archive:
            entries = check_entries(archive.infolist(), content_files)
            digests = extract(archive, entries, destination)
    except zipfile.BadZipFile as error:
        raise PackageError(f"The upload is not a valid ZIP archive ({error})") from None
    files = {entry.filename: (is_executable(entry), digests[entry.filename]) for entry in entries}
    for declared in content_files:
        assert fetch is not None, "a package with files sent by content needs a fetch"
        target = destination.joinpath(*declared["path"].split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        fetch(declared, target)
        files[declared["path"]] = (declared["executable"], declared["sha256"])
    check_predict_source(destination)
    return Package(
        root=destination,
        sha256=sha256 or sha256_file(zip_path),
        contents_sha256=contents_digest(files),
        requirements=_read_requirements(destination),
        config=_read_config(destination),
        file_sha256={name: digest for name, (_, digest) in files.items()},
    )


def contents_digest(files: dict[str, tuple[bool, str]]) -> str:
    """The package's files in name order, each as its name, executable bit and bytes (their
    sha256; `files` maps a name to both): the same files zipped again, with other timestamps,
    order or compression, or sent by content, give the same digest."""
    digest = hashlib.sha256()
    for name in sorted(files):
        executable, sha256 = files[name]
        digest.update(f"{name}\0{int(executable)}\0{sha256}\n".encode())
    return digest.hexdigest()


def is_executable(entry: zipfile.ZipInfo) -> bool:
    return bool((entry.external_attr >> 16) & 0o111)


def check_entries(
    entries: list[zipfile.ZipInfo], content_files: Sequence[ContentFile] = ()
) -> list[zipfile.ZipInfo]:
    """The regular-file entries, after every limit and name rule is checked, on them and on the
    files sent by content beside them."""
    if len(entries) + len(content_files) > settings.package_max_entries:
        raise PackageError(
            f"The package has {len(entries) + len(content_files)} files and folders; the limit "
            f"is {settings.package_max_entries}"
        )
    seen: set[str] = set()
    files = []
    total = 0
    for entry in entries:
        # orig_filename keeps what zipfile cuts off at a NUL byte.
        check_name(entry.orig_filename)
        _check_entry_type(entry)
        key = entry.filename.rstrip("/")
        if key in seen:
            raise PackageError(f"The ZIP has the name {entry.filename!r} more than once")
        seen.add(key)
        if entry.is_dir():
            continue
        _check_file_size(entry.filename, entry.file_size)
        _check_compression(entry)
        total += entry.file_size
        files.append(entry)
    total += _check_content_files(content_files, seen, {entry.filename for entry in files})
    if total > settings.package_max_unpacked_bytes:
        raise PackageError(
            f"The package unpacks to {total} bytes; the limit is "
            f"{settings.package_max_unpacked_bytes}"
        )
    names = {entry.filename for entry in files} | {each["path"] for each in content_files}
    if PREDICT_FILE not in names:
        nested = sorted(name for name in names if name.endswith("/" + PREDICT_FILE))
        hint = f" (found {nested[0]}: zip the folder's contents, not the folder)" if nested else ""
        raise PackageError(f"The ZIP has no {PREDICT_FILE} at its root{hint}")
    return files


def _check_content_files(
    content_files: Sequence[ContentFile], names: set[str], zip_files: set[str]
) -> int:
    """Checks the files sent by content against the rules and the ZIP's names (names holds
    every one, files and folders, and gets theirs); their total size."""
    total = 0
    declared = {each["path"] for each in content_files}
    for each in content_files:
        path = each["path"]
        problem = path_problem(path)
        if problem:
            raise PackageError(f"The file {path!r} sent by content {problem}")
        if path in names:
            raise PackageError(f"{path} is both in the ZIP and sent by content: send it once")
        names.add(path)
        if any(parent in zip_files or parent in declared for parent in _parents(path)):
            raise PackageError(f"{path} is inside a file of the package: rename one of them")
        _check_file_size(path, each["size"])
        total += each["size"]
    folders = {parent for name in names for parent in _parents(name)}
    for path in sorted(declared & folders):
        raise PackageError(f"{path} is both a file and a folder in the package: rename one")
    return total


def check_name(name: str) -> None:
    problem = path_problem(name)
    if problem:
        raise PackageError(f"The ZIP entry {name!r} {problem}")


def _check_entry_type(entry: zipfile.ZipInfo) -> None:
    if entry.flag_bits & 0x1:
        raise PackageError(f"The ZIP entry {entry.filename!r} is encrypted")
    mode = entry.external_attr >> 16
    if stat.S_IFMT(mode) not in _ALLOWED_MODES:
        raise PackageError(
            f"The ZIP entry {entry.filename!r} is not a regular file or folder "
            "(symlinks and devices are not allowed)"
        )


def _parents(path: str) -> list[str]:
    """The folders a path in the package is in: "a", "a/b" for "a/b/c"."""
    parts = path.rstrip("/").split("/")
    return ["/".join(parts[:end]) for end in range(1, len(parts))]


def _check_file_size(name: str, size: int) -> None:
    if size > settings.package_max_file_bytes:
        raise PackageError(
            f"{name} is {size} bytes; the limit for one file is {settings.package_max_file_bytes}"
        )


def _check_compression(entry: zipfile.ZipInfo) -> None:
    ratio = entry.file_size / max(entry.compress_size, 1)
    if entry.file_size > 1024**2 and ratio > settings.package_max_compression_ratio:
        raise PackageError(
            f"{entry.filename} is compressed {ratio:.0f} to 1; the limit is "
            f"{settings.package_max_compression_ratio} to 1 (this looks like a zip bomb)"
        )


def extract(
    archive: zipfile.ZipFile, files: list[zipfile.ZipInfo], destination: Path
) -> dict[str, str]:
    """Write the entries as regular files under destination, never more than they declared;
    each one's sha256, by name, hashed on the way (a file of gigabytes is read once)."""
    digests = {}
    for entry in files:
        target = destination.joinpath(*entry.filename.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        reader = _BoundedReader(archive.open(entry), entry)
        with reader.source, target.open("xb") as sink:
            shutil.copyfileobj(reader, sink, _COPY_BYTES)
        digests[entry.filename] = reader.hash.hexdigest()
        if is_executable(entry):  # the image holds it so (core/context.py)
            target.chmod(0o755)
    return digests


class _BoundedReader:
    """A reader that hashes what it reads and fails once more bytes come out than the entry
    declared."""

    def __init__(self, source, entry: zipfile.ZipInfo) -> None:
        self.source, self.entry, self.seen = source, entry, 0
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.source.read(size)
        self.seen += len(chunk)
        if self.seen > self.entry.file_size:
            raise PackageError(f"{self.entry.filename} holds more data than the ZIP declares")
        self.hash.update(chunk)
        return chunk


def _read_requirements(root: Path) -> list[str]:
    path = root / REQUIREMENTS_FILE
    if not path.exists():
        return []
    try:
        return parse_requirements(_read_text(path))
    except RequirementsError as error:
        raise PackageError(str(error)) from None


def _read_config(root: Path) -> ModelConfig:
    path = root / CONFIG_FILE
    if not path.exists():
        return ModelConfig()
    try:
        data = yaml.safe_load(_read_text(path)) or {}
        return ModelConfig.model_validate(data)
    except yaml.YAMLError as error:
        raise PackageError(f"{CONFIG_FILE} is not valid YAML: {error}") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in error.errors()
        )
        raise PackageError(f"{CONFIG_FILE} is invalid: {problems}") from None


def check_predict_source(root: Path) -> None:
    """Compile predict.py without running it, so a syntax error is reported before a build."""
    source = (root / PREDICT_FILE).read_bytes()
    try:
        compile(source, PREDICT_FILE, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        where = f" at line {error.lineno}" if getattr(error, "lineno", None) else ""
        raise PackageError(f"{PREDICT_FILE} is not valid Python{where}: {error}") from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PackageError(f"{path.name} is not UTF-8 text") from None
