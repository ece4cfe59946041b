"""A package's big files sent by their content, beside its ZIP: what makes a code-only change to
a model of gigabytes cost what changed.

The client declares each such file (its path in the package, size, sha256 and executable bit;
PUT /api/versions/{id}/files) and uploads, in parts, only the contents its owner does not have
in the store yet, each to a key named by the owner and the sha256 (content_key). The version
records the declarations (ModelVersion.content_files); the build puts each file in the package
beside the ZIP's, from the build host's copy (workers/build/contents.py) or from the store, and
hashes what it downloads: bytes that are not the declared sha256 fail the build and are removed,
so a content key only ever holds its content. Contents are per owner (no one learns what
another user has uploaded), and one no version of its owner names is removed by retention
(workers/retention.py).
"""

import re
import uuid
from typing import TypedDict

from core.multipart import Multipart

CONTENTS_PREFIX = "contents/"
# Files one package may send by content: each is an upload of its own, and clients send only
# big ones so (modelfarm push: over 64 MiB).
MAX_FILES = 1000
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\\]")
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


class ContentFile(TypedDict):
    path: str
    size: int
    sha256: str
    executable: bool


def content_key(owner_id: uuid.UUID, sha256: str) -> str:
    if not SHA256_HEX.match(sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    return f"{CONTENTS_PREFIX}{owner_id}/{sha256}"


def owner_and_sha256(key: str) -> tuple[uuid.UUID, str] | None:
    """The owner and sha256 a content key names; None for any other key."""
    owner, _, sha256 = key.removeprefix(CONTENTS_PREFIX).partition("/")
    try:
        return uuid.UUID(owner), sha256
    except ValueError:
        return None


def path_problem(name: str) -> str | None:
    """What is wrong with a file's path in a package (a ZIP entry's or a declared file's), as
    the end of a sentence; None when it is fine."""
    if not name or _UNSAFE_NAME.search(name):
        return "has a backslash or a control character in its name"
    if name.startswith("/") or _DRIVE_LETTER.match(name):
        return "has an absolute path"
    if any(part in ("", ".", "..") for part in name.rstrip("/").split("/")):
        return "has an empty, '.' or '..' path component"
    return None


def open_upload(multipart: Multipart, key: str) -> str | None:
    """The id of an open upload to key, the newest when two were started at once."""
    uploads = [(when, upload) for name, upload, when in multipart.open_uploads(key) if name == key]
    return max(uploads)[1] if uploads else None
