"""Live events benchmark (issue 27), on the local stack: how long a chunk takes from a warm
model's `yield` to the client reading its event (the model stamps each chunk with the clock the
client reads: one machine), how many small chunks one stream carries per second, and the p99 of
sync jobs through one API process with no stream open against with STREAMS open on it (idle:
on a job that waits for its upload; measured from SETTLE_S after they opened).

    .venv/bin/python scripts/bench_live.py       (needs the stack: scripts/up.sh)
"""

import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.bench_warm import percentile  # noqa: E402
from tests.integration import stack  # noqa: E402
from tests.integration.test_events import with_streams  # noqa: E402
from tests.utils import Farm, inline  # noqa: E402

STAMPED = """import time

def predict(chunks: int = 200, every_ms: int = 10):
    for number in range(chunks):
        yield {"n": number, "at": time.time()}
        if every_ms:
            time.sleep(every_ms / 1000)
"""
ECHO = "def predict(input_path, output_dir):\n    return {'size': input_path.stat().st_size}\n"
LATENCY_CHUNKS = 300
RATE_CHUNKS = 20_000
STREAMS = 500
SYNC_JOBS = 500
SETTLE_S = 1  # the streams just opened finish their first events
PORT = 8019


def _ready(farm: Farm, files: dict) -> str:
    version = farm.build(files)
    if version["status"] != "READY":
        raise SystemExit(f"the bench model did not build: {version['error']}")
    return version["id"]


def _chunks(farm: Farm, version_id: str, chunks: int, every_ms: int) -> list[tuple[float, dict]]:
    """Each output event's chunk with the time the client read it."""
    inputs = {"chunks": chunks, "every_ms": every_ms}
    return [
        (time.time(), event.data["chunk"])
        for event in farm.stream(version_id, inputs)
        if event.event == "output"
    ]


def latency_and_rate(farm: Farm, version_id: str) -> dict:
    _chunks(farm, version_id, 5, 0)  # warm-up: the user's container starts here
    came = _chunks(farm, version_id, LATENCY_CHUNKS, 10)
    delays = [(at - chunk["at"]) * 1000 for at, chunk in came]
    burst = _chunks(farm, version_id, RATE_CHUNKS, 0)
    seconds = burst[-1][0] - burst[0][0]
    return {
        "yield_to_client_p50_ms": round(percentile(delays, 0.5), 2),
        "yield_to_client_p99_ms": round(percentile(delays, 0.99), 2),
        f"chunks_per_s_one_stream_{RATE_CHUNKS}": round((len(burst) - 1) / seconds),
        "chunks_received": len(burst),
    }


def _sync_p99_ms(url: str, farm: Farm, version_id: str) -> float:
    headers = {"Authorization": f"Bearer {farm.token}", "Prefer": "wait=60"}
    body = {"version_id": version_id, "input": inline("x")}
    times = []
    with httpx.Client(base_url=url, headers=headers, timeout=90) as client:
        for _ in range(SYNC_JOBS):
            started = time.perf_counter()
            job = client.post("/api/jobs", json=body).json()["job"]
            times.append(time.perf_counter() - started)
            if job["status"] != "SUCCEEDED":
                raise SystemExit(f"a sync job is {job['status']}: {job['error']}")
    return percentile(times, 0.99) * 1000


def _settled_p99_ms(url: str, farm: Farm, version_id: str) -> float:
    time.sleep(SETTLE_S)
    return _sync_p99_ms(url, farm, version_id)


def streams_beside_sync_jobs(farm: Farm, echo_id: str) -> dict:
    waiting = farm.http.post("/api/jobs", json={"version_id": echo_id}).json()["job"]
    log = Path(tempfile.mkdtemp(prefix="bench-live-")) / "api.log"
    with stack.api_process(PORT, log) as url:
        _sync_p99_ms(url, farm, echo_id)  # warm-up
        alone = _sync_p99_ms(url, farm, echo_id)
        opened, beside = with_streams(
            url, farm.token, waiting["id"], STREAMS, lambda: _settled_p99_ms(url, farm, echo_id)
        )
    return {
        "streams_open_one_api_process": opened,
        "sync_p99_ms_no_streams": round(alone, 1),
        f"sync_p99_ms_{STREAMS}_streams": round(beside, 1),
        f"sync_p99_{STREAMS}_streams_over_none": round(beside / alone, 2),
    }


def measure() -> dict:
    farm = Farm.register(f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench-password")
    stamped = _ready(farm, {"predict.py": STAMPED})
    echo = _ready(farm, {"predict.py": ECHO})
    return latency_and_rate(farm, stamped) | streams_beside_sync_jobs(farm, echo)


if __name__ == "__main__":
    print(measure())
