"""Warm benchmark on the digits example: synchronous jobs (input inline, `Prefer: wait`) timed
by the client from request to terminal response, beside the model's in-process predict time;
8 clients at once; a batch of 1,000 inline items; the cold first job of a new user; and the
same model with a 2 s setup() (a stand-in for a big model's load), cold against warm.

    .venv/bin/python scripts/bench_warm.py       (needs the stack: scripts/up.sh)
"""

import base64
import json
import re
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.lifecycle import JobStatus, VersionStatus  # noqa: E402
from scripts.bench_run import DIGITS, PACKAGE_FILES, SAMPLE, in_process  # noqa: E402
from tests.utils import Farm  # noqa: E402

SYNC_JOBS = 300
CONCURRENT_CLIENTS = 8
CONCURRENT_S = 20
BATCH_ITEMS = 1000
SLOW_SETUP_S = 2
WARM_JOBS_PER_USER = 20
INPUT = {"name": SAMPLE.name, "data": base64.b64encode(SAMPLE.read_bytes()).decode()}


def sync_job(farm: Farm, version_id: str) -> float:
    """Seconds from the request to the terminal response, for one synchronous job."""
    started = time.perf_counter()
    response = farm.submit(version_id, {"Prefer": "wait=60"}, input=INPUT)
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise SystemExit(f"POST /api/jobs answered {response.status_code}: {response.text}")
    job = response.json()["job"]
    if job["status"] != JobStatus.SUCCEEDED:
        raise SystemExit(f"job {job['id']} is {job['status']}: {job['error']}")
    return elapsed


def percentile(times: list[float], fraction: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def concurrent(farm: Farm, version_id: str) -> tuple[float, int]:
    """Jobs per minute with CONCURRENT_CLIENTS clients of one user, and the errors seen."""
    clients = [farm.another_client() for _ in range(CONCURRENT_CLIENTS)]
    deadline = time.monotonic() + CONCURRENT_S

    def client_loop(farm: Farm) -> tuple[int, int]:
        done = errors = 0
        while time.monotonic() < deadline:
            try:
                sync_job(farm, version_id)
                done += 1
            except (SystemExit, Exception):  # a failed job, or a failed request
                errors += 1
        return done, errors

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        outcomes = list(pool.map(client_loop, clients))
    elapsed = time.perf_counter() - started
    return sum(done for done, _ in outcomes) / elapsed * 60, sum(e for _, e in outcomes)


def batch(farm: Farm, version_id: str) -> tuple[float, int]:
    """Seconds from submission to the terminal status of a batch, and its failed items."""
    started = time.perf_counter()
    response = farm.submit(version_id, {"Prefer": "wait=60"}, batch=[INPUT] * BATCH_ITEMS)
    job = farm.wait_job(response.json()["job"]["id"], timeout=600)
    elapsed = time.perf_counter() - started
    if job["status"] != JobStatus.SUCCEEDED or job["items_done"] != BATCH_ITEMS:
        raise SystemExit(f"batch ended {job['status']}: {job['error']}")
    return elapsed, job["items_failed"]


def cold_and_warm(version_id: str, users: int = 3) -> tuple[float, float]:
    """The median first (cold) sync job of new users, and the median of their next ones
    (warm)."""
    cold, warm = [], []
    for _ in range(users):
        farm = Farm.register(f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench-password")
        cold.append(sync_job(farm, version_id))
        warm += [sync_job(farm, version_id) for _ in range(WARM_JOBS_PER_USER)]
    return statistics.median(cold), statistics.median(warm)


def build(farm: Farm, files: dict[str, bytes]) -> str:
    """A READY version of a public model: the new users of cold_and_warm run it too."""
    version = farm.build(files, model_id=farm.create_model(visibility="public")["id"])
    if version["status"] != VersionStatus.READY:
        raise SystemExit(f"build failed: {version['error']}")
    return version["id"]


def slow_setup_files() -> dict[str, bytes]:
    files = {name: (DIGITS / name).read_bytes() for name in PACKAGE_FILES}
    code = files["predict.py"].decode()
    slowed = re.sub(
        r"( +)def setup\(self\)[^:]*:\n",
        lambda m: f"{m.group(0)}{m.group(1) * 2}__import__('time').sleep({SLOW_SETUP_S})\n",
        code,
    )
    assert slowed != code, "digits' predict.py has no setup() to slow"
    files["predict.py"] = slowed.encode()
    return files


def measure() -> dict:
    farm = Farm.register(f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench-password")
    version_id = build(farm, {name: (DIGITS / name).read_bytes() for name in PACKAGE_FILES})
    own = in_process()
    sync_job(farm, version_id)  # warm-up: the user's container starts here
    times = [sync_job(farm, version_id) for _ in range(SYNC_JOBS)]
    per_minute, errors = concurrent(farm, version_id)
    batch_s, batch_failed = batch(farm, version_id)
    cold_s, _ = cold_and_warm(version_id)
    slow_cold_s, slow_warm_s = cold_and_warm(build(farm, slow_setup_files()))
    predict_ms = own["predict_s"] * 1000
    p50, p99 = percentile(times, 0.5) * 1000, percentile(times, 0.99) * 1000
    return {
        "predict_in_process_ms": round(predict_ms, 3),
        "sync_job_p50_ms": round(p50, 1),
        "sync_job_p99_ms": round(p99, 1),
        "sync_p50_over_in_process_ms": round(p50 - predict_ms, 1),
        "sync_p99_over_in_process_ms": round(p99 - predict_ms, 1),
        f"sync_jobs_per_minute_{CONCURRENT_CLIENTS}_clients": round(per_minute),
        f"sync_errors_{CONCURRENT_CLIENTS}_clients": errors,
        f"batch_{BATCH_ITEMS}_items_s": round(batch_s, 2),
        "batch_predictions_per_minute": round(BATCH_ITEMS / batch_s * 60),
        "batch_items_failed": batch_failed,
        "cold_first_sync_job_s": round(cold_s, 3),
        f"setup_{SLOW_SETUP_S}s_model_cold_job_s": round(slow_cold_s, 3),
        f"setup_{SLOW_SETUP_S}s_model_warm_job_ms": round(slow_warm_s * 1000, 1),
        f"setup_{SLOW_SETUP_S}s_model_warm_over_in_process_ms": round(
            slow_warm_s * 1000 - predict_ms, 1
        ),
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=1))
