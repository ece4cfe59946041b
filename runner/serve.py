"""Serve mode: the model stays loaded and answers framed requests until stdin closes.

Standard library only; the frames are described in runner/protocol.py. Before each request the
input folder and /output are emptied, so nothing of one request is seen by the next
but what the model keeps in its own memory (which is why the worker never shares a warm
container between users).
"""

import shutil
import sys
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
from runner.printed import Printed

HOLD_S = 0.01
HOLD_BYTES = 1 << 16


def serve(model: Model, requests, replies, log_limit: int) -> None:
    """Answers every request frame read from `requests` with its frames on `replies`."""
    outgoing = _Replies(replies)
    # Line by line, so that a print reaches the pipe (and is sent live) when it is made.
    sys.stdout.reconfigure(line_buffering=True)
    while (
        header := protocol.decode_header(requests.readline(protocol.FRAME_HEADER_MAX))
    ) is not None:
        INPUT_DIR.mkdir(parents=True, exist_ok=True)
        _empty(INPUT_DIR)
        request = receive(requests, header, header["size"])
        answer = _answer(model, request, outgoing, log_limit)
        outgoing.send(answer, more=bool(header.get("more")))


def _answer(model: Model, request: tuple[dict, dict], outgoing, log_limit: int) -> bytes:
    """The log and result frames of one request, run with /output emptied; what it prints
    and yields is sent while it runs (runner/printed.py)."""
    _empty(OUTPUT_DIR)
    with Printed(outgoing.printed, log_limit) as printed:
        exit_code, error = _run(model, request, outgoing.chunk)
    log_frame = _frame(bytes(printed.tail), kind="log")
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

    def chunk(self, data: bytes) -> None:
        """One chunk a streaming predict yielded, sent at once."""
        self.send(_frame(data, kind="output"), more=False)

    def printed(self, data: bytes) -> None:
        """What the model printed lately, sent at once."""
        self.send(_frame(data, kind="log", live=True), more=False)

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


def _run(model: Model, request: tuple[dict, dict], emit) -> tuple[int, dict | None]:
    try:
        run_once(model, request, OUTPUT_DIR, emit)
        return protocol.EXIT_OK, None
    except Failure as failure:
        return failure.exit_code, record_of(failure)


def _frame(payload: bytes, **fields: object) -> bytes:
    return protocol.encode_header(**fields, size=len(payload)) + payload
