"""Batch jobs: one prediction per item, in order, through warm containers of the job's key.

An item that fails (an exception, out of memory, its own timeout) fails only that item; its
container is discarded as for any failed request, and the next items get a fresh one. Items run
on as many containers at once as the worker has job slots, a window of them at a time per
container: their requests are sent together and answered in order (WarmContainer.predict_all).
The runner may hold a window's answers for a few milliseconds to send them together, so when a
container crashes (out of memory, a killed process) the unanswered items of its window go back
to run one per window, and the crash is pinned on the item that causes it again; a timeout is
pinned at once (held answers leave well within it). When an item merely raised, the rest of
its window still ran on that container (the same user's, the same job's) before it is
discarded. Outcomes are written to job_items a few hundred at a time, with the job's counters,
so a restarted attempt goes on from the items already recorded. The job ends SUCCEEDED once
every item has run.
"""

import tempfile
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import insert, select, update

from core.db import session_scope
from core.lifecycle import JobStatus
from core.models import Job, JobItem
from core.queue import INFERENCE_QUEUE
from core.settings import settings
from core.storage import BATCH_ITEMS_FOLDER, Storage
from workers.retry import with_retries
from workers.run import failures, sandbox
from workers.run.cancels import Watch
from workers.run.outputs import RESULT_FILE, OutputError, inline_result
from workers.run.predict import Sandboxed, predict_all
from workers.run.request import RunnerRequest
from workers.run.transfer import download_input, store_outputs
from workers.workdirs import work_dir

# Item outcomes are written when this many are waiting, or this long after the last write.
FLUSH_ITEMS = 200
FLUSH_S = 0.5
WINDOW_ITEMS = 16
WINDOW_BYTES = 64 * 1024


def run(
    where: Sandboxed, items: list[dict], done: set[int], inline: bytes | None, storage: Storage,
    watch: Watch,
) -> dict:  # fmt: skip
    """Runs the items not yet done; the job's outcome as the fields of its final row."""
    with tempfile.TemporaryDirectory(dir=work_dir(INFERENCE_QUEUE)) as scratch:
        sources = _sources(storage, items, inline, Path(scratch))
        recorder = _Recorder(where.job_id)
        todo = _Todo([index for index in range(len(items)) if index not in done], items)

        def run_windows() -> None:
            while not watch.canceled and (window := todo.take()):
                requests = [_cut(sources, items[i], Path(scratch) / f"item-{i}") for i in window]
                results = with_retries(
                    predict_all, where, requests, watch, give_up=lambda: watch.canceled
                )
                crashed = len(window) > 1 and _crashed(results[-1])
                if crashed:  # answers held before the crash may be lost with it
                    results.pop()
                for index, result in zip(window, results, strict=False):
                    recorder.add(_item_outcome(where, storage, index, result))
                todo.put_back(window[len(results) :], alone=crashed)
                for request in requests:
                    for part in request.parts:
                        if isinstance(part, Path):
                            part.unlink()

        slots = max(1, min(settings.inference_concurrency, len(todo.indexes)))
        try:
            with ThreadPoolExecutor(slots, thread_name_prefix=f"batch-{where.job_id}") as pool:
                for each in [pool.submit(run_windows) for _ in range(slots)]:
                    each.result()
        finally:  # also after a failure: the items run so far are recorded, the writer ends
            recorder.close()
    return {"status": JobStatus.SUCCEEDED, "outputs": _all_outputs(where.job_id)}


def _crashed(result: sandbox.RunResult) -> bool:
    """Whether the container died on its own (not killed for a timeout, which the runner's
    held answers never outlast: runner/serve.py sends them within milliseconds)."""
    return result.container_died and not result.timed_out


class _Todo:
    """The items still to run, handed out in windows: up to WINDOW_ITEMS items whose inputs
    add up to at most WINDOW_BYTES (one item at least), so that a window's requests fit in the
    attach stream's buffers while the runner answers them. Items put back `alone` (those of a
    window whose container crashed: which one did it is not known) run one per window, so
    that a crash is pinned on its own item."""

    def __init__(self, indexes: list[int], items: list[dict]) -> None:
        self.indexes, self.items, self.lock = deque(indexes), items, threading.Lock()
        self.alone: set[int] = set()

    def take(self) -> list[int]:
        window, size = [], 0
        with self.lock:
            while self.indexes and len(window) < WINDOW_ITEMS:
                index = self.indexes[0]
                size += self.items[index]["size"]
                if window and (size > WINDOW_BYTES or index in self.alone):
                    break
                window.append(self.indexes.popleft())
                if index in self.alone:
                    break
        return window

    def put_back(self, indexes: list[int], *, alone: bool = False) -> None:
        with self.lock:
            self.indexes.extendleft(reversed(indexes))
            if alone:
                self.alone.update(indexes)


