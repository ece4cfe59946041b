"""Live events (issue 27): a version's build and a job as Server-Sent Events, received while
the work runs, resumed after any event with nothing lost or repeated, also once it ended."""

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import redis
from sqlalchemy.engine import make_url

from core import streams
from core.settings import settings
from modelfarm.errors import ApiError
from tests.integration import stack
from tests.utils import inline

SLOW = """import time

def predict(input_path, output_dir):
    time.sleep(2)
    return {"slept": 2}
"""


@pytest.fixture(scope="module")
def public_slow(new_user_module):
    """A READY public version whose jobs take two seconds, and its owner."""
    owner = new_user_module()
    model = owner.create_model(visibility="public")
    version = owner.build({"predict.py": SLOW}, model_id=model["id"])
    assert version["status"] == "READY", version["error"]
    return owner, version


def _received(farm, kind: str, row_id: str, after: str | None = None) -> list:
    """(the time each event came, the event) until done."""
    return [(time.time(), event) for event in farm.events(kind, row_id, after=after)]


def _ids(received: list) -> list[str]:
    return [event.id for _, event in received]


def _in_order(ids: list[str]) -> bool:
    numbers = [tuple(map(int, each.split("-"))) for each in ids]
    return numbers == sorted(set(numbers))


def _ended_at(row: dict) -> float:
    return datetime.fromisoformat(row["finished_at"]).timestamp()


def test_a_builds_log_lines_come_while_it_builds_then_done(new_user):
    farm = new_user()
    version = farm.start_build({"predict.py": f"# {uuid.uuid4()}\n{SLOW}"})
    received = _received(farm, "versions", version["id"])
    events = [event for _, event in received]
    assert [e.event for e in events].count("done") == 1 and events[-1].event == "done"
    assert [e.data["status"] for e in events if e.event == "status"] == [
        "QUEUED", "BUILDING", "READY",
    ]  # fmt: skip
    lines = [e.data for e in events if e.event == "log"]
    assert any(line["line"].startswith("Step 1/") for line in lines)
    assert all(datetime.fromisoformat(line["time"]) for line in lines)
    ended = farm.version(version["id"])
    assert events[-1].data["status"] == "READY" == ended["status"]
    assert events[-1].data["image_digest"] == ended["image_digest"]
    first_line_came = next(at for at, event in received if event.event == "log")
    assert first_line_came < _ended_at(ended)  # live, not after the end
    assert _in_order(_ids(received))


def test_a_jobs_events_resume_after_any_event_with_nothing_lost_or_twice(public_slow):
    owner, version = public_slow
    job = owner.submit(version["id"], input=inline("x")).json()["job"]
    received = _received(owner, "jobs", job["id"])
    events = [event for _, event in received]
    assert [e.data["status"] for e in events if e.event == "status"] == [
        "QUEUED", "RUNNING", "SUCCEEDED",
    ]  # fmt: skip
    running_came = next(at for at, e in received if e.data.get("status") == "RUNNING")
    assert running_came < _ended_at(events[-1].data)
    assert events[-1].event == "done" and events[-1].data["result"] == {"slept": 2}
    assert events[-1].data == owner.job(job["id"])
    ids = _ids(received)
    assert _in_order(ids)
    for middle in range(len(ids)):  # after each event: exactly the ones after it
        assert _ids(_received(owner, "jobs", job["id"], after=ids[middle])) == ids[middle + 1 :]
    by_query = owner.http.get(f"/api/jobs/{job['id']}/events", params={"last_event_id": ids[0]})
    assert by_query.status_code == 200
    assert by_query.headers["content-type"].startswith("text/event-stream")
    assert [line[4:] for line in by_query.text.splitlines() if line.startswith("id: ")] == ids[1:]


def test_once_its_events_expired_a_jobs_stream_shows_the_row(public_slow):
    owner, version = public_slow
    job = owner.submit(version["id"], input=inline("x"), headers={"Prefer": "wait"}).json()["job"]
    assert job["status"] == "SUCCEEDED"
    redis.Redis.from_url(settings.redis_url).delete(streams.key("job", job["id"]))
    events = [event for _, event in _received(owner, "jobs", job["id"])]
    assert [(e.event, e.id) for e in events] == [("status", "0-1"), ("done", "0-2")]
    assert events[-1].data == owner.job(job["id"])
    assert _received(owner, "jobs", job["id"], after="0-2") == []


