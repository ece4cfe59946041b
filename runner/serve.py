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
import threading
import time
from pathlib import Path

from runner import protocol
from runner.__main__ import (
    INPUT_DIR,
    OUTPUT_DIR,
    Failure,
    Model,
    archive_outputs,
    receive,
    record_of,
    run_once,
)

HOLD_S = 0.01
HOLD_BYTES = 1 << 16


def serve(model: Model, requests, replies, log_limit: int) -> None:
    """Answers every request frame read from `requests` with two frames on `replies`."""
    outgoing = _Replies(replies)
    with tempfile.TemporaryFile(dir="/tmp") as log:
        while (
            header := protocol.decode_header(requests.readline(protocol.FRAME_HEADER_MAX))
        ) is not None:
            INPUT_DIR.mkdir(parents=True, exist_ok=True)
            _empty(INPUT_DIR)
            request = receive(requests, header, header["size"])
            outgoing.send(_answer(model, request, log, log_limit), more=bool(header.get("more")))


def _answer(model: Model, request: tuple[dict, dict], log, log_limit: int) -> bytes:
    """The log and result frames of one request, run with /output emptied and `log` anew."""
    _empty(OUTPUT_DIR)
    log.seek(0)
    log.truncate()
    exit_code, error = _run_logged(model, request, log)
    log.seek(max(0, log.seek(0, os.SEEK_END) - log_limit))
    log_frame = _frame(log.read(), kind="log")
    archive = b""
    if exit_code == protocol.EXIT_OK:
        try:
            archive = archive_outputs()
        except OSError as failure:
            exit_code = protocol.EXIT_OUTPUT_FAILED
            error = record_of(Failure("output", exit_code, failure))
    return log_frame + _frame(archive, kind="result", exit=exit_code, error=error)


class _Replies:
    """Answers on their way to the worker. While the worker says that more requests follow
    (a batch window, sent at once), answers are held and leave together: every write is a
    pass through the engine's attach stream, which costs more than the answer's bytes. A held
    answer leaves within HOLD_S whatever the next request does (a thread sends it), so a
    request that hangs is never taken for the one before it."""

    def __init__(self, stream) -> None:
        self.stream, self.held, self.since = stream, bytearray(), None
        self.changed = threading.Condition()
        threading.Thread(target=self._send_late, daemon=True).start()

    def send(self, frames: bytes, *, more: bool) -> None:
        with self.changed:
            self.held += frames
            if not more or len(self.held) >= HOLD_BYTES:
                self._write_locked()
            elif self.since is None:
                self.since = time.monotonic()
                self.changed.notify()

    def _write_locked(self) -> None:
        self.stream.write(self.held)
        self.stream.flush()
        self.held.clear()
        self.since = None

    def _send_late(self) -> None:
        with self.changed:
            while True:
                if self.since is None:
                    self.changed.wait()
                elif (left := self.since + HOLD_S - time.monotonic()) > 0:
                    self.changed.wait(left)
                else:
                    try:
                        self._write_locked()
                    except OSError:  # the worker is gone; the main loop ends at stdin's end
                        return


def _empty(folder: Path) -> None:
    folder.chmod(0o755)
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            entry.chmod(0o755)  # an input's folder is read-only for the model
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _run_logged(model: Model, request: tuple[dict, dict], log) -> tuple[int, dict | None]:
    """Runs the model once with its fd 1 and fd 2 (and sys.stdout/err) going to `log`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        run_once(model, request, OUTPUT_DIR)
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
