"""What the model prints while a warm runner answers one request (runner/serve.py): its fd 1
and fd 2 (and sys.stdout/err) go into a pipe whose bytes are sent live, up to LIVE_LOG_MAX,
while only the last `limit` of them are kept for the request's log frame: a model that prints
without end costs neither memory nor disk. Standard library only."""

import contextlib
import fcntl
import os
import select
import sys
import threading
import time

from runner import protocol

READ_BYTES = 1 << 20
PIPE_BYTES = 1 << 20
DRAIN_PAUSE_S = 0.01
LINGER_S = 1.0  # how long a child process of the model that still holds the pipe is heard
MIB = protocol.LIVE_LOG_MAX >> 20
CUT = f"\n[more than {MIB} MiB printed: the rest is in the job's log]\n".encode()


class Printed:
    def __init__(self, send_live, limit: int) -> None:
        self.send_live, self.limit = send_live, limit
        self.tail = bytearray()
        self.ended = threading.Event()

    def __enter__(self) -> "Printed":
        self.reading, writing = os.pipe()
        # Room for a burst of prints: fewer switches to the reading thread (costly under
        # gVisor); above the system's limit, the default size does.
        with contextlib.suppress(OSError):
            fcntl.fcntl(writing, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = os.dup(2)
        os.dup2(writing, 1)
        os.dup2(writing, 2)
        os.close(writing)
        os.set_blocking(self.reading, False)
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()
        return self

    def __exit__(self, *_: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.ended_at = time.monotonic()
        self.ended.set()  # first: the pump's pause ends, so the request's end costs no pause
        os.dup2(self.saved, 2)
        os.dup2(self.saved, 1)
        os.close(self.saved)
        self.pump.join()
        os.close(self.reading)

    def _pump(self) -> None:
        """Reads the pipe until its end (or LINGER_S after the request's), sending what came
        every LIVE_EVERY_S. It drains the pipe at most every DRAIN_PAUSE_S, not at each write:
        under gVisor a switch to this thread per print made printing ten times slower."""
        pending, sent, last_send = bytearray(), 0, time.monotonic()
        while not self._over():
            select.select([self.reading], [], [], protocol.LIVE_EVERY_S)
            self.ended.wait(DRAIN_PAUSE_S)
            data, open_ = self._drain()
            self.tail += data
            del self.tail[: max(0, len(self.tail) - self.limit)]
            room = protocol.LIVE_LOG_MAX - sent - len(pending)
            pending += data[: max(0, room)]
            if 0 <= room < len(data):  # the first bytes past the cap: say so, once
                pending += CUT
            if pending and (time.monotonic() - last_send >= protocol.LIVE_EVERY_S or not open_):
                sent, last_send = sent + len(pending), time.monotonic()
                self.send_live(bytes(pending))
                pending.clear()
            if not open_ or (not data and self.ended.is_set()):
                break
        if pending:
            self.send_live(bytes(pending))

    def _drain(self) -> tuple[bytes, bool]:
        """What the pipe holds now, and whether it is still open."""
        chunks = []
        try:
            while chunk := os.read(self.reading, READ_BYTES):
                chunks.append(chunk)
            return b"".join(chunks), False
        except BlockingIOError:
            return b"".join(chunks), True

    def _over(self) -> bool:
        return self.ended.is_set() and time.monotonic() - self.ended_at > LINGER_S