def _sources(
    storage: Storage, items: list[dict], inline: bytes | None, scratch: Path
) -> dict[str | None, bytes | Path]:
    """What the items are cut from: the inline items' bytes (key None), and each uploaded
    item's sealed object, downloaded once."""
    sizes: dict[str | None, int] = {}
    for item in items:
        if "inputs" not in item:  # a typed item's files are all inline
            sizes[item["key"]] = max(sizes.get(item["key"], 0), item["offset"] + item["size"])
    sources: dict[str | None, bytes | Path] = {None: inline or b""}
    for number, (key, size) in enumerate(sizes.items()):
        if key is not None:
            sources[key] = scratch / f"source-{number}"
            with_retries(download_input, storage, {"key": key, "size": size}, sources[key])
    return sources


def _cut(sources: dict[str | None, bytes | Path], item: dict, path: Path) -> RunnerRequest:
    """The item's request: its input's bytes when small, else a file of its own at path; a
    typed item's, its inline files' bytes."""
    if "inputs" in item:
        inline = sources[None]
        return RunnerRequest.of_inputs(
            item["inputs"], lambda _, file: inline[file["offset"] : file["offset"] + file["size"]]
        )
    source, start, size = sources[item["key"]], item["offset"], item["size"]
    if isinstance(source, bytes):
        return RunnerRequest.of_file(item["name"], source[start : start + size])
    with source.open("rb") as opened:
        opened.seek(start)
        if size <= WINDOW_BYTES:
            return RunnerRequest.of_file(item["name"], opened.read(size))
        with path.open("wb") as target:
            while remaining := size - target.tell():
                target.write(opened.read(min(remaining, 1 << 20)))
    return RunnerRequest.of_file(item["name"], path)


def _item_outcome(
    where: Sandboxed, storage: Storage, index: int, result: sandbox.RunResult
) -> dict:
    """The item's row in job_items, as column values."""
    limits = where.limits
    ran = {"job_id": where.job_id, "index": index, "run_seconds": result.seconds}
    failure = failures.job_failure(result, limits)
    if failure is None:
        try:
            files = result.output_files(limits.output_mb * 1024**2)
        except OutputError as error:
            failure = str(error)
    if failure is not None:
        return {**ran, "status": JobStatus.FAILED, "error": failure, "result": None, "outputs": []}
    result_json = inline_result(files)
    if result_json is not None:
        files.pop(RESULT_FILE)  # the item's result.json is its inline result
    stored = with_retries(store_outputs, storage, where, files, item=index)
    outputs = [{**each, "name": f"{BATCH_ITEMS_FOLDER}/{index}/{each['name']}"} for each in stored]
    return {**ran, "status": JobStatus.SUCCEEDED, "error": None, "result": result_json,
            "outputs": outputs}  # fmt: skip


class _Recorder:
    """Writes item outcomes and the job's counters in groups, in a thread of its own (one
    write at a time, in order), so that the windows' threads go on feeding their containers
    while a group is written."""

    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id, self.waiting, self.written_at = job_id, [], time.monotonic()
        self.lock = threading.Lock()
        self.writer = ThreadPoolExecutor(1, thread_name_prefix=f"items-{job_id}")
        self.writes: list[Future] = []

    def add(self, item: dict) -> None:
        with self.lock:
            self.waiting.append(item)
            if len(self.waiting) >= FLUSH_ITEMS or time.monotonic() - self.written_at > FLUSH_S:
                self._flush_locked()

    def close(self) -> None:
        """Writes what is waiting and returns once every group is written (raising the
        error of a group that could not be)."""
        with self.lock:
            self._flush_locked()
        self.writer.shutdown()
        for write in self.writes:
            write.result()

    def _flush_locked(self) -> None:
        for write in [write for write in self.writes if write.done()]:
            self.writes.remove(write)
            write.result()  # a group that could not be written fails the job now
        if self.waiting:
            self.writes.append(self.writer.submit(with_retries, _write, self.job_id, self.waiting))
        self.waiting, self.written_at = [], time.monotonic()


def _write(job_id: uuid.UUID, items: list[dict]) -> None:
    """Inserts the items' rows and counts them into the job; a row already there (written by a
    try whose answer was lost) is neither inserted nor counted twice, and a removed job gets
    none."""
    with session_scope() as session:
        # Locked, so that a removal of the job waits; a job removed already gets no rows.
        if session.scalar(select(Job.id).where(Job.id == job_id).with_for_update()) is None:
            return
        indexes = [item["index"] for item in items]
        present = set(
            session.scalars(
                select(JobItem.index).where(JobItem.job_id == job_id, JobItem.index.in_(indexes))
            )
        )
        new = [item for item in items if item["index"] not in present]
        if not new:
            return
        session.execute(insert(JobItem), new)
        failed = sum(item["status"] == JobStatus.FAILED for item in new)
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(items_done=Job.items_done + len(new), items_failed=Job.items_failed + failed)
        )


def _all_outputs(job_id: uuid.UUID) -> list[dict]:
    def read() -> list[dict]:
        with session_scope() as session:
            rows = session.scalars(
                select(JobItem.outputs).where(JobItem.job_id == job_id).order_by(JobItem.index)
            )
            return [entry for outputs in rows for entry in outputs or []]

    return with_retries(read)
