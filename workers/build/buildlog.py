"""A log that is written to object storage while it grows, so users can read it mid-build,
and whose lines are live events (core/streams.py) as they are written."""

import logging
import time

from core.storage import Storage
from core.streams import LogLines
from workers.retry import with_retries

logger = logging.getLogger(__name__)

FLUSH_EVERY_S = 2.0
MAX_BYTES = 4 * 1024**2


class StreamingLog:
    """Collects text and re-uploads the whole object every few seconds (S3 has no append).

    Past MAX_BYTES only the start and the newest part are kept, which is what a user needs.
    """

    def __init__(self, storage: Storage, key: str, live: LogLines | None = None):
        self.storage, self.key = storage, key
        self.live = live
        self.head = ""
        self.tail = ""
        self.dropped = 0
        self.last_flush = 0.0

    def __call__(self, text: str) -> None:
        if self.live is not None:
            self.live(text)
        if len(self.head) < MAX_BYTES // 4:
            self.head += text
        else:
            self.tail += text
            if len(self.tail) > MAX_BYTES:
                cut = len(self.tail) - MAX_BYTES * 3 // 4
                self.dropped += cut
                self.tail = self.tail[cut:]
        if time.monotonic() - self.last_flush >= FLUSH_EVERY_S:
            try:
                self.flush()
            except Exception:  # object storage down: keep building; the next flush catches up
                logger.warning("could not write the build log %s; will try again", self.key)
                self.last_flush = time.monotonic()

    @property
    def text(self) -> str:
        gap = f"\n[... {self.dropped} characters left out ...]\n" if self.dropped else ""
        return self.head + gap + self.tail

    def flush(self) -> None:
        self.storage.put_bytes(self.key, self.text.encode(), "text/plain; charset=utf-8")
        self.last_flush = time.monotonic()

    def close(self) -> None:
        """The final write, retried; a log that cannot be written never fails the build."""
        if self.live is not None:
            self.live.close()
        try:
            with_retries(self.flush)
        except Exception:
            logger.exception("gave up writing the build log %s", self.key)


def step(log, plan, instruction, outcome: str) -> None:
    """One instruction of the Dockerfile (core/dockerfile.py's plan of it) in the build log, as
    the engine writes it, with what it came to: its time and whether it was reused."""
    log(f"Step {instruction.step}/{plan.steps} : {instruction.text}\n ---> {outcome}\n")
