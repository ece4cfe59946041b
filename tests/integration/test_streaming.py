"""Streaming predict and live model logs (issue 27): a model's prints and yielded chunks reach
the job's event stream as they happen, on warm and one-shot containers, and the job's result
holds every chunk; a model that prints without end is cut, and its job goes on."""

import json
import subprocess
import time
import uuid

import httpx_sse
import pytest
import redis

from core import streams
from core.inputs import STREAM_MARK
from core.settings import settings
from tests.integration import stack
from tests.integration.test_cli import MODELFARM, logged_in
from tests.utils import API_URL
from workers.run.cancels import Watch
from workers.run.live import Live
from workers.run.predict import Sandboxed, predict
from workers.run.request import RunnerRequest
from workers.run.sandbox import Limits

STREAMING = """import sys
import time
from pathlib import Path

def predict(words: int = 5, output_dir: Path = None):
    for number in range(words):
        print(f"word {number}")
        yield f"w{number} "
        time.sleep(0.3)
    print("all said", file=sys.stderr)
"""
CHATTY = """def predict(megabytes: int = 100):
    line = "x" * 1023
    for _ in range(megabytes * 1024):
        print(line)
    return {"printed_mb": megabytes}
"""


@pytest.fixture(scope="module")
def streaming(new_user_module):
    owner = new_user_module()
    return owner, owner.ready({"predict.py": STREAMING})


def _events_of(farm, job_id: str) -> list:
    return [(time.monotonic(), event) for event in farm.events("jobs", job_id)]


def test_chunks_and_prints_come_as_they_happen_and_the_result_holds_them(streaming):
    owner, version = streaming
    assert version["input_schema"][STREAM_MARK] is True
    job = owner.submit(version["id"], inputs={"words": 5}).json()["job"]
    received = _events_of(owner, job["id"])
    outputs = [(at, e.data) for at, e in received if e.event == "output"]
    assert [data for _, data in outputs] == [
        {"index": n, "chunk": f"w{n} "} for n in range(5)
    ]  # fmt: skip
    done_at = received[-1][0]
    assert done_at - outputs[0][0] > 1.0  # the first chunk came well before the end
    assert outputs[-1][0] - outputs[0][0] > 0.8  # spread over the run, not in one burst
    lines = [e.data["line"] for _, e in received if e.event == "log"]
    assert lines == [f"word {n}" for n in range(5)] + ["all said"]
    ended = owner.job(job["id"])
    assert ended["status"] == "SUCCEEDED"
    chunks = [f"w{n} " for n in range(5)]
    assert ended["result"] == {"chunks": chunks, "text": "".join(chunks)}
    assert received[-1][1].data == ended


def test_a_one_shot_container_streams_too(streaming, monkeypatch):
    _, version = streaming
    monkeypatch.setattr(settings, "warm_enabled", False)
    job_id = uuid.uuid4()
    where = Sandboxed(job_id, uuid.uuid4(), version["image_ref"], Limits.for_model(None), 1)
    live = Live(job_id)
    result = predict(where, RunnerRequest.typed({"words": 4}, []), Watch(), live)
    live.close(result.stderr_tail)
    assert result.exit_code == 0, result.stderr_tail
    entries = redis.Redis.from_url(settings.redis_url).xrange(streams.key("job", job_id))
    decoded = [(int(entry_id.split(b"-")[0]), *streams.decode(e)) for entry_id, e in entries]
    outputs = [(at_ms, data) for at_ms, event, data in decoded if event == streams.OUTPUT]
    assert [data["chunk"] for _, data in outputs] == [f"w{n} " for n in range(4)]
    assert outputs[-1][0] - outputs[0][0] > 600  # appended as they came (Redis's clock, ms)
    lines = [data["line"] for _, event, data in decoded if event == streams.LOG]
    assert lines == [f"word {n}" for n in range(4)] + ["all said"]


def test_a_model_printing_100_mb_is_cut_and_its_job_succeeds(new_user):
    farm = new_user()
    version = farm.build({"predict.py": CHATTY})
    assert version["status"] == "READY", version["error"]
    api = list(stack.api_workers())
    api_before = stack.memory_kb(api, "VmRSS")
    job = farm.submit(version["id"], inputs={"megabytes": 100}).json()["job"]
    events = [event for _, event in _events_of(farm, job["id"])]
    assert stack.memory_kb(api, "VmRSS") - api_before < 64 * 1024  # not with the prints
    ended = farm.job(job["id"])
    assert ended["status"] == "SUCCEEDED", ended["error"]
    assert ended["result"] == {"printed_mb": 100}
    lines = [e.data["line"] for e in events if e.event == "log"]
    assert 1000 < len(lines) <= streams.MAX_LOG_LINES + 1
    assert lines[-1] == "[more than 4 MiB printed: the rest is in the job's log]"
    log = farm.job_log(job["id"])
    assert 0 < len(log) <= 1024 * 1024  # its last part only


def test_a_job_created_with_accept_event_stream_streams_on_the_same_response(streaming):
    owner, version = streaming
    body = {"version_id": version["id"], "inputs": {"words": 3}}
    headers = {"Accept": "text/event-stream"}
    with httpx_sse.connect_sse(owner.http, "POST", "/api/jobs", json=body, headers=headers) as sse:
        assert sse.response.status_code == 201
        events = [(e.event, json.loads(e.data)) for e in sse.iter_sse()]
    assert [data for event, data in events if event == "output"] == [
        {"index": n, "chunk": f"w{n} "} for n in range(3)
    ]  # fmt: skip
    assert events[0][0] == "status" and events[0][1]["status"] == "QUEUED"
    assert events[-1][0] == "done" and events[-1][1]["result"]["text"] == "w0 w1 w2 "
    assert owner.job(events[-1][1]["id"]) == events[-1][1]


def test_modelfarm_predict_prints_chunks_and_log_lines_as_they_come(streaming, tmp_path):
    owner, version = streaming
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "MODELFARM_API": API_URL, "PATH": ""}
    logged_in(owner, env)
    command = [str(MODELFARM), "predict", version["model_id"], "-i", "words=4", "-o", str(tmp_path)]
    started = time.monotonic()
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as run:
        first = run.stdout.read(3)  # "w0 ", the first chunk, printed while the job runs
        first_came = time.monotonic() - started
        rest, errors = run.communicate(timeout=120)
    assert run.returncode == 0, errors.decode()
    assert (first + rest).decode() == "w0 w1 w2 w3 \n"
    assert first_came < time.monotonic() - started - 0.6
    assert [f"word {n}" for n in range(4)] + ["all said"] == [
        line for line in errors.decode().splitlines() if line.startswith(("word", "all"))
    ]


def test_the_next_job_on_the_same_warm_container_gets_none_of_the_last_ones_lines(streaming):
    owner, version = streaming
    first = owner.submit(version["id"], inputs={"words": 2}).json()["job"]
    assert [e.event for _, e in _events_of(owner, first["id"])].count("output") == 2
    second = owner.submit(version["id"], inputs={"words": 0}).json()["job"]
    events = [event for _, event in _events_of(owner, second["id"])]
    assert [e.data["line"] for e in events if e.event == "log"] == ["all said"]
    assert [e for e in events if e.event == "output"] == []
    assert owner.job(second["id"])["result"] == {"chunks": []}
    assert owner.job_log(second["id"]) == "all said\n"
