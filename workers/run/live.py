"""What a job shows while it runs (core/streams.py): the model's prints as log lines and a
streaming predict's chunks as output events, from a warm container's live frames
(runner/serve.py) or a one-shot container's own output, followed while it runs."""

import codecs
import json
import logging
import threading
import uuid

from core import streams
from runner import protocol

logger = logging.getLogger(__name__)


class Live:
    """One job's live events. A warm runner sends what the model prints as it prints it; one
    built before live logs sends it all at the end, which close() then shows."""

    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id = job_id
        self.lines = streams.LogLines("job", job_id)
        self.text = codecs.getincrementaldecoder("utf-8")("replace")
        self.printed = False
        self.chunks = 0

    def log(self, printed: bytes) -> None:
        self.printed = True
        self.lines(self.text.decode(printed))

    def output(self, chunk: bytes) -> None:
        try:
            streams.output("job", self.job_id, self.chunks, json.loads(chunk))
        except ValueError:  # the runner sends JSON; a model that broke it gets no event
            logger.warning("a chunk of job %s is not JSON", self.job_id)
        self.chunks += 1

    def close(self, final_log: str) -> None:
        if not self.printed and final_log:
            self.lines(final_log)
        self.lines(self.text.decode(b"", final=True))
        self.lines.close()


def follow(container, live: Live) -> threading.Thread:
    """Follows a one-shot container's stdout (each chunk line, runner/protocol.py) and stderr
    (what the model prints) into `live` until it exits, in a thread the caller joins."""
    stream = container.client.api.attach(
        container.id, stdout=True, stderr=True, stream=True, logs=True, demux=True
    )
    thread = threading.Thread(target=_forward, args=(stream, live), daemon=True)
    thread.start()
    return thread


def _forward(stream, live: Live) -> None:
    chunk_prefix, partial = protocol.CHUNK_PREFIX.encode(), b""
    try:
        for stdout, stderr in stream:
            if stderr:
                live.log(stderr)
            if stdout:
                *lines, partial = (partial + stdout).split(b"\n")
                for line in lines:
                    if line.startswith(chunk_prefix):
                        live.output(line[len(chunk_prefix) :])
    except Exception:  # live events are a view: the job's outcome never depends on them
        logger.warning("stopped following a sandbox's output", exc_info=True)
