"""core/streams.py's entries, with the Redis append replaced by a list."""

import uuid

import pytest

from core import streams
from core.lifecycle import JobStatus, VersionStatus


@pytest.fixture
def appended(monkeypatch) -> list:
    entries: list = []
    monkeypatch.setattr(streams, "_append", lambda kind, row_id, new: entries.extend(new))
    return entries


def test_a_line_is_sent_once_it_ends_and_the_rest_at_close(appended):
    lines = streams.LogLines("version", uuid.uuid4())
    lines("Step 1/3 : FROM base\n ---> ")
    lines("reused\nStep 2")
    assert [data["line"] for _, data in appended] == ["Step 1/3 : FROM base", " ---> reused"]
    lines.close()
    assert appended[-1][1]["line"] == "Step 2"
    assert {event for event, _ in appended} == {streams.LOG}


def test_past_the_cap_one_line_says_where_the_rest_is(appended, monkeypatch):
    monkeypatch.setattr(streams, "MAX_LOG_LINES", 10)
    lines = streams.LogLines("job", uuid.uuid4())
    lines("x\n" * 7)
    lines("y\n" * 7)
    lines("z\n" * 100)
    sent = [data["line"] for _, data in appended]
    assert sent[:10] == ["x"] * 7 + ["y"] * 3
    assert sent[10:] == ["[more than 10 lines: the rest is in the job's log]"]


def test_a_long_line_is_cut(appended):
    lines = streams.LogLines("job", uuid.uuid4())
    lines("a" * (streams.MAX_LINE_CHARS * 3) + "\n")
    assert appended[0][1]["line"] == "a" * streams.MAX_LINE_CHARS


@pytest.mark.parametrize(
    "status, events",
    [
        (JobStatus.RUNNING, [streams.STATUS]),
        (JobStatus.CANCELED, [streams.STATUS, streams.DONE]),
        (VersionStatus.BUILDING, [streams.STATUS]),
        (VersionStatus.READY, [streams.STATUS, streams.DONE]),
    ],
)
def test_an_end_is_followed_by_done_with_the_same_row(appended, status, events):
    row = {"id": uuid.uuid4(), "status": status}
    streams.status("job", row)
    assert [event for event, _ in appended] == events
    assert all(data is row for _, data in appended)
