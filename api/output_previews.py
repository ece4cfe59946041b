"""A job's output files as its page in the web UI shows them: each with its presigned URL (GET
/api/jobs/{id}/outputs's, on the object store's origin, served as a download: the UI's origin
never serves a model's bytes) and a preview by its kind. Images, audio and video are played by
the browser from that URL; CSV (its first rows, as a table), JSON (indented) and text are read
here, a few small ones per page, and shown escaped, never as HTML."""

import contextlib
import csv
import io
import json
from dataclasses import dataclass, field
from itertools import islice
from pathlib import PurePosixPath

from api.schemas import OutputFile
from core.storage import JOB_LOG_NAME, Storage

READ_MAX_BYTES = 256 * 1024  # a bigger text is a download alone
READ_PER_PAGE = 10  # texts read for one page, at most: the others are downloads alone
CSV_ROWS = 50  # rows shown under a CSV's header
_KINDS = {
    "image": {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".avif"},
    "audio": {".wav", ".mp3", ".ogg", ".oga", ".flac", ".m4a", ".opus"},
    "video": {".mp4", ".webm", ".ogv", ".mov"},
    "csv": {".csv"},
    "json": {".json"},
    "text": {".txt", ".log", ".md", ".yaml", ".yml", ".xml", ".html", ".svg", ".tsv", ".py"},
}
_READ_HERE = {"csv", "json", "text"}


@dataclass(frozen=True)
class ShownOutput:
    name: str
    size: int
    url: str
    kind: str | None  # a key of _KINDS; None: a download link alone
    text: str | None = None  # JSON, indented, or text
    rows: list[list[str]] = field(default_factory=list)  # a CSV's: its header first
    cut: bool = False  # a CSV's rows past CSV_ROWS are left out


def kind_of(name: str) -> str | None:
    """How an output is previewed, by its name's ending; None for the run's log, which the
    page shows as it is written."""
    if name == JOB_LOG_NAME:
        return None
    suffix = PurePosixPath(name).suffix.lower()
    return next((kind for kind, endings in _KINDS.items() if suffix in endings), None)


def shown(storage: Storage, listed: list[OutputFile], keys: dict[str, str]) -> list[ShownOutput]:
    """The listed outputs with their previews; `keys`: their object keys by name (the job's
    outputs), where the texts are read from."""
    found, reads = [], 0
    for each in listed:
        kind = kind_of(each.name)
        if kind not in _READ_HERE:
            found.append(ShownOutput(each.name, each.size, each.url, kind))
            continue
        readable = reads < READ_PER_PAGE and each.size <= READ_MAX_BYTES and each.name in keys
        reads += readable
        data = storage.get_bytes(keys[each.name]) if readable else None
        found.append(_read(each, kind, data))
    return found


def _read(output: OutputFile, kind: str, data: bytes | None) -> ShownOutput:
    """The output with its text's preview; a download alone when it was not read."""
    if data is None:
        return ShownOutput(output.name, output.size, output.url, None)
    text = data.decode("utf-8", "replace")
    if kind == "csv":
        try:
            rows = list(islice(csv.reader(io.StringIO(text, newline="")), CSV_ROWS + 2))
        except csv.Error:  # not CSV after all (a NUL, say): shown as text
            return ShownOutput(output.name, output.size, output.url, "text", text=text)
        return ShownOutput(output.name, output.size, output.url, "csv",
                           rows=rows[: CSV_ROWS + 1], cut=len(rows) > CSV_ROWS + 1)  # fmt: skip
    if kind == "json":
        with contextlib.suppress(ValueError):  # not JSON after all: shown as it is
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return ShownOutput(output.name, output.size, output.url, kind, text=text)
