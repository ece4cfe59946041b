"""The pure logic behind synchronous, batch and canceled jobs: the Prefer header, the body's
one way of giving inputs, waiting on end notices, a batch's windows, and the cancel
handshake."""

import asyncio
import json
import threading
import uuid

import pytest
from fastapi import HTTPException
from pydantic import ValidationError

from api import waiting
from api.schemas import JobCreate, JobPublic
from api.waiting import MAX_WAIT_S, wait_preference
from core.events import ENDED_FIELDS
from workers.run.batch import WINDOW_BYTES, WINDOW_ITEMS, _Todo
from workers.run.cancels import Watch

VERSION = "7f0c8f0e-4a43-4f5e-9e1d-2b8b3f9c7e11"


@pytest.mark.parametrize(
    "header, seconds",
    [
        (None, None),
        ("wait", MAX_WAIT_S),
        ("wait=5", 5),
        (" WAIT = 7 ", 7),
        ("respond-async, wait=3", 3),
        ("wait=600", MAX_WAIT_S),
        ("return=minimal", None),
    ],
)
def test_prefer_wait_is_read_and_capped(header, seconds):
    assert asyncio.run(wait_preference(header)) == seconds


@pytest.mark.parametrize("header", ["wait=soon", "wait=-1", "wait=1.5"])
def test_a_wait_preference_that_makes_no_sense_is_refused(header):
    with pytest.raises(HTTPException) as refused:
        asyncio.run(wait_preference(header))
    assert refused.value.status_code == 400


@pytest.mark.parametrize(
    "ways",
    [
        {"input": {"name": "a", "data": ""}, "batch_size": 2},
        {"input": None, "batch": [{"name": "a", "data": ""}]},
        {"batch": [{"name": "a", "data": ""}], "batch_size": 1},
    ],
)
def test_a_job_gives_its_inputs_one_way_only(ways):
    with pytest.raises(ValidationError, match="at most one of"):
        JobCreate.model_validate({"version_id": VERSION, **ways})
    assert JobCreate.model_validate({"version_id": VERSION, "batch_size": 2}).batch_size == 2


def test_windows_are_bounded_by_items_and_bytes_and_take_back_what_did_not_run():
    small = [{"size": 10}] * (WINDOW_ITEMS + 5)
    todo = _Todo(list(range(len(small))), small)
    first = todo.take()
    assert first == list(range(WINDOW_ITEMS))
    todo.put_back(first[3:])  # the container timed out on item 2
    assert todo.take() == list(range(3, WINDOW_ITEMS + 3))
    todo.put_back([5, 6, 7], alone=True)  # it crashed answering one of 5..7: which one?
    assert [todo.take(), todo.take(), todo.take()] == [[5], [6], [7]]
    assert todo.take() == list(range(WINDOW_ITEMS + 3, WINDOW_ITEMS + 5))
    big = [{"size": WINDOW_BYTES}, {"size": 1}, {"size": WINDOW_BYTES + 1}]
    todo = _Todo([0, 1, 2], big)
    assert [todo.take(), todo.take(), todo.take(), todo.take()] == [[0], [1], [2], []]


def test_a_cancel_kills_what_runs_now_or_what_starts_after_it():
    kills = []
    watch = Watch()
    with watch.running(lambda: kills.append("first")):
        watch.cancel()
    assert kills == ["first"] and watch.canceled
    with watch.running(lambda: kills.append("late")):  # started after the cancel
        assert kills == ["first", "late"]  # killed on entry, not at the end
    idle = Watch()
    idle.cancel()  # nothing running: only the flag
    assert idle.canceled


def test_cancel_and_start_racing_always_kill():
    for _ in range(200):
        kills, watch = [], Watch()
        racer = threading.Thread(target=watch.cancel)
        racer.start()
        with watch.running(lambda kills=kills: kills.append(1)):
            racer.join()
        assert kills == [1]


def test_an_end_notice_carries_every_field_of_a_job():
    assert set(JobPublic.model_fields) <= set(ENDED_FIELDS)


def _wait(job_id: str, job: dict, seconds: int = 5) -> tuple[dict, int]:
    """until_ended on plain dicts: the job it returns, and how many times it read the row."""
    reads = []

    async def read() -> dict:
        reads.append(1)
        return {"status": "SUCCEEDED", "from": "read"}

    async def wait() -> dict:
        return await waiting.until_ended(
            uuid.UUID(job_id), seconds, job, read, noticed=dict,
            ended=lambda found: found["status"] == "SUCCEEDED",
        )  # fmt: skip

    return asyncio.run(wait()), len(reads)


def _notice(job_id: str, fields: dict | None) -> bytes:
    return json.dumps({"id": job_id, "job": fields}).encode()


def test_a_job_that_ended_before_its_wait_began_is_answered_from_its_notice():
    job_id = str(uuid.uuid4())
    waiting._wake(_notice(job_id, {"status": "SUCCEEDED", "from": "notice"}))
    assert _wait(job_id, {"status": "QUEUED"}) == ({"status": "SUCCEEDED", "from": "notice"}, 0)


def test_a_notice_without_the_job_has_the_row_read():
    job_id = str(uuid.uuid4())
    waiting._wake(_notice(job_id, None))  # a sender without the row
    assert _wait(job_id, {"status": "QUEUED"}) == ({"status": "SUCCEEDED", "from": "read"}, 1)


def test_without_a_notice_the_wait_ends_on_time_without_reading_at_first():
    job, reads = _wait(str(uuid.uuid4()), {"status": "QUEUED"}, seconds=0)
    assert (job, reads) == ({"status": "QUEUED"}, 0)


@pytest.mark.parametrize("message", [b"not json", b"[1, 2]", b'{"id": "x"}', b"\xff"])
def test_a_notice_that_is_not_one_is_ignored(message):
    before = dict(waiting._ended)
    waiting._wake(message)  # does not raise: the process's one listener goes on
    assert waiting._ended == before