def test_a_stream_nobody_reads_to_the_end_costs_the_job_nothing(public_slow):
    owner, version = public_slow
    job = owner.submit(version["id"], input=inline("x")).json()["job"]
    with owner.http.stream("GET", f"/api/jobs/{job['id']}/events") as response:
        assert response.status_code == 200
        next(response.iter_lines())  # the first event's first line, then the client goes
    assert owner.wait_job(job["id"])["status"] == "SUCCEEDED"


def test_who_may_read_the_events_and_what_is_refused(public_slow, new_user):
    owner, version = public_slow
    job = owner.submit(version["id"], input=inline("x")).json()["job"]
    stranger = new_user()
    with pytest.raises(ApiError) as refused:
        list(stranger.events("jobs", job["id"]))
    assert refused.value.status_code == 404
    # The version is public: anyone may follow its build.
    assert [e.event for e in stranger.events("versions", version["id"])][-1] == "done"
    anonymous = httpx.get(f"{owner.http.base_url}/api/jobs/{job['id']}/events")
    assert anonymous.status_code == 401
    forged = owner.http.get(f"/api/jobs/{job['id']}/events", headers={"Last-Event-ID": "x"})
    assert forged.status_code == 400
    assert "Last-Event-ID" in forged.json()["detail"]
    owner.wait_job(job["id"])


def test_a_revoked_token_gets_401_from_an_event_stream(public_slow):
    owner, version = public_slow
    token = owner.create_token("streams", scopes=["read"])
    owner.revoke_token(token["id"])
    revoked = httpx.get(
        f"{owner.http.base_url}/api/versions/{version['id']}/events",
        headers={"Authorization": f"Bearer {token['token']}"},
    )
    assert revoked.status_code == 401


STREAMS = 200
T = TypeVar("T")


def test_open_streams_hold_no_thread_and_no_database_connection(public_slow, tmp_path):
    """200 streams on one API process, on a job that waits for its upload (so they stay
    open), while sync jobs run through the same process."""
    owner, version = public_slow
    waiting = owner.http.post("/api/jobs", json={"version_id": version["id"]}).json()["job"]
    with stack.api_process(STREAMS_PORT, tmp_path / "api.log") as url:
        api = _pid_listening_on(STREAMS_PORT)
        before = _threads(api), _database_connections(api)

        def meanwhile() -> tuple:
            sync = httpx.post(
                f"{url}/api/jobs", json={"version_id": version["id"], "input": inline("x")},
                headers={"Authorization": f"Bearer {owner.token}", "Prefer": "wait=60"},
                timeout=90,
            )  # fmt: skip
            return (_threads(api), _database_connections(api)), sync

        opened, (during, sync) = with_streams(url, owner.token, waiting["id"], STREAMS, meanwhile)
    assert opened == STREAMS
    assert sync.status_code == 201 and sync.json()["job"]["status"] == "SUCCEEDED"
    assert during[0] - before[0] < 10, (before, during)  # threads: not one per stream
    assert during[1] - before[1] <= 2, (before, during)  # database connections: none per stream


STREAMS_PORT = 8018


def with_streams(url: str, token: str, job_id: str, count: int, work: Callable[[], T]):
    """work() run while `count` streams of the job's events are open on the API at url, each
    having received its first event: how many opened, and what work() gave (also make bench's)."""
    return asyncio.run(_with_streams(url, token, job_id, count, work))


async def _with_streams(url: str, token: str, job_id: str, count: int, work: Callable[[], T]):
    client = httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60,
        limits=httpx.Limits(max_connections=count + 10),
    )  # fmt: skip
    responses = []

    async def open_one() -> bool:
        request = client.build_request("GET", f"/api/jobs/{job_id}/events")
        responses.append(await client.send(request, stream=True))
        async for line in responses[-1].aiter_lines():
            return line.startswith("event: status")
        return False

    try:
        opened = sum(await asyncio.gather(*(open_one() for _ in range(count))))
        return opened, await asyncio.to_thread(work)
    finally:
        for response in responses:
            await response.aclose()
        await client.aclose()


def _pid_listening_on(port: int) -> int:
    found = subprocess.run(["ss", "-Htlnp", f"sport = :{port}"], capture_output=True, text=True)
    return int(found.stdout.split("pid=")[1].split(",")[0])


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("Threads:")[1].split()[0])


def _database_connections(pid: int) -> int:
    port = make_url(settings.database_url).port or 5432
    found = subprocess.run(["ss", "-Htnp", f"dport = :{port}"], capture_output=True, text=True)
    return sum(f"pid={pid}," in line for line in found.stdout.splitlines())
