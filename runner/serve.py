"""Serve mode: the model stays loaded and answers framed requests until stdin closes.

Standard library only; the frames are described in runner/protocol.py. Before each request the
input folder is made anew and /output emptied, so nothing of one request is seen by the next
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
    while (
        header := protocol.decode_header(requests.readline(protocol.FRAME_HEADER_MAX))
    ) is not None:
        input_path = _receive(requests, header)
        _empty(OUTPUT_DIR)
        with tempfile.TemporaryFile(dir="/tmp") as log:
            exit_code, error = _run_logged(predict, input_path, log)
            log.seek(max(0, log.seek(0, os.SEEK_END) - log_limit))
            _send(replies, log.read(), kind="log")
        archive = b""
        if exit_code == protocol.EXIT_OK:
            try:
                archive = archive_outputs()
            except OSError as failure:
                exit_code = protocol.EXIT_OUTPUT_FAILED
                error = record_of(Failure("output", exit_code, failure))
        _send(replies, archive, kind="result", exit=exit_code, error=error)


def _receive(requests, header: dict) -> Path:
    """Writes the request's input into a fresh input folder, read-only for the model."""
    if INPUT_DIR.exists():
        INPUT_DIR.chmod(0o755)
        shutil.rmtree(INPUT_DIR)
    INPUT_DIR.mkdir(parents=True)
    path = INPUT_DIR / Path(str(header.get("input_name", "input"))).name
    remaining = header["size"]
    with path.open("wb") as target:
        while remaining:
            chunk = requests.read(min(CHUNK, remaining))
            if not chunk:
                raise protocol.FramingError("the input ended before its size")
            target.write(chunk)
            remaining -= len(chunk)
    path.chmod(0o444)
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


def _send(replies, payload: bytes, **fields: object) -> None:
    replies.write(protocol.encode_header(**fields, size=len(payload)))
    replies.write(payload)
    replies.flush()
