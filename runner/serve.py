"""Serve mode: the model stays loaded and answers framed requests until stdin closes.

Standard library only; the frames are described in runner/protocol.py. Before each request the
input folder and /output are emptied, so nothing of one request is seen by the next
but what the model keeps in its own memory (which is why the worker never shares a warm
container between users).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from runner import protocol
from runner.__main__ import INPUT_DIR, OUTPUT_DIR, Failure, archive_outputs, record_of, run_once

CHUNK = 1 << 20


def serve(predict, requests, replies, log_limit: int) -> None:
    """Answers every request frame read from `requests` with two frames on `replies`."""
    with tempfile.TemporaryFile(dir="/tmp") as log:
        while (
            header := protocol.decode_header(requests.readline(protocol.FRAME_HEADER_MAX))
        ) is not None:
            input_path = _receive(requests, header)
            _empty(OUTPUT_DIR)
            log.seek(0)
            log.truncate()
            exit_code, error = _run_logged(predict, input_path, log)
            log.seek(max(0, log.seek(0, os.SEEK_END) - log_limit))
            log_frame = _frame(log.read(), kind="log")
            archive = b""
            if exit_code == protocol.EXIT_OK:
                try:
                    archive = archive_outputs()
                except OSError as failure:
                    exit_code = protocol.EXIT_OUTPUT_FAILED
                    error = record_of(Failure("output", exit_code, failure))
            # Both frames in one write: one pass through the engine's attach stream.
            replies.write(log_frame + _frame(archive, kind="result", exit=exit_code, error=error))
            replies.flush()


def _receive(requests, header: dict) -> Path:
    """Writes the request's input into a fresh input folder, read-only for the model."""
    INPUT_DIR.mkdir(parents=True, exist_ok=True)
    INPUT_DIR.chmod(0o755)
    _empty(INPUT_DIR)
    path = INPUT_DIR / Path(str(header.get("input_name", "input"))).name
    remaining = header["size"]
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444), "wb") as target:
        while remaining:
            chunk = requests.read(min(CHUNK, remaining))
            if not chunk:
                raise protocol.FramingError("the input ended before its size")
            target.write(chunk)
            remaining -= len(chunk)
    INPUT_DIR.chmod(0o555)
    return path


def _empty(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _run_logged(predict, input_path: Path, log) -> tuple[int, dict | None]:
    """Runs the model once with its fd 1 and fd 2 (and sys.stdout/err) going to `log`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        run_once(predict, input_path, OUTPUT_DIR)
        return protocol.EXIT_OK, None
    except Failure as failure:
        return failure.exit_code, record_of(failure)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.dup2(saved, 1)
        os.close(saved)


def _frame(payload: bytes, **fields: object) -> bytes:
    return protocol.encode_header(**fields, size=len(payload)) + payload
